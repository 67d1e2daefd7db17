"""Carry out a `Plan` in a crash-safe order, one torrent at a time.

`delete` is: re-read the torrent, work out its files (refusing on any doubt), stop,
close, delete the files, prune empty directories, erase. Each step is idempotent
and the erase comes last, so a crash anywhere leaves a torrent that the next poll
finishes (its rule still matches; files already gone count as gone) and never an
erased torrent whose files were silently left behind. `stop` is re-read + stop +
close; `remove` is re-read + erase.

The executor trusts nothing the engine decided: it re-reads each torrent by hash,
asks `still_matches` about the fresh values, and lets `fsdelete` check every path
against the disk.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from rtorrentd import fsdelete
from rtorrentd.client import RtorrentClient
from rtorrentd.config import Action
from rtorrentd.engine import Plan, Step
from rtorrentd.errors import RpcError, UnknownTorrent, UnsafeDeletion
from rtorrentd.torrent import FileEntry, Torrent

log = structlog.get_logger("rtorrentd.executor")

# rtorrent 0.9.8's own handlers of `event.download.erased`; any other key may be a
# user's hook that deletes data (`rm -rf` of d.base_path), which would break both
# `remove` (keep data) and our care for shared and hard-linked files.
DEFAULT_ERASE_HANDLERS = frozenset({"!_download_list", "~_delete_tied"})

# What the executor re-reads for each torrent besides what the rules need.
RECHECK_NAMES = frozenset({"path", "directory", "multi_file"})

StillMatches = Callable[[Torrent, Step], bool]


@dataclass(frozen=True, slots=True)
class StepResult:
    """What became of one step: `result` is done, dry-run, skipped, refused or failed."""

    step: Step
    result: str
    reason: str = ""
    freed_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Context:
    """What every step needs: the client, the policy, and the torrents loaded now."""

    client: RtorrentClient
    allowed_roots: tuple[str, ...]
    names: frozenset[str]
    still_matches: StillMatches
    dry_run: bool


def file_paths(directory: str, entries: Sequence[FileEntry]) -> set[str]:
    """Absolute, normalised paths of a torrent's files."""
    return {posixpath.normpath(posixpath.join(directory, e.path)) for e in entries}


async def shared_paths(
    ctx: Context, torrent: Torrent, cache: dict[str, frozenset[str]]
) -> set[str]:
    """The files that every other torrent loaded right now lists.

    All of them, not only those under this torrent's directory: cross-seed tools
    also symlink the same data from elsewhere, and fsdelete resolves such links.
    The list of torrents is read fresh for each deletion (one was added, one
    erased meanwhile); file lists are cached per poll, keyed by hash.
    """
    loaded = await ctx.client.snapshot(RECHECK_NAMES)
    others = {t.hash: t for t in loaded if t.hash != torrent.hash}
    missing = [h for h in others if h not in cache]
    for info_hash, entries in (await ctx.client.all_files(missing)).items():
        cache[info_hash] = frozenset(file_paths(others[info_hash].directory or "", entries))
    return set().union(*(cache.get(h, frozenset()) for h in others))


async def erase_handlers(client: RtorrentClient) -> frozenset[str]:
    """Keys of `event.download.erased` that are not rtorrent's own."""
    keys = await client.call("method.list_keys", "", "event.download.erased")
    if not isinstance(keys, list):
        return frozenset({repr(keys)})
    return frozenset(str(k) for k in keys) - DEFAULT_ERASE_HANDLERS


def _hooks_reason(hooks: frozenset[str]) -> str:
    return (
        "rtorrent runs extra commands when a torrent is erased "
        f"(event.download.erased: {', '.join(sorted(hooks))}); they may delete data "
        "rtorrentd must keep. Remove them from rtorrent.rc: rtorrentd deletes data itself."
    )


async def _reread(ctx: Context, step: Step) -> Torrent | StepResult:
    """Fresh values for the step's torrent, or why the step is skipped."""
    try:
        fresh = await ctx.client.torrent(step.hash, ctx.names | RECHECK_NAMES)
    except UnknownTorrent:
        return StepResult(step, "skipped", "the torrent is no longer loaded")
    if not ctx.still_matches(fresh, step):
        return StepResult(step, "skipped", f"no longer matches rule {step.rule!r}")
    return fresh


async def _stop_and_close(client: RtorrentClient, torrent: Torrent) -> None:
    # Stop first: the tracker gets the final totals, and a bare d.close would
    # leave d.state set (RTORRENT.md).
    if torrent.started:
        await client.stop(torrent.hash)
    if torrent.open or torrent.started:
        await client.close(torrent.hash)


