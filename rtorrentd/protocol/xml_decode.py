"""Internal to `rtorrentd.protocol.xmlrpc`: the general decoder, for any XML-RPC response.

Strategy: the body is cut into tokens by one compiled regex, each a tag and the
text after it (every token starts at a `<` and runs to the next, so the tokens
cover the whole body and no byte is skipped unseen), and the tokens drive a small
explicit stack through the table of per-tag handlers in `xml_grammar`, which
check the XML-RPC grammar strictly. It takes any layout. The fast path for what
rtorrent sends most, a list of rows in one of its two layouts, is `xml_rows`;
this decoder takes every other reply, and says what is wrong with a reply and
where.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from typing import NoReturn

from rtorrentd.errors import MalformedReply, RpcFault
from rtorrentd.protocol.xml_grammar import CLOSERS, OPENERS, REFUSE, Element, Sink, frame_name
from rtorrentd.protocol.xml_text import XML_SPACE, Bad, only_whitespace

__all__ = ["MAX_DEPTH", "Parser", "parse_response"]

MAX_DEPTH = 64
"""Arrays and structs nested deeper than this are refused, in replies and in calls."""

_CHUNK = 64 * 1024

# A tag with the text after it; or text before the first tag (then an error).
_TOKEN = re.compile(rb"<[^<]*|[^<]+")
_GENERIC = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9_.:-]*)[ \t\r\n]*(/?)>(.*)", re.S)

# The start, end and empty tags of the grammar, as written without spaces (all
# that rtorrent writes), up to their ">": what `_GENERIC` would make of them.
_TAGS = {
    form: (slash, tag, empty)
    for tag in OPENERS
    for form, slash, empty in (
        (b"<" + tag, b"", b""),
        (b"</" + tag, b"/", b""),
        (b"<" + tag + b"/", b"", b"/"),
    )
}

# The XML declaration (optional) and whitespace before the root element.
_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(?:<\?xml[ \t\r\n]([^>]*?)\?>)?[ \t\r\n]*")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


class Parser:
    """The state of one decode: the frame stack and what has been seen."""

    def __init__(self) -> None:
        self.stack: list[Element] = []
        self.top: Sink = REFUSE
        self.started = False
        self.finished = False
        self.results: list[object] | None = None
        self.fault: object = None
        self.has_fault = False

    def run(self, tokens: Iterator[bytes]) -> None:
        """Feed every token through the stack; the loop of the decoder."""
        top = self.top
        for token in tokens:
            top = self.element(token, top)
        self.top = top

    def element(self, token: bytes, top: Sink) -> Sink:
        """One token: check it against the grammar and act."""
        head, end, tail = token.partition(b">")
        known = _TAGS.get(head) if end else None
        if known is not None:
            slash, tag, empty = known
        else:  # a tag written otherwise (with spaces), or not a tag we know
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

    def open(self, tag: bytes, text: bytes, top: Sink) -> Sink:
        """A start tag: its handler checks the parent and pushes a frame."""
        handler = OPENERS.get(tag)
        if handler is None:
            raise Bad(f"unknown element <{tag.decode()}>")
        self.top = top
        return handler(self, text, top)

    def close(self, tag: bytes, text: bytes, top: Sink) -> Sink:
        """An end tag: it must close the innermost frame, whose value it finishes."""
        only_whitespace(text, tag)
        self.top = top
        element = self.innermost(tag)
        if element.tag != tag:
            raise Bad(f"</{tag.decode()}> closes {frame_name(element)}")
        self.stack.pop()
        return CLOSERS[tag](self, element)

    def innermost(self, tag: bytes) -> Element:
        """The innermost open element."""
        if not self.stack:
            raise Bad(f"<{tag.decode()}> outside the root element")
        return self.stack[-1]

    def check_depth(self) -> None:
        """Refuse a nesting bomb. Called only once the stack is deeper than
        MAX_DEPTH frames (every level takes at least one), so it may count."""
        depth = sum(1 for element in self.stack if element.tag in (b"array", b"struct"))
        if depth > MAX_DEPTH:
            raise Bad(f"arrays/structs nested deeper than {MAX_DEPTH} levels")

    def parent(self, tag: bytes, *allowed: bytes) -> Element:
        """The enclosing element, which must be one of `allowed`."""
        element = self.innermost(tag)
        if element.tag not in allowed:
            raise Bad(f"<{tag.decode()}> is not allowed inside {frame_name(element)}")
        return element

    def typed_parent(self, tag: bytes) -> Element:
        """The <value> a type element goes in: it must be empty so far."""
        value = self.parent(tag, b"value")
        if value.seen or value.text.strip(XML_SPACE):
            raise Bad(f"<{tag.decode()}> in a <value> that already has content")
        value.seen = True
        return value

    def push(self, element: Element) -> Sink:
        """Open `element`; values go nowhere until it says otherwise."""
        self.stack.append(element)
        if len(self.stack) > MAX_DEPTH:
            self.check_depth()
        return REFUSE


def _refuse_markup(token: bytes) -> NoReturn:
    if token.startswith((b"<!DOCTYPE", b"<!ENTITY")):
        raise Bad("a DTD (<!DOCTYPE/<!ENTITY): refused, no entity expansion")
    raise Bad(f"unsupported or broken markup {token[:40]!r}")


def parse_response(body: bytes) -> object:
    """Decode the XML body of any `methodResponse` to its single value (see
    `rtorrentd.protocol.xmlrpc.decode_response`).

    Arrays become lists, structs dicts, i4/i8/int ints, base64 `bytes`, nil None.
    Raises `RpcFault` for a `<fault>`, and `MalformedReply` (with the byte offset)
    for anything that is not a well-formed XML-RPC response.
    """
    parser = Parser()
    start = _start_of_root(body)
    for begin, end in _chunks(body, start):
        tokens: list[bytes] = _TOKEN.findall(body, begin, end)
        remaining = iter(tokens)
        try:
            parser.run(remaining)
        except (Bad, ValueError) as exc:
            # ValueError comes from int(), float() and base64, called without
            # checking first. The iterator's position tells which token failed,
            # so that the loop need not count.
            index = len(tokens) - operator.length_hint(remaining) - 1
            raise _malformed(_reason(exc), _offset(body, begin, end, index)) from exc
    return _result(parser, len(body))


def _chunks(body: bytes, start: int) -> Iterator[tuple[int, int]]:
    """Cut the body into pieces of about _CHUNK bytes, each cut at a "<" (where a
    token starts anyway): the token list of a piece stays small enough for the
    CPU cache, and memory is not spent on all the tokens at once."""
    size = len(body)
    while start < size:
        end = body.find(b"<", start + _CHUNK)
        end = size if end == -1 else end
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


def _result(parser: Parser, size: int) -> object:
    if not parser.started:
        raise _malformed("no <methodResponse> (an empty body?)", size)
    if not parser.finished or parser.stack:
        open_tags = "".join(frame_name(frame) for frame in parser.stack)
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
    if isinstance(exc, Bad):
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
