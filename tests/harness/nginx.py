"""A private nginx in front of an rtorrent socket, as contrib/nginx-rtorrent.conf sets it up.

The ``location = /RPC2`` block is taken from the contrib file itself, with the
paths of this instance put in, so the tests check the configuration we ship.
nginx runs in the foreground as a single process (``daemon off; master_process
off;``): no worker switches user behind our back, so it runs as whoever starts it,
or as ``run_as`` (a uid; needs root) to see what nginx's own user may reach. All
its files (configuration, logs, pid, temp dirs) live in a private directory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from .rtorrent import HarnessError, free_port, poll_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONTRIB_CONF = Path(__file__).resolve().parents[2] / "contrib" / "nginx-rtorrent.conf"
SCGI_PARAMS = Path("/etc/nginx/scgi_params")
NOBODY = 65534

_PORT_ATTEMPTS = 3
_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class TlsFiles:
    """A certificate (PEM, also what a client trusts as its CA) and its key."""

    cert: Path
    key: Path


def make_self_signed(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A self-signed certificate for `host` (IP address), valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host},DNS:localhost"),
            *("-keyout", str(files.key), "-out", str(files.cert)),
        ],
        check=True,
        capture_output=True,
    )
    return files


def htpasswd_line(user: str, password: str) -> str:
    """One line of an nginx ``auth_basic_user_file`` ({SHA}: base64 of SHA-1)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def contrib_location(
    socket_path: str, htpasswd: Path, scgi_params: Sequence[tuple[str, str]] = ()
) -> str:
    """The ``location = /RPC2 { ... }`` block of contrib/nginx-rtorrent.conf, with
    this instance's password file and socket put in, and `scgi_params` (name,
    value) passed to rtorrent besides nginx's own (``UNTRUSTED_CONNECTION``)."""
    text = CONTRIB_CONF.read_text()
    found = re.search(r"^( *)location = /RPC2 \{\n.*?^\1\}\n", text, re.MULTILINE | re.DOTALL)
    if found is None:
        raise HarnessError(f"no 'location = /RPC2' block in {CONTRIB_CONF}")
    block = re.sub(r"auth_basic_user_file \S+;", f"auth_basic_user_file {htpasswd};", found[0])
    extra = "".join(f"        scgi_param {name} {value};\n" for name, value in scgi_params)
    block = block.replace("include scgi_params;\n", "include scgi_params;\n" + extra, 1)
    return re.sub(r"scgi_pass \S+;", f"scgi_pass unix:{socket_path};", block)


class NginxProcess:
    """One private nginx on 127.0.0.1:PORT passing ``/RPC2`` to `socket_path`.

    `users` maps user names to passwords for basic authentication; `tls` serves
    HTTPS; `run_as` runs nginx as that uid and gid, with no other groups (root
    only); `location`, a whole ``location ... { ... }`` block, replaces contrib's
    (a set-up from elsewhere, e.g. an old guide's); `scgi_params` are more (name,
    value) pairs for rtorrent in contrib's block. Every other path answers 404.
    Use as a context manager.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        users: Mapping[str, str],
        tls: TlsFiles | None = None,
        run_as: int | None = None,
        location: str | None = None,
        scgi_params: Sequence[tuple[str, str]] = (),
        start_timeout: float = 10.0,
    ) -> None:
        self.socket_path = os.fspath(socket_path)
        self.scgi_params = tuple(scgi_params)
        self.users = dict(users)
        self.tls = tls
        self.run_as = run_as
        self.location = location
        self.start_timeout = start_timeout
        # A private short directory, not pytest's tmp_path: with `run_as`, nginx must
        # reach it, and pytest's directories are private to their owner.
        self.root = Path(tempfile.mkdtemp(prefix="nginx-"))
        self.conf_path = self.root / "nginx.conf"
        self.error_log = self.root / "error.log"
        self.access_log = self.root / "access.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/RPC2", *, login: str = "") -> str:
        """``http(s)://[login@]127.0.0.1:PORT/RPC2`` (or `path`)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{login + '@' if login else ''}127.0.0.1:{self.port}{path}"

    def logs(self) -> str:
        """The error log and the access log, for assertions and failure messages."""
        return "".join(
            p.read_text(errors="replace") for p in (self.error_log, self.access_log) if p.exists()
        )

    def start(self) -> NginxProcess:
        """Start nginx and wait until it accepts connections; retry on a taken port."""
        self._write_files()
        for _ in range(_PORT_ATTEMPTS - 1):
            try:
                return self._start_once()
            except HarnessError as exc:
                if "Address already in use" not in str(exc):
                    raise
                self.port = free_port()
        return self._start_once()

    def kill(self) -> None:
        """Kill nginx at once and reap it."""
        if self._process is not None:
            if self._process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> NginxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _start_once(self) -> NginxProcess:
        self.conf_path.write_text(self._config())
        self._chown()
        # No supplementary groups either: root's would open doors nginx's user lacks.
        ids: dict[str, Any] = (
            {} if self.run_as is None else {"user": self.run_as, "group": self.run_as}
        )
        groups: dict[str, Any] = {} if self.run_as is None else {"extra_groups": []}
        with (self.root / "stderr.log").open("ab") as stderr:
            self._process = subprocess.Popen(
                [
                    NGINX,
                    "-p",
                    f"{self.root}/",
                    "-c",
                    str(self.conf_path),
                    "-e",
                    str(self.error_log),
                ],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                **ids,
                **groups,
            )
        try:
            poll_until(self._accepts, timeout=self.start_timeout, what="nginx to listen")
        except BaseException:
            self.kill()
            raise
        return self

    def _accepts(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "stderr.log").read_text(errors="replace") + self.logs()
            raise HarnessError(f"nginx exited with {self._process.returncode}: {output[-2000:]}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def _write_files(self) -> None:
        htpasswd = self.root / "htpasswd"
        htpasswd.write_text("".join(htpasswd_line(u, p) for u, p in self.users.items()))
        # contrib's `include scgi_params;` is relative to the configuration's directory.
        shutil.copyfile(SCGI_PARAMS, self.root / "scgi_params")
        for name in _TEMP_DIRS:
            (self.root / "temp" / name).mkdir(parents=True, exist_ok=True)

    def _chown(self) -> None:
        if self.run_as is None:
            return
        for path in (self.root, *self.root.rglob("*")):
            os.chown(path, self.run_as, self.run_as)

    def _config(self) -> str:
        temp = "\n".join(f"    {name}_temp_path {self.root}/temp/{name};" for name in _TEMP_DIRS)
        ssl = "" if self.tls is None else " ssl"
        certs = (
            ""
            if self.tls is None
            else f"        ssl_certificate {self.tls.cert};\n"
            f"        ssl_certificate_key {self.tls.key};\n"
        )
        location = self.location or contrib_location(
            self.socket_path, self.root / "htpasswd", self.scgi_params
        )
        return f"""\
daemon off;
master_process off;
pid {self.root}/nginx.pid;
error_log {self.error_log};
events {{ worker_connections 64; }}
http {{
    access_log {self.access_log};
{temp}
    server {{
        listen 127.0.0.1:{self.port}{ssl};
{certs}{location}
        location / {{ return 404; }}
    }}
}}
"""
