"""Tiny datasets written into tmp_path by hand, so expected tensors can be computed independently."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def random_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_aligned(root: Path, split: str = "train", count: int = 8, size: int = 16, seed: int = 0,
                  same_halves: bool = False, inverted: bool = False) -> list[np.ndarray]:
    """``count`` A|B images of ``size`` x ``size`` halves; returns the A halves. B is A itself
    (``same_halves``), its negative (``inverted``) or independent noise."""
    rng = np.random.default_rng(seed)
    halves = []
    for i in range(count):
        a = random_rgb(rng, size, size)
        b = a if same_halves else (255 - a if inverted else random_rgb(rng, size, size))
        save(root / split / f"{i:03d}.png", np.concatenate([a, b], axis=1))
        halves.append(a)
    return halves


def write_unaligned(root: Path, split: str = "train", count_a: int = 5, count_b: int = 8, size: int = 16,
                    seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for domain, count in (("A", count_a), ("B", count_b)):
        for i in range(count):
            save(root / f"{split}{domain}" / f"{domain.lower()}{i:03d}.png", random_rgb(rng, size, size))


CLASSES = ["sky", "road", "car"]
IGNORE = 255


def write_labelled(root: Path, split: str = "train", count: int = 6, size: int = 16, seed: int = 0,
                   spec: dict | None = None) -> list[np.ndarray]:
    """Random label maps (classes 0..2 plus some ignore pixels) and random photos; returns the labels."""
    rng = np.random.default_rng(seed)
    (root).mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(spec or {"layout": "labelled", "classes": CLASSES,
                                                           "ignore_index": IGNORE}))
    labels = []
    for i in range(count):
        label = rng.integers(0, len(CLASSES), (size, size)).astype(np.uint8)
        label[0, :3] = IGNORE
        save(root / split / "labels" / f"s{i:03d}.png", label)
        save(root / split / "images" / f"s{i:03d}.png", random_rgb(rng, size, size))
        labels.append(label)
    return labels


@pytest.fixture
def aligned_root(tmp_path: Path) -> Path:
    root = tmp_path / "aligned"
    write_aligned(root, "train", count=8)
    write_aligned(root, "val", count=3, seed=1)
    return root
