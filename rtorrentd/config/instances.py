"""What `-c PATH` names: one configuration file, or a directory of them.

A directory holds one instance per `*.toml` file, each in the single-file format,
named by the file's stem (`/etc/rtorrentd/roger.toml` is `roger`). Daemon-wide
tables (`[metrics]`, `[notify]`) may stand in one of the files; in two, both are
wrong, since neither can be said to win. A single file is one instance named by its stem too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rtorrentd.config.load import load_config
from rtorrentd.config.model import Config, MetricsSettings, NotifySettings
from rtorrentd.errors import ConfigError

SUFFIX = ".toml"
# The tables that are the daemon's, not an instance's: the `Config` fields so named.
DAEMON_WIDE = ("metrics", "notify")


@dataclass(frozen=True, slots=True)
class Instances:
    """Every instance's configuration by name (in name order), and the daemon-wide
    settings; `directory` says whether `-c` named a directory."""

    path: str
    directory: bool
    configs: Mapping[str, Config]
    metrics: MetricsSettings | None
    notify: NotifySettings | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    """What reading every file gave: the valid configurations and the errors."""

    configs: Mapping[str, Config]
    errors: Mapping[str, ConfigError]


def instance_files(path: str) -> dict[str, str]:
    """Instance name -> file: `path` itself, or each `*.toml` in the directory `path`
    (hidden files left out: editors keep their backups so)."""
    if not os.path.isdir(path):
        return {Path(path).stem: path}
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot list the directory: {exc.strerror}") from exc
    files = {
        Path(name).stem: os.path.join(path, name)
        for name in names
        if name.endswith(SUFFIX) and not name.startswith(".")
    }
    if not files:
        raise ConfigError(f"{path}: no *.toml file: write one per rtorrent, like {path}/roger.toml")
    return files


def read_each(path: str) -> Loaded:
    """Read every instance's file; a broken one is an error of its own, the others
    are still read (a reload keeps every valid one). Two files with `[metrics]`
    (or `[notify]`) are errors both."""
    configs: dict[str, Config] = {}
    errors: dict[str, ConfigError] = {}
    for name, file in instance_files(path).items():
        try:
            configs[name] = load_config(file)
        except ConfigError as exc:
            errors[name] = exc
    for table in DAEMON_WIDE:
        owners = {n: c.source for n, c in configs.items() if getattr(c, table) is not None}
        if len(owners) > 1:
            for name, source in owners.items():
                others = ", ".join(other for other in owners.values() if other != source)
                problem = f"{source}: [{table}] is also in {others}"
                hint = "write daemon-wide tables in one file only"
                errors[name] = ConfigError(f"{problem}\n  {hint}")
                configs.pop(name, None)
    return Loaded(configs, errors)


def load_instances(path: str | os.PathLike[str]) -> Instances:
    """Every instance `path` names; raises `ConfigError` with every file's error."""
    source = os.fspath(path)
    loaded = read_each(source)
    if loaded.errors:
        raise ConfigError("\n".join(str(error) for error in loaded.errors.values()))
    configs = loaded.configs
    directory = os.path.isdir(source)
    return Instances(source, directory, configs, daemon_metrics(configs), daemon_notify(configs))


def daemon_metrics(configs: Mapping[str, Config]) -> MetricsSettings | None:
    """The one `[metrics]` among the instances' files, if any."""
    return next((c.metrics for c in configs.values() if c.metrics is not None), None)


def daemon_notify(configs: Mapping[str, Config]) -> NotifySettings | None:
    """The one `[notify]` among the instances' files, if any."""
    return next((c.notify for c in configs.values() if c.notify is not None), None)
