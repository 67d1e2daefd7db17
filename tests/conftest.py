"""Shared fixtures: private rtorrent instances and a torrent factory (see tests/harness)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from harness import RtorrentProcess, TorrentFactory
from harness.nginx import NGINX, NginxProcess
from hypothesis import settings
from trees import Canaries, Tree, make_tree

# Timing deadlines flake on a loaded 2-core CI machine; correctness is what counts.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _rtorrent(root: Path, **options: Any) -> RtorrentProcess:
    """An rtorrent not yet started; fails the test when rtorrent is not installed
    (`make test` installs it: integration tests are never skipped).

    Fixtures kill it on teardown instead of a clean shutdown: nothing reuses its
    session afterwards, and an idle rtorrent takes up to a second to shut down.
    """
    if shutil.which("rtorrent") is None and not Path("/usr/bin/rtorrent").exists():
        pytest.fail("rtorrent is not installed (Debian package: rtorrent); run `make test`")
    return RtorrentProcess(root, clean_exit=False, **options)


@pytest.fixture
def rtorrent(tmp_path: Path) -> Iterator[RtorrentProcess]:
    """A private, started rtorrent on a Unix socket (``.socket_path``, ``.scgi_url``)."""
    # Leaving the block kills its process group and reaps it, even on errors.
    with _rtorrent(tmp_path / "rtorrent") as process:
        yield process


@pytest.fixture
def rtorrent_tcp(tmp_path: Path) -> Iterator[RtorrentProcess]:
    """A private, started rtorrent whose SCGI listener is 127.0.0.1:PORT (``.tcp_url``).

    rtorrent 0.9.8 accepts one SCGI listener only, so this one has no Unix socket.
    """
    with _rtorrent(tmp_path / "rtorrent-tcp", tcp=True) as process:
        yield process


@pytest.fixture
def rtorrent_pair(tmp_path: Path) -> Iterator[tuple[RtorrentProcess, RtorrentProcess]]:
    """Two private, started rtorrents ``(seeder, leecher)`` for ``harness.make_swarm``."""
    with ExitStack() as stack:
        seeder = stack.enter_context(_rtorrent(tmp_path / "seeder"))
        leecher = stack.enter_context(_rtorrent(tmp_path / "leecher"))
        yield seeder, leecher


@pytest.fixture
def torrent_factory(tmp_path: Path) -> TorrentFactory:
    """``make_torrent`` writing payloads under ``tmp_path / "payload"`` (or ``dest_dir=``)."""
    return TorrentFactory(tmp_path / "payload")


@pytest.fixture
def nginx() -> Iterator[Callable[..., NginxProcess]]:
    """Start private nginx instances in front of an SCGI socket, as contrib's config
    does: ``nginx(socket_path, users={...}, tls=..., run_as=...)``; killed on teardown."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (Debian package: nginx-light); run `make test`")
    with ExitStack() as stack:

        def start(socket_path: str | os.PathLike[str], **options: Any) -> NginxProcess:
            return stack.enter_context(NginxProcess(socket_path, **options))

        yield start


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    """An allowed root `data/dl`, a sibling `data/dl2`, and `outside/canary.bin`:
    every canary is checked once more when the test ends."""
    made = make_tree(tmp_path)
    yield made
    made.canaries.check()


@pytest.fixture
def canaries() -> Canaries:
    """Files a test adds and then proves intact with `.check()`."""
    return Canaries()
