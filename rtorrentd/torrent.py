"""The frozen snapshot of one download, and one file of it.

The names a rule can use, and what each attribute means, are declared in
`rtorrentd.vocabulary`; `rtorrent.rows` builds Torrents from rtorrent's replies.

A `Torrent` attribute whose field was not fetched is `None`, and so is one that is
unknown for this torrent (no tracker scrape yet, no finish time): rules treat both
as "unknown", which makes a comparison false.

Why a Torrent may hold only some of its fields: a snapshot fetches the fields its
rules need (a dozen of 31, typically), and a slot for every field made each
Torrent 288 bytes, two thirds of them None pointers, at 100,000 torrents 18 MiB of
them, and filling each None slot was two thirds of building the snapshot. So
`Torrent` itself has no slot: the fields it was not given read their default
(None) from the class, and an instance is of a subclass (`holding`) with a slot for
each field it holds. `Torrent(...)` holds every field; `rtorrent.rows` builds a
snapshot's with `holding(the fields it fetched)`. Every such Torrent is a Torrent
like any other: equal when all fields are (whichever fields it holds), frozen,
with one repr, and `dataclasses.replace` gives one that holds every field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

from rtorrentd.holding import ByValue, values_of


@dataclass(frozen=True, eq=False)
class Torrent(ByValue):
    """One download as rtorrent reported it in one snapshot. Unfetched fields are None."""

    __slots__ = ()  # in the subclasses (`holding`): one slot per field held

    hash: str
    name: str
    label: str | None = None
    tags: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    ignored: bool | None = None
    throttle: str | None = None
    directory: str | None = None
    path: str | None = None
    multi_file: bool | None = None
    complete: bool | None = None
    started: bool | None = None
    active: bool | None = None
    open: bool | None = None
    private: bool | None = None
    ratio: float | None = None
    size: int | None = None
    done: int | None = None
    uploaded: int | None = None
    downloaded: int | None = None
    up_rate: int | None = None
    down_rate: int | None = None
    added: int | None = None
    finished: int | None = None
    message: str | None = None
    peers: int | None = None
    seeders: int | None = None
    leechers: int | None = None
    scraped: int | None = None
    trackers: tuple[str, ...] | None = None
    saved_times: str | None = None

    def __new__(cls, *args: object, **kwargs: object) -> Torrent:
        # Torrent(...): one holding every field, which the dataclass __init__ fills.
        # A subclass called with fields (dataclasses.replace on a snapshot's
        # Torrent): a whole one too, made here (not an instance of `cls`, so it is
        # not initialised twice).
        if cls is Torrent or cls is _EVERY:
            return object.__new__(_EVERY)
        return Torrent(*args, **kwargs)  # type: ignore[arg-type]


NAMES = tuple(f.name for f in fields(Torrent))
"""Every field's name, in the constructor's order."""

Torrent._record, Torrent._values = Torrent, values_of(Torrent)


@cache
def holding(names: frozenset[str]) -> type[Torrent]:
    """The subclass of `Torrent` whose instances hold `names` (and `hash` and `name`,
    which have no default) in slots; every other field reads None. One class per
    set of names (a snapshot's layout), made once."""
    unknown = names - set(NAMES)
    if unknown:
        raise ValueError(f"Torrent has no field {sorted(unknown)[0]!r}")
    held = tuple(n for n in NAMES if n in names or n in {"hash", "name"})
    namespace = {"__slots__": held, "__qualname__": "Torrent", "__module__": __name__}
    return type("Torrent", (Torrent,), namespace)


_EVERY = holding(frozenset(NAMES))


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a torrent as rtorrent lists it: `f.path` (relative to
    `d.directory`) and `f.size_bytes`."""

    path: str
    size: int
