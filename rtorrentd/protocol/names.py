"""What rtorrent shows for a name, and which names a shown string may stand for.

rtorrent sends display strings, not names (RTORRENT.md, "Names are lossy"):
- 0.9.8 turns every byte of a name that is not valid UTF-8 into `?`, each byte
  of a 4-byte character (emoji) into `?`, U+FFFE/U+FFFF into `???`, a control
  character inside an invalid name into `?`, and CR into LF;
- 0.16 percent-encodes such bytes (`caf%E9`) but leaves a literal `%` as it is
  (and the client turns every such `%XX` into `?`: `dialect.unescape_name`);
- a build that sends the raw bytes (tinyxml2) reaches us with U+FFFD in their
  place, as the XML decoder replaces what is not UTF-8, and XML turns CR into LF.

So a shown string holding `?`, `%`, LF or U+FFFD may stand for more than one
name, and one without them is the UTF-8 of exactly one name. `may_show_as`
answers generously (any build, any of its rules): it is used to find every name
on disk that could be the one meant, and more than one is a reason to refuse.
"""

from __future__ import annotations

import re
from functools import lru_cache

LOSSY = frozenset("?%\n\ufffd")
"""Characters that rtorrent, or XML, may have put in place of other bytes."""

_HEX = frozenset("0123456789abcdefABCDEF")
# What a '?' may stand for: itself; one byte 0.9.8 shows so (a byte of a non-UTF-8
# or 4-byte sequence, a control character inside an invalid name); or a literal
# "%XX" in a name, which the client shows as '?' too (`dialect.unescape_name`).
_QUESTION = rb"(?:[\x00-\x1f\x7f-\xff?]|%[0-9A-Fa-f]{2})"
_NEWLINE = rb"(?:\r\n|\r|\n)"


def is_exact(shown: str) -> bool:
    """Whether `shown` can only be the UTF-8 of one name: nothing in it may be a stand-in."""
    return not LOSSY.intersection(shown) and _encodable(shown)


def may_show_as(name: bytes, shown: str) -> bool:
    """Whether some rtorrent may show the name `name` (exact bytes) as `shown`."""
    if _as_decoded(name) == shown:
        return True
    return _pattern(shown).fullmatch(name) is not None


def exact_bytes(shown: str) -> bytes:
    """The name `shown` stands for, when `is_exact(shown)`."""
    return shown.encode("utf-8")


def _as_decoded(name: bytes) -> str:
    """What the XML decoder makes of a name sent as raw bytes."""
    return name.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no name shows as that
        return False
    return True


@lru_cache(maxsize=4096)
def _pattern(shown: str) -> re.Pattern[bytes]:
    """A pattern for the bytes of every name that may be shown as `shown`."""
    parts: list[bytes] = []
    pos = 0
    while pos < len(shown):
        char = shown[pos]
        if char == "%" and len(shown) >= pos + 3 and _HEX.issuperset(shown[pos + 1 : pos + 3]):
            escaped = shown[pos : pos + 3]
            byte = bytes([int(escaped[1:], 16)])
            parts.append(b"(?:" + re.escape(escaped.encode()) + b"|" + re.escape(byte) + b")")
            pos += 3
            continue
        if char == "?":
            parts.append(_QUESTION)
        elif char == "\n":
            parts.append(_NEWLINE)
        else:
            parts.append(re.escape(char.encode("utf-8", "surrogatepass")))
        pos += 1
    return re.compile(b"".join(parts), re.DOTALL)
