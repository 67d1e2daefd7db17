"""A snapshot decoded a chunk of rows at a time gives what the whole decode gives.
So does one held as the pieces it was read in (`protocol.pieces`), each dropped
once read past, whatever the pieces' sizes and wherever they cut.

The recorded replies (tests/data/recorded: 1,000 torrents of rtorrent 0.16, four
`t.multicall=` tables each) are cut into chunks of every size from a few rows up;
names that look like a row boundary (`],["<hash>"`, `<value><array><data>`) must
not cut a row; a chunk that is not whole rows comes as None.
"""

from __future__ import annotations

import gzip
import json
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rtorrentd.protocol import jsonrpc
from rtorrentd.protocol import xmlrpc as rpc
from rtorrentd.protocol.pieces import SPOOL_BYTES, Pieces, Spool, Window

RECORDED = Path(__file__).parent / "data" / "recorded" / "tinyxml2-0.16"
HASH = "0123456789ABCDEF0123456789ABCDEF01234567"


def xmlrpc_c(body: bytes) -> bytes:
    """tinyxml2's layout to xmlrpc-c's (CRLF after each value), as test_rpc writes it."""
    body = body.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-8"?>\r\n')
    body = body.replace(b"<data/>", b"<data></data>")
    for tag in (b"<methodResponse>", b"<params>", b"</params>", b"</methodResponse>"):
        body = body.replace(tag, tag + b"\r\n")
    for tag in (b"</value>", b"<data>", b"</param>"):
        body = body.replace(tag, tag + b"\r\n")
    return body.replace(b"</value>\r\n</param>", b"</value></param>")


def chunked(chunks: Iterator[list[Sequence[object]] | None] | None) -> list[object]:
    """The rows of every chunk (each a list of columns), in order."""
    assert chunks is not None
    parts = list(chunks)
    assert None not in parts
    return [list(row) for columns in parts if columns for row in zip(*columns, strict=True)]


def replies() -> list[tuple[str, bytes, bool]]:
    tiny = gzip.decompress((RECORDED / "1k_d.multicall2_full.xml.gz").read_bytes())
    json_body = gzip.decompress((RECORDED / "1k_json_d.multicall2_full.json.gz").read_bytes())
    return [
        ("tinyxml2", tiny, False),
        ("xmlrpc-c", xmlrpc_c(tiny), False),
        ("json", json_body, True),
    ]


@pytest.mark.parametrize(("layout", "body", "is_json"), replies(), ids=lambda v: str(v)[:8])
@pytest.mark.parametrize("size", [1, 700, 5_000, 64 * 1024, 10**9])
def test_chunks_give_the_whole_decode(layout: str, body: bytes, is_json: bool, size: int) -> None:
    whole = (jsonrpc.decode_response if is_json else rpc.decode_response)(body)
    assert isinstance(whole, list)
    assert 1_000 == len(whole)
    decode = jsonrpc.decode_column_chunks if is_json else rpc.decode_column_chunks
    parts = list(decode(body, size) or ())
    assert whole == chunked(iter(parts))
    assert len(parts) >= (2 if size <= 64 * 1024 else 1)


def json_reply(rows: list[list[object]]) -> bytes:
    return json.dumps({"id": 1, "jsonrpc": "2.0", "result": rows}, separators=(",", ":")).encode()


def test_json_text_that_looks_like_a_row_boundary_cuts_no_row() -> None:
    tricky = f'a],["{HASH}",'
    rows: list[list[object]] = [
        [HASH, tricky, [[f"{HASH}", 1], [HASH, 2]]] if i % 2 else [HASH, "plain", [[HASH, 0]]]
        for i in range(300)
    ]
    body = json_reply(rows)
    # Between the rows (299), and inside the nested tables of half of them (150).
    assert body.count(b'],["' + HASH.encode()) == 299 + 150
    for size in (1, 10, 100, 1_000):
        assert rows == chunked(jsonrpc.decode_column_chunks(body, size))


def test_xml_text_that_looks_like_a_row_start_cuts_no_row() -> None:
    rows = [[HASH, "<value><array><data>", i] for i in range(200)]
    body = rpc_reply(rows)
    assert rows == rpc.decode_response(body)
    for size in (1, 50, 500):
        assert rows == chunked(rpc.decode_column_chunks(body, size))


def rpc_reply(rows: list[list[object]]) -> bytes:
    """rows of strings and ints in tinyxml2's layout."""

    def value(v: object) -> str:
        if isinstance(v, int):
            return f"<value><i8>{v}</i8></value>"
        text = str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<value><string>{text}</string></value>"

    inner = "".join(
        "<value><array><data>" + "".join(map(value, row)) + "</data></array></value>"
        for row in rows
    )
    return (
        '<?xml version="1.0"?><methodResponse><params><param><value><array><data>'
        f"{inner}</data></array></value></param></params></methodResponse>"
    ).encode()


def test_a_chunk_that_is_not_whole_rows_is_none() -> None:
    rows = [[HASH, "name", i] for i in range(100)]
    body = rpc_reply(rows).replace(b"<i8>50</i8>", b"<i8>x</i8>")
    parts = list(rpc.decode_column_chunks(body, 200) or ())
    assert None in parts
    bad_json = json_reply(rows).replace(b",50]", b",50,]")
    parts = list(jsonrpc.decode_column_chunks(bad_json, 200) or ())
    assert None in parts


def test_what_is_not_a_list_of_rows_has_no_chunks() -> None:
    assert rpc.decode_column_chunks(b"<?xml version='1.0'?><methodResponse/>", 100) is None
    assert jsonrpc.decode_column_chunks(b'{"id":1,"jsonrpc":"2.0","result":0}', 100) is None
    assert jsonrpc.decode_column_chunks(b'{"id":2,"jsonrpc":"2.0","result":[["a"]]}', 100) is None


