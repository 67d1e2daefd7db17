"""`rtorrentd run | check | plan | list | orphans | trash | version`.

Exit codes: 0 success, 1 rtorrent unreachable or answering nonsense, 2 bad usage or
an invalid configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO, TypeVar

from rtorrentd import __version__
from rtorrentd.errors import ConfigError, RpcError, RtorrentdError, TransportError

if TYPE_CHECKING:
    from rtorrentd.config.instances import Instances
    from rtorrentd.config.model import Config, MetricsSettings
    from rtorrentd.deletion.peers import Peers
    from rtorrentd.engine.plan import Plan
    from rtorrentd.rtorrent.client import RtorrentClient
    from rtorrentd.rtorrent.transport import Transport
    from rtorrentd.service.metrics import Metrics
    from rtorrentd.service.notify import Notifications
    from rtorrentd.torrent import Torrent

# Start-up is most of a one-shot command's time: each command imports what it
# needs inside its handler (`version` nothing, `plan` no daemon machinery, SCGI
# no httpx), which is why this module imports only the standard library and errors.
EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2
ONCE_FLUSH = 60.0  # seconds `run --once` waits for its `[notify]` messages to go

T = TypeVar("T")


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """`anyio.run(work)`, with the result handed over outside the main task.

    asyncio formats the main task's repr, its result included, when it puts the
    SIGINT handler back (`signal.getsignal` builds a ValueError message from the
    handler, which holds the task): a plan of thousands of steps, or a snapshot of
    10,000 torrents, took tens of milliseconds to format for nothing.
    """
    import anyio

    results: list[T] = []

    async def main() -> None:
        results.append(await work())

    anyio.run(main)
    return results[0]


def client_for(config: Config) -> RtorrentClient:
    """A client for the rtorrent the configuration names; reads the password file."""
    from rtorrentd.rtorrent.client import RtorrentClient
    from rtorrentd.rtorrent.transport import open_transport

    settings = config.rtorrent
    password = None if settings.password_file is None else read_password(settings.password_file)
    transport = open_transport(
        settings.url,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        max_reply=settings.max_reply,
        username=settings.username,
        password=password,
        tls_verify=settings.tls_verify,
        ca_file=settings.ca_file,
    )
    return RtorrentClient(transport)


def read_password(path: str) -> str:
    """The password kept in `path`, less one trailing newline (editors add one).

    Raises `ConfigError` naming the file when it cannot be read or is empty; logs a
    warning when its group or everyone may read it.
    """
    from rtorrentd.config.files import Refused, read_regular_file

    try:
        contents = read_regular_file(path, 64 * 1024, "64 KiB")
        mode, text = contents.mode, contents.data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"password_file {path}: cannot read it: {exc.strerror}") from exc
    except Refused as refused:
        problem = f"password_file {path}: cannot read it: it is {refused.reason}"
        raise ConfigError(f"{problem}; write the password in a regular file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"password_file {path}: not UTF-8 text (byte {exc.start})") from exc
    if mode & 0o044:
        import stat

        from rtorrentd.logger import get_logger

        get_logger("rtorrentd.cli").warning(
            "config.password_file_readable",
            path=path,
            mode=f"{stat.S_IMODE(mode):04o}",
            hint=f"chmod 600 {path} (owned by the user rtorrentd runs as)",
        )
    password = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not password:
        raise ConfigError(f"password_file {path}: the file is empty; write the password in it")
    return password


def _cmd_version(_args: argparse.Namespace, out: TextIO) -> int:
    print(f"rtorrentd {__version__}", file=out)
    return EXIT_OK


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from rtorrentd.config.instances import load_instances
    from rtorrentd.config.load import config_warnings
    from rtorrentd.redact import redact_url

    instances = load_instances(args.config)
    for config in instances.configs.values():
        for warning in config_warnings(config):
            print(f"warning: {warning}", file=sys.stderr)
        deleting = sum(1 for rule in config.rules if rule.action.value == "delete")
        rules = _count(len(config.rules), "rule")
        policies = _count(len(config.space), "space policy", "space policies")
        trashing = sum(1 for rule in config.rules if rule.action.value == "trash")
        deletes = f"{deleting} delete" + (f", {trashing} trash" if trashing else "")
        bin_dir = "" if config.trash is None else f", recycle bin {config.trash.path}"
        print(
            f"{config.source}: valid; {rules} ({deletes}), {policies}, "
            f"rtorrent at {redact_url(config.rtorrent.url)}{bin_dir}",
            file=out,
        )
    if instances.directory:
        print(f"{args.config}: {_count(len(instances.configs), 'instance')}", file=out)
    return EXIT_OK


async def _snapshot_and_plan(config: Config, now: float) -> Plan:
    from rtorrentd.engine.memory import Memory
    from rtorrentd.service.planning import plan_now

    # The same observation as a poll (disk space, file facts), without acting.
    return await plan_now(client_for(config), config, Memory.empty(), now)


async def _plan_each(configs: Mapping[str, Config], now: float) -> dict[str, Plan | Exception]:
    """Every instance's plan, read at once: a slow rtorrent delays none of the others."""
    import anyio

    plans: dict[str, Plan | Exception] = {}

    async def plan_one(name: str, config: Config) -> None:
        try:
            plans[name] = await _snapshot_and_plan(config, now)
        except (RtorrentdError, OSError) as exc:
            plans[name] = exc

    async with anyio.create_task_group() as tasks:
        for name, config in configs.items():
            tasks.start_soon(plan_one, name, config)
    return {name: plans[name] for name in configs}


