"""SCGI framing: the request netstring out, the CGI-style reply in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtorrentd.errors import MalformedReply
from rtorrentd.protocol.scgi import (
    MAX_HEADER,
    encode_request,
    parse_parts,
    parse_reply,
    split_reply,
)

DATA = Path(__file__).parent / "data"


def rtorrent_reply(body: bytes) -> bytes:
    """A reply framed exactly as rtorrent 0.9.8 frames it."""
    head = b"Status: 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body


def split_request(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Undo the netstring by the SCGI spec: (header pairs in order, body)."""
    size, colon, rest = data.partition(b":")
    assert colon
    header, comma, body = rest[: int(size)], rest[int(size) : int(size) + 1], rest[int(size) + 1 :]
    assert comma == b","
    fields = header.split(b"\x00")
    assert fields[-1] == b""  # every name and value ends with a NUL
    return list(zip(fields[:-1:2], fields[1:-1:2], strict=True)), body


# --- requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,"),
        (b"<x/>", b"24:CONTENT_LENGTH\x004\x00SCGI\x001\x00,<x/>"),
        (b"0123456789", b"25:CONTENT_LENGTH\x0010\x00SCGI\x001\x00,0123456789"),
        (b"\x00,:\n", b"24:CONTENT_LENGTH\x004\x00SCGI\x001\x00,\x00,:\n"),
    ],
)
def test_encode_request_exact_bytes(body: bytes, expected: bytes) -> None:
    assert expected == encode_request(body)


def test_encode_request_for_a_real_call() -> None:
    body = b'<?xml version="1.0"?><methodCall><methodName>system.pid</methodName></methodCall>'
    assert encode_request(body) == b"25:CONTENT_LENGTH\x0081\x00SCGI\x001\x00," + body


@given(st.binary(max_size=3000))
def test_request_has_content_length_first_and_nothing_after_the_body(body: bytes) -> None:
    headers, rest = split_request(encode_request(body))
    assert [(b"CONTENT_LENGTH", str(len(body)).encode()), (b"SCGI", b"1")] == headers
    assert body == rest


# --- replies that parse -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "length"), [("multicall2_reply.scgi", 851), ("fault_reply.scgi", 305)]
)
def test_parse_recorded_rtorrent_reply(name: str, length: int) -> None:
    body = parse_reply((DATA / name).read_bytes())
    assert length == len(body)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert body.rstrip().endswith(b"</methodResponse>")


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        pytest.param(rtorrent_reply(b"<a/>"), b"<a/>", id="rtorrent"),
        pytest.param(rtorrent_reply(b""), b"", id="empty body"),
        pytest.param(b"Status: 200 OK\nContent-Length: 4\n\n<a/>", b"<a/>", id="bare newlines"),
        pytest.param(b"Content-Length: 4\r\n\r\n<a/>", b"<a/>", id="no status: 200"),
        pytest.param(
            b"Status: 200\r\n\r\n<a/>\r\n\r\n", b"<a/>\r\n\r\n", id="no length: to the end"
        ),
        pytest.param(b"\r\n\r\n<a/>", b"<a/>", id="no header at all"),
        pytest.param(b"status:200 OK\r\ncontent-length:  4 \r\n\r\n<a/>", b"<a/>", id="any case"),
        pytest.param(
            b"Status: 200 OK\r\nX-Odd: a:b\r\nContent-Length: 6\r\n\r\n\r\n\n\n\r\n",
            b"\r\n\n\n\r\n",
            id="newlines in body",
        ),
        pytest.param(
            b"Content-Length: 4\r\nContent-Length: 4\r\n\r\n<a/>", b"<a/>", id="repeated length"
        ),
    ],
)
def test_parse_reply(reply: bytes, body: bytes) -> None:
    assert body == parse_reply(reply)


def test_parse_reply_takes_a_bytearray() -> None:
    assert b"<a/>" == parse_reply(bytearray(rtorrent_reply(b"<a/>")))


