"""TOML configuration: what is accepted, the defaults, and every message in full."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtorrentd.config.load import config_warnings, load_config, parse_config
from rtorrentd.config.model import (
    Action,
    Config,
    DaemonSettings,
    OrderKey,
    RtorrentSettings,
    Safety,
)
from rtorrentd.errors import ConfigError

GIB = 1024**3
SOURCE = "rtorrentd.toml"

EXAMPLE = """\
[rtorrent]
url = "scgi:///home/roger/rtorrent/rpc.socket"
timeout = "30s"
username = "roger"
password_file = "/etc/rtorrentd/password"
tls_verify = false
ca_file = "/etc/ssl/ca.pem"
max_reply = "64MiB"
connect_timeout = 5

[daemon]
interval = "5m"
dry_run = true
window = "1d12h"

[safety]
allowed_roots = ["/home/roger/rtorrent/download/", "/srv//dl", "/srv/dl"]
max_deletes_per_poll = 0
max_delete_fraction = 1

[[rule]]
name = "keep labelled"
when = 'label == "keep"'
action = "keep"

[[rule]]
name = "seeded enough"
when = "complete and ratio >= 2.0"
action = "delete"                 # keep | stop | remove | delete

[[space]]
path = "/home/roger/rtorrent/download"
min_free = "50GiB"
target_free = "80GiB"
candidates = "complete and seeding_time >= 2d"
order = "seeders desc, ratio, seeding_time asc"
action = "delete"
"""

MINIMAL = """\
[rtorrent]
url = "scgi:///run/rtorrent.sock"

[safety]
allowed_roots = ["/srv/dl"]

