"""The field table and the conversion of raw `d.multicall2` rows."""

from __future__ import annotations

import dataclasses

import pytest

from rtorrentd.torrent import FIELDS, IDENTITY, Torrent, fields_for, layout, torrent_from_row


def test_every_torrent_attribute_has_a_field() -> None:
    assert {f.name for f in dataclasses.fields(Torrent)} == set(FIELDS)


def test_identity_fields_are_always_fetched() -> None:
    names = [f.name for f in fields_for(["ratio"])]
    assert set(names) == {*IDENTITY, "ratio"}


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
    ("addtime", "started", "loaded", "expected"),
    [("1700000000", 5, 6, 1700000000), ("", 5, 6, 5), ("junk", 0, 6, 6), ("", 0, 0, None)],
)
def test_added_prefers_custom_addtime(
    addtime: str, started: int, loaded: int, expected: int | None
) -> None:
    plan = layout(fields_for(["added"]))
    raw = {"d.custom=addtime": addtime, "d.timestamp.started=": started, "d.load_date=": loaded}
    assert expected == torrent_from_row(plan, _row(["added"], **raw)).added


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
