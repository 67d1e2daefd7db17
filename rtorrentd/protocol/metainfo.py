"""A torrent's metainfo: the exact bytes of its names, its files and its pieces.

rtorrent shows every name as a display string that may have lost bytes
(RTORRENT.md, "Names are lossy"); the metainfo holds the names themselves. It
is trusted only when the SHA-1 of its info dictionary, exactly as it stands in
the file, is the torrent's info-hash: a stale or foreign file is never used.

A file's path may be given in several spellings: `path`, and `path.<encoding>`
(`name` and `name.<encoding>` for the torrent's own name). rtorrent 0.9.8 takes
the first of these whose encoding its `encoding.add` list names, else the plain
one (measured); which one it took shows only in its display strings, so every
spelling that differs is kept for the caller to match against them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rtorrentd.errors import MetainfoError
from rtorrentd.protocol.bencode import Value, decode, decode_dict_spans

PIECE_HASH_BYTES = 20

Path = tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class MetaFile:
    """One file: its path below the torrent's root, as components of exact bytes."""

    path: Path
    alternatives: tuple[Path, ...]  # other spellings (path.<encoding>), each unlike `path`
    length: int
    offset: int  # where its bytes start in the torrent's one stream of bytes

    @property
    def spellings(self) -> tuple[Path, ...]:
        """Every way the metainfo spells this path, the plain one first."""
        return (self.path, *self.alternatives)


@dataclass(frozen=True, slots=True)
class Metainfo:
    """What rtorrentd needs from a .torrent: names, files and piece hashes.

    A single-file torrent has one file whose path is its name.
    """

    info_hash: str  # upper-case hex, as rtorrent reports it
    name: bytes
    multi_file: bool
    files: tuple[MetaFile, ...]
    piece_length: int
    pieces: bytes  # PIECE_HASH_BYTES per piece
    name_alternatives: tuple[bytes, ...] = ()  # name.<encoding> spellings unlike `name`

    @property
    def names(self) -> tuple[bytes, ...]:
        """Every way the metainfo spells the torrent's name, the plain one first."""
        return (self.name, *self.name_alternatives)

    @property
    def piece_count(self) -> int:
        return len(self.pieces) // PIECE_HASH_BYTES

    @property
    def total_length(self) -> int:
        return sum(f.length for f in self.files)

    def piece_hash(self, index: int) -> bytes:
        """The SHA-1 digest piece `index` must have."""
        start = index * PIECE_HASH_BYTES
        return self.pieces[start : start + PIECE_HASH_BYTES]

    def piece_span(self, index: int) -> tuple[int, int]:
        """Start and end (exclusive) of piece `index` in the stream; the last is short."""
        start = index * self.piece_length
        return start, min(start + self.piece_length, self.total_length)


def parse_metainfo(data: bytes, info_hash: str) -> Metainfo:
    """The metainfo in `data`, which must be the torrent `info_hash`'s.

    Raises `MetainfoError` (a `BencodeError` for bad bencoding) when it is not
    well-formed, or when its info dictionary hashes to another torrent.
    """
    top, spans = decode_dict_spans(data)
    if b"info" not in spans:
        raise MetainfoError("the .torrent has no info dictionary")
    start, end = spans[b"info"]
    actual = hashlib.sha1(data[start:end]).hexdigest().upper()
    if actual != info_hash.upper():
        raise MetainfoError(
            f"the .torrent is another torrent's: its info-hash is {actual}, not {info_hash.upper()}"
        )
    info = _dict(top[b"info"], "info")
    return _metainfo(actual, info)


