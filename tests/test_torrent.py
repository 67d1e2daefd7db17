"""The field table and the conversion of raw `d.multicall2` rows."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import sys
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtorrentd.rtorrent.rows import Layout, layout, torrent_from_row, torrents_from_rows
from rtorrentd.torrent import Torrent, holding
from rtorrentd.vocabulary import FIELDS, IDENTITY, fields_for


def test_every_torrent_attribute_has_a_field() -> None:
    assert {f.name for f in dataclasses.fields(Torrent)} == set(FIELDS)


def test_a_snapshot_torrent_holds_only_its_fields_and_is_a_torrent_like_any_other() -> None:
    plan = layout(fields_for(["ratio"]))
    [held] = torrents_from_rows(plan, [_row(["ratio"], **{"d.ratio=": 1500})])
    whole = Torrent(held.hash, "x", complete=True, started=False, open=False, size=5, ratio=1.5)
    assert isinstance(held, Torrent) and held == whole and hash(held) == hash(whole)
    assert {held} == {whole} and repr(held) == repr(whole)
    assert (None, None) == (held.label, held.trackers)  # not fetched: None, as before
    # Smaller: a slot for each field fetched, none for the others.
    assert sys.getsizeof(held) < sys.getsizeof(whole) // 2
    assert held != dataclasses.replace(whole, label="tv") != whole
    with pytest.raises(dataclasses.FrozenInstanceError):
        held.label = "tv"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        held.ratio = 2.0  # type: ignore[misc]


def test_equal_ratios_are_one_float_whichever_rows_they_come_in() -> None:
    plan = layout(fields_for(["ratio"]))
    first = torrents_from_rows(plan, [_row(["ratio"], **{"d.ratio=": n}) for n in (0, 1500, 1500)])
    later = torrents_from_rows(plan, [_row(["ratio"], **{"d.ratio=": n}) for n in (1500, 99_999)])
    assert [0.0, 1.5, 1.5, 1.5, 99.999] == [t.ratio for t in (*first, *later)]
    assert first[1].ratio is first[2].ratio is later[0].ratio  # one float, not three
    assert later[1].ratio == 99_999 / 1000  # above the shared ones: its own float


def test_replace_copy_and_pickle_give_an_equal_torrent_holding_every_field() -> None:
    plan = layout(fields_for(["label"]))
    [held] = torrents_from_rows(plan, [_row(["label"], **{"d.custom1=": "tv"})])
    relabelled = dataclasses.replace(held, label="movies", size=7)
    assert ("movies", 7, held.hash) == (relabelled.label, relabelled.size, relabelled.hash)
    assert relabelled == Torrent(**{**dataclasses.asdict(held), "label": "movies", "size": 7})
    assert held == copy.copy(held) == copy.deepcopy(held) == pickle.loads(pickle.dumps(held))


def test_holding_refuses_a_name_that_is_no_field() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        holding(frozenset({"nonsense"}))


def test_identity_fields_are_always_fetched() -> None:
    names = [f.name for f in fields_for(["ratio"])]
    assert set(names) == {*IDENTITY, "ratio"}


def test_a_list_for_its_paths_alone_names_each_torrent_and_fetches_nothing_else() -> None:
    names = [f.name for f in fields_for(["path", "directory"], identity=False)]
    assert set(names) == {"hash", "name", "path", "directory"}


def test_unknown_field_is_refused() -> None:
    with pytest.raises(KeyError, match="nonsense"):
        fields_for(["nonsense"])


def test_layout_sends_each_command_once() -> None:
    plan = layout(fields_for(["path", "directory", "name"]))
    assert len(plan.commands) == len(set(plan.commands))
    assert plan.commands.count("d.directory=") == 1


def _row(plan_fields: list[str], **raw: object) -> tuple[object, ...]:
    plan = layout(fields_for(plan_fields))
    defaults: dict[str, object] = {
        "d.hash=": "AB" * 20,
        "d.name=": "x",
        "d.complete=": 1,
        "d.state=": 0,
        "d.is_open=": 0,
        "d.size_bytes=": 5,
    }
    defaults.update(raw)
    return tuple(defaults[c] for c in plan.commands)


@pytest.mark.parametrize(
    ("base", "directory", "multi", "name", "expected"),
    [
        ("/dl/a.bin", "/dl", 0, "a.bin", "/dl/a.bin"),
        ("", "/dl", 0, "a.bin", "/dl/a.bin"),
        ("/dl/album", "/dl/album", 1, "album", "/dl/album"),
        ("", "/dl/album", 1, "album", "/dl/album"),
    ],
)
def test_path_falls_back_when_base_path_is_empty(
    base: str, directory: str, multi: int, name: str, expected: str
) -> None:
    plan = layout(fields_for(["path"]))
    row = _row(
        ["path"],
        **{"d.base_path=": base, "d.directory=": directory, "d.is_multi_file=": multi},
        **{"d.name=": name},
    )
    assert expected == torrent_from_row(plan, row).path


@pytest.mark.parametrize(
    ("trackers", "expected"),
    [
        ([], None),
        ([[7, 0]], None),  # never scraped: unknown, not zero
        ([[7, 100], [3, 100]], 7),
        ([[0, 100], [9, 0]], 0),
    ],
)
def test_seeders_is_the_max_over_trackers_that_reported(
    trackers: list[list[int]], expected: int | None
) -> None:
    plan = layout(fields_for(["seeders"]))
    row = _row(["seeders"], **{"t.multicall=,t.scrape_complete=,t.scrape_time_last=": trackers})
    assert expected == torrent_from_row(plan, row).seeders


@pytest.mark.parametrize(
    ("trackers", "expected"),
    [
        ([], None),
        ([[0]], None),  # never scraped
        ([[1700000000], [0], [1700000500]], 1700000500),  # the newest figure
    ],
)
def test_scraped_is_the_newest_scrape_over_trackers(
    trackers: list[list[int]], expected: int | None
) -> None:
    plan = layout(fields_for(["scraped"]))
    row = _row(["scraped"], **{"t.multicall=,t.scrape_time_last=": trackers})
    assert expected == torrent_from_row(plan, row).scraped
    assert (expected,) == tuple(t.scraped for t in torrents_from_rows(plan, [row]))


def test_scraped_refuses_a_malformed_tracker_row() -> None:
    plan = layout(fields_for(["scraped"]))
    row = _row(["scraped"], **{"t.multicall=,t.scrape_time_last=": [["x"]]})
    with pytest.raises(TypeError, match="integer"):
        torrents_from_rows(plan, [row, row])


@pytest.mark.parametrize(
    ("addtime", "started", "loaded", "expected"),
    [("1700000000", 5, 6, 1700000000), ("", 5, 6, 5), ("junk", 0, 6, 6), ("", 0, 0, None)],
)
def test_added_prefers_custom_addtime(
    addtime: str, started: int, loaded: int, expected: int | None
) -> None:
    plan = layout(fields_for(["added"]))
    raw = {"d.custom=addtime": addtime, "d.timestamp.started=": started, "d.load_date=": loaded}
    assert expected == torrent_from_row(plan, _row(["added"], **raw)).added


@pytest.mark.parametrize(
    ("custom1", "label", "tags"),
    [
        ("", "", ()),
        ("tv", "tv", ("tv",)),
        ("My%20Label", "My Label", ("My Label",)),  # ruTorrent: PHP rawurlencode
        ("a,b%2Cc", "a,b,c", ("a", "b,c")),  # Flood, cross-seed: each tag encoded
        ("caf%C3%A9", "café", ("café",)),
        ("100%", "100%", ("100%",)),  # not an escape: kept as written
        ("a+b", "a+b", ("a+b",)),  # rawurlencode writes a space as %20, never +
        ("x, y,,x", "x, y,,x", ("x", "y")),  # typed by hand: blanks and repeats dropped
    ],
)
def test_label_and_tags_decode_d_custom1(custom1: str, label: str, tags: tuple[str, ...]) -> None:
    plan = layout(fields_for(["label", "tags"]))
    row = _row(["label", "tags"], **{"d.custom1=": custom1})
    got = torrent_from_row(plan, row)
    assert (label, tags) == (got.label, got.tags)
    assert plan.commands.count("d.custom1=") == 1


@pytest.mark.parametrize(
    ("stamp", "seedingtime", "expected"),
    [
        (1700000500, "1600000000\n", 1700000500),  # rtorrent's own time first
        (0, "1600000000\n", 1600000000),  # ruTorrent's, with execute.capture's newline
        (0, "", None),  # a missing d.custom key is ""
        (0, "0", None),
        (0, "soon", None),
        (0, "\uff11\uff12", None),  # full-width digits: not unix seconds
    ],
)
def test_finished_falls_back_to_rutorrent_seedingtime(
    stamp: int, seedingtime: str, expected: int | None
) -> None:
    plan = layout(fields_for(["finished"]))
    raw = {"d.timestamp.finished=": stamp, "d.custom=seedingtime": seedingtime}
    assert expected == torrent_from_row(plan, _row(["finished"], **raw)).finished


def test_views_and_ignored() -> None:
    plan = layout(fields_for(["views", "ignored"]))
    raw = {"d.views=": ["sonarr_imported", "x"], "d.ignore_commands=": 1}
    got = torrent_from_row(plan, _row(["views", "ignored"], **raw))
    assert (("sonarr_imported", "x"), True) == (got.views, got.ignored)
    with pytest.raises(TypeError, match="list of strings"):
        torrent_from_row(plan, _row(["views", "ignored"], **(raw | {"d.views=": "x"})))


def test_ratio_is_divided_by_1000_and_trackers_are_host_names() -> None:
    plan = layout(fields_for(["ratio", "trackers"]))
    raw = {
        "d.ratio=": 1500,
        "t.multicall=,t.url=": [
            ["http://a.example:80/ann"],
            ["udp://b.example/x"],
            ["http://a.example/y"],
        ],
    }
    t = torrent_from_row(plan, _row(["ratio", "trackers"], **raw))
    assert (1.5, ("a.example", "b.example")) == (t.ratio, t.trackers)


def test_malformed_row_raises() -> None:
    plan = layout(fields_for([]))
    with pytest.raises(ValueError, match="expected 6 values"):
        torrent_from_row(plan, ("x",))
    with pytest.raises(TypeError):
        torrent_from_row(plan, (1, "x", 1, 0, 0, 5))


# --- whole replies, column by column ---------------------------------------------

ALL = [f.name for f in FIELDS.values()]
TRACKERS = st.lists(st.lists(st.integers(0, 9), min_size=2, max_size=2), max_size=3)
RAW: dict[str, st.SearchStrategy[object]] = {
    "d.custom=addtime": st.sampled_from(["", "1700000000", "junk"]),
    "d.custom=seedingtime": st.sampled_from(["", "1700000000\n", "junk"]),
    "d.custom1=": st.sampled_from(["", "tv", "My%20Label", "a,b%2Cc", "100%"]),
    "d.views=": st.lists(st.sampled_from(["sonarr_imported", "main"]), max_size=2),
    "t.multicall=,t.scrape_complete=,t.scrape_time_last=": TRACKERS,
    "t.multicall=,t.scrape_incomplete=,t.scrape_time_last=": TRACKERS,
    "t.multicall=,t.scrape_time_last=": st.lists(
        st.lists(st.integers(0, 9), min_size=1, max_size=1), max_size=3
    ),
    "t.multicall=,t.url=": st.lists(
        st.sampled_from([["http://a.example/x"], ["udp://b.example:6969"]]).map(list), max_size=2
    ),
}
TEXT_COMMANDS = {
    "d.custom=rtorrentd.times",
    "d.hash=",
    "d.name=",
    "d.directory=",
    "d.base_path=",
    "d.message=",
    "d.throttle_name=",
}


def raw_value(command: str) -> st.SearchStrategy[object]:
    if command in RAW:
        return RAW[command]
    if command in TEXT_COMMANDS:
        return st.sampled_from(["", "x", "/dl/a b"])
    return st.integers(-1, 3000)


def reference(plan: Layout, row: Sequence[object]) -> Torrent:
    """One row converted field by field through the table, built by the constructor."""
    values = {
        field.name: field.convert([row[i] for i in slots])
        for field, slots in zip(plan.fields, plan.positions, strict=True)
    }
    return Torrent(**values)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.sets(st.sampled_from(ALL)), st.data())
def test_a_reply_converts_as_each_row_would_through_the_table(
    names: set[str], data: st.DataObject
) -> None:
    plan = layout(fields_for(names))
    row = st.tuples(*map(raw_value, plan.commands)).map(list)
    rows = data.draw(st.lists(row, max_size=8))
    expected = tuple(reference(plan, r) for r in rows)
    actual = torrents_from_rows(plan, rows)
    assert expected == actual
    for torrent in actual:
        with pytest.raises(dataclasses.FrozenInstanceError):
            torrent.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("bad_row", "error", "match"),
    [
        pytest.param(("AB" * 20, "y", 1, 0, 0), ValueError, "expected 6 values", id="short"),
        pytest.param(("AB" * 20, "y", True, 0, 0, 5), TypeError, "integer", id="bool for int"),
        pytest.param(("AB" * 20, 7, 1, 0, 0, 5), TypeError, "string", id="int for text"),
        pytest.param("AB", TypeError, "row of values", id="not a row"),
    ],
)
def test_one_malformed_row_fails_the_reply(bad_row: object, error: type, match: str) -> None:
    plan = layout(fields_for([]))
    good = ("AB" * 20, "x", 1, 0, 0, 5)
    with pytest.raises(error, match=match):
        torrents_from_rows(plan, [good, bad_row, good])


def test_an_empty_reply_has_no_torrents() -> None:
    assert () == torrents_from_rows(layout(fields_for(["ratio"])), [])


def test_torrent_has_no_post_init_that_building_by_columns_would_skip() -> None:
    # torrents_from_rows fills the slots of object.__new__(Torrent) directly.
    assert not hasattr(Torrent, "__post_init__")


def test_equal_directories_are_one_object() -> None:
    # Decoders make a str per row; 100,000 torrents in a few directories keep a few.
    plan = layout(fields_for(["directory", "message"]))
    texts = [("/dl/", "tv", "gone"), ("/dl/", "tv", ""), ("/dl/", "films", "gone")] * 2
    rows = [
        _row(["directory", "message"], **{"d.directory=": d + p, "d.message=": "".join(m)})
        for d, p, m in texts
    ]
    torrents = torrents_from_rows(plan, rows)
    assert ["/dl/tv", "/dl/tv", "/dl/films"] * 2 == [t.directory for t in torrents]
    assert ["gone", "", "gone"] * 2 == [t.message for t in torrents]
    assert torrents[0].directory is torrents[1].directory is torrents[4].directory
    assert torrents[0].message is torrents[2].message is torrents[5].message
