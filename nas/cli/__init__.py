"""The ``ganas`` command line.

Commands are plug-ins with one function, ``register(subparsers)``, so adding a command never
touches this file. Two sources, in this order:

- every module of :mod:`nas.cli.commands` (the commands ``nas`` owns);
- every entry point of the group ``ganas.commands`` (:data:`PLUGIN_GROUP`), naming a ``register``
  function: commands that live above ``nas`` and so cannot be imported by it, e.g. ``ganas serve``
  in :mod:`webapp.serve` (``pyproject.toml`` declares it; an installed package can add its own).

Heavy libraries are imported inside the command functions, keeping ``ganas --help`` fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Iterable, Sequence

from . import commands

PLUGIN_GROUP = "ganas.commands"


class CliUsageError(Exception):
    """A flag value argparse could not check by itself."""


def command_plugins() -> tuple[EntryPoint, ...]:
    """The installed entry points of :data:`PLUGIN_GROUP`, by name."""
    return tuple(sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name))


def build_parser(plugins: Iterable[EntryPoint] | None = None) -> argparse.ArgumentParser:
    """The parser with every command; ``plugins`` replaces the installed ones (tests, source checkouts)."""
    parser = argparse.ArgumentParser(
        prog="ganas",
        description="Compress conditional GAN generators by architecture search under a MACs budget.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    for plugin in command_plugins() if plugins is None else plugins:
        plugin.load()(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, plugins: Iterable[EntryPoint] | None = None) -> int:
    from foundation.errors import GanasError
    from foundation.threads import wait_passively

    wait_passively()  # before any command imports torch (see foundation.threads)
    parser = build_parser(plugins)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (GanasError, CliUsageError) as exc:
        print(f"ganas {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"ganas {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``ganas search status 1 | head``): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141


if __name__ == "__main__":
    sys.exit(main())