[[rule]]
name = "seeded"
when = "complete and ratio >= 2"
action = "delete"
"""


def test_the_example_parses() -> None:
    config = parse_config(EXAMPLE, SOURCE)
    assert (
        RtorrentSettings(
            url="scgi:///home/roger/rtorrent/rpc.socket",
            timeout=30.0,
            connect_timeout=5.0,
            max_reply=64 * 1024**2,
            username="roger",
            password_file="/etc/rtorrentd/password",
            tls_verify=False,
            ca_file="/etc/ssl/ca.pem",
        )
        == config.rtorrent
    )
    assert DaemonSettings(interval=300.0, dry_run=True, window=129600.0) == config.daemon
    assert Safety(("/home/roger/rtorrent/download", "/srv/dl"), 0, 1.0) == config.safety
    rules = [(r.name, r.when.text, r.when.names, r.action, r.line) for r in config.rules]
    assert [
        ("keep labelled", 'label == "keep"', frozenset({"label"}), Action.KEEP, 21),
        ("seeded enough", "complete and ratio >= 2.0", {"complete", "ratio"}, Action.DELETE, 26),
    ] == rules
    (space,) = config.space
    order = (OrderKey("seeders", True), OrderKey("ratio", False), OrderKey("seeding_time", False))
    expected = ("/home/roger/rtorrent/download", 50 * GIB, 80 * GIB, order, Action.DELETE, 31)
    assert expected == (
        space.path,
        space.min_free,
        space.target_free,
        space.order,
        space.action,
        space.line,
    )
    assert "complete and seeding_time >= 2d" == space.candidates.text
    assert {"label", "complete", "ratio", "seeding_time", "seeders"} == config.names()


def test_defaults() -> None:
    config = parse_config('[rtorrent]\nurl = "http://u:p@host/RPC2"\n', SOURCE)
    expected = Config(
        SOURCE, RtorrentSettings("http://u:p@host/RPC2"), DaemonSettings(), Safety(), (), ()
    )
    assert expected == config


def test_space_defaults() -> None:
    text = MINIMAL + '[[space]]\npath = "/srv"\nmin_free = 1000\ncandidates = "true"\n'
    text += 'action = "delete"\n'
    (space,) = parse_config(text, SOURCE).space
    assert (1000, 1000, (OrderKey("seeding_time", True),)) == (
        space.min_free,
        space.target_free,
        space.order,
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [('"30s"', 30.0), ('"1d12h"', 129600.0), ("45", 45.0), ("2.5", 2.5), ('"90"', 90.0)],
)
def test_durations(value: str, seconds: float) -> None:
    config = parse_config(f'[rtorrent]\nurl = "scgi://h:1"\ntimeout = {value}\n', SOURCE)
    assert seconds == config.rtorrent.timeout


@pytest.mark.parametrize(
    ("value", "size"), [('"1.5GiB"', 1610612736), ('"500MB"', 500 * 10**6), ("4096", 4096)]
)
def test_sizes(value: str, size: int) -> None:
    config = parse_config(f'[rtorrent]\nurl = "scgi://h:1"\nmax_reply = {value}\n', SOURCE)
    assert size == config.rtorrent.max_reply


@pytest.mark.parametrize(
    "url", ["scgi:///run/rpc.socket", "scgi://127.0.0.1:5000", "https://u:p@host/RPC2"]
)
def test_urls(url: str) -> None:
    assert url == parse_config(f'[rtorrent]\nurl = "{url}"\n', SOURCE).rtorrent.url


def test_a_config_without_rules_is_valid_but_warned_about() -> None:
    config = parse_config('[rtorrent]\nurl = "scgi://h:1"\n', SOURCE)
    expected = ["rtorrentd.toml: no [[rule]] and no [[space]]: rtorrentd will do nothing"]
    assert expected == config_warnings(config)


def test_other_rtorrents_are_addresses_each_once_and_not_our_own() -> None:
    others = '["scgi:///b.sock", "scgi://127.0.0.1:5001", "scgi:///b.sock"]'
    config = parse_config(
        replace('["/srv/dl"]\n', f'["/srv/dl"]\nother_rtorrents = {others}\n'), SOURCE
    )
    assert ("scgi:///b.sock", "scgi://127.0.0.1:5001") == config.safety.other_rtorrents
    assert () == parse_config(MINIMAL, SOURCE).safety.other_rtorrents
    ours = replace(
        '["/srv/dl"]\n', '["/srv/dl"]\nother_rtorrents = ["scgi:///run/rtorrent.sock"]\n'
    )
    assert [
        f"{SOURCE}: [safety] other_rtorrents lists [rtorrent] url itself: every torrent would"
        " keep its own files as another's, so nothing would be deleted"
    ] == [w for w in config_warnings(parse_config(ours, SOURCE)) if "other_rtorrents" in w]


def test_missing_directories_are_warnings(tmp_path: Path) -> None:
    text = MINIMAL.replace('["/srv/dl"]', f'["{tmp_path}", "/nonexistent/dl"]')
    text += '[[space]]\npath = "/nonexistent/x"\nmin_free = 1\ncandidates = "true"\n'
    text += 'action = "delete"\n'
    expected = [
        'rtorrentd.toml: [safety] allowed_roots: "/nonexistent/dl" is not a directory '
        "on this machine",
        'rtorrentd.toml:11: space "/nonexistent/x": not a directory on this machine',
    ]
    assert expected == config_warnings(parse_config(text, SOURCE))


def test_load_config_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL)
    assert str(path) == load_config(path).source


def test_load_config_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    expected = f"{tmp_path}/nope.toml: cannot read the configuration: No such file or directory"
    assert expected == str(caught.value)


NOT_A_CONFIG_HINT = (
    "  name the TOML file itself: a configuration is a regular file of a few kilobytes"
)


def test_load_config_of_a_fifo_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)  # no writer: opening it to read would block
    with pytest.raises(ConfigError) as caught:
        load_config(fifo)
    expected = f"{fifo}: cannot read the configuration: it is a FIFO, not a regular file"
    assert f"{expected}\n{NOT_A_CONFIG_HINT}" == str(caught.value)


def test_load_config_of_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    expected = f"{tmp_path}: cannot read the configuration: it is a directory, not a regular file"
    assert f"{expected}\n{NOT_A_CONFIG_HINT}" == str(caught.value)


def test_load_config_of_a_file_over_the_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + "#" * 1024 * 1024)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    expected = f"{path}: cannot read the configuration: it is larger than 1 MiB"
    assert f"{expected}\n{NOT_A_CONFIG_HINT}" == str(caught.value)


def test_load_config_reads_a_file_at_the_size_cap_with_windows_newlines(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = MINIMAL.replace("\n", "\r\n")
    path.write_bytes((text + "#" * (1024 * 1024 - len(text))).encode())
    assert ("complete and ratio >= 2",) == tuple(r.when.text for r in load_config(path).rules)


def test_lines_inside_multi_line_strings_are_not_headers() -> None:
    # A regex holding a line that looks like a header: `[rule]` is a character class.
    condition = "'''\nname ~ \"\n[rule]\n\"\n'''"
    text = MINIMAL.replace('"complete and ratio >= 2"', condition)
    text += '\n[[rule]]\nname = "b"\nwhen = "nonsense"\naction = "stop"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE)
    expected = """\
