"""Free-space policies and the expensive facts, in the pure engine: hand-made
snapshots, disk figures and file facts, a fixed `now`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from oracle import build_facts

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Action, Config
from rtorrentd.engine.facts import FileFact, Freeing, hardlinked, listers, overlapping, shared
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import Decision, Plan, Step, files_wanted, plan, recheck
from rtorrentd.engine.space import Disk, Filesystem
from rtorrentd.service.report import format_plan_table
from rtorrentd.torrent import Torrent

NOW = 1_700_000_000.0
DAY = 86400
GIB = 1024**3
DATA, MEDIA = 1, 2  # devices


def config(*rules: str, space: Sequence[str] = (), max_deletes: int = 100) -> Config:
    """`rules` and `space` are TOML bodies of [[rule]] and [[space]] tables."""
    text = (
        '[rtorrent]\nurl = "scgi:///run/rtorrent.sock"\n'
        f'[safety]\nallowed_roots = ["/data", "/media"]\nmax_deletes_per_poll = {max_deletes}\n'
        "max_delete_fraction = 1.0\n"
    )
    text += "".join(f"[[rule]]\n{body}\n" for body in rules)
    text += "".join(f"[[space]]\n{body}\n" for body in space)
    return parse_config(text, "test.toml")


def policy(
    path: str = "/data",
    min_free: str = "78GiB",
    target: str = "80GiB",
    candidates: str = "complete",
    order: str = "seeders desc",
) -> str:
    return (
        f'path = "{path}"\nmin_free = "{min_free}"\ntarget_free = "{target}"\n'
        f'candidates = \'{candidates}\'\norder = "{order}"\naction = "delete"'
    )


def rule(name: str, when: str, action: str) -> str:
    return f'name = "{name}"\nwhen = \'{when}\'\naction = "{action}"'


def torrent(n: int, directory: str = "/data", **fields: Any) -> Torrent:
    defaults: dict[str, Any] = {
        "complete": True,
        "started": True,
        "open": True,
        "size": 10 * GIB,
        "seeders": 0,
        "label": "",
    }
    path = f"{directory}/t{n}"
    return Torrent(hash=f"{n:040X}", name=f"t{n}", directory=path, path=path, **(defaults | fields))


def own_files(t: Torrent, size: int | None = None, links: int = 1) -> tuple[FileFact, ...]:
    """One regular file of the torrent's size, its own inode."""
    inode = int(t.hash, 16)
    nbytes = t.size if size is None else size
    return (FileFact(f"{t.path}/f.bin", nbytes or 0, (0, inode), links, regular=True),)


def files_of(
    *torrents: Torrent, **overrides: tuple[FileFact, ...]
) -> dict[str, tuple[FileFact, ...]]:
    found = {t.hash: own_files(t) for t in torrents}
    return found | {f"{int(k[1:]):040X}": v for k, v in overrides.items()}


def disk(torrents: Sequence[Torrent], **free: int) -> Disk:
    """Free bytes by mount name (`data`, `media`); each torrent on its directory's."""
    filesystems = {
        f"/{name}": Filesystem(nbytes, {"data": DATA, "media": MEDIA}[name])
        for name, nbytes in free.items()
    }
    devices = {t.hash: DATA if (t.path or "").startswith("/data") else MEDIA for t in torrents}
    return Disk(filesystems, devices)


def run(
    torrents: Sequence[Torrent],
    cfg: Config,
    measured: Disk,
    files: Mapping[str, tuple[FileFact, ...]] | None = None,
) -> Plan:
    memory = remember(Memory(), torrents, NOW)
    known = files if files is not None else files_of(*torrents)
    return plan(torrents, cfg, NOW, memory, disk=measured, files=known)


def names(steps: Sequence[Step]) -> list[str]:
    return [s.name for s in steps]


# --- picking in order, stopping at the target ---------------------------------------


def test_enough_free_space_does_nothing() -> None:
    ts = [torrent(1), torrent(2)]
    result = run(ts, config(space=[policy()]), disk(ts, data=79 * GIB))
    assert ((), ()) == (result.steps, result.space)


