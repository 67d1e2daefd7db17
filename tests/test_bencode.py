"""The strict bencode decoder: canonical input only, every other byte refused with
where it went wrong; round-trips against the harness's encoder."""

from __future__ import annotations

import pytest
from harness.bencode import bencode
from hypothesis import given
from hypothesis import strategies as st

from rtorrentd.errors import MetainfoError
from rtorrentd.protocol.bencode import BencodeError, Value, decode, decode_dict_spans

VALID: list[tuple[bytes, Value]] = [
    (b"i0e", 0),
    (b"i42e", 42),
    (b"i-7e", -7),
    (b"i9223372036854775807e", 2**63 - 1),
    (b"0:", b""),
    (b"4:spam", b"spam"),
    (b"4:caf\xe9", b"caf\xe9"),
    (b"le", []),
    (b"li1e3:abce", [1, b"abc"]),
    (b"de", {}),
    (b"d1:ai1e1:bli2eee", {b"a": 1, b"b": [2]}),
    (b"d0:i0ee", {b"": 0}),
]

INVALID: list[tuple[bytes, str, int]] = [
    (b"", "unexpected end of data", 0),
    (b"i01e", "malformed integer", 0),
    (b"i-0e", "malformed integer", 0),
    (b"ie", "malformed integer", 0),
    (b"i1", "malformed integer", 0),
    (b"i12345678901234567890e", "malformed integer", 0),
    (b"01:a", "malformed string length", 0),
    (b"5:abc", "string runs past the end", 0),
    (b"-1:a", "unexpected byte", 0),
    (b"l", "unexpected end of data", 1),
    (b"li1e", "unexpected end of data", 4),
    (b"d1:a", "unexpected end of data", 4),
    (b"d1:ai1e", "unexpected end of data", 7),
    (b"di1ei2ee", "a key that is no string", 1),
    (b"d1:bi1e1:ai2ee", "keys out of order", 7),
    (b"d1:ai1e1:ai2ee", "duplicate key", 7),
    (b"i1ei2e", "data after the end", 3),
    (b"x", "unexpected byte", 0),
]


@pytest.mark.parametrize(("data", "value"), VALID)
def test_decodes_canonical_bencoding(data: bytes, value: Value) -> None:
    assert value == decode(data)


@pytest.mark.parametrize(("data", "what", "offset"), INVALID)
def test_refuses_anything_else_and_says_where(data: bytes, what: str, offset: int) -> None:
    with pytest.raises(BencodeError) as info:
        decode(data)
    assert what in str(info.value)
    assert offset == info.value.offset
    assert isinstance(info.value, MetainfoError)


def test_nesting_is_bounded() -> None:
    assert [[[]]] == decode(b"llleee", max_depth=3)
    with pytest.raises(BencodeError, match="nesting deeper than 3"):
        decode(b"lllleeee", max_depth=3)
    with pytest.raises(BencodeError, match="nesting deeper"):
        decode(b"l" * 10_000 + b"e" * 10_000)  # no RecursionError


values: st.SearchStrategy[Value] = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=8), inner),
    max_leaves=20,
)


@given(values)
def test_round_trips_the_harness_encoder(value: Value) -> None:
    assert value == decode(bencode(value))


@given(st.dictionaries(st.binary(max_size=8), values, max_size=5))
def test_spans_are_the_bytes_of_each_value(value: dict[bytes, Value]) -> None:
    data = bencode(value)
    found, spans = decode_dict_spans(data)
    assert value == found
    assert {k: bencode(v) for k, v in value.items()} == {
        k: data[start:end] for k, (start, end) in spans.items()
    }


@pytest.mark.parametrize(
    ("data", "what"),
    [(b"li1ee", "expected a dictionary"), (b"de1:x", "data after"), (b"d1:a", "end of data")],
)
def test_spans_need_one_whole_dictionary(data: bytes, what: str) -> None:
    with pytest.raises(BencodeError, match=what):
        decode_dict_spans(data)
