"""`unregistered` from hand-made snapshots: the phrasings, and the tracker-down
guard (a connection failure, or many torrents of one tracker at once)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Sequence

import pytest
from flow import client_for, poll
from harness import RtorrentProcess, TorrentFactory, poll_until

from rtorrentd.config.load import parse_config
from rtorrentd.engine.unregistered import (
    DOWN_PHRASES,
    GUARD_COUNT,
    UNREGISTERED_PHRASES,
    says_down,
    says_unregistered,
    unregistered_column,
)

GONE = 'Tracker: [Failure reason "Unregistered torrent"]'
REFUSED = "Tracker: [Couldn't connect to server]"


@pytest.mark.parametrize(
    "message",
    [
        GONE,
        'Tracker: [Failure reason "Torrent not registered with this tracker."]',
        'Tracker: [Failure reason "InfoHash not found."]',
        'Tracker: [Failure reason "Trumped: better encode"]',
        'Tracker: [Failure reason "Torrent has been deleted."]',
        'Tracker: [Failure reason "Torrent existiert nicht"]',
        "unknown torrent",
    ],
)
def test_what_trackers_say_of_a_gone_torrent_is_unregistered(message: str) -> None:
    assert says_unregistered(message)


@pytest.mark.parametrize(
    "message",
    [
        "",
        "Tracker: [Timeout was reached]",
        "Tracker: [Could not resolve host: t.example]",
        'Tracker: [Failure reason "Passkey not found"]',  # "not found", but the account
        'Tracker: [Failure reason "Unregistered torrent (tracker down for maintenance)"]',
        'Tracker: [Failure reason "You have reached the client limit for this torrent"]',
        "Tracker: [Tried all trackers.]",
        'Tracker: [Failure reason "Downloads are disabled"]',
    ],
)
def test_other_messages_are_not(message: str) -> None:
    assert not says_unregistered(message)


def test_one_address_refused_and_another_answered_is_the_trackers_answer() -> None:
    # rtorrent 0.16, a tracker by name: ::1 refused, 127.0.0.1 answered.
    joined = 'Tracker: [Could not connect to server /// Failure reason "Unregistered torrent"]'
    assert says_unregistered(joined) and not says_down(joined)
    assert [True] == unregistered_column([joined], [("localhost",)])
    down = 'Tracker: [Could not connect to server /// Failure reason "Tracker is down"]'
    assert not says_unregistered(down) and says_down(down)


def test_down_is_a_word_so_download_is_not_a_tracker_down() -> None:
    assert says_unregistered("Unregistered torrent; download it again from the site")
    assert not says_unregistered("Unregistered torrent: site is down")


def test_every_phrase_has_a_source() -> None:
    for phrase, source in (*UNREGISTERED_PHRASES, *DOWN_PHRASES):
        assert phrase == phrase.lower() and phrase.strip() and source.strip()


def test_a_few_at_once_are_unregistered_and_the_rest_of_the_tracker_not() -> None:
    messages = [GONE, GONE, "", None]
    trackers = [("a.example",)] * 4

    assert [True, True, False, None] == unregistered_column(messages, trackers)


def test_a_connection_failure_makes_the_whole_tracker_down_this_poll() -> None:
    messages = [GONE, REFUSED, GONE]
    trackers = [("a.example",), ("a.example", "backup.example"), ("b.example",)]

    # b.example said nothing of being down: its torrent is unregistered.
    assert [False, False, True] == unregistered_column(messages, trackers)


def test_a_tracker_down_guards_torrents_that_only_share_a_backup_tracker() -> None:
    messages = [REFUSED, GONE]
    trackers = [("backup.example",), ("a.example", "backup.example")]

    assert [False, False] == unregistered_column(messages, trackers)


def test_many_of_one_tracker_at_once_is_a_tracker_down() -> None:
    many = GUARD_COUNT
    messages = [GONE] * many + [""] * many + [GONE]
    trackers = [("a.example",)] * (2 * many) + [("b.example",)]

    column = unregistered_column(messages, trackers)

    assert [False] * (2 * many) + [True] == column


def test_many_but_a_small_share_of_a_large_tracker_is_believed() -> None:
    # A season pack trumps a dozen episodes: 12 of the tracker's 100 torrents.
    gone = GUARD_COUNT + 2
    messages = [GONE] * gone + [""] * (100 - gone)
    trackers = [("a.example",)] * 100

    assert [True] * gone + [False] * (100 - gone) == unregistered_column(messages, trackers)


def test_one_short_of_the_count_is_believed() -> None:
    messages = [GONE] * (GUARD_COUNT - 1)
    trackers = [("a.example",)] * (GUARD_COUNT - 1)

    assert [True] * (GUARD_COUNT - 1) == unregistered_column(messages, trackers)


def test_without_trackers_only_its_own_message_counts() -> None:
    assert [True, None] == unregistered_column([GONE, None], [(), None])


# --- against a real rtorrent: what it writes to d.message --------------------------


@pytest.fixture
def tracker() -> Iterator[str]:
    """A tracker on 127.0.0.1 that answers every announce: unregistered torrent."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"d14:failure reason20:Unregistered torrente"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{server.server_address[1]}/announce"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _messages(rt: RtorrentProcess, hashes: Sequence[str]) -> dict[str, str] | None:
    found = {h: str(rt.call("d.message", h)) for h in hashes}
    return found if all(found.values()) else None


@pytest.mark.integration
@pytest.mark.anyio
async def test_rtorrents_own_messages_and_the_guard(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tracker: str
) -> None:
    dl = rtorrent.download_dir
    # `gone` announces to localhost, `refused` to 127.0.0.1:1 (nothing listens),
    # `guarded` to the same answering tracker as `gone`, but by 127.0.0.1: a host
    # that `refused` shows down this poll.
    gone = rtorrent.load(
        torrent_factory(
            "gone", {"a": b"1" * 100}, dest_dir=dl, trackers=[f"http://localhost:{tracker}"]
        ),
        complete=True,
    )
    refused = rtorrent.load(
        torrent_factory("refused", {"a": b"2" * 100}, dest_dir=dl), complete=True
    )
    guarded = rtorrent.load(
        torrent_factory(
            "guarded", {"a": b"3" * 100}, dest_dir=dl, trackers=[f"http://127.0.0.1:{tracker}"]
        ),
        complete=True,
    )
    hashes = (gone, refused, guarded)
    said = poll_until(lambda: _messages(rtorrent, hashes), timeout=20, what="tracker messages")
    assert "Unregistered torrent" in said[gone] and "Unregistered torrent" in said[guarded]
    assert says_down(said[refused]), said[refused]
    config = parse_config(
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n'
        '[[rule]]\nname = "gone"\nwhen = "unregistered"\naction = "stop"\n',
        "test.toml",
    )

    result = await poll(client_for(rtorrent), config)

    assert [gone] == [step.hash for step in result.plan.steps]
    assert (0, 0) == (rtorrent.call("d.state", gone), rtorrent.call("d.is_open", gone))
