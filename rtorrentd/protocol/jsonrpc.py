"""JSON-RPC 2.0 for rtorrent 0.15.2+: encode a call, decode a reply. Pure: bytes in, values out.

rtorrent answers JSON-RPC on the same socket as XML-RPC (SCGI `CONTENT_TYPE`
`application/json`, `CONTENT_TYPE` here). The reply is about a fifth of the XML
one and `json` reads it in C, so it is the cheaper protocol where it works; the
values are those XML-RPC gives (ints as ints, arrays as lists), except that a CR
in a string stays a CR (XML turns it into LF).

The trap (see RTORRENT.md): one string in the result that is not UTF-8 (a
latin-1 torrent name) makes rtorrent replace the whole reply with error -32700;
`decode_response` raises `JsonReplyNotUtf8` for that, apart from every other
error, so that a client can ask again over XML-RPC, which carries such names.

Only positional params; a batch is a JSON array of calls (rtorrent has no
`system.multicall` over JSON); errors are -32601 (unknown method), -32602 (bad
params, hash, target, field, view), -32700 (parse).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence

from rtorrentd.errors import JsonReplyNotUtf8, MalformedReply, RpcError, RpcFault
from rtorrentd.protocol.pieces import Pieces, Window
from rtorrentd.protocol.xml_decode import MAX_DEPTH

__all__ = [
    "CONTENT_TYPE",
    "decode_batch",
    "decode_column_chunks",
    "decode_response",
    "encode_batch",
    "encode_call",
]

CONTENT_TYPE = "application/json"
"""The SCGI `CONTENT_TYPE` that makes rtorrent read a body as JSON-RPC."""

_I8 = range(-(2**63), 2**63)
_PARSE_ERROR = -32700
# What rtorrent's JSON library (nlohmann::json) says of a string it cannot write.
_NOT_UTF8 = ("invalid UTF-8", "type_error.316")


def encode_call(method: str, params: Sequence[object], request_id: int = 1) -> bytes:
    """Serialise a JSON-RPC 2.0 call of `method` with positional `params`, as UTF-8.

    Types: str, bool, int (at most 64 bits), float, list/tuple, dict with str
    keys. Raises ValueError for ints beyond 64 bits, NaN/infinity, strings UTF-8
    cannot carry (lone surrogates) and nesting deeper than `MAX_DEPTH`;
    TypeError for any other type (bytes included: JSON has no binary).
    """
    return _dumps(_call(method, params, request_id))


def encode_batch(calls: Sequence[tuple[str, Sequence[object]]]) -> bytes:
    """Serialise calls as one JSON-RPC batch; call i (from 0) gets id i + 1."""
    if not calls:
        raise ValueError("a JSON-RPC batch needs at least one call")
    return _dumps([_call(method, params, i) for i, (method, params) in enumerate(calls, 1)])


def decode_response(body: bytes, request_id: int = 1) -> object:
    """The result of a JSON-RPC reply to the call with `request_id`.

    Raises `JsonReplyNotUtf8` when rtorrent could not write its answer as JSON
    (ask again over XML-RPC), `RpcFault` for any other error object, and
    `MalformedReply` for anything that is not a JSON-RPC 2.0 reply to this call.
    """
    reply = _loads(body)
    if not isinstance(reply, dict):
        raise _malformed(f"a JSON {type(reply).__name__} where a reply object belongs")
    outcome = _outcome(reply)
    if isinstance(outcome, RpcError):
        raise outcome
    if reply.get("id") != request_id:
        raise _malformed(f"the reply is to id {reply.get('id')!r}, not {request_id}")
    return outcome


def decode_batch(body: bytes, count: int) -> list[object]:
    """The results of a reply to `encode_batch` of `count` calls, in call order;
    a call that failed has its error (`RpcFault`, `JsonReplyNotUtf8`) in its place.

    An error for the whole batch (rtorrent answers one object) is raised, as by
    `decode_response`.
    """
    replies = _loads(body)
    if isinstance(replies, dict):
        outcome = _outcome(replies)
        if isinstance(outcome, RpcError):
            raise outcome
        raise _malformed("one result for a batch of calls")
    if not isinstance(replies, list) or len(replies) != count:
        raise _malformed(f"expected a list of {count} replies")
    by_id: dict[object, object] = {}
    for reply in replies:
        if not isinstance(reply, dict):
            raise _malformed(f"a batch item that is a JSON {type(reply).__name__}")
        by_id[reply.get("id")] = _outcome(reply)
    if set(by_id) != set(range(1, count + 1)):
        raise _malformed(f"batch reply ids {sorted(map(str, by_id))} are not 1 to {count}")
    return [by_id[i] for i in range(1, count + 1)]


def decode_column_chunks(
    body: bytes | Pieces, chunk_bytes: int
) -> Iterator[list[Sequence[object]] | None] | None:
    """The result of a reply to call 1 that is a list of rows whose first value is
    an info-hash (a snapshot), a chunk of rows at a time as columns (one per
    field, as `xmlrpc.decode_column_chunks`): a caller never holds every decoded
    row at once, nor, given `Pieces`, the whole body. None when the body is not
    such a reply as rtorrent writes it (then `decode_response` says what it is,
    and nothing of `body` was taken); a None chunk where a chunk is not whole rows
    of one width, and the caller decodes the whole body instead.

    A chunk ends before a `],["<40 hex digits>"` only if what precedes it reads as
    a JSON array of rows: inside a string or a nested table it would not (a prefix
    that ends inside either leaves a string or a bracket open).
    """
    pieces = body if isinstance(body, Pieces) else Pieces((body,))
    if not (pieces.startswith(_ROWS_HEAD + b"[") and pieces.endswith(_ROWS_TAIL)):
        return None
    return _json_chunks(Window(pieces, len(_ROWS_HEAD), len(_ROWS_TAIL)), chunk_bytes)


# What rtorrent (nlohmann::json, keys in order) writes around a list of rows.
_ROWS_HEAD = b'{"id":1,"jsonrpc":"2.0","result":['
_ROWS_TAIL = b"]}"
_NEXT_ROW = re.compile(rb'\],\["[0-9A-Fa-f]{40}"')


def _json_chunks(window: Window, size: int) -> Iterator[list[Sequence[object]] | None]:
    offset = size  # where a cut is looked for, from the chunk's start
    while True:
        buf, start, end = window.span(2 * size)
        if start >= end:
            return
        rows: list[object] | None = None
        search = min(start + offset, end)
        while rows is None:
            found = _NEXT_ROW.search(buf, search, end)
            if found is None and not window.final:
                break  # no place to cut in what is held: more of the body first
            stop = end if found is None else found.start() + 1
            try:
                rows = json.loads(b"[" + memoryview(buf)[start:stop] + b"]")
            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                if found is None:
                    yield None
                    return
                search = found.start() + 1
        if rows is None:
            offset = search - start
            window.grow(size)
            continue
        offset = size
        columns = _columns(rows)
        if columns is None:
            yield None
            return
        yield columns
        window.pos = stop + 1  # past the comma between two rows


def _columns(rows: object) -> list[Sequence[object]] | None:
    """Rows (lists, all as long) as columns; None for anything else."""
    if not isinstance(rows, list) or not rows or not set(map(type, rows)) <= {list}:
        return None
    if len(set(map(len, rows))) != 1:
        return None
    return [*zip(*rows, strict=True)]


# ---------------------------------------------------------------------------


def _call(method: str, params: Sequence[object], request_id: int) -> dict[str, object]:
    if not isinstance(method, str):
        raise TypeError(f"a method name is a str, not {type(method).__name__}")
    values = list(params)
    _check(values, 0)
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": values}


def _dumps(value: object) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"cannot send {exc.object[exc.start : exc.end]!r}: not a Unicode character"
        ) from None


def _check(value: object, depth: int) -> None:
    """Refuse what JSON or rtorrent cannot take, with a message that says what."""
    if isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if value not in _I8:
            raise ValueError(f"cannot send {value}: rtorrent's integers are at most 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot send {value}: JSON numbers must be finite")
    elif isinstance(value, list | tuple | Mapping):
        if depth >= MAX_DEPTH:
            raise ValueError(f"cannot send values nested deeper than {MAX_DEPTH} (a cycle?)")
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            if isinstance(value, Mapping) and not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}: {key!r}")
            _check(item, depth + 1)
    else:
        raise TypeError(f"cannot encode a {type(value).__name__} as JSON-RPC: {value!r:.80}")


def _loads(body: bytes) -> object:
    try:
        return json.loads(body.decode())
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise _malformed(f"not JSON at byte {exc.pos}: {exc.msg}") from exc
    except RecursionError as exc:  # the C scanner's own bound on nesting
        raise _malformed("nested too deeply") from exc


def _outcome(reply: dict[str, object]) -> object:
    """A reply object's result, or its error as an exception (not raised)."""
    if reply.get("jsonrpc") != "2.0":
        raise _malformed(f'"jsonrpc" is {reply.get("jsonrpc")!r}, not "2.0"')
    if ("result" in reply) == ("error" in reply):
        raise _malformed('a reply needs exactly one of "result" and "error"')
    if "result" in reply:
        return reply["result"]
    error = reply["error"]
    if not isinstance(error, dict):
        raise _malformed(f'"error" is {error!r:.80}, not an object')
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        raise _malformed(f"an error without an int code and a str message: {error!r:.80}")
    if code == _PARSE_ERROR and any(words in message for words in _NOT_UTF8):
        return JsonReplyNotUtf8(message)
    return RpcFault(code, message)


def _malformed(reason: str) -> MalformedReply:
    return MalformedReply(f"malformed JSON-RPC reply: {reason}")