def json_lines(items: Sequence[object]) -> str:
    """A JSON list with one item per line: as readable as an indented one, and
    written by json's C encoder (an indented dump is pure Python, which costs
    `plan` a tenth of a second per few thousand steps)."""
    import json

    if not items:
        return "[]"
    encode = json.JSONEncoder(ensure_ascii=False).encode
    return "[\n" + ",\n".join(map(encode, items)) + "\n]"


def _cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from rtorrentd.config.instances import load_instances
    from rtorrentd.service.report import format_plan_table, plan_to_json

    instances = load_instances(args.config)
    if not instances.directory:
        (config,) = instances.configs.values()
        now = time.time()
        result = run_async(lambda: _snapshot_and_plan(config, now))
        if args.format == "json":
            print(json_lines(plan_to_json(result)), file=out)
        else:
            print(format_plan_table(result), file=out)
        return EXIT_OK
    now = time.time()
    plans = run_async(lambda: _plan_each(instances.configs, now))
    code, steps, tables = EXIT_OK, [], []
    for name, plan in plans.items():
        if isinstance(plan, Exception):
            print(f"error: {name}: {plan}", file=sys.stderr)
            code = EXIT_UNREACHABLE if isinstance(plan, RtorrentdError) else code
            continue
        steps += [{"instance": name, **step} for step in plan_to_json(plan)]
        tables.append(f"== {name} ==\n{format_plan_table(plan)}")
    if args.format == "json":
        print(json_lines(steps), file=out)
    else:
        print("\n\n".join(tables), file=out)
    return code


def format_torrent_table(torrents: Sequence[Torrent]) -> str:
    """A table of torrents for people: state, ratio, size, name."""
    from rtorrentd.service.report import human_bytes

    lines = [f"{'HASH':<10} {'STATE':<13} {'RATIO':>6} {'SIZE':>10}  NAME"]
    for t in torrents:
        state = "complete" if t.complete else "partial"
        state += "" if t.started else "/stop"
        ratio = f"{t.ratio:.2f}" if t.ratio is not None else "?"
        lines.append(
            f"{t.hash[:10]:<10} {state:<13} {ratio:>6} {human_bytes(t.size or 0):>10}  {t.name}"
        )
    lines.append(f"{len(torrents)} torrents")
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    import anyio
    import structlog

    from rtorrentd.config.instances import load_instances
    from rtorrentd.service.logs import configure_logging, default_format

    configure_logging(args.log_format or default_format(), args.log_level)
    try:
        instances = load_instances(args.config)
    except ConfigError as exc:
        # One event at error priority, rendered like every other one: journald
        # would file plain stderr lines as separate entries at info priority.
        # Exit 2, which the units name in RestartPreventExitStatus=.
        structlog.get_logger("rtorrentd").error("config.invalid", path=args.config, error=str(exc))
        return EXIT_USAGE
    if not args.once:
        # The flag, not the combination: a reload may change `[daemon] dry_run`.
        transport_for = lambda c: client_for(c).transport  # noqa: E731
        observer = _metrics(instances.metrics)
        if observer is False:
            return EXIT_UNREACHABLE
        try:
            code: int = anyio.run(_serve, instances, args.dry_run, transport_for, observer)
        finally:
            if observer is not None:
                observer.shutdown()
        return code
    metrics = None
    if instances.metrics is not None:
        from rtorrentd.config.model import MetricsSettings
        from rtorrentd.service.metrics import Metrics

        # The textfile only: nothing would be there to scrape an endpoint.
        metrics = Metrics(MetricsSettings(textfile=instances.metrics.textfile))
    anyio.run(_poll_each_once, instances, args.dry_run, metrics)
    return EXIT_OK


