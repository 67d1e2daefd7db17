"""Internal to `rtorrentd.protocol.xmlrpc`: turning the text of XML elements into values.

Text as XML defines it (line ends normalised, the five named entities and
character references expanded, nothing else), and the conversions of each scalar
type. Shared by the tag-by-tag parser (`xml_decode`) and the row fast path
(`xml_rows`), so that both give the same values.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

__all__ = ["SCALARS", "XML_SPACE", "Bad", "decode_strings", "decode_text", "only_whitespace"]

XML_SPACE = b" \t\r\n"

_ENTITY = re.compile(r"&(?:(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)?")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_NAMED_REPLACES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"))


def decode_text(raw: bytes) -> str:
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


def decode_strings(raws: list[bytes], plain: bool) -> list[str]:
    """The contents of a run of strings, converted in C in the common case."""
    if plain:
        try:
            return [*map(bytes.decode, raws)]  # strict UTF-8, the norm
        except UnicodeDecodeError:
            pass
    return [*map(decode_text, raws)]


def _expand_reference(match: re.Match[str]) -> str:
    """The character for `&name;`, `&#NN;` or `&#xNN;`; anything else is refused."""
    ref = match.group(1)
    if ref is None:
        raise Bad("a bare '&' in text (it must be written &amp;)")
    if not ref.startswith("#"):
        if ref not in _NAMED:
            raise Bad(f"unknown entity &{ref}; (only the five XML ones are allowed)")
        return _NAMED[ref]
    number = int(ref[2:], 16) if ref[1] == "x" else int(ref[1:])
    if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
        raise Bad(f"character reference &{ref}; is not a Unicode character")
    return chr(number)


def _expanded(raw: bytes) -> bytes | str:
    """A scalar's text as an XML parser hands it over, references expanded (the
    stdlib reads `<i4>&#49;</i4>` as 1, and int() takes any Unicode digit); the
    raw bytes when that changes nothing."""
    return decode_text(raw) if b"&" in raw or not raw.isascii() else raw


def _decode_int(raw: bytes) -> int:
    return int(_expanded(raw))


def _decode_double(raw: bytes) -> float:
    return float(_expanded(raw))


def _decode_bool(raw: bytes) -> bool:
    text = _expanded(raw)
    if text in (b"1", "1"):
        return True
    if text in (b"0", "0"):
        return False
    raise Bad(f"bad boolean {raw[:40]!r} (must be 0 or 1)")


def _decode_nil(raw: bytes) -> None:
    if raw.strip(XML_SPACE):
        raise Bad(f"text {raw[:40]!r} inside <nil>")


def _decode_base64(raw: bytes) -> bytes:
    # As the stdlib: references expanded first, and only ASCII (a2b_base64 would
    # skip other bytes); UnicodeEncodeError is a ValueError, a bad scalar.
    return binascii.a2b_base64(decode_text(raw).encode("ascii"))


# Conversions from a scalar element's raw text, in the general decoder. Their
# ValueError (int(), float(), base64) is turned into MalformedReply by the caller.
SCALARS: dict[bytes, Callable[[bytes], object]] = {
    b"i8": _decode_int,
    b"i4": _decode_int,
    b"int": _decode_int,
    b"string": decode_text,
    b"double": _decode_double,
    b"boolean": _decode_bool,
    b"base64": _decode_base64,
    b"nil": _decode_nil,
}


class Bad(Exception):
    """Internal: what is wrong, before the byte offset is known."""


def only_whitespace(text: bytes, tag: bytes) -> None:
    if text.strip(XML_SPACE):
        raise Bad(f"unexpected text {text[:40]!r} after <{tag.decode()}>")
