"""The metric registry and each metric against hand computations or an independent implementation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from evaluators.frechet import MetricInputError
from evaluators.metric_catalog import check_metrics_available, get_metric, list_metrics, parse_metric_names
from evaluators.metrics import (DatasetTraits, GeneratedBatch, MetricContext, MetricOptions, MetricUnavailableError,
                                Need, UnknownMetricError)
from foundation.errors import GanasError
from imagedata import create_dataset

from .evaluation_helpers import made_data, one_torch_thread, open_split  # noqa: F401

EXPECTED = {"fid": "minimize", "kid": "minimize", "miou": "maximize", "psnr": "maximize", "ssim": "maximize",
            "latency": "minimize", "teacher-psnr": "maximize", "teacher-ssim": "maximize",
            "teacher-perceptual": "minimize"}


def traits(paired: bool = True, classes: int | None = None, ignore: int | None = 255, count: int = 10):
    return DatasetTraits("test split", "labelled" if classes else "aligned", paired, count, count, classes, ignore)


def context(t: DatasetTraits, **options) -> MetricContext:
    return MetricContext(t, MetricOptions(**options), torch.device("cpu"))


# ----------------------------------------------------------------------------- registry

def test_registry_names_directions_and_needs():
    assert list_metrics() == list(EXPECTED)
    for name, direction in EXPECTED.items():
        assert get_metric(name).direction == direction and get_metric(name).name == name
    assert get_metric("fid").needs == {Need.FEATURES} and get_metric("kid").keeps_real_features
    assert get_metric("miou").needs == {Need.LABELS}
    assert get_metric("psnr").needs == get_metric("ssim").needs == {Need.PAIRED_TARGETS}
    assert get_metric("latency").needs == {Need.MODEL}


def test_parse_metric_names():
    assert parse_metric_names("fid, KID,fid") == ("fid", "kid")
    assert parse_metric_names(["ssim", "psnr"]) == ("ssim", "psnr")
    with pytest.raises(UnknownMetricError, match="unknown metric 'lpips'; registered: fid, kid, miou, psnr, ssim"):
        parse_metric_names("fid,lpips")
    with pytest.raises(UnknownMetricError, match="no metric given"):
        parse_metric_names(" , ")
    assert issubclass(UnknownMetricError, GanasError) and issubclass(MetricUnavailableError, GanasError)


# ----------------------------------------------------------------------------- availability

def write_unaligned(root: Path, count_a: int, count_b: int) -> Path:
    rng = np.random.default_rng(0)
    for domain, count in (("A", count_a), ("B", count_b)):
        for i in range(count):
            (root / f"val{domain}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"val{domain}" / f"{i}.png")
    return root


def test_dataset_traits_per_layout(made_data, tmp_path):
    labelled = DatasetTraits.of(open_split(made_data["labelled"]))
    assert (labelled.layout, labelled.paired, labelled.num_classes, labelled.ignore_index) == ("labelled", True, 8, 255)
    assert labelled.source_count == labelled.target_count == 5 and labelled.has_labels
    aligned = DatasetTraits.of(open_split(made_data["aligned"]))
    assert aligned.paired and not aligned.has_labels
    root = write_unaligned(tmp_path / "u", 3, 5)
    forward = DatasetTraits.of(create_dataset(root, "unaligned", "val"))
    backward = DatasetTraits.of(create_dataset(root, "unaligned", "val", direction="BtoA"))
    assert (forward.paired, forward.source_count, forward.target_count) == (False, 3, 5)
    assert (backward.source_count, backward.target_count) == (5, 3)


def test_metrics_a_split_cannot_give_are_refused(made_data, tmp_path):
    aligned = DatasetTraits.of(open_split(made_data["aligned"]))
    with pytest.raises(MetricUnavailableError, match="miou needs label maps .* has no label maps; use a labelled"):
        check_metrics_available(["psnr", "miou"], aligned)
    unaligned = DatasetTraits.of(open_split(write_unaligned(tmp_path / "u", 3, 5)))
    for name in ("psnr", "ssim"):
        with pytest.raises(MetricUnavailableError, match=f"{name} needs a ground-truth target .* is unpaired"):
            check_metrics_available([name], unaligned)
    check_metrics_available(["fid", "latency"], unaligned)
    check_metrics_available(list(EXPECTED), DatasetTraits.of(open_split(made_data["labelled"])),
                            MetricOptions(kid_subset_size=5))


def test_too_few_images_for_fid_or_kid():
    with pytest.raises(MetricInputError, match="FID needs at least 2 input images .* has 1"):
        check_metrics_available(["fid"], traits(count=1))
    with pytest.raises(MetricInputError, match="KID needs at least subset_size=1000 images per set, got 10 real"):
        check_metrics_available(["kid"], traits(count=10))
    check_metrics_available(["kid"], traits(count=10), MetricOptions(kid_subset_size=10))


# ----------------------------------------------------------------------------- mIoU

def confusion_reference(preds: list[np.ndarray], labels: list[np.ndarray], n: int, ignore: int) -> float:
    """An independent Cityscapes-protocol mIoU: bincount confusion matrix over all images, nanmean of IoUs."""
    hist = np.zeros((n, n))
    for p, t in zip(preds, labels):
        keep = t != ignore
        hist += np.bincount(n * t[keep] + p[keep], minlength=n * n).reshape(n, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    return float(np.nanmean(iou))


def test_miou_accumulates_one_confusion_matrix_and_skips_absent_classes():
    labels = [np.array([[0, 0, 1], [1, 255, 2]]), np.zeros((2, 3), np.int64)]
    preds = [np.array([[0, 1, 1], [1, 2, 2]]), np.array([[0, 0, 0], [0, 0, 1]])]
    metric = get_metric("miou")(context(traits(classes=4)))  # class 3 occurs nowhere
    metric.start(None, (2, 3))
    for p, t in zip(preds, labels):
        metric.update(GeneratedBatch(torch.zeros(1), torch.zeros(1), label=torch.from_numpy(t)[None],
                                     predictions=torch.from_numpy(p)[None]))
    value = metric.compute().value
    # by hand: class 0 TP 6 FN 2 -> 0.75; class 1 TP 2 FP 2 -> 0.5; class 2 TP 1 -> 1 (the ignored pixel is
    # not a false positive); class 3 absent -> skipped. Per-image averaging would give 0.569 instead.
    assert value == pytest.approx(0.75)
    assert value == pytest.approx(confusion_reference(preds, labels, 4, 255))


def test_miou_matches_the_reference_on_random_maps():
    rng = np.random.default_rng(7)
    labels = [rng.integers(0, 5, (9, 11)) for _ in range(4)]
    for t in labels:
        t[rng.random(t.shape) < 0.1] = 255
    preds = [np.where(rng.random(t.shape) < 0.6, np.clip(t, 0, 4), rng.integers(0, 5, t.shape)) for t in labels]
    metric = get_metric("miou")(context(traits(classes=5)))
    metric.start(None, (9, 11))
    for p, t in zip(preds, labels):
        metric.update(GeneratedBatch(torch.zeros(1), torch.zeros(1), label=torch.from_numpy(t)[None],
                                     predictions=torch.from_numpy(p)[None]))
    assert metric.compute().value == pytest.approx(confusion_reference(preds, labels, 5, 255), abs=1e-6)


# ----------------------------------------------------------------------------- PSNR / SSIM

def paired_images(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 256, (3, 3, 24, 24), generator=g).float() / 127.5 - 1
    fake = (target + 0.2 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    return fake, target


def run_paired(name: str, fake: torch.Tensor, target: torch.Tensor) -> float:
    metric = get_metric(name)(context(traits()))
    metric.start(None, tuple(fake.shape[-2:]))
    metric.update(GeneratedBatch(fake[:2], fake[:2], target=target[:2]))
    metric.update(GeneratedBatch(fake[2:], fake[2:], target=target[2:]))
    return metric.compute().value


def to_unit(fake: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    fake01 = np.floor((fake.double().numpy() + 1) / 2 * 255 + 1e-3) / 255  # saved as 8-bit, as tensor2im does
    return fake01, (target.double().numpy() + 1) / 2


def test_psnr_is_the_mean_of_per_image_psnr_on_0_1_images():
    fake, target = paired_images()
    fake01, target01 = to_unit(fake, target)
    per_image = [10 * np.log10(1.0 / np.mean((f - t) ** 2)) for f, t in zip(fake01, target01)]
    assert run_paired("psnr", fake, target) == pytest.approx(np.mean(per_image), rel=1e-5)


def test_ssim_matches_scikit_image():
    fake, target = paired_images(1)
    fake01, target01 = to_unit(fake, target)
    reference = np.mean([structural_similarity(t, f, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                               sigma=1.5, use_sample_covariance=False)
                         for f, t in zip(fake01, target01)])
    assert 0.1 < reference < 0.95
    assert run_paired("ssim", fake, target) == pytest.approx(reference, abs=1e-5)


def test_ssim_refuses_images_smaller_than_its_window():
    metric = get_metric("ssim")(context(traits()))
    with pytest.raises(MetricInputError, match="at least 11x11, got 8x8"):
        metric.start(None, (8, 8))


# ----------------------------------------------------------------------------- FID with a cached real root

@pytest.mark.parametrize("n_fake", [5, 40])  # fewer and more images than feature dimensions
def test_fid_with_cached_real_root_equals_the_frechet_distance(n_fake):
    from evaluators.frechet import feature_statistics, frechet_distance
    from evaluators.metric_impls.frechet_metrics import fid_with_real_root, psd_sqrt

    rng = np.random.default_rng(n_fake)
    real = rng.normal(size=(60, 16)) @ rng.normal(size=(16, 16))
    fake = rng.normal(0.3, 1.2, size=(n_fake, 16))
    mu1, sigma1 = feature_statistics(real)
    with pytest.warns(UserWarning) if n_fake <= 16 else _no_warning():
        mu2, sigma2 = feature_statistics(fake)
        value = fid_with_real_root(mu1, float(np.trace(sigma1)), psd_sqrt(sigma1), fake)
    # with n <= d the d x d route adds sqrt of d - n + 1 clipped rounding-noise eigenvalues (~1e-8 each)
    assert value == pytest.approx(frechet_distance(mu1, sigma1, mu2, sigma2), rel=1e-7)
    with pytest.raises(MetricInputError, match="NaN"):
        fid_with_real_root(mu1, 1.0, psd_sqrt(sigma1), np.full((20, 16), np.nan))


def _no_warning():
    import contextlib
    return contextlib.nullcontext()
