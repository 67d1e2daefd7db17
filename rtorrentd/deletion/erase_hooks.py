"""What rtorrent runs when a torrent is erased, read from rtorrent and judged.

`remove` keeps a torrent's data and `delete` keeps files another torrent shares;
an `event.download.erased` handler that deletes data (an `rm -rf` of
d.base_path) would undo both. `method.get` gives each handler's command, and
`erase_handlers` judges them; this is the I/O around that pure table.
"""

from __future__ import annotations

from rtorrentd.deletion import erase_handlers
from rtorrentd.deletion.erase_handlers import ErasePolicy
from rtorrentd.errors import RpcError
from rtorrentd.rtorrent.client import RtorrentClient


async def erase_policy(client: RtorrentClient) -> ErasePolicy:
    """What rtorrent's `event.download.erased` handlers would do to data.

    A build whose handlers cannot be read is treated like one with an unknown
    handler: not knowing what d.erase will do is a doubt, and doubt refuses.
    """
    try:
        return erase_handlers.judge(await client.handlers("event.download.erased"))
    except RpcError as exc:
        return erase_handlers.unreadable(str(exc))
