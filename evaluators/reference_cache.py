"""Reference statistics of real images, computed once per (dataset content, geometry, extractor) and kept on disk.

FID and KID compare generated images with the split's real target images; their features
(mean, covariance, and the features themselves for KID) depend only on the image files, how
they are resized, and the extractor. :class:`ReferenceKey` names exactly that: the split's
content hash (file names and bytes, :mod:`imagedata.hashing`), layout, direction, preprocessing,
evaluated size, and the extractor's identity (network, weights digest, preprocessing). Its
SHA-256 is the file name in the cache folder (the workspace passes ``<workspace>/cache``), so
editing one image, resizing differently or changing the extractor is a different key, and a
stale file is never used. Files are written atomically under a unique temporary name, so
workers sharing a cache never see half a file; an unreadable file is recomputed.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from foundation.files import atomic_write_text
from foundation.hashing import bytes_sha256

from .frechet import FeatureStatistics, MetricInputError

if TYPE_CHECKING:
    from imagedata import Preprocess

KEY_FORMAT = "ganas.reference-key/1"
SUBFOLDER = "reference-statistics"


class StaleCacheWarning(UserWarning):
    """A cache file that could not be read; it is recomputed and replaced."""


@dataclass(frozen=True)
class ReferenceKey:
    """Everything the real-image statistics depend on (see the module docstring)."""

    dataset_hash: str
    layout: str
    direction: str
    preprocess: str
    size: tuple[int, int]
    extractor: str

    def to_json(self) -> dict[str, Any]:
        return {"format": KEY_FORMAT, **asdict(self), "size": list(self.size)}

    @property
    def digest(self) -> str:
        return bytes_sha256(json.dumps(self.to_json(), sort_keys=True))


def describe_preprocess(preprocess: Preprocess) -> str:
    """A stable text of an :class:`imagedata.Preprocess` (mode and sizes) for the key."""
    return f"{preprocess.mode}:load={list(preprocess.load_size)}:crop={list(preprocess.crop_size)}"


class ReferenceCache:
    """A folder of ``<key digest>.npz`` statistics with a ``.json`` beside each saying what its key was."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder) / SUBFOLDER

    def path(self, key: ReferenceKey) -> Path:
        return self.folder / f"{key.digest[:32]}.npz"

    def load(self, key: ReferenceKey, need_features: bool = False) -> FeatureStatistics | None:
        """The cached statistics of ``key``; None when absent, unreadable, or lacking features KID needs."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            stats = FeatureStatistics.load(path, identity=key.extractor)
        except MetricInputError as exc:
            warnings.warn(f"ignoring cached reference statistics {path}: {exc}; recomputing", StaleCacheWarning,
                          stacklevel=2)
            return None
        if need_features and stats.features is None:
            return None
        return stats

    def store(self, key: ReferenceKey, stats: FeatureStatistics) -> Path:
        """Write ``stats`` (and its key, readable) atomically; returns the statistics file."""
        if stats.identity != key.extractor:
            raise MetricInputError(f"statistics of extractor {stats.identity} cannot be stored under a key for "
                                   f"{key.extractor}")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        described = {**key.to_json(), "digest": key.digest, "count": stats.count,
                     "num_features": stats.num_features, "has_features": stats.features is not None}
        stats.save(path)
        atomic_write_text(path.with_suffix(".json"), json.dumps(described, indent=1) + "\n")
        return path

    def get_or_compute(self, key: ReferenceKey, compute: Callable[[], FeatureStatistics],
                       need_features: bool = False) -> tuple[FeatureStatistics, bool]:
        """(statistics, True) from the cache, else (``compute()``, False) after storing it."""
        cached = self.load(key, need_features)
        if cached is not None:
            return cached, True
        stats = compute()
        self.store(key, stats)
        return stats, False
