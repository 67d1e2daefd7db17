"""A private, headless rtorrent for the integration tests: 0.9.8 or 0.16.x.

0.9.8 is Debian's package; 0.16.x is Debian sid's, fetched by .ci/rtorrent-0.16
into a cache outside the clone and run through its own loader (RTORRENT.md).
The harness talks to rtorrent with its own tiny synchronous SCGI client built on
the stdlib, so that it never depends on the code under test.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .torrents import TorrentFile

T = TypeVar("T")

RTORRENT = shutil.which("rtorrent") or "/usr/bin/rtorrent"

VERSIONS = ("0.9.8", "0.16")
"""Every rtorrent the integration tests run against: the oldest and newest in use."""


def cache_dir() -> Path:
    """Where .ci/rtorrent-0.16 keeps what it fetches (the same rule as the script)."""
    if root := os.environ.get("RTORRENTD_CACHE"):
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rtorrentd"


def rtorrent_binary(version: str) -> str:
    """The executable for ``version`` ("0.9.8": the system's; "0.16": the launcher
    .ci/rtorrent-0.16 writes, which execs rtorrent through its own loader, so the
    pid is rtorrent's). Raises `HarnessError` when it is not there."""
    if version == "0.9.8":
        path = RTORRENT
        hint = "the Debian package rtorrent"
    elif version == "0.16":
        path = str(cache_dir() / "rtorrent-0.16" / "bin" / "rtorrent")
        hint = "fetched by .ci/rtorrent-0.16"
    else:
        raise ValueError(f"unknown rtorrent version {version!r}; known: {', '.join(VERSIONS)}")
    if not os.access(path, os.X_OK):
        raise HarnessError(f"rtorrent {version} is not at {path} ({hint}); run `make test`")
    return path


# AF_UNIX paths are limited to 108 bytes on Linux (107 plus the NUL).
_MAX_SOCKET_PATH = 100
_PORT_ATTEMPTS = 3
# A strict XML parser rejects these; rtorrent sends them raw inside names.
_CONTROL_CHARS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_REPLACEMENT = "\ufffd".encode()


class HarnessError(RuntimeError):
    """rtorrent did not do what the harness waited for, in time."""


def poll_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """Call ``condition`` until it returns something truthy, or fail after ``timeout`` s.

    This is a bounded wait on an observable condition, never a sleep used as
    synchronisation: it returns as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, then close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scgi_request(body: bytes) -> bytes:
    """Frame ``body`` as one SCGI request: header netstring, then exactly the body."""
    headers = b"CONTENT_LENGTH\x00%d\x00SCGI\x001\x00" % len(body)
    return b"%d:%s,%s" % (len(headers), headers, body)


def scgi_exchange(
    address: str | tuple[str, int], method: str, *params: Any, timeout: float = 10.0
) -> bytes:
    """Send one XML-RPC call over SCGI and return the reply's XML body, unparsed.

    ``address`` is a Unix socket path or a ``(host, port)``. One request per
    connection; the reply is read whole, at once, to EOF.
    """
    body = xmlrpc.client.dumps(params, method).encode()
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(scgi_request(body))
        # Read the whole reply at once: a client that stalls freezes rtorrent.
        reply = b"".join(iter(lambda: sock.recv(1 << 16), b""))
    head, sep, xml = reply.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"Status: 200"):
        raise HarnessError(f"bad SCGI reply to {method}: {reply[:200]!r}")
    return xml


def scgi_call(
    address: str | tuple[str, int], method: str, *params: Any, timeout: float = 10.0
) -> Any:
    """Send one XML-RPC call over SCGI and return the decoded result.

    A fault raises :class:`xmlrpc.client.Fault`. Control characters, which
    rtorrent sends raw inside names, are replaced by U+FFFD before parsing.
    """
    xml = scgi_exchange(address, method, *params, timeout=timeout)
    values, _ = xmlrpc.client.loads(_CONTROL_CHARS.sub(_REPLACEMENT, xml), use_builtin_types=True)
    return values[0]


def _socket_path(root: Path) -> tuple[Path, Path | None]:
    """Where the Unix socket goes, and the private dir made for it if ``root`` is too deep."""
    path = root / "rpc.socket"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path, None
    # pytest's tmp_path can be too deep for AF_UNIX: use a short private dir instead.
    own_dir = Path(tempfile.mkdtemp(prefix="rt-"))
    return own_dir / "rpc.socket", own_dir


class RtorrentProcess:
    """One private rtorrent: its own session, download dir, socket and ports.

    Use as a context manager (or call :meth:`start` and :meth:`kill`); the
    process is always reaped, and its process group is killed if a clean stop
    fails. ``root`` holds ``rtorrent.rc``, ``session/``, ``download/`` and
    ``rtorrent.log``. ``version`` is one of `VERSIONS`. ``tcp=True`` puts the
    SCGI listener on 127.0.0.1:PORT *instead of* the Unix socket (0.9.8 refuses
    a second listener). On leaving the ``with`` block it stops cleanly
    (``clean_exit=True``, which takes up to ~1 s when rtorrent is idle) or is
    killed at once (``clean_exit=False``).
    """

    def __init__(
        self,
        root: Path,
        *,
        version: str = "0.9.8",
        tcp: bool = False,
        listen_port: int | None = None,
        extra_config: Sequence[str] = (),
        start_timeout: float = 15.0,
        clean_exit: bool = True,
    ) -> None:
        self.root = root
        self.version = version
        self.binary = rtorrent_binary(version)
        self.session_dir = root / "session"
        self.download_dir = root / "download"
        self.log_path = root / "rtorrent.log"
        self.rc_path = root / "rtorrent.rc"
        self.socket_path, self._own_socket_dir = _socket_path(root)
        self.listen_port = listen_port or free_port()
        self.tcp_port = free_port() if tcp else None
        self.extra_config = tuple(extra_config)
        self.start_timeout = start_timeout
        self.clean_exit = clean_exit
        self.start_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        # Ports we picked ourselves may be taken by someone else before rtorrent
        # binds them: until the first start succeeds, pick others and retry.
        self._may_repick_ports = listen_port is None

    # -- addresses ---------------------------------------------------------

    @property
    def scgi_url(self) -> str:
        """``scgi:///path/to/rpc.socket``; only when made without ``tcp=True``."""
        if self.tcp_port is not None:
            raise HarnessError("this rtorrent listens on TCP only (0.9.8 allows one SCGI listener)")
        return f"scgi://{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        """``scgi://127.0.0.1:PORT``; only when made with ``tcp=True``."""
        if self.tcp_port is None:
            raise HarnessError("this rtorrent has no TCP SCGI port (pass tcp=True)")
        return f"scgi://127.0.0.1:{self.tcp_port}"

    @property
    def pid(self) -> int:
        """The pid of rtorrent itself (it does not fork, even as a daemon)."""
        return self._running().pid

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- life cycle --------------------------------------------------------

    def start(self) -> RtorrentProcess:
        """Start rtorrent and wait until it answers on its socket."""
        if self.running:
            raise HarnessError("rtorrent is already running")
        for _ in range(_PORT_ATTEMPTS - 1):
            try:
                return self._start_once()
            except HarnessError as exc:
                if not (self._may_repick_ports and "Address already in use" in str(exc)):
                    raise
                self.listen_port = free_port()
                self.tcp_port = free_port() if self.tcp_port is not None else None
        return self._start_once()

    def _start_once(self) -> RtorrentProcess:
        for directory in (self.session_dir, self.download_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.rc_path.write_text(self._config())
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-n", "-o", f"import={self.rc_path}"],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOME": str(self.root), "TERM": "dumb"},
                start_new_session=True,
            )
        try:
            poll_until(self._answers, timeout=self.start_timeout, what="rtorrent to answer")
            self._check_ports()
        except BaseException:
            self.kill()
            raise
        self.start_seconds = time.monotonic() - began
        self._may_repick_ports = False
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (the session is saved), killing it after ``timeout`` s."""
        if not self.running:
            self._reap()
            return
        with contextlib.suppress(OSError, xmlrpc.client.Error, HarnessError):
            self.call("system.shutdown.normal")
        try:
            self._running().wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def kill(self) -> None:
        """Kill rtorrent's whole process group at once and reap it."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        self._reap()

    def restart(self, *, clean: bool = True) -> None:
        """Stop (or kill) and start again with the same session, socket and ports."""
        if clean:
            self.stop()
        else:
            self.kill()
        self.start()

    def __enter__(self) -> RtorrentProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.clean_exit:
                self.stop()
        finally:
            self.kill()
            if self._own_socket_dir is not None:
                shutil.rmtree(self._own_socket_dir, ignore_errors=True)

    # -- calls -------------------------------------------------------------

    @property
    def address(self) -> str | tuple[str, int]:
        """The SCGI listener: the socket path, or ``("127.0.0.1", port)`` with ``tcp=True``."""
        return str(self.socket_path) if self.tcp_port is None else ("127.0.0.1", self.tcp_port)

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        """Call ``method`` and return the decoded result (a fault raises ``Fault``)."""
        return scgi_call(self.address, method, *params, timeout=timeout)

    def call_raw(self, method: str, *params: Any, timeout: float = 10.0) -> bytes:
        """Call ``method`` and return the reply's XML exactly as rtorrent sent it."""
        return scgi_exchange(self.address, method, *params, timeout=timeout)

    def hashes(self) -> list[str]:
        """Info-hashes of every download in the "main" view."""
        return list(self.call("download_list", "", "main"))

    def load(
        self,
        torrent: TorrentFile,
        *,
        start: bool = True,
        directory: Path | None = None,
        commands: Sequence[str] = (),
        complete: bool | None = None,
        timeout: float = 15.0,
    ) -> str:
        """Load ``torrent`` from its bytes and wait until rtorrent has settled it.

        ``directory`` defaults to ``torrent.directory`` (where the payload was
        written); ``commands`` are extra ``load.raw`` commands such as
        ``"d.custom.set=addtime,1700000000"``. Waits until the download is
        listed, a started one is hash-checked, ``d.state`` matches ``start`` and,
        if ``complete`` is given, ``d.complete`` matches it. Returns the info-hash.
        A download loaded stopped is not hash-checked: its ``d.complete`` stays 0.
        """
        if complete and not start:
            raise ValueError("rtorrent does not hash-check a stopped download: d.complete stays 0")
        target = directory if directory is not None else torrent.directory
        method = "load.raw_start" if start else "load.raw"
        all_commands = (f"d.directory.set={target}", *commands)
        self.call(method, "", xmlrpc.client.Binary(torrent.data), *all_commands)
        info_hash = torrent.info_hash
        poll_until(
            lambda: info_hash in self.hashes(), timeout=timeout, what=f"{info_hash} to be listed"
        )
        poll_until(
            lambda: self._settled(info_hash, start=start, complete=complete),
            timeout=timeout,
            what=f"{info_hash} to settle (start={start}, complete={complete})",
        )
        # 0.16 writes the new torrent's session files in the background (as *.new,
        # then renamed): a test that kills rtorrent, or compares the disk before and
        # after, needs them written first. (An rtorrent without a session writes none.)
        if self.call("session.path"):
            poll_until(
                lambda: self.session_saved(info_hash),
                timeout=timeout,
                what=f"{info_hash}'s session files to be written",
            )
        return info_hash

    def session_saved(self, info_hash: str) -> bool:
        """Whether rtorrent's session files for ``info_hash`` are all there, none
        of them half-written (``*.new``)."""
        names = set(os.listdir(self.session_dir))
        stem = f"{info_hash.upper()}.torrent"
        files = {stem, f"{stem}.libtorrent_resume", f"{stem}.rtorrent"}
        return files <= names and not any(f"{name}.new" in names for name in files)

    # -- internals ---------------------------------------------------------

    def _settled(self, info_hash: str, *, start: bool, complete: bool | None) -> bool:
        fields = ("d.state=", "d.hashing=", "d.is_hash_checked=", "d.complete=")
        calls = [{"methodName": f[:-1], "params": [info_hash]} for f in fields]
        state, hashing, checked, done = (r[0] for r in self.call("system.multicall", calls))
        if state != int(start) or hashing:
            return False
        if start and not checked:
            return False
        return complete is None or done == int(complete)

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise HarnessError(f"rtorrent exited with {self._process.returncode}: {self._log()}")
        try:
            return bool(self.call("system.pid", timeout=2.0))
        except (OSError, HarnessError):
            return False

    def _check_ports(self) -> None:
        port = self.call("network.listen.port")
        if port != self.listen_port:
            raise HarnessError(f"rtorrent listens on {port}, not {self.listen_port}")

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise HarnessError("rtorrent was never started")
        return self._process

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def _config(self) -> str:
        lines = [
            "system.daemon.set = true",
            f"session.path.set = {self.session_dir}",
            f"directory.default.set = {self.download_dir}",
            f"network.port_range.set = {self.listen_port}-{self.listen_port}",
            "network.port_random.set = no",
            "network.local_address.set = 127.0.0.1",
            "dht.mode.set = disable",
            "protocol.pex.set = no",
            "trackers.use_udp.set = no",
            "network.xmlrpc.size_limit.set = 33554432",
        ]
        # 0.9.8 accepts one SCGI listener only ("SCGI already enabled" otherwise).
        if self.tcp_port is None:
            lines.append(f"network.scgi.open_local = {self.socket_path}")
        else:
            lines.append(f"network.scgi.open_port = 127.0.0.1:{self.tcp_port}")
        return "\n".join((*lines, *self.extra_config, ""))