def cut(body: bytes, sizes: Sequence[int]) -> list[bytes]:
    """`body` in pieces of the given sizes, in turn, to its end."""
    pieces, at, i = [], 0, 0
    while at < len(body):
        pieces.append(body[at : at + sizes[i % len(sizes)]])
        at += sizes[i % len(sizes)]
        i += 1
    return pieces


@pytest.mark.parametrize(("layout", "body", "is_json"), replies(), ids=lambda v: str(v)[:8])
@pytest.mark.parametrize("sizes", [[997, 3001], [65536], [256 * 1024, 13]], ids=str)
@pytest.mark.parametrize("size", [700, 64 * 1024])
def test_pieces_give_the_whole_decode_and_are_dropped(
    layout: str, body: bytes, is_json: bool, sizes: list[int], size: int
) -> None:
    whole = (jsonrpc.decode_response if is_json else rpc.decode_response)(body)
    decode = jsonrpc.decode_column_chunks if is_json else rpc.decode_column_chunks
    pieces = Pieces(cut(body, sizes))
    assert pieces.size == len(body)
    chunks = decode(pieces, size)
    assert chunks is not None
    assert not pieces.taken  # deciding that it is rows took nothing
    first = next(chunks)
    # Once the first chunk is out, what is still held is the body but for what
    # the window took: twice the chunk's size, give or take a piece and a row.
    assert len(body) - pieces.held <= 2 * size + max(sizes) + 20_000
    assert whole == chunked(iter([first, *chunks]))
    assert (pieces.taken, pieces.held, bool(pieces)) == (True, 0, False)


def test_a_row_longer_than_a_chunk_and_than_a_piece_is_read_whole() -> None:
    long_name = "x" * 50_000
    rows = [[HASH, long_name if i % 7 == 3 else "short", i] for i in range(60)]
    body = rpc_reply(rows)
    for sizes in ([1], [1_000], [333, 99_999], [len(body)]):
        assert rows == chunked(rpc.decode_column_chunks(Pieces(cut(body, sizes)), 100))
    jbody = json_reply(rows)
    for sizes in ([1_000], [333, 99_999]):
        assert rows == chunked(jsonrpc.decode_column_chunks(Pieces(cut(jbody, sizes)), 100))


def test_a_first_row_longer_than_what_is_peeked_still_sets_the_shape() -> None:
    rows = [[HASH, "y" * 300_000, 1], [HASH, "z", 2]]
    body = rpc_reply(rows)
    assert rows == chunked(rpc.decode_column_chunks(Pieces(cut(body, [4096])), 1_000))


def test_pieces_that_are_not_rows_are_left_whole_for_the_general_decoder() -> None:
    fault = (
        b'<?xml version="1.0"?><methodResponse><fault><value><struct>'
        b"</struct></value></fault></methodResponse>"
    )
    pieces = Pieces(cut(fault, [5]))
    assert rpc.decode_column_chunks(pieces, 100) is None
    assert not pieces.taken and fault == pieces.join()
    jpieces = Pieces(cut(b'{"id":1,"jsonrpc":"2.0","error":{"code":-1}}', [3]))
    assert jsonrpc.decode_column_chunks(jpieces, 100) is None
    assert not jpieces.taken


def test_a_bad_chunk_among_pieces_is_none_and_the_body_cannot_be_joined_after() -> None:
    rows = [[HASH, "name", i] for i in range(100)]
    body = rpc_reply(rows).replace(b"<i8>50</i8>", b"<i8>x</i8>")
    pieces = Pieces(cut(body, [97]))
    assert None in list(rpc.decode_column_chunks(pieces, 200) or ())
    with pytest.raises(ValueError, match="dropped"):
        pieces.join()


def test_a_window_lets_go_of_what_it_read() -> None:
    pieces = Pieces([b"abc", b"", b"defg", b"hi"])
    assert (pieces.size, pieces.peek(5), pieces.startswith(b"abcd")) == (9, b"abcde", True)
    assert pieces.endswith(b"fghi") and not pieces.endswith(b"xhi")
    window = Window(pieces)
    assert window.fill(2) and (window.buf, window.final) == (b"abc", False)
    window.pos = 2
    assert window.fill(3) and (window.buf, window.pos) == (b"cdefg", 0)
    assert not window.fill(3)  # enough held: nothing taken
    window.grow(1)
    assert (window.buf, window.final) == (b"cdefghi", True)
    assert not window.fill(100)


def test_a_spool_gives_each_map_back_once_the_decoder_is_past_it() -> None:
    rows = [[HASH, f"name {i}" * 20, i] for i in range(10_000)]
    body = rpc_reply(rows)
    assert len(body) > 3 * SPOOL_BYTES
    spool = Spool()
    for piece in cut(body, [65536, 1000, 7]):
        spool.write(piece)
    pieces = spool.pieces()
    assert pieces.size == len(body) and body == pieces.join()
    maps = [weakref.ref(part.obj) for part in pieces._parts if isinstance(part, memoryview)]
    # A map each, but for what does not fit at the end of one (a write is whole).
    assert len(body) // SPOOL_BYTES < len(maps) <= len(body) // (SPOOL_BYTES - 65536) + 1
    chunks = rpc.decode_column_chunks(pieces, 64 * 1024)
    assert chunks is not None
    decoded = [next(chunks)]
    # The first map was read into the window and let go: unmapped, not kept.
    assert maps[0]() is None and all(m() is not None for m in maps[2:])
    decoded += chunks
    assert rows == chunked(iter(decoded))
    assert [None] * len(maps) == [m() for m in maps]
