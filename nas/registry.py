"""The supernet registry: the hand-off from a trainer to the search service.

A trained supernet checkpoint is recorded in the store with its architecture, search space,
dataset, the metrics that dataset can give, and the checkpoint's SHA-256 (verified again when a
worker loads it). The checkpoint's, the dataset's and the teacher's paths are recorded relative to
the workspace when they lie inside it (:meth:`nas.workspace.Workspace.relative`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from foundation.hashing import file_sha256
from supernet.checkpoint import read_checkpoint
from supernet.errors import CheckpointError
from supernet.spaces import get_space

from .store import NotFoundError, Store, SupernetRecord
from .workspace import Workspace, recorded_path

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


def metrics_for(dataset: Mapping[str, Any], teacher: bool = False) -> list[str]:
    """What a supernet can be scored with: the search metrics whose needs its dataset meets (FID/KID always,
    PSNR/SSIM when paired, mIoU when labelled), and the teacher-fidelity ones when it records a ``teacher``."""
    return [name for name in search_metrics() if not missing_needs(name, dataset)
            and (teacher or not needs_teacher(name))]


def needs_teacher(metric: str) -> bool:
    """Whether ``metric`` compares with the teacher's outputs (``teacher-ssim``, ...)."""
    from evaluators.metric_catalog import get_metric
    from evaluators.metrics import Need

    return Need.TEACHER in get_metric(metric).needs


def register_supernet(store: Store, checkpoint: str | Path, name: str | None = None, teacher: str | Path | None = None,
                      teacher_arch: str | None = None, teacher_hparams: Mapping[str, Any] | None = None,
                      teacher_key_map: Any = None, workspace: Workspace | None = None) -> SupernetRecord:
    """Record a supernet checkpoint written by ``ganas train supernet``, with its teacher; returns the record.

    The teacher is the one the checkpoint says it was distilled from (GAN Compression), checked
    against the SHA-256 recorded at training (OMGD's: its online A -> B teacher), or ``teacher`` (a replacement).
    Every search and final model of the supernet is then shown against it. Another implementation's
    state dict is imported as :mod:`supernet.foreign` says (``teacher_key_map``: a mapping given by hand).
    Paths inside ``workspace`` are recorded relative to it (without a workspace, every path is recorded
    absolute). Registering the same file under the same name again, without ``teacher``, returns the
    record as it is once it has a teacher (the checkpoint's own paths, absolute as of training, may
    point out of a copied workspace).
    """
    path = Path(checkpoint).resolve()
    record = read_checkpoint(path)
    meta = record.get("meta") or {} if isinstance(record, dict) else {}
    if not isinstance(record, dict) or not record.get("elastic") or meta.get("kind") != "supernet":
        raise CheckpointError(f"{path} is not a supernet checkpoint (train one with `ganas train supernet`)")
    space = meta.get("space")
    if not space:
        raise CheckpointError(f"{path} has no search space (it was trained as a single static student)")
    get_space(space)
    name = name or _NAME.sub("-", f"{path.parent.name}-{record['arch']}").strip("-")
    sha = file_sha256(path)
    again = _registered(store, name, sha) if teacher is None else None
    if again is not None and again.teacher is not None:
        return again
    dataset = dict(meta.get("dataset") or {})
    channels = {k: record["hparams"].get(k) for k in ("input_nc", "output_nc")}
    info = _teacher_info(meta.get("teacher"), dataset, teacher, teacher_arch, teacher_hparams, teacher_key_map,
                         channels)
    if dataset.get("root"):
        dataset["root"] = recorded_path(dataset["root"], workspace)
    return store.register_supernet(
        name, architecture=record["arch"], space=space, checkpoint=recorded_path(path, workspace),
        checkpoint_sha256=sha, hparams=dict(record["hparams"]), dataset=dataset,
        metrics=metrics_for(dataset, teacher=info is not None),
        teacher=info.recorded(workspace).to_dict() if info is not None else None)


def _registered(store: Store, name: str, sha256: str) -> SupernetRecord | None:
    """The supernet registered as ``name`` from the same file, if any."""
    try:
        found = store.get_supernet(name)
    except NotFoundError:
        return None
    return found if found.checkpoint_sha256 == sha256 else None


def _teacher_info(recorded: Mapping[str, Any] | None, dataset: Mapping[str, Any], path: str | Path | None,
                  arch: str | None, hparams: Mapping[str, Any] | None, key_map: Any = None,
                  channels: Mapping[str, Any] | None = None):
    from .teacher import describe_teacher

    size = int(dataset.get("size", 256))
    if path is not None:
        return describe_teacher(path, (size, size), arch, hparams, key_map=key_map, **dict(channels or {}))
    if not recorded:
        return None  # a supernet trained without a recorded teacher: give one with --teacher to compare against
    return describe_teacher(recorded["path"], (size, size), recorded.get("arch"), recorded.get("hparams"),
                            expected_sha256=recorded.get("sha256"), key_map=recorded.get("key_map"),
                            **dict(channels or {}))


def registered_checkpoint(supernet: SupernetRecord, workspace: Workspace) -> bytes:
    """A registered supernet's checkpoint bytes, in ``workspace``; refused unless the file is still the one
    registered and intact (its zip CRCs, which torch does not check, for a file registered before they were)."""
    from foundation.hashing import bytes_sha256
    from foundation.tensorfiles import check_crcs

    path = workspace.absolute(supernet.checkpoint)
    data = path.read_bytes() if path.is_file() else None
    if data is None or bytes_sha256(data) != supernet.checkpoint_sha256:
        raise CheckpointError(f"supernet {supernet.name!r}: {path} is missing or no longer the registered file "
                              "(corrupt or replaced); register the new file under a new name")
    check_crcs(data, str(path), CheckpointError)
    return data
