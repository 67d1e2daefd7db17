"""The vocabulary: one table of every name a rule can use, and what reads it (the
condition language, the engine, the configuration's `order`, the README)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rtorrentd.conditions.parse import parse_condition, parse_size
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Action, Config, DaemonSettings, RtorrentSettings, Rule, Safety
from rtorrentd.engine.derived import DERIVED_COLUMNS
from rtorrentd.engine.facts import FileFact, Files
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import plan
from rtorrentd.errors import ExprError
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import (
    DERIVED,
    EXPENSIVE,
    FIELDS,
    IDENTITY,
    NAMES,
    NUMERIC_KINDS,
    README_HEADER,
    Kind,
    name_kinds,
    readme_rows,
)

README = Path(__file__).resolve().parent.parent / "README.md"
NOW = 1_700_000_000.0
DAY = 86400.0
KIB, GIB = 1024, 1024**3
KINDS = name_kinds()


# --- the table -----------------------------------------------------------------------


def test_derived_columns_cover_exactly_the_derived_names() -> None:
    assert set(DERIVED_COLUMNS) == set(DERIVED)


def test_stored_and_derived_names_are_the_whole_table() -> None:
    assert set(NAMES) == set(FIELDS) | set(DERIVED)
    assert not set(FIELDS) & set(DERIVED)


def test_derived_names_are_computed_from_stored_fields() -> None:
    for entry in DERIVED.values():
        assert entry.needs, entry.name
        assert set(entry.needs) <= set(FIELDS), entry.name


def test_expensive_names_are_the_ones_that_read_files() -> None:
    assert {"hardlinked", "shared"} == EXPENSIVE
    assert set(IDENTITY) <= set(FIELDS)


# What a Torrent attribute of each kind holds.
ANNOTATIONS = {
    Kind.BOOL: {"bool | None"},
    Kind.NUMBER: {"int | None", "float | None"},
    Kind.SIZE: {"int | None"},
    Kind.RATE: {"int | None"},
    Kind.TIMESTAMP: {"int | None"},
    Kind.STRING: {"str | None", "str"},
    Kind.STRINGS: {"tuple[str, ...] | None"},
}


def test_torrent_attributes_hold_values_of_their_kind() -> None:
    attributes = {f.name: f.type for f in dataclasses.fields(Torrent)}
    assert set(attributes) == set(FIELDS)
    for name, entry in FIELDS.items():
        assert attributes[name] in ANNOTATIONS[entry.kind], name


def test_sizes_and_rates_are_declared_as_such() -> None:
    sizes = {n for n, k in KINDS.items() if k is Kind.SIZE}
    rates = {n for n, k in KINDS.items() if k is Kind.RATE}
    assert {"size", "done", "uploaded", "downloaded", "uploaded_recent"} == sizes
    assert {"up_rate", "down_rate"} == rates


# --- the README's table ----------------------------------------------------------------


def readme_table_rows() -> list[tuple[str, ...]]:
    """The cells of the table under README's `#### Condition fields`."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("#### Condition fields") + 1
    while not lines[start].startswith("|"):
        start += 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(tuple(cell.strip() for cell in line.strip("|").split(" | ")))
    return table


def test_the_readme_lists_every_name_with_its_kind_and_meaning() -> None:
    header, rule, *rows = readme_table_rows()
    assert README_HEADER == header
    assert {"---"} == set(rule)
    # On failure: paste `python -c 'from rtorrentd.vocabulary import readme_table;
    # print(readme_table())'` into the README.
    assert list(readme_rows()) == rows