def test_candidates_go_in_order_and_the_policy_stops_at_the_target() -> None:
    ts = [torrent(1, seeders=5), torrent(2, seeders=40), torrent(3, seeders=1), torrent(4)]
    result = run(ts, config(space=[policy()]), disk(ts, data=61 * GIB))
    assert ["t2", "t1"] == names(result.steps)  # 61 + 10 + 10 = 81 GiB >= 80 GiB
    assert {"space /data"} == {s.rule for s in result.steps}
    [outcome] = result.space
    assert (61 * GIB, 2, 81 * GIB, False) == (
        outcome.free,
        outcome.deletions,
        outcome.projected,
        outcome.short,
    )
    assert ("frees", 10 * GIB) == result.steps[0].why[-1]


def test_order_keys_break_ties_and_unknown_values_go_last() -> None:
    ts = [
        torrent(1, seeders=None, ratio=9.0),
        torrent(2, seeders=3, ratio=0.5),
        torrent(3, seeders=3, ratio=2.0),
    ]
    cfg = config(space=[policy(order="seeders desc, ratio desc", target="100GiB")])
    result = run(ts, cfg, disk(ts, data=10 * GIB))
    assert ["t3", "t2", "t1"] == names(result.steps)
    assert result.space[0].short


def test_only_candidates_are_deleted() -> None:
    ts = [torrent(1, seeders=9, complete=False), torrent(2, seeders=1)]
    result = run(ts, config(space=[policy()]), disk(ts, data=40 * GIB))
    assert ["t2"] == names(result.steps)


# --- bytes really freed ---------------------------------------------------------------


def test_a_hard_linked_candidate_frees_nothing_and_is_passed_over() -> None:
    ts = [torrent(1, seeders=9), torrent(2, seeders=1)]
    files = files_of(*ts, t1=own_files(ts[0], links=2))
    result = run(ts, config(space=[policy()]), disk(ts, data=75 * GIB), files)
    assert ["t2"] == names(result.steps)
    assert 1 == result.space[0].passed_over


def test_only_the_files_without_another_link_count() -> None:
    t1, t2 = torrent(1, seeders=9), torrent(2, seeders=1)
    linked = FileFact("/data/t1/archived.bin", 8 * GIB, (0, 100), 2, regular=True)
    alone = FileFact("/data/t1/alone.bin", 2 * GIB, (0, 101), 1, regular=True)
    files = files_of(t1, t2, t1=(linked, alone))
    result = run([t1, t2], config(space=[policy()]), disk([t1, t2], data=70 * GIB), files)
    assert ["t1", "t2"] == names(result.steps)  # 70 + 2 + 10
    assert ("frees", 2 * GIB) == result.steps[0].why[-1]


def test_a_file_shared_with_a_torrent_that_stays_frees_nothing() -> None:
    kept, t1, t2 = torrent(1, label="keep"), torrent(2, seeders=9), torrent(3, seeders=1)
    same = FileFact("/data/t1/f.bin", 10 * GIB, (0, 1), 1, regular=True)
    files = files_of(kept, t1, t2, t2=(same,))  # t2 lists kept's file: cross-seeding
    cfg = config(rule("pinned", 'label == "keep"', "keep"), space=[policy()])
    result = run([kept, t1, t2], cfg, disk([kept, t1, t2], data=75 * GIB), files)
    assert ["t3"] == names(result.steps)
    assert 1 == result.space[0].passed_over


def test_a_file_listed_by_two_deleted_torrents_is_counted_once() -> None:
    t1, t2 = torrent(1, seeders=9), torrent(2, seeders=1)
    same = FileFact("/data/same.bin", 10 * GIB, (0, 7), 1, regular=True)
    mine = FileFact("/data/t1/mine.bin", 1 * GIB, (0, 8), 1, regular=True)
    files = {t1.hash: (same, mine), t2.hash: (same,)}
    cfg = config(rule("done", 'name == "t2"', "delete"), space=[policy()])
    result = run([t1, t2], cfg, disk([t1, t2], data=60 * GIB), files)
    # The rule deletes t2, which frees nothing while t1 lists the file; deleting
    # t1 as well frees the shared file once, plus its own.
    assert [("t2", "done"), ("t1", "space /data")] == [(s.name, s.rule) for s in result.steps]
    assert (0, 71 * GIB) == (result.space[0].rule_freed, result.space[0].projected)