rtorrentd.toml:18: rule "b": unknown field `nonsense` in `when`
    nonsense
    ^
  Fields are listed in README under "Condition fields"."""
    assert expected == str(caught.value)


def replace(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


def space(**keys: str) -> str:
    values = {"path": '"/srv/dl"', "min_free": '"50GiB"', "candidates": '"complete"'}
    values |= {"action": '"delete"', **keys}
    return MINIMAL + "\n[[space]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v)


ERRORS = [
    (
        "TOML syntax",
        'url = "x"\n[rtorrent]\ntimeout "30s"\n',
        """\
rtorrentd.toml:3: invalid TOML: Expected '=' after a key in a key/value pair
    timeout "30s"
            ^""",
    ),
    (
        "TOML cut short",
        "[rtorrent]\nurl = ",
        "rtorrentd.toml:2: invalid TOML: Invalid value at the end of the file",
    ),
    (
        "unknown section",
        MINIMAL + '[deamon]\ninterval = "5m"\n',
        """\
rtorrentd.toml:11: unknown section [deamon]
  did you mean [daemon]? The sections are [rtorrent], [daemon], [safety], [[rule]], [[space]], [metrics], [orphans], [trash], [notify].""",  # noqa: E501
    ),
    (
        "key outside a section",
        "verbose = true\n" + MINIMAL,
        """\
rtorrentd.toml:1: unknown key "verbose" outside any section
  The sections are [rtorrent], [daemon], [safety], [[rule]], [[space]], [metrics], [orphans], [trash], [notify].""",  # noqa: E501
    ),
    (
        "section that is not a table",
        "daemon = 5\n" + MINIMAL,
        "rtorrentd.toml:1: daemon = 5 is not a section\n  write [daemon]",
    ),
    (
        "unknown key",
        replace('.sock"\n', '.sock"\ntimout = "30s"\n'),
        """\
rtorrentd.toml:3: [rtorrent]: unknown key "timout"
  did you mean "timeout"? [rtorrent] takes url, timeout, connect_timeout, max_reply, \
username, password_file, tls_verify, ca_file.""",
    ),
    (
        "wrong type",
        MINIMAL + '[daemon]\ndry_run = "yes"\n',
        """\
rtorrentd.toml:12: [daemon]: dry_run = "yes" is not true or false
  write true or false, without quotes""",
    ),
    (
        "bad duration",
        MINIMAL + '[daemon]\ninterval = "5 minutes"\n',
        """\
rtorrentd.toml:12: [daemon]: interval = "5 minutes" is not a duration
  write a number and a unit, like "30s", "5m", "2h" or "1d12h" (units s m h d w), \
or a number of seconds""",
    ),
    (
        "interval too short",
        MINIMAL + "[daemon]\ninterval = 5\n",
        """\
rtorrentd.toml:12: [daemon]: interval = 5 is shorter than 10s
  each poll keeps rtorrent busy (it answers under its global lock); write "10s" or more""",
    ),
    (
        "negative timeout",
        replace('.sock"\n', '.sock"\ntimeout = -1\n'),
        """\
rtorrentd.toml:3: [rtorrent]: timeout = -1 is not more than zero
  write a number and a unit, like "30s", "5m", "2h" or "1d12h" (units s m h d w), \
or a number of seconds""",
    ),
    (
        "bad size",
        replace('.sock"\n', '.sock"\nmax_reply = "256 megs"\n'),
        """\
