"""What `-c PATH` names: one configuration file, or a directory of them.

A directory holds one instance per `*.toml` file, each in the single-file format,
named by the file's stem (`/etc/rtorrentd/roger.toml` is `roger`). Daemon-wide
tables (`[metrics]`) may stand in one of the files; in two, both are wrong, since
neither can be said to win. A single file is one instance named by its stem too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rtorrentd.config.load import load_config
from rtorrentd.config.model import Config, MetricsSettings
from rtorrentd.errors import ConfigError

SUFFIX = ".toml"


@dataclass(frozen=True, slots=True)
class Instances:
    """Every instance's configuration by name (in name order), and the daemon-wide
    settings; `directory` says whether `-c` named a directory."""

    path: str
    directory: bool
    configs: Mapping[str, Config]
    metrics: MetricsSettings | None


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
    are errors both."""
    configs: dict[str, Config] = {}
    errors: dict[str, ConfigError] = {}
    for name, file in instance_files(path).items():
        try:
            configs[name] = load_config(file)
        except ConfigError as exc:
            errors[name] = exc
    owners = {name: c.source for name, c in configs.items() if c.metrics is not None}
    if len(owners) > 1:
        for name, source in owners.items():
            others = ", ".join(other for other in owners.values() if other != source)
            problem = f"{source}: [metrics] is also in {others}"
            errors[name] = ConfigError(f"{problem}\n  write daemon-wide tables in one file only")
            del configs[name]
    return Loaded(configs, errors)


def load_instances(path: str | os.PathLike[str]) -> Instances:
    """Every instance `path` names; raises `ConfigError` with every file's error."""
    source = os.fspath(path)
    loaded = read_each(source)
    if loaded.errors:
        raise ConfigError("\n".join(str(error) for error in loaded.errors.values()))
    return Instances(source, os.path.isdir(source), loaded.configs, daemon_metrics(loaded.configs))


def daemon_metrics(configs: Mapping[str, Config]) -> MetricsSettings | None:
    """The one `[metrics]` among the instances' files, if any."""
    return next((c.metrics for c in configs.values() if c.metrics is not None), None)
