"""What rtorrent runs when a torrent is erased, judged command by command.

`d.erase` fires `event.download.erased`. `method.list_keys` shows only the handlers'
keys, and a key says nothing: a handler replaced under rtorrent's own key
`~_delete_tied` can be `rm -rf` of the data. So each handler's *command* (from
`method.get`) is matched against a table of commands known to keep data; any other
refuses `remove` (which promises to keep the data) and `delete` (which keeps files
other torrents share). Pure: strings in, a verdict out.

Known commands (measured on rtorrent 0.9.8 and 0.16.17; ruTorrent's plugins read
from its source, as they send them through `method.set_key`):
- rtorrent's defaults `!_download_list` = `ui.unfocus_download=` and
  `~_delete_tied` = `d.delete_tied=` (the tied `.torrent` is looked after by
  `deletion.tied`);
- ruTorrent's history plugin, `thistory<user>`: runs its `update.php` to log the
  erase, or `cat=` when deletions are not logged;
- ruTorrent's erasedata plugin (up to 5.3.3), `erasedata0<user>`/`erasedata1<user>`:
  deletes the data only when the torrent's `d.custom5` is set, so it is allowed only
  for torrents whose `d.custom5` is empty.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What a handler does to a torrent's data when the torrent is erased."""

    KEEPS = "keeps data"
    KEEPS_IF_NO_CUSTOM5 = "keeps data while d.custom5 is empty"
    UNKNOWN = "may delete data"


# A path or name as ruTorrent writes it into a command: nothing that could start
# another argument, command or list.
_PATH = r'[^,{}()"\\$;\s]+'
_USER = r"[A-Za-z0-9_.@-]*"
_OLD_OR_NEW = r"(?:get_)?"  # ruTorrent sends d.get_x to old builds, d.x to new ones

# Arguments ruTorrent's history plugin passes to update.php: getters only.
_HISTORY_GETTER = (
    rf"\$d\.(?:{_OLD_OR_NEW}(?:name|size_bytes|bytes_done|ratio|creation_date|custom1)="
    rf"|(?:up\.total|get_up_total)="
    rf"|{_OLD_OR_NEW}custom=(?:addtime|seedingtime|x-pushbullet))"
)
_HISTORY_TRACKERS = rf'"\$t\.multicall=\$d\.{_OLD_OR_NEW}hash=,t\.{_OLD_OR_NEW}url=,cat=#"'
_HISTORY_RUN = (
    r"(?:execute|execute\.nothrow\.bg)=\{"
    r'|execute\.nothrow=\{sh,-c,\\"\$0\\" \\"\$@\\" </dev/null >/dev/null 2>&1 &,'
)
_HISTORY = (
    rf"cat=|(?:{_HISTORY_RUN}){_PATH},{_PATH}/plugins/history/update\.php,3"
    rf"(?:,(?:{_HISTORY_GETTER}|{_HISTORY_TRACKERS}))*,{_USER}\}}"
)
_ERASEDATA_LIST = (
    rf"(?:d\.open= ; )?branch=d\.{_OLD_OR_NEW}custom5=,"
    rf'"f\.multicall=,\\"file\.append=\(cat,{_PATH}/,\$system\.pid=,\.tmp\),'
    rf'\$f\.{_OLD_OR_NEW}frozen_path=\\""'
)
_ERASEDATA_RUN = (
    rf'branch=d\.{_OLD_OR_NEW}custom5=,"execute=\{{{_PATH}/plugins/erasedata/fin\.sh,{_PATH},'
    rf"\$system\.pid=,\$d\.{_OLD_OR_NEW}hash=,\$d\.{_OLD_OR_NEW}base_path=,"
    rf'\$d\.is_multi_file=,\$d\.{_OLD_OR_NEW}custom5=\}}"'
)


@dataclass(frozen=True, slots=True)
class Known:
    """A handler rtorrentd knows: its key and its whole command, as patterns."""

    what: str
    key: re.Pattern[str]
    command: re.Pattern[str]
    verdict: Verdict


KNOWN: tuple[Known, ...] = tuple(
    Known(what, re.compile(key), re.compile(command), verdict)
    for what, key, command, verdict in (
        ("rtorrent's default", r"!_download_list", r"ui\.unfocus_download=", Verdict.KEEPS),
        ("rtorrent's default", r"~_delete_tied", r"d\.delete_tied=", Verdict.KEEPS),
        ("ruTorrent's history plugin", rf"thistory{_USER}", _HISTORY, Verdict.KEEPS),
        (
            "ruTorrent's erasedata plugin",
            rf"erasedata0{_USER}",
            _ERASEDATA_LIST,
            Verdict.KEEPS_IF_NO_CUSTOM5,
        ),
        (
            "ruTorrent's erasedata plugin",
            rf"erasedata1{_USER}",
            _ERASEDATA_RUN,
            Verdict.KEEPS_IF_NO_CUSTOM5,
        ),
    )
)


def classify(key: str, command: object) -> Verdict:
    """The verdict on one handler: known key *and* known command, or UNKNOWN.

    A command given as a list (several commands) or in any other shape is unknown.
    """
    if not isinstance(command, str):
        return Verdict.UNKNOWN
    for known in KNOWN:
        if known.key.fullmatch(key) and known.command.fullmatch(command):
            return known.verdict
    return Verdict.UNKNOWN


@dataclass(frozen=True, slots=True)
class ErasePolicy:
    """All of `event.download.erased`, judged: the keys of handlers that may delete
    data (`unknown`), and of those that do so only for a set `d.custom5`;
    `unreadable` says why the handlers could not be read at all."""

    unknown: tuple[str, ...] = ()
    custom5: tuple[str, ...] = ()
    unreadable: str = ""

    def refusal(self) -> str:
        """Why no torrent may be removed or deleted now, or ""."""
        if self.unreadable:
            return (
                f"cannot check what rtorrent runs when a torrent is erased ({self.unreadable}); "
                "rtorrentd removes and deletes only where event.download.erased can be read"
            )
        if not self.unknown:
            return ""
        return (
            "rtorrent runs commands rtorrentd does not know when a torrent is erased "
            f"(event.download.erased: {', '.join(self.unknown)}); they may delete data "
            "rtorrentd must keep. Remove them from rtorrent.rc (rtorrentd deletes data "
            'itself), or see `method.get "" event.download.erased`'
        )

    def refusal_for(self, custom5: str) -> str:
        """Why this torrent (whose `d.custom5` is given) may not be erased, or ""."""
        if not self.custom5 or not custom5:
            return ""
        return (
            f"the torrent's d.custom5 is {custom5!r}, so ruTorrent's erasedata handler "
            f"({', '.join(self.custom5)}) would delete its data when it is erased; "
            "clear d.custom5 (ruTorrent: remove without 'delete data') to let rtorrentd "
            "handle it"
        )


NO_HANDLERS = ErasePolicy()


def judge(handlers: Mapping[str, object]) -> ErasePolicy:
    """Judge every handler of `event.download.erased` (`method.get`'s reply)."""
    verdicts = {key: classify(key, command) for key, command in handlers.items()}
    return ErasePolicy(
        unknown=tuple(sorted(k for k, v in verdicts.items() if v is Verdict.UNKNOWN)),
        custom5=tuple(sorted(k for k, v in verdicts.items() if v is Verdict.KEEPS_IF_NO_CUSTOM5)),
    )


def unreadable(reason: str) -> ErasePolicy:
    """The policy when the handlers cannot be read: a doubt, so everything refuses."""
    return ErasePolicy(unreadable=reason)
