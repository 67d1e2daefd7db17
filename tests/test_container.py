"""The daemon as a container runs it: PID 1 of its own PID namespace.

PID 1 is special twice over. The kernel drops every signal whose action is the
default (SIGTERM, SIGHUP), so only the daemon's own handlers can stop or reload
it; and every orphan of the namespace becomes its child, which only it can reap.
`unshare --pid --fork --mount-proc` gives the daemon exactly that place, as
`docker run` without `--init` does; the tests signal it from outside, as the
engine does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from harness import RtorrentProcess
from test_daemon import WAIT, RunningDaemon, config_text, rule, write_config

from rtorrentd.service.reaper import is_init

# --kill-child: if the test dies, its daemon does too.
PID_NAMESPACE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
STOP_TIMEOUT = 10.0  # seconds: `docker stop` sends SIGKILL after this by default


def outside_pid(d: RunningDaemon) -> int:
    """The daemon's PID as the host sees it: unshare's only child."""
    unshare = d.process.pid
    (child,) = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
    return int(child)


def as_pid_1(config: Path) -> RunningDaemon:
    """`rtorrentd run -c config` as PID 1 of a new PID namespace, started and signalled
    from outside."""
    d = RunningDaemon(config, prefix=PID_NAMESPACE)
    started = d.log("daemon.started")
    assert 1 == started["pid"]  # what the daemon itself sees
    d.pid = outside_pid(d)
    return d


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid in /proc/{pid}/status")


def state_of(pid: int) -> str:
    """`/proc/PID/status`'s State line: `Z (zombie)` for one nobody reaped."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(line for line in lines if line.startswith("State:"))


def children_of(pid: int) -> list[int]:
    """Every process whose parent is `pid` (orphans included: /proc/PID/task/*/children
    lists only those a thread forked)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_of(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited meanwhile
    return found


def test_is_init() -> None:
    assert (True, False) == (is_init(1), is_init(2))
    assert not is_init()  # pytest itself


def test_reap_waits_for_exited_children_only() -> None:
    # In a process of its own: in pytest's, reap() could take the exit status of
    # a fixture's rtorrent.
    code = textwrap.dedent(
        """
        import os
        from rtorrentd.service.reaper import reap

        assert reap() == 0                        # no children at all
        r, w = os.pipe()
        quick = os.posix_spawn("/bin/true", ["true"], os.environ)
        slow = os.posix_spawn("/bin/sh", ["sh", "-c", "read x"], os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)])
        os.close(r)
        os.waitid(os.P_PID, quick, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert reap() == 1                        # `quick`; `slow` still runs
        os.kill(slow, 0)
        os.close(w)                               # `slow` reads EOF and exits
        os.waitid(os.P_PID, slow, os.WEXITED | os.WNOWAIT)
        assert reap() == 1
        assert reap() == 0
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert ("ok\n", "") == (result.stdout, result.stderr)


@pytest.mark.integration
def test_as_pid_1_sighup_reloads_and_sigterm_stops_cleanly(
    tmp_path: Path, rtorrent: RtorrentProcess
) -> None:
    write_config(tmp_path, rtorrent, rule("a", "^a-"))
    d = as_pid_1(tmp_path / "config.toml")
    try:
        d.log("poll.done", torrents=0)

        write_config(tmp_path, rtorrent, rule("b", "^b-"))
        d.send(signal.SIGHUP)
        reloaded = d.log("config.reloaded")
        assert (["b"], ["a"]) == (reloaded["rules_added"], reloaded["rules_removed"])
        d.send(signal.SIGUSR1)
        d.log("poll.done", torrents=0)

        began = time.monotonic()
        d.finish(signal.SIGTERM, expected=0)  # waits at most STOP_TIMEOUT
        assert time.monotonic() - began < STOP_TIMEOUT
        stopping = d.log("daemon.stopping")
        assert ("SIGTERM", False) == (stopping["signal"], stopping["immediate"])
        assert ["daemon.stopping", "daemon.stopped"] == d.events()[-2:]
        assert not Path(f"/proc/{d.pid}").exists()
    finally:
        d.close()


@pytest.mark.integration
def test_as_pid_1_orphans_are_reaped(tmp_path: Path) -> None:
    # No rtorrent: the daemon retries, and runs on; the orphans are the point.
    config = tmp_path / "config.toml"
    config.write_text(config_text(url=f"scgi://{tmp_path}/absent.socket", root=str(tmp_path)))
    d = as_pid_1(config)
    try:
        d.log("rtorrent.unreachable")
        # A process entered into the namespace forks a child and exits: that child,
        # blocked on a pipe the test holds, becomes the daemon's (as a `docker exec`
        # shell's background job would).
        r, w = os.pipe()
        orphan_maker = "import os, sys\nif os.fork() == 0:\n os.read(int(sys.argv[1]), 1)"
        enter = ["nsenter", "--target", str(d.pid), "--pid", "--"]
        subprocess.run(
            [*enter, sys.executable, "-c", orphan_maker, str(r)],
            pass_fds=(r,),
            check=True,
            timeout=WAIT,
        )
        os.close(r)
        (orphan,) = children_of(d.pid)

        os.close(w)  # the orphan reads EOF and exits; the daemon must reap it
        deadline = time.monotonic() + WAIT
        while Path(f"/proc/{orphan}").exists():
            assert time.monotonic() < deadline, f"{orphan} not reaped: {state_of(orphan)}"
            time.sleep(0.01)  # polling an outcome, with a deadline: nothing to wait on

        d.finish(signal.SIGTERM, expected=0)
    finally:
        d.close()
