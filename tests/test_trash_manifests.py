"""A bin's manifests are parsed once while their file is unchanged, and read
afresh whenever it is another file, another state, or too new to tell."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtorrentd.deletion import trash, trash_entry, trash_manifests
from rtorrentd.deletion.trash_model import COMPLETE, RESTORING
from rtorrentd.errors import TrashError


def one_entry(tmp_path: Path, name: str = "old.bin") -> trash.Entry:
    root, bin_dir = tmp_path / "data", tmp_path / "bin"
    root.mkdir(exist_ok=True)
    (root / name).write_bytes(b"x" * 100)
    trash.trash_paths(str(bin_dir), str(root), [str(root / name)], "test")
    (entry,) = [e for e in trash.entries(str(bin_dir)) if e.manifest.title.endswith(name)]
    return entry


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as settled at once (their ctime is always 'long ago')."""
    monkeypatch.setattr(trash_manifests, "RACY_SECONDS", -60.0)


def test_an_unchanged_manifest_is_parsed_once(tmp_path: Path, settled: None) -> None:
    entry = one_entry(tmp_path)
    first = trash_manifests.read_manifest(entry.path)
    second = trash_manifests.read_manifest(entry.path)
    assert first is not None and second is not None
    assert first[1] is second[1]


def test_a_manifest_replaced_by_another_file_is_read_again(tmp_path: Path, settled: None) -> None:
    entry = one_entry(tmp_path)
    before = trash_manifests.read_manifest(entry.path)
    manifest = Path(entry.path) / COMPLETE
    data = json.loads(manifest.read_bytes())
    data["reason"] = "tset"  # the same size, another file (written aside, renamed over)
    aside = Path(entry.path) / "aside"
    aside.write_bytes(json.dumps(data).encode())
    stat = manifest.stat()
    os.utime(aside, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.rename(aside, manifest)

    after = trash_manifests.read_manifest(entry.path)

    assert before is not None and after is not None
    assert ("test", "tset") == (before[1].reason, after[1].reason)


def test_a_change_of_state_is_seen(tmp_path: Path, settled: None) -> None:
    entry = one_entry(tmp_path)
    trash_manifests.read_manifest(entry.path)
    trash_entry.set_state(entry, RESTORING)
    read = trash_manifests.read_manifest(entry.path)
    assert read is not None and RESTORING == read[0]
    assert [] == [e.name for e in trash.entries(entry.bin)]  # no longer complete


def test_a_manifest_changed_within_the_racy_window_is_not_kept(tmp_path: Path) -> None:
    entry = one_entry(tmp_path)  # written just now
    first = trash_manifests.read_manifest(entry.path)
    second = trash_manifests.read_manifest(entry.path)
    assert first is not None and second is not None
    assert first[1] == second[1] and first[1] is not second[1]


def test_an_emptied_entry_is_forgotten(tmp_path: Path, settled: None) -> None:
    kept, gone = one_entry(tmp_path, "kept.bin"), one_entry(tmp_path, "gone.bin")
    assert trash.discard(gone)
    trash.entries(kept.bin)
    cached = {os.path.dirname(p) for p in trash_manifests._parsed}
    assert (kept.path in cached, gone.path in cached) == (True, False)


def test_an_unreadable_manifest_is_an_error_not_a_cached_answer(
    tmp_path: Path, settled: None
) -> None:
    entry = one_entry(tmp_path)
    trash_manifests.read_manifest(entry.path)
    manifest = Path(entry.path) / COMPLETE
    aside = Path(entry.path) / "aside"
    aside.write_bytes(b"{not json")
    os.rename(aside, manifest)
    with pytest.raises(TrashError, match="cannot read the bin entry's manifest"):
        trash_manifests.read_manifest(entry.path)
