"""XML-RPC for rtorrent: encode a call, decode a response. Pure: bytes in, values out.

Decoding strategy: a generic XML parser is the client's real cost on a
`d.multicall2` reply (the stdlib takes longer than rtorrent needs to build it), so
the body is cut into tokens by one compiled regex and the tokens drive a small
explicit stack. Every token starts at a `<` and runs to the next `<`, so the
tokens cover the whole body and no byte is skipped unseen. The lines rtorrent
writes most, in its exact layout (CRLF, one `<value>` per line), come as runs:
a run of `<i8>` lines, a run of `<string>` lines, a whole array of ints, an
array opening or closing; these take a fast path that converts a run at once in
C (`bytes.split`, `map(int, …)`). Anything else (another layout, other types)
goes through a table of per-tag handlers that check the XML-RPC grammar
strictly; both paths give the same values, which the tests check.

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
import binascii
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from rtorrentd.errors import MalformedReply, RpcFault

__all__ = ["MAX_DEPTH", "decode_response", "encode_call"]

MAX_DEPTH = 64
"""Arrays and structs nested deeper than this are refused, in replies and in calls."""

_CHUNK = 64 * 1024

_I4 = range(-(2**31), 2**31)
_I8 = range(-(2**63), 2**63)

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

# ---------------------------------------------------------------------------
# Decoding: tokens
# ---------------------------------------------------------------------------

# One token per match, no capture groups (groups make the regex engine several
# times slower here). Every token starts at a "<" and runs to the next one, so the
# tokens tile the body and no byte goes unseen. The first five alternatives are
# the lines rtorrent writes over and over (CRLF included), and take the fast path:
#   a run of <value><i8>N</i8></value>            "i" at index 8
#   a run of <value><string>text</string></value> "s"
#   <value><array><data> + a run of i8 + </data></array></value>  "a", a flat array
#   <value><array><data>                           "a", 22 bytes
#   </data></array></value>                        "/"
# Runs are cut apart with bytes.split and converted with map(), all in C; that,
# not the regex, is what makes the decoder fast. Each of these tokens has "<" at
# index 7, which no other token has (the generic token, "<tag>" plus the text
# after it, holds a single "<"). Anything else (other layouts, other types, text
# with CR) is cut at tags and goes through the strict per-tag path.
_TOKEN = re.compile(
    rb"(?:<value><i8>-?[0-9]+</i8></value>\r\n)+"
    rb"|(?:<value><string>[^<]*</string></value>\r\n)+"
    rb"|<value><array><data>\r\n(?:<value><i8>-?[0-9]+</i8></value>\r\n)+</data></array></value>\r\n"
    rb"|<value><array><data>\r\n"
    rb"|</data></array></value>\r\n"
    rb"|<[^<]*"  # any other tag, with the text after it
    rb"|[^<]+"  # text after a fast token: must be whitespace
)
_I8_SEP = b"</i8></value>\r\n<value><i8>"
_STRING_SEP = b"</string></value>\r\n<value><string>"
_OPEN_SIZE = len(b"<value><array><data>\r\n")
_GENERIC = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9_.:-]*)[ \t\r\n]*(/?)>(.*)", re.S)

# The XML declaration (optional) and whitespace before the root element.
_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(?:<\?xml[ \t\r\n]([^>]*?)\?>)?[ \t\r\n]*")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})

_ENTITY = re.compile(r"&(?:(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)?")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_NAMED_REPLACES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"))


def _decode_text(raw: bytes) -> str:
    """Text as XML defines it: line ends normalised, references expanded."""
    text = raw.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "&" not in text:
        return text
    if "&#" in text:
        return _ENTITY.sub(_expand_reference, text)
    # Names like "Tom &amp; Jerry" are common: plain replaces are much cheaper than
    # a regex with a callback. References cannot overlap (each starts at its own
    # "&"), and &amp; goes last so that "&amp;lt;" stays "&lt;".
    for entity, char in _NAMED_REPLACES:
        text = text.replace(entity, char)
    if text.count("&") != text.count("&amp;"):
        return _ENTITY.sub(_expand_reference, text)  # raises, saying which "&" is bad
    return text.replace("&amp;", "&")


def _decode_strings(raws: list[bytes], plain: bool) -> list[str]:
    """The contents of a run of strings, converted in C in the common case."""
    if plain:
        try:
            return [*map(bytes.decode, raws)]  # strict UTF-8, the norm
        except UnicodeDecodeError:
            pass
    return [*map(_decode_text, raws)]


def _expand_reference(match: re.Match[str]) -> str:
    """The character for `&name;`, `&#NN;` or `&#xNN;`; anything else is refused."""
    ref = match.group(1)
    if ref is None:
        raise _Bad("a bare '&' in text (it must be written &amp;)")
    if not ref.startswith("#"):
        if ref not in _NAMED:
            raise _Bad(f"unknown entity &{ref}; (only the five XML ones are allowed)")
        return _NAMED[ref]
    number = int(ref[2:], 16) if ref[1] == "x" else int(ref[1:])
    if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
        raise _Bad(f"character reference &{ref}; is not a Unicode character")
    return chr(number)


def _decode_bool(raw: bytes) -> bool:
    if raw == b"1":
        return True
    if raw == b"0":
        return False
    raise _Bad(f"bad boolean {raw[:40]!r} (must be 0 or 1)")


def _decode_nil(raw: bytes) -> None:
    if raw.strip(b" \t\r\n"):
        raise _Bad(f"text {raw[:40]!r} inside <nil>")


def _decode_base64(raw: bytes) -> bytes:
    return binascii.a2b_base64(raw)


# Conversions from a scalar element's raw text, off the fast path. int() and
# float() take bytes; their ValueError is turned into MalformedReply by the caller.
_SCALARS: dict[bytes, Callable[[bytes], object]] = {
    b"i8": int,
    b"i4": int,
    b"int": int,
    b"string": _decode_text,
    b"double": float,
    b"boolean": _decode_bool,
    b"base64": _decode_base64,
    b"nil": _decode_nil,
}


class _Bad(Exception):
    """Internal: what is wrong, before the byte offset is known."""


class _Refuse:
    """Stands in for the value list where no `<value>` may appear, so that the
    fast path needs no check of its own: appending here is the error."""

    __slots__ = ()

    def append(self, _value: object) -> NoReturn:
        raise _Bad("a <value> where none is allowed")

    def extend(self, _values: Iterable[object]) -> NoReturn:
        raise _Bad("a <value> where none is allowed")


_REFUSE = _Refuse()

# ---------------------------------------------------------------------------
# Decoding: the grammar
# ---------------------------------------------------------------------------

_Sink = list[object] | _Refuse
_XML_SPACE = b" \t\r\n"


@dataclass(slots=True)
class _Element:
    """A frame of the tag-by-tag path: one open element."""

    tag: bytes
    outer: _Sink  # where values went before this element opened
    text: bytes = b""  # the text after the start tag (scalars, <name>, untyped <value>)
    items: list[object] = field(default_factory=list)  # the values it collects
    members: dict[str, object] = field(default_factory=dict)  # <struct>
    name: str | None = None  # <member>
    seen: bool = False  # <array> has had its <data>; <params>/<fault> for the root


# A frame is an _Element or, for the <value><array><data> of one fast token,
# just the enclosing value list: the array's items are `top` while it is
# innermost, so the hot path allocates nothing but the list itself.
_Frame = _Element | _Sink


class _Parser:
    """The state of one decode: the frame stack and what has been seen."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.top: _Sink = _REFUSE
        self.started = False
        self.finished = False
        self.results: list[object] | None = None
        self.fault: object = None
        self.has_fault = False

    def run(self, tokens: Iterator[bytes]) -> None:
        """Feed every token through the stack; the hot loop of the decoder.

        `top` is where a finished value goes (a list, or `_REFUSE`) and `append`
        its bound append, kept apart because it is called most. The slices cut
        the fixed tags (and CRLF) off the fast tokens of `_TOKEN`.
        """
        stack = self.stack
        top = self.top
        append = top.append
        for token in tokens:
            try:
                kind = token[8] if token[7] == 0x3C else 0  # "<" at 7: a fast token
            except IndexError:
                kind = 0
            if kind == 0x69:  # "i": ints
                top.extend(map(int, token[11:-15].split(_I8_SEP)))
            elif kind == 0x73:  # "s": strings
                raws = token[15:-19].split(_STRING_SEP)
                # Each line ends in CR LF; any other CR, or a "&", needs _decode_text.
                plain = b"&" not in token and token.count(b"\r") == len(raws)
                top.extend(_decode_strings(raws, plain))
            elif kind == 0x61 and len(token) == _OPEN_SIZE:  # "a": an array opens
                stack.append(top)
                top = []
                append = top.append
                if len(stack) > MAX_DEPTH:
                    self.check_depth()
            elif kind == 0x61:  # "a": a whole array of ints
                append(list(map(int, token[33:-40].split(_I8_SEP))))
                if len(stack) >= MAX_DEPTH:
                    self.check_depth(1)
            elif kind == 0x2F:  # "/": an array closes
                try:
                    outer = stack[-1]
                    outer_append = outer.append  # type: ignore[union-attr]
                except (IndexError, AttributeError):
                    # Not a fast frame (those are value lists; an _Element has no
                    # append): the array was opened tag by tag, or never.
                    top = self.element(token, top)
                    append = top.append
                else:
                    stack.pop()
                    outer_append(top)
                    top, append = outer, outer_append  # type: ignore[assignment]
            else:
                top = self.element(token, top)
                append = top.append
        self.top = top

    def element(self, token: bytes, top: _Sink) -> _Sink:
        """One token off the fast path: check it against the grammar and act."""
        if token.startswith(b"</data></array></value>"):  # arrays opened tag by tag
            for tag in (b"data", b"array", b"value"):
                top = self.close(tag, b"", top)
            return top
        if not token.startswith(b"<"):
            _only_whitespace(token, b"value")
            return top
        match = _GENERIC.fullmatch(token)
        if match is None:
            _refuse_markup(token)
        slash, tag, empty, tail = match.groups()
        if slash:
            if empty:
                _refuse_markup(token)
            return self.close(tag, tail, top)
        if empty:
            top = self.open(tag, b"", top)
            return self.close(tag, tail, top)
        return self.open(tag, tail, top)

    def open(self, tag: bytes, text: bytes, top: _Sink) -> _Sink:
        """A start tag: its handler checks the parent and pushes a frame."""
        handler = _OPENERS.get(tag)
        if handler is None:
            raise _Bad(f"unknown element <{tag.decode()}>")
        self.top = top
        return handler(self, text, top)

    def close(self, tag: bytes, text: bytes, top: _Sink) -> _Sink:
        """An end tag: it must close the innermost frame, whose value it finishes."""
        _only_whitespace(text, tag)
        self.top = top
        element = self.innermost(tag)
        if element.tag != tag:
            raise _Bad(f"</{tag.decode()}> closes {_frame_name(element)}")
        self.stack.pop()
        return _CLOSERS[tag](self, element)

    def innermost(self, tag: bytes) -> _Element:
        """The innermost frame, as an _Element: a fast <value><array><data> is
        turned into the three elements it stands for, so that the tag-by-tag
        path can go on from there."""
        if not self.stack:
            raise _Bad(f"<{tag.decode()}> outside the root element")
        frame = self.stack[-1]
        if isinstance(frame, _Element):
            return frame
        assert isinstance(self.top, list)  # the fast array's items, while innermost
        self.stack[-1:] = [
            _Element(b"value", frame, seen=True),
            _Element(b"array", _REFUSE, seen=True),
            data := _Element(b"data", _REFUSE, items=self.top),
        ]
        return data

    def check_depth(self, inner: int = 0) -> None:
        """Refuse a nesting bomb. Called only once the stack is deeper than
        MAX_DEPTH frames (every level takes at least one), so it may count."""
        depth = inner + sum(1 for frame in self.stack if _is_container(frame))
        if depth > MAX_DEPTH:
            raise _Bad(f"arrays/structs nested deeper than {MAX_DEPTH} levels")

    def parent(self, tag: bytes, *allowed: bytes) -> _Element:
        """The enclosing element, which must be one of `allowed`."""
        element = self.innermost(tag)
        if element.tag not in allowed:
            raise _Bad(f"<{tag.decode()}> is not allowed inside {_frame_name(element)}")
        return element

    def typed_parent(self, tag: bytes) -> _Element:
        """The <value> a type element goes in: it must be empty so far."""
        value = self.parent(tag, b"value")
        if value.seen or value.text.strip(_XML_SPACE):
            raise _Bad(f"<{tag.decode()}> in a <value> that already has content")
        value.seen = True
        return value

    def push(self, element: _Element) -> _Sink:
        """Open `element`; values go nowhere until it says otherwise."""
        self.stack.append(element)
        if len(self.stack) > MAX_DEPTH:
            self.check_depth()
        return _REFUSE