# --- several filesystems ----------------------------------------------------------------


def test_each_policy_deletes_on_its_own_filesystem() -> None:
    ts = [torrent(1, seeders=9), torrent(2, "/media", seeders=8), torrent(3, "/media")]
    policies = [policy(), policy("/media", min_free="10GiB", target="25GiB")]
    result = run(ts, config(space=policies), disk(ts, data=75 * GIB, media=5 * GIB))
    assert [("t1", "space /data"), ("t2", "space /media"), ("t3", "space /media")] == [
        (s.name, s.rule) for s in result.steps
    ]
    assert [85 * GIB, 25 * GIB] == [o.projected for o in result.space]


def test_a_filesystem_with_room_is_left_alone_while_another_is_low() -> None:
    ts = [torrent(1, seeders=9), torrent(2, "/media")]
    policies = [policy(), policy("/media", min_free="10GiB", target="25GiB")]
    result = run(ts, config(space=policies), disk(ts, data=75 * GIB, media=50 * GIB))
    assert ["t1"] == names(result.steps)
    assert ["/data"] == [o.path for o in result.space]


# --- rules come first ---------------------------------------------------------------------


def test_keep_protects_from_space_policies() -> None:
    ts = [torrent(1, seeders=9, label="keep"), torrent(2, seeders=1)]
    cfg = config(rule("pinned", 'label == "keep"', "keep"), space=[policy()])
    assert ["t2"] == names(run(ts, cfg, disk(ts, data=75 * GIB)).steps)


def test_a_torrent_a_rule_stops_is_no_space_candidate() -> None:
    ts = [torrent(1, seeders=9, label="stop"), torrent(2, seeders=1)]
    cfg = config(rule("halt", 'label == "stop"', "stop"), space=[policy()])
    result = run(ts, cfg, disk(ts, data=75 * GIB))
    assert [("t1", Action.STOP), ("t2", Action.DELETE)] == [
        (s.name, s.action) for s in result.steps
    ]


def test_rule_deletions_count_as_freed() -> None:
    ts = [torrent(1, seeders=9), torrent(2, label="old", size=40 * GIB)]
    cfg = config(rule("old", 'label == "old"', "delete"), space=[policy()])
    result = run(ts, cfg, disk(ts, data=45 * GIB))
    assert [("t2", "old")] == [(s.name, s.rule) for s in result.steps]
    assert (40 * GIB, 0, 85 * GIB) == (
        result.space[0].rule_freed,
        result.space[0].deletions,
        result.space[0].projected,
    )


# --- safety valves ------------------------------------------------------------------------


def test_the_per_poll_valve_holds_space_deletions_after_rule_deletions() -> None:
    ts = [torrent(1, label="old", size=GIB), torrent(2, seeders=9), torrent(3, seeders=1)]
    cfg = config(rule("old", 'label == "old"', "delete"), space=[policy()], max_deletes=2)
    result = run(ts, cfg, disk(ts, data=20 * GIB))
    assert (["t1", "t2"], ["t3"]) == (names(result.steps), names(result.held))
    assert "max_deletes_per_poll = 2" in result.notes[0]


def test_the_fraction_valve_holds_space_deletions_too() -> None:
    ts = [torrent(1, seeders=9), torrent(2, seeders=1)]
    text = policy()
    cfg = config(space=[text])
    strict = parse_config(
        '[rtorrent]\nurl = "scgi:///run/rtorrent.sock"\n[safety]\nallowed_roots = ["/data"]\n'
        f"max_delete_fraction = 0.5\n[[space]]\n{text}\n",
        "test.toml",
    )
    assert 2 == len(run(ts, cfg, disk(ts, data=1 * GIB)).steps)
    result = run(ts, strict, disk(ts, data=1 * GIB))
    assert ((), 2) == (result.steps, len(result.held))