def _metainfo(info_hash: str, info: dict[bytes, Value]) -> Metainfo:
    name = _component(info.get(b"name"), "name")
    piece_length = _int(info.get(b"piece length"), "piece length")
    if piece_length <= 0:
        raise MetainfoError(f"the piece length {piece_length} is not positive")
    pieces = _bytes(info.get(b"pieces"), "pieces")
    if len(pieces) % PIECE_HASH_BYTES:
        raise MetainfoError(f"pieces holds {len(pieces)} bytes, not a multiple of 20")
    multi_file = b"files" in info
    if multi_file == (b"length" in info):
        raise MetainfoError("the info dictionary must have exactly one of files and length")
    others = _name_spellings(info, name)
    if multi_file:
        files = _files(info[b"files"])
    else:
        spellings = tuple((other,) for other in others)
        files = (MetaFile((name,), spellings, _length(info.get(b"length"), "length"), 0),)
    meta = Metainfo(info_hash, name, multi_file, files, piece_length, pieces, others)
    expected = -(-meta.total_length // piece_length)
    if meta.piece_count != expected:
        raise MetainfoError(
            f"{meta.piece_count} piece hashes for {meta.total_length} bytes in pieces of "
            f"{piece_length}; expected {expected}"
        )
    return meta


def _name_spellings(info: dict[bytes, Value], name: bytes) -> tuple[bytes, ...]:
    found: list[bytes] = []
    for key, value in info.items():
        if key.startswith(b"name."):
            spelling = _component(value, key.decode("ascii", "replace"))
            if spelling != name and spelling not in found:
                found.append(spelling)
    return tuple(found)


def _files(value: Value) -> tuple[MetaFile, ...]:
    entries = _list(value, "files")
    if not entries:
        raise MetainfoError("the torrent lists no files")
    files: list[MetaFile] = []
    offset = 0
    for number, entry in enumerate(entries):
        fields = _dict(entry, f"file {number}")
        path = _path(fields.get(b"path"), number, "path")
        length = fields.get(b"length")
        if not isinstance(length, int) or length < 0:
            length = _length(length, f"file {number} length")
        others: list[Path] = []
        if len(fields) > 2:  # more than length and path: look for path.<encoding>
            for key, spelling in fields.items():
                if key.startswith(b"path."):
                    other = _path(spelling, number, key.decode("ascii", "replace"))
                    if other != path and other not in others:
                        others.append(other)
        files.append(MetaFile(path, tuple(others), length, offset))
        offset += length
    return tuple(files)


def _path(value: object, number: int, key: str) -> Path:
    """A file's path; the checks of `_component`, done inline for speed (a torrent
    may list tens of thousands of files)."""
    if isinstance(value, list) and value:
        path = tuple(value)
        if all(
            isinstance(p, bytes) and p and p not in _DOTS and b"/" not in p and b"\0" not in p
            for p in path
        ):
            return path
    what = f"file {number} {key}"
    parts = _list(value, what)
    if not parts:
        raise MetainfoError(f"{what} is empty")
    return tuple(_component(part, what) for part in parts)


_DOTS = (b".", b"..")


def _component(value: object, what: str) -> bytes:
    """One name: not empty, no '/', no NUL, not '.' or '..' (it could leave the root)."""
    name = _bytes(value, what)
    if not name or name in _DOTS or b"/" in name or b"\0" in name:
        raise MetainfoError(f"{what} {name!r} is not a plain file name")
    return name


def _length(value: object, what: str) -> int:
    length = _int(value, what)
    if length < 0:
        raise MetainfoError(f"{what} {length} is negative")
    return length


def _int(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise MetainfoError(f"{what} is missing or not an integer")
    return value


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MetainfoError(f"{what} is missing or not a string")
    return value


def _list(value: object, what: str) -> list[Value]:
    if not isinstance(value, list):
        raise MetainfoError(f"{what} is missing or not a list")
    return value


def _dict(value: object, what: str) -> dict[bytes, Value]:
    if not isinstance(value, dict):
        raise MetainfoError(f"{what} is missing or not a dictionary")
    return value


# --- which pieces rtorrent has ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bitfield:
    """Which pieces rtorrent has: bit i (most significant first) is piece i."""

    bits: bytes
    count: int

    @classmethod
    def full(cls, count: int) -> Bitfield:
        return cls(b"\xff" * ((count + 7) // 8), count)

    @classmethod
    def empty(cls, count: int) -> Bitfield:
        return cls(b"\x00" * ((count + 7) // 8), count)

    def has(self, index: int) -> bool:
        """Whether piece `index` is complete."""
        return 0 <= index < self.count and bool(self.bits[index // 8] & (0x80 >> (index % 8)))

    @property
    def complete(self) -> int:
        """How many pieces are complete."""
        return sum(self.has(i) for i in range(self.count))

    def without(self, indices: tuple[int, ...]) -> Bitfield:
        """The same, with `indices` marked as not had."""
        bits = bytearray(self.bits)
        for index in indices:
            if 0 <= index < self.count:
                bits[index // 8] &= ~(0x80 >> (index % 8)) & 0xFF
        return Bitfield(bytes(bits), self.count)


def bitfield_from_hex(text: str, count: int) -> Bitfield | None:
    """`d.bitfield` (hex, "" while the torrent is closed); None if unusable."""
    try:
        bits = bytes.fromhex(text)
    except ValueError:
        return None
    return Bitfield(bits, count) if text and len(bits) == (count + 7) // 8 else None


def bitfield_from_resume(data: bytes, count: int) -> Bitfield | None:
    """The bitfield in rtorrent's `<HASH>.torrent.libtorrent_resume`; None if unusable.

    libtorrent writes the number of complete pieces when it is all or none of
    them, the bits otherwise, and lists as `uncertain_pieces` (4-byte big-endian
    indices) pieces that were being written when it saved: those count as not had.
    """
    try:
        resume = decode(data)
    except MetainfoError:
        return None
    if not isinstance(resume, dict):
        return None
    value = resume.get(b"bitfield")
    if isinstance(value, int):
        found = Bitfield.full(count) if value == count else None
        found = Bitfield.empty(count) if value == 0 else found
    elif isinstance(value, bytes) and len(value) == (count + 7) // 8:
        found = Bitfield(value, count)
    else:
        return None
    uncertain = resume.get(b"uncertain_pieces", b"")
    if found is None or not isinstance(uncertain, bytes) or len(uncertain) % 4:
        return None
    indices = tuple(
        int.from_bytes(uncertain[i : i + 4], "big") for i in range(0, len(uncertain), 4)
    )
    return found.without(indices)
