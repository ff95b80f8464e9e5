"""Built-in dataset makers: registered by name, deterministic from a seed, no download.

A maker writes one or more dataset roots (in the layouts the loaders read) under an output
folder. Every image is a function of (maker, seed, split, index) only, through its own
``numpy`` generator, so the same seed gives byte-identical files whatever the count.
"""
from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from tqdm import tqdm

from foundation.registry import Registry

from ..errors import DatasetError

MAKE_SPLITS = ("train", "val")


@dataclass(frozen=True)
class MakeOptions:
    """Image side in pixels, training and validation counts (per domain when unpaired), seed."""

    size: int = 64
    count: int = 200
    val_count: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise DatasetError(f"size must be between 16 and 1024 pixels, got {self.size}")
        if self.count < 1 or self.val_count < 1:
            raise DatasetError(f"counts must be at least 1, got {self.count} train and {self.val_count} val")
        if self.seed < 0:
            raise DatasetError(f"seed must be a non-negative integer, got {self.seed}")

    def counts(self) -> dict[str, int]:
        return {"train": self.count, "val": self.val_count}


@dataclass(frozen=True)
class MakeResult:
    """What a maker wrote: the root of each layout it produced and the image count per split."""

    maker: str
    out: Path
    layouts: dict[str, Path]
    counts: dict[str, int]


MakerFunction = Callable[[Path, MakeOptions, bool], MakeResult]


@dataclass(frozen=True)
class MakerEntry:
    name: str
    description: str
    layouts: tuple[str, ...]
    make: MakerFunction = field(repr=False)


_MAKERS: Registry[MakerEntry] = Registry("dataset maker", DatasetError)


def register_maker(name: str, description: str, layouts: tuple[str, ...]) -> Callable[[MakerFunction], MakerFunction]:
    def decorate(function: MakerFunction) -> MakerFunction:
        _MAKERS.register(name, MakerEntry(name, description, layouts, function))
        return function
    return decorate


def list_makers() -> list[str]:
    return _MAKERS.names()


def get_maker(name: str) -> MakerEntry:
    return _MAKERS.get(name)


def make_dataset(name: str, out: str | Path, options: MakeOptions | None = None, progress: bool = True) -> MakeResult:
    """Run maker ``name`` into ``out``, which must not exist or be empty (so no stale file survives)."""
    entry = get_maker(name)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"output folder {out} is not empty; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return entry.make(out, options or MakeOptions(), progress)


def item_generator(maker: str, seed: int, split: str, index: int, stream: str = "") -> np.random.Generator:
    """The numpy generator of one image: a function of its identity only, never of call order."""
    salt = zlib.crc32(f"{maker}/{split}/{stream}".encode())
    return np.random.default_rng([seed, salt, index])


def stem(index: int) -> str:
    return f"{index:05d}"


def progress_over(tasks: Iterable[Any], total: int, name: str, progress: bool) -> Iterable[Any]:
    return tqdm(tasks, total=total, desc=f"making {name}", unit="img", file=sys.stderr, disable=not progress)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Deterministic JSON (sorted keys, no timestamps), so equal runs give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def provenance(maker: str, layout: str, options: MakeOptions, **extra: Any) -> dict[str, Any]:
    return {"layout": layout, "made_by": {"maker": maker, "seed": options.seed, "size": options.size,
                                          "counts": options.counts(), **extra}}
