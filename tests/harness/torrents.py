"""A torrent factory: deterministic payload files on disk and the matching .torrent.

Names may be ``str`` or ``bytes``; ``bytes`` lets a test make names that are not
valid UTF-8 (``b"caf\\xe9.bin"``), which rtorrent 0.9.8 reports with every byte >= 0x80
replaced by ``?`` (0.16 percent-encodes it: ``caf%E9.bin``) while the file on disk
keeps its real bytes.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .bencode import Bencodable, bencode

UNREACHABLE_TRACKER = "http://127.0.0.1:1/announce"
"""A tracker URL that refuses connections at once: nothing leaves the machine."""

Name = str | bytes
Payload = bytes | Mapping[Name, bytes]


@dataclass(frozen=True, slots=True)
class TorrentEntry:
    """One file of a torrent: path relative to the torrent's root, and size."""

    path: Name
    size: int


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """A .torrent made by :func:`make_torrent`, and where its payload lives.

    ``info_hash`` is upper-case hex, as rtorrent reports it. ``directory`` is the
    parent of the payload: pass it as the download's directory to load the
    torrent complete. ``payload_path`` is ``directory / name`` (the file of a
    single-file torrent, the folder of a multi-file one).
    """

    name: Name
    info_hash: str
    data: bytes
    files: tuple[TorrentEntry, ...]
    directory: Path
    payload_written: bool
    multi_file: bool
    piece_length: int

    @property
    def size(self) -> int:
        """Total payload size in bytes."""
        return sum(entry.size for entry in self.files)

    @property
    def payload_path(self) -> Path:
        """Where the payload is (or would be) on disk."""
        return self.directory / os.fsdecode(self.name)

    @property
    def rtorrent_name(self) -> str:
        """The name as rtorrent 0.9.8 reports it in ``d.name``."""
        return rtorrent_text(self.name)

    def reported_name(self, version: str) -> str:
        """The name as rtorrent ``version`` reports it in ``d.name``."""
        return rtorrent_text(self.name, version)

    def save(self, path: Path) -> Path:
        """Write the .torrent to ``path`` and return it."""
        path.write_bytes(self.data)
        return path


# Bytes rtorrent will not send as they are in a name it finds unsendable.
_MANGLED_BYTES = re.compile(rb"[\x00-\x1f\x80-\xff]")


def rtorrent_text(name: Name, version: str = "0.9.8") -> str:
    """What rtorrent ``version`` sends for ``name`` (measured, RTORRENT.md).

    A name that is not valid UTF-8, or holds a character above U+FFFF or U+FFFE/U+FFFF,
    is unsendable: 0.9.8 sends each byte >= 0x80 and each control character as
    ``?``, 0.16 as ``%XX`` (upper-case hex; a literal ``%`` stays). Other names come
    back as they are, but for CR, sent as LF.
    """
    raw = name.encode() if isinstance(name, str) else name
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and not any(c > "\ufffd" for c in text):
        return text.replace("\r\n", "\n").replace("\r", "\n")
    if version == "0.9.8":
        return _MANGLED_BYTES.sub(b"?", raw).decode("ascii")
    return _MANGLED_BYTES.sub(lambda m: b"%%%02X" % m[0][0], raw).decode("ascii")


def random_bytes(size: int, seed: int | str | bytes = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed on every run."""
    return random.Random(seed).randbytes(size)


def make_torrent(
    dest_dir: Path,
    name: Name,
    files: Payload,
    *,
    piece_length: int = 16384,
    trackers: Sequence[str] = (UNREACHABLE_TRACKER,),
    private: bool = False,
    write_payload: bool = True,
) -> TorrentFile:
    """Make a torrent called ``name`` whose payload goes under ``dest_dir``.

    ``files`` is the content of a single-file torrent (``bytes``) or, for a
    multi-file one, a mapping of relative paths (``/``-separated) to contents.
    With ``write_payload=False`` nothing is written: the torrent loads incomplete.
    """
    multi_file = not isinstance(files, bytes)
    contents = dict(files) if isinstance(files, Mapping) else {name: files}
    entries = tuple(TorrentEntry(path, len(content)) for path, content in contents.items())
    info = _info_dict(name, contents, piece_length, private=private, multi_file=multi_file)
    torrent = TorrentFile(
        name=name,
        info_hash=hashlib.sha1(bencode(info)).hexdigest().upper(),
        data=bencode(_metainfo(info, trackers)),
        files=entries,
        directory=dest_dir,
        payload_written=write_payload,
        multi_file=multi_file,
        piece_length=piece_length,
    )
    if write_payload:
        _write_payload(torrent, contents)
    return torrent


def _info_dict(
    name: Name,
    contents: Mapping[Name, bytes],
    piece_length: int,
    *,
    private: bool,
    multi_file: bool,
) -> dict[str, Bencodable]:
    blob = b"".join(contents.values())
    pieces = b"".join(
        hashlib.sha1(blob[start : start + piece_length]).digest()
        for start in range(0, len(blob), piece_length)
    )
    info: dict[str, Bencodable] = {"name": name, "piece length": piece_length, "pieces": pieces}
    if multi_file:
        info["files"] = [
            {"length": len(content), "path": _split(path)} for path, content in contents.items()
        ]
    else:
        info["length"] = len(blob)
    if private:
        info["private"] = 1
    return info


def _metainfo(info: dict[str, Bencodable], trackers: Sequence[str]) -> dict[str, Bencodable]:
    # A fixed creation date keeps the .torrent bytes deterministic.
    meta: dict[str, Bencodable] = {"info": info, "creation date": 1_700_000_000}
    if trackers:
        meta["announce"] = trackers[0]
        meta["announce-list"] = [[url] for url in trackers]
    return meta


def _split(path: Name) -> list[Bencodable]:
    parts: Sequence[Name] = path.split(b"/") if isinstance(path, bytes) else path.split("/")
    if any(part in ("", b"", ".", b".", "..", b"..") for part in parts):
        raise ValueError(f"bad relative path in torrent: {path!r}")
    return list(parts)


def _write_payload(torrent: TorrentFile, contents: Mapping[Name, bytes]) -> None:
    root = os.fsencode(torrent.directory)
    base = os.path.join(root, os.fsencode(torrent.name))
    for path, content in contents.items():
        target = os.path.join(base, os.fsencode(path)) if torrent.multi_file else base
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(content)


@dataclass(frozen=True, slots=True)
class TorrentFactory:
    """:func:`make_torrent` bound to a default payload directory (the fixture's tmp_path)."""

    dest_dir: Path

    def __call__(
        self,
        name: Name,
        files: Payload,
        *,
        dest_dir: Path | None = None,
        piece_length: int = 16384,
        trackers: Sequence[str] = (UNREACHABLE_TRACKER,),
        private: bool = False,
        write_payload: bool = True,
    ) -> TorrentFile:
        """Make a torrent under ``dest_dir`` (default: the factory's directory)."""
        directory = dest_dir if dest_dir is not None else self.dest_dir
        directory.mkdir(parents=True, exist_ok=True)
        return make_torrent(
            directory,
            name,
            files,
            piece_length=piece_length,
            trackers=trackers,
            private=private,
            write_payload=write_payload,
        )
