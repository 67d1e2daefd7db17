"""planning and carry_out: every destructive path is tried against the wrong target.

Each test builds a small tree under tmp_path: an allowed root `data/dl`, a sibling
`data/dl2` that is not allowed, and `outside/canary.bin`, whose presence and content
are asserted after each attempt. `plan_deletion` is also checked to change nothing.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trees import CANARY, Tree, make, plan, refused, write

from rtorrentd.deletion import executor
from rtorrentd.deletion.carry_out import carry_out
from rtorrentd.deletion.model import Fate, Note
from rtorrentd.deletion.planning import plan_deletion
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.torrent import FileEntry


def why(message: str) -> str:
    """The message without the path it names (tmp_path holds the test's name)."""
    assert message.startswith("refusing to delete '")
    return message.rpartition("': ")[2]


# --- the happy paths ------------------------------------------------------------------


def test_multi_file_deletes_files_and_prunes_dirs_deepest_first(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a" * 10, "sub/deep/b.bin": b"b" * 20, "sub/c.bin": b"c"})
    sibling = tree.dl / "other.bin"
    write(sibling)

    deletion = plan(tree, movie, files)

    assert tuple(str(movie / f.path) for f in files) == deletion.to_unlink
    assert (str(movie / "sub/deep"), str(movie / "sub"), str(movie)) == deletion.prune_dirs
    assert 31 == deletion.freed_bytes
    assert () == deletion.kept_shared
    assert () == deletion.already_gone
    outcome = carry_out(deletion)
    assert deletion.to_unlink == outcome.deleted
    assert deletion.prune_dirs == outcome.removed_dirs
    assert 31 == outcome.freed_bytes
    assert outcome.complete
    assert not movie.exists()
    assert tree.dl.is_dir()
    assert b"payload" == sibling.read_bytes()


def test_single_file_torrent_never_removes_its_download_dir(tree: Tree) -> None:
    download_dir = tree.dl / "tv"
    files = make(download_dir, {"show.mkv": b"x" * 7})

    deletion = plan(tree, download_dir, files, multi_file=False)

    assert () == deletion.prune_dirs
    outcome = carry_out(deletion)
    assert (str(download_dir / "show.mkv"),) == outcome.deleted
    assert download_dir.is_dir()
    assert [] == list(download_dir.iterdir())


def test_multi_file_torrent_whose_root_is_the_allowed_root_keeps_it(tree: Tree) -> None:
    # d.directory_base: a multi-file torrent written straight into the download dir.
    files = make(tree.dl, {"sub/a.bin": b"a"})

    deletion = plan(tree, tree.dl, files)

    assert (str(tree.dl / "sub"),) == deletion.prune_dirs
    carry_out(deletion)
    assert tree.dl.is_dir()


def test_without_multi_file_subdirs_are_pruned_but_not_the_root(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a"})

    deletion = plan(tree, movie, files, multi_file=False)

    assert (str(movie / "sub"),) == deletion.prune_dirs
    carry_out(deletion)
    assert movie.is_dir()


def test_a_users_extra_file_keeps_its_directory(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a", "b.bin": b"b"})
    notes = movie / "sub/notes.txt"
    notes.write_bytes(b"mine")

    outcome = carry_out(plan(tree, movie, files))

    assert 2 == len(outcome.deleted)
    assert () == outcome.removed_dirs
    assert [str(movie / "sub"), str(movie)] == [n.path for n in outcome.skipped_dirs]
    assert all("not empty" in n.reason for n in outcome.skipped_dirs)
    assert outcome.complete  # the torrent's own files are all gone
    assert b"mine" == notes.read_bytes()


def test_duplicates_are_counted_once(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a" * 5})

    deletion = plan(tree, movie, files * 3)

    assert 1 == len(deletion.files)
    assert 5 == deletion.freed_bytes


def test_allowed_root_that_is_a_symlink_is_resolved(tree: Tree) -> None:
    link = tree.base / "dl-link"
    link.symlink_to(tree.dl)
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})

    outcome = carry_out(plan(tree, link / "Movie", files, roots=[str(link)]))

    assert (str(movie / "a.bin"),) == outcome.deleted
    assert link.is_symlink()


def test_download_dir_reached_through_a_symlink_is_resolved(tree: Tree) -> None:
    # rtorrent's directory.default may be ~/downloads -> /data/dl: the administrator's layout.
    home_link = tree.base / "home-downloads"
    home_link.symlink_to(tree.dl)
    files = make(tree.dl / "tv", {"show.mkv": b"s"})

    deletion = plan(tree, home_link / "tv", files, multi_file=False)

    assert (str(tree.dl / "tv/show.mkv"),) == deletion.to_unlink
    carry_out(deletion)
    assert not (tree.dl / "tv/show.mkv").exists()


# --- paths that point elsewhere ---------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    [
        "../../outside/canary.bin",
        "a/../../../outside/canary.bin",
        "./canary.bin",
        "a//canary.bin",
        "canary.bin/",
        ".",
        "..",
        "",
        "a\0b",
    ],
)
def test_listed_paths_that_are_not_plain_relative_paths_are_refused(tree: Tree, rel: str) -> None:
    movie = tree.dl / "Movie"
    make(movie, {"a/x.bin": b"x", "canary.bin": CANARY})

    message = refused(tree, movie, [FileEntry(rel, len(CANARY))])

    assert "refusing to delete" in message


def test_an_absolute_listed_path_is_refused(tree: Tree) -> None:
    message = refused(tree, tree.dl, [FileEntry(str(tree.canary), len(CANARY))])

    assert "absolute" in why(message)


def test_a_torrent_outside_the_allowed_roots_is_refused(tree: Tree) -> None:
    message = refused(tree, tree.outside, [FileEntry("canary.bin", len(CANARY))])

    assert str(tree.outside) in message
    assert "outside every allowed root" in why(message)


def test_a_sibling_with_a_longer_name_is_not_inside(tree: Tree) -> None:
    # /data/dl2 starts with the text /data/dl but is not inside it.
    victim = tree.dl2 / "Movie/a.bin"
    files = make(tree.dl2 / "Movie", {"a.bin": b"keep me"})

    refused(tree, tree.dl2 / "Movie", files)

    assert b"keep me" == victim.read_bytes()


def test_a_relative_or_dotted_root_is_refused(tree: Tree) -> None:
    files = [FileEntry("canary.bin", len(CANARY))]
    refused(tree, "data/dl", files)
    refused(tree, f"{tree.dl}/../../outside", files)


def test_a_root_that_is_a_file_is_refused(tree: Tree) -> None:
    refused(tree, tree.canary, [FileEntry("x", 1)])


def test_a_symlinked_directory_inside_the_torrent_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})
    (movie / "extras").symlink_to(tree.outside)

    message = refused(tree, movie, [*files, FileEntry("extras/canary.bin", len(CANARY))])

    assert str(movie / "extras") in message
    assert "is a symlink to" in why(message)
    assert (movie / "a.bin").exists()


