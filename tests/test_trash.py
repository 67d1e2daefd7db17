"""The recycle bin's core (deletion/trash.py, trash_restore.py) on real files:
renames only (inodes kept), layout kept, never over anything, and a crash at every
step left complete or rolled back by `recover` (crashes are real: a forked child
dies with os._exit in the middle)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtorrentd.deletion import trash, trash_entry, trash_model, trash_restore
from rtorrentd.deletion.model import Identity
from rtorrentd.errors import TrashError

DAY = 86400.0


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(root, bin): a download root holding a few files, and a bin beside it."""
    root = tmp_path / "dl"
    (root / "x" / "y").mkdir(parents=True)
    (root / "x" / "y" / "a.bin").write_bytes(b"a" * 1000)
    (root / "x" / "b.bin").write_bytes(b"b" * 100)
    (root / "c.bin").write_bytes(b"c" * 10)
    (root / "empty").mkdir()
    yield root, tmp_path / "bin"


ORPHANS = ("x/y/a.bin", "x/b.bin", "c.bin", "empty")


def inodes(root: Path, rels: tuple[str, ...]) -> dict[str, int]:
    return {rel: os.lstat(root / rel).st_ino for rel in rels}


def test_orphans_are_renamed_into_one_entry_keeping_layout_and_inodes(
    layout: tuple[Path, Path],
) -> None:
    root, bin_dir = layout
    before = inodes(root, ORPHANS)

    out = trash.trash_paths(str(bin_dir), str(root), [str(root / r) for r in ORPHANS], "test")

    assert out.entry is not None and not out.skipped
    data = Path(out.entry.path) / trash.DATA
    assert before == inodes(data, ORPHANS)  # the same inodes: renamed, not copied
    assert not any((root / r).exists() for r in ORPHANS)
    assert (root / "x" / "y").is_dir()  # directories that held them are the caller's
    (listed,) = trash.entries(str(bin_dir))
    assert ("orphan", 1110, 1110) == (
        listed.manifest.kind,
        listed.manifest.size,
        listed.manifest.frees,
    )
    assert (0o700, 0o700) == (
        bin_dir.stat().st_mode & 0o777,
        Path(out.entry.path).stat().st_mode & 0o777,
    )


def test_paths_outside_the_root_changed_or_gone_are_left_alone(layout: tuple[Path, Path]) -> None:
    root, bin_dir = layout
    outside = root.parent / "outside.bin"
    outside.write_bytes(b"o")
    link = root / "link"
    link.symlink_to(root.parent)  # a symlinked directory on the way is not followed
    stale = Identity.of(os.lstat(root / "c.bin"))
    (root / "c.bin").unlink()
    (root / "c.bin").write_bytes(b"new file, same name")
    paths = [str(outside), str(link / "outside.bin"), str(root / "c.bin"), str(root / "nope")]
    paths += [str(root / "x" / "b.bin"), f"{root}/x/../c.bin"]

    out = trash.trash_paths(
        str(bin_dir), str(root), paths, "test", identities={str(root / "c.bin"): stale}
    )

    assert [str(root / "x" / "b.bin")] == list(out.moved)
    assert 5 == len(out.skipped)
    assert outside.exists() and (root / "c.bin").read_bytes() == b"new file, same name"


def test_restore_puts_every_path_back_and_removes_the_entry(layout: tuple[Path, Path]) -> None:
    root, bin_dir = layout
    before = inodes(root, ORPHANS)
    out = trash.trash_paths(str(bin_dir), str(root), [str(root / r) for r in ORPHANS], "t")
    assert out.entry is not None
    for rel in ("x/y", "x"):  # the caller pruned what emptied
        if not any((root / rel).iterdir()):
            (root / rel).rmdir()

    trash_restore.restore_paths(trash.find(str(bin_dir), out.entry.name))

    assert before == inodes(root, ORPHANS)
    assert [] == os.listdir(bin_dir)


def test_restore_refuses_when_anything_occupies_a_place(layout: tuple[Path, Path]) -> None:
    root, bin_dir = layout
    out = trash.trash_paths(str(bin_dir), str(root), [str(root / r) for r in ORPHANS], "t")
    assert out.entry is not None
    (root / "x" / "b.bin").write_bytes(b"someone else's")

    with pytest.raises(TrashError, match="already there"):
        trash_restore.restore_paths(out.entry)

    assert (root / "x" / "b.bin").read_bytes() == b"someone else's"
    assert [out.entry.name] == [e.name for e in trash.entries(str(bin_dir))]
    assert not (root / "c.bin").exists()  # nothing was put back


def test_discard_empties_and_expiry_goes_oldest_first(layout: tuple[Path, Path]) -> None:
    root, bin_dir = layout
    made = []
    for number, rel in enumerate(("x/y/a.bin", "x/b.bin", "c.bin")):
        out = trash.trash_paths(
            str(bin_dir), str(root), [str(root / rel)], "t", now=1000.0 + number * DAY
        )
        assert out.entry is not None
        made.append(out.entry.name)
    found = trash.entries(str(bin_dir))
    assert made == [e.name for e in found]

    assert made[:1] == [e.name for e in trash.expired(found, 1000 + 2.5 * DAY, 2 * DAY, None)]
    assert made[:2] == [e.name for e in trash.expired(found, 1000.0, None, 10)]
    assert [] == list(trash.expired(found, 1000.0, 7 * DAY, 1110))

    assert trash.discard(found[0])
    assert made[1:] == [e.name for e in trash.entries(str(bin_dir))]