def _is_container(frame: _Frame) -> bool:
    return not isinstance(frame, _Element) or frame.tag in (b"array", b"struct")


def _frame_name(frame: _Frame) -> str:
    if not isinstance(frame, _Element):
        return "<value><array><data>"
    return f"<{frame.tag.decode()}>"


def _only_whitespace(text: bytes, tag: bytes) -> None:
    if text.strip(_XML_SPACE):
        raise _Bad(f"unexpected text {text[:40]!r} after <{tag.decode()}>")


def _refuse_markup(token: bytes) -> NoReturn:
    if token.startswith((b"<!DOCTYPE", b"<!ENTITY")):
        raise _Bad("a DTD (<!DOCTYPE/<!ENTITY): refused, no entity expansion")
    raise _Bad(f"unsupported or broken markup {token[:40]!r}")


# Openers: check the parent, push an _Element, return where values go now.


def _open_response(p: _Parser, text: bytes, top: _Sink) -> _Sink:
    if p.started:
        raise _Bad("a second <methodResponse>")
    _only_whitespace(text, b"methodResponse")
    p.started = True
    return p.push(_Element(b"methodResponse", top))


def _open_body(tag: bytes) -> Callable[[_Parser, bytes, _Sink], _Sink]:
    """<params> or <fault>, of which a response has exactly one."""

    def opener(p: _Parser, text: bytes, top: _Sink) -> _Sink:
        root = p.parent(tag, b"methodResponse")
        if root.seen:
            raise _Bad("a response with more than one <params>/<fault>")
        root.seen = True
        _only_whitespace(text, tag)
        element = _Element(tag, top)
        p.push(element)
        return element.items if tag == b"fault" else _REFUSE

    return opener