# --- two phases: which files are wanted ---------------------------------------------------


def test_rules_without_expensive_names_want_no_files() -> None:
    ts = [torrent(1), torrent(2)]
    cfg = config(rule("r", "ratio >= 2", "delete"))
    wanted = files_wanted(ts, cfg, NOW, remember(Memory(), ts, NOW))
    assert () == wanted.hashes


def test_only_torrents_that_cheaper_conditions_leave_in_question_want_files() -> None:
    ts = [torrent(1, label="tv"), torrent(2, label="music"), torrent(3, label="tv")]
    cfg = config(rule("archived", 'label == "tv" and hardlinked', "delete"))
    memory = remember(Memory(), ts, NOW)
    wanted = files_wanted(ts, cfg, NOW, memory)
    assert ((ts[0].hash, ts[2].hash), False) == (wanted.hashes, wanted.sharers)
    files = {ts[0].hash: own_files(ts[0], links=2), ts[2].hash: own_files(ts[2])}
    assert () == files_wanted(ts, cfg, NOW, memory, files=files).hashes
    result = plan(ts, cfg, NOW, memory, files=files)
    assert ["t1"] == names(result.steps)


def test_an_earlier_rule_that_decides_spares_the_file_reads() -> None:
    ts = [torrent(1, label="keep"), torrent(2)]
    cfg = config(rule("pinned", 'label == "keep"', "keep"), rule("s", "not shared", "delete"))
    wanted = files_wanted(ts, cfg, NOW, remember(Memory(), ts, NOW))
    assert ((ts[1].hash,), True) == (wanted.hashes, wanted.sharers)


def test_without_its_files_an_unsure_torrent_gets_no_step_from_any_rule() -> None:
    ts = [torrent(1)]
    cfg = config(rule("s", "not hardlinked", "delete"), rule("all", "complete", "stop"))
    result = plan(ts, cfg, NOW, remember(Memory(), ts, NOW))
    assert ((), 1) == (result.steps, result.kept)


def test_space_wants_candidates_in_order_a_batch_at_a_time() -> None:
    ts = [torrent(n, seeders=n) for n in range(1, 6)]
    cfg = config(space=[policy()])
    memory = remember(Memory(), ts, NOW)
    measured = disk(ts, data=65 * GIB)
    first = files_wanted(ts, cfg, NOW, memory, disk=measured, limit=2)
    assert ([ts[4].hash, ts[3].hash], True) == (list(first.hashes), first.sharers)
    known = files_of(ts[4], ts[3])
    assert () == files_wanted(ts, cfg, NOW, memory, disk=measured, files=known, limit=2).hashes
    assert () == files_wanted(ts, cfg, NOW, memory, disk=disk(ts, data=79 * GIB)).hashes


# --- re-checking a space step ---------------------------------------------------------


def test_a_space_step_is_rechecked_against_candidates_and_rules() -> None:
    t = torrent(1, seeders=9)
    cfg = config(rule("pinned", 'label == "keep"', "keep"), space=[policy()])
    memory = remember(Memory(), [t], NOW)
    [step] = run([t], cfg, disk([t], data=75 * GIB)).steps
    assert recheck(t, step, cfg, NOW, memory)
    assert not recheck(torrent(1, complete=False), step, cfg, NOW, memory)
    assert not recheck(torrent(1, label="keep"), step, cfg, NOW, memory)
    other = Step(t.hash, t.name, Decision(Action.DELETE, "space /elsewhere", ()), (), t.size)
    assert not recheck(t, other, cfg, NOW, memory)


