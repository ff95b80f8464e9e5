"""The ``ganas`` command line.

Every module in :mod:`nas.cli.commands` registers its sub-commands through a
``register(subparsers)`` function, so adding a command never touches this file. Heavy
libraries are imported inside the command functions, keeping ``ganas --help`` fast.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from . import commands


class CliUsageError(Exception):
    """A flag value argparse could not check by itself."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganas",
        description="Compress conditional GAN generators by architecture search under a MACs budget.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from foundation.errors import GanasError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (GanasError, CliUsageError) as exc:
        print(f"ganas {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"ganas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
