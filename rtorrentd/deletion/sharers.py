"""Which of a torrent's files another loaded torrent lists, however it names them.

Such files are kept (`Fate.SHARED`): unlinking them would take data from the
other torrent.
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Callable, Sequence

from rtorrentd.deletion.mangling import disk_spellings
from rtorrentd.deletion.model import Probe
from rtorrentd.deletion.spelling import Spellings
from rtorrentd.protocol.names import is_exact


def find_sharers(
    probes: Sequence[Probe], others: frozenset[str], spellings: Spellings | None = None
) -> dict[str, str]:
    """Map our resolved paths to another torrent's path for the same directory entry.

    Besides the same text (as listed, or resolved), another torrent may reach the
    file through a symlinked directory or a symlink file (cross-seed's link mode),
    a bind mount, or a name rtorrent mangled ('?'): its path then stats to our
    inode, each taken on the spelling the directories store (`spelling`: on a
    case-insensitive filesystem `movie/A.BIN` is our `Movie/a.bin`). A hard link
    has our inode but is another entry: unlinking ours leaves it intact, so it
    does not count. `spellings`: the planning round's directory listings.
    """
    found: dict[str, str] = {}
    spellings = spellings or Spellings()
    ours: dict[tuple[int, int], list[str]] = {}  # inode, links followed -> our paths
    for probe in probes:
        path = probe.location.path
        found.update((path, name) for name in (path, probe.listed) if name in others)
        if probe.lstat is not None:
            # Follows a symlinked file, whose target _check_symlink saw.
            key = spellings.key(path)
            if key is None:
                os.stat(path)  # raises why (planning refuses); None means unreachable
                continue
            ours.setdefault(key, []).append(path)
    listdir = functools.cache(_listdir)
    for other in sorted(others):  # one stat per path: the price of catching links to ours
        for spelling in (other,) if is_exact(other) else disk_spellings(other, listdir):
            key = spellings.key(spelling)
            for path in ours.get(key, ()) if key is not None else ():
                if path not in found and _same_entry(spelling, path, listdir, spellings):
                    found[path] = other
    return found


def _listdir(path: str) -> frozenset[bytes]:
    try:
        return frozenset(os.listdir(os.fsencode(path)))
    except OSError:
        return frozenset()


def _same_entry(
    other: str, ours: str, listdir: Callable[[str], frozenset[bytes]], spellings: Spellings
) -> bool:
    """Whether `other`, which stats to our inode, names our entry, not a hard link.

    In doubt it does: keeping a file is the safe side.
    """
    real_other = spellings.canonical(os.path.realpath(other))
    real_ours = spellings.canonical(os.path.realpath(ours))
    if real_other == real_ours:
        return True
    other_dir, other_name = posixpath.split(real_other)
    our_dir, our_name = posixpath.split(real_ours)
    other_key = spellings.key(other_dir)
    if other_key is not None and other_key != spellings.key(our_dir):
        return False  # a hard link in another directory
    # The same directory (a bind mount shows it under another path): the same name
    # is the same entry, and so is a name the directory does not hold as such (a
    # case-insensitive filesystem's spelling of ours); another name there is a link.
    return other_name == our_name or os.fsencode(other_name) not in listdir(other_dir)
