"""Internal to `rtorrentd.protocol.xmlrpc`: the fast path for a reply that is a list of rows.

Strategy: a `d.multicall2` reply is a list of rows that all have the same shape
(the same field types in the same order), in rtorrent's exact layout: CRLF, one
`<value>` per line, ints as `<i8>`. So the shape of the first row is read once
and turned into one regex for a whole row, with a capture group per field; one
`re.split` with it cuts the whole body in C, and field j of every row is then the
slice `parts[j::width]`. Each such column is converted in one pass in C: strings
with `map(bytes.decode, …)`, ints and tables of ints (tracker data) as one JSON
array each, which `json` parses faster than `map(int, …)`; `zip` puts the rows
back together. Per torrent, no Python code runs at all.

Why the values are exact: `re.split` also returns what lies between the rows,
which must be empty everywhere, so the rows tile the body; the head and tail
around them are fixed bytes; and each field pattern admits only lines that the
general decoder turns into the same value (text through the same
`rpc_text.decode_text`, ints only as `-?[0-9]+`). Anything else (another layout,
another type, one row of another shape, a bad entity, an int JSON refuses) gives
None, and the general decoder (`rpc_decode`) decodes the whole body or says what
is wrong with it and where. Nesting is bounded by the patterns (tables are two
levels deep at most), so `MAX_DEPTH` cannot be reached here.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import accumulate

from rtorrentd.errors import MalformedReply
from rtorrentd.protocol.xml_decode import parse_response
from rtorrentd.protocol.xml_text import Bad, decode_text

__all__ = ["decode_rows"]

_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n'
    b"<param><value><array><data>\r\n"
)
_TAIL = b"</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
_OPEN = b"<value><array><data>\r\n"
_CLOSE = b"</data></array></value>\r\n"
_MAX_FIELDS = 100

# The field patterns, by kind. Each captures what its conversion needs.
_STRING = rb"<value><string>([^<]*)</string></value>\r\n"
_INT = rb"<value><i8>(-?[0-9]+)</i8></value>\r\n"
_INT_LINE = rb"<value><i8>-?[0-9]+</i8></value>\r\n"
_SCALAR_LINE = rb"(?:<value><string>[^<]*</string></value>\r\n|" + _INT_LINE + rb")"
# An array of arrays of ints (what `t.multicall=,t.scrape_complete=` gives): the
# entries inside the outer array, each with at least one int.
_INT_TABLE = (
    rb"<value><array><data>\r\n((?:<value><array><data>\r\n(?:" + _INT_LINE + rb")+"
    rb"</data></array></value>\r\n)*)</data></array></value>\r\n"
)
# Any other array of scalars and arrays of scalars (`t.multicall=,t.url=`): whole.
_TABLE = (
    rb"(<value><array><data>\r\n(?:" + _SCALAR_LINE + rb"|<value><array><data>\r\n"
    rb"(?:" + _SCALAR_LINE + rb")*</data></array></value>\r\n)*</data></array></value>\r\n)"
)
_PATTERNS = (_STRING, _INT, _INT_TABLE, _TABLE)  # tried in this order
_FIELD = re.compile(b"|".join(_PATTERNS))

# What an _INT_TABLE entry's tags become in JSON.
_INT_TABLE_JSON = (
    (b"</i8></value>\r\n</data></array></value>\r\n", b"]"),
    (b"</i8></value>\r\n<value><i8>", b","),
    (b"<value><array><data>\r\n<value><i8>", b"["),
)


def decode_rows(body: bytes) -> list[object] | None:
    """The value of a reply that is a list of rows of one shape in rtorrent's
    layout, or None when the body is anything else (or not valid)."""
    if not (body.startswith(_HEAD) and body.endswith(_TAIL)):
        return None
    rows = body[len(_HEAD) : len(body) - len(_TAIL)]
    shape = _shape(rows)
    if shape is None:
        return None
    parts = _row_pattern(shape).split(rows)
    width = len(shape) + 1
    if any(parts[::width]):  # something between the rows: not all of this shape
        return None
    try:
        columns = [_CONVERTERS[kind](parts[j::width]) for j, kind in enumerate(shape, start=1)]
        return [*map(list, zip(*columns, strict=True))]  # int columns convert here
    except (Bad, ValueError, MalformedReply):
        return None  # let the general decoder say what and where


def _shape(rows: bytes) -> tuple[int, ...] | None:
    """The kind of each field of the first row: an index into _PATTERNS."""
    if not rows.startswith(_OPEN):
        return None
    kinds: list[int] = []
    position = len(_OPEN)
    while not rows.startswith(_CLOSE, position):
        field = _FIELD.match(rows, position)
        if field is None or len(kinds) == _MAX_FIELDS:
            return None
        kinds.append((field.lastindex or 1) - 1)  # one group per pattern
        position = field.end()
    return tuple(kinds) or None


@lru_cache(maxsize=16)
def _row_pattern(shape: tuple[int, ...]) -> re.Pattern[bytes]:
    """One row of this shape, a group per field."""
    fields = b"".join(_PATTERNS[kind] for kind in shape)
    return re.compile(re.escape(_OPEN) + fields + re.escape(_CLOSE))


def _strings(raws: Sequence[bytes]) -> list[str]:
    """A column of string fields: strict UTF-8 in C, and `decode_text` for the few
    with a reference or a CR (and for a whole column with invalid UTF-8)."""
    try:
        texts = [*map(bytes.decode, raws)]
    except UnicodeDecodeError:
        return [*map(decode_text, raws)]
    joined = b"".join(raws)
    if b"&" in joined or b"\r" in joined:
        _redo_special(raws, texts, joined)
    return texts


def _redo_special(raws: Sequence[bytes], texts: list[str], joined: bytes) -> None:
    """Decode again, with `decode_text`, the texts that hold a "&" or a CR. They
    are found by searching the joined column, so that the others cost nothing."""
    ends = [*accumulate(map(len, raws))]
    for special in (b"&", b"\r"):
        at = joined.find(special)
        while at != -1:
            i = bisect_right(ends, at)
            texts[i] = decode_text(raws[i])
            at = joined.find(special, ends[i])


def _ints(raws: Sequence[bytes]) -> list[object]:
    """A column of ints, parsed as one JSON array: faster than `map(int, …)`. The
    pattern admits only `-?[0-9]+`, which JSON reads as int() does; it refuses
    leading zeros, and such a reply goes to the general decoder."""
    return _json_list(b"[" + b",".join(raws) + b"]")


def _int_tables(entries: Sequence[bytes]) -> list[object]:
    """A column of arrays of arrays of ints, parsed as one JSON array.

    The rows are joined with `],[` around them, and the three tag sequences that
    can occur between ints in the (pattern-checked) entries become JSON: an
    entry's start `[`, its end `]`, between two ints `,`; two entries side by
    side are then `][`, which gets its comma. No byte of the entries is anything
    but these tags and ints.
    """
    text = b"],[".join(entries)
    for tags, replacement in _INT_TABLE_JSON:
        text = text.replace(tags, replacement)
    return _json_list(b"[[" + text.replace(b"][", b"],[") + b"]]")


def _json_list(text: bytes) -> list[object]:
    value = json.loads(text)
    if not isinstance(value, list):  # cannot be: the text is an array
        raise Bad("not an array")
    return value


def _tables(values: Sequence[bytes]) -> list[object]:
    """A column of other arrays: by the general decoder, all rows at once."""
    body = _HEAD + b"".join(values) + _TAIL
    decoded = parse_response(body)
    if not isinstance(decoded, list):  # cannot be: it is the array we wrapped
        raise Bad("not an array")
    return decoded


_CONVERTERS: tuple[Callable[[Sequence[bytes]], Iterable[object]], ...] = (
    _strings,
    _ints,
    _int_tables,
    _tables,
)