@pytest.mark.parametrize("multi_file", [True, False])
def test_a_root_that_is_a_symlink_to_outside_is_refused(tree: Tree, multi_file: bool) -> None:
    movie = tree.dl / "Movie"
    movie.symlink_to(tree.outside)

    message = refused(tree, movie, [FileEntry("canary.bin", len(CANARY))], multi_file=multi_file)

    assert str(tree.outside) in message


def test_a_torrents_own_directory_that_is_a_symlink_is_refused_even_inside(tree: Tree) -> None:
    real = tree.dl / "elsewhere/Movie"
    files = make(real, {"a.bin": b"a"})
    (tree.dl / "Movie").symlink_to(real)

    message = refused(tree, tree.dl / "Movie", files)

    assert "own directory is a symlink" in why(message)
    assert (real / "a.bin").exists()


# --- what is at the path ------------------------------------------------------------------


def test_a_symlinked_file_is_removed_as_a_link_and_its_target_kept(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})
    (movie / "c.bin").symlink_to(tree.canary)
    files.append(FileEntry("c.bin", len(CANARY)))

    deletion = plan(tree, movie, files)

    assert 1 == deletion.freed_bytes  # a.bin only
    assert "symlink" in dict(deletion.reasons)[str(movie / "c.bin")]
    outcome = carry_out(deletion)
    assert str(movie / "c.bin") in outcome.deleted
    assert 1 == outcome.freed_bytes
    assert not os.path.lexists(movie / "c.bin")
    tree.check_canary()


def test_a_dangling_symlinked_file_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    movie.mkdir()
    (movie / "c.bin").symlink_to(tree.outside / "missing.bin")

    message = refused(tree, movie, [FileEntry("c.bin", 3)])

    assert "cannot be reached" in why(message)
    assert (movie / "c.bin").is_symlink()


@pytest.mark.parametrize("target", ["canary", "outside-dir"])
def test_a_symlinked_file_whose_target_does_not_match_is_refused(tree: Tree, target: str) -> None:
    movie = tree.dl / "Movie"
    movie.mkdir()
    (movie / "c.bin").symlink_to(tree.canary if target == "canary" else tree.outside)

    refused(tree, movie, [FileEntry("c.bin", len(CANARY) + 1)])


