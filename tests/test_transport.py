"""The SCGI transport against real sockets: peers that behave like rtorrent, and
peers that fail in the ways rtorrent (or its host) can fail.

Every peer is a real server on 127.0.0.1 or on a Unix socket in a temporary
directory, running in the test's own event loop; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteStream, Listener, SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from rtorrentd.errors import (
    ConfigError,
    ConnectionClosed,
    ConnectionRefused,
    MalformedReply,
    PermissionDenied,
    ReplyTooLarge,
    SocketMissing,
    TransportError,
    TransportTimeout,
)
from rtorrentd.rtorrent import failures
from rtorrentd.rtorrent.transport import ScgiTransport, Transport, open_transport, redact_url

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

DATA = Path(__file__).parent / "data"
KINDS = ["unix", "tcp"]
Handler = Callable[[ByteStream], Awaitable[None]]


def rtorrent_reply(body: bytes) -> bytes:
    """A reply framed exactly as rtorrent 0.9.8 frames it."""
    head = b"Status: 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body


# --- real peers --------------------------------------------------------------------


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (their paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="rtd-"))
    path.chmod(0o755)  # so that a test can reach it as another user
    yield path
    shutil.rmtree(path)


@contextlib.asynccontextmanager
async def serving(kind: str, handler: Handler, sock_dir: Path) -> AsyncIterator[str]:
    """Run `handler` for every connection to a fresh listener; yield its scgi:// url."""
    listener: Listener[SocketStream]
    if kind == "unix":
        path = sock_dir / "rpc.socket"
        listener = await anyio.create_unix_listener(path)
        url = f"scgi://{path}"
    else:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        url = f"scgi://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield url
        tg.cancel_scope.cancel()


@dataclass
class Request:
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def read_request(stream: BufferedByteReceiveStream) -> Request:
    """Read one SCGI request as rtorrent does, asserting what rtorrent relies on."""
    size = int(await stream.receive_until(b":", 10))
    fields = (await stream.receive_exactly(size)).split(b"\x00")
    assert b"," == await stream.receive_exactly(1)
    assert b"" == fields.pop()  # every name and value ends with a NUL
    headers = list(zip(fields[::2], fields[1::2], strict=True))
    assert b"CONTENT_LENGTH" == headers[0][0]  # first, or rtorrent refuses it
    body = await stream.receive_exactly(int(headers[0][1]))
    return Request(headers, body)


async def read_to_eof(stream: BufferedByteReceiveStream) -> bytes:
    data = b""
    with contextlib.suppress(anyio.EndOfStream):
        while True:
            data += await stream.receive()
    return data


@dataclass
class RtorrentLike:
    """Answers like rtorrent: echoes the request body as the reply body.

    It closes only after the client does, so a client that waited for EOF instead
    of stopping at Content-Length would time out; and anything the client sent
    past the request shows up in `trailing`.
    """

    chunk: int = 0  # send the reply in pieces of this size; 0: all at once
    requests: list[Request] = field(default_factory=list)
    trailing: list[bytes] = field(default_factory=list)
    finished: anyio.Semaphore = field(default_factory=lambda: anyio.Semaphore(0))

    async def __call__(self, raw: ByteStream) -> None:
        async with raw:
            stream = BufferedByteReceiveStream(raw)
            request = await read_request(stream)
            self.requests.append(request)
            await send_in_pieces(raw, rtorrent_reply(request.body), self.chunk)
            self.trailing.append(await read_to_eof(stream))
        self.finished.release()

    async def wait_finished(self, count: int = 1) -> None:
        """Until `count` connections are over: cancelling anyio in the middle of a
        read on a Unix socket can trip asyncio ("invalid state")."""
        with anyio.fail_after(5):
            for _ in range(count):
                await self.finished.acquire()


async def send_in_pieces(stream: ByteStream, data: bytes, chunk: int) -> None:
    step = chunk or len(data)
    for start in range(0, len(data), step):
        await stream.send(data[start : start + step])


