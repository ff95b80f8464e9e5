"""What every folder layout shares: split resolution, seeded per-item augmentation, validation, identity.

A layout is a torch ``Dataset`` class registered by name. Construction validates the
*structure* eagerly (folders exist, splits are non-empty, paired stems match, split.json
agrees with the folder); the *content* of each file (decodes, even A|B width, label range)
is checked lazily when an item is loaded, or for every file at once by :meth:`validate`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence, TypedDict

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..errors import DatasetError
from ..hashing import content_hash
from ..io import IMAGE_EXTENSIONS, list_images
from ..splits import SPLIT_FILE, HELD_OUT_PARTS, SplitFiles, read_split_record, resolve_held_out
from ..transforms import Augmentation, Preprocess, item_random

SPLITS = ("train", "train1", "train2", "val", "test")
TRAIN_MODE_SPLITS = ("train", "train1")
DIRECTIONS = ("AtoB", "BtoA")


class Item(TypedDict, total=False):
    """One loaded item. ``A`` is the generator's input, ``B`` its target (after ``direction``);
    ``label`` only in labelled datasets (class indices, ignore index kept)."""

    A: torch.Tensor  # float32 (3, H, W) in [-1, 1]
    B: torch.Tensor  # float32 (3, H, W) in [-1, 1]
    label: torch.Tensor  # int64 (H, W)
    A_path: str
    B_path: str
    index: int


@dataclass(frozen=True)
class LayoutMatch:
    """What one layout found in a folder and what it would still need."""

    layout: str
    found: list[str]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return bool(self.found) and not self.missing

    def describe(self) -> str:
        found = ", ".join(self.found) or "nothing"
        missing = f"; missing {', '.join(self.missing)}" if self.missing else ""
        return f"{self.layout}: found {found}{missing}"


class FolderDataset(Dataset, ABC):
    """Base of the registered layouts; subclasses say where each role's files live and how to load an item.

    ``split`` is one of train, train1, train2 (the recorded held-out division of train, see
    :mod:`imagedata.splits`), val, test. ``train`` (default: True for train and train1) selects
    random crop + flip; otherwise the fixed eval geometry. Augmentations come from a random
    stream per (seed, epoch, index): call :meth:`set_epoch` each epoch (before the DataLoader
    starts its workers) and a resumed run sees the same ones.
    """

    layout: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paired: ClassVar[bool] = True  # roles index-aligned: a split selects the same indices in each

    def __init__(self, root: str | Path, split: str = "train", preprocess: Preprocess | None = None,
                 seed: int = 0, direction: str = "AtoB", train: bool | None = None,
                 split_file: str | Path | None = None):
        self.root = Path(root)
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        if direction not in DIRECTIONS:
            raise DatasetError(f"unknown direction {direction!r}; allowed: {', '.join(DIRECTIONS)}")
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        self.split = split
        self.direction = direction
        self.preprocess = preprocess or Preprocess()
        self.seed = int(seed)
        self.epoch = 0
        self.train = split in TRAIN_MODE_SPLITS if train is None else bool(train)
        self.split_file = Path(split_file) if split_file is not None else self.root / SPLIT_FILE
        self.files = self._resolve_files()

    # -- what subclasses define -------------------------------------------------------
    @classmethod
    @abstractmethod
    def role_folders(cls, folder_split: str) -> dict[str, str]:
        """Role -> folder (relative to the root) holding that role's files for a split folder name."""

    @abstractmethod
    def load_item(self, index: int, rng: random.Random) -> Item:
        """Item ``index``, its augmentation drawn from ``rng``."""

    @abstractmethod
    def check_unit(self, paths: dict[str, Path]) -> None:
        """Content check of one validation unit (one file per role when paired, else one file)."""

    @classmethod
    def check_structure(cls, root: Path, files: SplitFiles) -> None:
        """Extra structural checks of a scanned split (e.g. matching stems); default none."""

    # -- split resolution -------------------------------------------------------------
    @classmethod
    def folder_split_name(cls, split: str) -> str:
        return "train" if split in HELD_OUT_PARTS else split

    @classmethod
    def available_splits(cls, root: Path) -> list[str]:
        """The split folders present (all their role folders exist)."""
        return [s for s in ("train", "val", "test")
                if all((root / f).is_dir() for f in cls.role_folders(s).values())]

    @classmethod
    def scan(cls, root: Path, folder_split: str) -> SplitFiles:
        """The files of split folder ``folder_split``: every role folder must exist and hold images."""
        roles: dict[str, tuple[str, ...]] = {}
        for role, folder in cls.role_folders(folder_split).items():
            path = root / folder
            if not path.is_dir():
                present = cls.available_splits(root)
                hint = f"splits present: {', '.join(present)}" if present else "no split of this layout is present"
                raise DatasetError(f"{cls.layout} dataset {root} has no {folder}/ folder for split "
                                   f"{folder_split!r} ({hint}); {cls.description}")
            files = list_images(path, cls.extensions(role))
            if not files:
                raise DatasetError(f"{path} holds no images (looked for {', '.join(cls.extensions(role))}); "
                                   f"split {folder_split!r} is empty")
            roles[role] = tuple(p.relative_to(root).as_posix() for p in files)
        scanned = SplitFiles(roles, cls.paired)
        cls.check_structure(root, scanned)
        return scanned

    @classmethod
    def extensions(cls, role: str) -> tuple[str, ...]:
        return IMAGE_EXTENSIONS

    def _resolve_files(self) -> SplitFiles:
        scanned = self.scan(self.root, self.folder_split_name(self.split))
        if self.split not in HELD_OUT_PARTS:
            return scanned
        record = read_split_record(self.split_file)
        return resolve_held_out(record, self.split, self.layout, scanned, self.split_file)

    # -- detection ---------------------------------------------------------------------
    @classmethod
    def detect(cls, root: Path) -> LayoutMatch:
        """Which of this layout's folders are present under ``root``, and which a split still lacks."""
        found: list[str] = []
        missing: list[str] = []
        for split in ("train", "val", "test"):
            folders = list(cls.role_folders(split).values())
            present = [f for f in folders if (root / f).is_dir() and list_images(root / f)]
            found += [f + "/" for f in present]
            if present and len(present) < len(folders):
                missing += [f + "/" for f in folders if f not in present]
        if not found:
            missing = [f + "/" for f in cls.role_folders("train").values()]
        return LayoutMatch(cls.layout, found, missing)

    # -- loading ---------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (items depend on (seed, epoch, index) only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return max(self.files.count(role) for role in self.files.roles)

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return self.load_item(index, item_random(self.seed, self.epoch, index))

    def path(self, role: str, index: int) -> Path:
        return self.root / self.files.roles[role][index]

    def plan(self, source_size: tuple[int, int], rng: random.Random, path: Path) -> Augmentation:
        """The item's geometry; a source the mode cannot handle is reported with its file."""
        try:
            return self.preprocess.plan(source_size, self.train, rng)
        except DatasetError as exc:
            raise DatasetError(f"{path}: {exc}") from None

    # -- validation and identity --------------------------------------------------------
    def validation_units(self) -> list[dict[str, Path]]:
        if self.files.paired:
            roles = list(self.files.roles)
            return [{role: self.path(role, i) for role in roles} for i in range(self.files.count(roles[0]))]
        return [{role: self.root / f} for role, files in self.files.roles.items() for f in files]

    def validate(self, progress: bool = True) -> int:
        """Check the content of every file of the split (what items check lazily); return the number
        of files checked, or raise one :class:`DatasetError` listing every problem found."""
        problems: list[str] = []
        units = self.validation_units()
        for unit in tqdm(units, desc=f"checking {self.root.name}/{self.split}", unit="item",
                         disable=not progress, leave=False):
            try:
                self.check_unit(unit)
            except DatasetError as exc:
                problems.append(str(exc))
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise DatasetError(f"{len(problems)} problem(s) in {self.layout} split {self.split!r} of {self.root}:"
                               f"\n  {shown}{more}")
        return len(self.files.all_files())

    def fingerprint(self) -> str:
        """Content hash of this split's files (names + bytes, see :mod:`imagedata.hashing`), for caching
        per-split statistics and noticing a changed dataset."""
        return content_hash(self.root, self.files.all_files())


def stems(paths: Sequence[str]) -> list[str]:
    return [Path(p).stem for p in paths]
