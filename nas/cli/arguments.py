"""Parsers for flag values shared by several commands."""
from __future__ import annotations

import argparse


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
