"""Internal to `rtorrentd.protocol.xmlrpc`: the XML-RPC grammar of the tag-by-tag path.

A table of handlers, one opener and one closer per element (h11's `READERS`
style): an opener checks that the element may appear where it does and pushes a
frame; a closer hands the finished value to the enclosing frame. The parser
(`xml_decode.Parser`) owns the stack and calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from rtorrentd.protocol.xml_text import SCALARS, Bad, decode_text, only_whitespace

if TYPE_CHECKING:
    from rtorrentd.protocol.xml_decode import Parser

__all__ = ["CLOSERS", "OPENERS", "REFUSE", "Element", "Refuse", "Sink", "frame_name"]


class Refuse:
    """Stands in for the value list where no `<value>` may appear: `<value>`
    refuses to open there, and appending here would be the error too."""

    __slots__ = ()

    def append(self, _value: object) -> NoReturn:
        raise Bad("a <value> where none is allowed")


REFUSE = Refuse()


Sink = list[object] | Refuse


@dataclass(slots=True)
class Element:
    """A frame of the tag-by-tag path: one open element."""

    tag: bytes
    outer: Sink  # where values went before this element opened
    text: bytes = b""  # the text after the start tag (scalars, <name>, untyped <value>)
    items: list[object] = field(default_factory=list)  # the values it collects
    members: dict[str, object] = field(default_factory=dict)  # <struct>
    name: str | None = None  # <member>
    seen: bool = False  # <array> has had its <data>; <params>/<fault> for the root


def frame_name(element: Element) -> str:
    return f"<{element.tag.decode()}>"


# Openers: check the parent, push an Element, return where values go now.


def _open_response(p: Parser, text: bytes, top: Sink) -> Sink:
    if p.started:
        raise Bad("a second <methodResponse>")
    only_whitespace(text, b"methodResponse")
    p.started = True
    return p.push(Element(b"methodResponse", top))


def _open_body(tag: bytes) -> Callable[[Parser, bytes, Sink], Sink]:
    """<params> or <fault>, of which a response has exactly one."""

    def opener(p: Parser, text: bytes, top: Sink) -> Sink:
        root = p.parent(tag, b"methodResponse")
        if root.seen:
            raise Bad("a response with more than one <params>/<fault>")
        root.seen = True
        only_whitespace(text, tag)
        element = Element(tag, top)
        p.push(element)
        return element.items if tag == b"fault" else REFUSE

    return opener


def _open_param(p: Parser, text: bytes, top: Sink) -> Sink:
    p.parent(b"param", b"params")
    only_whitespace(text, b"param")
    element = Element(b"param", top)
    p.push(element)
    return element.items


def _open_value(p: Parser, text: bytes, top: Sink) -> Sink:
    if top is REFUSE:
        p.parent(b"value", b"data", b"param", b"fault", b"member")
        raise Bad("a <value> where none is allowed")
    return p.push(Element(b"value", top, text))


def _scalar_opener(tag: bytes) -> Callable[[Parser, bytes, Sink], Sink]:
    def opener(p: Parser, text: bytes, top: Sink) -> Sink:
        p.typed_parent(tag)
        return p.push(Element(tag, top, text))

    return opener


def _open_container(tag: bytes) -> Callable[[Parser, bytes, Sink], Sink]:
    """<array> or <struct>."""

    def opener(p: Parser, text: bytes, top: Sink) -> Sink:
        p.typed_parent(tag)
        only_whitespace(text, tag)
        return p.push(Element(tag, top))

    return opener


def _open_data(p: Parser, text: bytes, top: Sink) -> Sink:
    array = p.parent(b"data", b"array")
    if array.seen:
        raise Bad("a second <data> in one <array>")
    array.seen = True
    only_whitespace(text, b"data")
    element = Element(b"data", top)
    p.push(element)
    return element.items


def _open_member(p: Parser, text: bytes, top: Sink) -> Sink:
    p.parent(b"member", b"struct")
    only_whitespace(text, b"member")
    return p.push(Element(b"member", top))


def _open_name(p: Parser, text: bytes, top: Sink) -> Sink:
    member = p.parent(b"name", b"member")
    if member.name is not None:
        raise Bad("a second <name> in one <member>")
    return p.push(Element(b"name", top, text))


# Closers: get the popped element, hand its value to the enclosing one, and
# return where values go now.


def _close_response(p: Parser, element: Element) -> Sink:
    if not element.seen:
        raise Bad("a <methodResponse> with neither <params> nor <fault>")
    p.finished = True
    return REFUSE


def _close_params(p: Parser, element: Element) -> Sink:
    if len(element.items) != 1:
        raise Bad(f"<params> with {len(element.items)} <param>, expected exactly 1")
    p.results = element.items
    return REFUSE


def _close_param(p: Parser, element: Element) -> Sink:
    _enclosing(p).items.append(_single(element))
    return REFUSE


def _close_fault(p: Parser, element: Element) -> Sink:
    p.fault = _single(element)
    p.has_fault = True
    return REFUSE


def _single(element: Element) -> object:
    if len(element.items) != 1:
        tag = element.tag.decode()
        raise Bad(f"<{tag}> with {len(element.items)} <value>, expected exactly 1")
    return element.items[0]


def _enclosing(p: Parser) -> Element:
    """The element around a just-closed one."""
    return p.stack[-1]


def _close_value(p: Parser, element: Element) -> Sink:
    value = element.items[0] if element.seen else decode_text(element.text)
    element.outer.append(value)
    return element.outer


def _scalar_closer(tag: bytes) -> Callable[[Parser, Element], Sink]:
    convert = SCALARS[tag]

    def closer(p: Parser, element: Element) -> Sink:
        _enclosing(p).items.append(convert(element.text))
        return REFUSE

    return closer


def _close_data(p: Parser, element: Element) -> Sink:
    _enclosing(p).items = element.items
    return REFUSE


def _close_array(p: Parser, element: Element) -> Sink:
    _enclosing(p).items.append(element.items)
    return REFUSE


def _close_struct(p: Parser, element: Element) -> Sink:
    _enclosing(p).items.append(element.members)
    return REFUSE


def _close_member(p: Parser, element: Element) -> Sink:
    if element.name is None:
        raise Bad("a <member> without <name>")
    if len(element.items) != 1:
        count = len(element.items)
        raise Bad(f"<member> {element.name!r} with {count} <value>, expected exactly 1")
    _enclosing(p).members[element.name] = element.items[0]
    return REFUSE


def _close_name(p: Parser, element: Element) -> Sink:
    member = _enclosing(p)
    member.name = decode_text(element.text)
    return member.items


_TYPES = (b"i8", b"i4", b"int", b"string", b"double", b"boolean", b"base64", b"nil")
OPENERS: dict[bytes, Callable[[Parser, bytes, Sink], Sink]] = {
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
CLOSERS: dict[bytes, Callable[[Parser, Element], Sink]] = {
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
