"""Converters for configuration values: durations, sizes, paths, counts, addresses.

Each takes the value tomllib produced and returns the typed value, or raises
`Invalid` with a complaint that reads after `key = value` and a hint saying
what to write instead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from rtorrentd.conditions.parse import parse_duration, parse_size
from rtorrentd.redact import redact_urls


class Invalid(Exception):
    """A value is wrong. `complaint` follows `key = value`; the caller says where."""

    def __init__(self, complaint: str, hint: str = "") -> None:
        super().__init__(complaint)
        self.complaint = complaint
        self.hint = hint


# A longer text or number is cut to this many characters in messages.
LONGEST_SHOWN = 40


def show(value: object) -> str:
    """A value as it looks in TOML, with any password in a URL hidden, long ones cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(clip(redact_urls(value)), ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(map(show, value)) + "]"
    return "{...}" if isinstance(value, dict) else clip(str(value))


def clip(text: str) -> str:
    """`text` cut to `LONGEST_SHOWN` characters, with … when cut."""
    return text if len(text) <= LONGEST_SHOWN else text[:LONGEST_SHOWN] + "…"


_DURATION_HINT = (
    'write a number and a unit, like "30s", "5m", "2h" or "1d12h" (units s m h d w), '
    "or a number of seconds"
)
_SIZE_HINT = (
    'write a number and a unit, like "500MB" or "1.5GiB" (B KB MB GB TB x1000, '
    "KiB MiB GiB TiB x1024), or a number of bytes"
)
_URL_HINT = "write scgi:///path/to/rpc.socket, scgi://127.0.0.1:5000 or http(s)://host/RPC2"
_PATH_HINT = 'write a full path, like "/home/you/rtorrent/download"'


def to_text(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("is not a string", 'write it in quotes, like "..."')
    return value


def to_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid("is not true or false", "write true or false, without quotes")
    return value


def _amount(value: object, parse: Callable[[str], float], sort: str, hint: str) -> float:
    """A duration or size: a string with units, or a plain number; more than zero.

    It may be huge, even infinite for a string (see `parse_quantity`): the caller
    checks the upper bound."""
    if isinstance(value, str):
        try:
            amount = parse(value)
        except ValueError:
            raise Invalid(f"is not a {sort}", hint) from None
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        amount = value
    else:
        raise Invalid(f"is not a {sort}", hint)
    if amount <= 0:
        raise Invalid("is not more than zero", hint)
    return amount


def _at_most(amount: float, most: str, parse: Callable[[str], float], example: str) -> None:
    if amount > parse(most):
        raise Invalid(f"is more than {most}", f'write at most "{most}", like "{example}"')


def duration_up_to(most: str, example: str) -> Callable[[object], float]:
    """A converter of durations more than zero and at most `most` (like "1d")."""

    def to_duration(value: object) -> float:
        seconds = _amount(value, parse_duration, "duration", _DURATION_HINT)
        _at_most(seconds, most, parse_duration, example)
        return float(seconds)

    return to_duration


def size_up_to(most: str, example: str) -> Callable[[object], int]:
    """A converter of sizes more than zero and at most `most` (like "16GiB")."""

    def to_size(value: object) -> int:
        size = _amount(value, parse_size, "size", _SIZE_HINT)
        _at_most(size, most, parse_size, example)
        return round(size)

    return to_size


def to_interval(value: object) -> float:
    seconds = _amount(value, parse_duration, "duration", _DURATION_HINT)
    if seconds < 10:
        hint = (
            'each poll keeps rtorrent busy (it answers under its global lock); write "10s" or more'
        )
        raise Invalid("is shorter than 10s", hint)
    _at_most(seconds, "7d", parse_duration, "5m")
    return float(seconds)


MAX_COUNT = 1_000_000


def to_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(
            "is not a whole number of 0 or more", "write a count like 20; 0 deletes nothing"
        )
    if value > MAX_COUNT:
        hint = f"write a count of at most {MAX_COUNT}, like 20; 0 deletes nothing"
        raise Invalid(f"is more than {MAX_COUNT}", hint)
    return value


def to_fraction(value: object) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else -1
    if not 0 < number <= 1:
        hint = "write the largest share of all torrents one poll may delete, like 0.5 for half"
        raise Invalid("is not a fraction in (0, 1]", hint)
    return float(number)


def to_url(value: object) -> str:
    text = to_text(value)
    try:
        parts, port = urlsplit(text), urlsplit(text).port
    except ValueError:
        raise Invalid("is not an rtorrent address", _URL_HINT) from None
    unix = parts.scheme == "scgi" and not parts.netloc and parts.path.startswith("/")
    tcp = parts.scheme == "scgi" and bool(parts.hostname) and port is not None
    http = parts.scheme in ("http", "https") and bool(parts.hostname)
    if not (unix or tcp or http):
        raise Invalid("is not an rtorrent address", _URL_HINT)
    return text


def to_urls(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(
            "is not a list of rtorrent addresses",
            'write a list, like ["scgi:///home/other/rtorrent/rpc.socket"]',
        )
    urls = []
    for item in value:
        try:
            urls.append(to_url(item))
        except Invalid as bad:
            raise Invalid(f"has {show(item)}, which {bad.complaint}", bad.hint) from None
    return tuple(dict.fromkeys(urls))


def to_directory(value: object) -> str:
    path = to_text(value)
    if not os.path.isabs(path):
        raise Invalid("is not an absolute path", _PATH_HINT)
    return os.path.normpath(path)


def to_roots(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(
            "is not a list of paths", 'write a list, like ["/home/you/rtorrent/download"]'
        )
    return tuple(dict.fromkeys(map(_root, value)))


def _root(value: object) -> str:
    try:
        path = to_directory(value)
    except Invalid as bad:
        raise Invalid(f"has {show(value)}, which {bad.complaint}", bad.hint) from None
    if path.strip("/") == "":
        hint = "deleting anything anywhere is not a policy: list the directories of your downloads"
        raise Invalid(f"has {show(value)}, which is the whole filesystem", hint)
    return path


def to_rule_name(value: object) -> str:
    if not to_text(value).strip():
        raise Invalid("is empty", "give the rule a short name: logs and `rtorrentd plan` show it")
    if to_text(value).startswith("space "):
        # Steps of a [[space]] policy show as `space <path>`: a rule named so would
        # be taken for one in logs and when a step is re-checked.
        raise Invalid("starts with `space `", "that prefix names [[space]] steps: choose another")
    return to_text(value)
