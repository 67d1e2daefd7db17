"""What differs between rtorrent versions: version parsing, faults, escaped names,
and the wait for a session save (the integration side is in test_client)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtorrentd.errors import (
    MalformedReply,
    RpcFault,
    SessionNotSaved,
    UnknownMethod,
    UnknownTorrent,
    UntrustedCommand,
)
from rtorrentd.rtorrent import session
from rtorrentd.rtorrent.dialect import Dialect, classify_fault, parse_version, unescape_name


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("0.9.8", ((0, 9, 8), "d.multicall2", 100, False, False)),
        ("0.15.5", ((0, 15, 5), "d.multicall2", 100, False, True)),
        ("0.16.5", ((0, 16, 5), "d.multicall2", 63, False, True)),
        ("0.16.6", ((0, 16, 6), "d.multicall2", 63, True, True)),
        ("0.16.14", ((0, 16, 14), "d.multicall", 63, True, True)),
        ("0.16.17", ((0, 16, 17), "d.multicall", 63, True, True)),
        ("0.16.17-rc1", ((0, 16, 17), "d.multicall", 63, True, True)),
    ],
)
def test_dialect_of_each_version(reply: str, expected: tuple[object, ...]) -> None:
    dialect = parse_version(reply)
    assert expected == (
        dialect.version,
        dialect.multicall,
        dialect.max_connections,
        dialect.saves_in_background,
        dialect.escapes_names,
    )
    assert ".".join(map(str, dialect.version)) == dialect.text


@pytest.mark.parametrize("reply", ["", "unknown", "v0.9.8", 98, None, ["0.9.8"]])
def test_a_version_that_is_none(reply: object) -> None:
    with pytest.raises(MalformedReply, match=r"system\.client_version"):
        parse_version(reply)


# Every wording measured (RTORRENT.md): 0.9.8, 0.16 with xmlrpc-c, 0.16 with tinyxml2.
@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (-501, "Could not find info-hash.", UnknownTorrent),
        (-503, "invalid parameters: info-hash not found", UnknownTorrent),
        (-500, "invalid parameters: info-hash not found", UnknownTorrent),
        (-32602, "invalid parameters: info-hash not found", UnknownTorrent),
        (-506, "Method 'x' not defined", UnknownMethod),
        (-500, "method 'x' not defined", UnknownMethod),
        (-32601, "Method not found", UnknownMethod),
        (-501, "Unsupported target type found.", RpcFault),
        (-503, "invalid parameters: invalid target", RpcFault),
        (-503, "Target of wrong type to generic command.", RpcFault),
        (-503, "Could not find view.", RpcFault),
        (-32601, "JSON-RPC not supported", UnknownMethod),
        # 0.16.9+ on an untrusted connection: -507 over XML-RPC, -32601 over JSON-RPC.
        (-507, 'Command "d.stop" is not allowed for untrusted connections.', UntrustedCommand),
        (-32601, 'Command "d.stop" is not allowed for untrusted connections.', UntrustedCommand),
    ],
)
def test_faults_of_every_version(code: int, message: str, kind: type[RpcFault]) -> None:
    classified = classify_fault(RpcFault(code, message))
    assert (kind, code, message) == (type(classified), classified.code, classified.message)


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("caf%E9.bin", "caf?.bin"),
        ("%F0%9F%98%80x.bin", "????x.bin"),
        ("a%01%E9.bin", "a??.bin"),
        ("mix%C3%A9%E9.bin", "mix???.bin"),
        # Not an escape 0.16 makes: left as it is.
        ("100%.bin", "100%.bin"),
        ("%41%7E.bin", "%41%7E.bin"),
        ("%e9.bin", "%e9.bin"),
        ("café.bin", "café.bin"),
    ],
)
def test_escaped_names_in_the_lossy_form(sent: str, shown: str) -> None:
    assert shown == unescape_name(sent)


@pytest.mark.parametrize(
    ("message", "command"),
    [
        ('Command "d.stop" is not allowed for untrusted connections.', "d.stop"),
        (
            'Command "d.ignore_commands" is not allowed for untrusted connections.',
            "d.ignore_commands",
        ),
        ('command "execute.capture" is NOT allowed for untrusted connections', "execute.capture"),
    ],
)
def test_an_untrusted_refusal_names_the_command_and_the_fix(message: str, command: str) -> None:
    refused = classify_fault(RpcFault(-507, message))
    assert isinstance(refused, UntrustedCommand)
    assert command == refused.command
    assert str(refused).startswith(
        f"rtorrent refused {command}: this connection is marked untrusted"
    )
    assert "scgi:///path/to/rpc.socket" in str(refused)
    assert '"scgi_param UNTRUSTED_CONNECTION 0;"' in str(refused)


@pytest.mark.parametrize(
    ("reply", "json"),
    [("0.9.8", False), ("0.15.1", False), ("0.15.2", True), ("0.16.17", True)],
)
def test_the_snapshot_over_json_from_0_15_2(reply: str, json: bool) -> None:
    assert json == parse_version(reply).snapshot_over_json


def test_the_oldest_dialect_escapes_nothing() -> None:
    assert Dialect((0, 9, 8)) == parse_version("0.9.8")
    assert not parse_version("0.9.8").escapes_names


# --- the wait for a background save ----------------------------------------------

HASH = "AB" * 20


def write_session(directory: Path, content: bytes) -> None:
    """Write the files as rtorrent 0.16 does: each as *.new, then renamed."""
    for name in session.SessionFile(str(directory), HASH).names:
        (directory / f"{name}.new").write_bytes(content)
        os.replace(directory / f"{name}.new", directory / name)


@pytest.mark.anyio
async def test_a_save_that_landed_is_seen_at_once(tmp_path: Path) -> None:
    files = session.SessionFile(str(tmp_path), HASH.lower())
    write_session(tmp_path, b"old")
    before = files.signature()
    write_session(tmp_path, b"new state")
    await session.wait_until_replaced(files, before, timeout=5.0)


@pytest.mark.anyio
async def test_a_save_that_never_lands_is_an_error(tmp_path: Path) -> None:
    files = session.SessionFile(str(tmp_path), HASH)
    write_session(tmp_path, b"old")
    with pytest.raises(
        SessionNotSaved, match=r"did not write .*\.torrent\.rtorrent' within 0.05 s"
    ):
        await session.wait_until_replaced(files, files.signature(), timeout=0.05)


@pytest.mark.anyio
async def test_a_half_written_save_is_not_a_save(tmp_path: Path) -> None:
    files = session.SessionFile(str(tmp_path), HASH)
    before = files.signature()
    write_session(tmp_path, b"new")
    (tmp_path / f"{HASH}.torrent.rtorrent.new").write_bytes(b"newer, being written")
    assert files.pending()
    with pytest.raises(SessionNotSaved):
        await session.wait_until_replaced(files, before, timeout=0.05)


def test_an_invisible_session_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SessionNotSaved, match="cannot see"):
        session.check_visible(str(tmp_path / "elsewhere"), "0.16.17")
    session.check_visible(str(tmp_path), "0.16.17")
