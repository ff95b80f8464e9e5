"""``labels2scene``: random layered outdoor scenes with per-pixel classes (label map -> photo-like image).

Each scene stacks sky, mountains, ground, water, a road, buildings, trees and vehicles as
random shapes (painter's order, so the label map is exactly what is visible), each class drawn
with its own texture: gradients, multi-scale noise, windows, ripples, lane marks, plus a global
light direction, colour temperature and sensor noise. Classes overlap in colour (grey road,
grey mountains, grey buildings; light green ground, dark green trees), so telling them apart
needs texture and context, not one colour lookup. Rendered at twice the size and averaged down
(anti-aliased photo; the label takes the pixel nearest each output centre).

Written twice from the same pixels: the labelled layout (``OUT/labelled``: images, labels,
dataset.json) for mIoU, and the aligned layout (``OUT/aligned``: colour label map | photo) for
pix2pix; both use the same stems and the same class colours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..io import write_png
from ..layouts.labelled import LabelSpec, colorize
from .base import (MAKE_SPLITS, MakeOptions, MakeResult, item_generator, progress_over, provenance,
                   register_maker, stem, write_json)

NAME = "labels2scene"
CLASSES = ("sky", "mountain", "ground", "water", "road", "building", "tree", "vehicle")
COLORS = ((70, 130, 180), (160, 110, 90), (152, 251, 152), (0, 60, 230), (128, 64, 128), (70, 70, 70),
          (107, 142, 35), (0, 0, 142))
IGNORE_INDEX = 255
SPEC = LabelSpec(CLASSES, IGNORE_INDEX, COLORS)
SKY, MOUNTAIN, GROUND, WATER, ROAD, BUILDING, TREE, VEHICLE = range(len(CLASSES))


def smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: a random ``cells`` grid upsampled bicubically to n x n."""
    grid = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((n, n), Image.Resampling.BICUBIC))


def fractal_noise(rng: np.random.Generator, n: int, base: int = 3, octaves: int = 4) -> np.ndarray:
    total = np.zeros((n, n), np.float32)
    for octave in range(octaves):
        total += smooth_noise(rng, n, min(base * 2 ** octave, n)) * 0.5 ** octave
    return total / 1.875


