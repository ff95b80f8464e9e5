"""CycleGAN's unaligned layout: ``trainA/ trainB/ valA/ valB/`` (optionally ``testA/ testB/``)."""
from __future__ import annotations

import random
from pathlib import Path

from ..io import image_to_tensor, read_rgb
from .base import FolderDataset, Item


class UnalignedDataset(FolderDataset):
    """Two unpaired domains. An item is the ``index``-th A image (modulo its count) with a B image:
    a random one drawn from the item's stream when training (as CycleGAN does), the
    ``index``-th (modulo) when evaluating. A and B get independent crops and flips. The length
    is the larger domain's count. ``direction="BtoA"`` swaps the domains.
    """

    layout = "unaligned"
    description = "unaligned layout: trainA/ trainB/ and valA/ valB/ (optionally testA/ testB/), unpaired images"
    paired = False

    @classmethod
    def role_folders(cls, folder_split: str) -> dict[str, str]:
        return {"A": f"{folder_split}A", "B": f"{folder_split}B"}

    def _roles(self) -> tuple[str, str]:
        return ("A", "B") if self.direction == "AtoB" else ("B", "A")

    def _load(self, path: Path, rng: random.Random):
        image = read_rgb(path)
        return image_to_tensor(self.plan((image.height, image.width), rng, path).apply(image))

    def load_item(self, index: int, rng: random.Random) -> Item:
        source, target = self._roles()
        a_path = self.path(source, index % self.files.count(source))
        count_b = self.files.count(target)
        b_index = rng.randrange(count_b) if self.train else index % count_b
        b_path = self.path(target, b_index)
        a = self._load(a_path, rng)
        b = self._load(b_path, rng)
        return Item(A=a, B=b, A_path=str(a_path), B_path=str(b_path), index=index)

    def check_unit(self, paths: dict[str, Path]) -> None:
        (path,) = paths.values()
        image = read_rgb(path)
        self.plan((image.height, image.width), random.Random(0), path)