def test_the_bin_on_another_filesystem_is_refused(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(root).st_dev:
        pytest.fail("/dev/shm is needed as another filesystem than the test's tmp_path")
    bin_dir = shm / f"rtorrentd-bin-{os.getpid()}"
    try:
        with pytest.raises(TrashError, match="another filesystem"):
            trash.trash_paths(str(bin_dir), str(root), [str(root / "c.bin")], "t")
    finally:
        if bin_dir.exists():
            os.rmdir(bin_dir)
    assert (root / "c.bin").exists()


# --- crashes ---------------------------------------------------------------------------


def crash_after(monkeypatch: pytest.MonkeyPatch, target: object, name: str, calls: int) -> None:
    """Make `target.name` kill the process (os._exit) on its call number `calls`+1."""
    real: Callable[..., object] = getattr(target, name)
    seen = [0]

    def dying(*args: object, **kwargs: object) -> object:
        if seen[0] == calls:
            os._exit(17)
        seen[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, dying)


def in_child(run: Callable[[], object]) -> int:
    """Run `run` in a forked child; its exit status (17: it crashed on purpose)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            run()
        except BaseException:  # an error is not the crash we meant: say so
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# Each place a crash can hit while an entry is made: before the k-th rename (the
# last: none comes, the entry is whole), and in the writes of the partial (0) and
# the complete manifest (1).
MAKE_CRASHES = [("rename_noreplace", k) for k in range(len(ORPHANS) + 1)]
MAKE_CRASHES += [("_write_file", 0), ("_write_file", 1)]


@pytest.mark.parametrize("point", MAKE_CRASHES, ids=[f"{n}-{k}" for n, k in MAKE_CRASHES])
def test_a_crash_while_an_entry_is_made_is_rolled_back_or_kept_whole(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, point: tuple[str, int]
) -> None:
    root, bin_dir = layout
    before = inodes(root, ORPHANS)
    paths = [str(root / r) for r in ORPHANS]

    def make() -> None:
        crash_after(monkeypatch, trash_entry, point[0], point[1])
        trash.trash_paths(str(bin_dir), str(root), paths, "t")

    code = in_child(make)
    trash.recover(str(bin_dir))

    complete = trash.entries(str(bin_dir))
    if code == 0:  # the crash point came after everything
        (entry,) = complete
        assert before == inodes(Path(entry.path) / trash.DATA, ORPHANS)
    else:
        assert 17 == code
        assert () == complete and [] == os.listdir(bin_dir)
        assert before == inodes(root, ORPHANS)  # every path back, the same files


RESTORE_CRASHES = [("rename_noreplace", k) for k in range(len(ORPHANS))]


@pytest.mark.parametrize("point", RESTORE_CRASHES, ids=[f"{n}-{k}" for n, k in RESTORE_CRASHES])
def test_a_crash_during_a_restore_is_finished_by_recover(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, point: tuple[str, int]
) -> None:
    root, bin_dir = layout
    before = inodes(root, ORPHANS)
    out = trash.trash_paths(str(bin_dir), str(root), [str(root / r) for r in ORPHANS], "t")
    assert out.entry is not None
    entry = out.entry

    def restore() -> None:
        crash_after(monkeypatch, trash_entry, point[0], point[1])
        trash_restore.restore_paths(entry)

    assert 17 == in_child(restore)
    assert (Path(entry.path) / trash.RESTORING).exists()
    assert 1 == trash.recover(str(bin_dir))

    assert before == inodes(root, ORPHANS)  # an orphan restore is finished
    assert [] == os.listdir(bin_dir)


def test_a_torrent_restore_cut_short_goes_back_into_the_bin_unless_rtorrent_has_it(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, bin_dir = layout
    out = trash.trash_paths(str(bin_dir), str(root), [str(root / r) for r in ORPHANS], "t")
    assert out.entry is not None
    entry = out.entry
    record = trash.TorrentRecord("AB" * 20, "t", str(root), True, "", (), True)
    manifest = trash_model.manifest_to_json(
        dataclasses.replace(entry.manifest, kind="torrent", torrent=record)
    )
    (Path(entry.path) / trash.COMPLETE).write_text(json.dumps(manifest))
    entry = trash.find(str(bin_dir), "AB" * 20)

    def restore() -> None:
        crash_after(monkeypatch, trash_entry, "rename_noreplace", 2)
        trash_restore.restore_paths(entry)  # the files half of a torrent's restore

    assert 17 == in_child(restore)
    assert 0 == trash.recover(str(bin_dir), None)  # rtorrent unknown: left for later
    assert 1 == trash.recover(str(bin_dir), frozenset())  # not loaded: back into the bin

    (back,) = trash.entries(str(bin_dir))
    assert back.name == entry.name
    assert not any((root / r).exists() for r in ORPHANS)


def test_an_entry_whose_rename_into_place_was_lost_is_rolled_back_not_removed(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut may lose the rename of `.new-<id>` to `<id>` while files moved in
    after it survive: recovery must put them back, never remove them with the rest."""
    root, bin_dir = layout
    before = inodes(root, ORPHANS)

    def make() -> None:
        crash_after(monkeypatch, trash_entry, "rename_noreplace", 2)
        trash.trash_paths(str(bin_dir), str(root), [str(root / r) for r in ORPHANS], "t")

    assert 17 == in_child(make)
    (name,) = os.listdir(bin_dir)
    os.rename(bin_dir / name, bin_dir / f".new-{name}")  # as if that rename never landed

    assert 1 == trash.recover(str(bin_dir))
    assert before == inodes(root, ORPHANS)
    assert [] == os.listdir(bin_dir)
