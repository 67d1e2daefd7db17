"""Internal to `rtorrentd.protocol.xmlrpc`: the fast path, for a reply that is a list of rows.

Strategy: a `d.multicall2` reply is a list of rows that all have the same shape
(the same field types in the same order), written by one of rtorrent's two XML
backends in its fixed layout (`LAYOUTS`): xmlrpc-c puts CRLF after each value,
tinyxml2 writes no whitespace at all. So the shape of the first row is read once
and turned into one regex for a whole row, with a capture group per field; one
`re.split` with it cuts the whole body in C, and field j of every row is then the
slice `parts[j::width]`. Each such column is converted in one pass in C: strings
with `map(bytes.decode, …)`, ints with `map(int, …)`; `zip` puts the rows back
together. Per torrent, no Python code runs at all.

A field that is an array (what `t.multicall=` gives: a table, an array of rows
of scalars) is converted a whole column at a time too: the column becomes one
JSON array by replacing its tags (`bytes.replace`), and `json.loads` builds the
lists, both in C.

Why the values are exact: `re.split` also returns what lies between the rows,
which must be empty everywhere, so the rows tile the body; the head and tail
around them are fixed bytes; and each field pattern admits only values that the
general decoder turns into the same value (text through the same
`xml_text.decode_text`, ints only as `-?[0-9]+`). In an array column, each tag
sequence stands for the same JSON wherever it occurs, and text goes through JSON
only as it is (JSON refuses what `decode_text` would change: a CR, a numeric
reference, invalid UTF-8; the column then goes to the general decoder). Anything
else (another layout, another type, one row of another shape, a bad reference)
gives None, and the general decoder (`xml_decode`) decodes the whole body or says
what is wrong with it and where. Nesting is bounded by the patterns (four
levels), so `MAX_DEPTH` cannot be reached here.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from rtorrentd.errors import MalformedReply
from rtorrentd.protocol.pieces import Pieces, Window
from rtorrentd.protocol.xml_decode import parse_response
from rtorrentd.protocol.xml_text import Bad, decode_text

__all__ = ["LAYOUTS", "Columns", "Layout", "column_chunks", "decode_rows"]

Columns = list[Sequence[object]]
"""Rows as columns: one sequence per field, all as long as there are rows."""

_MAX_FIELDS = 100


@dataclass(frozen=True, slots=True)
class Layout:
    """How one XML-RPC backend of rtorrent writes a reply: the bytes around a
    list of rows, and what follows each value (`newline`)."""

    name: str
    head: bytes
    tail: bytes
    newline: bytes


LAYOUTS = (
    Layout(
        "xmlrpc-c",
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n'
        b"<param><value><array><data>\r\n",
        b"</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n",
        b"\r\n",
    ),
    Layout(
        "tinyxml2",
        b'<?xml version="1.0"?><methodResponse><params><param><value><array><data>',
        b"</data></array></value></param></params></methodResponse>",
        b"",
    ),
)


def decode_rows(body: bytes) -> list[object] | None:
    """The value of a reply that is a list of rows of one shape in one of
    rtorrent's layouts, or None when the body is anything else (or not valid)."""
    for layout in LAYOUTS:
        if body.startswith(layout.head) and body.endswith(layout.tail):
            break
    else:
        return None
    grammar = _grammar(layout)
    content = body[len(layout.head) : len(body) - len(layout.tail)]
    try:
        return _rows(grammar, content)
    except (Bad, ValueError, MalformedReply):
        return None  # let the general decoder say what and where


def column_chunks(body: bytes | Pieces, chunk_bytes: int) -> Iterator[Columns | None] | None:
    """The rows of `body`, as `decode_rows` gives them but as columns (one per
    field), a chunk of about `chunk_bytes` of XML at a time; None when the body is
    not rows in one of rtorrent's layouts (then nothing of `body` was taken).

    Why: a whole 100,000-torrent reply decoded at once is some 100 MB of Python
    objects beside the body; chunk by chunk, a caller keeps only what it makes
    of each. Given `Pieces`, each piece is dropped once read past, so the body is
    not held whole either. Columns, because that is how the fields are decoded and
    how a caller converts them: no list per row is made only to be taken apart
    again. A chunk starts where a row of the first row's shape matches; one that
    is not whole rows of that shape comes as None, and the caller decodes the whole
    body with `decode_response` instead (which says what is wrong).
    """
    pieces = body if isinstance(body, Pieces) else Pieces((body,))
    for layout in LAYOUTS:
        if pieces.startswith(layout.head) and pieces.endswith(layout.tail):
            break
    else:
        return None
    grammar = _grammar(layout)
    shape = _first_shape(grammar, pieces, len(layout.head), chunk_bytes)
    if shape is None:
        return None
    window = Window(pieces, len(layout.head), len(layout.tail))
    return _chunks(grammar, shape, window, size=chunk_bytes)