def answering(reply: bytes) -> Handler:
    """A peer that reads the request, sends `reply` as is, and closes."""

    async def handle(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            await raw.send(reply)

    return handle


async def call(
    url: str,
    body: bytes = b"<x/>",
    *,
    timeout: float = 5.0,
    connect_timeout: float = 5.0,
    max_reply: int = 256 * 1024 * 1024,
) -> bytes:
    """One request through a fresh transport; short timeouts so a broken test fails fast."""
    transport = open_transport(
        url, timeout=timeout, connect_timeout=connect_timeout, max_reply=max_reply
    )
    return await transport.request(body)


# --- success -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_request_and_reply(kind: str, sock_dir: Path) -> None:
    peer = RtorrentLike()
    async with serving(kind, peer, sock_dir) as url:
        assert b"<methodCall/>" == await call(url, b"<methodCall/>")
        await peer.wait_finished()
    assert [Request([(b"CONTENT_LENGTH", b"13"), (b"SCGI", b"1")], b"<methodCall/>")] == (
        peer.requests
    )
    assert [b""] == peer.trailing  # not a byte after the request


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_one_connection_per_request(kind: str, sock_dir: Path) -> None:
    peer = RtorrentLike()
    async with serving(kind, peer, sock_dir) as url:
        transport = open_transport(url, timeout=5)
        replies = [await transport.request(b"<%d/>" % n) for n in range(3)]
        await transport.aclose()
        await peer.wait_finished(3)
    assert [b"<0/>", b"<1/>", b"<2/>"] == replies
    assert 3 == len(peer.requests)
    assert [b""] * 3 == peer.trailing


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_reply_in_small_pieces_is_assembled(kind: str, sock_dir: Path) -> None:
    body = (DATA / "multicall2_reply.scgi").read_bytes()
    peer = RtorrentLike(chunk=7)
    async with serving(kind, peer, sock_dir) as url:
        assert body == await call(url, body)
        await peer.wait_finished()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_in_pieces_is_the_reply(kind: str, sock_dir: Path) -> None:
    small = (DATA / "multicall2_reply.scgi").read_bytes()
    large = os.urandom(3 * 1024 * 1024 + 5)
    peer = RtorrentLike(chunk=7919)
    async with serving(kind, peer, sock_dir) as url:
        transport = open_transport(url, timeout=5)
        for body in (small, large, b""):
            pieces = await transport.request_pieces(body)
            assert (len(body), body) == (pieces.size, pieces.join())
        await peer.wait_finished(3)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_large_reply_is_read_whole(kind: str, sock_dir: Path) -> None:
    body = os.urandom(6 * 1024 * 1024)  # about a 10,000-torrent snapshot
    peer = RtorrentLike()
    async with serving(kind, peer, sock_dir) as url:
        assert body == await call(url, body)
        await peer.wait_finished()


@pytest.mark.anyio
async def test_a_large_reply_is_held_once_not_copied_out_of_what_was_read(
    sock_dir: Path,
) -> None:
    # A 100,000-torrent snapshot is some 60 MB: read into one buffer and then copied
    # without its header, it was held twice at the peak of a poll.
    body = b"<x/>" * (4 * 1024 * 1024)
    reply = rtorrent_reply(body)
    path = sock_dir / "rpc.socket"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        # A thread with a blocking socket: sendall sends `reply` without copying it
        # into Python objects that tracemalloc would count against the transport.
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(reply)

    server = threading.Thread(target=serve)
    server.start()
    tracemalloc.start()
    try:
        got = await call(f"scgi://{path}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.join()
        listener.close()
    assert body == got
    assert peak < 1.3 * len(body), f"{peak / len(body):.2f} x the reply at the peak"


@pytest.mark.anyio
async def test_reply_without_content_length_ends_at_eof(sock_dir: Path) -> None:
    async with serving("unix", answering(b"Status: 200 OK\r\n\r\n<a/>"), sock_dir) as url:
        assert b"<a/>" == await call(url)


@pytest.mark.anyio
async def test_recorded_fault_reply_comes_back_as_its_body(sock_dir: Path) -> None:
    reply = (DATA / "fault_reply.scgi").read_bytes()
    async with serving("tcp", answering(reply), sock_dir) as url:
        body = await call(url)
    assert body.startswith(b"<?xml") and b"<fault>" in body and 305 == len(body)


# --- cannot connect ----------------------------------------------------------------


@pytest.mark.anyio
async def test_no_socket_file(sock_dir: Path) -> None:
    path = sock_dir / "missing.socket"
    with pytest.raises(SocketMissing) as caught:
        await call(f"scgi://{path}")
    assert (
        f"no socket at {path}: is rtorrent running, "
        "and is network.scgi.open_local set to this path?"
    ) == str(caught.value)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


@pytest.mark.anyio
async def test_stale_socket_file(sock_dir: Path) -> None:
    path = sock_dir / "rpc.socket"
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(path))  # the file stays after close, as after a crash
    with pytest.raises(ConnectionRefused, match="stale socket file") as caught:
        await call(f"scgi://{path}")
    assert str(caught.value).startswith(f"nothing listens on {path}: ")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


@pytest.mark.anyio
async def test_nothing_listens_on_tcp_port() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # held, never listening: refused for sure
        port = bound.getsockname()[1]
        with pytest.raises(ConnectionRefused) as caught:
            await call(f"scgi://127.0.0.1:{port}")
    assert str(caught.value).startswith(f"nothing listens at 127.0.0.1:{port}: is rtorrent")
    assert caught.value.__cause__ is not None


@pytest.mark.anyio
async def test_unresolvable_host() -> None:
    # glibc refuses a name starting with "-" without asking any DNS server.
    with pytest.raises(TransportError, match="cannot resolve the host of -:5000") as caught:
        await call("scgi://-:5000")
    assert type(caught.value) is TransportError


def run_as_other_user(work: Callable[[], None]) -> None:
    """Run `work` in a thread that, when we are root, checks files as uid 65534.

    Root bypasses file permissions; a thread with another filesystem uid does not
    (Linux drops the file capabilities with it). setfsuid is per thread, so the
    rest of the test process stays root. Not root: the owner's own 000 mode refuses.
    """
    errors: list[BaseException] = []

    def target() -> None:
        if os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setfsuid(65534)
            assert 65534 == libc.setfsuid(-1)  # -1 only reads it back
        try:
            work()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_permission_denied(sock_dir: Path) -> None:
    path = sock_dir / "rpc.socket"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        listening.listen()
        path.chmod(0o000)
        run_as_other_user(lambda: anyio.run(expect_permission_denied, str(path)))


async def expect_permission_denied(path: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await call(f"scgi://{path}")
    assert (
        f"permission denied on {path}: add the user rtorrentd runs as to the socket's group "
        "and make the socket group-writable (chmod 660); check its directories too"
    ) == str(caught.value)
    assert isinstance(caught.value.__cause__, PermissionError)


@pytest.mark.anyio
async def test_connect_timeout() -> None:
    with contextlib.ExitStack() as stack:
        # A listener whose accept queue is full: the kernel drops further SYNs,
        # so a connect hangs as it does towards a host that is down.
        listening = stack.enter_context(socket.socket())
        listening.bind(("127.0.0.1", 0))
        listening.listen(0)
        address = listening.getsockname()
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(address)
        start = anyio.current_time()
        with pytest.raises(TransportTimeout) as caught:
            await call(f"scgi://127.0.0.1:{address[1]}", connect_timeout=0.2, timeout=5)
        elapsed = anyio.current_time() - start
    assert "no connection within 0.2 s (connect phase, connect_timeout)" in str(caught.value)
    assert 0.2 <= elapsed < 2.0


# --- faults after connecting -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_peer_that_never_answers_times_out(kind: str, sock_dir: Path) -> None:
    async def silent(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            await anyio.sleep_forever()  # a frozen rtorrent

    async with serving(kind, silent, sock_dir) as url:
        start = anyio.current_time()
        with pytest.raises(TransportTimeout) as caught:
            await call(url, timeout=0.2)
        elapsed = anyio.current_time() - start
    expected = f"{url}: no complete reply within 0.2 s (timeout; reply phase, stuck reading the"
    assert str(caught.value).startswith(expected)
    assert 0.2 <= elapsed < 2.0


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(b"\x16\x03\x01garbage", "truncated SCGI reply: no end of header", id="noise"),
        pytest.param(b"hello\r\n\r\nworld", "bad SCGI reply header line b'hello'", id="no colon"),
        pytest.param(
            b"Status: 404 Not Found\r\n\r\n", "status '404 Not Found', expected 200", id="404"
        ),
        pytest.param(
            rtorrent_reply(b"<a/>")[:-4] + b"<a/>!",
            "longer than its Content-Length: expected 4 bytes, got 5",
            id="too long",
        ),
    ],
)
async def test_garbage_reply(kind: str, reply: bytes, message: str, sock_dir: Path) -> None:
    async with serving(kind, answering(reply), sock_dir) as url:
        with pytest.raises(MalformedReply, match=message):
            await call(url)


@pytest.mark.anyio
async def test_garbage_header_is_refused_before_the_peer_closes(sock_dir: Path) -> None:
    async def rude(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            await raw.send(b"Status: 500 Oops\r\n\r\n")
            await anyio.sleep_forever()  # never closes: the client must not wait

    async with serving("unix", rude, sock_dir) as url:
        with pytest.raises(MalformedReply, match="status '500 Oops'"):
            await call(url)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_peer_closes_mid_reply(kind: str, sock_dir: Path) -> None:
    reply = (DATA / "multicall2_reply.scgi").read_bytes()
    async with serving(kind, answering(reply[:200]), sock_dir) as url:
        with pytest.raises(ConnectionClosed) as caught:
            await call(url)
    expected = f"{url}: connection closed after 200 of the reply's {len(reply)} bytes"
    assert expected == str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_peer_closes_without_answering(kind: str, sock_dir: Path) -> None:
    async with serving(kind, answering(b""), sock_dir) as url:
        with pytest.raises(ConnectionClosed, match="closed the connection without answering"):
            await call(url)


@pytest.mark.anyio
async def test_peer_resets_the_connection(sock_dir: Path) -> None:
    async def reset(raw: ByteStream) -> None:
        await read_request(BufferedByteReceiveStream(raw))
        sock = raw.extra(SocketAttribute.raw_socket)
        # Linger 0: close sends RST, not FIN, as a crashing rtorrent's kernel may.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await raw.aclose()

    async with serving("tcp", reset, sock_dir) as url:
        with pytest.raises(ConnectionClosed, match="connection lost reading the reply") as caught:
            await call(url)
    assert caught.value.__cause__ is not None


# --- the size cap ------------------------------------------------------------------


@dataclass
class Flood:
    """Sends a header, then data without end, until the client hangs up."""

    header: bytes
    hung_up: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            with contextlib.suppress(anyio.BrokenResourceError):
                await raw.send(self.header)
                while True:  # blocks once buffers fill, if the client stops reading
                    await raw.send(b"x" * 65536)
            self.hung_up.set()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(
            b"Status: 200 OK\r\nContent-Length: 100000000\r\n\r\n",
            "the reply will be 100000045 bytes, over max_reply = 100000 bytes (0.1 MiB)",
            id="announced",
        ),
        pytest.param(
            b"Status: 200 OK\r\n\r\n",
            "the reply is over max_reply = 100000 bytes (0.1 MiB)",
            id="found while reading",
        ),
    ],
)
async def test_reply_over_the_cap(kind: str, header: bytes, message: str, sock_dir: Path) -> None:
    peer = Flood(header)
    async with serving(kind, peer, sock_dir) as url:
        with pytest.raises(ReplyTooLarge, match=re.escape(message)) as caught:
            await call(url, max_reply=100_000)
        with anyio.fail_after(5):
            await peer.hung_up.wait()  # the client closed: rtorrent is free again
    assert str(caught.value).endswith(
        "raise max_reply in the [rtorrent] section of the configuration"
    )


