"""pix2pix's aligned layout: ``train/``, ``val/`` (optionally ``test/``), each image A and B side by side."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from ..errors import DatasetError
from ..io import image_to_tensor, read_rgb
from .base import FolderDataset, Item


def split_pair(image: Image.Image, path: Path) -> tuple[Image.Image, Image.Image]:
    """``[A|B]`` -> (left half, right half); the width must be even so both halves are equal."""
    width, height = image.size
    if width % 2:
        raise DatasetError(f"{path}: an aligned A|B image must have an even width (two equal halves); "
                           f"this one is {width}x{height}")
    half = width // 2
    return image.crop((0, 0, half, height)), image.crop((half, 0, width, height))


class AlignedDataset(FolderDataset):
    """Paired images stored as one file ``[A|B]`` per pair in ``<split>/``.

    ``direction="AtoB"`` makes the left half the input ``A``; ``BtoA`` swaps the halves. Both
    halves get the same resize, crop and flip. Lazily checked per item: the file decodes and
    its width is even.
    """

    layout = "aligned"
    description = "aligned layout: train/ and val/ (optionally test/) holding [A|B] images side by side"
    paired = True

    @classmethod
    def role_folders(cls, folder_split: str) -> dict[str, str]:
        return {"AB": folder_split}

    def _halves(self, path: Path) -> tuple[Image.Image, Image.Image]:
        left, right = split_pair(read_rgb(path), path)
        return (left, right) if self.direction == "AtoB" else (right, left)

    def load_item(self, index: int, rng: random.Random) -> Item:
        path = self.path("AB", index)
        a, b = self._halves(path)
        augmentation = self.plan((a.height, a.width), rng, path)
        return Item(A=image_to_tensor(augmentation.apply(a)), B=image_to_tensor(augmentation.apply(b)),
                    A_path=str(path), B_path=str(path), index=index)

    def check_unit(self, paths: dict[str, Path]) -> None:
        a, _ = self._halves(paths["AB"])
        self.plan((a.height, a.width), random.Random(0), paths["AB"])
