"""The HTTP(S) transport: through a real nginx (contrib's location block) to a real
rtorrent, and against real HTTP peers that fail in ways nginx cannot be made to.

The password must never show: not in a message, a log line, or the CLI's output.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from harness import RtorrentProcess, TorrentFactory, random_bytes
from harness.nginx import NOBODY, NginxProcess, make_self_signed
from structlog.testing import capture_logs

from rtorrentd.cli import client_for, read_password
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.engine.memory import Memory
from rtorrentd.errors import (
    ConfigError,
    ConnectionRefused,
    HttpError,
    MalformedReply,
    PermissionDenied,
    ReplyTooLarge,
    RtorrentdError,
    TransportError,
    TransportTimeout,
)
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import poll_once
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import FIELDS

StartNginx = Callable[..., NginxProcess]

USER = "rtorrentd"
# '@' and '%' must be percent-encoded in a URL: the login is decoded, not taken raw.
PASSWORD = "Hunter2-p@ss%w0rd"
PASSWORD_IN_URL = "Hunter2-p%40ss%25w0rd"
USERS = {USER: PASSWORD}


@contextlib.asynccontextmanager
async def opened(url: str, **options: object) -> AsyncIterator[RtorrentClient]:
    """A client over a fresh transport, closed afterwards."""
    transport = open_transport(url, **{"timeout": 10.0, **options})  # type: ignore[arg-type]
    try:
        yield RtorrentClient(transport)
    finally:
        await transport.aclose()


def load_two(rtorrent: RtorrentProcess, torrent_factory: TorrentFactory) -> None:
    """A single-file and a multi-file torrent, complete, in rtorrent."""
    download = rtorrent.download_dir
    rtorrent.load(torrent_factory("doomed.bin", random_bytes(30_000, 1), dest_dir=download))
    album: dict[str | bytes, bytes] = {
        "a.flac": random_bytes(20_000, 2),
        "cd2/b.flac": random_bytes(10_000, 3),
    }
    rtorrent.load(torrent_factory("album", album, dest_dir=download))


def config_for(url: str, tmp_path: Path, rtorrent: RtorrentProcess, password: str = "") -> Config:
    """A configuration deleting "doomed.bin"; logs in from a password file when
    `password` is given (the URL may carry its own login instead)."""
    login = ""
    if password:
        password_file = tmp_path / "rtorrent.password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        login = f'username = "{USER}"\npassword_file = "{password_file}"\n'
    text = f"""\
