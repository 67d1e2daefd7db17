"""XML-RPC over HTTP(S), for an rtorrent behind a web server (nginx ``scgi_pass``).

The set-up this serves is contrib/nginx-rtorrent.conf: nginx at /RPC2 with basic
authentication and TLS, handing each request to rtorrent's SCGI socket. nginx reads
rtorrent's reply into its own buffers, so a slow reader here no longer freezes
rtorrent (RTORRENT.md); the size cap still bounds our memory: past it the response
is closed and `ReplyTooLarge` raised.

One `httpx.AsyncClient` per transport: keep-alive saves a TCP and a TLS handshake
per call, which counts when the executor makes several calls per torrent to a
remote seedbox (nginx opens a fresh SCGI connection per request anyway). Use a
transport from one event loop, and `aclose` it.

The password never reaches a message. URLs are shown through `redact_url`, and
httpx's own exception texts are never passed on (they may quote the URL); a message
carries only our words and the OS's or OpenSSL's.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import anyio
import httpx

from rtorrentd import __version__
from rtorrentd.errors import (
    ConfigError,
    ConnectionClosed,
    HttpError,
    MalformedReply,
    PermissionDenied,
    TransportError,
    TransportTimeout,
)
from rtorrentd.logger import get_logger
from rtorrentd.protocol.pieces import Pieces
from rtorrentd.redact import redact_url
from rtorrentd.rtorrent import failures

# Shared with the SCGI transport: its limits and its login record.
from rtorrentd.rtorrent.limits import Access, Limits

__all__ = ["HttpTransport", "open_http"]

log = get_logger("rtorrentd.rtorrent.transport")

HTTP_HELP = "write the XML-RPC location, like https://seedbox.example/RPC2"

# Below nginx's default keepalive_timeout (75 s): we drop an idle connection before
# nginx does, rather than race it with a request on a socket it is closing.
_KEEPALIVE_SECONDS = 30.0
_XML_TYPES = frozenset({"text/xml", "application/xml"})

# HTTP statuses that say something specific about the set-up: (error, message).
_STATUSES: Mapping[int, tuple[type[TransportError], str]] = {
    401: (
        PermissionDenied,
        "rtorrent rejected the credentials for {url} (HTTP 401): check username and "
        "password_file against the web server's password file (auth_basic_user_file)",
    ),
    403: (
        PermissionDenied,
        "{url} refused us (HTTP 403): check the web server's allow/deny rules",
    ),
    404: (
        HttpError,
        "no XML-RPC endpoint at {url} (HTTP 404): is the nginx location /RPC2, "
        "and is this the URL's path?",
    ),
    413: (
        HttpError,
        "{url}: the request is too large for the web server (HTTP 413): "
        "raise nginx's client_max_body_size",
    ),
    502: (
        HttpError,
        "{url}: nginx could not reach rtorrent's socket (HTTP 502): is rtorrent "
        "running, and may nginx's user connect to the socket? (check the socket's "
        "permissions for nginx's user; nginx's error log names the cause)",
    ),
    504: (
        TransportTimeout,
        "{url}: nginx gave up waiting for rtorrent (HTTP 504): is rtorrent busy or "
        "frozen? raise nginx's scgi_read_timeout for slow calls",
    ),
}
_NO_LOGIN = "{url} asks for a login (HTTP 401): set username and password_file in [rtorrent]"


def open_http(url: str, limits: Limits, access: Access) -> HttpTransport:
    """An `HttpTransport` for an ``http(s)://`` `url`; raises `ConfigError` when the
    URL, the login or the TLS settings cannot work. Nothing connects yet."""
    shown = redact_url(url)
    parts = _split(url, shown)
    auth = _login(parts, shown, access)
    if auth is not None and parts.scheme == "http" and not _is_loopback(parts.hostname):
        log.warning("rtorrent.cleartext_login", url=shown, hint="use https")
    client = httpx.AsyncClient(
        auth=auth,
        verify=_tls(access),
        timeout=httpx.Timeout(limits.timeout, connect=limits.connect_timeout),
        limits=httpx.Limits(max_keepalive_connections=2, keepalive_expiry=_KEEPALIVE_SECONDS),
        headers={"Content-Type": "text/xml", "User-Agent": f"rtorrentd/{__version__}"},
        # A daemon's behaviour should not hinge on its environment (proxies, .netrc,
        # SSL_CERT_FILE): everything comes from the configuration.
        trust_env=False,
    )
    return HttpTransport(shown, _target(parts, shown), client, limits)


def _split(url: str, shown: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a bad port
    except ValueError:
        raise ConfigError(f"rtorrent url {shown!r} is not a valid URL: {HTTP_HELP}") from None
    if not parts.hostname:
        raise ConfigError(f"rtorrent url {shown!r} lacks a host: {HTTP_HELP}")
    if not parts.path:
        raise ConfigError(f"rtorrent url {shown!r} lacks the location's path: {HTTP_HELP}")
    return parts


def _target(parts: SplitResult, shown: str) -> str:
    """The URL httpx posts to: the login travels in `auth`, never inside the URL."""
    target = urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=_host_part(parts)))
    try:
        httpx.URL(target)  # stricter than urlsplit (spaces, control characters)
    except httpx.InvalidURL:
        raise ConfigError(f"rtorrent url {shown!r} is not a valid URL: {HTTP_HELP}") from None
    return target


def _login(parts: SplitResult, shown: str, access: Access) -> httpx.BasicAuth | None:
    """The basic-auth login: from the URL, or from username and password_file."""
    if parts.username is not None:
        if access.username is not None or access.password is not None:
            raise ConfigError(
                f"rtorrent url {shown!r} carries a login and username/password_file are "
                "set too: keep one (username and password_file keep the password out of "
                "the configuration)"
            )
        # userinfo is percent-encoded (RFC 3986): "p%40ss" is "p@ss".
        return httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
    if access.username is None and access.password is None:
        return None
    if access.username is None or access.password is None:
        raise ConfigError(
            "username and password_file go together: set both in [rtorrent], or neither"
        )
    return httpx.BasicAuth(access.username, access.password)


def _host_part(parts: SplitResult) -> str:
    """The URL's netloc without its userinfo."""
    return parts.netloc.rpartition("@")[2]


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _tls(access: Access) -> ssl.SSLContext | bool:
    """What httpx verifies the server against: the system's CAs, `ca_file`, or nothing."""
    if not access.tls_verify:
        return False
    try:
        # With a cafile, only its certificates are trusted: a self-signed set-up pins them.
        return ssl.create_default_context(cafile=access.ca_file)
    except OSError as exc:  # ssl.SSLError is one too: not PEM, no certificate inside
        raise ConfigError(
            f"ca_file {access.ca_file!r}: cannot load it as PEM certificates: "
            f"{failures.reason(exc)}"
        ) from exc


