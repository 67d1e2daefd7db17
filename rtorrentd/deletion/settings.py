"""`relabel` and `throttle`: set one value of a torrent, data and state untouched.

Both are idempotent: the engine gives no step to a torrent already so, and the
executor re-reads it first (`executor._reread`), so a second poll does nothing.
"""

from __future__ import annotations

from urllib.parse import quote

from rtorrentd.errors import StepRefused
from rtorrentd.rtorrent.client import RtorrentClient


def encode_label(label: str) -> str:
    """`label` as ruTorrent writes `d.custom1`: PHP `rawurlencode` of its UTF-8,
    which leaves only letters, digits and `-_.~` as they are (so does `quote`
    with no safe characters). The `label` field decodes it back."""
    return quote(label, safe="")


async def relabel(client: RtorrentClient, info_hash: str, label: str) -> None:
    """`d.custom1.set` to the encoded label."""
    await client.call("d.custom1.set", info_hash, encode_label(label))


async def throttle_defined(client: RtorrentClient, group: str) -> bool:
    """Whether rtorrent has a throttle group `group` (`throttle.up` or
    `throttle.down` in its configuration): `throttle.up.max` and `.down.max`
    answer -1 for a name it does not know (0.9.8 and 0.16 alike)."""
    for method in ("throttle.up.max", "throttle.down.max"):
        if await client.call(method, "", group) != -1:
            return True
    return False


async def throttle(client: RtorrentClient, info_hash: str, group: str) -> None:
    """Put the torrent in throttle group `group` ("" = the global limits).

    rtorrent refuses `d.throttle_name.set` on an active torrent ("Cannot set
    throttle on active download"), and takes an unknown name silently (the
    torrent then runs unthrottled): so an unknown group is refused here, and an
    active torrent is stopped, set and started again, as ruTorrent's throttle
    plugin does (the tracker hears "stopped" then "started"; files stay open).
    """
    if group and not await throttle_defined(client, group):
        raise StepRefused(
            f'rtorrent has no throttle group "{group}": add `throttle.up = {group},<KiB/s>`'
            " (or throttle.down) to rtorrent.rc, or change the rule's throttle"
        )
    (active,) = await client.values(info_hash, ("d.is_active",))
    if active:
        await client.call("d.stop", info_hash)
        try:
            await client.call("d.throttle_name.set", info_hash, group)
        finally:
            await client.call("d.start", info_hash)
    else:
        await client.call("d.throttle_name.set", info_hash, group)
