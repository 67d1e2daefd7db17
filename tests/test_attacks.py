"""Attacks on the destructive path: each tries to make rtorrentd delete what it must
not, or erase a torrent while its files are silently left behind.

Unit tests drive `planning` and `carry_out` (and `neighbours.Sharing.shared_paths`) on a tree
under tmp_path; integration tests run the whole poll against a real rtorrent. Every test that can
destroy something checks canary files, presence and content, afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from flow import (
    LABEL_DOOMED,
    Rule,
    client_for,
    config_for,
    contents,
    one_result,
    poll,
    state,
)
from harness import RtorrentProcess, TorrentFactory, TorrentFile, random_bytes
from structlog.testing import capture_logs
from trees import CANARY, Canaries, Tree, make, plan, refused

from rtorrentd.deletion import neighbours
from rtorrentd.deletion.carry_out import carry_out
from rtorrentd.deletion.planning import plan_deletion
from rtorrentd.deletion.results import Result
from rtorrentd.deletion.sharing import LinkScanner
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.torrent import FileEntry, Torrent

REPO = Path(__file__).resolve().parent.parent


# --- unit helpers --------------------------------------------------------------------


# --- same file, other spellings ------------------------------------------------------


def test_names_differing_in_case_are_different_files_on_a_case_sensitive_fs(
    tree: Tree,
) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"Track.bin": b"ours"})
    tree.canaries.add(movie / "track.bin", b"them")  # same size, other case
    tree.canaries.add(tree.dl / "movie/Track.bin", b"them")  # lower-case sibling directory

    outcome = carry_out(plan(tree, movie, files))

    assert (str(movie / "Track.bin"),) == outcome.deleted
    assert () == outcome.removed_dirs  # Movie still holds track.bin


def test_nfc_and_nfd_names_are_different_files(tree: Tree) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café.bin"), unicodedata.normalize("NFD", "café.bin")
    assert nfc != nfd
    movie = tree.dl / "Movie"
    files = make(movie, {nfd: b"nfd!"})
    tree.canaries.add(movie / nfc, b"nfc!")

    outcome = carry_out(plan(tree, movie, files))

    assert (str(movie / nfd),) == outcome.deleted
    # Listed only in the other normal form: not on disk, so gone; the lookalike is kept.
    again = plan(tree, movie, [FileEntry(nfd, 4)])
    assert (str(movie / nfd),) == again.already_gone
    assert () == carry_out(again).deleted


def test_a_file_shared_under_the_other_normal_form_is_not_taken_for_ours(tree: Tree) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "é.bin"), unicodedata.normalize("NFD", "é.bin")
    movie = tree.dl / "Movie"
    files = make(movie, {nfc: b"x"})
    tree.canaries.add(movie / nfd, b"y")

    deletion = plan(tree, movie, files, shared=[str(movie / nfd)])

    assert (str(movie / nfc),) == deletion.to_unlink  # the other torrent's file is not ours
    carry_out(deletion)


@pytest.mark.parametrize("rel", ["sub/.", "sub/./a.bin", "./sub/a.bin", "sub/a.bin/"])
def test_a_dot_component_is_refused(tree: Tree, rel: str) -> None:
    make(tree.dl / "Movie", {"sub/a.bin": b"a"})
    refused(tree, tree.dl / "Movie", [FileEntry(rel, 1)])
    assert (tree.dl / "Movie/sub/a.bin").exists()


# --- roots at the edges --------------------------------------------------------------


def test_a_multi_file_torrent_at_an_allowed_root_touches_only_its_own_files(
    tree: Tree,
) -> None:
    # d.directory == the allowed root (d.directory_base): only listed files may go.
    files = make(tree.dl, {"x/a.bin": b"a", "b.bin": b"b"})
    tree.canaries.add(tree.dl / "x/other.bin", b"a")
    tree.canaries.add(tree.dl / "Other/b.bin", b"b")
    tree.canaries.add(tree.dl / "c.bin", b"c")
    (tree.dl / "empty-of-another-torrent").mkdir()

    outcome = carry_out(plan(tree, tree.dl, files))

    assert {str(tree.dl / "x/a.bin"), str(tree.dl / "b.bin")} == set(outcome.deleted)
    assert tree.dl.is_dir()
    assert (tree.dl / "empty-of-another-torrent").is_dir()  # not ours: never pruned
    assert str(tree.dl) not in outcome.removed_dirs


@pytest.mark.parametrize("multi_file", [True, False])
def test_a_torrent_whose_directory_is_slash_or_above_the_root_is_refused(
    tree: Tree, multi_file: bool
) -> None:
    tree.canaries.add(tree.dl / "a.bin", b"a")
    rel = str((tree.dl / "a.bin").relative_to("/"))
    assert "outside every allowed root" in refused(
        tree, "/", [FileEntry(rel, 1)], multi_file=multi_file
    )
    above = [FileEntry("data/dl/a.bin", 1)]
    assert "outside every allowed root" in refused(tree, tree.base, above, multi_file=multi_file)
    assert "outside every allowed root" in refused(
        tree, tree.base / "data", [FileEntry("dl/a.bin", 1)], multi_file=multi_file
    )


@pytest.mark.parametrize("spelling", ["{dl}/Movie/", "/{dl}//Movie", "/{dl}/./Movie/."])
def test_a_directory_with_extra_slashes_means_the_same_directory(tree: Tree, spelling: str) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a"})
    tree.canaries.add(tree.dl / "a.bin", b"a")

    outcome = carry_out(plan(tree, spelling.format(dl=tree.dl), files))

    assert (str(movie / "a.bin"),) == outcome.deleted
    assert (str(movie),) == outcome.removed_dirs


def test_a_trailing_slash_does_not_follow_a_symlinked_torrent_directory(tree: Tree) -> None:
    # lstat("Movie/") follows the link; the root must be checked without the slash.
    real = tree.dl / "elsewhere"
    tree.canaries.add(real / "a.bin", b"a")
    (tree.dl / "Movie").symlink_to(real)

    message = refused(tree, f"{tree.dl}/Movie/", [FileEntry("a.bin", 1)])

    assert "own directory is a symlink" in message


def test_an_allowed_root_that_links_elsewhere_contains_only_its_target(tree: Tree) -> None:
    store = tree.base / "store"
    link = tree.base / "dl-link"
    link.symlink_to(store)
    files = make(store / "Movie", {"a.bin": b"a"})
    tree.canaries.add(tree.base / "store-sibling/Movie/a.bin", b"a")

    outcome = carry_out(plan(tree, link / "Movie", files, roots=[str(link)]))

    assert (str(store / "Movie/a.bin"),) == outcome.deleted
    assert link.is_symlink() and store.is_dir()
    refused(tree, tree.base / "store-sibling/Movie", files, roots=[str(link)])


def test_a_nested_allowed_root_is_never_pruned(tree: Tree) -> None:
    nested = tree.dl / "Movie/sub"
    files = make(tree.dl / "Movie", {"sub/a.bin": b"a"})

    deletion = plan(tree, tree.dl / "Movie", files, roots=[str(tree.dl), str(nested)])
    outcome = carry_out(deletion)

    assert str(nested) not in deletion.prune_dirs
    assert nested.is_dir() and (tree.dl / "Movie").is_dir()
    assert (str(tree.dl / "Movie/sub/a.bin"),) == outcome.deleted
    # Its own torrent, written straight into it, keeps it too.
    files = make(nested, {"b.bin": b"b"})
    carry_out(plan(tree, nested, files, roots=[str(tree.dl), str(nested)]))
    assert nested.is_dir()


# --- hard links, shared directories, odd names ----------------------------------------


def test_a_hard_link_in_another_torrent_keeps_its_data(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": CANARY})
    os.link(movie / "a.bin", tree.dl / "Other.bin")
    tree.canaries.keep({tree.dl / "Other.bin": CANARY})

    deletion = plan(tree, movie, files, shared=[str(tree.dl / "Other.bin")])
    outcome = carry_out(deletion)

    assert (str(movie / "a.bin"),) == outcome.deleted
    assert 0 == outcome.freed_bytes == deletion.freed_bytes
    assert 1 == os.stat(tree.dl / "Other.bin").st_nlink


def test_a_hard_link_beside_ours_in_the_same_directory_is_another_entry(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": CANARY})
    os.link(movie / "a.bin", movie / "b.bin")  # another torrent's file, same directory
    tree.canaries.keep({movie / "b.bin": CANARY})

    deletion = plan(tree, movie, files, shared=[str(movie / "b.bin")])

    assert (str(movie / "a.bin"),) == deletion.to_unlink
    carry_out(deletion)


def test_same_named_torrents_sharing_a_directory_keep_each_others_files(tree: Tree) -> None:
    pack = tree.dl / "Pack"
    ours = make(pack, {"a.bin": b"a", "common.bin": CANARY})
    theirs = [pack / "common.bin", pack / "b.bin", pack / "sub/c.bin"]
    tree.canaries.keep({pack / "common.bin": CANARY})
    tree.canaries.add(pack / "b.bin", b"a")
    tree.canaries.add(pack / "sub/c.bin", b"c")

    outcome = carry_out(plan(tree, pack, ours, shared=[str(p) for p in theirs]))

    assert (str(pack / "a.bin"),) == outcome.deleted
    assert () == outcome.removed_dirs


@pytest.mark.parametrize("name", ["-rf", "--no-preserve-root", "a\nb.bin", " ", "*", "\\", "~"])
def test_names_with_dashes_newlines_and_wildcards_delete_exactly_themselves(
    tree: Tree, name: str
) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {name: b"ours"})
    for other in ("a", "b.bin", "-", "rf", "a\\nb.bin", "\n", "a b.bin"):
        if other != name:
            tree.canaries.add(movie / other, b"them")

    outcome = carry_out(plan(tree, movie, files))

    assert (str(movie / name),) == outcome.deleted
    assert movie.is_dir()


def _deep_tree(root: Path, depth: int, name: bytes) -> list[bytes]:
    """Directories `name` nested `depth` deep under root, made relative to each other
    (their absolute path is longer than PATH_MAX); returns the components."""
    parts = [name] * depth
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            os.mkdir(part, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open("f.bin", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(out, CANARY)
        os.close(out)
    finally:
        os.close(fd)
    return parts


def _read_deep(root: Path, parts: Sequence[bytes]) -> bytes:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open("f.bin", os.O_RDONLY, dir_fd=fd)
        try:
            return os.read(out, 1000)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def test_a_path_longer_than_path_max_is_refused_and_kept(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    movie.mkdir()
    parts = _deep_tree(movie, 40, b"d" * 200)
    rel = "/".join(os.fsdecode(p) for p in parts) + "/f.bin"
    assert len(str(movie / rel)) > 4096

    message = refused(tree, movie, [FileEntry(rel, len(CANARY))])

    assert "cannot be examined" in message
    assert CANARY == _read_deep(movie, parts)


def test_a_component_longer_than_name_max_is_refused(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    make(movie, {"a.bin": b"a"})

    message = refused(tree, movie, [FileEntry("a.bin", 1), FileEntry("x" * 300, 1)])

    assert "cannot be examined" in message
    assert (movie / "a.bin").exists()


def test_a_torrent_with_no_files_is_refused(tree: Tree) -> None:
    (tree.dl / "Movie").mkdir()
    assert "listed no files" in refused(tree, tree.dl / "Movie", [])
    assert (tree.dl / "Movie").is_dir()


# --- the world changing between plan and carry_out ---------------------------------------


def test_a_file_replaced_by_a_directory_after_planning_is_left_alone(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"a", "b.bin": b"b"})
    deletion = plan(tree, movie, files)
    (movie / "a.bin").unlink()
    tree.canaries.add(movie / "a.bin/inside.bin", b"a")

    outcome = carry_out(deletion)

    assert [str(movie / "a.bin")] == [n.path for n in outcome.skipped]
    assert not outcome.complete  # the executor will not erase the torrent
    assert (str(movie / "b.bin"),) == outcome.deleted
    assert movie.is_dir()


def test_a_pruned_directory_replaced_by_a_file_is_left_alone(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"sub/a.bin": b"a"})
    deletion = plan(tree, movie, files)
    (movie / "sub/a.bin").unlink()
    (movie / "sub").rmdir()
    tree.canaries.add(movie / "sub", b"now a file")

    outcome = carry_out(deletion)

    # Not a directory any more: not walked into, and the torrent is not erased.
    assert [str(movie / "sub/a.bin")] == [n.path for n in outcome.skipped]
    assert "not a directory" in outcome.skipped[0].reason
    assert [str(movie / "sub"), str(movie)] == [n.path for n in outcome.skipped_dirs]


# --- another torrent names our file in another way ------------------------------------------


def test_a_shared_path_with_dotdot_after_a_symlink_is_resolved_like_the_kernel(
    tree: Tree,
) -> None:
    # rtorrent keeps d.directory as given: "/x/link/../tv" is /real/tv on disk, while
    # normpath says /x/tv. The other torrent uses our very file.
    real = tree.dl / "real"
    files = make(real / "tv", {"show.mkv": CANARY})
    (real / "sub").mkdir()
    (tree.dl / "link").symlink_to(real / "sub")
    tree.canaries.keep({real / "tv/show.mkv": CANARY})

    deletion = plan(
        tree, real / "tv", files, multi_file=False, shared=[f"{tree.dl}/link/../tv/show.mkv"]
    )

    assert (str(real / "tv/show.mkv"),) == deletion.kept_shared
    assert () == carry_out(deletion).deleted


def test_a_dotdot_shared_path_naming_another_file_does_not_keep_ours(tree: Tree) -> None:
    # normpath would make this /dl/tv/show.mkv (ours); on disk it is real/tv/show.mkv.
    files = make(tree.dl / "tv", {"show.mkv": b"ours"})
    (tree.dl / "real/sub").mkdir(parents=True)
    (tree.dl / "link").symlink_to(tree.dl / "real/sub")
    tree.canaries.add(tree.dl / "real/tv/show.mkv", b"them")

    deletion = plan(
        tree, tree.dl / "tv", files, multi_file=False, shared=[f"{tree.dl}/link/../tv/show.mkv"]
    )

    assert (str(tree.dl / "tv/show.mkv"),) == deletion.to_unlink
    carry_out(deletion)


@pytest.mark.parametrize("mangled", ["file", "directory"])
def test_a_cross_seed_link_with_a_mangled_name_keeps_our_file(tree: Tree, mangled: str) -> None:
    # cross-seed links the other torrent's (latin-1) names to our data; rtorrent
    # shows that torrent's paths with '?', which do not exist as such on disk.
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": CANARY})
    tree.canaries.keep({movie / "a.bin": CANARY})
    links = os.fsencode(tree.dl / "cross")
    if mangled == "file":
        os.makedirs(links)
        os.symlink(os.fsencode(movie / "a.bin"), os.path.join(links, b"caf\xe9.bin"))
        shown = f"{tree.dl}/cross/caf?.bin"
    else:
        os.makedirs(os.path.join(links, b"Cr\xe8me"))
        os.symlink(os.fsencode(movie / "a.bin"), os.path.join(links, b"Cr\xe8me/a.bin"))
        shown = f"{tree.dl}/cross/Cr?me/a.bin"

    deletion = plan(tree, movie, files, shared=[shown])

    assert (str(movie / "a.bin"),) == deletion.kept_shared
    carry_out(deletion)


def test_a_mangled_shared_path_that_names_another_file_does_not_keep_ours(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": b"ours"})
    other = os.path.join(os.fsencode(tree.dl), b"caf\xe9.bin")
    tree.canaries.add(other, b"them")

    deletion = plan(tree, movie, files, shared=[f"{tree.dl}/caf?.bin"])

    assert (str(movie / "a.bin"),) == deletion.to_unlink
    carry_out(deletion)


# --- mounts: run in a private mount namespace -------------------------------------------

_IN_NAMESPACE = """
import json, subprocess, sys
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.deletion.carry_out import carry_out
from rtorrentd.deletion.planning import plan_deletion
from rtorrentd.deletion.sharing import LinkScanner
from rtorrentd.torrent import FileEntry
args = json.loads(sys.argv[1])
for source, target in args["binds"]:
    subprocess.run(["mount", "--bind", source, target], check=True)