# --- every name in a condition, with a literal of its kind --------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """How to test a kind: a condition over `name`, and one value for which it
    holds and one for which it does not."""

    template: str
    yes: object
    no: object


THEN = int(NOW - DAY)
CASES = {
    Kind.BOOL: Case("{name}", True, False),
    Kind.NUMBER: Case("{name} > 2", 3, 2),
    Kind.SIZE: Case("{name} > 1GiB", GIB + 1, GIB),
    Kind.RATE: Case("{name} > 100KiB/s", 100 * KIB + 1, 100 * KIB),
    Kind.DURATION: Case("{name} >= 1d", DAY, DAY - 60),
    Kind.TIMESTAMP: Case(f"{{name}} >= {THEN}", THEN, THEN - 1),
    Kind.STRING: Case('{name} == "x1"', "x1", "x2"),
    Kind.STRINGS: Case('{name} == "a.org"', ("b.org", "a.org"), ("b.org",)),
}


def test_every_kind_has_a_case() -> None:
    assert set(CASES) == set(Kind)


@dataclass(frozen=True, slots=True)
class Scene:
    """A snapshot at NOW, what the daemon remembers of it, the files it read."""

    torrents: tuple[Torrent, ...]
    memory: Memory
    files: Files = field(default_factory=dict)


def torrent(n: int, **values: object) -> Torrent:
    defaults: dict[str, object] = {"complete": True, "started": True, "open": True, "size": 1}
    return Torrent(**({"hash": f"{n:040X}", "name": f"t{n}"} | defaults | values))  # type: ignore[arg-type]


def stored(name: str, yes: object, no: object) -> Scene:
    torrents = (torrent(1, **{name: yes}), torrent(2, **{name: no}))
    return Scene(torrents, remember(Memory(), torrents, NOW))


def since(name: str) -> Callable[[str, object, object], Scene]:
    """A duration derived as NOW minus the timestamp field `name`."""

    def scene(_: str, yes: object, no: object) -> Scene:
        assert isinstance(yes, float) and isinstance(no, float)
        return stored(name, int(NOW - yes), int(NOW - no))

    return scene


def history(
    before: dict[str, object], after: Callable[[float], dict[str, object]]
) -> Callable[[str, object, object], Scene]:
    """A derived value the daemon remembers: each torrent first seen with `before`,
    then at NOW with `after(value)`; the yes/no values are how long ago it was first
    seen (idle, message_age) or the amount added since a day ago (uploaded_recent)."""

    def scene(name: str, yes: object, no: object) -> Scene:
        assert isinstance(yes, int | float) and isinstance(no, int | float)
        ago = (yes, no) if KINDS[name] is Kind.DURATION else (DAY, DAY)
        first_seen = {torrent(n + 1).hash: NOW - ago[n] for n in range(2)}
        memory = Memory()
        for when in sorted(set(first_seen.values())):  # a snapshot each first sighting
            seen = [torrent(n + 1, **before) for n in range(2)]
            memory = remember(memory, [t for t in seen if first_seen[t.hash] <= when], when)
        torrents = (torrent(1, **after(yes)), torrent(2, **after(no)))
        return Scene(torrents, remember(memory, torrents, NOW))

    return scene


def with_files(name: str, yes: object, no: object) -> Scene:
    """hardlinked: the yes torrent's one file has a second link. shared: torrent 3
    lists the yes torrent's file too (so it is shared as well, and selected)."""
    assert yes is True and no is False
    one = (FileFact("/d/one", 1, (1, 1), 2 if name == "hardlinked" else 1, True),)
    two = (FileFact("/d/two", 1, (1, 2), 1, True),)
    torrents = [torrent(1, path="/d/one"), torrent(2, path="/d/two")]
    files = {torrents[0].hash: one, torrents[1].hash: two}
    if name == "shared":
        torrents.append(torrent(3, path="/e/one"))
        files[torrents[2].hash] = one
    return Scene(tuple(torrents), remember(Memory(), torrents, NOW), files)


def tracker_messages(_: str, yes: object, no: object) -> Scene:
    """unregistered: the yes torrent's tracker says so, the no torrent's is silent."""
    assert yes is True and no is False
    said = {
        "message": 'Tracker: [Failure reason "Unregistered torrent"]',
        "trackers": ("t.example",),
    }
    torrents = (torrent(1, **said), torrent(2, message="", trackers=("t.example",)))
    return Scene(torrents, remember(Memory(), torrents, NOW))


_RECORD_SLOT = {"seed_time": 0, "leech_time": 1, "last_upload": 2, "seed_time_since": 3}