async def _serve(
    instances: Instances,
    force_dry_run: bool,
    transport_for: Callable[[Config], Transport],
    observer: Metrics | None,
) -> int:
    """`serve`, with `[notify]`'s sender made in the event loop it belongs to."""
    from rtorrentd.service.daemon import serve

    outbox = _notifications(instances)
    return await serve(instances, force_dry_run, transport_for, observer=observer, outbox=outbox)


def _notifications(instances: Instances) -> Notifications | None:
    """The sender `[notify]` asks for, None without; Apprise is imported only then."""
    if instances.notify is None:
        return None
    import os

    from rtorrentd.service.instance import retry_base
    from rtorrentd.service.notify import Notifications

    return Notifications(instances.notify, base=retry_base(os.environ))


def _metrics(settings: MetricsSettings | None) -> Metrics | Literal[False] | None:
    """The metrics `[metrics]` asks for, serving; None without; False (logged) when
    they cannot listen. prometheus_client is imported only here, only then."""
    if settings is None:
        return None
    import structlog

    from rtorrentd.service.metrics import Metrics, MetricsError

    metrics = Metrics(settings)
    try:
        metrics.start()
    except MetricsError as exc:
        structlog.get_logger("rtorrentd").error("metrics.unavailable", error=str(exc))
        return False
    return metrics


async def _poll_each_once(
    instances: Instances,
    force_dry_run: bool,
    metrics: Metrics | None,
) -> None:
    """`run --once`: one poll of every instance, one after the other; the first
    that cannot reach its rtorrent ends the command. Each with the same record of
    deletions under way as the daemon's: a cron job finishes what an interrupted
    run began. The textfile, if any, is written after each; `[notify]`'s messages
    are sent before the command ends (`ONCE_FLUSH` seconds at most)."""
    import anyio

    outbox = _notifications(instances)
    if outbox is None:
        await _poll_each(instances, force_dry_run, metrics, None)
        return
    failure: RtorrentdError | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(outbox.run)
        try:
            await _poll_each(instances, force_dry_run, metrics, outbox)
        except RtorrentdError as exc:  # raised below, once the messages went
            failure = exc
        await outbox.flush(ONCE_FLUSH)
        tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _poll_each(
    instances: Instances,
    force_dry_run: bool,
    metrics: Metrics | None,
    outbox: Notifications | None,
) -> None:
    import time

    import structlog

    from rtorrentd.deletion.peers import Membership, Peers
    from rtorrentd.engine.memory import Memory
    from rtorrentd.redact import redact_url
    from rtorrentd.service.instance import journal_for
    from rtorrentd.service.notices import Notices
    from rtorrentd.service.poll import poll_once

    clients = {name: client_for(config) for name, config in instances.configs.items()}
    # The instances of a directory keep each other's files: each publishes its list
    # first, so that the first to poll knows the others' too (`deletion.peers`).
    peers = Peers() if instances.directory else None
    if peers is not None:
        await _publish_each(peers, instances, clients)
    for name, config in instances.configs.items():
        with structlog.contextvars.bound_contextvars(instance=name):
            dry_run = force_dry_run or config.daemon.dry_run
            client = clients[name]
            journal = journal_for(config, name if instances.directory else None)
            member = None if peers is None else Membership(peers, name)
            started = time.monotonic()
            notices = None
            if outbox is not None and instances.notify is not None:
                notices = Notices(name if instances.directory else None, instances.notify, outbox)
            try:
                result = await poll_once(
                    client,
                    config,
                    Memory.empty(),
                    dry_run=dry_run,
                    now=time.time(),
                    journal=journal,
                    member=member,
                )
            except (TransportError, RpcError) as exc:
                if metrics is not None:
                    metrics.polled(name, None, time.monotonic() - started, up=False)
                if notices is not None:
                    notices.unreachable(redact_url(config.rtorrent.url), str(exc))
                raise
            if metrics is not None:
                metrics.polled(name, result, time.monotonic() - started, up=True)
            if notices is not None:
                notices.polled(result, dry_run)


