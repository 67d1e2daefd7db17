"""Passwords out of URLs and text, before anything is printed or logged."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

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
