"""`RtorrentClient`: typed calls to rtorrent over any transport; makes no decisions.

One poll is one `d.multicall2` (`d.multicall` on 0.16.14+; RTORRENT.md: per-torrent
calls cost rtorrent its global lock thousands of times), over JSON-RPC where rtorrent
has it and XML-RPC otherwise (`wire`). Replies are decoded off the event loop when
large, so a 5 MB snapshot never stalls signal handling or the watchdog.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain
from typing import cast

import anyio.to_thread

from rtorrentd.errors import (
    JsonReplyNotUtf8,
    MalformedReply,
    RpcFault,
    TransportError,
    UnknownMethod,
    UnknownTorrent,
    UntrustedCommand,
)
from rtorrentd.logger import get_logger
from rtorrentd.protocol import xmlrpc as rpc
from rtorrentd.protocol.pieces import Pieces
from rtorrentd.rtorrent import session
from rtorrentd.rtorrent.dialect import (
    OLDEST,
    Dialect,
    classify_fault,
    parse_version,
    unescape_name,
)
from rtorrentd.rtorrent.file_lists import (
    FILES_PER_CALL,
    MAX_CACHED_COUNTS,
    by_files,
    file_entries,
    range_calls,
    range_rows,
)
from rtorrentd.rtorrent.rows import (
    Layout,
    layout,
    torrent_from_row,
    torrents_from_columns,
    torrents_from_rows,
)
from rtorrentd.rtorrent.transport import Transport
from rtorrentd.rtorrent.wire import JSON_RPC, XML_RPC, JsonChoice, Wire, is_json_disabled
from rtorrentd.torrent import FileEntry, Torrent
from rtorrentd.vocabulary import fields_for

__all__ = ["Call", "RtorrentClient", "classify_fault", "command_call"]

log = get_logger("rtorrentd.rtorrent.client")

# A snapshot is decoded and converted this many bytes of reply at a time (some
# 400 rows of XML, 2,000 of JSON): at 100,000 torrents the decoded rows of the
# whole reply at once would be some 100 MB beside the Torrents made of them, and
# what one chunk leaves freed between the Torrents is what the next reuses:
# with 2 MiB chunks a 100,000-torrent snapshot left 15 to 25 MiB more RSS, no faster.
SNAPSHOT_CHUNK_BYTES = 256 * 1024

# What rtorrent answers when it will not count a torrent's files: `d.size_files`
# is not among the commands 0.16 allows over an untrusted connection (f.multicall is).
_UNCOUNTABLE = (UntrustedCommand, UnknownMethod)

# Replies larger than this are decoded in a worker thread; small ones inline,
# where a thread hop would cost more than the decoding.
THREAD_DECODE_BYTES = 64 * 1024

# Stay well below rtorrent's default request limit (network.xmlrpc.size_limit,
# 524288 bytes): a larger system.multicall is refused whole with fault -503.
MULTICALL_BATCH_BYTES = 256 * 1024

# The commands that give names and paths: a newer rtorrent percent-escapes the
# unsendable ones, which `unescape_name` turns into 0.9.8's lossy '?' form.
_NAME_COMMANDS = frozenset({"d.name=", "d.base_path=", "d.directory=", "d.directory_base="})


Call = tuple[str, Sequence[object]]


def command_call(command: str, target: str) -> Call:
    """Turn a `d.multicall2` field (`d.custom=addtime`, `t.multicall=,t.url=`) into
    a direct call on one torrent: method name, then the target and the arguments."""
    method, _, args = command.partition("=")
    return method, [target, *args.split(",")] if args else [target]


@lru_cache(maxsize=32)
def _layout_for(names: frozenset[str], identity: bool = True) -> Layout:
    return layout(fields_for(names, identity=identity))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block.

    Why: decoding and converting a snapshot allocates some 100,000 lists and
    objects in a burst, none of them garbage; the collector would walk them many
    times over while they are built. The flag is process-wide: it is restored to
    what it was (never enabled if it was off before), so pauses that overlap in
    two threads end with it as it was before the first.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rows_to_torrents(
    plan: Layout,
    body: bytes,
    dialect: Dialect = OLDEST,
    method: str = "d.multicall2",
    wire: Wire = XML_RPC,
) -> tuple[Torrent, ...]:
    """The Torrents of a snapshot's reply."""
    torrents = _pieces_to_torrents(plan, body, dialect, method, wire)
    if torrents is None:  # cannot be: a body held whole is decoded whole
        raise MalformedReply(f"{method}: the reply could not be decoded")
    return torrents