async def _publish_each(
    peers: Peers, instances: Instances, clients: Mapping[str, RtorrentClient]
) -> None:
    """Every instance joins `peers` and publishes its rtorrent's list (one that
    cannot be read is marked down: the others refuse deletions on its disks)."""
    import structlog

    from rtorrentd.deletion import preflight
    from rtorrentd.deletion.peers import Membership, peer_config, root_devices
    from rtorrentd.service.poll import publish

    for name, config in instances.configs.items():
        roots = root_devices(preflight.remember(config.safety.allowed_roots))
        peers.join(name, config, client_for(peer_config(config)), roots)
        with structlog.contextvars.bound_contextvars(instance=name):
            try:
                await publish(clients[name], Membership(peers, name))
            except (TransportError, RpcError) as exc:
                peers.down(name, str(exc))


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:

    from rtorrentd.config.load import load_config
    from rtorrentd.rtorrent.client import RtorrentClient
    from rtorrentd.rtorrent.transport import open_transport

    if args.url:
        url = args.url
        client = RtorrentClient(open_transport(url))
    else:
        client = client_for(load_config(args.config))
    torrents = run_async(lambda: client.snapshot(["ratio"]))
    print(format_torrent_table(torrents), file=out)
    return EXIT_OK


def _cmd_orphans(args: argparse.Namespace, out: TextIO) -> int:
    import functools
    import time

    import anyio

    from rtorrentd.config.instances import load_instances
    from rtorrentd.config.model import OrphanSettings
    from rtorrentd.deletion.orphans import scan
    from rtorrentd.service.orphans import format_scan, owned_paths, sources_for

    instances = load_instances(args.config)
    code, reports = EXIT_OK, []
    for name, config in instances.configs.items():
        settings = config.orphans or OrphanSettings()
        heading = f"== {name} ==\n" if instances.directory else ""
        if not config.safety.allowed_roots:
            reports.append(f"{heading}no [safety] allowed_roots: nothing to scan")
            continue
        client = client_for(config)
        sources = sources_for(name, config, client, peers=instances.configs, client_for=client_for)
        run = functools.partial(
            scan,
            sources,
            config.safety.allowed_roots,
            settings,
            now=time.time(),
            owned=owned_paths(config),
        )
        found, _listing = anyio.run(run)
        if found.refused:
            code = EXIT_UNREACHABLE
        note = "" if config.orphans else "([orphans] is not configured: its defaults)\n"
        reports.append(heading + note + format_scan(found, settings))
    print("\n\n".join(reports), file=out)
    return code


def _with_bins(path: str) -> list[tuple[str, Config]]:
    """(instance name, config) of every instance of `-c FILE|DIR` with a recycle bin;
    a configuration without one is an error (exit 2)."""
    from rtorrentd.config.instances import load_instances

    instances = load_instances(path)
    found = [(name, c) for name, c in instances.configs.items() if c.trash is not None]
    if not found:
        raise ConfigError(f'{path}: no [trash] section: write [trash] with path = "/data/.trash"')
    return found


def _cmd_trash(args: argparse.Namespace, out: TextIO) -> int:
    from rtorrentd.deletion import trash
    from rtorrentd.service.trash_report import format_trash_table

    configs = _with_bins(args.config)
    if args.trash_command == "restore":
        return _trash_restore(configs, args.entry, out)
    seen: dict[str, object] = {}
    found = []
    for _, config in configs:
        settings = config.trash
        if settings is None or settings.path in seen:
            continue
        seen[settings.path] = settings
        trash.recover(settings.path)  # an entry a crash left half made is rolled back
        found += [(e, settings) for e in trash.entries(settings.path)]
    if args.trash_command == "list":
        print(format_trash_table(found), file=out)
        return EXIT_OK
    return _trash_empty(found, args.older_than, out)