def test_the_plan_table_shows_the_projection() -> None:
    ts = [torrent(1, seeders=9), torrent(2, seeders=1)]
    table = format_plan_table(run(ts, config(space=[policy()]), disk(ts, data=int(41.2 * GIB))))
    assert "space /data: 41.2 GiB free < 78.0 GiB: 2 deletions → 61.2 GiB" in table
    assert "short of 80.0 GiB: no more candidates" in table
    assert "space /data" in table.splitlines()[1]


# --- the facts themselves ---------------------------------------------------------------


def test_new_derived_names() -> None:
    t = Torrent(hash="A" * 40, name="a", scraped=int(NOW) - 3600, uploaded=100)
    memory = remember(Memory(), [t], NOW - 2 * DAY)
    memory = remember(memory, [Torrent(hash="A" * 40, name="a", uploaded=350)], NOW)
    [facts] = build_facts([t], frozenset({"scrape_age", "uploaded_recent"}), NOW, memory)
    assert {"scrape_age": 3600.0, "uploaded_recent": 250} == facts
    [unknown] = build_facts([t], frozenset({"hardlinked", "shared"}), NOW, memory)
    assert {"hardlinked": None, "shared": None} == unknown


def test_hardlinked_needs_every_file_linked_elsewhere() -> None:
    linked = FileFact("/d/a", 5, (0, 1), 2, regular=True)
    alone = FileFact("/d/b", 5, (0, 2), 1, regular=True)
    link = FileFact("/d/c", 5, (0, 3), 1, regular=False)
    assert (True, False, False, False) == (
        hardlinked((linked,)),
        hardlinked((linked, alone)),
        hardlinked((link,)),
        hardlinked(()),
    )


def test_shared_means_another_torrent_lists_the_same_path() -> None:
    a = (FileFact("/d/x/1", 5, (0, 1), 1, regular=True),)
    b = (FileFact("/d/x/1", 5, (0, 1), 1, regular=True),)
    c = (FileFact("/d/y/1", 5, (0, 1), 2, regular=True),)  # a hard link is not sharing
    by_path = listers({"A": a, "B": b, "C": c})
    assert (True, True, False) == (shared(a, by_path), shared(b, by_path), shared(c, by_path))


def test_freeing_counts_an_inode_once_all_its_names_go() -> None:
    one = FileFact("/d/a/f", 7, (0, 1), 2, regular=True)
    two = FileFact("/d/b/f", 7, (0, 1), 2, regular=True)  # the same inode, two names
    files = {"A": (one,), "B": (two,)}
    freeing = Freeing(files, listers(files))
    assert (0, 0, 7) == (freeing.gain("A"), freeing.add("A"), freeing.add("B"))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ({"A"}, {"A", "B", "C"}),  # /dl/x: its parent /dl and its child /dl/x/y
        ({"D"}, {"D", "B"}),  # /dl/xy is inside /dl only, not beside /dl/x
        ({"E"}, {"E"}),
    ],
)
def test_overlapping_paths_by_components(wanted: set[str], expected: set[str]) -> None:
    paths = {"A": "/dl/x", "B": "/dl", "C": "/dl/x/y", "D": "/dl/xy", "E": "/other/x"}
    assert expected == overlapping(paths, wanted)


def test_space_candidates_that_need_their_files_are_read_in_order_too() -> None:
    ts = [torrent(n, seeders=n) for n in range(1, 6)]
    cfg = config(space=[policy(candidates="complete and not hardlinked")])
    memory = remember(Memory(), ts, NOW)
    measured = disk(ts, data=65 * GIB)
    first = files_wanted(ts, cfg, NOW, memory, disk=measured, limit=2)
    assert [ts[4].hash, ts[3].hash] == list(first.hashes)
    known = files_of(ts[4], ts[3], t5=own_files(ts[4], links=2))
    second = files_wanted(ts, cfg, NOW, memory, disk=measured, files=known, limit=4)
    # t5 is archived, so no candidate: the next batch, in order, is wanted.
    assert [ts[2].hash, ts[1].hash, ts[0].hash] == list(second.hashes)
    result = plan(ts, cfg, NOW, memory, disk=measured, files=known | files_of(ts[2]))
    assert ["t4", "t3"] == names(result.steps)
