"""Reaping orphans when the daemon is PID 1, as in a container without `--init`.

In a PID namespace, a process whose parent exits is given to PID 1, and only
PID 1 can reap it; an init that never waits collects zombies, each holding a
process table slot until the container stops. rtorrentd starts no process of
its own, so every child it has is such an orphan (the background job of a
`docker exec` shell, what a killed health check left): waiting for any child
takes no exit status that code of ours waits for. Outside PID 1 none of this
runs, and the daemon never waits for a child.
"""

from __future__ import annotations

import os


def is_init(pid: int | None = None) -> bool:
    """Whether this process (or `pid`) is PID 1 of its namespace: the one orphans go to."""
    return (os.getpid() if pid is None else pid) == 1


def reap() -> int:
    """Wait for every child that has exited, without blocking; how many there were.

    Called on each SIGCHLD (several exits may arrive as one signal) and once at
    start, for the orphans that exited before the handler was there.
    """
    reaped = 0
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no children at all
            return reaped
        if pid == 0:  # children, none exited
            return reaped
        reaped += 1