def _open_param(p: _Parser, text: bytes, top: _Sink) -> _Sink:
    p.parent(b"param", b"params")
    _only_whitespace(text, b"param")
    element = _Element(b"param", top)
    p.push(element)
    return element.items


def _open_value(p: _Parser, text: bytes, top: _Sink) -> _Sink:
    if top is _REFUSE:
        p.parent(b"value", b"data", b"param", b"fault", b"member")
        raise _Bad("a <value> where none is allowed")
    return p.push(_Element(b"value", top, text))


def _scalar_opener(tag: bytes) -> Callable[[_Parser, bytes, _Sink], _Sink]:
    def opener(p: _Parser, text: bytes, top: _Sink) -> _Sink:
        p.typed_parent(tag)
        return p.push(_Element(tag, top, text))

    return opener


def _open_container(tag: bytes) -> Callable[[_Parser, bytes, _Sink], _Sink]:
    """<array> or <struct>."""

    def opener(p: _Parser, text: bytes, top: _Sink) -> _Sink:
        p.typed_parent(tag)
        _only_whitespace(text, tag)
        return p.push(_Element(tag, top))

    return opener


def _open_data(p: _Parser, text: bytes, top: _Sink) -> _Sink:
    array = p.parent(b"data", b"array")
    if array.seen:
        raise _Bad("a second <data> in one <array>")
    array.seen = True
    _only_whitespace(text, b"data")
    element = _Element(b"data", top)
    p.push(element)
    return element.items