@dataclass(frozen=True, slots=True)
class HttpTransport:
    """XML-RPC over HTTP(S): one POST of ``text/xml`` per call, reply read whole."""

    url: str  # as configured, password redacted: for messages
    _target: str = field(repr=False)
    _client: httpx.AsyncClient = field(repr=False)
    _limits: Limits

    async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
        """POST one request body (XML-RPC, or of `content_type`); return the reply body.

        nginx's scgi_params pass the Content-Type on as CONTENT_TYPE, which is how
        rtorrent tells JSON-RPC from XML-RPC.
        """
        return (await self.request_pieces(body, content_type=content_type)).join()

    async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
        """`request`, the reply body kept as the pieces it was read in (see
        `protocol.pieces`: a decoder drops each once read past)."""
        headers = {"Content-Type": content_type} if content_type else None
        try:
            with anyio.fail_after(self._limits.timeout):
                async with self._client.stream(
                    "POST", self._target, content=body, headers=headers
                ) as response:
                    self._check_status(response, content_type)
                    return await self._read(response)
        except httpx.ConnectTimeout as exc:
            raise failures.connect_timeout(
                self.url,
                self._limits.connect_timeout,
                "is the host reachable, is the web server up?",
            ) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise failures.reply_timeout(self.url, self._limits.timeout) from exc
        except httpx.ConnectError as exc:
            raise failures.translate(exc, failures.HTTP_CONNECT, self.url) from exc
        except httpx.HTTPError as exc:
            raise ConnectionClosed(
                f"{self.url}: the HTTP exchange failed ({type(exc).__name__}): "
                f"{failures.reason(exc)}"
            ) from exc

    async def aclose(self) -> None:
        """Close the pooled connections; idempotent."""
        await self._client.aclose()

    def _check_status(self, response: httpx.Response, content_type: str | None) -> None:
        status = response.status_code
        if status == 200:
            self._check_type(response, content_type)
            return
        if status == 401 and response.request.headers.get("Authorization") is None:
            raise PermissionDenied(_NO_LOGIN.format(url=self.url))
        if status in _STATUSES:
            error, template = _STATUSES[status]
            raise error(template.format(url=self.url))
        if response.is_redirect:
            location = redact_url(response.headers.get("Location", "?"))
            raise HttpError(
                f"{self.url} redirects (HTTP {status}) to {location}: write that URL instead"
            )
        raise HttpError(
            f"{self.url}: the web server answered HTTP {status} {response.reason_phrase}"
        )

    def _check_type(self, response: httpx.Response, content_type: str | None) -> None:
        """A 200 that is not XML (nor what was sent) came from something other than
        rtorrent (a default page, a login portal): say so rather than fail to parse it."""
        kind = response.headers.get("Content-Type", "")
        expected = _XML_TYPES | {content_type} if content_type else _XML_TYPES
        if kind.partition(";")[0].strip().lower() not in expected:
            wanted = content_type or "XML"
            raise MalformedReply(
                f"{self.url} answered with {kind or 'no content type'!r}, not {wanted}: "
                "is this the location that passes requests to rtorrent (scgi_pass)?"
            )

    async def _read(self, response: httpx.Response) -> Pieces:
        """The whole body, decoded, counting towards `max_reply` as it comes."""
        cap = self._limits.max_reply
        declared = response.headers.get("Content-Length", "")
        if (
            declared.isdigit()
            and int(declared) > cap
            and "Content-Encoding" not in response.headers
        ):
            raise failures.too_large(self.url, cap, int(declared))
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > cap:
                # Leaving the `stream` block closes the connection: nothing more is read.
                raise failures.too_large(self.url, cap)
            chunks.append(chunk)
        return Pieces(chunks)