rtorrentd.toml:3: [rtorrent]: max_reply = "256 megs" is not a size
  write a number and a unit, like "500MB" or "1.5GiB" (B KB MB GB TB x1000, \
KiB MiB GiB TiB x1024), or a number of bytes""",
    ),
    (
        "bad url",
        replace("scgi:///run/rtorrent.sock", "ftp://host"),
        """\
rtorrentd.toml:2: [rtorrent]: url = "ftp://host" is not an rtorrent address
  write scgi:///path/to/rpc.socket, scgi://127.0.0.1:5000 or http(s)://host/RPC2""",
    ),
    (
        "no url",
        "[daemon]\ndry_run = true\n",
        """\
rtorrentd.toml: [rtorrent]: url is missing
  write where rtorrent listens, like url = "scgi:///home/you/rtorrent/rpc.socket\"""",
    ),
    (
        "fraction above 1",
        replace('["/srv/dl"]\n', '["/srv/dl"]\nmax_delete_fraction = 1.5\n'),
        """\
rtorrentd.toml:6: [safety]: max_delete_fraction = 1.5 is not a fraction in (0, 1]
  write the largest share of all torrents one poll may delete, like 0.5 for half""",
    ),
    (
        "fraction of zero",
        replace('["/srv/dl"]\n', '["/srv/dl"]\nmax_delete_fraction = 0\n'),
        """\
rtorrentd.toml:6: [safety]: max_delete_fraction = 0 is not a fraction in (0, 1]
  write the largest share of all torrents one poll may delete, like 0.5 for half""",
    ),
    (
        "negative count",
        replace('["/srv/dl"]\n', '["/srv/dl"]\nmax_deletes_per_poll = -1\n'),
        """\
rtorrentd.toml:6: [safety]: max_deletes_per_poll = -1 is not a whole number of 0 or more
  write a count like 20; 0 deletes nothing""",
    ),
    (
        "other rtorrents not a list",
        replace('["/srv/dl"]\n', '["/srv/dl"]\nother_rtorrents = "scgi:///b.sock"\n'),
        """\
rtorrentd.toml:6: [safety]: other_rtorrents = "scgi:///b.sock" is not a list of rtorrent \
addresses
  write a list, like ["scgi:///home/other/rtorrent/rpc.socket"]""",
    ),
    (
        "other rtorrent not an address",
        replace('["/srv/dl"]\n', '["/srv/dl"]\nother_rtorrents = ["rtorrent.sock"]\n'),
        """\
rtorrentd.toml:6: [safety]: other_rtorrents = ["rtorrent.sock"] has "rtorrent.sock", which \
is not an rtorrent address
  write scgi:///path/to/rpc.socket, scgi://127.0.0.1:5000 or http(s)://host/RPC2""",
    ),
    (
        "relative root",
        replace('"/srv/dl"', '"srv/dl"'),
        """\
rtorrentd.toml:5: [safety]: allowed_roots = ["srv/dl"] has "srv/dl", which is not an \
absolute path
  write a full path, like "/home/you/rtorrent/download\"""",
    ),
    (
        "the root of everything",
        replace('"/srv/dl"', '"/srv/dl", "/srv/.."'),
        """\
rtorrentd.toml:5: [safety]: allowed_roots = ["/srv/dl", "/srv/.."] has "/srv/..", which is \
the whole filesystem
  deleting anything anywhere is not a policy: list the directories of your downloads""",
    ),
    (
        "deleting without allowed roots",
        replace('allowed_roots = ["/srv/dl"]', ""),
        """\
rtorrentd.toml:10: rule "seeded": action = "delete" needs [safety] allowed_roots
  list the directories it may delete in, like allowed_roots = ["/home/you/dl"]""",
    ),
    (
        "duplicate rule name",
        MINIMAL + '\n[[rule]]\nname = "seeded"\nwhen = "complete"\naction = "stop"\n',
        """\
rtorrentd.toml:13: rule "seeded": the name "seeded" is also used by the rule at line 7
  give each rule its own name""",
    ),
    (
        "missing name",
        MINIMAL + '\n[[rule]]\nwhen = "complete"\naction = "stop"\n',
        """\
rtorrentd.toml:12: rule #2: name is missing
  every [[rule]] needs name, when and action""",
    ),
    (
        "missing when",
        MINIMAL + '\n[[rule]]\nname = "x"\naction = "stop"\n',
        """\
rtorrentd.toml:12: rule "x": when is missing
  every [[rule]] needs name, when and action""",
    ),
    (
        "empty name",
        replace('name = "seeded"', 'name = " "'),
        """\
rtorrentd.toml:8: rule " ": name = " " is empty
  give the rule a short name: logs and `rtorrentd plan` show it""",
    ),
    (
        "unknown action",
        replace('action = "delete"', 'action = "nuke"'),
        """\
rtorrentd.toml:10: rule "seeded": action = "nuke" is not an action
  write keep, stop, remove, delete, trash, relabel or throttle""",
    ),
    (
        "relabel without a label",
        replace('action = "delete"', 'action = "relabel"'),
        """\
rtorrentd.toml:10: rule "seeded": action = "relabel" needs label
  write the label to set, like label = "seeded\"""",
    ),
    (
        "throttle without a group",
        replace('action = "delete"', 'action = "throttle"'),
        """\
rtorrentd.toml:10: rule "seeded": action = "throttle" needs throttle
  write the throttle to set, like throttle = "slow\"""",
    ),
    (
        "a label for another action",
        replace('action = "delete"', 'action = "stop"\nlabel = "x"'),
        """\
rtorrentd.toml:11: rule "seeded": label is only for action = "relabel", not "stop"
  remove label, or write action = "relabel\"""",
    ),
    (
        "a throttle group for relabel",
        replace('action = "delete"', 'action = "relabel"\nlabel = "x"\nthrottle = "slow"'),
        """\
rtorrentd.toml:12: rule "seeded": throttle is only for action = "throttle", not "relabel"
  remove throttle, or write action = "throttle\"""",
    ),
    (
        "a label with a control character",
        replace('action = "delete"', 'action = "relabel"\nlabel = "a\\tb"'),
        """\
rtorrentd.toml:11: rule "seeded": label = "a\\tb" has a control character
  write it on one line, without tabs""",
    ),
    (
        "unknown key in a rule",
        replace('action = "delete"', 'action = "delete"\nwen = "x"'),
        """\
rtorrentd.toml:11: rule "seeded": unknown key "wen"
  did you mean "when"? [[rule]] takes name, when, action, label, throttle.""",
    ),
    (
        "[rule] for [[rule]]",
        replace("[[rule]]", "[rule]"),
        "rtorrentd.toml:7: write [[rule]], one table for each rule, not [rule]",
    ),
    (
        "unknown field in when",
        replace("complete and ratio >= 2", "complete and leechrs == 0"),
        """\
rtorrentd.toml:9: rule "seeded": unknown field `leechrs` in `when`
    complete and leechrs == 0
                 ^
  did you mean `leechers`? Fields are listed in README under "Condition fields".""",
    ),
    (
        "unknown function in when",
        replace("complete and ratio >= 2", "complete and avg(ratio, 2) > 1"),
        """\
rtorrentd.toml:9: rule "seeded": unknown function `avg` in `when`
    complete and avg(ratio, 2) > 1
                 ^
  the functions are min(a, b) and max(a, b)""",
    ),
    (
        "invalid regex in when",
        replace('"complete and ratio >= 2"', "'name ~ \"x(26\"'"),
        """\
rtorrentd.toml:9: rule "seeded": invalid regular expression: missing ), unterminated \
subpattern in `when`
    name ~ "x(26"
             ^""",
    ),
    (
        "type error on the second line of a multi-line when",
        replace('"complete and ratio >= 2"', '"""\ncomplete\n  and ratio >= 2GiB"""'),
        """\
rtorrentd.toml:11: rule "seeded": cannot compare `ratio` (a number) with `2GiB` (a size) \
in `when`
      and ratio >= 2GiB
                   ^
  `ratio` is a number; compare it with a number like 2.0""",
    ),
    (
        "type error in candidates",
        space(candidates='"complete and seeding_time > 2GB"'),
        """\
rtorrentd.toml:15: space "/srv/dl": cannot compare `seeding_time` (a duration) with `2GB` \
(a size) in `candidates`
    complete and seeding_time > 2GB
                                ^
  `seeding_time` is a duration; compare it with a duration like 12h or 1d12h""",
    ),
    (
        "order by text",
        space(order='"label desc"'),
        """\
rtorrentd.toml:17: space "/srv/dl": order = "label desc" has `label`, which is text, \
not a number
  order by numbers, sizes, durations or timestamps, like seeding_time desc""",
    ),
    (
        "order by an unknown field",
        space(order='"seeders desc, ratoi"'),
        """\
rtorrentd.toml:17: space "/srv/dl": order = "seeders desc, ratoi" has unknown field `ratoi`
  did you mean `ratio`? Fields are listed in README under "Condition fields".""",
    ),
    (
        "order with a bad direction",
        space(order='"seeders down"'),
        """\
rtorrentd.toml:17: space "/srv/dl": order = "seeders down" has "seeders down", not a field \
and asc or desc
  write field names with asc or desc, like "seeders desc, ratio desc\"""",
    ),
    (
        "space target below minimum",
        space(target_free='"10GiB"'),
        """\
rtorrentd.toml:17: space "/srv/dl": target_free = "10GiB" is less than min_free = "50GiB"
  target_free is how much to free up to once below min_free: at least min_free""",
    ),
    (
        "space action that frees nothing",
        space(action='"stop"'),
        """\
rtorrentd.toml:16: space "/srv/dl": action = "stop" does not free space
  write "delete": only deleting frees space (stop and remove keep the data)""",
    ),
    (
        "relative space path",
        space(path='"dl"'),
        """\
rtorrentd.toml:13: space "dl": path = "dl" is not an absolute path
  write a full path, like "/home/you/rtorrent/download\"""",
    ),
    (
        "space without min_free",
        space(min_free=""),
        """\
rtorrentd.toml:12: space "/srv/dl": min_free is missing
  every [[space]] needs path, min_free, candidates and action""",
    ),
    (
        "two space policies for one path",
        space() + '\n[[space]]\npath = "/srv/dl/"\nmin_free = 1\ncandidates = "true"\n'
        'action = "delete"',
        """\
rtorrentd.toml:19: space "/srv/dl/": the path "/srv/dl" is also used by the space policy \
at line 12
  give each space policy its own path""",
    ),
]


