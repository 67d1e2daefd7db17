"""`facts.freed_by_unlinking`: the one freed-bytes accounting, which deletion
planning uses for one torrent and `facts.Freeing` for several deleted together."""

from __future__ import annotations

import pytest

from rtorrentd.engine.facts import FileFact, Freeing, freed_by_unlinking, listers


def fact(path: str, size: int = 10, ino: int = 1, links: int = 1, regular: bool = True) -> FileFact:
    return FileFact(path, size, (7, ino), links, regular=regular)


@pytest.mark.parametrize(
    ("unlinking", "before", "expected"),
    [
        ([fact("/a")], {}, {"/a": 10}),
        # Both links of one inode go: its size once, on the last of them.
        ([fact("/a", links=2), fact("/b", links=2)], {}, {"/b": 10}),
        # One of two links: the data stays under the other name.
        ([fact("/a", links=2)], {}, {}),
        # A symlink holds no data, whatever its own size.
        ([fact("/l", regular=False)], {}, {}),
        ([FileFact("/gone", 0, None, 0, regular=False)], {}, {}),
        # The other link went before: this one frees the data...
        ([fact("/a", links=2)], {(7, 1): {"/b"}}, {"/a": 10}),
        # ...unless both had gone before: it was freed then.
        ([fact("/a", links=2)], {(7, 1): {"/a", "/b"}}, {}),
        # Two inodes, each counted on its own.
        ([fact("/a", ino=1), fact("/b", 5, ino=2)], {}, {"/a": 10, "/b": 5}),
        # A filesystem that reports no link count: the entry is still one link.
        ([fact("/a", links=0)], {}, {"/a": 10}),
    ],
)
def test_freed_by_unlinking(
    unlinking: list[FileFact], before: dict[tuple[int, int], set[str]], expected: dict[str, int]
) -> None:
    assert expected == freed_by_unlinking(unlinking, before)


def test_freeing_counts_an_inode_once_across_torrents() -> None:
    # Two torrents each list one link of the same inode: the second frees it.
    files = {"A": (fact("/a", links=2),), "B": (fact("/b", links=2),)}
    freeing = Freeing(files, listers(files))
    assert (0, 0) == (freeing.gain("A"), freeing.gain("B"))
    assert 0 == freeing.add("A")
    assert 10 == freeing.gain("B")
    assert 10 == freeing.add("B")
    assert 0 == freeing.gain("B")
