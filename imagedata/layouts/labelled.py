"""The labelled layout: photos with per-pixel class maps, for label -> image tasks scored by mIoU.

::

    ROOT/dataset.json           {"layout": "labelled", "classes": ["sky", ...] or a count,
                                 "ignore_index": 255 or null, "colors": [[r, g, b], ...] (optional)}
    ROOT/<split>/images/STEM.png|jpg   the photo (the generator's target, B)
    ROOT/<split>/labels/STEM.png       single-channel PNG of class indices, same stem and size

The generator's input A is the label map rendered with the class colours (3 channels, so any
pix2pix generator takes it); ``label`` carries the indices for mIoU. Eagerly checked:
dataset.json, matching stems. Lazily per item: both files decode, equal sizes, label values
within ``0..n-1`` or the ignore index.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError
from ..io import LABEL_EXTENSIONS, check_label_range, image_to_tensor, read_label_map, read_rgb
from ..splits import SplitFiles
from .base import FolderDataset, Item, LayoutMatch, stems

SPEC_FILE = "dataset.json"
IGNORE_COLOR = (0, 0, 0)


def default_colors(count: int) -> list[tuple[int, int, int]]:
    """Distinct colours by the PASCAL VOC bit-interleaving rule, starting at VOC index 1 so that no
    class is black (black is the ignore colour)."""
    colors = []
    for index in range(1, count + 1):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return colors


@dataclass(frozen=True)
class LabelSpec:
    """The classes of a labelled dataset: names, the ignore index, and the colour of each class."""

    classes: tuple[str, ...]
    ignore_index: int | None
    colors: tuple[tuple[int, int, int], ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> dict[str, Any]:
        return {"layout": "labelled", "classes": list(self.classes), "ignore_index": self.ignore_index,
                "colors": [list(c) for c in self.colors]}

    @classmethod
    def from_json(cls, data: Any, source: str) -> "LabelSpec":
        if not isinstance(data, dict):
            raise DatasetError(f"{source}: expected a JSON object with 'classes' and 'ignore_index'")
        classes = data.get("classes")
        if isinstance(classes, int) and not isinstance(classes, bool) and classes >= 1:
            classes = [f"class{i}" for i in range(classes)]
        if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
                and len(set(classes)) == len(classes)):
            raise DatasetError(f"{source}: 'classes' must be a positive count or a list of distinct class names")
        ignore = data.get("ignore_index", 255)
        if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool)
                                   or not 0 <= ignore <= 65535 or ignore < len(classes)):
            raise DatasetError(f"{source}: 'ignore_index' must be null or an integer in {len(classes)}..65535 "
                               f"(not a class index), got {ignore!r}")
        colors = data.get("colors")
        if colors is None:
            colors = default_colors(len(classes))
        elif not (isinstance(colors, list) and len(colors) == len(classes) and all(
                isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
                for c in colors)):
            raise DatasetError(f"{source}: 'colors' must list one [r, g, b] (0..255) per class "
                               f"({len(classes)} classes)")
        return cls(tuple(classes), ignore, tuple(tuple(c) for c in colors))


def read_label_spec(root: Path) -> LabelSpec:
    path = root / SPEC_FILE
    if not path.is_file():
        raise DatasetError(f"{path} not found: a labelled dataset declares its classes there, e.g. "
                           '{"layout": "labelled", "classes": ["road", "car"], "ignore_index": 255}')
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    return LabelSpec.from_json(data, str(path))


def colorize(label: np.ndarray, spec: LabelSpec) -> np.ndarray:
    """Class indices (H, W) -> uint8 colours (H, W, 3); ignored and unknown pixels are black."""
    table = np.zeros((max(int(label.max(initial=0)), spec.num_classes - 1) + 1, 3), dtype=np.uint8)
    table[:spec.num_classes] = np.asarray(spec.colors, dtype=np.uint8)
    table[spec.num_classes:] = IGNORE_COLOR
    return table[np.clip(label, 0, None)]


def one_hot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Index map (H, W) -> float (num_classes, H, W); pixels outside 0..n-1 (ignored) are all zero."""
    valid = (label >= 0) & (label < num_classes)
    planes = torch.zeros((num_classes, *label.shape), dtype=torch.float32)
    planes.scatter_(0, torch.where(valid, label, 0).unsqueeze(0), valid.unsqueeze(0).to(torch.float32))
    return planes


