"""structlog set-up: one event per line, for the journal, a terminal, or a machine.

Events have stable dotted names and carry their facts as key-value pairs; the
README lists them all ("Logs"). Three renderings:

- `journal`: logfmt (`event=action.done hash=ABC name="x y"`) behind the syslog
  priority prefix `<N>`, which journald turns into the entry's priority
  (SyslogLevelPrefix=yes, the default), so `journalctl -p warning` works. No
  timestamp: the journal records its own.
- `console`: structlog's ConsoleRenderer, in colour on a terminal.
- `json`: one JSON object per line, starting with timestamp (ISO 8601, UTC),
  level and event.

Every format passes through `redact`, so a password that reaches a log call by
mistake does not reach the log.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Literal, TextIO, get_args

import structlog
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

from rtorrentd.redact import REDACTED, redact_urls
from rtorrentd.service.systemd import journal_stream_is_stderr

LogFormat = Literal["journal", "console", "json"]
FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)

# structlog's level names, as `logging` numbers them.
LEVELS: Mapping[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# syslog priorities (sd-daemon(3)): what journald reads from the `<N>` prefix.
PRIORITIES: Mapping[str, int] = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
_LEVEL_ALIASES: Mapping[str, str] = {"warn": "warning", "exception": "error", "fatal": "critical"}

# Substrings of a key whose value is a secret. Keys ending in `_file` or `_path`
# name where a secret is kept (`password_file`), which is worth logging.
_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
)
_NOT_SECRET_SUFFIXES = ("_file", "_path")
# scheme://user:password@host: the password runs to the last `@` before the
# host's path, so a password with a raw `@` in it is hidden whole.
# Values the renderers handle themselves, not to be turned into text here.
_PASS_THROUGH = frozenset({"exc_info"})
_MAX_DEPTH = 8

_LOGFMT_ESCAPES: Mapping[str, str] = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_LOGFMT_BARE = re.compile(r'[^\s="\\]+')
_LOGFMT_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def normalize_level(level: str) -> str:
    """`level` as one of `LEVELS` (case and common aliases forgiven); ValueError if unknown."""
    name = level.strip().lower()
    name = _LEVEL_ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of: {', '.join(LEVELS)}")
    return name


def default_format(env: Mapping[str, str] = os.environ, stream: TextIO | None = None) -> LogFormat:
    """The format that suits where `stream` (stderr by default) goes.

    `journal` when systemd connected it to the journal, `console` on a terminal,
    otherwise `json`: whoever reads a pipe or a file is most likely a program.
    """
    out = sys.stderr if stream is None else stream
    fd = _fileno(out)
    if fd is not None and journal_stream_is_stderr(env, fd):
        return "journal"
    return "console" if _isatty(out) else "json"


def configure_logging(fmt: LogFormat, level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog to write `fmt` lines at `level` and above to `stream` (stderr).

    May be called again (a reload, a test) and replaces the whole configuration.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of: {', '.join(FORMATS)}")
    out = sys.stderr if stream is None else stream
    structlog.configure(
        processors=[*_COMMON, *_FORMAT_PROCESSORS[fmt](out)],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[normalize_level(level)]),
        context_class=dict,
        logger_factory=lambda *_args: SafeWriteLogger(out),
        # Caching would pin loggers made before a reconfiguration (module-level
        # `get_logger()` results) to the old one; a log line costs little anyway.
        cache_logger_on_first_use=False,
    )


class SafeWriteLogger(structlog.WriteLogger):
    """A WriteLogger that drops a line rather than raise when its stream fails.

    A closed stderr or a vanished journal must not stop the daemon: losing a log
    line is the lesser harm, as with the standard library's `Handler.handleError`.
    """

    def msg(self, message: str) -> None:
        """Write and flush `message`, or drop it if the stream fails."""
        # ValueError: "I/O operation on closed file".
        with contextlib.suppress(OSError, ValueError):
            super().msg(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


# --- redaction -------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    """Whether a value logged under `key` is a secret."""
    lowered = key.lower()
    if lowered.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: hide secret-named values and passwords inside URLs.

    Values other than text, numbers, mappings and sequences are turned into text
    first (an exception's message may hold a URL).
    """
    return {
        key: value if key in _PASS_THROUGH else _redact_value(key, value, 0)
        for key, value in event_dict.items()
    }


