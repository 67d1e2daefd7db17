"""protocol.jsonrpc: encode a call, decode a reply, against rtorrent 0.16's recorded JSON-RPC.

The recorded replies (tests/data/recorded/tinyxml2-0.16, the same in both
builds) are also checked against the XML-RPC replies of the same calls.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtorrentd.errors import JsonReplyNotUtf8, MalformedReply, RpcFault
from rtorrentd.protocol import jsonrpc
from rtorrentd.protocol.xml_decode import MAX_DEPTH
from rtorrentd.protocol.xmlrpc import decode_response as decode_xml

RECORDED = Path(__file__).parent / "data" / "recorded" / "tinyxml2-0.16"


def recorded(name: str) -> bytes:
    raw = (RECORDED / name).read_bytes()
    return gzip.decompress(raw) if name.endswith(".gz") else raw


def reply(value: object, request_id: object = 1) -> bytes:
    """A reply as rtorrent writes it: compact, keys sorted, non-ASCII as it is."""
    body = {"id": request_id, "jsonrpc": "2.0", "result": value}
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def error(code: int, message: str, request_id: object = 1) -> bytes:
    body = {"error": {"code": code, "message": message}, "id": request_id, "jsonrpc": "2.0"}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# ---------------------------------------------------------------------------
# Recorded replies
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "json_d.multicall2_full_without_latin1",
        "json_d.multicall2_hash",
        "json_d.multicall2_full_with_latin1",
        "json_fault_unknown_method",
    ],
)
def test_encode_call_is_the_recorded_request(name: str) -> None:
    request = json.loads(recorded(f"{name}.req.json"))
    encoded = jsonrpc.encode_call(request["method"], request["params"], request["id"])
    assert request == json.loads(encoded)


def test_recorded_reply_equals_the_xml_one() -> None:
    rows = jsonrpc.decode_response(recorded("json_d.multicall2_hash.json"))
    assert decode_xml(recorded("d.multicall2_hash.xml")) == rows
    assert len(rows) == 22  # type: ignore[arg-type]


def test_recorded_full_reply_equals_the_xml_one_but_keeps_cr() -> None:
    rows = jsonrpc.decode_response(recorded("json_d.multicall2_full_without_latin1.json"))
    xml_rows = decode_xml(recorded("d.multicall2_full_without_latin1.xml"))
    assert isinstance(rows, list)
    assert isinstance(xml_rows, list)
    assert len(rows) == len(xml_rows) == 21
    cr = [row for row in rows if "\r" in row[1]]
    # XML turns the CR of a name into LF (XML line ends); JSON keeps it.
    assert [["ws\ttab\rcr\nlf.bin"]] == [[row[1]] for row in cr]
    assert [json.loads(json.dumps(row).replace("\\r", "\\n")) for row in rows] == xml_rows


def test_recorded_1k_reply_equals_the_xml_one() -> None:
    rows = jsonrpc.decode_response(recorded("1k_json_d.multicall2_full.json.gz"))
    assert decode_xml(recorded("1k_d.multicall2_full.xml.gz")) == rows


def test_recorded_invalid_utf8_error_is_its_own_exception() -> None:
    # One latin-1 name hides every torrent: the client must ask over XML-RPC.
    with pytest.raises(JsonReplyNotUtf8) as caught:
        jsonrpc.decode_response(recorded("json_d.multicall2_full_with_latin1.json"))
    assert not isinstance(caught.value, RpcFault)
    assert "invalid UTF-8 byte at index 4" in caught.value.message


def test_recorded_unknown_method_is_a_fault() -> None:
    with pytest.raises(RpcFault) as caught:
        jsonrpc.decode_response(recorded("json_fault_unknown_method.json"))
    assert (-32601, "method not found: no.such.method") == (
        caught.value.code,
        caught.value.message,
    )


def xml_reply(value: object, nl: bytes) -> bytes:
    """The same reply over XML-RPC, as xmlrpc-c (`nl` CRLF) or tinyxml2 writes it."""

    def write(item: object) -> bytes:
        if isinstance(item, int):
            return b"<value><i8>%d</i8></value>" % item + nl
        if isinstance(item, str):
            text = item.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            return b"<value><string>" + text.encode() + b"</string></value>" + nl
        assert isinstance(item, list)
        if not item and not nl:
            return b"<value><array><data/></array></value>"
        items = b"".join(map(write, item))
        return b"<value><array><data>" + nl + items + b"</data></array></value>" + nl

    declaration = b'<?xml version="1.0" encoding="UTF-8"?>' if nl else b'<?xml version="1.0"?>'
    body = write(value).removesuffix(nl)
    return (
        declaration + nl + b"<methodResponse>" + nl + b"<params>" + nl + b"<param>"
        + body + b"</param>" + nl + b"</params>" + nl + b"</methodResponse>" + nl
    )  # fmt: skip


# Text both protocols carry alike: XML has no C0 controls but TAB and LF, and
# turns CR into LF.
xml_text = st.text(
    st.characters(
        exclude_categories=["Cs"],
        exclude_characters=[chr(c) for c in range(32) if chr(c) not in "\t\n"]
        + ["\ufffe", "\uffff"],
    )
)
i64 = st.integers(-(2**63), 2**63 - 1)
field = st.sampled_from(
    [xml_text, i64, st.lists(st.lists(i64 | xml_text, min_size=1, max_size=2), max_size=3)]
)
rows = st.lists(field, min_size=1, max_size=5).flatmap(
    lambda fields: st.lists(st.tuples(*fields).map(list), min_size=1, max_size=5)
)


@pytest.mark.parametrize("nl", [b"\r\n", b""], ids=["xmlrpc-c", "tinyxml2"])
@settings(max_examples=150, deadline=None)
@given(value=rows)
def test_json_and_xml_replies_decode_alike(nl: bytes, value: list[object]) -> None:
    assert decode_xml(xml_reply(value, nl)) == jsonrpc.decode_response(reply(value)) == value


# ---------------------------------------------------------------------------
# encode_call, encode_batch
# ---------------------------------------------------------------------------


def test_encode_call_writes_compact_utf8() -> None:
    encoded = jsonrpc.encode_call("d.custom1.set", ["A" * 40, "Séries \x01 🎬"], 7)
    assert (
        b'{"jsonrpc":"2.0","id":7,"method":"d.custom1.set","params":["'
        + b"A" * 40
        + '","Séries \\u0001 🎬"]}'.encode()
    ) == encoded


@pytest.mark.parametrize(
    ("value", "exception"),
    [
        (2**63, ValueError),
        (-(2**63) - 1, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("lone \ud800", ValueError),
        (b"raw", TypeError),
        (None, TypeError),
        ({1: "x"}, TypeError),
        (object(), TypeError),
    ],
)
def test_encode_call_refuses(value: object, exception: type[Exception]) -> None:
    with pytest.raises(exception):
        jsonrpc.encode_call("m", [value])


def test_encode_call_refuses_deep_nesting_and_cycles() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        jsonrpc.encode_call("m", [deep])
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nested deeper"):
        jsonrpc.encode_call("m", [cycle])


def test_encode_batch_numbers_the_calls() -> None:
    batch = json.loads(jsonrpc.encode_batch([("d.stop", ["H"]), ("d.close", ["H"])]))
    assert [(1, "d.stop"), (2, "d.close")] == [(call["id"], call["method"]) for call in batch]
    with pytest.raises(ValueError):
        jsonrpc.encode_batch([])


json_text = st.text(st.characters(exclude_categories=["Cs"]))
json_values = st.recursive(
    st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=4), json_text)
def test_encode_call_round_trips(params: list[object], method: str) -> None:
    call = json.loads(jsonrpc.encode_call(method, params))
    assert {"jsonrpc": "2.0", "id": 1, "method": method, "params": params} == call


# ---------------------------------------------------------------------------
# decode_response, decode_batch
# ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_decode_response_gives_the_result(value: object) -> None:
    assert value == jsonrpc.decode_response(reply(value))


def test_decode_response_checks_the_id() -> None:
    assert 5 == jsonrpc.decode_response(reply(5, 3), request_id=3)
    with pytest.raises(MalformedReply, match="id 3, not 1"):
        jsonrpc.decode_response(reply(5, 3))


def test_error_with_null_id_is_still_raised() -> None:
    with pytest.raises(RpcFault, match="-32602"):
        jsonrpc.decode_response(error(-32602, "invalid parameters: info-hash not found", None))


def test_other_parse_error_is_a_fault_not_the_utf8_one() -> None:
    with pytest.raises(RpcFault) as caught:
        jsonrpc.decode_response(error(-32700, "[json.exception.parse_error.101] syntax", None))
    assert -32700 == caught.value.code


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"text"',
        b'{"id":1,"result":1}',
        b'{"id":1,"jsonrpc":"1.0","result":1}',
        b'{"id":1,"jsonrpc":"2.0"}',
        b'{"error":{"code":1,"message":"x"},"id":1,"jsonrpc":"2.0","result":1}',
        b'{"error":"boom","id":1,"jsonrpc":"2.0"}',
        b'{"error":{"code":"1","message":"x"},"id":1,"jsonrpc":"2.0"}',
        b'{"error":{"code":true,"message":"x"},"id":1,"jsonrpc":"2.0"}',
        b'{"error":{"code":1},"id":1,"jsonrpc":"2.0"}',
        b'{"id":1,"jsonrpc":"2.0","result":"caf\xe9"}',
        b'{"id":1,"jsonrpc":"2.0","result":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        reply([1, 2])[:-5],
    ],
)
def test_malformed_reply(body: bytes) -> None:
    with pytest.raises(MalformedReply):
        jsonrpc.decode_response(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_garbage_raises_only_malformed_reply(garbage: bytes) -> None:
    try:
        jsonrpc.decode_response(garbage)
    except (MalformedReply, RpcFault, JsonReplyNotUtf8):
        return


def test_decode_batch_in_call_order_with_errors_in_place() -> None:
    body = b"[" + error(-32602, "bad hash", 2) + b"," + reply(["x"], 1) + b"]"
    first, second = jsonrpc.decode_batch(body, 2)
    assert ["x"] == first
    assert isinstance(second, RpcFault)
    assert (-32602, "bad hash") == (second.code, second.message)


def test_decode_batch_raises_an_error_for_the_whole_batch() -> None:
    with pytest.raises(JsonReplyNotUtf8):
        jsonrpc.decode_batch(recorded("json_d.multicall2_full_with_latin1.json"), 2)


@pytest.mark.parametrize(
    "body",
    [
        reply(1),
        b"[" + reply(1, 1) + b"]",
        b"[" + reply(1, 1) + b"," + reply(2, 1) + b"]",
        b"[" + reply(1, 1) + b"," + reply(2, 3) + b"]",
        b"[" + reply(1, 1) + b",2]",
    ],
)
def test_decode_batch_malformed(body: bytes) -> None:
    with pytest.raises(MalformedReply):
        jsonrpc.decode_batch(body, 2)
