"""The only socket code in rtorrentd: carry one XML-RPC request to rtorrent.

One request per connection: rtorrent answers one SCGI request and closes, and a
byte past the request makes it hang. The reply is read at once and whole, into
memory, before anything parses it: rtorrent writes its reply on a blocking socket
while holding its global lock, so a client that pauses mid-reply freezes all of
rtorrent. A size cap bounds that memory; over it, the connection is closed (which
frees rtorrent at once) and `ReplyTooLarge` raised.

OS and anyio errors are translated at the edge, into `TransportError` subclasses
whose messages say what to check, by `failures` (shared with the HTTP transport).
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteStream

from rtorrentd.config.model import RtorrentSettings
from rtorrentd.errors import ConfigError, ConnectionClosed, TransportError
from rtorrentd.protocol import scgi
from rtorrentd.protocol.pieces import Pieces, Spool
from rtorrentd.redact import redact_url
from rtorrentd.rtorrent import failures
from rtorrentd.rtorrent.limits import Access, Limits

__all__ = ["URL_HELP", "ScgiTransport", "Transport", "open_transport", "redact_url"]

URL_HELP = "use scgi:///absolute/path/rpc.socket or scgi://host:port"

_CHUNK = 256 * 1024  # asyncio reads at most this much per wake-up anyway
_RTORRENT_MAX_REQUEST = 2 * 1024 * 1024  # larger requests: rtorrent 0.9.8 closes, no reply
# Gzip replies larger than this are unpacked in a worker thread (~2 ms per 70 KB).
_INLINE_GUNZIP = 64 * 1024
# The configuration's defaults (timeouts, reply cap), defined once, in config.model.
_DEFAULTS = RtorrentSettings(url="")


class Transport(Protocol):
    """Carries one request body to rtorrent and brings back the reply body.

    The body is XML-RPC unless `content_type` says otherwise (``application/json``
    for JSON-RPC, which rtorrent 0.15.2+ reads on the same socket).
    """

    @property
    def url(self) -> str:
        """Where rtorrent is, as configured, any password redacted: for messages."""
        ...

    async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
        """Send one request body (XML-RPC, or of `content_type`); return the reply body."""
        ...

    async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
        """`request`, the reply body kept as the pieces it was read in: for the
        snapshot, whose decoder drops each piece once read past (`protocol.pieces`)."""
        ...

    async def aclose(self) -> None:
        """Release what the transport holds (an HTTP transport's pool); idempotent."""
        ...


def open_transport(
    url: str,
    *,
    timeout: float = _DEFAULTS.timeout,
    connect_timeout: float = _DEFAULTS.connect_timeout,
    max_reply: int = _DEFAULTS.max_reply,
    username: str | None = None,
    password: str | None = None,
    tls_verify: bool = True,
    ca_file: str | None = None,
    gzip: bool | None = None,
) -> Transport:
    """A transport for `url`: ``scgi:///abs/path/rpc.socket``, ``scgi://host:port``
    or ``http(s)://host/RPC2`` (a web server passing requests on to rtorrent).

    `timeout` bounds a whole call (connect, send, read) in seconds, `connect_timeout`
    the connect alone, `max_reply` the reply's size in bytes (unpacked). `gzip` asks
    an SCGI rtorrent for gzipped replies; by default only across a network (not to a
    Unix socket or a loopback address). The rest is for HTTP(S) only: a basic-auth
    login (or one written in the URL, not both), and whether and how to verify the
    server's TLS certificate (`ca_file`: PEM certificates to trust instead of the
    system's). Nothing connects yet. Raises `ConfigError` for a URL,
    login or limit that cannot work.
    """
    limits = Limits(timeout, connect_timeout, max_reply, gzip)
    access = Access(username, password, tls_verify, ca_file)
    scheme, sep, rest = url.partition("://")
    opener = _OPENERS.get(scheme.lower()) if sep else None
    if opener is None:
        raise ConfigError(f"unsupported rtorrent url {redact_url(url)!r}: {URL_HELP}")
    return opener(url, rest, limits, access)


# --- endpoints: how to connect, and what a failure to connect means -------------


@dataclass(frozen=True, slots=True)
class _UnixEndpoint:
    path: str

    async def connect(self) -> ByteStream:
        return await anyio.connect_unix(self.path)

    def connect_error(self, exc: OSError) -> TransportError:
        return failures.translate(exc, failures.UNIX_CONNECT, self.path)


@dataclass(frozen=True, slots=True)
class _TcpEndpoint:
    host: str
    port: int

    async def connect(self) -> ByteStream:
        return await anyio.connect_tcp(self.host, self.port)

    def connect_error(self, exc: OSError) -> TransportError:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return failures.translate(exc, failures.TCP_CONNECT, f"{host}:{self.port}")


_Endpoint = _UnixEndpoint | _TcpEndpoint


# --- the SCGI transport ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScgiTransport:
    """XML-RPC over SCGI, on a Unix socket or TCP; one connection per request.

    With `gzip`, rtorrent 0.16 gzips its replies (0.9.8 ignores the request):
    worth it across a network, where rtorrent holds its global lock for as long as
    the reply takes to leave (a 1.4 MB snapshot packs into 70 KB); on a local
    socket the packing costs rtorrent more than the copy it saves.
    """

    url: str
    _endpoint: _Endpoint
    _limits: Limits
    gzip: bool = False

    async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
        """Send one request body (XML-RPC, or of `content_type`); return the reply body."""
        into = io.BytesIO()
        await self._call(body, content_type, into.write)
        return await self._unpacked(into.getvalue())

    async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
        """`request`, the reply body kept as the pieces it was read in (see
        `protocol.pieces`: a decoder drops each once read past)."""
        spool = Spool()
        await self._call(body, content_type, spool.write)
        pieces = spool.pieces()
        if scgi.is_gzipped(pieces.peek(2)):
            return Pieces((await self._unpacked(pieces.join()),))
        return pieces

    async def _call(
        self, body: bytes, content_type: str | None, keep: Callable[[bytes], object]
    ) -> None:
        """One exchange; the reply body goes to `keep` piece by piece."""
        deadline = anyio.current_time() + self._limits.timeout
        stream = await self._connect(deadline)
        async with stream:
            request = scgi.encode_request(body, accept_gzip=self.gzip, content_type=content_type)
            await self._exchange(stream, request, len(body), deadline, keep)

    async def _unpacked(self, reply: bytes) -> bytes:
        """A reply body, gunzipped if rtorrent gzipped it."""
        if not scgi.is_gzipped(reply):
            return reply
        if len(reply) > _INLINE_GUNZIP:
            xml = await anyio.to_thread.run_sync(scgi.gunzip, reply, self._limits.max_reply)
        else:
            xml = scgi.gunzip(reply, self._limits.max_reply)
        if len(xml) > self._limits.max_reply:
            raise failures.too_large(self.url, self._limits.max_reply)
        return xml

    async def aclose(self) -> None:
        """Nothing to release: every request has its own connection."""

    async def _connect(self, deadline: float) -> ByteStream:
        budget = min(self._limits.connect_timeout, deadline - anyio.current_time())
        try:
            with anyio.fail_after(budget):
                return await self._endpoint.connect()
        except TimeoutError as exc:  # before OSError: it is one
            raise failures.connect_timeout(
                self.url, budget, "is rtorrent overloaded or frozen, is the host reachable?"
            ) from exc
        except OSError as exc:
            raise self._endpoint.connect_error(exc) from exc

    async def _exchange(
        self,
        stream: ByteStream,
        request: bytes,
        body_size: int,
        deadline: float,
        keep: Callable[[bytes], object],
    ) -> None:
        phase = "sending the request"
        try:
            with anyio.fail_at(deadline):
                await stream.send(request)
                phase = "reading the reply"
                await self._read_reply(stream, body_size, keep)
        except TimeoutError as exc:
            raise failures.reply_timeout(self.url, self._limits.timeout, phase) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ConnectionClosed(
                f"{self.url}: connection lost {phase}: "
                f"{failures.reason(exc)}{_size_hint(body_size)}"
            ) from exc

    async def _read_reply(
        self, stream: ByteStream, request_size: int, keep: Callable[[bytes], object]
    ) -> None:
        """Read until EOF, or until the reply's Content-Length is in: without waiting
        for the close, one slow peer cannot stretch every call. The body goes to
        `keep` as it comes, apart from the header, so that a reply of tens of
        megabytes is held once (a `BytesIO`, whose `getvalue()` hands over its own
        buffer; or the pieces themselves), not once read and again as a copy
        without its header. Raises `MalformedReply` for a reply whose header never
        ended, or whose Content-Length is not what came."""
        head = bytearray()  # the header (and, until it is whole, all that came)
        start: int | None = None  # where the body starts, once the header is whole
        expected: int | None = None  # the whole reply's size, from Content-Length
        received = 0
        while expected is None or received < expected:
            try:
                chunk = await stream.receive(_CHUNK)
            except anyio.EndOfStream:
                self._check_complete(received, expected, request_size)
                break
            received += len(chunk)
            if start is not None:
                keep(chunk)
            else:
                head += chunk
                split = scgi.split_reply(head)
                if split is not None:
                    start, expected = split
                    keep(bytes(head[start:]))
                    del head[start:]
            self._check_size(received, expected)
        if start is None:  # the peer closed before the header's end
            raise scgi.no_header_end(head)
        scgi.check_parts(head, received - len(head))

    def _check_complete(self, received: int, expected: int | None, request_size: int) -> None:
        """At EOF: a short reply is the connection's fault, not rtorrent's words."""
        if not received:
            raise ConnectionClosed(
                f"{self.url}: rtorrent closed the connection without answering "
                f"(too many connections at once: 100 on 0.9.8, 63 on 0.16? restarting?)"
                f"{_size_hint(request_size)}"
            )
        if expected is not None and received < expected:
            raise ConnectionClosed(
                f"{self.url}: connection closed after {received} of the reply's {expected} bytes"
            )

    def _check_size(self, received: int, expected: int | None) -> None:
        cap = self._limits.max_reply
        if max(received, expected or 0) <= cap:
            return
        raise failures.too_large(self.url, cap, expected)


def _size_hint(request_size: int) -> str:
    if request_size <= _RTORRENT_MAX_REQUEST:
        return ""
    return (
        f"; the request is {request_size} bytes and rtorrent drops requests "
        f"over {_RTORRENT_MAX_REQUEST}: send smaller batches"
    )


# --- URLs ----------------------------------------------------------------------


def _open_scgi(url: str, rest: str, limits: Limits, access: Access) -> Transport:
    if access.username is not None or access.password is not None:
        raise ConfigError(
            f"rtorrent url {redact_url(url)!r}: SCGI takes no login; "
            "username and password_file are for http(s) urls"
        )
    if rest.startswith("/"):
        # Taken verbatim, not percent-decoded: it is a file name, as in rtorrent.rc.
        return ScgiTransport(url, _UnixEndpoint(rest), limits)
    host, port = _host_port(url, rest)
    gzip = not _is_loopback(host) if limits.gzip is None else limits.gzip
    return ScgiTransport(url, _TcpEndpoint(host, port), limits, gzip)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(url: str, rest: str) -> tuple[str, int]:
    parts = urlsplit("//" + rest)
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(
            f"rtorrent url {url!r}: a socket path must be absolute, with three slashes, "
            f"and a TCP address has nothing after the port: {URL_HELP}"
        )
    if parts.username is not None:
        raise ConfigError(f"rtorrent url {redact_url(url)!r}: SCGI takes no login: {URL_HELP}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"rtorrent url {url!r} has a bad port: {URL_HELP}") from exc
    if not parts.hostname or not port:
        raise ConfigError(f"rtorrent url {url!r} lacks a host or a port: {URL_HELP}")
    try:
        # What getaddrinfo would choke on with a UnicodeError, not an OSError.
        parts.hostname.encode("idna")
    except UnicodeError as exc:
        raise ConfigError(f"rtorrent url {url!r} has a bad host name: {URL_HELP}") from exc
    return parts.hostname, port


def _open_http(url: str, rest: str, limits: Limits, access: Access) -> Transport:
    # Imported here: httpx costs ~80 ms to import, which SCGI users need not pay
    # (tests/test_startup.py checks it).
    from rtorrentd.rtorrent.http import open_http  # noqa: PLC0415

    return open_http(url, limits, access)


# How each URL scheme is opened.
_OPENERS: dict[str, Callable[[str, str, Limits, Access], Transport]] = {
    "scgi": _open_scgi,
    "http": _open_http,
    "https": _open_http,
}