class LabelledDataset(FolderDataset):
    """Photo + label map pairs (see the module doc for the layout). Items: ``A`` the colour-coded
    label map, ``B`` the photo, ``label`` the class indices; all three share one crop and flip
    (label maps are resized nearest-neighbour, and ``A`` is coloured after that, so it is exact)."""

    layout = "labelled"
    description = ("labelled layout: dataset.json plus <split>/images/*.png|jpg and <split>/labels/*.png "
                   "(single-channel class indices) with the same stems")
    paired = True

    def __init__(self, root: str | Path, split: str = "train", *args: Any, **kwargs: Any):
        super().__init__(root, split, *args, **kwargs)
        if self.direction != "AtoB":
            raise DatasetError("a labelled dataset maps label map -> image; direction must be AtoB")
        self.spec = read_label_spec(self.root)

    @classmethod
    def role_folders(cls, folder_split: str) -> dict[str, str]:
        return {"image": f"{folder_split}/images", "label": f"{folder_split}/labels"}

    @classmethod
    def extensions(cls, role: str) -> tuple[str, ...]:
        return LABEL_EXTENSIONS if role == "label" else super().extensions(role)

    @classmethod
    def check_structure(cls, root: Path, files: SplitFiles) -> None:
        for role, paths in files.roles.items():
            names = stems(paths)
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise DatasetError(f"{root / Path(paths[0]).parent}: several files share the stem "
                                   f"{duplicates[0]!r}; stems must be unique to pair images with labels")
        images, labels = files.roles["image"], files.roles["label"]
        image_stems, label_stems = stems(images), stems(labels)
        for path, stem in zip(images, image_stems):
            if stem not in label_stems:
                raise DatasetError(f"{root / path} has no label map {Path(path).parent.parent}/labels/{stem}.png")
        for path, stem in zip(labels, label_stems):
            if stem not in image_stems:
                raise DatasetError(f"{root / path} has no image with stem {stem!r} in {Path(path).parent.parent}/images/")

    @classmethod
    def detect(cls, root: Path) -> LayoutMatch:
        match = super().detect(root)
        try:
            data = json.loads((root / SPEC_FILE).read_text())
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and "classes" in data:
            return LayoutMatch(cls.layout, [SPEC_FILE] + match.found, match.missing)
        return LayoutMatch(cls.layout, match.found, match.missing + [f"{SPEC_FILE} with 'classes'"])

    def _read_pair(self, image_path: Path, label_path: Path) -> tuple[Image.Image, np.ndarray]:
        image = read_rgb(image_path)
        label = read_label_map(label_path)
        if label.shape != (image.height, image.width):
            raise DatasetError(f"{label_path}: label map is {label.shape[1]}x{label.shape[0]} but its image "
                               f"{image_path.name} is {image.width}x{image.height}; they must be the same size")
        check_label_range(label, self.spec.num_classes, self.spec.ignore_index, label_path)
        return image, label

    def load_item(self, index: int, rng: random.Random) -> Item:
        image_path, label_path = self.path("image", index), self.path("label", index)
        image, label = self._read_pair(image_path, label_path)
        augmentation = self.plan(label.shape, rng, image_path)
        # resize label maps through PIL's 32-bit integer mode so nearest-neighbour keeps exact indices
        label = np.asarray(augmentation.apply(Image.fromarray(label.astype(np.int32)), nearest=True), np.int64)
        colours = Image.fromarray(colorize(label, self.spec))
        return Item(A=image_to_tensor(colours), B=image_to_tensor(augmentation.apply(image)),
                    label=torch.from_numpy(label.copy()), A_path=str(label_path), B_path=str(image_path),
                    index=index)

    def check_unit(self, paths: dict[str, Path]) -> None:
        image, label = self._read_pair(paths["image"], paths["label"])
        self.plan(label.shape, random.Random(0), paths["image"])
