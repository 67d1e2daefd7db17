"""TOML configuration to a frozen `Config`.

Keys and defaults (durations: "30s", "1d12h" or a number of seconds; sizes:
"50GiB", "500MB" or a number of bytes)::

    [rtorrent]
    url = "scgi:///path/rpc.socket"  # required; or scgi://host:port, http(s)://host/RPC2
    timeout = "30s"                  # whole call; at most 7d
    connect_timeout = "10s"          # at most 7d
    max_reply = "256MiB"             # at most 16GiB
    username = "..."                 # optional, HTTP
    password_file = "/path"          # optional, HTTP
    tls_verify = true
    ca_file = "/path"                # optional
    [daemon]
    interval = "5m"                  # 10s to 7d
    dry_run = false
    window = "7d"                    # at most 365d
    [safety]
    allowed_roots = []               # absolute; required as soon as anything deletes
    max_deletes_per_poll = 20        # 0 to 1000000
    max_delete_fraction = 0.5        # in (0, 1]
    verify_budget = "64MiB"          # piece hashes read per deleted torrent, at most
    other_rtorrents = []             # URLs of other rtorrents sharing the disk: their
                                     # torrents' files are kept; one unreachable refuses
    [[rule]]                         # zero or more, tried in order
    name = "..."                     # required, unique
    when = "complete and ratio >= 2" # required, the condition language (conditions/)
    action = "delete"                # required: keep | stop | remove | delete | trash |
                                     # relabel | throttle
    label = "seeded"                 # relabel only, required: the label to set ("" clears it)
    throttle = "slow"                # throttle only, required: a throttle.up/down group
                                     # ("" puts it back under the global limits)
    [[space]]                        # zero or more
    path = "/path"                   # required, absolute, unique
    min_free = "50GiB"               # required; at most 1024TiB
    target_free = "80GiB"            # default: min_free; at most 1024TiB
    candidates = "complete"          # required, a condition
    order = "seeding_time desc"      # default; numeric fields, asc (default) or desc
    action = "delete"                # required; only delete frees space
    [orphans]                        # optional: orphan cleanup (README "Orphan cleanup")
    min_age = "1d"                   # older than this by mtime and ctime; at most 365d
    exclude = ["*.part"]             # globs relative to each allowed root
    max_files = 100                  # moved per scan, at most (0 to 1000000)
    max_bytes = "10GiB"              # moved per scan, at most
    interval = "1h"                  # between scans (1m to 30d)
    [trash]                          # optional: the recycle bin (off without it)
    path = "/data/.trash"            # required, absolute, on the allowed roots' filesystem
    keep_for = "7d"                  # optional: entries older go (the daemon empties them)
    max_size = "100GiB"              # optional: beyond this the oldest entries go
    replace_delete = false           # true: rules' action = "delete" trashes instead
    [metrics]                        # optional, daemon-wide; listen, textfile or both
    listen = "127.0.0.1:9721"        # Prometheus scrapes http://HOST:PORT/metrics
    textfile = "/path/rtorrentd.prom"  # for node_exporter's textfile collector
    [notify]                         # optional, daemon-wide (config/notify.py)
    urls = ["ntfy://ntfy.sh/topic"]  # required: Apprise URLs, each checked by Apprise
    events = [...]                   # default: deleted refused failed unreachable
                                     # recovered space_low (also: removed, stopped)
    title = "rtorrentd"              # what every title starts with

Durations and sizes are more than zero. The file is read only if it is a
regular file of at most 1 MiB.

A configuration with no rules and no space policies is valid (it watches and
does nothing); `config_warnings` says so, as it does for allowed roots that do
not exist on this machine (the file may be checked elsewhere).

Every error names the file, the line (tomllib gives no positions for keys, so
`LineIndex` finds them in the text) and the rule, and says what to write.
In TOML, write conditions in single quotes (`when = 'name ~ "\\d"'`) so that
backslashes reach the condition unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlsplit

from rtorrentd.conditions.parse import FIELDS_HINT, Condition, parse_condition
from rtorrentd.config import notify
from rtorrentd.config.files import MAX_CONFIG_BYTES, Refused, read_regular_file
from rtorrentd.config.model import (
    DELETING,
    SETTING,
    Action,
    Config,
    DaemonSettings,
    MetricsSettings,
    NotifySettings,
    OrderKey,
    OrphanSettings,
    RtorrentSettings,
    Rule,
    Safety,
    SpacePolicy,
    TrashSettings,
)
from rtorrentd.config.source import LineIndex, Where, close_match, excerpt, load_toml
from rtorrentd.config.values import (
    Invalid,
    duration_up_to,
    show,
    size_up_to,
    to_count,
    to_directory,
    to_flag,
    to_fraction,
    to_interval,
    to_roots,
    to_rule_name,
    to_text,
    to_url,
    to_urls,
)
from rtorrentd.errors import ConfigError, ExprError
from rtorrentd.redact import redact_url
from rtorrentd.vocabulary import NUMERIC_KINDS, Kind, name_kinds


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and parse the configuration file at `path`; raises `ConfigError`."""
    source = os.fspath(path)
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES, "1 MiB").data
        text = data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration: {exc.strerror}") from exc
    except Refused as refused:
        hint = "name the TOML file itself: a configuration is a regular file of a few kilobytes"
        problem = f"cannot read the configuration: it is {refused.reason}"
        raise ConfigError(f"{source}: {problem}\n  {hint}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from exc
    # Universal newlines, as text mode reads them.
    return parse_config(text.replace("\r\n", "\n").replace("\r", "\n"), source)


def parse_config(text: str, source: str) -> Config:
    """Parse TOML `text` read from `source` (named in messages); raises `ConfigError`."""
    data = load_toml(text, source)
    lines = LineIndex(text)
    _check_top(source, lines, data)
    rtorrent = RtorrentSettings(**_section(source, lines, data, "rtorrent"))
    daemon = DaemonSettings(**_section(source, lines, data, "daemon"))
    safety = Safety(**_section(source, lines, data, "safety"))
    metrics = _metrics(source, lines, data)
    trash = _trash(source, lines, data, safety)
    orphans = _orphans(source, lines, data, safety, trash)
    notifications = _notify(source, lines, data, text)
    rules = [_rule(where, item) for where, item in _items(source, lines, data, "rule")]
    rules = [_trashing(rule, where, trash) for rule, where in rules]
    space = [_space(where, item) for where, item in _items(source, lines, data, "space")]
    _check_unique(rules, "name", "rule")
    _check_unique(space, "path", "space policy")
    _check_deletions(safety, [*rules, *space])
    return Config(
        source,
        rtorrent,
        daemon,
        safety,
        tuple(rule for rule, _ in rules),
        tuple(policy for policy, _ in space),
        metrics,
        orphans,
        trash,
        notifications,
    )


def config_warnings(config: Config) -> list[str]:
    """What is legal but probably not meant: missing directories, nothing to do."""
    warnings = [
        f'{config.source}: [safety] allowed_roots: "{root}" is not a directory on this machine'
        for root in config.safety.allowed_roots
        if not os.path.isdir(root)
    ]
    warnings += [
        f'{config.source}:{policy.line}: space "{policy.path}": not a directory on this machine'
        for policy in config.space
        if not os.path.isdir(policy.path)
    ]
    if not config.rules and not config.space:
        warnings.append(f"{config.source}: no [[rule]] and no [[space]]: rtorrentd will do nothing")
    if config.rtorrent.url in config.safety.other_rtorrents:
        warnings.append(
            f"{config.source}: [safety] other_rtorrents lists [rtorrent] url itself: every"
            " torrent would keep its own files as another's, so nothing would be deleted"
        )
    if _open_http_bridge(config.rtorrent):
        warnings.append(
            f'{config.source}: [rtorrent] url = "{redact_url(config.rtorrent.url)}" sends no'
            " login: anyone who can reach that nginx location can run any command as"
            " rtorrent's user, shell commands too (execute.*). Put auth_basic and TLS"
            " in front of it (https, then username and password_file here), or connect"
            " to rtorrent's socket directly (scgi:///path/to/rpc.socket)"
        )
    return warnings


def _open_http_bridge(settings: RtorrentSettings) -> bool:
    """An http(s) URL with no login anywhere: old guides set nginx up so
    (`location ^~ /scgi { include scgi_params; scgi_pass ...; }`, no auth_basic),
    and rtorrent runs whatever reaches it."""
    parts = urlsplit(settings.url)
    if parts.scheme.lower() not in ("http", "https"):
        return False
    login_in_url = "@" in parts.netloc
    return not (login_in_url or settings.username or settings.password_file)


# --- values -----------------------------------------------------------------------

_ORDER_HINT = 'write field names with asc or desc, like "seeders desc, ratio desc"'
_KIND_WORDS = {Kind.STRING: "text", Kind.BOOL: "true or false", Kind.STRINGS: "a list of text"}
_DEFAULT_ORDER = (OrderKey("seeding_time", descending=True),)


def _to_action(value: object) -> Action:
    try:
        return Action(to_text(value))
    except ValueError:
        hint = "write keep, stop, remove, delete, trash, relabel or throttle"
        raise Invalid("is not an action", hint) from None


def _to_target(value: object) -> str:
    text = to_text(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise Invalid("has a control character", "write it on one line, without tabs")
    return text


def _to_space_action(value: object) -> Action:
    if _to_action(value) is not Action.DELETE:
        hint = 'write "delete": only deleting frees space (stop and remove keep the data)'
        raise Invalid("does not free space", hint)
    return Action.DELETE


_LISTEN_HINT = 'write a host and a port, like "127.0.0.1:9721" or "[::1]:9721"'


def _to_listen(value: object) -> tuple[str, int]:
    host, sep, port = to_text(value).rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise Invalid("is not a host and port", _LISTEN_HINT)
    return host, int(port)


def _to_textfile(value: object) -> str:
    path = to_text(value)
    if not (os.path.isabs(path) and path.endswith(".prom")):
        hint = (
            'node_exporter reads files named *.prom: write "/var/lib/node_exporter/rtorrentd.prom"'
        )
        raise Invalid("is not an absolute path ending in .prom", hint)
    return os.path.normpath(path)


def _to_globs(value: object) -> tuple[str, ...]:
    hint = 'write a list of globs relative to each allowed root, like ["*.part", ".stfolder/**"]'
    if not isinstance(value, list):
        raise Invalid("is not a list of globs", hint)
    globs = []
    for item in value:
        if not isinstance(item, str) or not item.strip("/") or "\0" in item:
            raise Invalid(f"has {show(item)}, which is not a glob", hint)
        parts = {part for part in item.split("/") if part}
        if ".." in parts or parts <= {"."}:
            # Paths under a root hold no "..": such a glob would exclude nothing.
            raise Invalid(f"has {show(item)}, which names no path under an allowed root", hint)
        globs.append(item)
    return tuple(dict.fromkeys(globs))


def _to_scan_interval(value: object) -> float:
    seconds = duration_up_to("30d", "1h")(value)
    if seconds < 60:
        hint = 'a scan walks every allowed root: write "1m" or more, like "1h"'
        raise Invalid("is shorter than 1m", hint)
    return seconds


def _to_order(value: object) -> tuple[OrderKey, ...]:
    return tuple(_order_key(part.split()) for part in to_text(value).split(","))


def _order_key(words: list[str]) -> OrderKey:
    if len(words) not in (1, 2) or words[1:] not in ([], ["asc"], ["desc"]):
        raise Invalid(f"has {show(' '.join(words))}, not a field and asc or desc", _ORDER_HINT)
    kinds = name_kinds()
    kind = kinds.get(words[0])
    if kind is None:
        hint = close_match(words[0], {name: f"`{name}`" for name in kinds})
        raise Invalid(f"has unknown field `{words[0]}`", hint + FIELDS_HINT)
    if kind not in NUMERIC_KINDS:
        hint = "order by numbers, sizes, durations or timestamps, like seeding_time desc"
        raise Invalid(f"has `{words[0]}`, which is {_KIND_WORDS[kind]}, not a number", hint)
    return OrderKey(words[0], descending=words[1:] == ["desc"])


# --- tables -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    title: str
    keys: Mapping[str, Callable[[object], Any]]
    required: tuple[str, ...] = ()
    needs: str = ""  # what to write when a required key is missing


_TABLES: Mapping[str, _Table] = {
    "rtorrent": _Table(
        "[rtorrent]",
        {
            "url": to_url,
            "timeout": duration_up_to("7d", "30s"),
            "connect_timeout": duration_up_to("7d", "10s"),
            "max_reply": size_up_to("16GiB", "256MiB"),
            "username": to_text,
            "password_file": to_text,
            "tls_verify": to_flag,
            "ca_file": to_text,
        },
        ("url",),
        'write where rtorrent listens, like url = "scgi:///home/you/rtorrent/rpc.socket"',
    ),
    "daemon": _Table(
        "[daemon]",
        {
            "interval": to_interval,
            "dry_run": to_flag,
            "window": duration_up_to("365d", "7d"),
            "state_dir": to_directory,
        },
    ),
    "safety": _Table(
        "[safety]",
        {
            "allowed_roots": to_roots,
            "max_deletes_per_poll": to_count,
            "max_delete_fraction": to_fraction,
            "verify_budget": size_up_to("1024TiB", "256MiB"),
            "other_rtorrents": to_urls,
        },
    ),
    "rule": _Table(
        "[[rule]]",
        {
            "name": to_rule_name,
            "when": to_text,
            "action": _to_action,
            "label": _to_target,
            "throttle": _to_target,
        },
        ("name", "when", "action"),
        "every [[rule]] needs name, when and action",
    ),
    "space": _Table(
        "[[space]]",
        {
            "path": to_directory,
            "min_free": size_up_to("1024TiB", "50GiB"),
            "target_free": size_up_to("1024TiB", "80GiB"),
            "candidates": to_text,
            "order": _to_order,
            "action": _to_space_action,
        },
        ("path", "min_free", "candidates", "action"),
        "every [[space]] needs path, min_free, candidates and action",
    ),
    "metrics": _Table("[metrics]", {"listen": _to_listen, "textfile": _to_textfile}),
    "orphans": _Table(
        "[orphans]",
        {
            "min_age": duration_up_to("365d", "1d"),
            "exclude": _to_globs,
            "max_files": to_count,
            "max_bytes": size_up_to("1024TiB", "10GiB"),
            "interval": _to_scan_interval,
        },
    ),
    "trash": _Table(
        "[trash]",
        {
            "path": to_directory,
            "keep_for": duration_up_to("3650d", "7d"),
            "max_size": size_up_to("1024TiB", "100GiB"),
            "replace_delete": to_flag,
        },
        ("path",),
        'write where the bin is, on the allowed roots\' filesystem, like path = "/data/.trash"',
    ),
    # `urls` is checked apart (`_notify`): a message must not show it.
    "notify": _Table(
        "[notify]",
        {"urls": lambda value: value, "events": notify.to_events, "title": notify.to_title},
        ("urls",),
        notify.URLS_HINT,
    ),
}
_ARRAYS = ("rule", "space")


def _check_top(source: str, lines: LineIndex, data: dict[str, Any]) -> None:
    """Every top-level name is a known section, written as a table or array of tables."""
    top = Where(source, lines, ("", 0), "")
    for name, value in data.items():
        line = lines.line(("", 0), name) or lines.line((name, 0))
        if name not in _TABLES:
            raise top.error_at(line, _unknown_section(name, value))
        if name in _ARRAYS and not isinstance(value, list):
            raise top.error_at(line, f"write [[{name}]], one table for each {name}, not [{name}]")
        if name not in _ARRAYS and not isinstance(value, dict):
            raise top.error_at(line, f"{name} = {show(value)} is not a section\n  write [{name}]")


def _unknown_section(name: str, value: object) -> str:
    titles = ", ".join(table.title for table in _TABLES.values())
    if not isinstance(value, dict | list):
        return f'unknown key "{name}" outside any section\n  The sections are {titles}.'
    choices = {known: table.title for known, table in _TABLES.items()}
    return f"unknown section [{name}]\n  {close_match(name, choices)}The sections are {titles}."


def _convert(where: Where, data: object, table: _Table) -> dict[str, Any]:
    """Check the keys of one table and convert each value."""
    if not isinstance(data, dict):
        raise where.error(f"{table.title} must be a table, not {show(data)}")
    for key in data:
        if key not in table.keys:
            choices = {known: f'"{known}"' for known in table.keys}
            hint = close_match(key, choices) + f"{table.title} takes {', '.join(table.keys)}."
            raise where.error(f'unknown key "{key}"', hint, key)
    for key in table.required:
        if key not in data:
            raise where.error(f"{key} is missing", table.needs)
    return {key: _value(where, key, value, table.keys[key]) for key, value in data.items()}


def _value(where: Where, key: str, value: object, convert: Callable[[object], Any]) -> Any:
    try:
        return convert(value)
    except Invalid as bad:
        raise where.error(f"{key} = {show(value)} {bad.complaint}", bad.hint, key) from None


def _section(source: str, lines: LineIndex, data: dict[str, Any], name: str) -> dict[str, Any]:
    where = Where(source, lines, (name, 0), _TABLES[name].title)
    return _convert(where, data.get(name, {}), _TABLES[name])


def _metrics(source: str, lines: LineIndex, data: dict[str, Any]) -> MetricsSettings | None:
    """`[metrics]`, or None when the file has no such table."""
    if "metrics" not in data:
        return None
    values = _section(source, lines, data, "metrics")
    if not values:
        where = Where(source, lines, ("metrics", 0), "[metrics]")
        raise where.error("is empty", 'write listen = "127.0.0.1:9721", textfile = "...", or both')
    return MetricsSettings(**values)


def _orphans(
    source: str,
    lines: LineIndex,
    data: dict[str, Any],
    safety: Safety,
    trash: TrashSettings | None,
) -> OrphanSettings | None:
    """`[orphans]`, or None when the file has no such table; it needs allowed roots
    and a recycle bin (orphans are moved into it, never unlinked)."""
    if "orphans" not in data:
        return None
    values = _section(source, lines, data, "orphans")
    where = Where(source, lines, ("orphans", 0), "[orphans]")
    if not safety.allowed_roots:
        hint = 'orphans are looked for under them: write allowed_roots = ["/home/you/dl"]'
        raise where.error("needs [safety] allowed_roots", hint)
    if trash is None:
        hint = (
            'orphans are moved into the recycle bin, never unlinked: add [trash] with path = "..."'
            " on the allowed roots' filesystem"
        )
        raise where.error("needs [trash]", hint)
    return OrphanSettings(**values)


def _trash(
    source: str, lines: LineIndex, data: dict[str, Any], safety: Safety
) -> TrashSettings | None:
    """`[trash]`, or None without the table; refuses a bin on another filesystem
    than an allowed root (entries are made by rename: it would be a copy). Roots or
    a bin that do not exist on this machine are not compared (`config_warnings`)."""
    if "trash" not in data:
        return None
    where = Where(source, lines, ("trash", 0), "[trash]")
    settings = TrashSettings(**_convert(where, data["trash"], _TABLES["trash"]))
    for root in safety.allowed_roots:
        problem = bin_filesystem_problem(settings.path, root)
        if problem:
            hint = f'write a directory on the filesystem of "{root}", like path = '
            hint += f'"{os.path.join(root, ".rtorrentd-trash")}"'
            raise where.error(f'path = "{settings.path}": {problem}', hint, "path")
    return settings


def bin_filesystem_problem(bin_dir: str, root: str) -> str:
    """Why the bin cannot take data from allowed root `root`: another filesystem
    (st_dev of the bin, or its parent while it is not made, against the root's);
    "" when they agree or either is not on this machine."""
    probe = bin_dir if os.path.exists(bin_dir) else os.path.dirname(bin_dir)
    try:
        here, there = os.stat(probe).st_dev, os.stat(root).st_dev
    except OSError:
        return ""
    if here == there:
        return ""
    return (
        f'on another filesystem (device {here}) than allowed root "{root}" (device {there}):'
        " the bin takes files by rename, and across filesystems that would be a copy"
    )


def _trashing(rule: Rule, where: Where, trash: TrashSettings | None) -> tuple[Rule, Where]:
    """`trash` needs a bin; with `replace_delete`, a rule's `delete` trashes."""
    if rule.action is Action.TRASH and trash is None:
        hint = 'add [trash] with path = "/data/.trash" (the bin), or write action = "delete"'
        raise where.error('action = "trash" needs a [trash] section', hint, "action")
    if rule.action is Action.DELETE and trash is not None and trash.replace_delete:
        return replace(rule, action=Action.TRASH), where
    return rule, where


def _notify(
    source: str, lines: LineIndex, data: dict[str, Any], text: str
) -> NotifySettings | None:
    """`[notify]`, or None when the file has no such table."""
    if "notify" not in data:
        return None
    values = _section(source, lines, data, "notify")
    where = Where(source, lines, ("notify", 0), "[notify]")
    return notify.notify_settings(values, notify.check_urls(where, values["urls"], text))


def _items(
    source: str, lines: LineIndex, data: dict[str, Any], name: str
) -> list[tuple[Where, object]]:
    """Each [[rule]] or [[space]] with its label: its name or path, else its number."""
    items = []
    for index, item in enumerate(data.get(name, [])):
        key = "name" if name == "rule" else "path"
        known = item.get(key) if isinstance(item, dict) else None
        label = f'{name} "{known}"' if isinstance(known, str) and known else f"{name} #{index + 1}"
        items.append((Where(source, lines, (name, index), label), item))
    return items


def _condition(where: Where, key: str, text: str) -> Condition:
    try:
        return parse_condition(text, name_kinds())
    except ExprError as exc:
        raise _condition_error(where, key, text, exc) from None


def _condition_error(where: Where, key: str, text: str, exc: ExprError) -> ConfigError:
    """The message with the condition's line and a caret under the column."""
    problem, _, hint = exc.message.partition("\n")
    before = text[: exc.column]
    row, column = before.count("\n"), len(before) - before.rfind("\n") - 1
    line = where.lines.value_line(where.place, key, row)
    shown = excerpt(text.split("\n")[row], column)
    return where.error_at(line, f"{problem} in `{key}`{shown}" + f"\n  {hint}" * bool(hint))


def _rule(where: Where, item: object) -> tuple[Rule, Where]:
    values = _convert(where, item, _TABLES["rule"])
    when = _condition(where, "when", values["when"])
    line = where.lines.line(where.place) or 0
    target = _target(where, values)
    return Rule(values["name"], when, values["action"], line, target), where


def _target(where: Where, values: Mapping[str, Any]) -> str:
    """The rule's `label` or `throttle`: required by its action, refused by others."""
    action: Action = values["action"]
    wanted = SETTING.get(action, "")
    key = "throttle" if action is Action.THROTTLE else "label"
    if wanted and key not in values:
        example = '"seeded"' if key == "label" else '"slow"'
        problem = f'action = "{action.value}" needs {key}'
        raise where.error(problem, f"write the {key} to set, like {key} = {example}", "action")
    for other in ("label", "throttle"):
        if other in values and other != (key if wanted else ""):
            needs = "relabel" if other == "label" else "throttle"
            problem = f'{other} is only for action = "{needs}", not "{action.value}"'
            raise where.error(problem, f'remove {other}, or write action = "{needs}"', other)
    return str(values.get(key, ""))


def _space(where: Where, item: object) -> tuple[SpacePolicy, Where]:
    values = _convert(where, item, _TABLES["space"])
    candidates = _condition(where, "candidates", values["candidates"])
    minimum = values["min_free"]
    target = values.get("target_free", minimum)
    if target < minimum:
        raw = cast(dict[str, object], item)
        problem = f"target_free = {show(raw['target_free'])} is less than min_free = "
        hint = "target_free is how much to free up to once below min_free: at least min_free"
        raise where.error(problem + show(raw["min_free"]), hint, "target_free")
    order = values.get("order", _DEFAULT_ORDER)
    line = where.lines.line(where.place) or 0
    policy = SpacePolicy(values["path"], minimum, target, candidates, order, values["action"], line)
    return policy, where


def _check_unique(items: list[tuple[Any, Where]], attribute: str, owner: str) -> None:
    """No two rules with one name, no two space policies for one path."""
    seen: dict[object, Where] = {}
    for item, where in items:
        value = getattr(item, attribute)
        if value in seen:
            first = seen[value].lines.line(seen[value].place)
            problem = f"the {attribute} {show(value)} is also used by the {owner} at line {first}"
            raise where.error(problem, f"give each {owner} its own {attribute}", attribute)
        seen[value] = where


def _check_deletions(safety: Safety, items: list[tuple[Rule | SpacePolicy, Where]]) -> None:
    if safety.allowed_roots:
        return
    for item, where in items:
        if item.action in DELETING:
            hint = 'list the directories it may delete in, like allowed_roots = ["/home/you/dl"]'
            problem = f'action = "{item.action.value}" needs [safety] allowed_roots'
            raise where.error(problem, hint, "action")
