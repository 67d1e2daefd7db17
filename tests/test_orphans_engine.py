"""The pure part of orphan cleanup (`engine.orphans`): what is an orphan and why not,
the exclusion globs, the caps, and which torrents refuse a scan."""

from __future__ import annotations

import dataclasses

import pytest

from rtorrentd.config.model import OrphanSettings
from rtorrentd.engine.orphans import (
    Budget,
    Kind,
    Listed,
    Seen,
    TorrentState,
    busy_reason,
    classify,
    compile_excludes,
    human_age,
    orphan_reason,
)

DAY = 86400.0
NOW = 1_800_000_000.0
SETTINGS = OrphanSettings(min_age=DAY)


def seen(path: str = "/dl/old.mkv", **changes: object) -> Seen:
    base = Seen(
        path, path.removeprefix("/dl/"), Kind.FILE, (1, 100), 1, 10, NOW - 9 * DAY, NOW - 9 * DAY
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def verdict(entry: Seen, listed: Listed | None = None, exclude: tuple[str, ...] = ()) -> str:
    result = classify(entry, listed or Listed(), NOW, SETTINGS, compile_excludes(exclude))
    return "orphan" if result.orphan else result.why


def test_an_old_unlisted_file_is_an_orphan_and_the_reason_says_why() -> None:
    entry = seen()
    assert "orphan" == verdict(entry)
    reason = orphan_reason(entry, NOW, ["roger", "scgi:///other.socket"])
    assert "listed by no loaded torrent of roger, scgi:///other.socket" in reason
    assert "no other hard link" in reason
    assert "modified 9d ago, changed 9d ago" in reason
    linked = orphan_reason(seen(nlink=3), NOW, ["roger"])
    assert "2 other hard links, none of them listed" in linked


def test_a_listed_path_its_directories_and_its_identities_are_not_orphans() -> None:
    listed = Listed()
    new = listed.add_file("/dl/Album/cd1/a.flac")
    assert ["/dl/Album/cd1", "/dl/Album", "/dl"] == new
    assert [] == listed.add_file("/dl/Album/cd1/b.flac")  # directories known already
    listed.add_inodes([(1, 555)])
    assert "lists this path" in verdict(seen("/dl/Album/cd1/a.flac"), listed)
    empty_dir = seen("/dl/Album/cd1", kind=Kind.DIR, empty=True)
    assert "directory holds a listed file" in verdict(empty_dir, listed)
    # A hard link, or the same file through a symlinked or bind-mounted directory.
    assert "under another name" in verdict(seen("/dl/elsewhere.flac", inode=(1, 555)), listed)
    assert "orphan" == verdict(seen("/dl/Album/cd1/c.flac"), listed)


@pytest.mark.parametrize(
    ("mtime", "ctime", "why"),
    [
        (NOW - 9 * DAY, NOW - 3600, "changed (ctime) 1h ago"),  # copied in with its old mtime
        (NOW - 600, NOW - 9 * DAY, "modified 10m ago"),
        (NOW - DAY + 1, NOW - 9 * DAY, "modified 23h 59m ago"),
    ],
)
def test_young_by_mtime_or_ctime_is_no_orphan(mtime: float, ctime: float, why: str) -> None:
    assert verdict(seen(mtime=mtime, ctime=ctime)).startswith(why)
    assert "less than min_age 1d" in verdict(seen(mtime=mtime, ctime=ctime))


def test_only_files_links_and_empty_directories_can_be_orphans() -> None:
    assert "orphan" == verdict(seen(kind=Kind.LINK))
    assert "orphan" == verdict(seen("/dl/empty", kind=Kind.DIR, empty=True))
    assert "not empty" in verdict(seen("/dl/full", kind=Kind.DIR, empty=False))
    assert "special file" in verdict(seen("/dl/rpc.socket", kind=Kind.OTHER))


@pytest.mark.parametrize(
    ("rel", "glob"),
    [
        ("movie.mkv.part", "*.part"),
        ("deep/down/movie.part", "*.part"),
        (".stfolder", ".stfolder/**"),
        (".stfolder/x/y", ".stfolder/**"),
        ("sync/.stfolder/marker", ".stfolder/**"),
        ("keep/a.bin", "/keep"),
        ("keep/sub/a.bin", "/keep/**"),
        ("a/b/c/d.nfo", "a/**/*.nfo"),
        ("a/d.nfo", "a/**/*.nfo"),
        ("x1.bin", "x[0-9].bin"),
        ("xa.bin", "x[!0-9].bin"),
        ("line\nbreak.part", "*.part"),
        ("caf\udce9.part", "caf?.part"),  # a byte that is not UTF-8 is one character
        ("anything/at/all", "**"),
    ],
)
def test_globs_exclude_what_they_match_and_all_below(rel: str, glob: str) -> None:
    assert glob == compile_excludes(["other", glob]).match(rel)


@pytest.mark.parametrize(
    ("rel", "glob"),
    [
        ("movie.part.mkv", "*.part"),
        ("deep/keep/a.bin", "/keep"),  # anchored: only at the root
        ("x/y.nfo", "a/**/*.nfo"),
        ("xa.bin", "x[0-9].bin"),
        ("x1.bin", "x[!0-9].bin"),
        ("a/b", "a?b"),  # ? and * stay within one name
        ("a/b", "a*b"),
        ("stfolder", ".stfolder/**"),
    ],
)
def test_globs_match_nothing_else(rel: str, glob: str) -> None:
    assert "" == compile_excludes([glob]).match(rel)


def test_an_excluded_file_is_no_orphan_and_the_glob_is_named() -> None:
    assert "excluded by '*.part'" == verdict(seen("/dl/x.part"), exclude=("*.part",))


def test_the_budget_stops_at_either_cap_and_counts_the_rest() -> None:
    budget = Budget(files=2, bytes=100)
    assert budget.take(60)
    assert not budget.take(50)  # over the bytes left: held
    assert budget.take(40)
    assert not budget.take(0)  # over the count
    assert (2, 50) == (budget.held, budget.held_bytes)
    nothing = Budget(files=0, bytes=100)
    assert not nothing.take(0)


def torrent(**changes: object) -> TorrentState:
    base = TorrentState(
        "roger", "AB" * 20, "Album", "/dl/Album", "/dl/Album", True, True, True, 0, 1
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_torrents_whose_files_cannot_be_told_refuse_the_scan() -> None:
    assert "" == busy_reason(torrent())
    assert "" == busy_reason(torrent(base_path=""))  # closed: rtorrent has no base path
    assert "" == busy_reason(torrent(started=False, checked=0))
    assert "being hash-checked" in busy_reason(torrent(hashing=1))
    assert "not yet hash-checked" in busy_reason(torrent(checked=0))
    assert "a move under way" in busy_reason(torrent(base_path="/elsewhere/Album"))
    single = torrent(name="a.mkv", directory="/dl", base_path="/dl/a.mkv", multi_file=False)
    assert "" == busy_reason(single)
    assert "not absolute" in busy_reason(torrent(directory="./dl"))
    assert "of roger" in busy_reason(torrent(hashing=1))


def test_ages_read_as_people_write_them() -> None:
    assert ["0s", "59s", "1m", "1h", "1h 1m", "1d", "2d 3h"] == [
        human_age(s) for s in (0, 59, 60, 3600, 3660, DAY, 2 * DAY + 3 * 3600)
    ]