class Scene:
    """One scene being painted at ``n`` x ``n``: a float RGB canvas and its label map."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n = rng, n
        self.yy, self.xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
        self.photo = np.zeros((n, n, 3), np.float32)
        self.label = np.zeros((n, n), np.uint8)
        self.horizon = rng.uniform(0.3, 0.6) + rng.uniform(-0.08, 0.08) * (self.xx - 0.5)

    def paint(self, mask: np.ndarray, cls: int, texture: np.ndarray) -> None:
        self.photo[mask] = texture[mask]
        self.label[mask] = cls

    def colour(self, base: tuple[float, float, float], jitter: float) -> np.ndarray:
        return np.clip(np.asarray(base, np.float32) + self.rng.uniform(-jitter, jitter, 3), 0, 1)

    def textured(self, base: np.ndarray, amount: float, cells: int = 6, octaves: int = 4) -> np.ndarray:
        noise = fractal_noise(self.rng, self.n, cells, octaves)
        return base[None, None, :] * (1.0 + amount * noise[..., None])

    # -- layers, back to front ------------------------------------------------------------
    def sky(self) -> None:
        top, low = self.colour((0.25, 0.45, 0.85), 0.15), self.colour((0.75, 0.8, 0.9), 0.12)
        t = np.clip(self.yy / np.maximum(self.horizon, 1e-3), 0, 1)[..., None]
        gradient = top * (1 - t) + low * t
        clouds = np.clip(fractal_noise(self.rng, self.n, 3, 4) * 1.6 - self.rng.uniform(0.0, 0.6), 0, 1)[..., None]
        self.paint(np.ones_like(self.label, bool), SKY, gradient * (1 - clouds) + 0.95 * clouds)

    def mountains(self) -> None:
        if self.rng.random() < 0.35:
            return
        profile = 0.6 + 0.4 * smooth_noise(self.rng, self.n, 4)[0]  # one ridge height per column
        ridge = self.horizon - self.rng.uniform(0.05, 0.25) * profile[None, :]
        mask = (self.yy > ridge) & (self.yy <= self.horizon)
        base = self.colour((0.5, 0.47, 0.5), 0.1)
        shade = 1.0 - 0.4 * np.clip((self.yy - ridge) * 4, 0, 1)[..., None]
        self.paint(mask, MOUNTAIN, self.textured(base, 0.35, 8) * shade)

    def ground(self) -> None:
        base = self.colour((0.4, 0.65, 0.3), 0.12)
        patches = smooth_noise(self.rng, self.n, 4)[..., None] * np.asarray([0.12, 0.05, -0.05], np.float32)
        grass = self.textured(base, 0.25, 16, 3) + patches
        self.paint(self.yy > self.horizon, GROUND, grass)

    def water(self) -> None:
        if self.rng.random() < 0.5:
            return
        cx, cy = self.rng.uniform(0, 1), self.rng.uniform(self.horizon.mean() + 0.08, 0.9)
        rx, ry = self.rng.uniform(0.15, 0.5), self.rng.uniform(0.05, 0.15)
        mask = (((self.xx - cx) / rx) ** 2 + ((self.yy - cy) / ry) ** 2 < 1) & (self.yy > self.horizon)
        base = self.colour((0.15, 0.35, 0.7), 0.1)
        ripples = np.sin(self.yy * self.rng.uniform(60, 120) + 3 * smooth_noise(self.rng, self.n, 6))[..., None]
        self.paint(mask, WATER, base[None, None, :] * (1 + 0.18 * ripples) + 0.08)

    def road(self) -> None:
        if self.rng.random() < 0.3:
            return
        vanish, bottom, half = self.rng.uniform(0.3, 0.7), self.rng.uniform(0.2, 0.8), self.rng.uniform(0.15, 0.4)
        t = np.clip((self.yy - self.horizon) / np.maximum(1 - self.horizon, 1e-3), 0, 1)
        centre = vanish + (bottom - vanish) * t
        mask = (np.abs(self.xx - centre) < half * t) & (self.yy > self.horizon)
        asphalt = self.textured(self.colour((0.42, 0.42, 0.44), 0.06), 0.15, 24, 2)
        dashes = (np.abs(self.xx - centre) < 0.012 * t + 0.002) & (np.sin(t * 40 / (t + 0.2)) > 0.2)
        asphalt[dashes] = self.colour((0.9, 0.85, 0.4), 0.1)
        self.paint(mask, ROAD, asphalt)

    def buildings(self) -> None:
        for _ in range(int(self.rng.integers(0, 5))):
            x0, width, height = self.rng.uniform(-0.05, 0.9), self.rng.uniform(0.08, 0.25), self.rng.uniform(0.1, 0.4)
            base_y = self.horizon + self.rng.uniform(0.0, 0.05)
            mask = (self.xx >= x0) & (self.xx < x0 + width) & (self.yy > base_y - height) & (self.yy <= base_y)
            wall = self.textured(self.colour((0.6, 0.55, 0.5), 0.2), 0.1, 12, 2)
            period_x, period_y = self.rng.uniform(0.03, 0.06), self.rng.uniform(0.04, 0.07)
            windows = (((self.xx - x0) % period_x) < period_x * 0.55) & (((self.yy - base_y) % period_y) < period_y * 0.5)
            lit = self.rng.uniform(0.1, 0.9)
            wall[windows] = wall[windows] * 0.35 + lit * 0.5
            side = 1.0 - 0.25 * np.clip((self.xx - x0) / width, 0, 1)[..., None]
            self.paint(mask, BUILDING, wall * side)

    def trees(self) -> None:
        for _ in range(int(self.rng.integers(0, 6))):
            cx, radius = self.rng.uniform(0, 1), self.rng.uniform(0.04, 0.12)
            cy = float(np.interp(cx, self.xx[0], self.horizon[0])) + self.rng.uniform(-0.12, 0.12)
            trunk_bottom = cy + radius + self.rng.uniform(0.03, 0.1)
            trunk = (np.abs(self.xx - cx) < radius / 5) & (self.yy > cy) & (self.yy < trunk_bottom)
            self.paint(trunk, TREE, np.broadcast_to(self.colour((0.35, 0.22, 0.12), 0.06), self.photo.shape))
            wobble = 1 + 0.25 * smooth_noise(self.rng, self.n, 10)
            canopy = ((self.xx - cx) ** 2 + ((self.yy - cy) * 1.2) ** 2) < (radius * wobble) ** 2
            leaves = self.textured(self.colour((0.15, 0.42, 0.12), 0.08), 0.6, 20, 3)
            highlight = np.clip(1.3 - ((self.yy - cy + radius) / (2 * radius)), 0.6, 1.3)[..., None]
            self.paint(canopy, TREE, leaves * highlight)

    def vehicles(self) -> None:
        low = float(self.horizon.mean())
        for _ in range(int(self.rng.integers(0, 4))):
            y = self.rng.uniform(low + 0.1, 0.97)
            scale = (y - low) / (1 - low)
            x, width = self.rng.uniform(0, 1), self.rng.uniform(0.1, 0.2) * scale
            height = width * self.rng.uniform(0.35, 0.55)
            body = (np.abs(self.xx - x) < width / 2) & (self.yy < y) & (self.yy > y - height)
            cabin = (np.abs(self.xx - x) < width / 3) & (self.yy <= y - height) & (self.yy > y - 1.6 * height)
            paint = np.broadcast_to(self.colour(tuple(self.rng.uniform(0.1, 0.95, 3)), 0.0), self.photo.shape).copy()
            paint[cabin] = self.colour((0.15, 0.18, 0.22), 0.05)
            paint *= (1 + 0.1 * smooth_noise(self.rng, self.n, 8))[..., None]
            self.paint(body | cabin, VEHICLE, paint)

    def light(self) -> None:
        angle, strength = self.rng.uniform(0, 2 * np.pi), self.rng.uniform(0.0, 0.45)
        ramp = 1 + strength * ((self.xx - 0.5) * np.cos(angle) + (self.yy - 0.5) * np.sin(angle))
        tint = self.rng.uniform(0.88, 1.12, 3).astype(np.float32)
        self.photo *= ramp[..., None] * tint * self.rng.uniform(0.75, 1.15)
        self.photo += self.rng.normal(0, self.rng.uniform(0.01, 0.035), self.photo.shape).astype(np.float32)


def render_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo uint8 size x size x 3, label uint8 size x size) of one random scene."""
    scene = Scene(rng, 2 * size)
    for layer in (scene.sky, scene.mountains, scene.ground, scene.water, scene.road, scene.buildings,
                  scene.trees, scene.vehicles, scene.light):
        layer()
    photo = np.clip(scene.photo * 255 + 0.5, 0, 255).astype(np.uint8)
    photo = np.asarray(Image.fromarray(photo).reduce(2))
    return photo, scene.label[1::2, 1::2].copy()


