"""Bencoding (BEP 3), decoded strictly: bytes in, values out.

Strategy: accept the canonical form only, and say where anything else starts.
Integers without leading zeros or `-0`, string lengths without leading zeros,
dictionary keys unique and in ascending byte order, nothing after the value.
rtorrent itself refuses a .torrent whose keys are out of order (measured on 0.9.8
and 0.16), and a torrent's identity is the SHA-1 of its info dictionary's bytes:
a decoder that forgave anything could hand out values for bytes that hash to
something else. Depth and integer width are bounded so that a hostile file costs
little; the caller bounds the size of what it reads.
"""

from __future__ import annotations

import re
from typing import Union

from rtorrentd.errors import MetainfoError

Value = Union[int, bytes, list["Value"], dict[bytes, "Value"]]  # noqa: UP007 (3.10 runtime)

MAX_DEPTH = 64
"""Nesting deeper than this is refused; a .torrent nests four or five levels."""

# libtorrent keeps integers in 64 bits: 19 digits and a sign are plenty.
_INT = re.compile(rb"i(0|-?[1-9][0-9]{0,18})e")
# A string's length: no leading zeros, and no more digits than any file could hold.
_LENGTH = re.compile(rb"(0|[1-9][0-9]{0,15}):")


class BencodeError(MetainfoError):
    """The bytes are not canonical bencoding; the message says what and at which byte."""

    def __init__(self, what: str, offset: int) -> None:
        super().__init__(f"not valid bencoding: {what} at byte {offset}")
        self.offset = offset


def decode(data: bytes, *, max_depth: int = MAX_DEPTH) -> Value:
    """The one value `data` encodes; raises `BencodeError` on anything else."""
    value, end = _Decoder(data, max_depth).value(0, 0)
    if end != len(data):
        raise BencodeError("data after the end of the value", end)
    return value


def decode_dict_spans(
    data: bytes, *, max_depth: int = MAX_DEPTH
) -> tuple[dict[bytes, Value], dict[bytes, tuple[int, int]]]:
    """A dictionary and, for each key, where its value's bytes lie in `data`.

    The info-hash is the SHA-1 of the info dictionary's bytes exactly as they
    stand in the file, so the caller needs the span as well as the value.
    """
    decoder = _Decoder(data, max_depth)
    if data[:1] != b"d":
        raise BencodeError("expected a dictionary", 0)
    entries, pos = decoder.items(1, 1)
    found = {key: value for key, _, _, value in entries}
    spans = {key: (start, end) for key, start, end, _ in entries}
    if pos != len(data):
        raise BencodeError("data after the end of the value", pos)
    return found, spans


class _Decoder:
    """Recursive descent over one buffer; each method takes and returns offsets."""

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth

    def value(self, pos: int, depth: int) -> tuple[Value, int]:
        lead = self.data[pos : pos + 1]
        if lead == b"i":
            return self.integer(pos)
        if lead.isdigit():
            return self.string(pos)
        if lead in (b"l", b"d"):
            if depth >= self.max_depth:
                raise BencodeError(f"nesting deeper than {self.max_depth} levels", pos)
            return self.listing(pos, depth + 1) if lead == b"l" else self.mapping(pos, depth + 1)
        if not lead:
            raise BencodeError("unexpected end of data", pos)
        raise BencodeError(f"unexpected byte {lead!r}", pos)

    def integer(self, pos: int) -> tuple[int, int]:
        match = _INT.match(self.data, pos)
        if match is None:
            raise BencodeError("malformed integer (leading zero, -0, or too long)", pos)
        return int(match.group(1)), match.end()

    def string(self, pos: int) -> tuple[bytes, int]:
        match = _LENGTH.match(self.data, pos)
        if match is None:
            raise BencodeError("malformed string length", pos)
        start = match.end()
        end = start + int(match.group(1))
        if end > len(self.data):
            raise BencodeError("string runs past the end of data", pos)
        return self.data[start:end], end

    def listing(self, pos: int, depth: int) -> tuple[list[Value], int]:
        items: list[Value] = []
        pos += 1
        while self.data[pos : pos + 1] != b"e":
            item, pos = self.value(pos, depth)
            items.append(item)
        return items, pos + 1

    def mapping(self, pos: int, depth: int) -> tuple[dict[bytes, Value], int]:
        entries, end = self.items(pos + 1, depth)
        return {key: value for key, _, _, value in entries}, end

    def items(self, pos: int, depth: int) -> tuple[list[tuple[bytes, int, int, Value]], int]:
        """Key, value start, value end and value of each entry; the offset after the "e"."""
        found: list[tuple[bytes, int, int, Value]] = []
        previous: bytes | None = None
        while self.data[pos : pos + 1] != b"e":
            if not self.data[pos : pos + 1].isdigit():
                what = (
                    "unexpected end of data" if pos >= len(self.data) else "a key that is no string"
                )
                raise BencodeError(what, pos)
            key, start = self.string(pos)
            if previous is not None and key <= previous:
                what = "duplicate key" if key == previous else "keys out of order"
                raise BencodeError(f"{what} {key[:40]!r}", pos)
            value, end = self.value(start, depth)
            found.append((key, start, end, value))
            previous, pos = key, end
        return found, pos + 1
