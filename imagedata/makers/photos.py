"""Real-photo tasks from the images that ship inside scikit-image and scikit-learn (no download).

``edges2photo`` (aligned): Canny edges, black on white as in edges2shoes | the photo crop (a crop
with under 1% edge pixels is redrawn, up to 5 times, so few pairs are blank).
``photo2texture`` (unaligned): crops of colour photographs (A) | crops of grey texture photos (B).
Crops are random squares (18-30% of the photo's short side), resized to the output size and
flipped at random. Train crops come from the left 70% of each photo and val crops from the
right 30%, so no val pixel was ever seen in training.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import DatasetError
from ..io import write_png
from .base import (MAKE_SPLITS, MakeOptions, MakeResult, item_generator, progress_over, provenance,
                   register_maker, stem, write_json)

TRAIN_REGION = 0.7  # fraction of each photo's width that train crops come from; val uses the rest
EDGE_ATTEMPTS, MIN_EDGE_FRACTION = 5, 0.01


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data
        return getattr(skimage.data, name)()
    return load


def _motorcycle(side: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data
        return skimage.data.stereo_motorcycle()[side]
    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image
        return load_sample_image(filename)
    return load


PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"), "chelsea": _skimage("chelsea"), "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"), "motorcycle_left": _motorcycle(0), "motorcycle_right": _motorcycle(1),
    "china": _sklearn("china.jpg"), "flower": _sklearn("flower.jpg"),
}
TEXTURES: dict[str, Callable[[], np.ndarray]] = {
    "brick": _skimage("brick"), "grass": _skimage("grass"), "gravel": _skimage("gravel"),
}


@functools.lru_cache(maxsize=None)
def load_source(name: str) -> np.ndarray:
    """A built-in source photo as uint8 H x W x 3 (grey photos repeated over three channels)."""
    loader = PHOTOS.get(name) or TEXTURES.get(name)
    if loader is None:
        raise DatasetError(f"unknown source photo {name!r}; available: {', '.join([*PHOTOS, *TEXTURES])}")
    try:
        image = np.asarray(loader())
    except Exception as exc:  # a missing optional data file raises several types
        raise DatasetError(f"built-in source photo {name!r} cannot be loaded offline ({type(exc).__name__}: {exc})") \
            from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def random_crop(rng: np.random.Generator, image: np.ndarray, size: int, split: str) -> np.ndarray:
    """A random square crop of ``image`` from the split's region, resized to ``size`` and maybe flipped."""
    height, width = image.shape[:2]
    boundary = int(width * TRAIN_REGION)
    lo, hi = (0, boundary) if split == "train" else (boundary, width)
    side = int(round(rng.uniform(0.18, 0.3) * min(height, width)))
    side = max(8, min(side, hi - lo, height))
    x0 = int(rng.integers(lo, hi - side + 1))
    y0 = int(rng.integers(0, height - side + 1))
    crop = Image.fromarray(image[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop)


def sample_crop(rng: np.random.Generator, sources: list[str], size: int, split: str) -> np.ndarray:
    return random_crop(rng, load_source(sources[int(rng.integers(len(sources)))]), size, split)


def edge_map(photo: np.ndarray) -> np.ndarray:
    """Canny edges of a photo, black lines on white, three channels (edges2shoes style)."""
    from skimage.feature import canny

    gray = photo.astype(np.float64).mean(axis=2) / 255.0
    edges = canny(gray, sigma=1.0 + photo.shape[0] / 128.0, low_threshold=0.05, high_threshold=0.12)
    return np.repeat(np.where(edges, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


@register_maker("edges2photo", "Canny edges -> photo crop of scikit-image / scikit-learn photos (aligned A|B)",
                ("aligned",))
def make_edges2photo(out: Path, options: MakeOptions, progress: bool) -> MakeResult:
    name, sources = "edges2photo", sorted(PHOTOS)
    write_json(out / "dataset.json", {**provenance(name, "aligned", options, sources=sources),
                                      "direction": "AtoB", "A": "Canny edges", "B": "photo"})
    tasks = [(split, i) for split in MAKE_SPLITS for i in range(options.counts()[split])]
    for split, index in progress_over(tasks, len(tasks), name, progress):
        rng = item_generator(name, options.seed, split, index)
        for _ in range(EDGE_ATTEMPTS):  # skip flat crops (clear sky), whose edge map would be blank
            photo = sample_crop(rng, sources, options.size, split)
            edges = edge_map(photo)
            if (edges[..., 0] == 0).mean() >= MIN_EDGE_FRACTION:
                break
        write_png(out / split / f"{stem(index)}.png", np.concatenate([edges, photo], axis=1))
    return MakeResult(name, out, {"aligned": out}, options.counts())


@register_maker("photo2texture", "colour photo crops (A) vs grey texture crops: brick, grass, gravel (B), "
                "unpaired (unaligned)", ("unaligned",))
def make_photo2texture(out: Path, options: MakeOptions, progress: bool) -> MakeResult:
    name = "photo2texture"
    domains = {"A": sorted(PHOTOS), "B": sorted(TEXTURES)}
    write_json(out / "dataset.json", {**provenance(name, "unaligned", options, sources=domains),
                                      "A": "colour photos", "B": "grey textures"})
    tasks = [(split, domain, i) for split in MAKE_SPLITS for domain in domains
             for i in range(options.counts()[split])]
    for split, domain, index in progress_over(tasks, len(tasks), name, progress):
        rng = item_generator(name, options.seed, split, index, stream=domain)
        write_png(out / f"{split}{domain}" / f"{stem(index)}.png",
                  sample_crop(rng, domains[domain], options.size, split))
    return MakeResult(name, out, {"unaligned": out}, options.counts())
