"""Reading and writing images: every image becomes 8-bit RGB, every label map a 2-D index array.

Images go through PIL; decoding errors (unreadable, truncated, not an image) become a
:class:`DatasetError` naming the file instead of a skipped item or a raw PIL exception.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from foundation.files import atomic_path

from .errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
LABEL_EXTENSIONS = (".png",)
LABEL_MODES = ("L", "P", "I;16", "I;16B", "I")


def list_images(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name; hidden files ignored."""
    if not folder.is_dir():
        raise DatasetError(f"folder {folder} does not exist")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions)


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()  # decode now: a truncated file fails here, not later in a worker
    except FileNotFoundError:
        raise DatasetError(f"{path}: file does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read image ({type(exc).__name__}: {exc}); "
                           "it is truncated, corrupt or not an image") from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Grayscale, palette, 16-bit and RGBA images -> RGB (alpha is dropped, as pix2pix does)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # PIL clips 16/32-bit values at 255 when converting; rescale the full range instead
        array = np.asarray(image, dtype=np.float64)
        wide = image.mode.startswith("I;16") or float(array.max(initial=0)) > 255
        top = 65535.0 if wide else 255.0  # 16-bit data; a 32-bit image within 0..255 is 8-bit data
        array = np.clip(np.round(array * 255.0 / top), 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    return image.convert("RGB")


def read_rgb(path: Path) -> Image.Image:
    """Decode ``path`` as an RGB image; a :class:`DatasetError` if it cannot be read."""
    return to_rgb(_open(path))


def read_label_map(path: Path) -> np.ndarray:
    """A single-channel label map (PNG mode L, P or I;16) as an ``int64`` array of class indices."""
    image = _open(path)
    if image.mode not in LABEL_MODES:
        raise DatasetError(f"{path}: a label map must be a single-channel PNG of class indices "
                           f"(mode {', '.join(LABEL_MODES)}); this one is {image.mode}")
    return np.asarray(image).astype(np.int64)


def check_label_range(label: np.ndarray, num_classes: int, ignore_index: int | None, path: Path) -> None:
    """Every pixel must be a class index in ``[0, num_classes)`` or the ignore index."""
    values = np.unique(label)
    bad = values[(values < 0) | (values >= num_classes)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8])
        allowed = f"0..{num_classes - 1}" + (f" or {ignore_index} (ignore)" if ignore_index is not None else "")
        raise DatasetError(f"{path}: label map has class values {shown} outside the declared range {allowed}")


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 CHW tensor in [-1, 1] (pix2pix's Normalize((0.5,)*3, (0.5,)*3))."""
    array = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32)
    return tensor / 127.5 - 1.0


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Inverse of :func:`image_to_tensor` (values clipped to [-1, 1], rounded to 8 bits)."""
    array = ((tensor.detach().to(torch.float32).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy())


def write_png(path: Path, array: np.ndarray) -> None:
    """Write an HxW (label, 8-bit gray) or HxWx3 uint8 array as PNG, byte-identical for equal input.

    PIL writes no timestamp into PNGs; a fixed compression level keeps the bytes stable.
    The file appears atomically (temp file + rename) so an interrupted run leaves no half image.
    """
    if array.dtype != np.uint8:
        raise ValueError(f"write_png takes uint8 arrays, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"write_png takes HxW or HxWx3 arrays, got shape {array.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=6)
