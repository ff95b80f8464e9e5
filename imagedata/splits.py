"""The files of a split, and the held-out search split (GAN Compression's train1 / train2).

The training set is divided once, deterministically from a seed and a fraction or count,
into ``train1`` (supernet training) and ``train2`` (held out: search scores candidates on it,
so search never scores on images the supernet trained on). The division is recorded in
``split.json`` in the dataset folder, with the file names of each part and their content
hashes (see :mod:`imagedata.hashing`); loaders read it for ``split="train1" | "train2"``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.files import atomic_write_text

from .errors import DatasetError
from .hashing import content_hash

SPLIT_FILE = "split.json"
SPLIT_FORMAT = "ganas.split/1"
HELD_OUT_PARTS = ("train1", "train2")


@dataclass(frozen=True)
class SplitFiles:
    """Files of one split by role (e.g. ``AB``; ``A`` and ``B``; ``image`` and ``label``), POSIX paths
    relative to the dataset root, sorted. In a *paired* split the roles are index-aligned."""

    roles: dict[str, tuple[str, ...]]
    paired: bool

    def all_files(self) -> list[str]:
        return sorted(f for files in self.roles.values() for f in files)

    def count(self, role: str) -> int:
        return len(self.roles[role])

    def select(self, indices: dict[str, list[int]]) -> "SplitFiles":
        """The sub-split holding, for each role, the files at ``indices[role]``."""
        return SplitFiles({role: tuple(files[i] for i in indices[role]) for role, files in self.roles.items()},
                          self.paired)

    def to_json(self) -> dict[str, Any]:
        return {"paired": self.paired, "roles": {role: list(files) for role, files in self.roles.items()}}

    @classmethod
    def from_json(cls, data: Any, source: str) -> "SplitFiles":
        try:
            roles = {str(role): tuple(str(f) for f in files) for role, files in data["roles"].items()}
            return cls(roles, bool(data["paired"]))
        except (KeyError, TypeError, AttributeError):
            raise DatasetError(f"{source}: malformed part (expected {{'paired': bool, 'roles': {{role: [files]}}}})") \
                from None


@dataclass(frozen=True)
class SplitRecord:
    """How one training set was divided into train1 and train2, and the identity of each part."""

    layout: str
    seed: int
    holdout_fraction: float | None
    holdout_count: int | None
    source_hash: str
    parts: dict[str, SplitFiles]
    hashes: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SPLIT_FORMAT, "layout": self.layout, "seed": self.seed,
            "holdout_fraction": self.holdout_fraction, "holdout_count": self.holdout_count,
            "source_hash": self.source_hash,
            "parts": {name: {**part.to_json(), "hash": self.hashes[name]} for name, part in self.parts.items()},
        }

    @classmethod
    def from_json(cls, data: Any, source: str) -> "SplitRecord":
        if not isinstance(data, dict) or data.get("format") != SPLIT_FORMAT:
            raise DatasetError(f"{source} is not a ganas split file (format {SPLIT_FORMAT})")
        try:
            parts = {name: SplitFiles.from_json(data["parts"][name], f"{source} part {name}")
                     for name in HELD_OUT_PARTS}
            hashes = {name: str(data["parts"][name]["hash"]) for name in HELD_OUT_PARTS}
            return cls(str(data["layout"]), int(data["seed"]), data.get("holdout_fraction"),
                       data.get("holdout_count"), str(data["source_hash"]), parts, hashes)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{source}: malformed split file (missing or bad {exc})") from None


def _holdout_size(total: int, fraction: float | None, count: int | None, what: str) -> int:
    if (fraction is None) == (count is None):
        raise DatasetError("give exactly one of a held-out fraction (0 < f < 1) or a held-out count")
    if fraction is not None and not 0.0 < fraction < 1.0:
        raise DatasetError(f"held-out fraction must be between 0 and 1 (exclusive), got {fraction}")
    size = int(count) if count is not None else int(round(fraction * total))
    if not 1 <= size <= total - 1:
        raise DatasetError(f"holding out {size} of the {total} training files of {what} leaves an empty part; "
                           f"the held-out size must be between 1 and {total - 1}")
    return size


def make_split_record(layout: str, root: Path, train: SplitFiles, seed: int = 0,
                      fraction: float | None = None, count: int | None = None) -> SplitRecord:
    """Divide ``train`` into train1 / train2: ``count`` (or ``round(fraction * n)``) files go to train2.

    A paired split selects the same indices in every role (an A|B file, an image with its
    label map); an unpaired one (CycleGAN domains) divides each role on its own, with the
    count or fraction applied per role. The choice depends only on (seed, number of files).
    """
    held: dict[str, list[int]] = {}
    kept: dict[str, list[int]] = {}
    groups = [list(train.roles)] if train.paired else [[role] for role in train.roles]
    for group in groups:
        total = train.count(group[0])
        size = _holdout_size(total, fraction, count, "/".join(group))
        salt = f"ganas.split:{seed}" if train.paired else f"ganas.split:{seed}:{group[0]}"
        chosen = sorted(random.Random(salt).sample(range(total), size))
        rest = sorted(set(range(total)) - set(chosen))
        for role in group:
            held[role], kept[role] = chosen, rest
    parts = {"train1": train.select(kept), "train2": train.select(held)}
    hashes = {name: content_hash(root, part.all_files()) for name, part in parts.items()}
    return SplitRecord(layout, int(seed), fraction, count, content_hash(root, train.all_files()), parts, hashes)


def write_split_record(record: SplitRecord, root: Path, name: str = SPLIT_FILE) -> Path:
    """Write ``record`` to ``root/name`` atomically."""
    return atomic_write_text(Path(root) / name, json.dumps(record.to_json(), indent=1) + "\n")


def read_split_record(path: Path) -> SplitRecord:
    if not path.is_file():
        raise DatasetError(f"{path} not found: train1/train2 need a recorded split; create it with "
                           f"`ganas data split {path.parent} --holdout 0.2` (or imagedata.split_dataset)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read split file ({exc})") from None
    return SplitRecord.from_json(data, str(path))


def resolve_held_out(record: SplitRecord, part: str, layout: str, train: SplitFiles, source: Path) -> SplitFiles:
    """``part`` of ``record``, after checking that the training folder still holds exactly its files."""
    if record.layout != layout:
        raise DatasetError(f"{source} was written for the {record.layout} layout, not {layout}")
    recorded = set(record.parts["train1"].all_files()) | set(record.parts["train2"].all_files())
    current = set(train.all_files())
    if recorded != current:
        added, removed = sorted(current - recorded), sorted(recorded - current)
        detail = "; ".join(f"{len(names)} {kind} (e.g. {names[0]})" for kind, names in
                           (("added", added), ("removed", removed)) if names)
        raise DatasetError(f"the training files changed since {source} was written: {detail}; "
                           "re-run `ganas data split` so train1 and train2 cover the training set again")
    return record.parts[part]