def _open_member(p: _Parser, text: bytes, top: _Sink) -> _Sink:
    p.parent(b"member", b"struct")
    _only_whitespace(text, b"member")
    return p.push(_Element(b"member", top))


def _open_name(p: _Parser, text: bytes, top: _Sink) -> _Sink:
    member = p.parent(b"name", b"member")
    if member.name is not None:
        raise _Bad("a second <name> in one <member>")
    return p.push(_Element(b"name", top, text))


# Closers: get the popped element, hand its value to the enclosing one, and
# return where values go now.


def _close_response(p: _Parser, element: _Element) -> _Sink:
    if not element.seen:
        raise _Bad("a <methodResponse> with neither <params> nor <fault>")
    p.finished = True
    return _REFUSE


def _close_params(p: _Parser, element: _Element) -> _Sink:
    if len(element.items) != 1:
        raise _Bad(f"<params> with {len(element.items)} <param>, expected exactly 1")
    p.results = element.items
    return _REFUSE


def _close_param(p: _Parser, element: _Element) -> _Sink:
    _enclosing(p).items.append(_single(element))
    return _REFUSE


def _close_fault(p: _Parser, element: _Element) -> _Sink:
    p.fault = _single(element)
    p.has_fault = True
    return _REFUSE


def _single(element: _Element) -> object:
    if len(element.items) != 1:
        tag = element.tag.decode()
        raise _Bad(f"<{tag}> with {len(element.items)} <value>, expected exactly 1")
    return element.items[0]


