"""The frozen configuration: what `load.parse_config` produces and the engine reads.

Data only, no reading of files: the engine and the space policy import this, not
the loader (which does I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from rtorrentd.conditions.parse import Condition


class Action(Enum):
    """What a rule decides. `keep` protects the torrent from later rules and space policies."""

    KEEP = "keep"
    STOP = "stop"  # d.stop + d.close; stays loaded, data kept
    REMOVE = "remove"  # d.erase; data kept
    DELETE = "delete"  # stop, close, delete the torrent's own files, erase
    TRASH = "trash"  # as delete, but the files are renamed into the recycle bin ([trash])
    RELABEL = "relabel"  # d.custom1.set to the rule's `label`; state and data untouched
    THROTTLE = "throttle"  # d.throttle_name.set to the rule's `throttle` group


# The actions that take a torrent out of rtorrent (d.erase): the safety valves
# limit them, and they fire rtorrent's event.download.erased handlers.
LEAVING = frozenset({Action.REMOVE, Action.DELETE, Action.TRASH})

# The actions that take a torrent's files away (into the bin, or for good): every
# check of a deletion applies to both, and `max_deletes_per_poll` counts both.
DELETING = frozenset({Action.DELETE, Action.TRASH})

# The actions that set one value of a torrent to the rule's `target`, and the
# field that reads it back: a rule with such an action reads that field, so the
# engine can tell a torrent already so (no step) and the executor can re-check.
SETTING: Mapping[Action, str] = {Action.RELABEL: "label", Action.THROTTLE: "throttle"}


@dataclass(frozen=True, slots=True)
class RtorrentSettings:
    url: str
    timeout: float = 30.0  # seconds, whole call
    connect_timeout: float = 10.0
    max_reply: int = 256 * 1024 * 1024
    username: str | None = None
    password_file: str | None = None
    tls_verify: bool = True
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    interval: float = 300.0
    dry_run: bool = False
    window: float = 7 * 86400.0  # for uploaded_recent
    state_dir: str = ""  # deletions under way; "" = $STATE_DIRECTORY or ~/.local/state


@dataclass(frozen=True, slots=True)
class Safety:
    allowed_roots: tuple[str, ...] = ()
    max_deletes_per_poll: int = 20
    max_delete_fraction: float = 0.5
    verify_budget: int = 64 * 1024 * 1024  # bytes hashed at most per deleted torrent
    # Other rtorrents on this machine whose torrents may use the same files.
    other_rtorrents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrphanSettings:
    """`[orphans]`: files under `[safety] allowed_roots` that no loaded torrent lists
    go to the recycle bin (README, "Orphan cleanup"). Off without the table."""

    min_age: float = 86400.0  # seconds; by both mtime and ctime
    exclude: tuple[str, ...] = ()  # globs, relative to each allowed root
    max_files: int = 100  # files and directories moved per scan, at most
    max_bytes: int = 10 * 1024**3  # bytes moved per scan, at most
    interval: float = 3600.0  # seconds between scans, at least


@dataclass(frozen=True, slots=True)
class TrashSettings:
    """`[trash]`: the recycle bin. `path` must be on the filesystem of every allowed
    root (entries are made by rename, never by copy)."""

    path: str
    keep_for: float | None = None  # seconds an entry is kept; None: no limit
    max_size: int | None = None  # bytes the bin may hold; the oldest go first
    replace_delete: bool = False  # rules' `delete` trashes instead


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """`[metrics]`, daemon-wide: where Prometheus reads the metrics (either or both)."""

    listen: tuple[str, int] | None = None  # host and port of the HTTP endpoint
    textfile: str | None = None  # a .prom file for node_exporter's textfile collector


# What `[notify]` can send a message about (`events`), and what it sends unless told.
EVENTS = (
    "deleted",
    "removed",
    "stopped",
    "refused",
    "failed",
    "unreachable",
    "recovered",
    "space_low",
)
DEFAULT_EVENTS = ("deleted", "refused", "failed", "unreachable", "recovered", "space_low")


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """`[notify]`, daemon-wide: Apprise URLs, the events sent, the titles' start."""

    urls: tuple[str, ...]
    events: tuple[str, ...] = DEFAULT_EVENTS
    title: str = "rtorrentd"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: Condition
    action: Action
    line: int  # 1-based line of the [[rule]] header, for messages
    target: str = ""  # the label (relabel) or throttle group (throttle) to set


@dataclass(frozen=True, slots=True)
class OrderKey:
    name: str
    descending: bool


@dataclass(frozen=True, slots=True)
class SpacePolicy:
    path: str
    min_free: int
    target_free: int
    candidates: Condition
    order: tuple[OrderKey, ...]
    action: Action
    line: int


@dataclass(frozen=True, slots=True)
class Config:
    source: str  # the file it was read from
    rtorrent: RtorrentSettings
    daemon: DaemonSettings
    safety: Safety
    rules: tuple[Rule, ...]
    space: tuple[SpacePolicy, ...] = ()
    # Daemon-wide: in one instance's file of a directory (see `config.instances`).
    metrics: MetricsSettings | None = None
    orphans: OrphanSettings | None = None  # None: no orphan cleanup
    trash: TrashSettings | None = None  # the recycle bin; None: off
    notify: NotifySettings | None = None  # daemon-wide, like metrics

    def names(self) -> frozenset[str]:
        """Every field or derived name some rule or space policy reads."""
        found: set[str] = set()
        for rule in self.rules:
            found |= rule.when.names
            if rule.action in SETTING:
                found.add(SETTING[rule.action])
        for policy in self.space:
            found |= policy.candidates.names | {key.name for key in policy.order}
        return frozenset(found)
