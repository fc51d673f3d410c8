"""The settings file: ``dependents.toml`` in the working folder, or the file named by
``--config FILE`` or ``$DEPENDENTS_CONFIG``. Its keys are ``dependents import``'s long option
names (``report-dir = "reports"``); ``db`` serves every command. A command-line flag beats
the environment, which beats the file, which beats the default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from pipeline import tomlfile
from pipeline.errors import UsageError

ENV = "DEPENDENTS_CONFIG"
LOCAL = Path("dependents.toml")
ENV_PREFIX = "DEPENDENTS"  # every option's environment variable: DEPENDENTS_IMPORT_REPORT_DIR, ...
NOT_SETTINGS = {"help", "quiet", "timings", "changes"}  # said per run, never kept in a file


@dataclass
class Settings:
    """The file's values by option (parameter) name, and the file they came from."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)


def find(named: Path | None) -> Path | None:
    """The settings file in force: the one named (it must exist), else ``dependents.toml`` here."""
    if named is not None:
        if not named.is_file():
            raise UsageError(f"{named}: no such settings file")
        return named
    return LOCAL if LOCAL.is_file() else None


def load(path: Path | None, command: click.Command) -> Settings:
    """Read and check the file against ``command``'s options: exit 2 naming the file and the
    key for a file that cannot be read, an unknown key or a value of the wrong kind."""
    if path is None:
        return Settings()
    data = tomlfile.read(path)
    options = settable(command)
    values = {}
    for key, value in data.items():
        param = options.get(key)
        if param is None:
            raise UsageError(f"{path}: unknown key {key!r} (not a long option of dependents import)")
        values[param.name] = _value(path, key, param, value)
    return Settings(path, values)


def settable(command: click.Command) -> dict[str, click.Option]:
    """The options a settings file may hold, by their long name without dashes."""
    return {
        opt[2:]: param
        for param in command.params
        if isinstance(param, click.Option) and param.name not in NOT_SETTINGS
        for opt in param.opts
        if opt.startswith("--")
    }


def _value(path: Path, key: str, param: click.Option, value: Any) -> Any:
    """A value converted as the command line would convert it; a relative path is taken
    from the settings file's folder, so cron may run from anywhere."""
    if isinstance(value, (dict, list)) or (isinstance(value, bool) and not param.is_flag):
        raise UsageError(f"{path}: key {key!r}: expected a single {param.type.name} value")
    try:
        converted = param.type.convert(value, param, None)
    except click.BadParameter as exc:
        raise UsageError(f"{path}: key {key!r}: {exc.message}") from None
    if isinstance(param.type, click.Path) and not Path(converted).is_absolute():
        converted = path.parent / converted
    return converted


def default_map(group: click.Group, settings: Settings) -> dict[str, Any]:
    """Click's defaults for every command under ``group``: the file's values for ``import``,
    its ``db`` for every command that takes ``--db``."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found[name] = default_map(command, settings)
        elif name == "import":
            found[name] = dict(settings.values)
        if "db_url" in settings.values and any(p.name == "db_url" for p in command.params):
            found.setdefault(name, {})["db_url"] = settings.values["db_url"]
    return found


def sources(command: click.Command, path: list[str], settings: Settings) -> list[tuple[str, Any, str]]:
    """Each setting of ``command`` (``path``: its names under ``dependents``): its long name,
    its value in force without flags, and where that came from."""
    found = []
    for key, param in settable(command).items():
        variable = param.envvar or "_".join([ENV_PREFIX, *path, param.name]).upper().replace("-", "_")
        if isinstance(variable, str) and variable in os.environ:
            value, source = os.environ[variable], f"environment (${variable})"
        elif param.name in settings.values:
            value, source = settings.values[param.name], f"settings file ({settings.path})"
        else:
            value, source = _default(param), "default"
        found.append((key, value, source))
    return found


def _default(param: click.Option) -> Any:
    """An option's own default (``None``: unset, the command decides)."""
    value = param.default
    if param.is_flag and not isinstance(value, bool):
        return False
    return value if isinstance(value, (str, int, float, bool, Path)) else None
