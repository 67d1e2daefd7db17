"""Internal to `rtorrentd.protocol.xmlrpc`: the general decoder, for any XML-RPC response.

Strategy: a generic XML parser is the client's real cost on a large reply (the
stdlib takes longer than rtorrent needs to build it), so the body is cut into
tokens by one compiled regex and the tokens drive a small explicit stack. Every
token starts at a `<` and runs to the next `<`, so the tokens cover the whole body
and no byte is skipped unseen. The lines rtorrent writes most, in its exact layout
(CRLF, one `<value>` per line), come as runs: a run of `<i8>` lines, a run of
`<string>` lines, a whole array of ints, an array opening or closing; these take a
fast path that converts a run at once in C (`bytes.split`, `map(int, …)`).
Anything else (another layout, other types) goes through the table of per-tag
handlers in `rpc_grammar`, which check the XML-RPC grammar strictly; both paths
give the same values, which the tests check.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from typing import NoReturn

from rtorrentd.errors import MalformedReply, RpcFault
from rtorrentd.protocol.xml_grammar import (
    CLOSERS,
    OPENERS,
    REFUSE,
    Element,
    Frame,
    Sink,
    frame_name,
)
from rtorrentd.protocol.xml_text import XML_SPACE, Bad, decode_strings, only_whitespace

__all__ = ["MAX_DEPTH", "Parser", "parse_response"]

MAX_DEPTH = 64
"""Arrays and structs nested deeper than this are refused, in replies and in calls."""

_CHUNK = 64 * 1024

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


class Parser:
    """The state of one decode: the frame stack and what has been seen."""

    def __init__(self) -> None:
        self.stack: list[Frame] = []
        self.top: Sink = REFUSE
        self.started = False
        self.finished = False
        self.results: list[object] | None = None
        self.fault: object = None
        self.has_fault = False

    def run(self, tokens: Iterator[bytes]) -> None:
        """Feed every token through the stack; the hot loop of the decoder.

        `top` is where a finished value goes (a list, or `REFUSE`) and `append`
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
                # Each line ends in CR LF; any other CR, or a "&", needs decode_text.
                plain = b"&" not in token and token.count(b"\r") == len(raws)
                top.extend(decode_strings(raws, plain))
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
                    # Not a fast frame (those are value lists; an Element has no
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

    def element(self, token: bytes, top: Sink) -> Sink:
        """One token off the fast path: check it against the grammar and act."""
        if token.startswith(b"</data></array></value>"):  # arrays opened tag by tag
            for tag in (b"data", b"array", b"value"):
                top = self.close(tag, b"", top)
            return top
        if not token.startswith(b"<"):
            only_whitespace(token, b"value")
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
        """The innermost frame, as an Element: a fast <value><array><data> is
        turned into the three elements it stands for, so that the tag-by-tag
        path can go on from there."""
        if not self.stack:
            raise Bad(f"<{tag.decode()}> outside the root element")
        frame = self.stack[-1]
        if isinstance(frame, Element):
            return frame
        assert isinstance(self.top, list)  # the fast array's items, while innermost
        self.stack[-1:] = [
            Element(b"value", frame, seen=True),
            Element(b"array", REFUSE, seen=True),
            data := Element(b"data", REFUSE, items=self.top),
        ]
        return data

    def check_depth(self, inner: int = 0) -> None:
        """Refuse a nesting bomb. Called only once the stack is deeper than
        MAX_DEPTH frames (every level takes at least one), so it may count."""
        depth = inner + sum(1 for frame in self.stack if _is_container(frame))
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


def _is_container(frame: Frame) -> bool:
    return not isinstance(frame, Element) or frame.tag in (b"array", b"struct")


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
