"""The supernet registry: the hand-off from a trainer to the search service.

A trained supernet checkpoint is recorded in the store with its architecture, search space,
dataset, the metrics that dataset can give, and the checkpoint's SHA-256 (verified again when a
worker loads it).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from foundation.hashing import file_sha256
from supernet.checkpoint import read_checkpoint
from supernet.errors import CheckpointError
from supernet.spaces import get_space

from .store import Store, SupernetRecord

_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def search_metrics() -> list[str]:
    """The registered metrics a search can optimise, in registry order: the scores of generated images
    (a cost of the model itself, such as latency, is not a search metric)."""
    from evaluators.metric_catalog import get_metric, list_metrics

    return [name for name in list_metrics() if not get_metric(name).cost]


def missing_needs(metric: str, dataset: Mapping[str, Any]) -> list[str]:
    """What ``metric`` needs (as its registry entry declares) that a supernet's dataset record lacks."""
    from evaluators.metric_catalog import get_metric
    from evaluators.metrics import Need

    # the dataset record's flag for each need a dataset may lack; the others every dataset meets
    flags = {Need.PAIRED_TARGETS: "paired", Need.LABELS: "labelled"}
    needs = sorted(get_metric(metric).needs, key=lambda n: n.name)
    return [need.value for need in needs if need in flags and not dataset.get(flags[need])]


def metrics_for(dataset: Mapping[str, Any]) -> list[str]:
    """What the supernet's dataset can be scored with: the search metrics whose needs it meets
    (FID/KID always, PSNR/SSIM when paired, mIoU when labelled)."""
    return [name for name in search_metrics() if not missing_needs(name, dataset)]


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
