"""When the snapshot goes over JSON-RPC: the pure choice (the integration side is in
test_client_json)."""

from __future__ import annotations

from rtorrentd.errors import RpcFault
from rtorrentd.rtorrent.dialect import parse_version
from rtorrentd.rtorrent.wire import XML_AFTER_NOT_UTF8, JsonChoice, is_json_disabled

OLD, NEW = parse_version("0.9.8"), parse_version("0.16.17")


def choices(choice: JsonChoice, snapshots: int) -> list[bool]:
    """Whether each of the next `snapshots` goes over JSON, each taken as chosen."""
    made = []
    for _ in range(snapshots):
        made.append(choice.use_json(NEW))
        if not made[-1]:
            choice = choice.took_xml()
    return made


def test_json_where_the_version_has_it() -> None:
    assert (False, True) == (JsonChoice().use_json(OLD), JsonChoice().use_json(NEW))


def test_after_a_name_that_is_not_utf8_xml_for_a_while_then_json_again() -> None:
    made = choices(JsonChoice().not_utf8(), XML_AFTER_NOT_UTF8 + 2)
    assert [False] * XML_AFTER_NOT_UTF8 + [True, True] == made
    assert XML_AFTER_NOT_UTF8 > 1  # else every poll would pay twice


def test_turned_off_stays_off() -> None:
    off = JsonChoice().turned_off("JSON-RPC not supported")
    assert [False] * 100 == choices(off, 100)
    assert not off.took_xml().not_utf8().took_xml().use_json(NEW)


def test_json_turned_off_in_rtorrent_is_recognised() -> None:
    assert is_json_disabled(RpcFault(-32601, "JSON-RPC not supported"))
    assert not is_json_disabled(RpcFault(-32601, "method not found: d.multicall"))