try:
    deletion = plan_deletion(
        args["root"], [FileEntry(p, s) for p, s in args["files"]], args["roots"],
        frozenset(args["shared"]), multi_file=True,
    )
except UnsafeDeletion as exc:
    print(json.dumps({"refused": str(exc)}))
else:
    outcome = carry_out(deletion)
    print(json.dumps({"deleted": outcome.deleted, "kept": deletion.kept_shared}))
"""


def in_namespace(**args: Any) -> dict[str, Any]:
    """Bind-mount `binds`, then plan and carry out, in a throwaway mount namespace."""
    command = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", _IN_NAMESPACE]
    done = subprocess.run(
        [*command, json.dumps(args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert 0 == done.returncode, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.usefixtures("mount_namespace")
def test_a_bind_mount_inside_the_torrent_is_refused(tree: Tree) -> None:
    # Same filesystem, so st_dev does not tell; the library is someone else's data.
    library = tree.base / "library/Album"
    tree.canaries.add(library / "a.bin", b"a" * 7)
    movie = tree.dl / "Movie"
    (movie / "cd1").mkdir(parents=True)

    result = in_namespace(
        binds=[(str(library), str(movie / "cd1"))],
        root=str(movie),
        files=[("cd1/a.bin", 7)],
        roots=tree.roots,
        shared=[],
    )

    assert "mount point" in result.get("refused", ""), result


@pytest.mark.usefixtures("mount_namespace")
def test_a_torrent_directory_that_is_a_bind_mount_is_refused(tree: Tree) -> None:
    library = tree.base / "library/Album"
    tree.canaries.add(library / "a.bin", b"a" * 7)
    movie = tree.dl / "Movie"
    movie.mkdir()

    result = in_namespace(
        binds=[(str(library), str(movie))],
        root=str(movie),
        files=[("a.bin", 7)],
        roots=tree.roots,
        shared=[],
    )

    assert "mount point" in result.get("refused", ""), result


@pytest.mark.usefixtures("mount_namespace")
def test_a_file_another_torrent_reaches_through_a_bind_mount_is_kept(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": CANARY})
    tree.canaries.keep({movie / "a.bin": CANARY})
    mirror = tree.base / "mirror"  # e.g. a container's view of the same download dir
    mirror.mkdir()

    result = in_namespace(
        binds=[(str(tree.dl), str(mirror))],
        root=str(movie),
        files=[(f.path, f.size) for f in files],
        roots=tree.roots,
        shared=[str(mirror / "Movie/a.bin")],
    )

    assert {"deleted": [], "kept": [str(movie / "a.bin")]} == result


@pytest.mark.usefixtures("mount_namespace")
def test_an_allowed_root_that_is_a_bind_mount_still_works(tree: Tree) -> None:
    store = tree.base / "store"
    files = make(store / "Movie", {"a.bin": b"a"})
    tree.canaries.add(store / "keep.bin")

    result = in_namespace(
        binds=[(str(store), str(tree.dl))],
        root=str(tree.dl / "Movie"),
        files=[(f.path, f.size) for f in files],
        roots=tree.roots,
        shared=[],
    )

    assert [str(tree.dl / "Movie/a.bin")] == result.get("deleted"), result
    assert not (store / "Movie").exists()


# --- neighbours.Sharing.shared_paths with odd directories (unit, a stub client) ----------


class StubClient:
    """snapshot/all_files from fixed data: what other loaded torrents claim."""

    def __init__(self, torrents: Mapping[str, tuple[str, Sequence[FileEntry]]]) -> None:
        self.torrents = torrents

    async def snapshot(self, names: object = (), *, identity: bool = True) -> tuple[Torrent, ...]:
        return tuple(Torrent(hash=h, name=h, directory=d) for h, (d, _) in self.torrents.items())

    async def all_files(self, hashes: Sequence[str]) -> dict[str, tuple[FileEntry, ...]]:
        return {h: tuple(self.torrents[h][1]) for h in hashes}

    async def call(self, method: str) -> object:
        assert "system.time" == method
        return 1_700_000_000

    async def loaded_since(
        self, since: int, names: object = (), *, identity: bool = True
    ) -> tuple[Torrent, ...]:
        return ()


async def shared_paths(stub: StubClient, ours: Torrent, files: Sequence[FileEntry]) -> set[str]:
    client: Any = stub
    sharing = await neighbours.Sharing.read([neighbours.Source("", client)], LinkScanner())
    return await sharing.shared_paths(ours, files)


@pytest.mark.anyio
@pytest.mark.parametrize("directory", ["", ".", "downloads", "./dl"])
async def test_another_torrent_with_a_relative_directory_blocks_deletion_safely(
    tree: Tree, directory: str
) -> None:
    movie = tree.dl / "Movie"
    files = make(movie, {"a.bin": CANARY})
    tree.canaries.keep({movie / "a.bin": CANARY})
    ours = Torrent(hash="A" * 40, name="Movie", directory=str(movie))
    stub = StubClient({"A" * 40: (str(movie), files), "B" * 40: (directory, files)})

    with pytest.raises(UnsafeDeletion) as info:
        await shared_paths(stub, ours, files)

    assert "not absolute, so sharing cannot be checked" in str(info.value)
    assert f"{'B' * 40} ('{'B' * 40}') has d.directory {directory!r}" in str(info.value)
    # And planning refuses such paths on its own, should they reach it.
    with pytest.raises(UnsafeDeletion, match="sharing cannot be checked"):
        plan_deletion(str(movie), files, tree.roots, {"a.bin"}, multi_file=True)


@pytest.mark.anyio
async def test_shared_paths_keep_dotdot_for_the_kernel_to_resolve(tree: Tree) -> None:
    real = tree.dl / "real"
    files = make(real / "tv", {"show.mkv": CANARY})
    (real / "sub").mkdir()
    (tree.dl / "link").symlink_to(real / "sub")
    tree.canaries.keep({real / "tv/show.mkv": CANARY})
    ours = Torrent(hash="A" * 40, name="show.mkv", directory=str(real / "tv"))
    stub = StubClient({"B" * 40: (f"{tree.dl}/link/../tv", files)})

    shared = await shared_paths(stub, ours, files)
    deletion = plan_deletion(str(real / "tv"), files, tree.roots, shared, multi_file=False)

    assert (str(real / "tv/show.mkv"),) == deletion.kept_shared
    carry_out(deletion)


# --- integration: the whole poll against a real rtorrent ----------------------------------


def everything(root: Path) -> dict[str, tuple[str, bytes]]:
    found: dict[str, tuple[str, bytes]] = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            if os.path.islink(path):
                found[path] = ("link", os.fsencode(os.readlink(path)))
            elif os.path.isfile(path):
                found[path] = ("file", Path(path).read_bytes())
            else:
                found[path] = ("dir", b"")
    return found


def album(factory: TorrentFactory, dest: Path, name: str = "album", seed: int = 0) -> TorrentFile:
    """Two files: smaller than test_executor's album, enough for these attacks."""
    return factory(
        name,
        {"a.bin": random_bytes(30_000, seed + 1), "cd2/b.bin": random_bytes(20_000, seed + 2)},
        dest_dir=dest,
    )


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_hard_link_into_another_loaded_torrent_keeps_its_data(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    os.link(doomed.payload_path / "a.bin", dl / "single.bin")
    single = torrent_factory(
        "single.bin", random_bytes(30_000, 1), dest_dir=dl, write_payload=False
    )
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    single_hash = rtorrent.load(single, complete=True)
    canaries = Canaries()
    canaries.keep(contents(single))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    assert {single_hash: (1, 1)} == state(rtorrent)
    assert not doomed.payload_path.exists()
    canaries.check()
    assert 20_000 == one_result(logs, doomed_hash)["freed_bytes"]  # a.bin lives on


@pytest.mark.anyio
@pytest.mark.integration
async def test_same_named_multi_file_torrents_in_one_directory(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    common = random_bytes(20_000, 5)
    first = torrent_factory(
        "pack", {"a.bin": random_bytes(10_000, 6), "common.bin": common}, dest_dir=dl
    )
    second = torrent_factory(
        "pack", {"common.bin": common, "sub/b.bin": random_bytes(10_000, 7)}, dest_dir=dl
    )
    first_hash = rtorrent.load(first, commands=(LABEL_DOOMED,), complete=True)
    second_hash = rtorrent.load(second, complete=True)
    canaries = Canaries()
    canaries.keep(contents(second))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    assert {second_hash: (1, 1)} == state(rtorrent)
    assert not (dl / "pack/a.bin").exists()
    canaries.check()
    event = one_result(logs, first_hash)
    assert ("action.done", 10_000) == (event["event"], event["freed_bytes"])
    assert [str(dl / "pack/common.bin")] == event["kept_shared"]


@pytest.mark.anyio
@pytest.mark.integration
async def test_another_torrent_with_an_empty_directory_blocks_deletion_and_says_why(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    other = torrent_factory("other.bin", random_bytes(5_000, 9), dest_dir=dl)
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    other_hash = rtorrent.load(other, complete=True)
    rtorrent.call("d.stop", other_hash)
    rtorrent.call("d.close", other_hash)
    rtorrent.call("d.directory.set", other_hash, "")
    assert "." == rtorrent.call("d.directory", other_hash)  # relative: "./other.bin"
    canaries = Canaries()
    canaries.keep({**contents(doomed), **contents(other)})

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    event = one_result(logs, doomed_hash)
    assert ("action.refused", "warning") == (event["event"], event["log_level"])
    assert "sharing cannot be checked" in event["reason"]
    assert other_hash in event["reason"]  # which torrent blocks it
    assert {doomed_hash: (1, 1), other_hash: (0, 0)} == state(rtorrent)
    canaries.check()


@pytest.mark.anyio
@pytest.mark.integration
async def test_rtorrent_keeps_dotdot_in_d_directory_and_shared_data_is_kept(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    (dl / "real/sub").mkdir(parents=True)
    (dl / "link").symlink_to(dl / "real/sub")
    payload = random_bytes(30_000, 3)
    doomed = torrent_factory("show.mkv", payload, dest_dir=dl / "real/tv")
    # Same bytes, another info-hash (private flag), loaded through link/..
    cross = torrent_factory(
        "show.mkv", payload, dest_dir=dl / "real/tv", private=True, write_payload=False
    )
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    cross_hash = rtorrent.load(cross, directory=Path(f"{dl}/link/../tv"), complete=True)
    assert f"{dl}/link/../tv" == rtorrent.call("d.directory", cross_hash)
    canaries = Canaries()
    canaries.keep(contents(doomed))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    assert {cross_hash: (1, 1)} == state(rtorrent)
    canaries.check()
    assert [str(dl / "real/tv/show.mkv")] == one_result(logs, doomed_hash)["kept_shared"]


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_rule_matching_every_torrent_is_held_by_the_valve(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    canaries = Canaries()
    for i in range(3):
        torrent = album(torrent_factory, dl, name=f"t{i}", seed=10 * i)
        rtorrent.load(torrent, complete=True)
        canaries.keep(contents(torrent))
    before = state(rtorrent)
    rules: list[Rule] = [("everything", "size >= 0", "delete")]

    with capture_logs() as logs:
        result = await poll(client_for(rtorrent), config_for(rtorrent, [dl], rules, fraction=0.5))

    assert ((), 3) == (result.results, len(result.plan.held))
    assert any("max_delete_fraction" in e.get("note", "") for e in logs)
    assert before == state(rtorrent)
    canaries.check()


@pytest.mark.anyio
@pytest.mark.integration
async def test_dry_run_of_a_refused_torrent_reports_the_refusal_and_changes_nothing(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    elsewhere = album(torrent_factory, tmp_path / "elsewhere")
    inside = album(torrent_factory, rtorrent.download_dir, name="inside", seed=10)
    refused_hash = rtorrent.load(elsewhere, commands=(LABEL_DOOMED,), complete=True)
    ok_hash = rtorrent.load(inside, commands=(LABEL_DOOMED,), complete=True)
    before, loaded = everything(tmp_path), state(rtorrent)

    with capture_logs() as logs:
        result = await poll(
            client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir]), dry_run=True
        )

    assert before == everything(tmp_path)
    assert loaded == state(rtorrent)
    assert {refused_hash: Result.REFUSED, ok_hash: Result.DRY_RUN} == {
        r.step.hash: r.result for r in result.results
    }
    assert "outside every allowed root" in one_result(logs, refused_hash)["reason"]
    assert not [e for e in logs if e["event"] == "action.deleting"]


class SwappingClient(RtorrentClient):
    """rtorrent lists other files on the re-read after the close than before it."""

    def __init__(self, rt: RtorrentProcess, second: Sequence[FileEntry]) -> None:
        super().__init__(open_transport(rt.scgi_url, timeout=10.0))
        self.second = tuple(second)
        self.calls = 0

    async def files(self, info_hash: str) -> tuple[FileEntry, ...]:
        self.calls += 1
        real = await super().files(info_hash)
        return real if self.calls == 1 else self.second


@pytest.mark.anyio
@pytest.mark.integration
@pytest.mark.parametrize("swap", ["escape", "fewer"])
async def test_a_file_list_that_changes_on_the_re_read(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path, swap: str
) -> None:
    dl = rtorrent.download_dir
    torrent = album(torrent_factory, dl)
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    canaries = Canaries()
    canaries.add(tmp_path / "outside/canary.bin")
    if swap == "escape":
        second = [FileEntry("a.bin", 30_000), FileEntry("../../outside/canary.bin", len(CANARY))]
    else:
        second = [FileEntry("a.bin", 30_000)]  # cd2/b.bin no longer listed
    canaries.keep(contents(torrent))
    client = SwappingClient(rtorrent, second)

    with capture_logs() as logs:
        await poll(client, config_for(rtorrent, [dl]))

    # Either list no longer matches the torrent's metainfo (the exact names come
    # from there): nothing is deleted, and the log says why.
    assert 2 == client.calls
    event = one_result(logs, info_hash)
    assert "action.refused" == event["event"]
    why = "its metainfo 20000 (file 1)" if swap == "escape" else "lists 1 files, its metainfo 2"
    assert why in event["reason"]
    assert {info_hash: (0, 0)} == state(rtorrent)  # stopped, closed, still there
    canaries.check()


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_torrent_whose_data_vanished_is_erased_and_the_log_says_so(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # An unmounted disk looks like this too: the log must not stay silent about it.
    dl = rtorrent.download_dir
    torrent = album(torrent_factory, dl)
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    rtorrent.call("d.stop", info_hash)
    rtorrent.call("d.close", info_hash)
    moved = dl.parent / "moved-away"
    shutil.move(str(torrent.payload_path), moved)
    canaries = Canaries()
    canaries.keep({moved / "a.bin": random_bytes(30_000, 1)})

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    event = one_result(logs, info_hash)
    assert ("action.done", 0) == (event["event"], event["freed_bytes"])
    assert "2 file(s) already gone" in event["reason"]
    canaries.check()
