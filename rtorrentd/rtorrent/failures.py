"""What a failed exchange with rtorrent means, for every transport, in one place.

OS, TLS and timeout errors become `TransportError` subclasses here, at the edge,
with messages that say what to check. Both transports (SCGI, HTTP) use the same
walk through wrapped errors, the same "reason" (the OS's or OpenSSL's own words,
never a library's text, which may quote a URL with its login) and the same
messages for timeouts and oversized replies.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Iterator

from rtorrentd.errors import (
    ConnectionRefused,
    PermissionDenied,
    ReplyTooLarge,
    SocketMissing,
    TransportError,
    TransportTimeout,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "HTTP_CONNECT",
    "TCP_CONNECT",
    "UNIX_CONNECT",
    "ErrorRule",
    "causes",
    "connect_timeout",
    "reason",
    "reply_timeout",
    "too_large",
    "translate",
]

# (error, what we raise, message); the first rule matching the error, or any error
# it wraps, wins. {where} is the address (a redacted URL), {reason} the OS's words.
ErrorRule = tuple[type[BaseException], type[TransportError], str]

UNIX_CONNECT: tuple[ErrorRule, ...] = (
    (
        FileNotFoundError,
        SocketMissing,
        "no socket at {where}: is rtorrent running, "
        "and is network.scgi.open_local set to this path?",
    ),
    (
        NotADirectoryError,
        SocketMissing,
        "no socket at {where} (a parent is not a directory): check the path",
    ),
    (
        PermissionError,
        PermissionDenied,
        "permission denied on {where}: add the user rtorrentd runs as to the socket's "
        "group and make the socket group-writable (chmod 660); check its directories too",
    ),
    (
        ConnectionRefusedError,
        ConnectionRefused,
        "nothing listens on {where}: a stale socket file (or not a socket); is rtorrent running?",
    ),
)

TCP_CONNECT: tuple[ErrorRule, ...] = (
    (
        ConnectionRefusedError,
        ConnectionRefused,
        "nothing listens at {where}: is rtorrent running, "
        "with network.scgi.open_port set to this address?",
    ),
    (socket.gaierror, TransportError, "cannot resolve the host of {where}: {reason}"),
    (PermissionError, PermissionDenied, "not permitted to connect to {where}: {reason}"),
)

HTTP_CONNECT: tuple[ErrorRule, ...] = (
    (
        ssl.SSLCertVerificationError,
        TransportError,
        "{where}: the server's TLS certificate is not trusted ({reason}); for a "
        "self-signed certificate set ca_file to it (or to its CA) in [rtorrent], "
        "or, on a network you trust, tls_verify = false",
    ),
    (
        ssl.SSLError,
        TransportError,
        "{where}: the TLS handshake failed ({reason}): does this port speak HTTPS?",
    ),
    (
        ConnectionRefusedError,
        ConnectionRefused,
        "nothing listens at {where}: is the web server running, and is this its port?",
    ),
    (socket.gaierror, TransportError, "cannot resolve the host of {where}: {reason}"),
    (PermissionError, PermissionDenied, "not permitted to connect to {where}: {reason}"),
)


def translate(exc: BaseException, rules: tuple[ErrorRule, ...], where: str) -> TransportError:
    """What a failure to connect means, from the OS or TLS error behind `exc`."""
    for cause in causes(exc):
        for kind, error, template in rules:
            if isinstance(cause, kind):
                return error(template.format(where=where, reason=reason(cause)))
    return TransportError(f"cannot connect to {where}: {reason(exc)}")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every error it wraps: anyio's connect_tcp raises a bare OSError
    "All connection attempts failed" from the real error (or a group of them), and
    httpcore chains some (TLS failures) by context, not cause."""
    yield exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from causes(inner)
    elif (inner := exc.__cause__ or exc.__context__) is not None:
        yield from causes(inner)


def reason(exc: BaseException) -> str:
    """The OS's or OpenSSL's words for `exc` and what it wraps ("self-signed
    certificate" for a certificate's fault); else the error's class name. Never a
    library's own text: httpx's may quote the URL, login included."""
    reasons = [
        getattr(cause, "verify_message", None) or cause.strerror or type(cause).__name__
        for cause in causes(exc)
        if isinstance(cause, OSError) and cause.errno is not None
    ]
    return "; ".join(dict.fromkeys(reasons)) or type(exc).__name__


def connect_timeout(where: str, seconds: float, check: str) -> TransportTimeout:
    """No connection within `seconds` (`connect_timeout`); `check` says what to look at."""
    return TransportTimeout(
        f"{where}: no connection within {seconds:g} s (connect phase, connect_timeout): {check}"
    )


def reply_timeout(where: str, seconds: float, phase: str = "") -> TransportTimeout:
    """No whole reply within `seconds` (`timeout`); `phase` says where it stuck."""
    stuck = f", stuck {phase}" if phase else ""
    return TransportTimeout(
        f"{where}: no complete reply within {seconds:g} s (timeout; reply phase{stuck}): "
        "is rtorrent busy or frozen? raise timeout for slow calls"
    )


def too_large(where: str, cap: int, expected: int | None = None) -> ReplyTooLarge:
    """The reply is (or says it will be, `expected` bytes) over `max_reply` = `cap`."""
    size = "is over" if expected is None else f"will be {expected} bytes, over"
    return ReplyTooLarge(
        f"{where}: the reply {size} max_reply = {cap} bytes ({cap / 2**20:.1f} MiB): "
        "raise max_reply in the [rtorrent] section of the configuration"
    )
