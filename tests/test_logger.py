"""rtorrentd.logger: structlog imported at the first event, set up just before it."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from rtorrentd.logger import configure_on_first_event, get_logger


def test_the_set_up_runs_once_before_the_first_event_and_never_after_its_block() -> None:
    calls: list[int] = []
    log = get_logger("rtorrentd.test")
    with capture_logs() as events:
        with configure_on_first_event(lambda: calls.append(len(events))):
            assert [] == calls  # nothing logged yet: nothing set up
            log.warning("first")
            log.warning("second")
        log.warning("after the block")

    assert [0] == calls  # once, before the first event reached structlog
    assert ["first", "second", "after the block"] == [e["event"] for e in events]


def test_events_of_many_threads_wait_for_one_set_up() -> None:
    calls: list[str] = []
    threads = 8
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def log_one(number: int) -> None:
        start.wait()
        try:
            get_logger(f"rtorrentd.test{number}").info("event", number=number)
        except BaseException as exc:  # an IndexError of a double pop, say
            failures.append(exc)

    with capture_logs() as events, configure_on_first_event(lambda: calls.append("set up")):
        workers = [threading.Thread(target=log_one, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    assert ([], ["set up"]) == (failures, calls)
    assert set(range(threads)) == {e["number"] for e in events}


def test_a_logger_follows_a_reconfiguration_made_after_its_first_event() -> None:
    log = get_logger("rtorrentd.test")
    with capture_logs() as before:
        log.info("one")
    with capture_logs() as after:
        log.info("two")
    assert (["one"], ["two"]) == ([e["event"] for e in before], [e["event"] for e in after])
