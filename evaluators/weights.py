"""The pretrained weight files of metric networks, found by :mod:`foundation.weights`' policy."""
from __future__ import annotations

import os
from pathlib import Path

from foundation.weights import WeightsSpec, find_weights

INCEPTION_WEIGHTS = WeightsSpec(
    what="FID Inception-v3",
    file_names=("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    env_var="GANAS_INCEPTION_WEIGHTS",
    flag="--inception-weights",
    published_at=(
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    ),
    hint=("Alternatively use your own feature extractor: pass the path of a TorchScript file "
          "(images in [-1, 1] -> (N, D) features) as the extractor instead of 'inception'."),
)


def find_inception_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The FID Inception weights (torch-fidelity's or pytorch-fid's file) on local disk."""
    return find_weights(INCEPTION_WEIGHTS, explicit)