async def _do_stop(ctx: Context, step: Step, torrent: Torrent) -> StepResult:
    if not ctx.dry_run:
        await _stop_and_close(ctx.client, torrent)
    return StepResult(step, "dry-run" if ctx.dry_run else "done")


async def _do_remove(ctx: Context, step: Step, torrent: Torrent) -> StepResult:
    if not ctx.dry_run:
        await ctx.client.erase(torrent.hash)
    return StepResult(step, "dry-run" if ctx.dry_run else "done")


async def _do_delete(
    ctx: Context, step: Step, torrent: Torrent, cache: dict[str, frozenset[str]]
) -> StepResult:
    entries = await ctx.client.files(torrent.hash)
    shared = await shared_paths(ctx, torrent, cache)
    try:
        deletion = fsdelete.plan_deletion(
            torrent.directory or "",
            entries,
            ctx.allowed_roots,
            shared,
            multi_file=bool(torrent.multi_file),
        )
    except UnsafeDeletion as exc:
        return StepResult(step, "refused", str(exc))
    if ctx.dry_run:
        return StepResult(step, "dry-run", _kept_note(deletion), deletion.freed_bytes)
    await _stop_and_close(ctx.client, torrent)
    # Written before the first unlink: if we die now, the log says what was going on.
    log.info(
        "action.deleting",
        hash=step.hash,
        name=step.name,
        files=len(deletion.to_unlink),
        kept_shared=len(deletion.kept_shared),
    )
    outcome = fsdelete.carry_out(deletion)
    if not outcome.complete:
        skipped = "; ".join(f"{n.path}: {n.reason}" for n in outcome.skipped)
        return StepResult(
            step, "failed", f"not erased, files changed under us: {skipped}", outcome.freed_bytes
        )
    await ctx.client.erase(torrent.hash)
    return StepResult(step, "done", _kept_note(deletion), outcome.freed_bytes)


def _kept_note(deletion: fsdelete.Deletion) -> str:
    if not deletion.kept_shared:
        return ""
    return f"kept {len(deletion.kept_shared)} file(s) that another loaded torrent uses"


async def apply_step(ctx: Context, step: Step, cache: dict[str, frozenset[str]]) -> StepResult:
    """Carry out one step; failures of this torrent are returned, not raised."""
    try:
        fresh = await _reread(ctx, step)
        if isinstance(fresh, StepResult):
            return fresh
        if step.action is Action.DELETE:
            return await _do_delete(ctx, step, fresh, cache)
        if step.action is Action.STOP:
            return await _do_stop(ctx, step, fresh)
        if step.action is Action.REMOVE:
            return await _do_remove(ctx, step, fresh)
        return StepResult(step, "skipped", f"nothing to do for {step.action.value}")
    except UnknownTorrent:
        return StepResult(step, "skipped", "the torrent disappeared during the step")
    except (RpcError, OSError) as exc:
        return StepResult(step, "failed", str(exc))


def _log_result(result: StepResult) -> None:
    step = result.step
    event = {
        "done": "action.done",
        "dry-run": "action.planned",
        "skipped": "action.skipped",
        "refused": "action.refused",
        "failed": "action.failed",
    }[result.result]
    level = {"refused": "warning", "failed": "error"}.get(result.result, "info")
    getattr(log, level)(
        event,
        action=step.action.value,
        hash=step.hash,
        name=step.name,
        rule=step.rule,
        values=dict(step.values),
        freed_bytes=result.freed_bytes,
        result=result.result,
        reason=result.reason or None,
    )


async def apply(
    plan: Plan,
    client: RtorrentClient,
    *,
    allowed_roots: Sequence[str],
    names: frozenset[str],
    still_matches: StillMatches,
    dry_run: bool,
) -> tuple[StepResult, ...]:
    """Carry out every step of `plan`, logging one event per step.

    A transport failure stops the poll (rtorrent is gone; the next poll resumes);
    anything that concerns one torrent only is logged and the others go on.
    """
    ctx = Context(client, tuple(allowed_roots), names, still_matches, dry_run)
    risky = [s for s in plan.steps if s.action in (Action.REMOVE, Action.DELETE)]
    hooks = await erase_handlers(client) if risky else frozenset()
    cache: dict[str, frozenset[str]] = {}
    results: list[StepResult] = []
    for step in plan.steps:
        if hooks and step in risky:
            result = StepResult(step, "refused", _hooks_reason(hooks))
        else:
            result = await apply_step(ctx, step, cache)
        _log_result(result)
        results.append(result)
    return tuple(results)