def _trash_empty(found: Sequence[tuple[Any, Any]], older_than: str | None, out: TextIO) -> int:
    import time

    from rtorrentd.conditions.parse import parse_duration
    from rtorrentd.deletion import trash
    from rtorrentd.errors import ExprError
    from rtorrentd.service.report import human_bytes

    try:
        age = None if older_than is None else parse_duration(older_than)
    except ExprError as exc:
        raise ConfigError(f"--older-than {older_than!r}: {exc}; write a duration like 7d") from exc
    now = time.time()
    freed, count = 0, 0
    for entry, _ in found:
        if age is not None and now - entry.manifest.created < age:
            continue
        if trash.discard(entry):
            freed, count = freed + entry.manifest.frees, count + 1
    print(f"emptied {count} entries, {human_bytes(freed)} freed", file=out)
    return EXIT_OK


def _trash_restore(configs: Sequence[tuple[str, Config]], key: str, out: TextIO) -> int:
    import anyio

    from rtorrentd.deletion import trash
    from rtorrentd.deletion.trash_restore import restore_torrent
    from rtorrentd.errors import TrashError
    from rtorrentd.service.trash_report import restored_text

    problems = []
    for _, config in configs:
        assert config.trash is not None
        try:
            entry = trash.find(config.trash.path, key)
        except TrashError as exc:
            problems.append(str(exc))
            continue
        restored = anyio.run(restore_torrent, client_for(config), entry)
        print(restored_text(restored), file=out)
        return EXIT_OK
    raise TrashError("; ".join(dict.fromkeys(problems)))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each sub-command sets `handler`."""
    parser = argparse.ArgumentParser(prog="rtorrentd", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
        "version": _cmd_version,
        "check": _cmd_check,
        "plan": _cmd_plan,
        "list": _cmd_list,
        "run": _cmd_run,
        "orphans": _cmd_orphans,
        "trash": _cmd_trash,
    }
    for name, handler in handlers.items():
        p = sub.add_parser(name)
        p.set_defaults(handler=handler)
        if name != "version":
            p.add_argument("-c", "--config", default="/etc/rtorrentd/config.toml")
    sub.choices["plan"].add_argument("--format", choices=("table", "json"), default="table")
    sub.choices["list"].add_argument("--url", help="rtorrent URL, instead of a config file")
    run = sub.choices["run"]
    run.add_argument("--once", action="store_true", help="one poll, then exit")
    run.add_argument(
        "--dry-run", action="store_true", help="log what would be done, change nothing"
    )
    run.add_argument("--log-format", choices=("journal", "console", "json"), default=None)
    run.add_argument("--log-level", default="info")
    bin_commands = sub.choices["trash"].add_subparsers(dest="trash_command", required=True)
    listing = bin_commands.add_parser("list", help="the recycle bin's entries")
    restore = bin_commands.add_parser("restore", help="put an entry back")
    restore.add_argument("entry", metavar="HASH|NAME")
    empty = bin_commands.add_parser("empty", help="empty the bin")
    empty.add_argument("--older-than", metavar="DURATION", help="only entries older, like 7d")
    # `trash list -c FILE` as well as `trash -c FILE list`
    for command in (listing, restore, empty):
        command.add_argument("-c", "--config", default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Entry point of the `rtorrentd` command."""
    args = build_parser().parse_args(argv)
    with contextlib.ExitStack() as scope:
        if args.command not in ("run", "version"):
            from rtorrentd.logger import configure_on_first_event

            # Warnings go to stderr, never into `plan --format json` on stdout; set
            # up only if one is logged (structlog's import is a tenth of a plan).
            scope.enter_context(configure_on_first_event(_warnings_to_stderr))
        return _handle(args, out)


def _warnings_to_stderr() -> None:
    from rtorrentd.service.logs import configure_logging, default_format

    configure_logging(default_format(), "warning")


def _handle(args: argparse.Namespace, out: TextIO) -> int:
    """Run the command; its errors become a line on stderr and an exit code."""
    try:
        code: int = args.handler(args, out)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (TransportError, RpcError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RtorrentdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return code
