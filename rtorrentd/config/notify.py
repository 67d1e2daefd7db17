"""`[notify]`: the Apprise URLs to send messages to, and which happenings to send.

Apprise (the `notify` extra) is imported only when a file has `[notify]`: each
URL is checked by Apprise itself, so `check` refuses what the daemon could not
send to. A URL is never shown in a message, since most of it is often the secret
(`tgram://BOTTOKEN/CHAT`): a URL is named by its position and scheme.
"""

from __future__ import annotations

import logging
import threading

from rtorrentd.config.model import EVENTS, NotifySettings
from rtorrentd.config.source import Where
from rtorrentd.config.values import Invalid, show, to_text

URLS_HINT = (
    'write Apprise URLs, like urls = ["ntfy://ntfy.sh/my-topic", "tgram://BOTTOKEN/CHATID"]'
    " (https://github.com/caronc/apprise/wiki lists every service)"
)
INSTALL_HINT = "install it: pip install 'rtorrentd[notify]'"
# Libraries whose log records may carry a URL with its secret (Apprise logs the
# URL it could not parse; urllib3 the paths it posts to): kept out of stderr.
QUIET_LOGGERS = ("apprise", "urllib3", "requests")
_quieted = threading.Lock()


def label(url: str, index: int) -> str:
    """How messages name the `index`-th URL (from 1): `#2 (tgram://…)`, no secret."""
    scheme, sep, _rest = url.partition("://")
    shown = f"{scheme}://…" if sep and scheme.isascii() and scheme.isalnum() else "…"
    return f"#{index} ({shown})"


def quiet_library_logs() -> None:
    """Keep the records of `QUIET_LOGGERS` from Python's last-resort handler, which
    would print them, URLs and all, on stderr. Whoever wants them (the sender, for
    `notify.failed`) adds a handler of its own."""
    with _quieted:
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
                logger.addHandler(logging.NullHandler())
            logger.propagate = False


def to_events(value: object) -> tuple[str, ...]:
    """A list of known event names, each once."""
    hint = f"write a list of: {', '.join(EVENTS)}"
    if not isinstance(value, list):
        raise Invalid("is not a list of events", hint)
    for item in value:
        if item not in EVENTS:
            raise Invalid(f"has {show(item)}, which is not an event", hint)
    return tuple(dict.fromkeys(value))


def to_title(value: object) -> str:
    """One short line: what every message's title starts with."""
    text = to_text(value)
    if not text.strip() or len(text) > 100 or not text.isprintable():
        raise Invalid("is not a short line of text", 'write a name, like title = "seedbox"')
    return text


def notify_settings(values: dict[str, object], urls: tuple[str, ...]) -> NotifySettings:
    """The settings from `[notify]`'s converted `values` and its checked `urls`."""
    defaults = NotifySettings(urls)
    events = values.get("events", defaults.events)
    title = values.get("title", defaults.title)
    assert isinstance(events, tuple) and isinstance(title, str)  # the converters' types
    return NotifySettings(urls, events, title)


def check_urls(where: Where, value: object, text: str) -> tuple[str, ...]:
    """`urls` as Apprise URLs, each of which Apprise can send to; else a ConfigError
    at the URL's line that names it by position and scheme, never whole."""
    if not isinstance(value, list) or not value:
        raise where.error("urls is not a list of Apprise URLs", URLS_HINT, "urls")
    try:
        # Here, not at the top: Apprise is imported only for a file with [notify].
        import apprise  # noqa: PLC0415
    except ImportError:
        raise where.error("needs Apprise, which is not installed", INSTALL_HINT) from None
    quiet_library_logs()
    for index, url in enumerate(value, 1):
        line = _line_of(where, url, text)
        if not isinstance(url, str):
            problem = f"urls {label('', index)} is {show(url)}, not text"
            raise where.error_at(line, f"{problem}\n  {URLS_HINT}")
        if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
            problem = f"urls {label(url, index)} is not a URL Apprise can send to"
            hint = "check its scheme and the parts the service needs; " + URLS_HINT
            raise where.error_at(line, f"{problem}\n  {hint}")
    return tuple(dict.fromkeys(value))


def _line_of(where: Where, url: object, text: str) -> int | None:
    """The line that holds `url` at or after the `urls` key, else the key's line."""
    start = where.lines.line(where.place, "urls")
    if not isinstance(url, str) or not url or start is None:
        return start
    numbered = enumerate(text.split("\n")[start - 1 :], start)
    return next((number for number, line in numbered if url in line), start)
