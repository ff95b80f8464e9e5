"""Plain-text output shared by the commands."""
from __future__ import annotations

from typing import Any, Sequence


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> None:
    """Left-aligned columns separated by two spaces."""
    lines = [list(map(str, header))] if header else []
    lines += [list(map(str, row)) for row in rows]
    if not lines:
        return
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(max(map(len, lines)))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
