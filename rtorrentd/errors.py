"""Every error rtorrentd raises derives from `RtorrentdError`.

Messages are written for the person running the daemon: they say what went wrong
and what to check or write instead.
"""

from __future__ import annotations


class RtorrentdError(Exception):
    """Base of every error rtorrentd raises on purpose."""


class ConfigError(RtorrentdError):
    """The configuration file is invalid; the message names file, line and rule."""


class RpcError(RtorrentdError):
    """Something went wrong at the XML-RPC level (a bad reply, or a fault)."""


class MalformedReply(RpcError):
    """rtorrent's reply could not be understood (bad SCGI framing or bad XML-RPC)."""


class RpcFault(RpcError):
    """rtorrent answered with an XML-RPC fault."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"rtorrent fault {code}: {message}")
        self.code = code
        self.message = message


class JsonReplyNotUtf8(RpcError):
    """rtorrent could not write its answer as JSON-RPC (error -32700): a string in
    it, a torrent name most likely, is not UTF-8. XML-RPC carries it: ask again so."""

    def __init__(self, message: str) -> None:
        super().__init__(
            f"rtorrent could not answer in JSON ({message}): a name in the reply is "
            "not UTF-8; XML-RPC can carry it"
        )
        self.message = message


class UnknownTorrent(RpcFault):
    """rtorrent has no torrent with that info-hash (fault -501 or newer wording)."""


class UnknownMethod(RpcFault):
    """rtorrent does not know the method (fault -506): an older or trimmed build."""


class UntrustedCommand(RpcFault):
    """rtorrent (0.16.9+) refused `command` because the connection is marked untrusted.

    A web server in front of rtorrent marks its requests so with the SCGI parameter
    ``UNTRUSTED_CONNECTION=1`` (for a browser-facing endpoint such as ruTorrent's);
    rtorrent then runs only the commands it marks safe: reading, `d.pause`,
    `d.close`, `d.erase`, but not `d.stop` or `d.start`. Faults -507 (XML-RPC) and
    -32601 (JSON-RPC), `Command "d.stop" is not allowed for untrusted connections.`
    """

    def __init__(self, code: int, message: str, command: str) -> None:
        super().__init__(code, message)
        self.command = command
        self.args = (
            f"rtorrent refused {command}: this connection is marked untrusted "
            "(UNTRUSTED_CONNECTION=1, set by the web server in front of rtorrent), and "
            "rtorrent 0.16.9+ then runs only the commands it deems safe. Give rtorrentd a "
            "trusted connection: rtorrent's socket directly (url = "
            '"scgi:///path/to/rpc.socket"), or a web server location of its own without '
            '"scgi_param UNTRUSTED_CONNECTION 1" (write "scgi_param UNTRUSTED_CONNECTION 0;")',
        )


class SessionNotSaved(RpcError):
    """rtorrent did not write a torrent's session files, or rtorrentd cannot see them
    (rtorrent 0.16 saves in the background: the call's success proves nothing)."""


class TransportError(RtorrentdError):
    """rtorrent could not be reached, or the connection failed mid-call."""


class SocketMissing(TransportError):
    """The Unix socket file does not exist."""


class PermissionDenied(TransportError):
    """The socket (or the endpoint) refused us for lack of permission."""


class ConnectionRefused(TransportError):
    """Nothing is listening at the address."""


class TransportTimeout(TransportError):
    """rtorrent did not answer in time."""


class ConnectionClosed(TransportError):
    """The peer closed the connection before the reply was complete."""


class ReplyTooLarge(TransportError):
    """The reply exceeded the configured size cap; it was not read further."""


class HttpError(TransportError):
    """The web server in front of rtorrent answered with an HTTP error."""


class UnsafeDeletion(RtorrentdError):
    """A deletion was refused because it could touch data it must not."""


class OrphanScanRefused(RtorrentdError):
    """The orphan scan was refused as a whole: what every torrent lists cannot be
    told now (an instance unreachable, a torrent hash-checking, moving, or
    incomplete without its files). Nothing is moved; the next scan tries again."""


class TrashError(RtorrentdError):
    """The recycle bin cannot do what was asked: it cannot be read or written, an
    entry is not there, or a restore would overwrite something; nothing was lost."""


class StepRefused(RtorrentdError):
    """A relabel or throttle step was refused: it would not do what the rule says
    (a throttle group rtorrent does not have)."""


class MetainfoError(RtorrentdError):
    """A torrent's metainfo (its .torrent) is malformed, or not that torrent's."""


class ExprError(ConfigError):
    """A `when` condition does not parse; `column` is 0-based into its text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
