"""SCGI framing, pure: bytes in, bytes out; no I/O.

A request is a netstring of NUL-separated headers, then the body:
``<len>:CONTENT_LENGTH\\0<n>\\0SCGI\\01\\0,<body>``. A reply is CGI-style:
``Status: 200 OK\\r\\n`` and more headers, a blank line, then the body.

Strategy for replies: the transport reads the whole reply into memory before
anything is parsed (rtorrent must never wait for us), so `parse_reply` takes the
complete bytes. `split_reply` only tells the transport, while it reads, where the
body starts and how many bytes the reply will take, so it can stop at
Content-Length instead of waiting for the peer to close, and keep the body apart
from the header (`parse_parts`: a body of tens of megabytes is never copied).
"""

from __future__ import annotations

import re
import zlib

from rtorrentd.errors import MalformedReply

__all__ = [
    "MAX_HEADER",
    "check_parts",
    "encode_request",
    "gunzip",
    "is_gzipped",
    "no_header_end",
    "parse_parts",
    "parse_reply",
    "split_reply",
]

# rtorrent's header is under 100 bytes; a reply with no blank line this far in
# is not SCGI, and looking further would only waste time on garbage.
MAX_HEADER = 16 * 1024

# The blank line that ends the header. `\n` alone is tolerated: some SCGI servers
# (and hand-written test peers) use bare newlines.
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DIGITS = re.compile(r"[0-9]+")

Headers = list[tuple[str, str]]


def encode_request(
    body: bytes, *, accept_gzip: bool = False, content_type: str | None = None
) -> bytes:
    """Frame an XML-RPC request body for SCGI.

    CONTENT_LENGTH comes first, as the SCGI spec and rtorrent require, and nothing
    follows the body: one byte more makes rtorrent 0.9.8 hang the connection.
    `accept_gzip` asks rtorrent 0.16 to gzip a reply of 1000 bytes or more (0.9.8
    ignores it); such a reply says so in no header: `is_gzipped` tells.
    `content_type` is sent as CONTENT_TYPE: ``application/json`` makes rtorrent
    0.15.2+ read the body as JSON-RPC (without it, XML-RPC as always).
    """
    header = b"CONTENT_LENGTH\x00%d\x00SCGI\x001\x00" % len(body)
    if content_type is not None:
        header += b"CONTENT_TYPE\x00%s\x00" % content_type.encode("ascii")
    if accept_gzip:
        header += b"ACCEPT_ENCODING\x00gzip\x00"
    return b"%d:%s,%s" % (len(header), header, body)


def is_gzipped(body: bytes) -> bool:
    """Whether a reply body is gzip (its magic bytes; XML never starts with them)."""
    return body[:2] == b"\x1f\x8b"


def gunzip(body: bytes, limit: int) -> bytes:
    """The gzip `body` unpacked, but never more than `limit` + 1 bytes: a caller
    that gets more than `limit` knows the whole is too large, without holding it."""
    unpacker = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    try:
        data = unpacker.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedReply(f"gzip reply does not unpack: {exc}") from None
    if len(data) <= limit and not unpacker.eof:
        raise MalformedReply("gzip reply is cut short")
    return data


def parse_reply(data: bytes | bytearray) -> bytes:
    """Return the body of a complete SCGI reply.

    A missing Status line counts as 200 (some SCGI servers send none); without a
    Content-Length the body is everything after the header. Raises
    `MalformedReply` for anything else that is not a 200 reply of the declared size.
    """
    end, _headers = _split_header(data)
    if end is None:
        raise MalformedReply(_no_header_end(data))
    # One copy: `data[end:]` would be a second.
    return parse_parts(data[:end], bytes(memoryview(data)[end:]))


def parse_parts(head: bytes | bytearray, body: bytes) -> bytes:
    """`parse_reply` for a reply read in two parts: `head`, the header up to and
    including its blank line (where `split_reply` says the body starts), and the
    `body` after it, returned as it is: a large reply is never copied whole."""
    check_parts(head, len(body))
    return body


def check_parts(head: bytes | bytearray, body_size: int) -> None:
    """`parse_parts` for a body held elsewhere (in pieces): only its size is checked."""
    end, headers = _split_header(head)
    if end != len(head):
        raise MalformedReply(_no_header_end(head))
    _check_status(headers)
    length = _content_length(headers)
    if length is not None:
        _check_body_length(length, body_size)


def split_reply(data: bytes | bytearray) -> tuple[int, int | None] | None:
    """Where the body starts and the reply's total size (None without a
    Content-Length: the reply ends when the peer closes), as soon as the header
    has arrived; None while it is incomplete. Raises `MalformedReply` as soon as
    the header is known to be bad, so that the transport stops reading garbage."""
    end, headers = _split_header(data)
    if end is None:
        if len(data) > MAX_HEADER:
            raise MalformedReply(_no_header_end(data))
        return None
    _check_status(headers)
    length = _content_length(headers)
    return end, None if length is None else end + length


def _split_header(data: bytes | bytearray) -> tuple[int | None, Headers]:
    """Where the body starts and the parsed header lines; (None, []) while incomplete."""
    match = _HEADER_END.search(data, 0, MAX_HEADER)
    if match is None:
        return None, []
    return match.end(), _parse_header_lines(bytes(data[: match.start()]))


def _parse_header_lines(head: bytes) -> Headers:
    lines = head.split(b"\n") if head else []
    return [_parse_header_line(line.rstrip(b"\r")) for line in lines]


def _parse_header_line(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or not name.strip():
        raise MalformedReply(f"bad SCGI reply header line {line[:80]!r}: expected 'Name: value'")
    # latin-1 decodes any byte, so odd headers end up in a message, not a crash.
    return name.strip().decode("latin-1").lower(), value.strip().decode("latin-1")


def _check_status(headers: Headers) -> None:
    for name, value in headers:
        if name == "status" and value.split(" ", 1)[0] != "200":
            raise MalformedReply(f"SCGI reply has status {value!r}, expected 200 OK")


def _content_length(headers: Headers) -> int | None:
    values = {value for name, value in headers if name == "content-length"}
    if not values:
        return None
    if len(values) > 1:
        raise MalformedReply(f"SCGI reply has conflicting Content-Length headers {sorted(values)}")
    (value,) = values
    if not _DIGITS.fullmatch(value):
        raise MalformedReply(f"SCGI reply has a bad Content-Length {value!r}")
    return int(value)


def _check_body_length(expected: int, got: int) -> None:
    if got < expected:
        raise MalformedReply(
            f"truncated SCGI reply: Content-Length says {expected} bytes, got {got}"
        )
    if got > expected:
        raise MalformedReply(
            f"SCGI reply longer than its Content-Length: expected {expected} bytes, got {got}"
        )


def no_header_end(data: bytes | bytearray) -> MalformedReply:
    """The error for a reply that ended before its header did: what came is shown."""
    return MalformedReply(_no_header_end(data))


def _no_header_end(data: bytes | bytearray) -> str:
    if not data:
        return "empty SCGI reply"
    if len(data) > MAX_HEADER:
        return f"not an SCGI reply: no end of header in the first {MAX_HEADER} bytes"
    return f"truncated SCGI reply: no end of header in {len(data)} bytes: {bytes(data[:40])!r}"
