"""pytorch-CycleGAN-and-pix2pix preprocessing as explicit, seeded geometry.

An :class:`Augmentation` (resize, crop box, flip) is planned once per item from a
``random.Random`` derived from ``(seed, epoch, index)`` and then applied to every image of
the item, so A and B of an aligned pair and a label map always get the same crop and flip,
and a resumed run sees the same augmentations. Label maps are resized nearest-neighbour.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable, Union

from PIL import Image

from foundation.registry import Registry

from .errors import DatasetError

Size = tuple[int, int]  # (height, width)
SizeLike = Union[int, Size]


def as_size(value: SizeLike, what: str = "size") -> Size:
    """``256`` -> (256, 256); ``(256, 512)`` stays (height, width)."""
    height, width = (value, value) if isinstance(value, int) else tuple(value)
    if int(height) <= 0 or int(width) <= 0:
        raise DatasetError(f"{what} must be positive, got {value}")
    return (int(height), int(width))


def item_random(seed: int, epoch: int, index: int) -> random.Random:
    """The random stream of one item: a function of (seed, epoch, index) only, never of call order."""
    digest = hashlib.sha256(f"ganas.imagedata:{seed}:{epoch}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Augmentation:
    """The geometry applied to one item; every image of the item gets exactly this one."""

    resize: Size | None = None  # (height, width) to resize to first; None keeps the size
    crop: tuple[int, int, int, int] | None = None  # (top, left, height, width) after resizing
    flip: bool = False  # horizontal flip, last

    def apply(self, image: Image.Image, nearest: bool = False) -> Image.Image:
        """Resize (bicubic, or nearest for label maps), crop, flip."""
        if self.resize is not None and image.size != (self.resize[1], self.resize[0]):
            method = Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC
            image = image.resize((self.resize[1], self.resize[0]), method)
        if self.crop is not None:
            top, left, height, width = self.crop
            image = image.crop((left, top, left + width, top + height))
        if self.flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image


PlanFunction = Callable[["Preprocess", Size, bool, random.Random], Augmentation]
_MODES: Registry[PlanFunction] = Registry("preprocess mode", DatasetError)


def register_mode(name: str) -> Callable[[PlanFunction], PlanFunction]:
    return _MODES.register(name)


def list_modes() -> list[str]:
    return _MODES.names()


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a tensor: pix2pix's ``--preprocess``, ``--load_size``, ``--crop_size``, ``--no_flip``.

    Sizes are (height, width). Train items get the random crop and flip; eval items a fixed
    geometry (see each mode) and never a flip.
    """

    mode: str = "resize_and_crop"
    load_size: Size = (286, 286)
    crop_size: Size = (256, 256)
    flip: bool = True

    def __post_init__(self) -> None:
        _MODES.get(self.mode)  # an unknown mode is refused here, listing the registered ones
        object.__setattr__(self, "load_size", as_size(self.load_size, "load size"))
        object.__setattr__(self, "crop_size", as_size(self.crop_size, "crop size"))
        if self.mode == "resize_and_crop" and (self.crop_size[0] > self.load_size[0]
                                               or self.crop_size[1] > self.load_size[1]):
            raise DatasetError(f"crop size {self.crop_size} is larger than load size {self.load_size}; "
                               "the crop must fit inside the resized image")

    @classmethod
    def for_size(cls, crop: SizeLike, load: SizeLike | None = None, **kwargs) -> "Preprocess":
        """pix2pix's default ratio (load 286 for crop 256) at any crop size."""
        crop_size = as_size(crop, "crop size")
        load_size = as_size(load, "load size") if load is not None else \
            (crop_size[0] * 286 // 256, crop_size[1] * 286 // 256)
        return cls(load_size=load_size, crop_size=crop_size, **kwargs)

    def plan(self, source_size: Size, train: bool, rng: random.Random) -> Augmentation:
        """The geometry for an item whose images are ``source_size`` (height, width)."""
        return _MODES.get(self.mode)(self, source_size, train, rng)


def _flip(options: Preprocess, train: bool, rng: random.Random) -> bool:
    return train and options.flip and rng.random() < 0.5


def _random_box(outer: Size, inner: Size, rng: random.Random) -> tuple[int, int, int, int]:
    top = rng.randint(0, outer[0] - inner[0])
    left = rng.randint(0, outer[1] - inner[1])
    return (top, left, inner[0], inner[1])


@register_mode("resize_and_crop")
def _resize_and_crop(options: Preprocess, source: Size, train: bool, rng: random.Random) -> Augmentation:
    """Train: resize to load size, random crop to crop size, random flip. Eval: resize to crop size."""
    if not train:
        return Augmentation(resize=options.crop_size)
    box = _random_box(options.load_size, options.crop_size, rng)
    return Augmentation(resize=options.load_size, crop=box, flip=_flip(options, train, rng))


@register_mode("crop")
def _crop(options: Preprocess, source: Size, train: bool, rng: random.Random) -> Augmentation:
    """No resizing. Train: random crop to crop size and flip. Eval: the centre crop."""
    if source[0] < options.crop_size[0] or source[1] < options.crop_size[1]:
        raise DatasetError(f"image of size {source[0]}x{source[1]} is smaller than the crop size "
                           f"{options.crop_size[0]}x{options.crop_size[1]} (mode 'crop' never resizes)")
    if not train:
        top = (source[0] - options.crop_size[0]) // 2
        left = (source[1] - options.crop_size[1]) // 2
        return Augmentation(crop=(top, left, *options.crop_size))
    box = _random_box(source, options.crop_size, rng)
    return Augmentation(crop=box, flip=_flip(options, train, rng))


@register_mode("resize")
def _resize(options: Preprocess, source: Size, train: bool, rng: random.Random) -> Augmentation:
    """Resize straight to crop size (load size unused); train adds the random flip."""
    return Augmentation(resize=options.crop_size, flip=_flip(options, train, rng))


@register_mode("none")
def _none(options: Preprocess, source: Size, train: bool, rng: random.Random) -> Augmentation:
    """Images keep their own size (the generator checks it); train adds the random flip."""
    return Augmentation(flip=_flip(options, train, rng))