def _first_shape(
    grammar: _Grammar, pieces: Pieces, start: int, size: int
) -> tuple[int, ...] | None:
    """The shape of the row at `start`, read from the first bytes (more of them
    while the row may be longer than what was read)."""
    while True:
        first = pieces.peek(start + size)
        shape = _shape(grammar, first, start)
        if shape is not None or len(first) == pieces.size:
            return shape
        size *= 4


def _chunks(
    grammar: _Grammar,
    shape: tuple[int, ...],
    window: Window,
    *,
    size: int,
) -> Iterator[Columns | None]:
    pattern = _row_pattern(grammar, shape)
    while True:
        buf, start, end = window.span(2 * size)
        if start >= end:
            return
        cut = buf.find(grammar.open, min(start + size, end), end)
        while cut != -1 and pattern.match(buf, cut) is None:
            cut = buf.find(grammar.open, cut + 1, end)
        if cut == -1 and not window.final:
            window.grow(size)  # no whole row to cut before in what is held
            continue
        stop = end if cut == -1 else cut
        try:
            yield _split_columns(grammar, shape, memoryview(buf)[start:stop])
        except (Bad, ValueError, MalformedReply):
            yield None
        window.pos = stop


@dataclass(frozen=True, slots=True)
class _Grammar:
    """The patterns of one layout."""

    open: bytes  # a row opens, with its `<data>`
    close: bytes  # … and closes
    fields: tuple[bytes, ...]  # the pattern of a field, by kind, one group each
    field_matchers: tuple[re.Pattern[bytes], ...]
    to_json: tuple[tuple[bytes, bytes], ...]  # what an array's tags become in JSON
    head: bytes  # the layout's head and tail, to hand a column to the general decoder
    tail: bytes


# The field patterns, by kind; {nl} is the layout's newline. A string or an int
# captures its text; an array (of scalars and arrays of scalars, what
# `t.multicall=` gives) captures all of itself. tinyxml2 writes an empty array as
# `<data/>`.
_STRING, _INT, _ARRAY = range(3)
_FIELDS = (
    rb"<value><string>([^<]*)</string></value>{nl}",
    rb"<value><i8>(-?[0-9]+)</i8></value>{nl}",
    rb"(<value><array>(?:<data>{nl}(?:{scalar}|{inner})*</data>|<data/>)</array></value>{nl})",
)
_SCALAR = rb"(?:<value><string>[^<]*</string></value>|<value><i8>-?[0-9]+</i8></value>){nl}"
_INNER = rb"<value><array>(?:<data>{nl}(?:{scalar})*</data>|<data/>)</array></value>{nl}"

# What an array's tags become in JSON, replaced in this order. A value's tags go:
# `<value>` becomes nothing, `</value>` a comma, except the last in its array,
# whose comma `]` swallows; each type tag becomes its JSON. Every sequence
# starts with a "<", which text never holds, so none can match inside text, and
# each means the same wherever it occurs, so a longer sequence may stand for
# its parts: the first three make the step from one `t.multicall=` table of
# one row to the next (`]],[[`) a single replacement, a third of the work.
_NEXT_TABLE = (
    b"</value>{nl}</data></array></value>{nl}</data></array></value>{nl}"
    b"<value><array><data>{nl}<value><array><data>{nl}<value>"
)
_TO_JSON = (
    (b"</string>" + _NEXT_TABLE + b"<string>", b'"]],[["'),
    (b"</i8>" + _NEXT_TABLE + b"<i8>", b"]],[["),
    (_NEXT_TABLE, b"]],[["),
    (b"</value>{nl}</data></array>", b"]"),
    (b"</value>{nl}", b","),
    (b"<value>", b""),
    (b"<array><data>{nl}</data></array>", b"[]"),
    (b"<array><data/></array>", b"[]"),
    (b"<array><data>{nl}", b"["),
    (b"<string>", b'"'),
    (b"</string>", b'"'),
    (b"<i8>", b""),
    (b"</i8>", b""),
)
# The five entities XML names, as JSON text (decode_text's order: &amp; last).
_ENTITIES = ((b"&lt;", b"<"), (b"&gt;", b">"), (b"&quot;", b'\\"'), (b"&apos;", b"'"))


@lru_cache(maxsize=4)
def _grammar(layout: Layout) -> _Grammar:
    def fill(pattern: bytes) -> bytes:
        pattern = pattern.replace(b"{inner}", _INNER).replace(b"{scalar}", _SCALAR)
        return pattern.replace(b"{nl}", re.escape(layout.newline))

    fields = tuple(map(fill, _FIELDS))
    to_json = tuple((old.replace(b"{nl}", layout.newline), new) for old, new in _TO_JSON)
    return _Grammar(
        open=b"<value><array><data>" + layout.newline,
        close=b"</data></array></value>" + layout.newline,
        fields=fields,
        field_matchers=tuple(map(re.compile, fields)),
        to_json=to_json,
        head=layout.head,
        tail=layout.tail,
    )


