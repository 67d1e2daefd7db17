"""XML-RPC for rtorrent: encode a call, decode a response. Pure: bytes in, values out.

Decoding strategy: a generic XML parser is the client's real cost on a
`d.multicall2` reply (the stdlib takes longer than rtorrent needs to build it).
Two decoders share the work, and give the same values (the tests check both
against the stdlib):
- `xml_rows`, the one fast path: a reply that is a list of rows of one shape (a
  `d.multicall2`, an `f.multicall`), in the exact layout of either of rtorrent's
  XML backends (xmlrpc-c: CRLF after each value; tinyxml2: no whitespace), is cut
  into rows by one regex built for that shape, and converted column by column in C;
- `xml_decode`: any other response, token by token with a small explicit stack
  and a strict per-tag grammar (`xml_grammar`). It also decides what is wrong
  with a reply the fast path does not take, and where.

What the decoder gives back differs from `xmlrpc.client.loads` in three ways:
- the single response value, not `((value,), None)`;
- `bytes` for `<base64>`, not `xmlrpc.client.Binary`;
- it is tolerant where rtorrent needs it and strict elsewhere: raw control
  characters inside text are kept as they are (rtorrent sends them raw in torrent
  names, and one odd name must not hide every other torrent), invalid UTF-8 is
  decoded with U+FFFD replacement characters, while DTDs, comments, CDATA,
  attributes, `dateTime.iso8601` and nesting deeper than `MAX_DEPTH` are refused.

Nothing here runs at import time beyond building constants and regexes.
"""

from __future__ import annotations

import base64
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

from rtorrentd.protocol.pieces import Pieces
from rtorrentd.protocol.xml_decode import MAX_DEPTH, parse_response
from rtorrentd.protocol.xml_rows import Columns, column_chunks, decode_rows

__all__ = ["MAX_DEPTH", "decode_column_chunks", "decode_response", "encode_call"]

_I4 = range(-(2**31), 2**31)
_I8 = range(-(2**63), 2**63)


def decode_response(body: bytes) -> object:
    """Decode the XML body of a `methodResponse` to its single value.

    Arrays become lists, structs dicts, i4/i8/int ints, base64 `bytes`, nil None.
    Raises `RpcFault` for a `<fault>`, and `MalformedReply` (with the byte offset)
    for anything that is not a well-formed XML-RPC response.
    """
    rows = decode_rows(body)
    return parse_response(body) if rows is None else rows


def decode_column_chunks(body: bytes | Pieces, chunk_bytes: int) -> Iterator[Columns | None] | None:
    """A reply that is a list of rows (a `d.multicall2` snapshot), a chunk of rows
    at a time as columns (one list per field), so that a caller never holds every
    decoded row at once (nor, given `Pieces`, the whole body); None when the body
    is not such a reply (nothing of it taken), and a None chunk where a chunk is
    not whole rows: then `decode_response` decodes the whole body (or says what is
    wrong)."""
    return column_chunks(body, chunk_bytes)


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

# XML 1.0 cannot carry these at all, not even as character references.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def encode_call(method: str, params: Sequence[object]) -> bytes:
    """Serialise an XML-RPC `methodCall` of `method` with `params`, as UTF-8 bytes.

    Types: str, bool, int (`<i4>` when it fits 32 bits, else `<i8>`), float,
    list/tuple (`<array>`), dict with str keys (`<struct>`), bytes/bytearray
    (`<base64>`). Raises ValueError for text XML cannot carry (control
    characters), ints beyond 64 bits, NaN/infinity and nesting deeper than
    `MAX_DEPTH`; TypeError for any other type.
    """
    parts = ['<?xml version="1.0"?>\n<methodCall>\n<methodName>', _escape(method)]
    parts.append("</methodName>\n<params>\n")
    for param in params:
        parts.append("<param>")
        _encode_value(param, parts, 0)
        parts.append("</param>\n")
    parts.append("</params>\n</methodCall>\n")
    return "".join(parts).encode()


def _escape(text: str) -> str:
    """Escape text for element content; CR as a reference so it survives parsing."""
    bad = _FORBIDDEN.search(text)
    if bad:
        raise ValueError(
            f"cannot send {text!r} over XML-RPC: XML 1.0 cannot carry the character "
            f"{bad.group()!r} at index {bad.start()}; remove or replace it"
        )
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


def _encode_value(value: object, out: list[str], depth: int) -> None:
    """Append `<value>…</value>` for one value to `out`."""
    for kind, encode in _ENCODERS:
        if isinstance(value, kind):
            out.append("<value>")
            encode(value, out, depth)
            out.append("</value>")
            return
    raise TypeError(f"cannot encode a {type(value).__name__} as XML-RPC: {value!r}")


def _encode_bool(value: object, out: list[str], _depth: int) -> None:
    out.append("<boolean>1</boolean>" if value else "<boolean>0</boolean>")


def _encode_int(value: object, out: list[str], _depth: int) -> None:
    number = operator.index(value)  # type: ignore[arg-type]
    if number not in _I8:
        raise ValueError(f"cannot send {number}: XML-RPC integers are at most 64 bits (i8)")
    tag = "i4" if number in _I4 else "i8"
    out.append(f"<{tag}>{number}</{tag}>")


def _encode_float(value: object, out: list[str], _depth: int) -> None:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"cannot send {number}: XML-RPC doubles must be finite")
    out.append(f"<double>{number!r}</double>")


def _encode_str(value: object, out: list[str], _depth: int) -> None:
    out.append(f"<string>{_escape(str(value))}</string>")


def _encode_bytes(value: object, out: list[str], _depth: int) -> None:
    out.append(f"<base64>{base64.b64encode(value).decode()}</base64>")  # type: ignore[arg-type]


def _nested(depth: int) -> int:
    """The depth of a container's children; refuses cycles and absurd nesting."""
    if depth >= MAX_DEPTH:
        raise ValueError(f"cannot send values nested deeper than {MAX_DEPTH} (a cycle?)")
    return depth + 1


def _encode_array(value: object, out: list[str], depth: int) -> None:
    inner = _nested(depth)
    out.append("<array><data>")
    for item in value:  # type: ignore[attr-defined]
        _encode_value(item, out, inner)
    out.append("</data></array>")


def _encode_struct(value: object, out: list[str], depth: int) -> None:
    inner = _nested(depth)
    out.append("<struct>")
    for key, item in value.items():  # type: ignore[attr-defined]
        if not isinstance(key, str):
            raise TypeError(f"XML-RPC struct keys must be str, not {type(key).__name__}: {key!r}")
        out.append(f"<member><name>{_escape(key)}</name>")
        _encode_value(item, out, inner)
        out.append("</member>")
    out.append("</struct>")


_Encoder = Callable[[object, list[str], int], None]

# Order matters: bool is an int, so it must be tried first.
_ENCODERS: tuple[tuple[type | tuple[type, ...], _Encoder], ...] = (
    (bool, _encode_bool),
    (int, _encode_int),
    (float, _encode_float),
    (str, _encode_str),
    ((bytes, bytearray), _encode_bytes),
    ((list, tuple), _encode_array),
    (Mapping, _encode_struct),
)