@register_maker(NAME, "label map -> outdoor scene, 8 classes (labelled layout for mIoU + aligned label|photo)",
                ("labelled", "aligned"))
def make_labels2scene(out: Path, options: MakeOptions, progress: bool) -> MakeResult:
    labelled, aligned = out / "labelled", out / "aligned"
    write_json(labelled / "dataset.json", {**SPEC.to_json(), **provenance(NAME, "labelled", options)})
    write_json(aligned / "dataset.json", {**provenance(NAME, "aligned", options), "direction": "AtoB",
                                          "A": "colour-coded label map (colours as in ../labelled/dataset.json)",
                                          "B": "photo"})
    tasks = [(split, i) for split in MAKE_SPLITS for i in range(options.counts()[split])]
    for split, index in progress_over(tasks, len(tasks), NAME, progress):
        photo, label = render_scene(item_generator(NAME, options.seed, split, index), options.size)
        write_png(labelled / split / "images" / f"{stem(index)}.png", photo)
        write_png(labelled / split / "labels" / f"{stem(index)}.png", label)
        write_png(aligned / split / f"{stem(index)}.png", np.concatenate([colorize(label, SPEC), photo], axis=1))
    return MakeResult(NAME, out, {"labelled": labelled, "aligned": aligned}, options.counts())
