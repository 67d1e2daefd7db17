"""The classic nginx bridge, as old ruTorrent-era guides set it up: a prefix location
passing everything under /scgi to rtorrent's socket, with no authentication. It
works, and `rtorrentd check` warns that whoever reaches it runs commands as rtorrent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flow import rtorrentd
from harness import RtorrentProcess, TorrentFactory, random_bytes
from harness.nginx import NginxProcess

from rtorrentd.config.load import config_warnings, parse_config
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport

StartNginx = Callable[..., NginxProcess]

RULE = '[[rule]]\nname = "done"\nwhen = "complete"\naction = "stop"\n'
WARNING = "sends no login: anyone who can reach that nginx location can run any command"


def classic_location(socket_path: Path) -> str:
    """The location block of the old guides, word for word but the socket."""
    return (
        f"location ^~ /scgi {{\n    include scgi_params;\n    scgi_pass unix:{socket_path};\n}}\n"
    )


def warnings_for(rtorrent_table: str) -> list[str]:
    return config_warnings(parse_config(f"[rtorrent]\n{rtorrent_table}\n{RULE}", "c.toml"))


@pytest.mark.parametrize(
    "url", ["http://localhost/scgi", "https://seedbox.example/RPC2", "HTTP://10.0.0.2:8080/RPC2"]
)
def test_an_http_url_with_no_login_is_warned_about(url: str) -> None:
    (warning,) = warnings_for(f'url = "{url}"')
    assert warning.startswith(f'c.toml: [rtorrent] url = "{url}" {WARNING} as rtorrent')
    assert "(execute.*)" in warning
    assert "auth_basic and TLS" in warning
    assert "scgi:///path/to/rpc.socket" in warning


@pytest.mark.parametrize(
    "table",
    [
        'url = "scgi:///run/rtorrent/rpc.socket"',
        'url = "scgi://127.0.0.1:5000"',
        'url = "https://rtorrentd:secret@seedbox.example/RPC2"',
        'url = "https://seedbox.example/RPC2"\nusername = "rtorrentd"',
        'url = "https://seedbox.example/RPC2"\npassword_file = "/etc/rtorrentd/pw"',
    ],
)
def test_a_socket_or_a_login_is_not_warned_about(table: str) -> None:
    assert [] == warnings_for(table)


@pytest.mark.integration
@pytest.mark.anyio
async def test_the_classic_bridge_works_and_check_warns_about_it(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    nginx: StartNginx,
    tmp_path: Path,
) -> None:
    one = torrent_factory("one.bin", random_bytes(5000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(one)
    proxy = nginx(rtorrent.socket_path, users={}, location=classic_location(rtorrent.socket_path))
    url = proxy.url("/scgi").replace("127.0.0.1", "localhost")
    config = tmp_path / "config.toml"
    config.write_text(f'[rtorrent]\nurl = "{url}"\ntimeout = "10s"\n{RULE}')

    transport = open_transport(url, timeout=10.0)
    try:
        (got,) = await RtorrentClient(transport).snapshot(["ratio", "label"])
    finally:
        await transport.aclose()
    checked = rtorrentd("check", "-c", str(config))
    listed = rtorrentd("list", "-c", str(config))

    assert (one.info_hash, "one.bin", 0.0, "") == (got.hash, got.name, got.ratio, got.label)
    assert 0 == checked.returncode
    assert f'warning: {config}: [rtorrent] url = "{url}" {WARNING}' in checked.stderr
    assert f"valid; 1 rule (0 delete), 0 space policies, rtorrent at {url}" in checked.stdout
    assert (0, "") == (listed.returncode, listed.stderr)
    assert "one.bin" in listed.stdout
    assert "POST /scgi " in proxy.logs()  # through nginx, not around it
