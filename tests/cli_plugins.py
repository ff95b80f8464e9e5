"""The CLI plug-ins this checkout declares, read from ``pyproject.toml`` (no reinstall needed to test them)."""
from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

from nas.cli import PLUGIN_GROUP

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def declared_command_plugins() -> tuple[EntryPoint, ...]:
    """The ``ganas.commands`` entry points as ``pip install`` will record them, by name."""
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][PLUGIN_GROUP]
    return tuple(EntryPoint(name, value, PLUGIN_GROUP) for name, value in sorted(declared.items()))