def _pieces_to_torrents(
    plan: Layout, body: bytes | Pieces, dialect: Dialect, method: str, wire: Wire
) -> tuple[Torrent, ...] | None:
    """`_rows_to_torrents`; None when `body` came in `Pieces` and a chunk past the
    first could not be read by the fast path: the pieces read before it are gone,
    so the caller asks again for the reply whole."""
    with _gc_paused():
        chunks = wire.column_chunks(body, SNAPSHOT_CHUNK_BYTES)
        if chunks is not None:
            torrents = _chunks_to_torrents(plan, chunks, dialect, method, wire)
            if torrents is not None:
                return torrents
            if isinstance(body, Pieces) and body.taken:
                return None
        value = wire.decode(body.join() if isinstance(body, Pieces) else body)
        if not isinstance(value, list):
            raise MalformedReply(f"{method} returned {type(value).__name__}, expected a list")
        try:
            if dialect.escapes_names and wire.escapes_names:
                _unescape_columns(plan.commands, value)
            return torrents_from_rows(plan, value)
        except (TypeError, ValueError, IndexError) as exc:
            raise MalformedReply(f"{method} returned an unexpected row: {exc}") from exc


def _chunks_to_torrents(
    plan: Layout,
    chunks: Iterator[list[Sequence[object]] | None],
    dialect: Dialect,
    method: str,
    wire: Wire,
) -> tuple[Torrent, ...] | None:
    """The Torrents of each chunk of rows (as columns), each chunk dropped as soon
    as converted; None where a chunk was not whole rows, or not as wide as the
    commands (then the whole body is decoded, and says what is wrong)."""
    parts = []
    escaped = dialect.escapes_names and wire.escapes_names
    for columns in chunks:
        if columns is None or len(columns) != len(plan.commands):
            return None
        if escaped:
            _unescape_in_columns(plan.commands, columns)
        try:
            parts.append(torrents_from_columns(plan, columns))
        except (TypeError, ValueError, IndexError) as exc:
            raise MalformedReply(f"{method} returned an unexpected row: {exc}") from exc
    return tuple(chain.from_iterable(parts))


def _unescape_in_columns(commands: Sequence[str], columns: list[Sequence[object]]) -> None:
    """Names and paths (whole columns, replaced in `columns`) in 0.9.8's form."""
    for i, command in enumerate(commands):
        column = columns[i]
        if command in _NAME_COMMANDS and any("%" in t for t in column if isinstance(t, str)):
            columns[i] = [
                unescape_name(t) if isinstance(t, str) and "%" in t else t for t in column
            ]


def _unescape_columns(commands: Sequence[str], rows: list[object]) -> None:
    """Names and paths of every row (lists, changed in place) in 0.9.8's form."""
    positions = [i for i, command in enumerate(commands) if command in _NAME_COMMANDS]
    for row in rows:
        if not isinstance(row, list):
            return  # torrents_from_rows says what is wrong with it
        for i in positions:
            text = row[i]
            if isinstance(text, str) and "%" in text:
                row[i] = unescape_name(text)


def _batches(calls: Sequence[Call], limit: int) -> list[list[Call]]:
    """Split calls so that each batch's encoded request stays under `limit` bytes."""
    batches: list[list[Call]] = [[]]
    size = 0
    for call in calls:
        cost = len(rpc.encode_call(call[0], call[1]))
        if batches[-1] and size + cost > limit:
            batches.append([])
            size = 0
        batches[-1].append(call)
        size += cost
    return batches if batches[0] else []


