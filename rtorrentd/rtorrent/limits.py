"""What every transport is given: its limits, and for HTTP(S) its credentials.

Apart from the transports themselves so that `http.py` (imported only for http
URLs) and `transport.py` (which opens it) share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtorrentd.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a call may take and how large its reply may be, checked once."""

    timeout: float
    connect_timeout: float
    max_reply: int
    # SCGI replies gzipped: True, False, or None for "where it pays" (across a network).
    gzip: bool | None = None

    def __post_init__(self) -> None:
        # `not x > 0` also refuses NaN.
        if not (self.timeout > 0 and self.connect_timeout > 0):
            raise ConfigError("timeout and connect_timeout must be positive numbers of seconds")
        if self.max_reply < 1:
            raise ConfigError("max_reply must be a positive number of bytes")


@dataclass(frozen=True, slots=True)
class Access:
    """Who we are and whom we trust, for HTTP(S); SCGI has neither login nor TLS."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_verify: bool = True
    ca_file: str | None = None