def _enclosing(p: _Parser) -> _Element:
    """The element around a just-closed one (never a fast frame: those hold only
    <value> elements, which do not use this)."""
    frame = p.stack[-1]
    assert isinstance(frame, _Element)
    return frame


def _close_value(p: _Parser, element: _Element) -> _Sink:
    value = element.items[0] if element.seen else _decode_text(element.text)
    element.outer.append(value)
    return element.outer


def _scalar_closer(tag: bytes) -> Callable[[_Parser, _Element], _Sink]:
    convert = _SCALARS[tag]

    def closer(p: _Parser, element: _Element) -> _Sink:
        _enclosing(p).items.append(convert(element.text))
        return _REFUSE

    return closer


def _close_data(p: _Parser, element: _Element) -> _Sink:
    _enclosing(p).items = element.items
    return _REFUSE


def _close_array(p: _Parser, element: _Element) -> _Sink:
    _enclosing(p).items.append(element.items)
    return _REFUSE


def _close_struct(p: _Parser, element: _Element) -> _Sink:
    _enclosing(p).items.append(element.members)
    return _REFUSE


def _close_member(p: _Parser, element: _Element) -> _Sink:
    if element.name is None:
        raise _Bad("a <member> without <name>")
    if len(element.items) != 1:
        count = len(element.items)
        raise _Bad(f"<member> {element.name!r} with {count} <value>, expected exactly 1")
    _enclosing(p).members[element.name] = element.items[0]
    return _REFUSE


def _close_name(p: _Parser, element: _Element) -> _Sink:
    member = _enclosing(p)
    member.name = _decode_text(element.text)
    return member.items


_TYPES = (b"i8", b"i4", b"int", b"string", b"double", b"boolean", b"base64", b"nil")
_OPENERS: dict[bytes, Callable[[_Parser, bytes, _Sink], _Sink]] = {
    b"methodResponse": _open_response,
    b"params": _open_body(b"params"),
    b"fault": _open_body(b"fault"),
    b"param": _open_param,
    b"value": _open_value,
    b"array": _open_container(b"array"),
    b"struct": _open_container(b"struct"),
    b"data": _open_data,
    b"member": _open_member,
    b"name": _open_name,
    **{tag: _scalar_opener(tag) for tag in _TYPES},
}
_CLOSERS: dict[bytes, Callable[[_Parser, _Element], _Sink]] = {
    b"methodResponse": _close_response,
    b"params": _close_params,
    b"param": _close_param,
    b"fault": _close_fault,
    b"value": _close_value,
    b"array": _close_array,
    b"data": _close_data,
    b"struct": _close_struct,
    b"member": _close_member,
    b"name": _close_name,
    **{tag: _scalar_closer(tag) for tag in _TYPES},
}

