"""Layouts registered by name, layout detection, and the train1/train2 split of a dataset folder."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.registry import Registry

from .errors import DatasetError
from .layouts import AlignedDataset, FolderDataset, LabelledDataset, LayoutMatch, UnalignedDataset
from .splits import SPLIT_FILE, SplitRecord, make_split_record, write_split_record

# Detection tries layouts in this order: the most specific first.
_LAYOUTS: Registry[type[FolderDataset]] = Registry("layout", DatasetError, sort=False, key="layout")
register_layout, list_layouts, get_layout = _LAYOUTS.add, _LAYOUTS.names, _LAYOUTS.get  # register, list, look up


for _class in (LabelledDataset, UnalignedDataset, AlignedDataset):
    register_layout(_class)


@dataclass(frozen=True)
class Detection:
    """The layout found in a folder, with what every layout found and lacked there."""

    root: Path
    layout: str
    matches: list[LayoutMatch]

    def describe(self) -> str:
        lines = [f"{self.root}: {self.layout} layout"]
        lines += [f"  {m.describe()}" for m in self.matches]
        return "\n".join(lines)


def _declared_layout(root: Path) -> str | None:
    """The ``layout`` named in ``dataset.json``, if the folder has one that names it."""
    path = root / "dataset.json"
    if not path.is_file():
        return None
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    declared = data.get("layout") if isinstance(data, dict) else None
    if declared is not None and declared not in _LAYOUTS:
        raise DatasetError(f"{path} declares layout {declared!r}; registered: {', '.join(list_layouts())}")
    return declared


def detect_layout(root: str | Path) -> Detection:
    """Which registered layout ``root`` holds: the one ``dataset.json`` declares, else the first
    complete one. A :class:`DatasetError` says what each layout found and what it lacked."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    matches = [cls.detect(root) for cls in _LAYOUTS.values()]
    declared = _declared_layout(root)
    candidates = [m for m in matches if m.complete and (declared is None or m.layout == declared)]
    if not candidates:
        wanted = f"the {declared} layout declared in dataset.json" if declared else "any known layout"
        details = "\n  ".join(m.describe() for m in matches)
        inside = [f"{sub.name}/ ({m.layout})" for sub in sorted(root.iterdir()) if sub.is_dir()
                  for m in [cls.detect(sub) for cls in _LAYOUTS.values()] if m.complete]
        hint = f"\n  datasets in its subfolders: {', '.join(inside)}" if inside else ""
        raise DatasetError(f"{root} does not hold {wanted}:\n  {details}{hint}")
    return Detection(root, candidates[0].layout, matches)


def create_dataset(root: str | Path, layout: str | None = None, split: str = "train", **kwargs: Any) -> FolderDataset:
    """Open split ``split`` of the dataset in ``root`` (``layout=None``: detect it). ``kwargs`` go to the
    layout class: ``preprocess``, ``seed``, ``direction``, ``train``, ``split_file``."""
    name = layout if layout is not None else detect_layout(root).layout
    return get_layout(name)(root, split, **kwargs)


def split_dataset(root: str | Path, layout: str | None = None, seed: int = 0, fraction: float | None = None,
                  count: int | None = None, write: bool = True) -> SplitRecord:
    """Divide the training split of ``root`` into train1 / train2 and (by default) record it in
    ``root/split.json``; see :func:`imagedata.splits.make_split_record` for the rule."""
    root = Path(root)
    name = layout if layout is not None else detect_layout(root).layout
    cls = get_layout(name)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    train = cls.scan(root, "train")
    record = make_split_record(name, root, train, seed=seed, fraction=fraction, count=count)
    if write:
        write_split_record(record, root, SPLIT_FILE)
    return record
