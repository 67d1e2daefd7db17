"""Prometheus metrics (`[metrics]`): what is recorded, the README's list, the
textfile, and the endpoint of a running daemon scraped."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from harness import RtorrentProcess, TorrentFactory
from harness.rtorrent import free_port
from prometheus_client.parser import text_string_to_metric_families
from test_daemon import RunningDaemon, config_text, gone, load, rule

from rtorrentd.config.model import Action, MetricsSettings
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine.memory import Memory
from rtorrentd.engine.plan import Decision, Plan, Step
from rtorrentd.service.metrics import Metrics
from rtorrentd.service.poll import PollResult, count_states
from rtorrentd.torrent import Torrent

README = Path(__file__).resolve().parent.parent / "README.md"


def _scraped_names(metrics: Metrics) -> set[str]:
    """The names as Prometheus sees them: counters with `_total`."""
    return {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in metrics.registry.collect()
    }


def test_the_readme_lists_every_metric() -> None:
    section = README.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(rtorrentd_\w+)`", section, re.MULTILINE))
    assert _scraped_names(Metrics(MetricsSettings())) == listed


def _poll() -> PollResult:
    delete = Step("AB" * 20, "a", Decision(Action.DELETE, "old", ()), (), 3000)
    stop = Step("CD" * 20, "b", Decision(Action.STOP, "idle", ()), (), 10)
    results = (
        StepResult(delete, Result.DONE, freed_bytes=3000),
        StepResult(stop, Result.REFUSED, "no"),
    )
    plan = Plan((delete, stop), (), (), 1, 0)
    states = (("seeding", 2, 3010), ("downloading", 1, 5), ("stopped_complete", 0, 0))
    return PollResult(3, plan, results, Memory.empty(), 0.2, states, (("/data", 123),))


def test_a_poll_is_recorded_by_instance_and_written_to_the_textfile(tmp_path: Path) -> None:
    textfile = tmp_path / "rtorrentd.prom"
    metrics = Metrics(MetricsSettings(textfile=str(textfile)))
    metrics.polled("roger", _poll(), 0.3, True)
    metrics.polled("roger", _poll(), 0.7, True)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"rtorrent": "roger", **labels})

    assert 2.0 == value("rtorrentd_torrents", state="seeding")
    assert 3010.0 == value("rtorrentd_torrent_bytes", state="seeding")
    assert 2.0 == value("rtorrentd_steps_total", action="delete", rule="old", result="done")
    assert 2.0 == value("rtorrentd_steps_total", action="stop", rule="idle", result="refused")
    assert 6000.0 == value("rtorrentd_freed_bytes_total")
    assert 2.0 == value("rtorrentd_poll_duration_seconds_count")
    assert 1.0 == value("rtorrentd_poll_duration_seconds_bucket", le="0.5")
    assert 1.0 == value("rtorrentd_rtorrent_up")
    assert 123.0 == value("rtorrentd_free_bytes", path="/data")
    assert 2.0 == value("rtorrentd_polls_total", outcome="ok")
    assert (value("rtorrentd_last_successful_poll_timestamp_seconds") or 0) > 1.7e9

    # The textfile: what a scrape would say, and nothing left beside it.
    families = {f.name: f for f in text_string_to_metric_families(textfile.read_text())}
    assert 2.0 == families["rtorrentd_torrents"].samples[0].value
    assert [textfile] == list(tmp_path.iterdir())

    metrics.polled("roger", None, 5.0, False)
    assert (0.0, 1.0) == (
        value("rtorrentd_rtorrent_up"),
        value("rtorrentd_polls_total", outcome="unreachable"),
    )


def test_an_unwritable_textfile_is_logged_and_the_daemon_goes_on(tmp_path: Path) -> None:
    metrics = Metrics(MetricsSettings(textfile=str(tmp_path / "missing" / "x.prom")))
    metrics.polled("roger", _poll(), 0.1, True)  # logged (metrics.unwritable), no raise


# --- a running daemon, scraped ------------------------------------------------------


@pytest.fixture
def metered(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> Iterator[Callable[[str], tuple[RunningDaemon, str, Path]]]:
    started: list[RunningDaemon] = []

    def start(rules: str) -> tuple[RunningDaemon, str, Path]:
        port, textfile = free_port(), tmp_path / "rtorrentd.prom"
        text = config_text(
            rules, url=rtorrent.scgi_url, interval="10s", root=str(rtorrent.download_dir)
        )
        text += f'[metrics]\nlisten = "127.0.0.1:{port}"\ntextfile = "{textfile}"\n'
        (tmp_path / "roger.toml").write_text(text)
        started.append(RunningDaemon(tmp_path / "roger.toml"))
        return started[-1], f"http://127.0.0.1:{port}/metrics", textfile

    yield start
    for process in started:
        process.close()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.integration
def test_the_endpoint_of_a_running_daemon_is_scraped(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    metered: Callable[[str], tuple[RunningDaemon, str, Path]],
) -> None:
    doomed, kept = load(rtorrent, torrent_factory, "a-1", "b-1")
    d, url, textfile = metered(rule("old", "^a-"))
    d.note("^READY=1$")  # after the first poll was recorded
    assert gone(rtorrent, doomed) and not gone(rtorrent, kept)

    scraped = _scrape(url)
    roger = (("rtorrent", "roger"),)
    torrents = sum(v for (n, labels), v in scraped.items() if n == "rtorrentd_torrents")
    assert 2.0 == torrents  # the snapshot, before the deletion
    done = (*roger, ("action", "delete"), ("result", "done"), ("rule", "old"))
    assert 1.0 == scraped["rtorrentd_steps_total", tuple(sorted(done))]
    assert 2000.0 == scraped["rtorrentd_freed_bytes_total", roger]
    assert 1.0 == scraped["rtorrentd_rtorrent_up", roger]
    assert 1.0 == scraped["rtorrentd_poll_duration_seconds_count", roger]
    assert scraped["rtorrentd_last_successful_poll_timestamp_seconds", roger] > 1.7e9
    assert "rtorrentd_steps_total" in textfile.read_text()

    rtorrent.kill()
    d.send(signal.SIGUSR1)
    d.log("rtorrent.unreachable", instance="roger")
    d.note("^STATUS=rtorrent unreachable")  # after the failed poll was recorded
    scraped = _scrape(url)
    assert 0.0 == scraped["rtorrentd_rtorrent_up", roger]
    assert scraped["rtorrentd_polls_total", (("outcome", "unreachable"), *roger)] >= 1
    d.finish()


@pytest.mark.parametrize("name", ["grafana-dashboard.json", "prometheus-alerts.yml"])
def test_contrib_uses_only_metrics_that_exist(name: str) -> None:
    text = (README.parent / "contrib" / name).read_text()
    used = set(re.findall(r"rtorrentd_\w+", text))
    known = _scraped_names(Metrics(MetricsSettings()))
    series = known | {f"{n}_{part}" for n in known for part in ("bucket", "sum", "count")}
    assert used and used <= series
    assert "instance" not in text  # the label is `rtorrent`: Prometheus owns `instance`


def test_every_torrent_counts_once_in_its_state_with_its_bytes() -> None:
    # Unknown (None) reads as not started, not complete; an unknown size as 0.
    cases = [
        (True, True, 10),
        (True, True, 20),
        (True, False, 5),
        (False, True, None),
        (False, False, 3),
        (None, None, 4),
        (True, None, 1),
    ]
    torrents = [
        Torrent(f"{i:040X}", f"t{i}", complete=done, started=on, size=size)
        for i, (on, done, size) in enumerate(cases)
    ]
    assert (
        ("seeding", 2, 30),
        ("downloading", 2, 6),
        ("stopped_complete", 1, 0),
        ("stopped_incomplete", 2, 7),
    ) == count_states(torrents)
    assert (("seeding", 0, 0),) == count_states([])[:1]