# --- urls --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["scgi:///run/rtorrent/rpc.socket", "scgi:///tmp/with space/#odd?.sock", "SCGI:///x"],
)
def test_unix_url(url: str) -> None:
    transport = open_transport(url)
    assert isinstance(transport, ScgiTransport)
    assert url == transport.url


@pytest.mark.parametrize(
    "url", ["scgi://127.0.0.1:5000", "scgi://localhost:5000", "scgi://[::1]:5000"]
)
def test_tcp_url(url: str) -> None:
    transport: Transport = open_transport(url)
    assert url == transport.url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("scgi://home/me/rpc.socket", "a socket path must be absolute, with three slashes"),
        ("scgi:relative.socket", "unsupported rtorrent url 'scgi:relative.socket'"),
        ("rpc.socket", "unsupported rtorrent url 'rpc.socket'"),
        ("scgi://localhost", "lacks a host or a port"),
        ("scgi://:5000", "lacks a host or a port"),
        ("scgi://localhost:0", "lacks a host or a port"),
        ("scgi://localhost:99999", "has a bad port"),
        ("scgi://localhost:port", "has a bad port"),
        ("scgi://localhost:5000/RPC2", "nothing after the port"),
        ("scgi://bad..host:5000", "has a bad host name"),
        ("scgi://me:secret@localhost:5000", "'scgi://me:***@localhost:5000': SCGI takes no login"),
        ("ftp://localhost:5000", "unsupported rtorrent url 'ftp://localhost:5000'"),
        ("scgi://", "lacks a host or a port"),
    ],
)
def test_bad_url(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_transport(url)
    assert message in str(caught.value)
    assert str(caught.value).endswith("use scgi:///absolute/path/rpc.socket or scgi://host:port")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"timeout": 0}, "timeout and connect_timeout must be positive"),
        ({"connect_timeout": -1}, "timeout and connect_timeout must be positive"),
        ({"timeout": float("nan")}, "timeout and connect_timeout must be positive"),
        ({"max_reply": 0}, "max_reply must be a positive number of bytes"),
    ],
)
def test_bad_limits(limits: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_transport("scgi:///x", **limits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://me:secret@host/RPC2", "https://me:***@host/RPC2"),
        ("https://me:@host:8443/RPC2", "https://me:***@host:8443/RPC2"),
        ("https://me@host/RPC2", "https://me@host/RPC2"),
        ("scgi:///run/rpc.socket", "scgi:///run/rpc.socket"),
        ("http://me:secret@[::1/RPC2", "http://(unparseable)"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert shown == redact_url(url)


# --- one translation for both transports (rtorrentd.rtorrent.failures) ------------


def wrapped(error: OSError) -> OSError:
    """As anyio's connect_tcp raises it: a bare OSError from a group of attempts."""
    try:
        try:
            raise BaseExceptionGroup("attempts", [error])
        except BaseExceptionGroup as group:
            raise OSError("All connection attempts failed") from group
    except OSError as outer:
        return outer


@pytest.mark.parametrize(
    ("rules", "kind", "words"),
    [
        (failures.UNIX_CONNECT, ConnectionRefused, "a stale socket file"),
        (failures.TCP_CONNECT, ConnectionRefused, "network.scgi.open_port"),
        (failures.HTTP_CONNECT, ConnectionRefused, "is the web server running"),
    ],
)
def test_the_error_behind_the_wrappers_decides(
    rules: tuple[failures.ErrorRule, ...], kind: type[TransportError], words: str
) -> None:
    error = failures.translate(
        wrapped(ConnectionRefusedError(111, "Connection refused")), rules, "here"
    )
    assert kind is type(error)
    assert words in str(error) and "here" in str(error)


def test_a_reason_is_the_os_words_never_a_library_text() -> None:
    secret = "http://user:hunter2@seedbox.example/RPC2"
    inner = ConnectionResetError(104, "Connection reset by peer")
    try:
        try:
            raise inner
        except OSError:
            raise RuntimeError(secret)  # noqa: B904 (chained by context, as httpcore does)
    except RuntimeError as outer:
        assert "Connection reset by peer" == failures.reason(outer)
    assert "RuntimeError" == failures.reason(RuntimeError(secret))


def test_timeouts_and_oversized_replies_say_which_setting() -> None:
    assert "(connect phase, connect_timeout): look here" in str(
        failures.connect_timeout("u", 2.0, "look here")
    )
    assert "within 30 s (timeout; reply phase, stuck sending the request)" in str(
        failures.reply_timeout("u", 30.0, "sending the request")
    )
    assert "will be 2048 bytes, over max_reply = 1024 bytes" in str(
        failures.too_large("u", 1024, 2048)
    )


# --- gzip (rtorrent 0.16 gzips replies when asked, with no Content-Encoding) -------


@dataclass
class Gzipping:
    """Answers like rtorrent 0.16 asked for gzip: the echoed body, gzipped, with a
    Content-Length of the packed bytes and no header saying it is gzip."""

    requests: list[Request] = field(default_factory=list)
    packed: bytes | None = None  # sent instead of the packed echo, if set

    async def __call__(self, raw: ByteStream) -> None:
        async with raw:
            request = await read_request(BufferedByteReceiveStream(raw))
            self.requests.append(request)
            accepts = (b"ACCEPT_ENCODING", b"gzip") in request.headers
            body = gzip.compress(request.body) if accepts else request.body
            await raw.send(rtorrent_reply(self.packed if self.packed is not None else body))


@pytest.mark.anyio
@pytest.mark.parametrize(("asked", "headers"), [(True, 1), (False, 0)])
async def test_gzip_replies_are_unpacked(asked: bool, headers: int, sock_dir: Path) -> None:
    peer = Gzipping()
    body = b"<methodResponse>" + b"<value><i8>1</i8></value>" * 1000 + b"</methodResponse>"
    async with serving("tcp", peer, sock_dir) as url:
        assert body == await open_transport(url, gzip=asked).request(body)
    (request,) = peer.requests
    assert headers == request.headers.count((b"ACCEPT_ENCODING", b"gzip"))


@pytest.mark.anyio
async def test_a_gzip_reply_over_the_cap_is_refused_unpacked(sock_dir: Path) -> None:
    peer = Gzipping(packed=gzip.compress(bytes(10 * 1024 * 1024)))  # 10 MiB in ~10 KB
    async with serving("tcp", peer, sock_dir) as url:
        transport = open_transport(url, gzip=True, max_reply=1024 * 1024)
        with pytest.raises(ReplyTooLarge, match="the reply is over max_reply = 1048576"):
            await transport.request(b"<x/>")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "packed", [gzip.compress(b"<methodResponse/>")[:-12], b"\x1f\x8b not gzip at all"]
)
async def test_a_broken_gzip_reply_is_malformed(packed: bytes, sock_dir: Path) -> None:
    async with serving("tcp", Gzipping(packed=packed), sock_dir) as url:
        with pytest.raises(MalformedReply, match="gzip reply"):
            await open_transport(url, gzip=True).request(b"<x/>")


@pytest.mark.parametrize(
    ("url", "gzipped"),
    [
        ("scgi:///run/rtorrent/rpc.socket", False),
        ("scgi://127.0.0.1:5000", False),
        ("scgi://localhost:5000", False),
        ("scgi://[::1]:5000", False),
        ("scgi://192.168.1.20:5000", True),
        ("scgi://seedbox.example:5000", True),
    ],
)
def test_gzip_only_across_a_network(url: str, gzipped: bool) -> None:
    transport = open_transport(url)
    assert isinstance(transport, ScgiTransport)
    assert gzipped == transport.gzip