# --- replies that do not ----------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(b"", "empty SCGI reply", id="empty"),
        pytest.param(
            b"Status: 200 OK\r\nContent-Le",
            "truncated SCGI reply: no end of header in 26 bytes: b'Status: 200 OK\\r\\nContent-Le'",
            id="header cut",
        ),
        pytest.param(
            b"x" * (MAX_HEADER + 1),
            f"not an SCGI reply: no end of header in the first {MAX_HEADER} bytes",
            id="no header end",
        ),
        pytest.param(
            b"Status: 404 Not Found\r\n\r\nnope",
            "SCGI reply has status '404 Not Found', expected 200 OK",
            id="status 404",
        ),
        pytest.param(
            b"Status: OK\r\n\r\n", "SCGI reply has status 'OK', expected 200 OK", id="status word"
        ),
        pytest.param(
            b"Status: 200 OK\r\nContent-Length: 851\r\n\r\n<?xml",
            "truncated SCGI reply: Content-Length says 851 bytes, got 5",
            id="body cut",
        ),
        pytest.param(
            rtorrent_reply(b"<a/>") + b"\n",
            "SCGI reply longer than its Content-Length: expected 4 bytes, got 5",
            id="body long",
        ),
        pytest.param(b"Content-Length: abc\r\n\r\n", "bad Content-Length 'abc'", id="length word"),
        pytest.param(b"Content-Length: -1\r\n\r\n", "bad Content-Length '-1'", id="length < 0"),
        pytest.param(b"Content-Length: 1.5\r\n\r\n", "bad Content-Length '1.5'", id="length 1.5"),
        pytest.param(b"Content-Length:\r\n\r\n", "bad Content-Length ''", id="length empty"),
        pytest.param(
            "Content-Length: \u00b2\r\n\r\n".encode("latin-1"),
            "bad Content-Length '\u00b2'",
            id="length unicode digit",
        ),
        pytest.param(
            b"Content-Length: 4\r\nContent-Length: 5\r\n\r\n<a/>",
            "conflicting Content-Length headers ['4', '5']",
            id="length twice",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n\r\n<a/>",
            "bad SCGI reply header line b'HTTP/1.1 200 OK': expected 'Name: value'",
            id="http status line",
        ),
        pytest.param(
            b"Status: 200 OK\r\n: x\r\n\r\n",
            "bad SCGI reply header line b': x'",
            id="header without name",
        ),
    ],
)
def test_malformed_reply(reply: bytes, message: str) -> None:
    with pytest.raises(MalformedReply, match=re.escape(message)):
        parse_reply(reply)


# --- knowing when the reply is complete -------------------------------------------


def reply_length(data: bytes | bytearray) -> int | None:
    """The reply's total size as `split_reply` says (None while the header is
    incomplete, or without a Content-Length)."""
    split = split_reply(data)
    return None if split is None else split[1]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", None, id="nothing yet"),
        pytest.param(b"Status: 200 OK\r\nContent-Length: 4\r\n", None, id="header not ended"),
        pytest.param(b"Status: 200 OK\r\nContent-Length: 4\r\n\r\n", 41, id="header ended"),
        pytest.param(b"Status: 200 OK\r\nContent-Length: 4\r\n\r\n<a/>", 41, id="all of it"),
        pytest.param(b"Content-Length: 4\n\n<a", 23, id="bare newlines"),
        pytest.param(b"Status: 200 OK\r\n\r\n<a/>", None, id="no length: until EOF"),
        pytest.param(b"x" * MAX_HEADER, None, id="long but maybe a header"),
    ],
)
def test_reply_length(data: bytes, expected: int | None) -> None:
    assert expected == reply_length(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Status: 500 Internal\r\n\r\n", "status '500 Internal'"),
        (b"Content-Length: x\r\n\r\n", "bad Content-Length 'x'"),
        (b"x" * (MAX_HEADER + 1), "no end of header in the first"),
    ],
)
def test_reply_length_refuses_a_bad_header_at_once(data: bytes, message: str) -> None:
    with pytest.raises(MalformedReply, match=message):
        reply_length(data)


def test_reply_length_on_every_prefix_of_a_recorded_reply() -> None:
    reply = (DATA / "multicall2_reply.scgi").read_bytes()
    header_size = reply.index(b"\r\n\r\n") + 4
    for cut in range(len(reply) + 1):
        expected = len(reply) if cut >= header_size else None
        assert expected == reply_length(bytearray(reply[:cut])), cut


@given(st.binary(max_size=2000))
def test_any_body_survives_framing(body: bytes) -> None:
    reply = rtorrent_reply(body)
    assert len(reply) == reply_length(reply)
    assert body == parse_reply(reply)


def test_a_reply_split_where_split_reply_says_parses_as_a_whole() -> None:
    reply = (DATA / "multicall2_reply.scgi").read_bytes()
    start, total = split_reply(reply) or (0, None)
    assert (reply.index(b"\r\n\r\n") + 4, len(reply)) == (start, total)
    body = reply[start:]
    assert parse_reply(reply) == parse_parts(bytearray(reply[:start]), body)
    assert parse_parts(reply[:start], body) is body  # handed back, not copied


@pytest.mark.parametrize(
    ("head", "body", "message"),
    [
        (b"Status: 200 OK\r\nContent-Length: 5\r\n\r\n", b"<a/>", "truncated SCGI reply"),
        (b"Status: 200 OK\r\nContent-Length: 3\r\n\r\n", b"<a/>", "longer than its Content"),
        (b"Status: 500 Oops\r\n\r\n", b"<a/>", "status '500 Oops'"),
        (b"Status: 200 OK\r\n", b"\r\n<a/>", "no end of header"),
    ],
)
def test_parse_parts_checks_the_header_against_the_body(
    head: bytes, body: bytes, message: str
) -> None:
    with pytest.raises(MalformedReply, match=message):
        parse_parts(head, body)
