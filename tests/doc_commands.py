"""The commands shown in README.md and docs/*.md, read from their code blocks (for test_documented_commands.py).

A command is a line of a fenced (```) or indented (4+ spaces) code block that starts with ``ganas``,
``mlflow`` or ``python -m nas.cli`` (read as ``ganas``), after an optional ``.venv/bin/`` or other folder
prefix. ``\\`` continuations are joined, a trailing ``# comment`` is dropped, and ``ganas search pause 1 /
cancel 1`` stands for two commands (each alternative replaces as many last words of the first).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_COMMAND = re.compile(r"^\s*(?:\S*\.venv/bin/)?(ganas|mlflow|python3? -m nas\.cli)\s")


@dataclass(frozen=True)
class DocCommand:
    page: str  # relative to the repository: README.md, docs/cli.md
    line: int
    text: str  # as documented: continuations joined, comment and .venv/bin/ dropped, spaces collapsed

    @property
    def words(self) -> list[str]:
        """The words with the option syntax resolved: ``[--size 256]`` -> ``--size 256``; ``[--cache DIR |
        --no-cache]`` and ``inception|PATH.pt`` -> the first alternative."""
        text = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split(" | ")[0], " ".join(shlex.split(self.text)))
        return [word.split("|")[0] for word in text.split()]

    @property
    def positional(self) -> list[str]:
        """The program and its (sub-)commands: the words before the first option, skipping a group's
        ``--workspace DIR`` and ``--store URL`` (``ganas search --workspace W resume ID`` -> ganas search resume ID)."""
        out, words = [], iter(self.words)
        for word in words:
            if word in ("--workspace", "--store"):
                next(words, None)
            elif word.startswith("-"):
                break
            else:
                out.append(word)
        return out


def read_commands(root: Path, first: list[str] = ()) -> list[DocCommand]:
    """Every documented command: the pages in ``first`` in that order, then README.md and docs/*.md."""
    pages = [p for p in first if (root / p).exists()]
    pages += sorted(str(p.relative_to(root)) for p in [root / "README.md", *root.glob("docs/*.md")]
                    if str(p.relative_to(root)) not in pages)
    found = []
    for page in pages:
        lines = _code_lines((root / page).read_text())
        i = 0
        while i < len(lines):
            number, line = lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i][1].strip()
            i += 1
            if not _COMMAND.match(line + " "):
                continue
            text = " ".join(re.sub(r"\s+#.*$", "", line).split())
            text = re.sub(r"^python3? -m nas\.cli\b", "ganas", re.sub(r"^\S*\.venv/bin/", "", text))
            found += [DocCommand(page, number, t) for t in _alternatives(text)]
    return found


def _code_lines(text: str) -> list[tuple[int, str]]:
    """Lines of fenced (```) and indented (4+ spaces) code blocks, with their line numbers."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or re.match(r"( {4,}|\t)\S", line):
            out.append((number, line))
    return out


def _alternatives(text: str) -> list[str]:
    """``ganas search pause 1 / cancel 1`` -> ``ganas search pause 1``, ``ganas search cancel 1``."""
    first, *others = text.split(" / ")
    words = first.split()
    return [first] + [" ".join(words[:len(words) - len(o.split())] + o.split()) for o in others]