# ---------------------------------------------------------------------------
# Decoding: entry point
# ---------------------------------------------------------------------------


def decode_response(body: bytes) -> object:
    """Decode the XML body of a `methodResponse` to its single value.

    Arrays become lists, structs dicts, i4/i8/int ints, base64 `bytes`, nil None.
    Raises `RpcFault` for a `<fault>`, and `MalformedReply` (with the byte offset)
    for anything that is not a well-formed XML-RPC response.
    """
    parser = _Parser()
    start = _start_of_root(body)
    for begin, end in _chunks(body, start):
        tokens: list[bytes] = _TOKEN.findall(body, begin, end)
        remaining = iter(tokens)
        try:
            parser.run(remaining)
        except (_Bad, ValueError) as exc:
            # ValueError comes from int(), float() and base64, which the fast path
            # calls without checking first. The iterator's position tells which
            # token failed, so that the hot loop need not count.
            index = len(tokens) - operator.length_hint(remaining) - 1
            raise _malformed(_reason(exc), _offset(body, begin, end, index)) from exc
    return _result(parser, len(body))


def _chunks(body: bytes, start: int) -> Iterator[tuple[int, int]]:
    """Cut the body into pieces of about _CHUNK bytes, each cut at a "<" that
    starts a line.

    Tokenizing piece by piece keeps the token list small enough for the CPU
    cache (about 10% faster on a large reply, and less memory at once). Every
    token but a fast one stops at a "<" anyway; a fast token cut in two just
    becomes the tag-by-tag tokens it stands for, which decode the same.
    """
    size = len(body)
    while start < size:
        end = body.find(b"\n<", start + _CHUNK) + 1 or size
        yield start, end
        start = end


def _start_of_root(body: bytes) -> int:
    """Skip the XML declaration, checking that it announces UTF-8."""
    prolog = _PROLOG.match(body)
    assert prolog is not None  # the pattern matches the empty string
    declaration = prolog.group(1)
    if declaration is not None:
        encoding = _ENCODING.search(declaration)
        if encoding and encoding.group(1).lower() not in _UTF8_NAMES:
            raise _malformed(f"unsupported encoding {encoding.group(1)!r}", 0)
    if prolog.end() < len(body) and body[prolog.end()] != ord("<"):
        raise _malformed("text before the root element (not XML?)", prolog.end())
    return prolog.end()


def _result(parser: _Parser, size: int) -> object:
    if not parser.started:
        raise _malformed("no <methodResponse> (an empty body?)", size)
    if not parser.finished or parser.stack:
        open_tags = "".join(_frame_name(frame) for frame in parser.stack)
        raise _malformed(f"truncated: ends inside {open_tags or 'nothing'}", size)
    if parser.has_fault:
        raise _fault(parser.fault)
    assert parser.results is not None  # guaranteed by _close_response
    return parser.results[0]


def _fault(fault: object) -> RpcFault | MalformedReply:
    """The RpcFault a fault struct describes, or why it does not describe one."""
    if isinstance(fault, dict):
        code, message = fault.get("faultCode"), fault.get("faultString")
        if isinstance(code, int) and not isinstance(code, bool) and isinstance(message, str):
            return RpcFault(code, message)
    return MalformedReply(f"XML-RPC fault without an int faultCode and str faultString: {fault!r}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, _Bad):
        return str(exc)
    return f"bad scalar value ({exc})"


def _offset(body: bytes, begin: int, end: int, index: int) -> int:
    """The byte offset of token number `index` of a piece (found again: errors
    are rare, so the hot loop does not keep offsets)."""
    for position, match in enumerate(_TOKEN.finditer(body, begin, end)):
        if position == max(index, 0):
            return match.start()
    return end


def _malformed(reason: str, offset: int) -> MalformedReply:
    return MalformedReply(f"malformed XML-RPC reply at byte {offset}: {reason}")
