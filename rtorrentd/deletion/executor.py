"""Carry out a `Plan` in a crash-safe order, one torrent at a time.

`delete` is: re-read the torrent, work out its files (refusing on any doubt), stop,
close, delete the files, prune empty directories, erase. `trash` is the same
step for step, but its files are renamed into a recycle-bin entry instead of
unlinked (`trashing.move_files`, the one place the two differ). Each step is idempotent
and the erase comes last, so a crash anywhere leaves a torrent that the next poll
finishes (its rule still matches; files already gone count as gone) and never an
erased torrent whose files were silently left behind. `stop` is re-read + stop +
close; `remove` is re-read + erase.

The executor trusts nothing the engine decided: it re-reads each torrent by hash,
asks `still_matches` about the fresh values, and lets `planning` check every path
against the disk. Planning and unlinking run in worker threads: a torrent of tens
of thousands of files takes seconds of stat and unlink calls, which must not stop
the loop (watchdog pings, signals).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import anyio
import anyio.to_thread

from rtorrentd.config.model import DELETING, LEAVING, Action
from rtorrentd.deletion import (
    erase_handlers,
    exact,
    hashcheck,
    preflight,
    settings,
    tied,
    trashing,
)
from rtorrentd.deletion.carry_out import carry_out
from rtorrentd.deletion.content import DEFAULT_VERIFY_BUDGET, Verified
from rtorrentd.deletion.erase_handlers import ErasePolicy
from rtorrentd.deletion.erase_hooks import erase_policy
from rtorrentd.deletion.journal import Intent, Journal, JournalError
from rtorrentd.deletion.model import Deletion, Outcome
from rtorrentd.deletion.neighbours import PollSharing, Source
from rtorrentd.deletion.peers import Membership
from rtorrentd.deletion.results import CUT_SHORT, Result, StepResult, join, log_result, summary
from rtorrentd.deletion.spelling import Spellings
from rtorrentd.engine.plan import Decision, Plan, Step
from rtorrentd.errors import (
    RpcError,
    RpcFault,
    StepRefused,
    TransportError,
    TrashError,
    UnknownTorrent,
    UnsafeDeletion,
)
from rtorrentd.logger import get_logger
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import PATH_NAMES

log = get_logger("rtorrentd.deletion.executor")

# What the executor re-reads for each torrent besides what the rules need.
RECHECK_NAMES = PATH_NAMES

StillMatches = Callable[[Torrent, Step], bool]
# Held from a deletion's first unlink until its step has an outcome (the daemon
# defers a forced exit meanwhile, so the outcome is logged).
Unlinking = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True, slots=True)
class Context:
    """What every step needs: the client, the policy, the torrents loaded now, and
    `unlinking`, held from a deletion's first unlink until its step's outcome."""

    client: RtorrentClient
    allowed_roots: tuple[str, ...]
    names: frozenset[str]
    still_matches: StillMatches
    dry_run: bool
    unlinking: Unlinking = nullcontext
    policy: ErasePolicy = erase_handlers.NO_HANDLERS
    filesystems: preflight.Filesystems | None = None
    verify_budget: int = DEFAULT_VERIFY_BUDGET  # bytes hashed at most per deleted torrent
    journal: Journal | None = None
    resumed: frozenset[str] = frozenset()  # hashes whose recorded deletion is finished now
    trash_dir: str = ""  # the recycle bin ([trash] path); "" when there is none
    pending: Mapping[str, Intent] = field(default_factory=dict)  # recorded, by hash


# Read with the torrent's fresh values (`_reread`), for `_check_settled`.
SETTLED_METHODS = (*hashcheck.METHODS, "d.custom5")


def _check_settled(
    ctx: Context, step: Step, torrent: Torrent, settled: Sequence[object]
) -> StepResult | None:
    """No step on a torrent being hash-checked; no erase that ruTorrent's erasedata
    handler would turn into a deletion of its data (its `d.custom5` set).
    `settled` are the replies to `SETTLED_METHODS`, read with `torrent`."""
    hashing, checked, custom5 = settled
    busy = hashcheck.busy_reason(hashing, checked, torrent.started)
    if busy:
        return StepResult(step, Result.SKIPPED, busy)
    refusal = ctx.policy.refusal_for(str(custom5)) if step.action in LEAVING else ""
    return StepResult(step, Result.REFUSED, refusal) if refusal else None


async def _untie_if_needed(ctx: Context, info_hash: str) -> None:
    """Untie a tied `.torrent` where data lives, so `d.erase` cannot delete it."""
    (tied_to,) = await ctx.client.values(info_hash, ("d.tied_to_file",))
    if not tied_to:
        return
    loaded = await ctx.client.snapshot(RECHECK_NAMES)
    areas = [*ctx.allowed_roots, *(t.directory or "" for t in loaded)]
    areas += [t.path or "" for t in loaded]
    reason = tied.untie_reason(str(tied_to), areas)
    if reason:
        await ctx.client.untie(info_hash)
        log.info("tied.untied", hash=info_hash, file=str(tied_to), reason=reason)


class _PollAborted(Exception):
    """rtorrent went away mid-step: the step is logged, then `cause` stops the poll."""

    def __init__(self, result: StepResult, cause: TransportError) -> None:
        super().__init__(result.reason)
        self.result = result
        self.cause = cause


async def _reread(ctx: Context, step: Step) -> tuple[Torrent, tuple[object, ...]] | StepResult:
    """Fresh values for the step's torrent and its replies to `SETTLED_METHODS`
    (one round trip), or why the step is skipped."""
    try:
        fresh, settled = await ctx.client.torrent_and(
            step.hash, ctx.names | RECHECK_NAMES, SETTLED_METHODS
        )
    except UnknownTorrent:
        if step.hash in ctx.resumed:
            _forget(ctx, step.hash)
            return StepResult(
                step, Result.SKIPPED, "no longer loaded; its deletion record is cleared"
            )
        return StepResult(step, Result.SKIPPED, "the torrent is no longer loaded")
    # A deletion that has begun is finished whatever rtorrent did meanwhile: it may
    # have brought the torrent back incomplete, or started, so its rule no longer
    # matches. Every check of the deletion itself still applies.
    if step.hash not in ctx.resumed and not ctx.still_matches(fresh, step):
        return StepResult(step, Result.SKIPPED, f"no longer matches rule {step.rule!r}")
    return fresh, settled


def _needs_closing(torrent: Torrent) -> bool:
    """Whether `_stop_and_close` has anything to do. Unknown state counts as
    running: both calls are harmless on a stopped, closed torrent."""
    return torrent.started is not False or torrent.open is not False


async def _stop_and_close(client: RtorrentClient, torrent: Torrent) -> bool:
    """Stop, then close; whether anything had to be done (`_needs_closing`)."""
    # Stop first: the tracker gets the final totals, and a bare d.close would
    # leave d.state set (RTORRENT.md).
    if torrent.started is not False:
        await client.stop(torrent.hash)
    if _needs_closing(torrent):
        await client.close(torrent.hash)
        return True
    return False


async def _save_session(client: RtorrentClient, info_hash: str) -> None:
    """Write the stopped, closed state to rtorrent's session before any unlink.

    Otherwise an rtorrent killed before our d.erase restarts from its last saved
    session: the torrent comes back *started*, is hash-checked, finds its files
    gone and downloads again, so the rule (`complete and ...`) never matches it
    again and nothing finishes the deletion.
    """
    try:
        await client.save_session(info_hash)
    except UnknownTorrent:
        raise
    except RpcFault as fault:
        # No session directory (session.path unset): nothing to save, nothing to
        # come back from a crash either. Go on; the deletion itself is no less safe.
        log.warning("session.not_saved", hash=info_hash, reason=str(fault))


async def _do_stop(ctx: Context, step: Step, torrent: Torrent) -> StepResult:
    if not ctx.dry_run:
        await _stop_and_close(ctx.client, torrent)
    return StepResult(step, Result.DRY_RUN if ctx.dry_run else Result.DONE)


async def _do_remove(ctx: Context, step: Step, torrent: Torrent) -> StepResult:
    # d.erase of a running torrent is fine in rtorrent: it closes it and the
    # tracker hears "stopped"; the data stays (hooks were checked in `apply`).
    if not ctx.dry_run:
        await _untie_if_needed(ctx, torrent.hash)
        await ctx.client.erase(torrent.hash)
    return StepResult(step, Result.DRY_RUN if ctx.dry_run else Result.DONE, "data kept")


async def _do_set(ctx: Context, step: Step) -> StepResult:
    """relabel or throttle: set the value (the re-read found it not so already)."""
    if not ctx.dry_run:
        try:
            if step.action is Action.RELABEL:
                await settings.relabel(ctx.client, step.hash, step.target)
            else:
                await settings.throttle(ctx.client, step.hash, step.target)
        except StepRefused as exc:
            return StepResult(step, Result.REFUSED, str(exc))
    return StepResult(
        step, Result.DRY_RUN if ctx.dry_run else Result.DONE, f"set to {step.target!r}"
    )


async def _plan_files(
    ctx: Context, torrent: Torrent, shares: PollSharing, action: Action, *, last: bool
) -> exact.ExactDeletion:
    """The fresh file list by exact names (from the torrent's metainfo), checked
    against the disk (and, to trash, the bin against it); raises `UnsafeDeletion`.

    `last`: the plan that is carried out. Only it asks every rtorrent for the
    torrents loaded since (`neighbours.Sharing.refresh`, a scan of rtorrent's
    whole list): an earlier plan of the step is only a preflight, planned again
    after the close from a refreshed index before anything is unlinked.
    """
    entries = await ctx.client.files(torrent.hash)
    # One round of directory listings for the sharing look-up and the planning
    # (a flat download directory of 10,000 entries takes milliseconds to list).
    spellings = Spellings()
    sharing = await shares.get()
    shared = await sharing.shared_paths(torrent, entries, refresh=last, spellings=spellings)

    def preflight_checks(deletion: Deletion) -> None:
        # Before anything is stopped: a deletion that cannot be carried out, or a
        # root that is not the disk it was, must not leave a stopped torrent behind.
        if ctx.filesystems is not None:
            preflight.check_filesystem(deletion.root, ctx.filesystems)
        preflight.check_writable(deletion)
        if action is Action.TRASH:
            trashing.check_bin(ctx.trash_dir, deletion)

    return await exact.plan_exact(
        ctx.client,
        torrent,
        entries,
        ctx.allowed_roots,
        shared,
        check=preflight_checks,
        spellings=spellings,
    )


async def _do_delete(ctx: Context, step: Step, torrent: Torrent, shares: PollSharing) -> StepResult:
    """`delete` or `trash`: the same checks and order; only the last step differs."""
    to_bin = step.action is Action.TRASH
    if to_bin and not ctx.trash_dir:
        why = "there is no recycle bin ([trash] path) to trash it into; add [trash] again"
        return StepResult(step, Result.REFUSED, why + ", or finish it by hand")
    started = _started_before(ctx, torrent)
    try:
        # Planned again after the close when it is needed: only that plan refreshes.
        closing = not ctx.dry_run and _needs_closing(torrent)
        planned = await _plan_files(ctx, torrent, shares, step.action, last=not closing)
        if step.hash not in ctx.resumed:  # its files may be gone by our own hand
            _check_not_vanished(torrent, planned.deletion)
        # Before the stop: a torrent whose files are not its own keeps seeding.
        checked = await exact.verify(ctx.client, planned, ctx.verify_budget)
        if ctx.dry_run:
            deletion = planned.deletion
            left, kept = summary(deletion), deletion.kept_shared
            if to_bin:
                moving = f"would move {len(deletion.to_unlink)} file(s) into the recycle bin"
                return StepResult(step, Result.DRY_RUN, join(moving, left), 0, kept)
            return StepResult(step, Result.DRY_RUN, left, deletion.freed_bytes, kept)
        _record(ctx, step, started)
        if await _stop_and_close(ctx.client, torrent):
            # rtorrent may have written (mtime) or flushed until the close: plan
            # again from the closed files, or carry_out would find them "changed";
            # hash again if any file is not the one hashed (carry_out unlinks only
            # the planned identities, so what was hashed is what goes).
            replanned = await _plan_files(ctx, torrent, shares, step.action, last=True)
            if not exact.unchanged(planned, replanned):
                checked = await exact.verify(ctx.client, replanned, ctx.verify_budget)
            planned = replanned
        await _save_session(ctx.client, step.hash)
        if to_bin:
            files = await anyio.to_thread.run_sync(
                trashing.session_files, planned.session_dir, step.hash
            )
    except UnsafeDeletion as exc:
        return StepResult(step, Result.REFUSED, str(exc))
    except JournalError as exc:
        return StepResult(step, Result.FAILED, f"{exc}; nothing was stopped or deleted")
    with ctx.unlinking():
        if to_bin:
            record = trashing.torrent_record(
                step.hash,
                torrent.name,
                planned.deletion,
                files[1],
                multi_file=planned.meta.multi_file,
                started=started,
            )
            job = trashing.Job(ctx.trash_dir, record, files[0], step.rule)
            return await _trash_and_erase(ctx, step, planned.deletion, checked, job)
        return await _delete_and_erase(ctx, step, planned.deletion, checked)


def _started_before(ctx: Context, torrent: Torrent) -> bool:
    """Whether the torrent ran before rtorrentd stopped it: as recorded when its
    deletion began (a resumed one is stopped by our own hand), else as it is now."""
    intent = ctx.pending.get(torrent.hash)
    if intent is not None and intent.started is not None:
        return intent.started
    return torrent.started is not False


async def _trash_and_erase(
    ctx: Context, step: Step, deletion: Deletion, checked: Verified, job: trashing.Job
) -> StepResult:
    intent = ctx.pending.get(step.hash)
    began = None if intent is None else intent.began
    if began is not None and not deletion.to_unlink:
        in_bin = trashing.in_bin_since
        if await anyio.to_thread.run_sync(in_bin, ctx.trash_dir, step.hash, began):
            # A crash after the entry was made, before the erase: it is in the bin.
            outcome = await delete_files(deletion)
            return await _erase_deleted(ctx, step, deletion, outcome, "in the recycle bin already")
    _log_deleting(step, deletion, checked, into=ctx.trash_dir)
    try:
        trashed = await trashing.move(job, deletion)
    except TrashError as exc:
        why = f"{exc}; the files that moved were put back, the torrent stays stopped"
        return StepResult(step, Result.FAILED, why, 0, deletion.kept_shared)
    if trashed.entry is None:
        skipped = "; ".join(f"{n.path}: {n.reason}" for n in trashed.outcome.skipped)
        reason = f"not erased, files changed under us: {skipped}; the files moved were put back"
        return StepResult(step, Result.FAILED, reason, 0, deletion.kept_shared)
    manifest = trashed.entry.manifest
    note = f"moved {len(manifest.items)} file(s), {manifest.size} bytes, into the recycle bin"
    note += f" as {trashed.entry.name}"
    return await _erase_deleted(ctx, step, deletion, trashed.outcome, note)


async def delete_files(deletion: Deletion) -> Outcome:
    """`carry_out` in a worker thread, so that tens of thousands of unlinks do not
    stall the loop (watchdog pings, signals). Never abandoned: a cancelled caller
    waits for the unlinks under way, and gets the outcome to report."""
    return await anyio.to_thread.run_sync(carry_out, deletion, abandon_on_cancel=False)


async def _delete_and_erase(
    ctx: Context, step: Step, deletion: Deletion, checked: Verified
) -> StepResult:
    _log_deleting(step, deletion, checked)
    outcome = await delete_files(deletion)
    if not outcome.complete:
        skipped = "; ".join(f"{n.path}: {n.reason}" for n in outcome.skipped)
        reason = f"not erased, files changed under us: {skipped}"
        return StepResult(step, Result.FAILED, reason, outcome.freed_bytes, deletion.kept_shared)
    return await _erase_deleted(ctx, step, deletion, outcome)


def _log_deleting(step: Step, deletion: Deletion, checked: Verified, into: str = "") -> None:
    """Written before the first unlink or move: if we die now, the log says what was
    going on."""
    log.info(
        "action.deleting",
        action=step.action.value,
        hash=step.hash,
        name=step.name,
        files=len(deletion.to_unlink),
        kept_shared=list(deletion.kept_shared),
        freed_bytes=0 if into else deletion.freed_bytes,
        checked_pieces=checked.pieces,
        checked_bytes=checked.bytes_read,
        bin=into or None,
    )


def _check_not_vanished(torrent: Torrent, deletion: Deletion) -> None:
    """Refuse a torrent all of whose files are missing, unless it is stopped and
    closed already.

    Stopped and closed with its files gone is how our own interrupted deletion
    leaves a torrent (the session was saved before the first unlink): finish it.
    Started or open with every file gone is rather an unmounted disk or a moved
    directory; erasing it would leave the data orphaned when the disk comes back.
    """
    gone_entirely = not deletion.to_unlink and not deletion.kept_shared
    if gone_entirely and (torrent.started or torrent.open):
        raise UnsafeDeletion(
            f"refusing to delete {torrent.name!r}: none of its files is where rtorrent "
            f"says ({torrent.directory}), yet rtorrent has it started or open; is the "
            "disk mounted, or was the data moved? Stop it in rtorrent to confirm the "
            "data is gone, and rtorrentd will then remove it"
        )


async def _erase_deleted(
    ctx: Context, step: Step, deletion: Deletion, outcome: Outcome, moved: str = ""
) -> StepResult:
    """The last step: the files are gone (or in the bin: `moved` says so), so a
    failure here must say so."""
    freed, kept = outcome.freed_bytes, deletion.kept_shared
    gone = "files moved into the recycle bin" if moved else "files deleted"
    try:
        await _untie_if_needed(ctx, step.hash)
        await ctx.client.erase(step.hash)
    except UnknownTorrent:
        _forget(ctx, step.hash)
        note = f"{gone}; the torrent was erased by someone else meanwhile"
        reason = join(note, moved, summary(deletion, outcome))
        return StepResult(step, Result.DONE, reason, freed, kept)
    except (RpcError, TransportError) as exc:
        reason = f"{gone} ({freed} bytes freed) but d.erase failed ({exc}); "
        result = StepResult(step, Result.FAILED, reason + "the next poll erases it", freed, kept)
        if isinstance(exc, TransportError):
            raise _PollAborted(result, exc) from exc
        return result
    _forget(ctx, step.hash)
    return StepResult(step, Result.DONE, join(moved, summary(deletion, outcome)), freed, kept)


def _record(ctx: Context, step: Step, started: bool) -> None:
    """Write the deletion ahead, before `d.stop`: from here on it is finished by a
    later poll whatever happens (`journal`). Raises `JournalError`."""
    if ctx.journal is not None and step.hash not in ctx.pending:
        intent = Intent(step.hash, step.name, step.rule, time.time(), step.action.value, started)
        ctx.journal.begin(intent)


def _forget(ctx: Context, info_hash: str) -> None:
    """The torrent is erased: its record goes. A record that cannot be removed is
    found again next poll, and cleared then (the torrent is no longer loaded)."""
    if ctx.journal is None:
        return
    try:
        ctx.journal.end(info_hash)
    except JournalError as exc:
        log.warning("journal.not_cleared", hash=info_hash, error=str(exc))


def with_resumed(steps: Sequence[Step], pending: Sequence[Intent]) -> tuple[Step, ...]:
    """Recorded deletions first, as `delete` steps; the plan's own step for such a
    torrent (whatever its action now) gives way to it."""
    resumed = tuple(
        Step(i.hash, i.name, Decision(_resumed_action(i), i.rule), (), None) for i in pending
    )
    hashes = {i.hash for i in pending}
    return (*resumed, *(s for s in steps if s.hash not in hashes))


def _resumed_action(intent: Intent) -> Action:
    return Action.TRASH if intent.action == Action.TRASH.value else Action.DELETE


async def apply_step(ctx: Context, step: Step, shares: PollSharing) -> StepResult:
    """Carry out one step; failures of this torrent are returned, not raised.

    A `TransportError` is not about this torrent: it is raised (wrapped with the
    step's result, for the log) so the poll stops and the daemon backs off.
    """
    try:
        reread = await _reread(ctx, step)
        if isinstance(reread, StepResult):
            return reread
        fresh, settled = reread
        unsettled = _check_settled(ctx, step, fresh, settled)
        if unsettled is not None:
            return unsettled
        if step.action in DELETING:
            return await _do_delete(ctx, step, fresh, shares)
        if step.action is Action.STOP:
            return await _do_stop(ctx, step, fresh)
        if step.action is Action.REMOVE:
            return await _do_remove(ctx, step, fresh)
        if step.action in (Action.RELABEL, Action.THROTTLE):
            return await _do_set(ctx, step)
        return StepResult(step, Result.SKIPPED, f"nothing to do for {step.action.value}")
    except UnknownTorrent:
        return StepResult(step, Result.SKIPPED, "the torrent disappeared during the step")
    except (RpcError, OSError) as exc:
        return StepResult(step, Result.FAILED, str(exc))
    except TransportError as exc:
        reason = f"rtorrent became unreachable ({exc}); the next poll resumes this step"
        raise _PollAborted(StepResult(step, Result.FAILED, reason), exc) from exc


async def apply(
    plan: Plan,
    client: RtorrentClient,
    *,
    allowed_roots: Sequence[str],
    names: frozenset[str],
    still_matches: StillMatches,
    dry_run: bool,
    should_stop: Callable[[], bool] = lambda: False,
    unlinking: Unlinking = nullcontext,
    filesystems: preflight.Filesystems | None = None,
    verify_budget: int = DEFAULT_VERIFY_BUDGET,
    journal: Journal | None = None,
    other_rtorrents: Sequence[tuple[str, RtorrentClient]] = (),
    member: Membership | None = None,
    trash_dir: str = "",
) -> tuple[StepResult, ...]:
    """Carry out every step of `plan`, logging one event per step.

    A transport failure stops the poll (rtorrent is gone; the next poll resumes):
    the step it interrupted is logged as failed, then the `TransportError` is
    raised. Anything that concerns one torrent only is logged and the others go on.
    `should_stop` is asked before each step (a stop signal): a step under way is
    always finished, so no torrent is left with its files deleted but not erased.
    `unlinking` is held while a deletion unlinks and erases (`Context.unlinking`).
    A step cut short by cancellation (the poll's deadline) is logged as failed.
    `filesystems` are the allowed roots' filesystems when the daemon started
    (`preflight.remember`); without them, the first poll's stand in. With a
    `journal`, each deletion is recorded before `d.stop` and every recorded one
    is finished first (raises `JournalError` when the records cannot be read).
    `other_rtorrents` (URL, client) share the disk: their torrents' files are kept
    like a cross-seed's (`neighbours`); one that cannot be read refuses deletions.
    `member`: this instance's place among the daemon's instances (`peers`): those
    whose data can share a victim's filesystem count too, within `peers.PEER_TIMEOUT`
    in all (a torrent one of them erased since it published lists no file now).
    `trash_dir` is the recycle bin that `trash` steps move files into.
    """
    pending = journal.pending() if journal is not None else ()
    steps = with_resumed(plan.steps, pending)
    leaving = any(s.action in LEAVING for s in steps)
    policy = await erase_policy(client) if leaving else erase_handlers.NO_HANDLERS
    hooks = policy.refusal()
    known = filesystems if filesystems is not None else preflight.remember(allowed_roots)
    ctx = Context(
        client,
        tuple(allowed_roots),
        names,
        still_matches,
        dry_run,
        unlinking,
        policy,
        known,
        verify_budget,
        journal,
        frozenset(i.hash for i in pending),
        trash_dir,
        {i.hash: i for i in pending},
    )
    sources = (Source("", client), *(Source(url, c) for url, c in other_rtorrents))
    neighbours = tuple if member is None else member.others
    shares = PollSharing(sources, ctx.allowed_roots, neighbours=neighbours)
    results: list[StepResult] = []
    for done, step in enumerate(steps):
        if should_stop():
            log.info("poll.interrupted", reason="stopping", steps_left=len(steps) - done)
            break
        if hooks and step.action in LEAVING:
            result = StepResult(step, Result.REFUSED, hooks)
        else:
            try:
                result = await apply_step(ctx, step, shares)
            except _PollAborted as aborted:
                log_result(aborted.result, dry_run=dry_run)
                raise aborted.cause from None
            except anyio.get_cancelled_exc_class():
                log_result(StepResult(step, Result.FAILED, CUT_SHORT), dry_run=dry_run)
                raise
        log_result(result, dry_run=dry_run)
        if result.result is Result.DONE and step.action in LEAVING:
            shares.forget(step.hash)  # erased: its files protect nothing any more
        results.append(result)
    return tuple(results)
