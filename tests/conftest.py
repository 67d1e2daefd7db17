"""Shared fixtures: private rtorrent instances and a torrent factory (see tests/harness).

Every test that uses an rtorrent fixture (or asks for `rtorrent_version`) runs once per
rtorrent in `harness.VERSIONS`, with ids ``rt0.9.8`` and ``rt0.16``. A test that one
version cannot pass says so with ``@pytest.mark.rtorrent_xfail("0.16", reason=...)``:
it must fail there (strict), so the mark goes when the reason does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from harness import VERSIONS, HarnessError, RtorrentProcess, TorrentFactory
from harness.nginx import NGINX, NginxProcess
from hypothesis import settings
from trees import Canaries, Tree, make_tree

# Timing deadlines flake on a loaded 2-core CI machine; correctness is what counts.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "rtorrent_xfail(version, reason): strictly expected to fail on that rtorrent version",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One run per rtorrent version for every test that needs an rtorrent."""
    if "rtorrent_version" not in metafunc.fixturenames:
        return
    reasons: dict[str, str] = {}
    for mark in metafunc.definition.iter_markers("rtorrent_xfail"):
        (version,) = mark.args
        if version not in VERSIONS:
            raise ValueError(f"rtorrent_xfail: unknown version {version!r} in {metafunc.function}")
        reasons[version] = mark.kwargs["reason"]
    metafunc.parametrize(
        "rtorrent_version",
        [
            pytest.param(
                version,
                id=f"rt{version}",
                marks=[pytest.mark.xfail(strict=True, reason=reasons[version])]
                if version in reasons
                else [],
            )
            for version in VERSIONS
        ],
    )


@pytest.fixture
def rtorrent_version() -> str:
    """The rtorrent version under test; `pytest_generate_tests` parametrizes it."""
    raise AssertionError("rtorrent_version is parametrized by conftest.pytest_generate_tests")


@pytest.fixture
def make_rtorrent(rtorrent_version: str) -> Callable[..., RtorrentProcess]:
    """``make_rtorrent(root, **options)``: an `RtorrentProcess` of the version under
    test, not yet started (``clean_exit=True`` unless told otherwise)."""

    def make(root: Path, **options: Any) -> RtorrentProcess:
        try:
            return RtorrentProcess(root, version=rtorrent_version, **options)
        except HarnessError as exc:
            # `make test` fetches every version: integration tests are never skipped.
            pytest.fail(str(exc))

    return make


def _rtorrent(make: Callable[..., RtorrentProcess], root: Path, **options: Any) -> RtorrentProcess:
    """An rtorrent not yet started.

    Fixtures kill it on teardown instead of a clean shutdown: nothing reuses its
    session afterwards, and an idle rtorrent takes up to a second to shut down.
    """
    return make(root, clean_exit=False, **options)


@pytest.fixture
def rtorrent(
    tmp_path: Path, make_rtorrent: Callable[..., RtorrentProcess]
) -> Iterator[RtorrentProcess]:
    """A private, started rtorrent on a Unix socket (``.socket_path``, ``.scgi_url``)."""
    # Leaving the block kills its process group and reaps it, even on errors.
    with _rtorrent(make_rtorrent, tmp_path / "rtorrent") as process:
        yield process


@pytest.fixture
def rtorrent_tcp(
    tmp_path: Path, make_rtorrent: Callable[..., RtorrentProcess]
) -> Iterator[RtorrentProcess]:
    """A private, started rtorrent whose SCGI listener is 127.0.0.1:PORT (``.tcp_url``).

    rtorrent 0.9.8 accepts one SCGI listener only, so this one has no Unix socket.
    """
    with _rtorrent(make_rtorrent, tmp_path / "rtorrent-tcp", tcp=True) as process:
        yield process


@pytest.fixture
def rtorrent_pair(
    tmp_path: Path, make_rtorrent: Callable[..., RtorrentProcess]
) -> Iterator[tuple[RtorrentProcess, RtorrentProcess]]:
    """Two private, started rtorrents ``(seeder, leecher)`` for ``harness.make_swarm``."""
    with ExitStack() as stack:
        seeder = stack.enter_context(_rtorrent(make_rtorrent, tmp_path / "seeder"))
        leecher = stack.enter_context(_rtorrent(make_rtorrent, tmp_path / "leecher"))
        yield seeder, leecher


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A directory on another filesystem than `tmp_path`'s: /dev/shm, a tmpfs (for
    instances of a daemon that share no disk)."""
    base = Path("/dev/shm")
    if not base.is_dir() or base.stat().st_dev == tmp_path.stat().st_dev:
        pytest.fail("needs /dev/shm, a filesystem other than the one of the test's directory")
    with tempfile.TemporaryDirectory(dir=base, prefix="rtorrentd-test-") as directory:
        yield Path(directory)


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


def _namespaces_work() -> bool:
    # What the mount tests do: a private mount namespace with a tmpfs and a bind mount.
    probe = "mount -t tmpfs none /mnt && mount --bind / /mnt"
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", probe]
    try:
        return 0 == subprocess.run(command, check=False, capture_output=True, timeout=10).returncode
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def mount_namespace() -> None:
    """Tests that mount (unmounted disks, bind mounts, read-only roots) need this."""
    if shutil.which("unshare") is None or not _namespaces_work():
        why = "needs unshare -m, tmpfs and bind mounts (root, or a user namespace)"
        # CI runs as root, where this works: never let these attacks go untested.
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
