"""Bencoding, just enough to write .torrent files for the tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Bencodable = (
    int
    | str
    | bytes
    | Sequence["Bencodable"]
    | Mapping[str, "Bencodable"]
    | Mapping[bytes, "Bencodable"]
)


def bencode(value: Bencodable) -> bytes:
    """Encode ``value``: ints, text (as UTF-8), bytes, lists and dicts (keys sorted as bytes)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans; pass 0 or 1")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, Mapping):
        return _encode_dict(value)
    if isinstance(value, Sequence):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def _encode_dict(value: Mapping[str, Bencodable] | Mapping[bytes, Bencodable]) -> bytes:
    items = {_key(key): item for key, item in value.items()}
    if len(items) != len(value):
        raise ValueError("dict has keys that are equal once encoded")
    return b"d" + b"".join(bencode(key) + bencode(items[key]) for key in sorted(items)) + b"e"


def _key(key: str | bytes) -> bytes:
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    raise TypeError(f"bencode dict keys are text or bytes, not {type(key).__name__}")