def _unpack_multicall(reply: object, expected: int) -> list[object]:
    """`system.multicall` gives each result as a one-item list, each failure in place
    as a fault struct; keep faults in place as `RpcFault` values."""
    if not isinstance(reply, list) or len(reply) != expected:
        raise MalformedReply(
            f"system.multicall returned {reply!r:.80}, expected {expected} results"
        )
    results: list[object] = []
    for item in reply:
        if isinstance(item, list) and len(item) == 1:
            results.append(item[0])
        elif isinstance(item, dict) and "faultCode" in item:
            code, text = item.get("faultCode"), item.get("faultString", "")
            results.append(
                classify_fault(RpcFault(int(code) if isinstance(code, int) else 0, str(text)))
            )
        else:
            raise MalformedReply(f"system.multicall returned an unexpected item {item!r:.80}")
    return results


class RtorrentClient:
    """Calls to one rtorrent. Every method may raise `TransportError` or `RpcError`.

    The version is asked once per connection (`dialect`) and asked again after a
    transport error: rtorrent may have been restarted, or upgraded, meanwhile. So is
    whether JSON-RPC works for the snapshot (`wire.JsonChoice`).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        batch_bytes: int = MULTICALL_BATCH_BYTES,
        files_per_call: int = FILES_PER_CALL,
    ) -> None:
        self.transport = transport
        self.batch_bytes = batch_bytes
        self.files_per_call = files_per_call
        self._file_counts: dict[str, int] = {}
        self._dialect: Dialect | None = None
        self._session_dir: str | None = None
        self._json = JsonChoice()
        # Snapshots read whole, not in pieces: once a reply's pieces could not be
        # decoded as they came (`_pieces_to_torrents`), until the next connection.
        self._whole_replies = False

    async def _request(self, method: str, params: Sequence[object], wire: Wire = XML_RPC) -> bytes:
        body = wire.encode(method, params)
        try:
            return await self.transport.request(body, content_type=wire.content_type)
        except TransportError:
            self._forget()
            raise

    async def _request_pieces(self, method: str, params: Sequence[object], wire: Wire) -> Pieces:
        body = wire.encode(method, params)
        try:
            return await self.transport.request_pieces(body, content_type=wire.content_type)
        except TransportError:
            self._forget()
            raise

    def _forget(self) -> None:
        """What was learnt of this connection: it may be another rtorrent next time."""
        self._dialect = self._session_dir = None
        self._json = JsonChoice()
        self._whole_replies = False

    async def dialect(self) -> Dialect:
        """How to talk to this rtorrent, from its `system.client_version`."""
        if self._dialect is None:
            self._dialect = parse_version(await self.call("system.client_version"))
        return self._dialect

    async def call(self, method: str, *params: object) -> object:
        """One call; a fault is raised as `RpcFault` (or a more specific subclass)."""
        body = await self._request(method, params)
        try:
            if len(body) > THREAD_DECODE_BYTES:
                return await anyio.to_thread.run_sync(rpc.decode_response, body)
            return rpc.decode_response(body)
        except RpcFault as fault:
            raise classify_fault(fault) from None

    async def multicall(self, calls: Sequence[Call]) -> list[object]:
        """Many calls in `system.multicall` batches; per-call faults come back in
        place as `RpcFault` values, not raised."""
        results: list[object] = []
        for batch in _batches(calls, self.batch_bytes):
            payload = [{"methodName": name, "params": list(params)} for name, params in batch]
            results.extend(
                _unpack_multicall(await self.call("system.multicall", payload), len(batch))
            )
        return results

    async def snapshot(
        self, names: Iterable[str] = (), *, identity: bool = True
    ) -> tuple[Torrent, ...]:
        """Every loaded torrent, with the fields `names` plus identity (without
        `identity`: plus `hash` and `name` only, the rest None), in one call.

        Over JSON-RPC where the dialect says so; taken again over XML-RPC when
        rtorrent cannot write the reply as JSON (a name that is not UTF-8), and
        over XML-RPC alone when JSON-RPC does not work on this connection (`wire`).
        """
        plan = _layout_for(frozenset(names), identity)
        dialect = await self.dialect()
        if not self._json.use_json(dialect):
            self._json = self._json.took_xml()
            return await self._snapshot(plan, dialect, XML_RPC)
        try:
            return await self._snapshot(plan, dialect, JSON_RPC)
        except JsonReplyNotUtf8 as exc:
            self._json = self._json.not_utf8()
            log.info("rtorrent.snapshot_over_xml", reason=str(exc), snapshots=self._json.xml_left)
        except RpcFault as fault:
            if not is_json_disabled(fault):
                raise
            self._turn_json_off(fault)
        except MalformedReply as exc:
            self._turn_json_off(exc)
        return await self._snapshot(plan, dialect, XML_RPC)

    def _turn_json_off(self, cause: Exception) -> None:
        """JSON-RPC does not work here (turned off in rtorrent.rc, or something on
        the way answers what is not JSON-RPC): XML-RPC until the next connection."""
        self._json = self._json.turned_off(str(cause))
        log.warning("rtorrent.json_rpc_off", url=self.transport.url, reason=str(cause))

    async def _snapshot(self, plan: Layout, dialect: Dialect, wire: Wire) -> tuple[Torrent, ...]:
        method = dialect.multicall
        params = ["", "main", *plan.commands]
        try:
            if not self._whole_replies:
                pieces = await self._request_pieces(method, params, wire)
                torrents = await anyio.to_thread.run_sync(
                    _pieces_to_torrents, plan, pieces, dialect, method, wire
                )
                if torrents is not None:
                    return torrents
                # Rare (a reply in a layout of its own): read whole from now on,
                # so that each poll does not pay for two snapshots.
                self._whole_replies = True
                log.info("rtorrent.snapshot_whole", url=self.transport.url, method=method)
            body = await self._request(method, params, wire)
            return await anyio.to_thread.run_sync(
                _rows_to_torrents, plan, body, dialect, method, wire
            )
        except RpcFault as fault:
            raise classify_fault(fault) from None

    async def loaded_since(
        self, since: int, names: Iterable[str] = (), *, identity: bool = True
    ) -> tuple[Torrent, ...]:
        """The torrents whose `d.load_date` is `since` or later (rtorrent's clock,
        `system.time`), like `snapshot`: one `d.multicall.filtered` that rtorrent
        answers from a scan of its list, so only those rows cross the socket."""
        plan = _layout_for(frozenset(names), identity)
        dialect = await self.dialect()
        predicate = f"greater=d.load_date=,value={since - 1}"
        body = await self._request("d.multicall.filtered", ["", "main", predicate, *plan.commands])
        try:
            return await anyio.to_thread.run_sync(
                _rows_to_torrents, plan, body, dialect, "d.multicall.filtered"
            )
        except RpcFault as fault:
            raise classify_fault(fault) from None

    async def rows(
        self, commands: Sequence[str], *, names: Sequence[str] = (), since: int | None = None
    ) -> list[list[object]]:
        """One `d.multicall2` of raw `commands` over XML-RPC, as rows; the columns in
        `names` (names and paths) in 0.9.8's form, as `snapshot` gives them. With
        `since`, only the torrents loaded since (`loaded_since`)."""
        dialect = await self.dialect()
        if since is None:
            reply = await self.call(dialect.multicall, "", "main", *commands)
        else:
            predicate = f"greater=d.load_date=,value={since - 1}"
            reply = await self.call("d.multicall.filtered", "", "main", predicate, *commands)
        rows = _as_list(reply, dialect.multicall)
        if not all(isinstance(row, list) and len(row) == len(commands) for row in rows):
            raise MalformedReply(f"{dialect.multicall} returned a row of another shape")
        if dialect.escapes_names:
            positions = [i for i, command in enumerate(commands) if command in names]
            for row in cast(list[list[object]], rows):
                for i in positions:
                    if isinstance(row[i], str) and "%" in cast(str, row[i]):
                        row[i] = unescape_name(cast(str, row[i]))
        return cast(list[list[object]], rows)

    async def torrent(self, info_hash: str, names: Iterable[str] = ()) -> Torrent:
        """Fresh values for one torrent; raises `UnknownTorrent` if it is gone."""
        fresh, _ = await self.torrent_and(info_hash, names, ())
        return fresh

    async def torrent_and(
        self, info_hash: str, names: Iterable[str], methods: Sequence[str]
    ) -> tuple[Torrent, tuple[object, ...]]:
        """`torrent` and `values(info_hash, methods)` read together, in one
        `system.multicall`: both describe the same instant, for one round trip."""
        plan = _layout_for(frozenset(names))
        dialect = await self.dialect()
        calls = [command_call(c, info_hash) for c in plan.commands]
        replies = await self.multicall([*calls, *((m, [info_hash]) for m in methods)])
        for reply in replies:
            if isinstance(reply, RpcFault):
                raise reply
        values, extra = replies[: len(calls)], tuple(replies[len(calls) :])
        try:
            if dialect.escapes_names:
                _unescape_columns(plan.commands, [values])
            return torrent_from_row(plan, values), extra
        except (TypeError, ValueError) as exc:
            raise MalformedReply(f"unexpected values for {info_hash}: {exc}") from exc

    async def files(self, info_hash: str) -> tuple[FileEntry, ...]:
        """The torrent's files, paths relative to its `d.directory`: one `f.multicall`,
        or, for more than `files_per_call` files, several calls of that many."""
        dialect = await self.dialect()
        count = self._file_counts.get(info_hash)
        if count is None:
            try:
                count = self._keep_count(info_hash, await self.call("d.size_files", info_hash))
            except _UNCOUNTABLE:
                count = 0  # rtorrent will not say: one f.multicall, as before
        if count > self.files_per_call:
            return await self._files_in_ranges(info_hash, count, dialect)
        reply = await self.call("f.multicall", info_hash, "", "f.path=", "f.size_bytes=")
        return file_entries(reply, dialect)

    async def all_files(self, hashes: Sequence[str]) -> dict[str, tuple[FileEntry, ...]]:
        """Files of many torrents, none of rtorrent's calls listing more than
        `files_per_call` files: `f.multicall`s in `system.multicall` batches, a
        torrent with more files in ranges. A torrent that vanished meanwhile is
        left out."""
        dialect = await self.dialect()
        counts = await self.file_counts(hashes)
        found: dict[str, tuple[FileEntry, ...]] = {}
        # A torrent rtorrent would not count is read whole, grouped as if of one file.
        weights = {h: 1 if n is None else n for h, n in counts.items()}
        small = [h for h, n in weights.items() if n <= self.files_per_call]
        for group in by_files(small, weights, self.files_per_call):
            calls = [("f.multicall", [h, "", "f.path=", "f.size_bytes="]) for h in group]
            for info_hash, reply in zip(group, await self.multicall(calls), strict=True):
                if isinstance(reply, UnknownTorrent):
                    continue
                if isinstance(reply, RpcFault):
                    raise reply
                found[info_hash] = file_entries(reply, dialect)
        for info_hash in (h for h, n in weights.items() if n > self.files_per_call):
            try:
                found[info_hash] = await self._files_in_ranges(
                    info_hash, weights[info_hash], dialect
                )
            except UnknownTorrent:
                continue
        return {h: found[h] for h in counts if h in found}

    async def file_counts(self, hashes: Sequence[str]) -> dict[str, int | None]:
        """`d.size_files` of each torrent, in `hashes`' order (asked once per
        info-hash, in `system.multicall` batches); a torrent that vanished is left
        out, one rtorrent will not count is None (0.16 refuses `d.size_files` over
        a connection it deems untrusted)."""
        missing = [h for h in dict.fromkeys(hashes) if h not in self._file_counts]
        replies = await self.multicall([("d.size_files", [h]) for h in missing]) if missing else []
        uncounted = set()
        for info_hash, reply in zip(missing, replies, strict=True):
            if isinstance(reply, UnknownTorrent):
                continue
            if isinstance(reply, _UNCOUNTABLE):
                uncounted.add(info_hash)
                continue
            if isinstance(reply, RpcFault):
                raise reply
            self._keep_count(info_hash, reply)
        return {
            h: self._file_counts.get(h) for h in hashes if h in self._file_counts or h in uncounted
        }

    def _keep_count(self, info_hash: str, reply: object) -> int:
        if not isinstance(reply, int) or isinstance(reply, bool) or reply < 0:
            raise MalformedReply(f"d.size_files returned {reply!r:.80}, expected a count")
        if len(self._file_counts) >= MAX_CACHED_COUNTS:
            self._file_counts.clear()
        self._file_counts[info_hash] = reply
        return reply

    async def _files_in_ranges(
        self, info_hash: str, count: int, dialect: Dialect
    ) -> tuple[FileEntry, ...]:
        """`count` files of one torrent, `files_per_call` at a time: `f.path` and
        `f.size_bytes` of each (`<hash>:f<index>`), the values `f.multicall` gives.
        Raises `UnknownTorrent` when the torrent vanishes meanwhile."""
        entries: list[FileEntry] = []
        for first in range(0, count, self.files_per_call):
            last = min(first + self.files_per_call, count)
            replies = await self.multicall(range_calls(info_hash, first, last))
            for reply in replies:
                if isinstance(reply, RpcFault):
                    raise reply
            entries.extend(file_entries(range_rows(replies), dialect))
        return tuple(entries)

    async def stop(self, info_hash: str) -> None:
        """`d.stop`: the tracker hears "stopped" with the final totals; files stay open."""
        await self.call("d.stop", info_hash)

    async def close(self, info_hash: str) -> None:
        """`d.close`: closes the files (after `d.stop`; alone it leaves d.state set)."""
        await self.call("d.close", info_hash)

    async def save_session(self, info_hash: str, *, timeout: float = session.SAVE_TIMEOUT) -> None:
        """`d.save_full_session`: the torrent's state is in rtorrent's session when
        this returns.

        0.9.8 writes the files before it answers. 0.16 only queues the save: then
        this waits, up to `timeout` s, until the files have been written anew, and
        raises `SessionNotSaved` when they are not, or when rtorrentd cannot see
        rtorrent's session directory. Without a session directory (`session.path`
        empty) rtorrent saves nothing, in any version, and this returns.
        """
        dialect = await self.dialect()
        if not dialect.saves_in_background:
            await self.call("d.save_full_session", info_hash)
            return
        directory = await self._session_path()
        if not directory:
            await self.call("d.save_full_session", info_hash)
            return
        session.check_visible(directory, dialect.text)
        files = session.SessionFile(directory, info_hash)
        before = files.signature()
        await self.call("d.save_full_session", info_hash)
        await session.wait_until_replaced(files, before, timeout=timeout)

    async def erase(self, info_hash: str) -> None:
        """`d.erase`: takes the torrent out of rtorrent; never deletes data by itself."""
        await self.call("d.erase", info_hash)

    async def session_path(self) -> str:
        """rtorrent's `session.path` ("" when it keeps no session), asked once per
        connection. It holds each torrent's metainfo as `<HASH>.torrent`."""
        return await self._session_path()

    async def pieces(self, info_hash: str) -> tuple[int, int, str]:
        """`d.completed_chunks`, `d.size_chunks` and `d.bitfield` (hex; "" while
        the torrent is closed) of one torrent, in one request."""
        calls = [(m, [info_hash]) for m in ("d.completed_chunks", "d.size_chunks", "d.bitfield")]
        done, size, bits = await self.multicall(calls)
        for value in (done, size, bits):
            if isinstance(value, RpcFault):
                raise value
        if not (isinstance(done, int) and isinstance(size, int) and isinstance(bits, str)):
            raise MalformedReply(f"unexpected pieces of {info_hash}: {done!r}, {size!r}")
        return done, size, bits

    async def _session_path(self) -> str:
        if self._session_dir is None:
            path = await self.call("session.path")
            if not isinstance(path, str):
                raise MalformedReply(f"session.path returned {path!r:.80}, expected a path")
            self._session_dir = path
        return self._session_dir

    async def handlers(self, event: str) -> dict[str, object]:
        """`method.get "" <event>`: each handler's key and its command (a string, or
        a list for several commands)."""
        reply = await self.call("method.get", "", event)
        if not isinstance(reply, dict):
            raise MalformedReply(f"method.get {event} returned {type(reply).__name__}")
        return reply

    async def values(self, info_hash: str, methods: Sequence[str]) -> tuple[object, ...]:
        """Several `d.*` getters of one torrent in one `system.multicall`; the first
        fault is raised (`UnknownTorrent` when it is gone)."""
        replies = await self.multicall([(method, [info_hash]) for method in methods])
        for reply in replies:
            if isinstance(reply, RpcFault):
                raise reply
        return tuple(replies)

    async def untie(self, info_hash: str) -> None:
        """`d.tied_to_file.set ""`: `d.erase` then deletes no `.torrent` file."""
        await self.call("d.tied_to_file.set", info_hash, "")


def _as_list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise MalformedReply(f"{what} returned {type(value).__name__}, expected a list")
    return value