[rtorrent]
url = "{url}"
timeout = "10s"
{login}
[daemon]
dry_run = false
[safety]
allowed_roots = ["{rtorrent.download_dir}"]
max_delete_fraction = 1
[[rule]]
name = "doomed"
when = 'name == "doomed.bin"'
action = "delete"
"""
    return parse_config(text, str(tmp_path / "config.toml"))


async def poll(config: Config) -> None:
    client = client_for(config)
    try:
        await poll_once(client, config, Memory.empty(), dry_run=False, now=time.time())
    finally:
        await client.transport.aclose()


def assert_no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
        assert PASSWORD_IN_URL not in text


# --- through nginx to rtorrent -----------------------------------------------------

pytestmark = pytest.mark.anyio


@pytest.mark.integration
async def test_snapshot_over_http_is_the_snapshot_over_the_socket(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    load_two(rtorrent, torrent_factory)
    proxy = nginx(rtorrent.socket_path, users=USERS)
    fields = tuple(FIELDS)
    async with opened(rtorrent.scgi_url) as direct:
        expected = sorted(await direct.snapshot(fields), key=lambda t: t.hash)
    async with opened(proxy.url(), username=USER, password=PASSWORD) as over_http:
        got = sorted(await over_http.snapshot(fields), key=lambda t: t.hash)
    assert ["album", "doomed.bin"] == sorted(t.name for t in got)
    # What rtorrent changes on its own between the two reads (a tracker's failed
    # announce sets `message`, rates move) is compared by type, the rest exactly.
    assert [steady(t) for t in expected] == [steady(t) for t in got]
    assert all(isinstance(t.message, str) for t in got)


def steady(torrent: Torrent) -> Torrent:
    return dataclasses.replace(
        torrent,
        message=None,
        up_rate=None,
        down_rate=None,
        peers=None,
        seeders=None,
        leechers=None,
        scraped=None,
    )


@pytest.mark.integration
async def test_a_deletion_over_http(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx, tmp_path: Path
) -> None:
    load_two(rtorrent, torrent_factory)
    proxy = nginx(rtorrent.socket_path, users=USERS)
    doomed = rtorrent.download_dir / "doomed.bin"
    assert doomed.exists()
    await poll(config_for(proxy.url(), tmp_path, rtorrent, PASSWORD))
    assert not doomed.exists()
    assert (rtorrent.download_dir / "album" / "cd2" / "b.flac").exists()
    assert 1 == len(rtorrent.hashes())
    assert '"POST /RPC2 HTTP/1.1" 200' in proxy.logs()


@pytest.mark.integration
async def test_a_login_in_the_url_works(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    load_two(rtorrent, torrent_factory)
    proxy = nginx(rtorrent.socket_path, users=USERS)
    async with opened(proxy.url(login=f"{USER}:{PASSWORD_IN_URL}")) as client:
        assert 2 == len(await client.snapshot())


@pytest.mark.integration
async def test_a_wrong_password_is_refused_and_nothing_is_done(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx, tmp_path: Path
) -> None:
    load_two(rtorrent, torrent_factory)
    proxy = nginx(rtorrent.socket_path, users=USERS)
    with pytest.raises(PermissionDenied) as caught:
        await poll(config_for(proxy.url(), tmp_path, rtorrent, "not-" + PASSWORD))
    assert (
        f"rtorrent rejected the credentials for {proxy.url()} (HTTP 401): check username and "
        "password_file against the web server's password file (auth_basic_user_file)"
    ) == str(caught.value)
    assert (rtorrent.download_dir / "doomed.bin").exists()
    assert 2 == len(rtorrent.hashes())
    assert f'user "{USER}": password mismatch' in proxy.logs()


@pytest.mark.integration
async def test_no_login_where_one_is_needed(rtorrent: RtorrentProcess, nginx: StartNginx) -> None:
    proxy = nginx(rtorrent.socket_path, users=USERS)
    with pytest.raises(PermissionDenied) as caught:
        async with opened(proxy.url()) as client:
            await client.call("system.pid")
    expected = f"{proxy.url()} asks for a login (HTTP 401): set username and password_file"
    assert str(caught.value).startswith(expected)


@pytest.mark.integration
async def test_a_wrong_path_is_404(rtorrent: RtorrentProcess, nginx: StartNginx) -> None:
    proxy = nginx(rtorrent.socket_path, users=USERS)
    with pytest.raises(HttpError) as caught:
        async with opened(proxy.url("/RPC"), username=USER, password=PASSWORD) as client:
            await client.call("system.pid")
    assert (
        f"no XML-RPC endpoint at {proxy.url('/RPC')} (HTTP 404): is the nginx location /RPC2, "
        "and is this the URL's path?"
    ) == str(caught.value)


BAD_GATEWAY = (
    "nginx could not reach rtorrent's socket (HTTP 502): is rtorrent running, and may "
    "nginx's user connect to the socket? (check the socket's permissions for nginx's user; "
    "nginx's error log names the cause)"
)


@pytest.mark.integration
async def test_a_socket_nginx_may_not_use_is_502(
    rtorrent: RtorrentProcess, nginx: StartNginx
) -> None:
    # The socket is rtorrent's, mode 000; nginx runs as another user when we are
    # root (root would pass any mode), as the socket's owner otherwise (whom 000 refuses).
    rtorrent.socket_path.chmod(0)
    run_as = NOBODY if os.geteuid() == 0 else None
    proxy = nginx(rtorrent.socket_path, users=USERS, run_as=run_as)
    with pytest.raises(HttpError) as caught:
        async with opened(proxy.url(), username=USER, password=PASSWORD) as client:
            await client.call("system.pid")
    assert f"{proxy.url()}: {BAD_GATEWAY}" == str(caught.value)
    assert "failed (13: Permission denied) while connecting to upstream" in proxy.logs()


@pytest.mark.integration
async def test_no_socket_is_502(nginx: StartNginx, tmp_path: Path) -> None:
    proxy = nginx(tmp_path / "rpc.socket", users=USERS)
    with pytest.raises(HttpError) as caught:
        async with opened(proxy.url(), username=USER, password=PASSWORD) as client:
            await client.call("system.pid")
    assert f"{proxy.url()}: {BAD_GATEWAY}" == str(caught.value)
    assert "failed (2: No such file or directory) while connecting to upstream" in proxy.logs()


@pytest.mark.integration
async def test_a_reply_over_the_cap(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    load_two(rtorrent, torrent_factory)
    proxy = nginx(rtorrent.socket_path, users=USERS)
    # Over the version's reply (150 bytes), under the snapshot's: 500 over JSON-RPC (0.16).
    with pytest.raises(ReplyTooLarge) as caught:
        async with opened(proxy.url(), username=USER, password=PASSWORD, max_reply=300) as client:
            await client.snapshot(tuple(FIELDS))
    assert str(caught.value).startswith(f"{proxy.url()}: the reply will be ")
    assert "bytes, over max_reply = 300 bytes (0.0 MiB)" in str(caught.value)


# --- HTTPS ---------------------------------------------------------------------------


@pytest.fixture
def https_proxy(
    rtorrent: RtorrentProcess, nginx: StartNginx, tmp_path: Path
) -> tuple[NginxProcess, Path]:
    """nginx serving HTTPS with a self-signed certificate; and that certificate."""
    tls = make_self_signed(tmp_path / "tls")
    return nginx(rtorrent.socket_path, users=USERS, tls=tls), tls.cert


@pytest.mark.integration
async def test_https_with_the_certificate_as_ca_file(
    rtorrent: RtorrentProcess, https_proxy: tuple[NginxProcess, Path]
) -> None:
    proxy, cert = https_proxy
    async with opened(proxy.url(), username=USER, password=PASSWORD, ca_file=str(cert)) as client:
        assert rtorrent.pid == await client.call("system.pid")


@pytest.mark.integration
async def test_https_with_a_self_signed_certificate_is_refused(
    https_proxy: tuple[NginxProcess, Path],
) -> None:
    proxy, _ = https_proxy
    with pytest.raises(TransportError) as caught:
        async with opened(proxy.url(), username=USER, password=PASSWORD) as client:
            await client.call("system.pid")
    message = str(caught.value)
    assert message.startswith(f"{proxy.url()}: the server's TLS certificate is not trusted (")
    assert "not trusted (self-signed certificate); for a" in message
    assert message.endswith(
        "for a self-signed certificate set ca_file to it (or to its CA) in [rtorrent], "
        "or, on a network you trust, tls_verify = false"
    )


@pytest.mark.integration
async def test_https_without_verification(
    rtorrent: RtorrentProcess, https_proxy: tuple[NginxProcess, Path]
) -> None:
    proxy, _ = https_proxy
    async with opened(proxy.url(), username=USER, password=PASSWORD, tls_verify=False) as client:
        assert rtorrent.pid == await client.call("system.pid")


@pytest.mark.integration
async def test_plain_http_to_the_https_port(https_proxy: tuple[NginxProcess, Path]) -> None:
    proxy, _ = https_proxy
    url = proxy.url().replace("https://", "http://")
    with pytest.raises(HttpError, match=r"HTTP 400 Bad Request"):
        async with opened(url, username=USER, password=PASSWORD) as client:
            await client.call("system.pid")


# --- the password shows nowhere ------------------------------------------------------


@pytest.mark.integration
async def test_the_password_shows_nowhere(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx, tmp_path: Path
) -> None:
    load_two(rtorrent, torrent_factory)
    proxy = nginx(rtorrent.socket_path, users={USER: "the-real-one"})
    texts: list[str] = []
    with capture_logs() as logs:
        for config in (
            config_for(proxy.url(), tmp_path, rtorrent, PASSWORD),
            config_for(proxy.url(login=f"{USER}:{PASSWORD_IN_URL}"), tmp_path, rtorrent),
            config_for(proxy.url("/x", login=f"{USER}:{PASSWORD_IN_URL}"), tmp_path, rtorrent),
        ):
            with pytest.raises(RtorrentdError) as caught:
                await poll(config)
            texts += [str(caught.value), repr(caught.value), repr(client_for(config).transport)]
        # Over plain HTTP to a host that is not this one: a warning, without the password.
        open_transport(f"http://{USER}:{PASSWORD_IN_URL}@seedbox.example/RPC2")
    assert "rtorrent.cleartext_login" in [entry["event"] for entry in logs]
    assert_no_password(*texts, repr(logs))
    assert "http://rtorrentd:***@127.0.0.1:" in texts[3]


@pytest.mark.integration
@pytest.mark.parametrize("login_in", ["password_file", "url"])
def test_the_password_is_not_in_the_output_of_plan(
    login_in: str, rtorrent: RtorrentProcess, nginx: StartNginx, tmp_path: Path
) -> None:
    proxy = nginx(rtorrent.socket_path, users={USER: "the-real-one"})
    if login_in == "url":
        config = f'[rtorrent]\nurl = "{proxy.url(login=f"{USER}:{PASSWORD_IN_URL}")}"\n'
    else:
        (tmp_path / "password").write_text(PASSWORD)
        (tmp_path / "password").chmod(0o600)
        config = (
            f'[rtorrent]\nurl = "{proxy.url()}"\nusername = "{USER}"\n'
            f'password_file = "{tmp_path / "password"}"\n'
        )
    (tmp_path / "config.toml").write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "rtorrentd", "plan", "-c", str(tmp_path / "config.toml")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=60,
        check=False,
    )
    assert 1 == result.returncode
    assert "error: rtorrent rejected the credentials for http" in result.stderr
    assert_no_password(result.stdout, result.stderr)


# --- peers that nginx cannot be made to be -----------------------------------------

Handler = Callable[[ByteStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A real HTTP peer on 127.0.0.1 running `handler` per connection; its /RPC2 URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}/RPC2"
        tg.cancel_scope.cancel()


async def read_request(stream: BufferedByteReceiveStream) -> tuple[bytes, bytes]:
    """The head and the body of one HTTP request."""
    head = await stream.receive_until(b"\r\n\r\n", 65536)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await stream.receive_exactly(length)


def answering(status: str, headers: str, body: bytes = b"") -> Handler:
    async def handler(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            head = f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
            await raw.send(head.encode() + body)

    return handler


async def call(url: str, **options: object) -> object:
    async with opened(url, **options) as client:
        return await client.call("system.pid")


XML = "Content-Type: text/xml\r\n"
REPLY = (
    b"<?xml version='1.0'?><methodResponse><params><param>"
    b"<value><i8>7</i8></value></param></params></methodResponse>"
)


async def test_one_text_xml_post_with_the_login_decoded() -> None:
    seen: list[bytes] = []

    async def handler(raw: ByteStream) -> None:
        async with raw:
            head, _ = await read_request(BufferedByteReceiveStream(raw))
            seen.append(head)
            head_out = f"HTTP/1.1 200 OK\r\n{XML}Content-Length: {len(REPLY)}\r\n\r\n"
            await raw.send(head_out.encode() + REPLY)

    async with serving(handler) as url:
        assert 7 == await call(url.replace("//", f"//{USER}:{PASSWORD_IN_URL}@"))
    (head,) = seen
    lines = head.decode().split("\r\n")
    assert "POST /RPC2 HTTP/1.1" == lines[0]
    assert "content-type: text/xml" in (line.lower() for line in lines)
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert f"Authorization: Basic {login}" in lines


@pytest.mark.parametrize(
    ("status", "headers", "error", "message"),
    [
        ("403 Forbidden", "", PermissionDenied, "{url} refused us (HTTP 403): check"),
        ("413 Too Large", "", HttpError, "{url}: the request is too large for the web server"),
        ("500 Oops", "", HttpError, "{url}: the web server answered HTTP 500 Oops"),
        ("504 Gateway Time-out", "", TransportTimeout, "{url}: nginx gave up waiting for"),
        (
            "301 Moved Permanently",
            f"Location: https://{USER}:{PASSWORD_IN_URL}@seedbox.example/RPC2\r\n",
            HttpError,
            "{url} redirects (HTTP 301) to https://rtorrentd:***@seedbox.example/RPC2: "
            "write that URL instead",
        ),
        (
            "200 OK",
            "Content-Type: text/html\r\n",
            MalformedReply,
            "{url} answered with 'text/html', not XML: is this the location that passes "
            "requests to rtorrent (scgi_pass)?",
        ),
    ],
)
async def test_what_an_answer_means(
    status: str, headers: str, error: type[Exception], message: str
) -> None:
    async with serving(answering(status, headers, b"<html></html>")) as url:
        with pytest.raises(error) as caught:
            await call(url)
    assert type(caught.value) is error
    assert str(caught.value).startswith(message.format(url=url))
    assert_no_password(str(caught.value))


async def test_a_peer_that_never_answers_times_out() -> None:
    async def silent(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            await anyio.sleep_forever()

    async with serving(silent) as url:
        start = anyio.current_time()
        with pytest.raises(TransportTimeout) as caught:
            await call(url, timeout=0.3)
        elapsed = anyio.current_time() - start
    assert (
        f"{url}: no complete reply within 0.3 s (timeout; reply phase): is rtorrent busy or "
        "frozen? raise timeout for slow calls"
    ) == str(caught.value)
    assert 0.3 <= elapsed < 2.0


async def test_a_peer_that_trickles_is_cut_off_at_the_whole_call_timeout() -> None:
    # Each byte comes before httpx's per-read timeout: only the deadline for the
    # whole call ends it.
    async def trickle(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            await raw.send(f"HTTP/1.1 200 OK\r\n{XML}Content-Length: 100000\r\n\r\n".encode())
            while True:
                await raw.send(b" ")
                await anyio.sleep(0.05)

    async with serving(trickle) as url:
        with pytest.raises(TransportTimeout, match=r"no complete reply within 0\.4 s"):
            await call(url, timeout=0.4)


async def test_an_endless_reply_is_cut_off_at_the_cap() -> None:
    # No Content-Length: the body runs until the peer closes, which this one never
    # does. Counting what arrives is the only guard.
    async def endless(raw: ByteStream) -> None:
        async with raw:
            await read_request(BufferedByteReceiveStream(raw))
            await raw.send(f"HTTP/1.1 200 OK\r\n{XML}Connection: close\r\n\r\n".encode())
            with contextlib.suppress(anyio.BrokenResourceError, ConnectionError):
                while True:
                    await raw.send(b"x" * 65536)

    async with serving(endless) as url:
        with pytest.raises(ReplyTooLarge) as caught:
            await call(url, max_reply=1_000_000)
    assert (
        f"{url}: the reply is over max_reply = 1000000 bytes (1.0 MiB): "
        "raise max_reply in the [rtorrent] section of the configuration"
    ) == str(caught.value)


async def test_nothing_listens() -> None:
    async with serving(answering("200 OK", XML)) as url:
        pass  # closed again: nothing listens on that port now
    with pytest.raises(ConnectionRefused) as caught:
        await call(url)
    assert (f"nothing listens at {url}: is the web server running, and is this its port?") == str(
        caught.value
    )


# --- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        (
            f"https://{USER}:{PASSWORD_IN_URL}@host/RPC2",
            {"username": USER, "password": PASSWORD},
            "rtorrent url 'https://rtorrentd:***@host/RPC2' carries a login and "
            "username/password_file are set too: keep one",
        ),
        ("https://host/RPC2", {"username": USER}, "username and password_file go together"),
        ("https://host/RPC2", {"password": PASSWORD}, "username and password_file go together"),
        (
            f"https://{USER}:{PASSWORD_IN_URL}@host",
            {},
            "rtorrent url 'https://rtorrentd:***@host' lacks the location's path: "
            "write the XML-RPC location, like https://seedbox.example/RPC2",
        ),
        ("https:///RPC2", {}, "rtorrent url 'https:///RPC2' lacks a host"),
        ("http://host:port/RPC2", {}, "rtorrent url 'http://host:port/RPC2' is not a valid URL"),
        ("http://ho\x01st/RPC2", {}, "rtorrent url 'http://ho\\x01st/RPC2' is not a valid URL"),
        (
            "https://host/RPC2",
            {"ca_file": "/nonexistent/ca.pem"},
            "ca_file '/nonexistent/ca.pem': cannot load it as PEM certificates: "
            "No such file or directory",
        ),
        (
            "scgi:///run/rpc.socket",
            {"username": USER, "password": PASSWORD},
            "rtorrent url 'scgi:///run/rpc.socket': SCGI takes no login; "
            "username and password_file are for http(s) urls",
        ),
    ],
)
def test_settings_that_cannot_work(url: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_transport(url, **options)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert_no_password(str(caught.value))


def test_a_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot load it as PEM certificates"):
        open_transport("https://host/RPC2", ca_file=str(tmp_path / "ca.pem"))


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (f"{PASSWORD}\n", PASSWORD),
        (f"{PASSWORD}\r\n", PASSWORD),
        (PASSWORD, PASSWORD),
        (f" {PASSWORD} \n\n", f" {PASSWORD} \n"),  # only one newline is the editor's
    ],
)
def test_read_password(content: str, password: str, tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(content, newline="")
    path.chmod(0o600)
    with capture_logs() as logs:
        assert password == read_password(str(path))
    assert [] == logs


def test_a_password_file_others_may_read_is_used_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(PASSWORD)
    path.chmod(0o640)
    with capture_logs() as logs:
        assert PASSWORD == read_password(str(path))
    assert [
        {
            "event": "config.password_file_readable",
            "log_level": "warning",
            "path": str(path),
            "mode": "0640",
            "hint": f"chmod 600 {path} (owned by the user rtorrentd runs as)",
        }
    ] == logs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "password_file {path}: cannot read it: No such file or directory"),
        ("", "password_file {path}: the file is empty; write the password in it"),
        ("\n", "password_file {path}: the file is empty; write the password in it"),
        (b"\xff\n", "password_file {path}: not UTF-8 text (byte 0)"),
    ],
)
def test_a_password_file_that_cannot_be_used(
    content: str | bytes | None, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "password"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        read_password(str(path))
    assert message.format(path=path) == str(caught.value)


def test_a_password_file_that_is_a_fifo_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "password"
    os.mkfifo(path)  # no writer: opening it to read would block
    with pytest.raises(ConfigError) as caught:
        read_password(str(path))
    expected = f"password_file {path}: cannot read it: it is a FIFO, not a regular file"
    assert f"{expected}; write the password in a regular file" == str(caught.value)
