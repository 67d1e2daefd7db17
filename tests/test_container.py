"""The daemon as a container runs it, and the recipe that builds the image.

The recipe (contrib/Containerfile, contrib/docker-compose.yml, contrib/container/)
is linted always, and the image built and run when a container engine answers.

PID 1 is special twice over. The kernel drops every signal whose action is the
default (SIGTERM, SIGHUP), so only the daemon's own handlers can stop or reload
it; and every orphan of the namespace becomes its child, which only it can reap.
`unshare --pid --fork --mount-proc` gives the daemon exactly that place, as
`docker run` without `--init` does; the tests signal it from outside, as the
engine does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import RtorrentProcess
from test_daemon import WAIT, RunningDaemon, config_text, rule, write_config

from rtorrentd import __version__
from rtorrentd.config.instances import load_instances
from rtorrentd.service.reaper import is_init

REPO = Path(__file__).resolve().parent.parent
CONTAINERFILE = REPO / "contrib" / "Containerfile"
COMPOSE = REPO / "contrib" / "docker-compose.yml"
# crazymax/rtorrent-rutorrent: network.scgi.open_local = /var/run/rtorrent/scgi.socket
RTORRENT_SOCKET_NAME = "scgi.socket"

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
    try:
        started = d.log("daemon.started")
        assert 1 == started["pid"]  # what the daemon itself sees
        d.pid = outside_pid(d)
    except BaseException:
        d.close()
        raise
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


def test_the_package_starts_no_process() -> None:
    # reap() waits for any child, which is safe only while no code of ours starts a
    # process and waits for it: the reaper would take its exit status. Code that
    # starts one must come with a reaper that spares it (service/reaper.py).
    starts = re.compile(
        r"\b(subprocess|multiprocessing|create_subprocess_\w+|run_process|open_process)\b"
        r"|\bos\.(fork\w*|exec\w*|spawn\w*|posix_spawn\w*|system|popen)\b"
    )
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted((REPO / "rtorrentd").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if starts.search(line)
    ]
    assert [] == found


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


# --- the recipe --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipe:
    """A Containerfile as (instruction, arguments) pairs per stage, with its ARG defaults."""

    stages: tuple[tuple[tuple[str, str], ...], ...]
    args: Mapping[str, str]  # every ARG default, global or of a stage

    @classmethod
    def parse(cls, text: str) -> Recipe:
        instructions: list[tuple[str, str]] = []
        pending = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue  # comments and blank lines, also inside a continuation
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            keyword, _, rest = (pending + line).partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
        assert not pending, "the last instruction ends with a backslash"
        stages: list[list[tuple[str, str]]] = []
        args: dict[str, str] = {}
        for keyword, rest in instructions:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args[name] = default
            if keyword == "FROM":
                stages.append([])
            if stages:
                stages[-1].append((keyword, rest))
        return cls(tuple(tuple(stage) for stage in stages), args)

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: self.args[m.group(1)], text)

    def final(self, keyword: str) -> str:
        """The last `keyword` of the runtime (last) stage, which is the one in force."""
        found = [rest for k, rest in self.stages[-1] if k == keyword]
        assert found, f"no {keyword} in the last stage"
        return found[-1]

    def env(self) -> dict[str, str]:
        pairs = [shlex.split(rest) for k, rest in self.stages[-1] if k == "ENV"]
        return dict(word.split("=", 1) for words in pairs for word in words)


def exec_form(text: str) -> list[str]:
    """A JSON array of strings (exec form), or the test fails: shell form would make
    /bin/sh PID 1, and the daemon would never see a signal."""
    value = json.loads(text)
    assert isinstance(value, list), text
    assert all(isinstance(word, str) for word in value), text
    return value


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last match wins)."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if fnmatch(path, bare) or fnmatch(path.split("/", maxsplit=1)[0], bare):
            excluded = not negated
    return excluded


def mounts(service: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """A compose service's volumes: container path -> (source, writable), with each
    `${NAME:-default}` taken as its default."""
    found = {}
    for entry in service["volumes"]:
        source, target, *mode = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", entry).split(":")
        found[target] = (source, mode != ["ro"])
    return found


def engine_reachable() -> str | None:
    """docker or podman, if its `info` answers (a daemon is there); else None."""
    for engine in ("docker", "podman"):
        if shutil.which(engine) is None:
            continue
        info = subprocess.run([engine, "info"], capture_output=True, timeout=60, check=False)
        if info.returncode == 0:
            return engine
    return None


def test_the_container_recipe_and_the_compose_file_agree() -> None:
    recipe = Recipe.parse(CONTAINERFILE.read_text())
    for keyword, rest in (i for stage in recipe.stages for i in stage):
        assert not (keyword == "ADD" and "://" in rest), "ADD of a URL: unverified download"
        if keyword == "FROM":
            image = recipe.expand(rest.split()[0])
            # A release, not a moving tag: `3.13` or `latest` rebuild differently.
            assert re.search(r":\d+\.\d+\.\d+", image) and "latest" not in image, image

    # The daemon itself is PID 1, as a fixed unprivileged user.
    runtime = [keyword for keyword, _ in recipe.stages[-1]]
    assert runtime.index("USER") < runtime.index("ENTRYPOINT")
    uid, gid = recipe.expand(recipe.final("USER")).split(":")
    assert uid.isdigit() and gid.isdigit() and "0" not in (uid, gid)
    assert ["rtorrentd"] == exec_form(recipe.final("ENTRYPOINT"))
    command = exec_form(recipe.final("CMD"))
    assert ["run", "-c"] == command[:2]
    assert "SIGTERM" == recipe.final("STOPSIGNAL")
    options, _, probe = recipe.final("HEALTHCHECK").partition(" CMD ")
    assert "python" == exec_form(probe)[0]
    assert "--timeout=" in options

    env = recipe.env()
    volumes = exec_form(recipe.final("VOLUME"))
    config_dir, state_dir = command[2], env["STATE_DIRECTORY"]
    socket_dir = next(v for v in volumes if v not in (config_dir, state_dir))
    assert {config_dir, state_dir, socket_dir} == set(volumes)

    # Everything COPY takes from the context is in it.
    patterns = (REPO / ".dockerignore").read_text().split("\n")
    patterns = [p.strip() for p in patterns if p.strip() and not p.startswith("#")]
    for keyword, rest in recipe.stages[0]:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert (REPO / source).exists(), source
                assert not ignored(source.rstrip("/"), patterns), source
    assert ignored(".venv", patterns) and ignored("build", patterns)

    # The compose file: parses, and mounts what the image declares.
    compose = yaml.safe_load(COMPOSE.read_text())
    ours, theirs = compose["services"]["rtorrentd"], compose["services"]["rtorrent"]
    context = (COMPOSE.parent / ours["build"]["context"]).resolve()
    assert (REPO, CONTAINERFILE) == (context, context / ours["build"]["dockerfile"])
    our_mounts, their_mounts = mounts(ours), mounts(theirs)
    assert {config_dir, state_dir, socket_dir} <= our_mounts.keys()
    assert not our_mounts[config_dir][1], "the configuration is mounted read-only"
    named_volumes = compose["volumes"].keys()
    socket_volume = our_mounts[socket_dir][0]
    assert {socket_volume, our_mounts[state_dir][0]} <= named_volumes
    assert socket_volume in {source for source, _ in their_mounts.values()}
    # Every path rtorrent reports (downloads, session) at the same path, same source.
    data = {t: m for t, m in our_mounts.items() if t not in (config_dir, state_dir, socket_dir)}
    assert data
    for target, (source, _) in data.items():
        assert (source, target) == (their_mounts.get(target, ("",))[0], target), "not rtorrent's"
    # rtorrent's own user, which owns the socket: rtorrentd may connect.
    puid_pgid = f"{theirs['environment']['PUID']}:{theirs['environment']['PGID']}"
    assert ours["user"] == puid_pgid == f"{uid}:{gid}"
    assert {"unless-stopped"} == {theirs["restart"], ours["restart"]}
    assert int(ours["stop_grace_period"].removesuffix("s")) >= 10
    assert ":" in theirs["image"] and "latest" not in theirs["image"]
    for service in compose["services"].values():
        for name in service.get("environment", {}):
            assert not re.search("PASS|SECRET|TOKEN|KEY", name, re.I), name

    # The sample configuration is valid and names those very paths.
    instances = load_instances(str(COMPOSE.parent / our_mounts[config_dir][0]))
    assert instances.directory and instances.configs
    for config in instances.configs.values():
        assert f"scgi://{socket_dir}/{RTORRENT_SOCKET_NAME}" == config.rtorrent.url
        for root in config.safety.allowed_roots:
            mount = next(t for t in data if root == t or root.startswith(t + "/"))
            assert data[mount][1], f"{mount} is read-only: nothing could be deleted"
    assert instances.metrics is not None and instances.metrics.listen is not None
    port = instances.metrics.listen[1]
    assert env["RTORRENTD_HEALTH_URL"] == f"http://127.0.0.1:{port}/metrics"

    # And, where a container engine answers, the image builds and runs.
    engine = engine_reachable()
    if engine is not None:
        built_and_run(engine, f"{uid}:{gid}", instances.path)


def built_and_run(engine: str, user: str, config_dir: str) -> None:
    """Build the image with `engine`, run `version` and `check` in it, read its config."""

    def call(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [engine, *args], check=False, capture_output=True, text=True, timeout=timeout
        )

    tag = f"localhost/rtorrentd-test:{uuid.uuid4().hex[:12]}"
    form = ("--format", "docker") if engine == "podman" else ()  # OCI has no HEALTHCHECK
    build = call("build", *form, "-f", str(CONTAINERFILE), "-t", tag, str(REPO), timeout=1800)
    assert 0 == build.returncode, build.stderr[-4000:]
    try:
        version = call("run", "--rm", tag, "version")
        assert (0, f"rtorrentd {__version__}\n") == (version.returncode, version.stdout)
        mount = f"{config_dir}:/config:ro"
        checked = call("run", "--rm", "-v", mount, tag, "check", "-c", "/config")
        assert 0 == checked.returncode, checked.stderr
        inspect = call("image", "inspect", tag)
        config = json.loads(inspect.stdout)[0]["Config"]
        assert (user, "SIGTERM") == (config["User"], config["StopSignal"])
    finally:
        call("rmi", "-f", tag)
