"""What other tools write into rtorrent, read as they meant it, against a real rtorrent
set up the way each tool sets it up: ruTorrent's URL-encoded labels and its seeding
time, Flood's and cross-seed's tags, Sonarr's and Radarr's views, `d.ignore_commands`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from flow import rtorrentd
from harness import RtorrentProcess, TorrentFactory, TorrentFile, random_bytes

from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.vocabulary import FIELDS

pytestmark = pytest.mark.integration

SEEDINGTIME = 1_600_000_000


@dataclass(frozen=True, slots=True)
class Library:
    """One torrent per tool, each marked as that tool marks it."""

    rutorrent: TorrentFile  # label "My Label", seeding time, no rtorrent finish time
    flood: TorrentFile  # tags "a" and "b,c"
    sonarr: TorrentFile  # imported: in the view sonarr_imported
    ignored: TorrentFile  # d.ignore_commands = 1


def set_up(rtorrent: RtorrentProcess, torrent_factory: TorrentFactory) -> Library:
    download = rtorrent.download_dir
    library = Library(
        *(
            torrent_factory(f"{name}.bin", random_bytes(2000, seed), dest_dir=download)
            for seed, name in enumerate(("rutorrent", "flood", "sonarr", "ignored"))
        )
    )
    # ruTorrent adds a torrent with its label rawurlencode'd among load.raw_start's
    # commands (php/rtorrent.php: `d.custom1.set=` . rawurlencode($label)).
    rtorrent.load(library.rutorrent, commands=("d.custom1.set=My%20Label",))
    for torrent in (library.flood, library.sonarr, library.ignored):
        rtorrent.load(torrent)
    # Flood and cross-seed: each tag encodeURIComponent'd, joined with commas.
    rtorrent.call("d.custom1.set", library.flood.info_hash, "a,b%2Cc")
    # Sonarr and Radarr mark what they imported with a view of the download.
    rtorrent.call("view.add", "", "sonarr_imported")
    rtorrent.call("d.views.push_back_unique", library.sonarr.info_hash, "sonarr_imported")
    rtorrent.call("d.ignore_commands.set", library.ignored.info_hash, 1)
    # ruTorrent's seedingtime plugin on completion: `d.custom.set=seedingtime,
    # "$execute.capture={date,+%s}"`, so with date's newline.
    rtorrent.call("d.custom.set", library.rutorrent.info_hash, "seedingtime", f"{SEEDINGTIME}\n")
    # A download rtorrent never timestamped (an old session): the setter is private,
    # but d.multicall2 runs it. Every download here: only ruTorrent's has a fallback.
    rtorrent.call("d.multicall2", "", "main", "d.timestamp.finished.set=0")
    return library


@pytest.mark.anyio
async def test_each_tool_s_marks_are_read_as_it_meant_them(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    library = set_up(rtorrent, torrent_factory)
    client = RtorrentClient(open_transport(rtorrent.scgi_url, timeout=10.0))

    got = {t.hash: t for t in await client.snapshot(tuple(FIELDS))}

    ru, flood = got[library.rutorrent.info_hash], got[library.flood.info_hash]
    sonarr, ignored = got[library.sonarr.info_hash], got[library.ignored.info_hash]
    assert ("My Label", ("My Label",), SEEDINGTIME) == (ru.label, ru.tags, ru.finished)
    assert ("a,b,c", ("a", "b,c"), None) == (flood.label, flood.tags, flood.finished)
    assert (("sonarr_imported",), ()) == (sonarr.views, flood.views)
    assert ("", (), False) == (sonarr.label, sonarr.tags, sonarr.ignored)
    assert (True, False) == (ignored.ignored, ru.ignored)


RULES = """
[[rule]]
name = "left alone"
when = "ignored"
action = "keep"

[[rule]]
name = "imported"
when = '"sonarr_imported" in views'
action = "remove"

[[rule]]
name = "cross-seeded"
when = 'tags == "b,c"'
action = "remove"

[[rule]]
name = "seeded long"
when = 'label == "My Label" and seeding_time >= 30d'
action = "stop"

[[rule]]
name = "the rest"
when = "complete"
action = "stop"
"""


def test_rules_select_by_each_tool_s_marks(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    library = set_up(rtorrent, torrent_factory)
    config = tmp_path / "config.toml"
    roots = json.dumps([str(rtorrent.download_dir)])
    config.write_text(
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n\n[safety]\nallowed_roots = {roots}\n{RULES}'
    )
    before = time.time()

    result = rtorrentd("plan", "-c", str(config), "--format", "json")

    assert (0, "") == (result.returncode, result.stderr)
    steps = {step["hash"]: step for step in json.loads(result.stdout)}
    assert {
        library.sonarr.info_hash: ("imported", "remove"),
        library.flood.info_hash: ("cross-seeded", "remove"),
        library.rutorrent.info_hash: ("seeded long", "stop"),
    } == {h: (step["rule"], step["action"]) for h, step in steps.items()}
    seeded = steps[library.rutorrent.info_hash]["values"]
    assert "My Label" == seeded["label"]
    assert before - SEEDINGTIME <= seeded["seeding_time"] <= time.time() - SEEDINGTIME