def _rows(grammar: _Grammar, content: bytes) -> list[object] | None:
    """The rows `content` holds, all of the shape of the first, or None."""
    shape = _shape(grammar, content)
    if shape is None:
        return None
    return _split_rows(grammar, shape, content)


def _split_rows(
    grammar: _Grammar, shape: tuple[int, ...], content: bytes | memoryview
) -> list[object] | None:
    """The rows `content` holds, all of shape `shape`, or None."""
    columns = _split_columns(grammar, shape, content)
    return None if columns is None else [*map(list, zip(*columns, strict=True))]


def _split_columns(
    grammar: _Grammar, shape: tuple[int, ...], content: bytes | memoryview
) -> list[Sequence[object]] | None:
    """The columns of the rows `content` holds, all of shape `shape`, or None."""
    parts = _row_pattern(grammar, shape).split(content)
    width = len(shape) + 1
    if any(parts[::width]):  # something between the rows: not all of this shape
        return None
    return [_CONVERTERS[kind](grammar, parts[j::width]) for j, kind in enumerate(shape, start=1)]


def _shape(grammar: _Grammar, content: bytes, start: int = 0) -> tuple[int, ...] | None:
    """The kind of each field of the first row (the one at `start`)."""
    if not content.startswith(grammar.open, start):
        return None
    shape: list[int] = []
    position = start + len(grammar.open)
    while not content.startswith(grammar.close, position):
        field = _field_at(grammar, content, position)
        if field is None or len(shape) == _MAX_FIELDS:
            return None
        kind, position = field
        shape.append(kind)
    return tuple(shape) or None


def _field_at(grammar: _Grammar, content: bytes, position: int) -> tuple[int, int] | None:
    """The kind of the field at `position`, and where it ends."""
    for kind, matcher in enumerate(grammar.field_matchers):
        field = matcher.match(content, position)
        if field is not None:
            return kind, field.end()
    return None


@lru_cache(maxsize=16)
def _row_pattern(grammar: _Grammar, shape: tuple[int, ...]) -> re.Pattern[bytes]:
    """One row of this shape, a group per field."""
    fields = b"".join(grammar.fields[kind] for kind in shape)
    return re.compile(re.escape(grammar.open) + fields + re.escape(grammar.close))


def _strings(_grammar: _Grammar, raws: Sequence[bytes]) -> Sequence[object]:
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


def _ints(_grammar: _Grammar, raws: Sequence[bytes]) -> Sequence[object]:
    """A column of ints (the pattern admits only `-?[0-9]+`, read as int() does)."""
    return [*map(int, raws)]


def _arrays(grammar: _Grammar, values: Sequence[bytes]) -> Sequence[object]:
    """A column of arrays, as one JSON array made from the XML by replacing tags
    (all in C); or, when JSON cannot carry the text as it is (a numeric reference,
    a CR or other control character, invalid UTF-8, an int with a leading zero),
    by the general decoder. Both at once for the whole column."""
    # All of them in one array, but for its last `</value>`, which would be a comma.
    array = grammar.open + b"".join(values) + b"</data></array>"
    try:
        return _json_array(grammar, array)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        decoded = parse_response(grammar.head + b"".join(values) + grammar.tail)
        if not isinstance(decoded, list):  # cannot be: it is the array we wrapped
            raise Bad("not an array") from None
        return decoded


def _json_array(grammar: _Grammar, array: bytes) -> list[object]:
    """An array value that `_ARRAY` admits (bar the nesting), read as JSON."""
    ampersands = array.count(b"&")
    if ampersands and ampersands != sum(map(array.count, (b"&amp;", *(e for e, _ in _ENTITIES)))):
        raise ValueError("a reference JSON cannot say as it is")
    text = array.replace(b"\\", b"\\\\").replace(b'"', b'\\"')  # text's own, first
    for old, new in grammar.to_json:
        text = text.replace(old, new)
    if b"<" in text:  # cannot be: every tag is replaced
        raise Bad("a tag left over")
    if ampersands:
        for entity, char in _ENTITIES:
            text = text.replace(entity, char)
        text = text.replace(b"&amp;", b"&")
    value = json.loads(text.decode())  # strict: no control character in a string
    if not isinstance(value, list):  # cannot be: the text is an array
        raise Bad("not an array")
    return value


_CONVERTERS: tuple[Callable[[_Grammar, Sequence[bytes]], Sequence[object]], ...] = (
    _strings,
    _ints,
    _arrays,
)