def test_a_file_of_another_size_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    make(movie, {"a.bin": b"12345"})

    message = refused(tree, movie, [FileEntry("a.bin", 4)])

    assert "5 bytes but rtorrent lists 4" in why(message)


def test_a_directory_where_a_file_is_expected_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    make(movie, {"a.bin/inner.bin": b"x"})

    message = refused(tree, movie, [FileEntry("a.bin", 4096)])

    assert "a directory, not a regular file" in why(message)


def test_a_file_where_a_directory_is_expected_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    make(movie, {"sub": b"x"})

    refused(tree, movie, [FileEntry("sub/a.bin", 1)])


def test_a_fifo_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    movie.mkdir()
    os.mkfifo(movie / "a.bin")

    message = refused(tree, movie, [FileEntry("a.bin", 0)])

    assert "a fifo" in why(message)


def test_a_socket_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    movie.mkdir()
    path = str(movie / "s")
    if len(os.fsencode(path)) >= 100:
        pytest.skip("tmp_path too long for a Unix socket")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        assert "a socket" in why(refused(tree, movie, [FileEntry("s", 0)]))


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A directory on another filesystem than /dev, or skip."""
    if not os.access("/dev/shm", os.W_OK) or os.stat("/dev/shm").st_dev == os.stat("/dev").st_dev:
        pytest.skip("needs /dev/shm on its own filesystem")
    path = Path(tempfile.mkdtemp(dir="/dev/shm"))
    yield path
    shutil.rmtree(path)


def test_a_file_on_another_filesystem_than_its_allowed_root_is_refused(
    tree: Tree, shm_dir: Path
) -> None:
    files = make(shm_dir, {"a.bin": b"a"})

    message = refused(tree, shm_dir, files, roots=["/dev"])

    assert "another filesystem" in why(message)
    assert (shm_dir / "a.bin").exists()
    # Naming the mount as its own (deeper) allowed root is the fix.
    deletion = plan(tree, shm_dir, files, roots=["/dev", str(shm_dir)], multi_file=False)
    assert (str(shm_dir / "a.bin"),) == deletion.to_unlink


def test_a_listed_path_of_unsure_size_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    make(movie, {"a.bin": b"a"})
    refused(tree, movie, [FileEntry("a.bin", -1)])
    refused(tree, movie, [FileEntry("a.bin", True)])
    refused(tree, movie, [FileEntry("a.bin", 1), FileEntry("a.bin", 2)])
    refused(tree, movie, [])


# --- the allowed roots themselves ---------------------------------------------------------


@pytest.mark.parametrize("bad", ["missing", "relative", "slash", "link-to-slash", "file"])
def test_a_bad_allowed_root_is_refused(tree: Tree, bad: str) -> None:
    (tree.base / "link-to-slash").symlink_to("/")
    roots = {
        "missing": str(tree.base / "unmounted"),
        "relative": "data/dl",
        "slash": "/",
        "link-to-slash": str(tree.base / "link-to-slash"),
        "file": str(tree.canary),
    }
    files = make(tree.dl / "Movie", {"a.bin": b"a"})

    message = refused(tree, tree.dl / "Movie", files, roots=[*tree.roots, roots[bad]])

    assert "allowed_roots" in why(message)
    assert (tree.dl / "Movie/a.bin").exists()


def test_no_allowed_roots_is_refused(tree: Tree) -> None:
    assert "no allowed roots" in why(refused(tree, tree.dl, [FileEntry("a", 1)], roots=[]))


def test_a_single_string_is_not_taken_for_a_collection(tree: Tree) -> None:
    files = make(tree.dl / "Movie", {"a.bin": b"a"})
    with pytest.raises(TypeError):
        plan_deletion(str(tree.dl / "Movie"), files, str(tree.dl), (), multi_file=True)
    with pytest.raises(TypeError):
        plan_deletion(str(tree.dl / "Movie"), files, tree.roots, "/data", multi_file=True)


# --- shared and hard-linked data ----------------------------------------------------------


def test_a_shared_file_is_kept_and_the_rest_deleted(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a" * 3, "b.bin": b"b" * 4})

    deletion = plan(tree, movie, files, shared=[str(movie / "sub/a.bin")])

    assert (str(movie / "sub/a.bin"),) == deletion.kept_shared
    assert (str(movie / "b.bin"),) == deletion.to_unlink
    assert 4 == deletion.freed_bytes
    assert () == deletion.prune_dirs  # both hold the kept file
    outcome = carry_out(deletion)
    assert b"aaa" == (movie / "sub/a.bin").read_bytes()
    assert not (movie / "b.bin").exists()
    assert 4 == outcome.freed_bytes


def test_a_file_shared_through_a_symlinked_directory_is_kept(tree: Tree) -> None:
    (tree.base / "dl-link").symlink_to(tree.dl)
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})

    deletion = plan(tree, movie, files, shared=[str(tree.base / "dl-link/Movie/./a.bin")])

    assert (str(movie / "a.bin"),) == deletion.kept_shared


def test_a_file_that_a_cross_seed_symlink_points_to_is_kept(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})
    cross = tree.dl / "cross-seeds/Movie.Other.Name/renamed.bin"
    cross.parent.mkdir(parents=True)
    cross.symlink_to(movie / "a.bin")

    deletion = plan(tree, movie, files, shared=[str(cross)])

    assert (str(movie / "a.bin"),) == deletion.kept_shared
    assert 0 == deletion.freed_bytes


def test_a_hard_link_listed_by_another_torrent_does_not_keep_ours(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a" * 3})
    other = tree.dl / "Other/a.bin"
    other.parent.mkdir()
    os.link(movie / "a.bin", other)

    deletion = plan(tree, movie, files, shared=[str(other)])

    assert (str(movie / "a.bin"),) == deletion.to_unlink
    assert 0 == deletion.freed_bytes
    carry_out(deletion)
    assert b"aaa" == other.read_bytes()


def test_a_hard_linked_file_is_unlinked_and_frees_nothing(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a" * 3, "b.bin": b"b"})
    archive = tree.outside / "archive.bin"
    os.link(movie / "a.bin", archive)

    deletion = plan(tree, movie, files)

    assert 1 == deletion.freed_bytes
    assert "links" in dict(deletion.reasons)[str(movie / "a.bin")]
    outcome = carry_out(deletion)
    assert 2 == len(outcome.deleted)
    assert 1 == outcome.freed_bytes
    assert b"aaa" == archive.read_bytes()


def test_files_of_the_torrent_linked_to_each_other_free_their_size_once(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a" * 3})
    os.link(movie / "a.bin", movie / "b.bin")
    files.append(FileEntry("b.bin", 3))

    deletion = plan(tree, movie, files)

    assert 3 == deletion.freed_bytes
    assert 3 == carry_out(deletion).freed_bytes


def test_a_relative_shared_path_is_refused(tree: Tree) -> None:
    files = make(tree.dl / "Movie", {"a.bin": b"a"})
    refused(tree, tree.dl / "Movie", files, shared=["Movie/a.bin"])


# --- repeating, crashing, and the world changing in between ----------------------------------


def test_carry_out_twice_is_harmless(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a", "b.bin": b"b"})
    deletion = plan(tree, movie, files)
    carry_out(deletion)

    again = carry_out(deletion)

    assert () == again.deleted
    assert deletion.to_unlink == again.already_gone
    assert () == again.removed_dirs
    assert 0 == again.freed_bytes
    assert again.complete


def test_planning_again_after_a_partial_deletion(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a", "b.bin": b"b"})
    (movie / "b.bin").unlink()  # a crash after this unlink

    deletion = plan(tree, movie, files)

    assert (str(movie / "b.bin"),) == deletion.already_gone
    assert (str(movie / "sub/a.bin"),) == deletion.to_unlink
    carry_out(deletion)
    assert not movie.exists()
    # And once more, with everything gone, the root included.
    final = plan(tree, movie, files)
    assert 2 == len(final.already_gone)
    assert () == final.to_unlink
    assert () == final.prune_dirs
    assert carry_out(final).complete


def test_a_directory_swapped_for_a_symlink_after_planning_is_not_followed(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a" * 9})
    deletion = plan(tree, movie, files)
    # The attacker moves the very planned file outside (same inode, size) and
    # puts a symlink where its directory was.
    loot = tree.outside / "sub"
    loot.mkdir()
    os.rename(movie / "sub/a.bin", loot / "a.bin")
    (movie / "sub").rmdir()
    (movie / "sub").symlink_to(loot)

    outcome = carry_out(deletion)

    assert () == outcome.deleted
    assert [str(movie / "sub/a.bin")] == [n.path for n in outcome.skipped]
    assert "not followed" in outcome.skipped[0].reason
    assert not outcome.complete
    assert b"a" * 9 == (loot / "a.bin").read_bytes()
    assert (movie / "sub").is_symlink()
    assert movie.is_dir()  # not empty: it holds the link


def test_a_root_swapped_for_a_symlink_after_planning_is_not_followed(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})
    deletion = plan(tree, movie, files)
    moved = tree.outside / "Movie"
    os.rename(movie, moved)
    movie.symlink_to(moved)

    outcome = carry_out(deletion)

    assert () == outcome.deleted
    assert 1 == len(outcome.skipped)
    assert (moved / "a.bin").exists()
    assert movie.is_symlink()


def test_a_file_replaced_after_planning_is_left_alone(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"aaa", "b.bin": b"b"})
    deletion = plan(tree, movie, files)
    (movie / "new").write_bytes(b"new")  # same size; another inode, as both exist at once
    os.replace(movie / "new", movie / "a.bin")
    (movie / "b.bin").unlink()

    outcome = carry_out(deletion)

    assert [Note(str(movie / "a.bin"), outcome.skipped[0].reason)] == list(outcome.skipped)
    assert "changed" in outcome.skipped[0].reason
    assert (str(movie / "b.bin"),) == outcome.already_gone
    assert b"new" == (movie / "a.bin").read_bytes()


def test_a_file_rewritten_in_a_reused_inode_is_left_alone(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"aaa"})
    deletion = plan(tree, movie, files)
    planned = os.lstat(movie / "a.bin")
    (movie / "a.bin").write_bytes(b"new")  # same inode and size; only the content differs
    # The clock may not have ticked yet: make the rewrite's mtime differ, as it would.
    os.utime(movie / "a.bin", ns=(planned.st_atime_ns, planned.st_mtime_ns + 1_000_000))

    outcome = carry_out(deletion)

    assert 1 == len(outcome.skipped)
    assert b"new" == (movie / "a.bin").read_bytes()


def test_a_directory_that_gains_a_file_after_planning_is_kept(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a"})
    deletion = plan(tree, movie, files)
    (movie / "sub/new.txt").write_bytes(b"new")

    outcome = carry_out(deletion)

    assert () == outcome.removed_dirs
    assert b"new" == (movie / "sub/new.txt").read_bytes()


def test_reasons_cover_every_file(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a", "b.bin": b"b"})
    (movie / "b.bin").unlink()

    deletion = plan(tree, movie, files)

    assert [Fate.UNLINK, Fate.GONE] == [f.fate for f in deletion.files]
    assert [str(movie / "a.bin"), str(movie / "b.bin")] == [p for p, _ in deletion.reasons]
    assert all(reason for _, reason in deletion.reasons)


# --- anything rtorrent could list ---------------------------------------------------------

_COMPONENTS = st.sampled_from(["a", "b", "..", ".", "", "?", "canary.bin", "outside"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rel=st.lists(_COMPONENTS, min_size=1, max_size=6).map("/".join))
def test_whatever_is_listed_nothing_outside_the_torrent_is_planned(tree: Tree, rel: str) -> None:
    movie = tree.dl / "Movie"
    if not movie.exists():
        make(movie, {"a/b": b"x", "canary.bin": CANARY, "b/a": b"y"})
    try:
        deletion = plan(tree, movie, [FileEntry(rel, len(CANARY))])
    except UnsafeDeletion:
        return
    for path in (*deletion.to_unlink, *deletion.already_gone, *deletion.prune_dirs):
        assert path == str(movie) or path.startswith(f"{movie}/")


# --- off the event loop ---------------------------------------------------------------

MANY = 10_000  # files: about half a second of unlinks
BEAT = 0.005  # seconds between the heartbeat's wake-ups


@pytest.mark.anyio
async def test_a_big_deletion_leaves_the_event_loop_free(tree: Tree) -> None:
    root = tree.dl / "big"
    files = [FileEntry(f"cd{i // 100}/{i}.bin", 1) for i in range(MANY)]
    for i in range(0, MANY, 100):
        (root / f"cd{i // 100}").mkdir(parents=True)
    for entry in files:  # os.open: Path.write_bytes would take seconds here
        fd = os.open(root / entry.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x")
        os.close(fd)
    deletion = plan(tree, root, files)
    beats: list[float] = []
    finished = anyio.Event()

    async def heartbeat(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        # What the watchdog pinger does: wake up again and again while the loop is free.
        beats.append(time.monotonic())
        task_status.started()
        while not finished.is_set():
            with anyio.move_on_after(BEAT):
                await finished.wait()
            beats.append(time.monotonic())

    async with anyio.create_task_group() as tasks:
        await tasks.start(heartbeat)
        began = time.monotonic()
        outcome = await executor.delete_files(deletion)
        took = time.monotonic() - began
        finished.set()

    assert (MANY, True) == (len(outcome.deleted), outcome.complete)
    assert not root.exists()
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    # On the loop, the deletion would be one gap as long as itself. Off it, what is
    # left are the garbage collector's pauses, which stop every thread.
    assert max(gaps) < took / 2, (max(gaps), took)