def from_record(name: str, yes: object, no: object) -> Scene:
    """A time figure as rtorrentd's record in rtorrent holds it (engine.times)."""

    def record(value: object) -> str:
        assert isinstance(value, int | float)
        slots = [0, 0, 0, int(NOW - 30 * DAY), 0]  # the last: the upload total then
        slots[_RECORD_SLOT[name]] = int(value)
        return ",".join(map(str, slots))

    torrents = tuple(
        torrent(n + 1, active=True, uploaded=0, saved_times=record(v))
        for n, v in enumerate((yes, no))
    )
    return Scene(torrents, remember(Memory(), torrents, NOW, cap=600.0))


SCENES: dict[str, Callable[[str, object, object], Scene]] = {
    "seed_time": from_record,
    "leech_time": from_record,
    "last_upload": from_record,
    "seed_time_since": from_record,
    "unregistered": tracker_messages,
    "age": since("added"),
    "seeding_time": since("finished"),
    "scrape_age": since("scraped"),
    "idle": history({"uploaded": 5}, lambda _: {"uploaded": 5}),
    "message_age": history({"message": "Unregistered"}, lambda _: {"message": "Unregistered"}),
    "uploaded_recent": history({"uploaded": 1000}, lambda v: {"uploaded": 1000 + int(v)}),
    "hardlinked": with_files,
    "shared": with_files,
}


def rule_config(text: str, window: float = 7 * DAY) -> Config:
    when = parse_condition(text, KINDS)
    return Config(
        source="test.toml",
        rtorrent=RtorrentSettings(url="scgi:///run/rtorrent.sock"),
        daemon=DaemonSettings(window=window),
        safety=Safety(max_deletes_per_poll=1000, max_delete_fraction=1.0),
        rules=(Rule("r", when, Action.DELETE, 1),),
    )


def selected(scene: Scene, cfg: Config) -> list[int]:
    """The positions in the snapshot of the torrents the rule deletes."""
    steps = plan(scene.torrents, cfg, NOW, scene.memory, files=scene.files).steps
    hashes = [t.hash for t in scene.torrents]
    return [hashes.index(step.hash) for step in steps]


@pytest.mark.parametrize("name", list(NAMES))
def test_every_name_selects_with_a_literal_of_its_kind(name: str) -> None:
    case = CASES[KINDS[name]]
    scene = SCENES.get(name, stored)(name, case.yes, case.no)
    expected = [0, 2] if name == "shared" else [0]
    assert expected == selected(scene, rule_config(case.template.format(name=name)))
    # The same condition negated picks the other torrent: both were judged, not unknown.
    negated = "not (" + case.template.format(name=name) + ")"
    assert [1] == selected(scene, rule_config(negated))


def test_scenes_are_written_for_exactly_the_derived_names() -> None:
    assert set(SCENES) == set(DERIVED)


# --- uploaded_recent, sizes and rates ---------------------------------------------------------


def test_uploaded_recent_compares_with_a_size() -> None:
    cfg = rule_config("uploaded_recent > 1GiB", window=7 * DAY)
    busy, quiet = torrent(1, uploaded=10 * GIB), torrent(2, uploaded=10 * GIB)
    memory = remember(Memory(), [busy, quiet], NOW - 3 * DAY)
    busy, quiet = torrent(1, uploaded=12 * GIB), torrent(2, uploaded=10 * GIB + 512 * 1024**2)
    memory = remember(memory, [busy, quiet], NOW)
    steps = plan([busy, quiet], cfg, NOW, memory).steps
    assert [(busy.hash, ("uploaded_recent", 2 * GIB))] == [(s.hash, *s.why) for s in steps]


