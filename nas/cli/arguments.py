"""Parsers for flag values shared by several commands."""
from __future__ import annotations

import argparse
from pathlib import Path


def image_size(text: str) -> tuple[int, int]:
    """``256`` or ``512x256`` (height x width) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or any(n <= 0 for n in numbers):
        raise argparse.ArgumentTypeError(f"size {text!r} must be H or HxW with positive integers, e.g. 256 or 512x256")
    return (numbers[0], numbers[-1])


def store_flag(parser: argparse.ArgumentParser) -> None:
    """``--store URL``, next to ``--workspace`` on every command that opens the store."""
    parser.add_argument("--store", metavar="URL", default=None,
                        help="store database URL, e.g. postgresql+psycopg2://USER@HOST/DB to share one store "
                             "between machines (default: $GANAS_STORE_URL, else ganas.db in the workspace)")


def workspace_of(args: argparse.Namespace):
    """The workspace and store the flags (``--workspace``, ``--store``) or the environment choose."""
    from nas.workspace import Workspace

    return Workspace.resolve(args.workspace, args.store)


def mlflow_uri(text: str) -> str:
    """An MLflow tracking URI that can work (``nas.tracking_uri.check_tracking_uri``), checked before any write."""
    from nas.tracking_uri import TrackingUriError, check_tracking_uri

    try:
        return check_tracking_uri(text)
    except TrackingUriError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def teacher_state_dict_flags(parser: argparse.ArgumentParser) -> None:
    """How a plain state-dict teacher is imported, where the structure read off its tensors is not enough."""
    parser.add_argument("--teacher-arch", default=None, help="architecture of a plain state dict (resnet_9blocks, "
                                                             "unet_256, ...; default: read off its tensors)")
    parser.add_argument("--teacher-ngf", type=int, default=None, help="ngf of a plain state dict (default: read off "
                                                                      "its tensors)")
    parser.add_argument("--teacher-map", type=Path, default=None, metavar="FILE",
                        help="JSON mapping of the state dict's keys to ganas's, given by hand (docs/teachers.md)")