@pytest.mark.parametrize(("text", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE)
    assert message == str(caught.value)


def test_relabel_and_throttle_carry_their_target_and_read_their_field() -> None:
    text = MINIMAL.replace('action = "delete"', 'action = "relabel"\nlabel = "seeded by me"')
    text += '[[rule]]\nname = "slow"\nwhen = "complete"\naction = "throttle"\nthrottle = ""\n'
    config = parse_config(text, SOURCE)
    relabel, throttle = config.rules
    assert (Action.RELABEL, "seeded by me") == (relabel.action, relabel.target)
    assert (Action.THROTTLE, "") == (throttle.action, throttle.target)
    assert {"label", "throttle"} <= config.names()


def test_a_password_in_a_bad_url_is_not_shown() -> None:
    text = '[rtorrent]\nurl = "ftp://me:hunter2@seedbox.example/RPC2"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/etc/rtorrentd/config.toml")
    assert "hunter2" not in str(caught.value)
    assert "me:***@seedbox.example" in str(caught.value)


def test_a_rule_name_may_not_look_like_a_space_step() -> None:
    text = (
        '[rtorrent]\nurl = "scgi:///r.sock"\n[safety]\nallowed_roots = ["/data"]\n'
        '[[rule]]\nname = "space /data"\nwhen = "complete"\naction = "stop"\n'
    )
    with pytest.raises(ConfigError, match="starts with `space `") as caught:
        parse_config(text, "/etc/rtorrentd/config.toml")
    assert str(caught.value).startswith("/etc/rtorrentd/config.toml:6: ")


# --- every value has a range; no input gives a traceback -------------------------

NINES = "9" * 5000
LONG = "9" * 40 + "…"  # how a long value is shown
RANGE_ERRORS = [
    (
        "integer of thousands of digits as url",
        f"[rtorrent]\nurl = {NINES}\n",
        f"""\
rtorrentd.toml:2: [rtorrent]: url = {LONG} is a number of 5000 digits
  write a value in the setting's range: none takes a number of more than 20 digits""",
    ),
    (
        "integer of thousands of digits as timeout",
        replace('.sock"\n', f'.sock"\ntimeout = {NINES}\n'),
        f"""\
rtorrentd.toml:3: [rtorrent]: timeout = {LONG} is a number of 5000 digits
  write a value in the setting's range: none takes a number of more than 20 digits""",
    ),
    (
        "integer of thousands of digits in a rule",
        MINIMAL + f"max = {NINES}\n",
        f"""\
rtorrentd.toml:11: rule #1: max = {LONG} is a number of 5000 digits
  write a value in the setting's range: none takes a number of more than 20 digits""",
    ),
    (
        "duration that overflows a float",
        replace('.sock"\n', f'.sock"\ntimeout = "{"9" * 400}s"\n'),
        f"""\
rtorrentd.toml:3: [rtorrent]: timeout = "{LONG}" is more than 7d
  write at most "7d", like "30s\"""",
    ),
    (
        "size that overflows a float",
        replace('.sock"\n', f'.sock"\nmax_reply = "{"9" * 400}.5GiB"\n'),
        f"""\
rtorrentd.toml:3: [rtorrent]: max_reply = "{LONG}" is more than 16GiB
  write at most "16GiB", like "256MiB\"""",
    ),
    (
        "a float too large for a timeout",
        replace('.sock"\n', '.sock"\nconnect_timeout = 1e308\n'),
        """\
rtorrentd.toml:3: [rtorrent]: connect_timeout = 1e+308 is more than 7d
  write at most "7d", like "10s\"""",
    ),
    (
        "interval too long",
        MINIMAL + '[daemon]\ninterval = "8d"\n',
        """\
rtorrentd.toml:12: [daemon]: interval = "8d" is more than 7d
  write at most "7d", like "5m\"""",
    ),
    (
        "window too long",
        MINIMAL + "[daemon]\nwindow = 99999999999999999999\n",
        """\
rtorrentd.toml:12: [daemon]: window = 99999999999999999999 is more than 365d
  write at most "365d", like "7d\"""",
    ),
    (
        "too many deletes per poll",
        replace("[safety]\n", "[safety]\nmax_deletes_per_poll = 10000001\n"),
        """\
rtorrentd.toml:5: [safety]: max_deletes_per_poll = 10000001 is more than 1000000
  write a count of at most 1000000, like 20; 0 deletes nothing""",
    ),
    (
        "min_free too large",
        space(min_free='"2000TiB"'),
        """\
rtorrentd.toml:14: space "/srv/dl": min_free = "2000TiB" is more than 1024TiB
  write at most "1024TiB", like "50GiB\"""",
    ),
    (
        "integer literal of thousands of digits in a condition",
        replace("ratio >= 2", f"ratio >= {NINES}"),
        """\
rtorrentd.toml:9: rule "seeded": `99999999999999999999…` is out of range in `when`
    complete and ratio >= 9999999999999999999999999999999999999999999999999999999999…
                          ^
  write a number of at most 1000000000000000000 (10^18); durations count seconds, \
sizes bytes""",
    ),
    (
        "size literal that overflows a float",
        replace("ratio >= 2", f"size > {'9' * 400}GiB"),
        """\
rtorrentd.toml:9: rule "seeded": `99999999999999999999…` is out of range in `when`
    complete and size > 999999999999999999999999999999999999999999999999999999999999…
                        ^
  write a number of at most 1000000000000000000 (10^18); durations count seconds, \
sizes bytes""",
    ),
    (
        "sum of literals that overflows a float",
        replace("ratio >= 2", f"ratio >= 0.5 + {'1000000000000000000 * ' * 20}2"),
        """\
rtorrentd.toml:9: rule "seeded": `0.5 + 1000000000000000000 * 100000000000…` is too \
large to compute in `when`
    complete and ratio >= 0.5 + 1000000000000000000 * 1000000000000000000 * 10000000…
                          ^
  write a number of at most 1000000000000000000 (10^18); durations count seconds, \
sizes bytes""",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [e[1:] for e in RANGE_ERRORS], ids=[e[0] for e in RANGE_ERRORS]
)
def test_range_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE)
    assert message == str(caught.value)
