"""Passwords and tokens out of URLs and text, before anything is printed or logged."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

REDACTED = "***"

_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#]*@")


def redact_url(url: str) -> str:
    """`url` with any password replaced by ``***``, fit for logs and messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        # Cannot tell where a password would be: show only the scheme.
        return url.partition(":")[0] + "://(unparseable)"
    if password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def redact_urls(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` replaced."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


# Pieces shorter than this are not hidden in free text: "ab" would be cut out of
# every word. Secrets (tokens, keys, passwords) are longer.
SHORTEST_SECRET = 4


def url_secrets(url: str) -> tuple[str, ...]:
    """Every part of `url` that may be a secret, as written and %-decoded: user,
    password, path segments, query values, fragment, and the host unless it is a
    machine's name or address (Apprise URLs put tokens there: `tgram://TOKEN/CHAT`).

    For `hide`: a library's error message may quote any of them.
    """
    try:
        parts = urlsplit(url)
        host, user, password = parts.hostname or "", parts.username, parts.password
    except ValueError:
        # Cannot tell the parts apart: hide everything after the scheme.
        return _both(url.partition("://")[2])
    pieces = [user or "", password or "", parts.fragment]
    pieces += parts.path.split("/")
    pieces += [value for _key, value in parse_qsl(parts.query, keep_blank_values=True)]
    if not _names_a_machine(host):
        hostport = parts.netloc.rpartition("@")[2]
        pieces += [host, hostport, *hostport.split(":")]
    found = dict.fromkeys(p for piece in pieces for p in _both(piece))
    return tuple(p for p in found if len(p) >= SHORTEST_SECRET)


def _both(piece: str) -> tuple[str, ...]:
    return (piece, unquote(piece))


def _names_a_machine(host: str) -> bool:
    """A dotted name, an IP address, or localhost: where, not a secret."""
    return host == "localhost" or "." in host or ":" in host


def hide(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every one of `secrets` (longest first) replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
