"""The recycle bin around the executor: the space projection empties it first (pure
engine), retention by the daemon (one event per entry), `rtorrentd trash` as a
user runs it, the metrics, and the README's tables."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import anyio
from flow import LABEL_DOOMED, album, client_for, contents, rtorrentd, state
from harness import RtorrentProcess, TorrentFactory
from structlog.testing import capture_logs
from test_space import DATA, GIB, config, disk, names, policy, run, torrent
from test_startup import imported_by
from test_trash_executor import poll, trash_config

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import MetricsSettings, TrashSettings
from rtorrentd.deletion import trash, trash_upkeep
from rtorrentd.engine.space import Binned
from rtorrentd.service.metrics import Metrics
from rtorrentd.service.poll import PollResult

README = Path(__file__).resolve().parent.parent / "README.md"
PACKAGE = Path(__file__).resolve().parent.parent / "rtorrentd"
DAY = 86400.0


def orphans(tmp_path: Path, ages: list[float], size: int = 100) -> tuple[Path, list[trash.Entry]]:
    """A bin holding one orphan entry per age (seconds before now), oldest first."""
    root, bin_dir = tmp_path / "dl", tmp_path / "bin"
    root.mkdir(exist_ok=True)
    made = []
    for number, age in enumerate(ages):
        path = root / f"o{number}.bin"
        path.write_bytes(b"o" * size)
        out = trash.trash_paths(str(bin_dir), str(root), [str(path)], "t", now=time.time() - age)
        assert out.entry is not None
        made.append(out.entry)
    return bin_dir, made


# --- space: the bin first ----------------------------------------------------------------


def test_a_low_filesystem_empties_the_bin_before_deleting_any_torrent() -> None:
    ts = [torrent(1), torrent(2)]
    bin_entries = (Binned("old", DATA, 5 * GIB), Binned("new", DATA, 5 * GIB))
    measured = replace(disk(ts, data=72 * GIB), bin=bin_entries)

    result = run(ts, config(space=[policy()]), measured)

    assert [] == names(result.steps)  # 72 + 5 + 5 = 82 GiB >= 80: no torrent goes
    (outcome,) = result.space
    assert (("old", "new"), 10 * GIB, 82 * GIB) == (
        outcome.emptied,
        outcome.bin_freed,
        outcome.projected,
    )


def test_only_what_the_bin_cannot_free_costs_torrents() -> None:
    ts = [torrent(1, seeders=3), torrent(2, seeders=9)]
    measured = replace(disk(ts, data=62 * GIB), bin=(Binned("old", DATA, 4 * GIB),))

    result = run(ts, config(space=[policy()]), measured)

    assert ["t2", "t1"] == names(result.steps)  # 62 + 4 + 10 = 76, + 10 = 86
    (outcome,) = result.space
    assert (("old",), 4 * GIB) == (outcome.emptied, outcome.bin_freed)


def test_a_bin_on_another_filesystem_frees_nothing_here() -> None:
    ts = [torrent(1)]
    measured = replace(disk(ts, data=75 * GIB), bin=(Binned("elsewhere", DATA + 7, 50 * GIB),))
    result = run(ts, config(space=[policy()]), measured)
    assert ["t1"] == names(result.steps)
    assert () == result.space[0].emptied


# --- retention ----------------------------------------------------------------------------


def test_expiry_goes_oldest_first_one_event_per_entry(tmp_path: Path) -> None:
    bin_dir, made = orphans(tmp_path, [9 * DAY, 8 * DAY, 2 * DAY, 1 * DAY, 0])
    settings = TrashSettings(str(bin_dir), keep_for=7 * DAY, max_size=250)

    with capture_logs() as logs:
        after = trash_upkeep.upkeep(settings, (), time.time(), (), dry_run=False)

    expired = [e for e in logs if e["event"] == "trash.expired"]
    # Two older than keep_for, then the oldest of the rest until 250 bytes are left.
    assert [m.name for m in made[:3]] == [e["entry"] for e in expired]
    assert ["keep_for", "keep_for", "max_size"] == [
        re.findall(r"keep_for|max_size", e["reason"])[0] for e in expired
    ]
    assert [100, 100, 100] == [e["freed_bytes"] for e in expired]
    assert (2, 200, 300) == (after.entries, after.bytes, after.freed)
    assert [m.name for m in made[3:]] == [e.name for e in trash.entries(str(bin_dir))]


def test_a_dry_run_expires_nothing_but_says_what_it_would(tmp_path: Path) -> None:
    bin_dir, made = orphans(tmp_path, [9 * DAY])
    settings = TrashSettings(str(bin_dir), keep_for=7 * DAY)
    with capture_logs() as logs:
        trash_upkeep.upkeep(settings, (), time.time(), (), dry_run=True)
    (event,) = [e for e in logs if e["event"] == "trash.expired"]
    assert (True, 0) == (event["dry_run"], event["freed_bytes"])
    assert [made[0].name] == [e.name for e in trash.entries(str(bin_dir))]


def test_entries_a_space_policy_counted_on_are_emptied(tmp_path: Path) -> None:
    bin_dir, made = orphans(tmp_path, [3 * DAY, 2 * DAY])
    settings = TrashSettings(str(bin_dir))
    with capture_logs() as logs:
        after = trash_upkeep.upkeep(settings, (), time.time(), (made[0].name,), dry_run=False)
    assert [made[0].name] == [e["entry"] for e in logs if e["event"] == "trash.emptied"]
    assert (1, 100) == (after.entries, after.bytes)
    assert [(made[1].name, 100)] == [(b.name, b.frees) for b in trash_upkeep.binned(settings)]


# --- the command ------------------------------------------------------------------------


def write_config(tmp_path: Path, bin_dir: Path, url: str = "scgi:///nonexistent.sock") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[rtorrent]\nurl = "{url}"\n[safety]\nallowed_roots = ["{tmp_path / "dl"}"]\n'
        f'[trash]\npath = "{bin_dir}"\nkeep_for = "7d"\n'
    )
    return path


def test_trash_list_and_empty_as_a_user_runs_them(tmp_path: Path) -> None:
    bin_dir, made = orphans(tmp_path, [9 * DAY, 0])
    cfg = write_config(tmp_path, bin_dir)

    listed = rtorrentd("trash", "list", "-c", str(cfg))
    assert 0 == listed.returncode, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "HASH", "SIZE", "EXPIRES", "RULE", "NAME"]
    assert ["o0.bin", "o1.bin"] == [line.split()[-1] for line in lines[1:3]]
    assert "2 entries, 200 B" == lines[-1]

    older = rtorrentd("trash", "-c", str(cfg), "empty", "--older-than", "7d")
    assert (0, "emptied 1 entries, 100 B freed\n") == (older.returncode, older.stdout)
    assert [made[1].name] == [e.name for e in trash.entries(str(bin_dir))]
    everything = rtorrentd("trash", "empty", "-c", str(cfg))
    assert 0 == everything.returncode and [] == list(trash.entries(str(bin_dir)))


def test_trash_commands_need_a_bin_and_import_no_rtorrent_client(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[rtorrent]\nurl = "scgi:///nonexistent.sock"\n')
    missing = rtorrentd("trash", "list", "-c", str(cfg))
    assert 2 == missing.returncode and "no [trash] section" in missing.stderr

    code, modules = imported_by("trash", "list", "-c", str(write_config(tmp_path, tmp_path / "b")))
    assert 0 == code
    assert set() == {"anyio", "httpx", "rtorrentd.rtorrent.client"} & modules


def test_trash_restore_as_a_user_runs_it(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir)
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    data = contents(doomed)
    bin_dir = tmp_path / "bin"
    anyio.run(poll, client_for(rtorrent), trash_config(rtorrent, bin_dir))
    assert {} == state(rtorrent)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n'
        f'[safety]\nallowed_roots = ["{rtorrent.download_dir}"]\n[trash]\npath = "{bin_dir}"\n'
    )

    done = rtorrentd("trash", "restore", "-c", str(cfg), "album")

    assert 0 == done.returncode, done.stderr
    assert f"restored album ({info_hash})" in done.stdout and "complete, started" in done.stdout
    assert {info_hash: (1, 1)} == state(rtorrent)
    assert data == contents(doomed)
    again = rtorrentd("trash", "restore", "-c", str(cfg), info_hash)
    assert 1 == again.returncode and "no entry" in again.stderr


# --- metrics and the README -----------------------------------------------------------------


def test_the_bin_is_measured_for_prometheus() -> None:
    metrics = Metrics(MetricsSettings())
    result = PollResult(0, None, (), None, 0.1, bin=trash_upkeep.BinState(3, 4096, 100))  # type: ignore[arg-type]
    metrics.record("roger", result)
    registry = metrics.registry
    assert 4096 == registry.get_sample_value("rtorrentd_trash_bytes", {"rtorrent": "roger"})
    assert 3 == registry.get_sample_value("rtorrentd_trash_entries", {"rtorrent": "roger"})
    assert 100 == registry.get_sample_value("rtorrentd_freed_bytes_total", {"rtorrent": "roger"})


def test_every_bin_event_is_in_the_readme_log_table() -> None:
    logs = README.read_text().split("## Logs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(trash\.[a-z_]+)`", logs))
    code = "".join(p.read_text() for p in (PACKAGE / "deletion").glob("trash*.py"))
    code += (PACKAGE / "service" / "poll.py").read_text()
    logged = set(re.findall(r'"(trash\.[a-z_]+)"', code))
    assert logged == listed


def test_the_example_configuration_shows_the_bin_commented() -> None:
    text = (README.parent / "contrib" / "config.example.toml").read_text()
    assert parse_config(text, "example.toml").trash is None
    block = re.search(r"# \[trash\]\n(# .*\n)+", text)
    assert block is not None
    live = re.sub(r"^# ", "", block.group(0), flags=re.MULTILINE)
    settings = parse_config(text + live, "example.toml").trash
    assert settings is not None and (7 * DAY, True) == (settings.keep_for, settings.replace_delete)


def test_the_orphan_cleanup_moves_into_the_bin_and_skips_it(tmp_path: Path) -> None:
    from rtorrentd.deletion.model import Identity
    from rtorrentd.service.orphans import bin_mover, owned_paths

    root = tmp_path / "dl"
    root.mkdir()
    orphan = root / "left.bin"
    orphan.write_bytes(b"x" * 10)
    cfg = parse_config(
        f'[rtorrent]\nurl = "scgi:///x.sock"\n[safety]\nallowed_roots = ["{root}"]\n'
        f'[trash]\npath = "{root / ".trash"}"\n',
        "c.toml",
    )
    move = bin_mover(cfg)
    assert move is not None
    assert str(root / ".trash") in owned_paths(cfg)  # never an orphan itself

    moved, left = move(str(root), [(str(orphan), Identity.of(orphan.lstat()))])

    assert ([str(orphan)], []) == (list(moved), list(left))
    (entry,) = trash.entries(str(root / ".trash"))
    assert ("orphan", "orphan cleanup", "left.bin") == (
        entry.manifest.kind,
        entry.manifest.reason,
        entry.manifest.title,
    )
