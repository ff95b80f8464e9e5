"""The supernet registry: the hand-off from a trainer to the search service.

A trained supernet checkpoint is recorded in the store with its architecture, search space,
dataset, the metrics that dataset can give, and the checkpoint's SHA-256 (verified again when a
worker loads it).
"""
from __future__ import annotations

import re
from pathlib import Path

from foundation.hashing import file_sha256
from supernet.checkpoint import read_checkpoint
from supernet.errors import CheckpointError
from supernet.spaces import get_space

from .store import Store, SupernetRecord

_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def metrics_for(dataset: dict) -> list[str]:
    """What the supernet's dataset can be scored with: FID/KID always, PSNR/SSIM when paired, mIoU when labelled."""
    metrics = ["fid", "kid"]
    if dataset.get("paired"):
        metrics += ["psnr", "ssim"]
    if dataset.get("labelled"):
        metrics.append("miou")
    return metrics


def register_supernet(store: Store, checkpoint: str | Path, name: str | None = None) -> SupernetRecord:
    """Record a supernet checkpoint written by ``ganas train supernet``; returns the stored record."""
    path = Path(checkpoint).resolve()
    record = read_checkpoint(path)
    meta = record.get("meta") or {} if isinstance(record, dict) else {}
    if not isinstance(record, dict) or not record.get("elastic") or meta.get("kind") != "supernet":
        raise CheckpointError(f"{path} is not a supernet checkpoint (train one with `ganas train supernet`)")
    space = meta.get("space")
    if not space:
        raise CheckpointError(f"{path} has no search space (it was trained as a single static student)")
    get_space(space)
    dataset = dict(meta.get("dataset") or {})
    default_name = _NAME.sub("-", f"{path.parent.name}-{record['arch']}").strip("-")
    return store.register_supernet(
        name or default_name, architecture=record["arch"], space=space, checkpoint=str(path),
        checkpoint_sha256=file_sha256(path), hparams=dict(record["hparams"]), dataset=dataset,
        metrics=metrics_for(dataset))
