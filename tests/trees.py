"""A small tree to attack deletion with (test_deletion, test_attacks), and canary
files that must survive with their exact content (those and test_executor).

The `tree` and `canaries` fixtures in conftest.py build on these.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rtorrentd.deletion.model import Deletion
from rtorrentd.deletion.planning import plan_deletion
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.torrent import FileEntry

CANARY = b"the canary: data that must survive\n"


@dataclass
class Canaries:
    """Files that must survive with their exact content."""

    files: dict[Path, bytes] = field(default_factory=dict)

    def add(self, path: Path | bytes, content: bytes = CANARY) -> Path:
        target = Path(os.fsdecode(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self.files[target] = content
        return target

    def keep(self, files: Mapping[Path, bytes]) -> None:
        self.files.update(files)

    def check(self) -> None:
        for path, content in self.files.items():
            assert path.is_file() and not path.is_symlink(), path
            assert content == path.read_bytes(), path


@dataclass(frozen=True)
class Tree:
    """`dl` is the allowed root; `dl2` a sibling that is not; `outside/canary.bin`
    (and whatever else is added to `canaries`) must survive every attempt."""

    base: Path
    dl: Path
    dl2: Path
    outside: Path
    canaries: Canaries

    @property
    def canary(self) -> Path:
        return self.outside / "canary.bin"

    @property
    def roots(self) -> list[str]:
        return [str(self.dl)]

    def check_canary(self) -> None:
        self.canaries.check()

    def snapshot(self) -> dict[str, object]:
        """Every entry under base with its type and content (never following links).

        Read through directory descriptors, so paths longer than PATH_MAX work too."""
        found: dict[str, object] = {}
        for top, dirs, files, fd in os.fwalk(self.base):
            for name in dirs + files:
                found[os.path.join(top, name)] = _entry(name, fd)
        return found


def _entry(name: str, dir_fd: int) -> object:
    mode = os.lstat(name, dir_fd=dir_fd).st_mode
    if stat.S_ISLNK(mode):
        return ("link", os.readlink(name, dir_fd=dir_fd))
    if not stat.S_ISREG(mode):
        return ("other", mode)
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as file:
        return ("file", file.read())


def make_tree(base: Path) -> Tree:
    """The directories of a `Tree` under `base`, with its canary."""
    dl, dl2, outside = base / "data/dl", base / "data/dl2", base / "outside"
    for d in (dl, dl2, outside):
        d.mkdir(parents=True)
    tree = Tree(base, dl, dl2, outside, Canaries())
    tree.canaries.add(tree.canary)
    return tree


def write(path: Path, data: bytes = b"payload") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make(root: Path, files: Mapping[str, bytes]) -> list[FileEntry]:
    """Create a torrent's files under root; return them as rtorrent would list them."""
    for rel, data in files.items():
        write(root / rel, data)
    return [FileEntry(rel, len(data)) for rel, data in files.items()]


def plan(
    tree: Tree,
    root: Path | str,
    files: Sequence[FileEntry],
    *,
    multi_file: bool = True,
    shared: Sequence[str] = (),
    roots: Sequence[str] | None = None,
) -> Deletion:
    """plan_deletion, also proving that it changed nothing on disk."""
    before = tree.snapshot()
    try:
        return plan_deletion(
            str(root),
            files,
            tree.roots if roots is None else roots,
            frozenset(shared),
            multi_file=multi_file,
        )
    finally:
        assert before == tree.snapshot()
        tree.check_canary()


def refused(tree: Tree, root: Path | str, files: Sequence[FileEntry], **kw: Any) -> str:
    """The refusal's message; fails if `plan_deletion` does not refuse."""
    with pytest.raises(UnsafeDeletion) as info:
        plan(tree, root, files, **kw)
    return str(info.value)
