"""What rtorrent runs when a torrent is erased, and whether that forbids erasing.

`remove` keeps a torrent's data and `delete` keeps files another torrent shares;
an `event.download.erased` handler of the user's own (an `rm -rf` of
d.base_path) would undo both, so `remove` and `delete` run only where the
handlers can be listed and are rtorrent's own.
"""

from __future__ import annotations

from rtorrentd.errors import RpcError
from rtorrentd.rtorrent.client import RtorrentClient

# rtorrent 0.9.8's own handlers of `event.download.erased`; any other key may be a
# user's hook that deletes data (`rm -rf` of d.base_path), which would break both
# `remove` (keep data) and our care for shared and hard-linked files.
DEFAULT_ERASE_HANDLERS = frozenset({"!_download_list", "~_delete_tied"})


async def erase_handlers(client: RtorrentClient) -> frozenset[str]:
    """Keys of `event.download.erased` that are not rtorrent's own."""
    keys = await client.call("method.list_keys", "", "event.download.erased")
    if not isinstance(keys, list):
        return frozenset({repr(keys)})
    return frozenset(str(k) for k in keys) - DEFAULT_ERASE_HANDLERS


async def hooks_refusal(client: RtorrentClient) -> str:
    """Why `remove` and `delete` must not run now, or "" when they may.

    A build that cannot list the handlers is treated like one with a hook: not
    knowing what d.erase will do is a doubt, and doubt refuses.
    """
    try:
        hooks = await erase_handlers(client)
    except RpcError as exc:
        return (
            f"cannot check what rtorrent runs when a torrent is erased ({exc}); "
            "rtorrentd removes and deletes only where event.download.erased can be listed"
        )
    return _hooks_reason(hooks) if hooks else ""


def _hooks_reason(hooks: frozenset[str]) -> str:
    return (
        "rtorrent runs extra commands when a torrent is erased "
        f"(event.download.erased: {', '.join(sorted(hooks))}); they may delete data "
        "rtorrentd must keep. Remove them from rtorrent.rc: rtorrentd deletes data itself."
    )