def test_uploaded_recent_forgets_uploads_before_the_window() -> None:
    cfg = rule_config("uploaded_recent > 1GiB", window=DAY)
    t = torrent(1, uploaded=0)
    memory = remember(Memory(), [t], NOW - 3 * DAY)
    memory = remember(memory, [torrent(1, uploaded=5 * GIB)], NOW - 2 * DAY)
    t = torrent(1, uploaded=5 * GIB + KIB)
    assert () == plan([t], cfg, NOW, remember(memory, [t], NOW)).steps


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("up_rate > 100KiB/s", {"up_rate": 100 * KIB + 1}, True),
        ("up_rate > 100KiB/s", {"up_rate": 100 * KIB}, False),
        ("up_rate > 100KiB", {"up_rate": 100 * KIB + 1}, True),  # a size literal, per second
        ("up_rate > 100KiB", {"up_rate": 100 * KIB}, False),
        ("100KB/s <= down_rate", {"down_rate": 100_000}, True),
        ("down_rate >= 1000", {"down_rate": 1000}, True),
        ("down_rate == 500/s", {"down_rate": 500}, True),
        ("up_rate in [1KiB, 2KiB/s]", {"up_rate": 2048}, True),
        ("up_rate < uploaded / age", {"up_rate": 1, "uploaded": 100, "age": 10}, True),
        ("uploaded / age >= 10/s", {"uploaded": 100, "age": 10}, True),
        ("up_rate * 1h >= 1GiB", {"up_rate": GIB // 3600 + 1}, True),
        ("size / down_rate > 1d", {"size": 10 * GIB, "down_rate": 100 * KIB}, True),
        ("up_rate / down_rate >= 2", {"up_rate": 4, "down_rate": 2}, True),
        ("max(up_rate, down_rate) > 2 * 1KiB/s", {"up_rate": 1, "down_rate": 3 * KIB}, True),
        ("uploaded_recent >= 1.5GiB", {"uploaded_recent": 1610612736}, True),
        ("uploaded_recent < uploaded", {"uploaded_recent": 1, "uploaded": 2}, True),
        ("uploaded_recent / size >= 2", {"uploaded_recent": 4, "size": 2}, True),
    ],
)
def test_sizes_and_rates_in_conditions(
    text: str, values: dict[str, object], expected: bool
) -> None:
    columns = {name: [value] for name, value in values.items()}
    assert expected == bool(parse_condition(text, KINDS).select(columns, [0]))


RATE_ADVICE = "compare it with a rate like 100KiB/s (or a size like 100KiB)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "up_rate > 1d",
            "cannot compare `up_rate` (a rate) with `1d` (a duration)\n`up_rate` is a rate; "
            + RATE_ADVICE,
        ),
        (
            "up_rate > size",
            "cannot compare `up_rate` (a rate) with `size` (a size)\n`up_rate` is a rate; "
            + RATE_ADVICE,
        ),
        (
            "size > 1GiB/s",
            "cannot compare `size` (a size) with `1GiB/s` (a rate)\n"
            "`size` is a size; compare it with a size like 500MB or 1.5GiB",
        ),
        (
            "uploaded_recent > 2d",
            "cannot compare `uploaded_recent` (a size) with `2d` (a duration)\n"
            "`uploaded_recent` is a size; compare it with a size like 500MB or 1.5GiB",
        ),
        ("uploaded_recent > ratio", "cannot compare `uploaded_recent` (a size) with `ratio`"),
        ("uploaded_recent + age > 0", "cannot add `uploaded_recent` (a size) and `age`"),
        ("up_rate + 1KiB > 0", "cannot add `up_rate` (a rate) and `1KiB` (a size)"),
        ("up_rate * up_rate > 0", "cannot multiply `up_rate` (a rate) and `up_rate` (a rate)"),
        ("complete and up_rate", "`up_rate` is a rate, not a condition\n" + RATE_ADVICE),
        ("up_rate > 1d/s", "`1d/s` is not a number, duration or size"),
    ],
)
def test_sizes_and_rates_do_not_mix_with_other_kinds(text: str, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        parse_condition(text, KINDS)
    assert str(caught.value).startswith(message)


def test_a_rate_is_no_size_in_the_configuration() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size("100KiB/s")


NUMERIC_NAMES = sorted(n for n, k in KINDS.items() if k in NUMERIC_KINDS)


@pytest.mark.parametrize("name", NUMERIC_NAMES)
def test_a_space_policy_may_order_by_any_numeric_name(name: str) -> None:
    text = """\
[rtorrent]
url = "scgi:///run/rtorrent.sock"

[safety]
allowed_roots = ["/srv/dl"]

[[space]]
path = "/srv/dl"
min_free = "50GiB"
candidates = "complete"
action = "delete"
order = "{name} asc"
"""
    config = parse_config(text.format(name=name), "test.toml")
    assert [name] == [key.name for key in config.space[0].order]