def _redact_value(key: str, value: object, depth: int) -> object:
    if value is None:
        return None
    if is_secret_key(key):
        return REDACTED
    if isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return redact_urls(str(value))
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_redact_value("", item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return redact_urls(value if isinstance(value, str) else str(value))


# --- logfmt and the journal ------------------------------------------------------


def logfmt_key(key: str) -> str:
    """`key` with every character logfmt cannot carry bare replaced by `_`."""
    return _LOGFMT_KEY_UNSAFE.sub("_", key) or "_"


def logfmt_value(value: object) -> str:
    """`value` as one logfmt token: bare if it can be, else quoted and escaped.

    Escapes keep one event on one line: backslash, quote, \\n, \\r, \\t, and any
    other unprintable character (controls, U+2028, lone surrogates) as \\xNN,
    \\uNNNN or \\UNNNNNNNN. Printable Unicode stays as it is.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        # JSON, not a Python repr: a log reader parses it with any JSON library.
        text = json.dumps(_jsonable(value), ensure_ascii=False, default=str)
    else:
        text = value if isinstance(value, str) else str(value)
    if _LOGFMT_BARE.fullmatch(text) and text.isprintable():
        return text
    return '"' + "".join(_escape_char(ch) for ch in text) + '"'


def _jsonable(value: object) -> object:
    """Sets as sorted lists and mappings with text keys, for `json.dumps`."""
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _escape_char(ch: str) -> str:
    if ch in _LOGFMT_ESCAPES:
        return _LOGFMT_ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def render_logfmt(event_dict: Mapping[str, object]) -> str:
    """`event=... key=value ...`: the event first, then the rest in the order given."""
    fields = {"event": event_dict.get("event", "")}
    fields.update((k, v) for k, v in event_dict.items() if k != "event")
    return " ".join(f"{logfmt_key(k)}={logfmt_value(v)}" for k, v in fields.items())


def render_journal(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """structlog renderer: `<priority>` then logfmt; the level travels as the priority."""
    level = str(event_dict.pop("level", "info"))
    priority = PRIORITIES.get(_LEVEL_ALIASES.get(level, level), PRIORITIES["info"])
    return f"<{priority}>{render_logfmt(event_dict)}"


# --- the processor chains --------------------------------------------------------


def _lead_with_time_level_event(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Put timestamp, level and event first, where a reader's eye starts."""
    lead = ("timestamp", "level", "event")
    ordered = {k: event_dict[k] for k in lead if k in event_dict}
    ordered.update((k, v) for k, v in event_dict.items() if k not in lead)
    return ordered


def _journal_processors(_stream: TextIO) -> list[Processor]:
    return [structlog.processors.format_exc_info, redact, render_journal]


def _json_processors(_stream: TextIO) -> list[Processor]:
    return [
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
        _lead_with_time_level_event,
        # ASCII only: a lone surrogate (an undecodable file name) cannot break the write.
        structlog.processors.JSONRenderer(default=str),
    ]


def _console_processors(stream: TextIO) -> list[Processor]:
    # No format_exc_info here: ConsoleRenderer formats tracebacks itself, better.
    return [
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        redact,
        structlog.dev.ConsoleRenderer(
            colors=_isatty(stream), exception_formatter=_redacted_traceback
        ),
    ]


def _redacted_traceback(out: TextIO, exc_info: ExcInfo) -> None:
    """structlog's plain traceback, with passwords in URLs hidden like everywhere else."""
    text = io.StringIO()
    structlog.dev.plain_traceback(text, exc_info)
    out.write(redact_urls(text.getvalue()))


_COMMON: tuple[Processor, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.StackInfoRenderer(),
)
_FORMAT_PROCESSORS: Mapping[LogFormat, Callable[[TextIO], list[Processor]]] = {
    "journal": _journal_processors,
    "json": _json_processors,
    "console": _console_processors,
}


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False
