"""The Evaluator entry point: determinism, independent re-computation of every metric, refusals, grids."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluators.evaluate import (EvaluationInputError, EvaluationSettings, Evaluator, evaluate, sample_grid,
                                 static_model)
from evaluators.frechet import fid_from_features, kernel_inception_distance
from evaluators.latency import LatencyError
from evaluators.metrics import MetricOptions, MetricUnavailableError
from evaluators.segmenter import Segmenter, SegmenterError, create_segmenter_network
from supernet import create_generator, extract_subnet
from supernet.errors import ConfigError, InputSizeError

from .evaluation_helpers import (SUBNET, Negate, PoolExtractor, labelled_copy, made_data,  # noqa: F401
                                 one_torch_thread, open_split, save_torchscript, tiny_supernet)
from .test_metrics import confusion_reference, write_unaligned

pytestmark = pytest.mark.filterwarnings("ignore::evaluators.frechet.RankDeficientCovarianceWarning")  # tiny test sets

OPTIONS = MetricOptions(kid_subsets=4, kid_subset_size=3, seed=1)


def random_segmenter(classes: int = 8) -> Segmenter:
    torch.manual_seed(2)
    return Segmenter(create_segmenter_network("tiny_unet", classes, width=4), classes, "random-tiny-unet")


def settings(**overrides) -> EvaluationSettings:
    values = {"batch_size": 2, "extractor": PoolExtractor(), "segmenter": random_segmenter(), "options": OPTIONS}
    return EvaluationSettings(**{**values, **overrides})


def bits(values: dict[str, float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values.values()]


def write_inverted(root: Path, count: int = 3, size: int = 16) -> Path:
    """Aligned val pairs whose B half is the negative of the A half (255 - A)."""
    rng = np.random.default_rng(4)
    (root / "val").mkdir(parents=True)
    for i in range(count):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / "val" / f"{i}.png")
    return root


ALL = "fid,kid,miou,psnr,ssim"


def test_same_config_gives_the_same_result_bit_for_bit(made_data):
    dataset = open_split(made_data["labelled"])
    evaluator, generator = Evaluator(dataset, ALL, settings()), tiny_supernet()
    first, again = evaluator.evaluate(generator, SUBNET), evaluator.evaluate(generator, SUBNET)
    other = Evaluator(open_split(made_data["labelled"]), ALL, settings()).evaluate(generator, SUBNET)
    assert list(first.metrics) == ["fid", "kid", "miou", "psnr", "ssim"]
    assert bits(first.metrics) == bits(again.metrics) == bits(other.metrics)
    assert first.extras == again.extras and first.identities == again.identities
    assert first.metrics != evaluator.evaluate(generator, (8,) * 8).metrics  # another config scores differently
    assert (first.num_images, first.size, first.config) == (5, (32, 32), SUBNET)
    assert first.dataset == dataset.fingerprint() and "kid_std" in first.extras
    assert first.directions == {"fid": "minimize", "kid": "minimize", "miou": "maximize", "psnr": "maximize",
                                "ssim": "maximize"}
    assert first.identities["fid"] == "pool2x2-test" and first.identities["miou"] == "random-tiny-unet"
    assert first.identities["kid"] == "pool2x2-test;subsets=4,subset_size=3,seed=1"
    parts = first.seconds_by_part
    assert {"loading", "generating", "features", "segmenter", *first.metrics} <= set(parts)
    assert {f"{name}:compute" for name in first.metrics} <= set(parts)
    assert first.seconds_generating == parts["generating"] > 0
    in_metrics = sum(v for k, v in parts.items() if k not in ("loading", "generating"))
    assert first.seconds_metrics == pytest.approx(in_metrics)
    assert first.seconds_total >= first.seconds_generating + first.seconds_metrics
    assert first.to_json()["config"] == list(SUBNET)


def test_every_metric_matches_an_independent_computation(made_data):
    dataset = open_split(made_data["labelled"])
    extractor, segmenter = PoolExtractor(), random_segmenter()
    result = Evaluator(dataset, ALL, settings(extractor=extractor, segmenter=segmenter)).evaluate(tiny_supernet(),
                                                                                                  SUBNET)
    subnet = extract_subnet(tiny_supernet(), SUBNET).eval()
    items = [dataset[i] for i in range(len(dataset))]
    with torch.no_grad():
        fake = subnet(torch.stack([item["A"] for item in items]))
        real_features = extractor(torch.stack([item["B"] for item in items])).numpy()
        fake_features = extractor(fake).numpy()
        predictions = segmenter.predict(fake).numpy()
    assert result.metrics["fid"] == pytest.approx(fid_from_features(real_features, fake_features), rel=1e-6)
    kid = kernel_inception_distance(real_features, fake_features, subsets=4, subset_size=3, seed=1)
    assert result.metrics["kid"] == pytest.approx(kid.mean, rel=1e-5, abs=1e-9)
    labels = [item["label"].numpy() for item in items]
    assert result.metrics["miou"] == pytest.approx(confusion_reference(list(predictions), labels, 8, 255), abs=1e-6)
    fake01 = np.floor((fake.double().numpy() + 1) / 2 * 255 + 1e-3) / 255
    target01 = (torch.stack([item["B"] for item in items]).double().numpy() + 1) / 2
    psnr = np.mean([10 * np.log10(1 / np.mean((f - t) ** 2)) for f, t in zip(fake01, target01)])
    assert result.metrics["psnr"] == pytest.approx(psnr, rel=1e-5)


def test_a_perfect_generator_scores_perfectly_and_a_known_one_by_hand(tmp_path):
    dataset = open_split(write_inverted(tmp_path / "inverted"))
    evaluator = Evaluator(dataset, "fid,psnr,ssim", settings(batch_size=2, segmenter=None))
    perfect = evaluator.evaluate(Negate(1.0))  # -A is exactly B
    assert perfect.metrics["fid"] == pytest.approx(0.0, abs=1e-9)
    assert perfect.metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert perfect.metrics["psnr"] > 100  # float32 rounding of the targets only: MSE ~ 1e-17
    halved = evaluator.evaluate(Negate(0.5))
    expected = []
    for i in range(len(dataset)):
        item = dataset[i]
        fake01 = np.floor((-0.5 * item["A"].double().numpy() + 1) / 2 * 255 + 1e-3) / 255
        expected.append(10 * np.log10(1 / np.mean((fake01 - (item["B"].double().numpy() + 1) / 2) ** 2)))
    assert halved.metrics["psnr"] == pytest.approx(np.mean(expected), rel=1e-5)
    assert 0 < halved.metrics["ssim"] < 1


def test_supernet_at_a_config_scores_as_its_extracted_subnet_and_is_left_as_it_was(made_data):
    evaluator = Evaluator(open_split(made_data["labelled"]), "fid,psnr,ssim", settings())
    supernet = tiny_supernet().train()
    with supernet.configured((6,) * 8):
        elastic = evaluator.evaluate(supernet, SUBNET)
        assert supernet.training and supernet.active_config == (6,) * 8
    assert supernet.active_config == supernet.config
    static = evaluator.evaluate(extract_subnet(tiny_supernet(), SUBNET))
    for name, value in elastic.metrics.items():
        assert value == pytest.approx(static.metrics[name], rel=1e-6), name
    full = evaluator.evaluate(supernet)  # no config: the supernet's full width
    assert full.metrics == evaluator.evaluate(supernet, (8,) * 8).metrics and full.config is None


def test_metrics_the_split_cannot_give_are_refused_before_any_work(made_data, tmp_path):
    extractor = PoolExtractor()
    with pytest.raises(MetricUnavailableError, match="miou needs label maps"):
        Evaluator(open_split(made_data["aligned"]), "fid,miou", settings(extractor=extractor))
    unaligned = open_split(write_unaligned(tmp_path / "u", 3, 5))
    with pytest.raises(MetricUnavailableError, match="psnr needs a ground-truth target"):
        Evaluator(unaligned, "fid,psnr", settings(extractor=extractor))
    assert extractor.calls == 0
    images = [dict(item) for item in open_split(made_data["aligned"])]  # the items, but not an imagedata split
    with pytest.raises(EvaluationInputError, match="needs an imagedata split .* got list"):
        Evaluator(images, "fid", settings(extractor=extractor))
    with pytest.raises(SegmenterError, match="mIoU needs a segmenter: pass --segmenter"):
        Evaluator(open_split(made_data["labelled"]), "miou", settings(segmenter=None))
    five = save_torchscript(create_segmenter_network("dilated_fcn", 5, width=4).eval(), tmp_path / "five.ts",
                            torch.zeros(1, 3, 16, 16))
    with pytest.raises(SegmenterError, match="predicts 5 classes but labelled dataset .* has 8"):
        Evaluator(open_split(made_data["labelled"]), "miou", settings(segmenter=str(five)))
    with pytest.raises(LatencyError, match="unknown latency backend"):
        Evaluator(open_split(made_data["labelled"]), "latency", settings(options=MetricOptions(latency_backend="x")))
    with pytest.raises(EvaluationInputError, match="batch size must be a positive integer"):
        Evaluator(open_split(made_data["labelled"]), "fid", settings(batch_size=0))


def test_unpaired_domains_are_each_used_once(tmp_path):
    extractor = PoolExtractor()
    dataset = open_split(write_unaligned(tmp_path / "u", 3, 5))
    evaluator = Evaluator(dataset, "fid", settings(extractor=extractor))
    assert extractor.images == 5  # every real B once
    torch.manual_seed(0)
    result = evaluator.evaluate(create_generator("resnet", ngf=4, n_blocks=1))
    assert result.num_images == 3 and extractor.images == 8
    grid = sample_grid(create_generator("resnet", ngf=4, n_blocks=1), dataset, n=5)
    assert grid.shape == (3 * 16, 2 * 16, 3)  # only 3 inputs; no target column for unpaired data


def test_images_of_another_size_are_refused(labelled_copy):
    with pytest.raises(EvaluationInputError, match=r"is 32x32 but the evaluation size is 64x64"):
        Evaluator(open_split(labelled_copy), "fid", settings(size=(64, 64)))
    stem = sorted((labelled_copy / "val" / "images").iterdir())[3].stem
    for folder in ("images", "labels"):
        path = labelled_copy / "val" / folder / f"{stem}.png"
        image = Image.open(path)
        image.resize((24, 24), Image.Resampling.NEAREST).save(path)
    with pytest.raises(EvaluationInputError, match=rf"{stem}.png is 24x24 but the evaluation size is 32x32"):
        Evaluator(open_split(labelled_copy), "fid", settings())


def test_generators_configs_and_sizes_that_do_not_fit(made_data):
    evaluator = Evaluator(open_split(made_data["labelled"]), "psnr", settings())
    static = create_generator("mobile_resnet", ngf=8, n_blocks=3, config=SUBNET)
    assert evaluator.evaluate(static, SUBNET).config is None  # its own config is accepted
    with pytest.raises(ConfigError, match="static mobile_resnet generator is built at config 4_4_8_4_8_4_8_4"):
        evaluator.evaluate(static, (8,) * 8)
    with pytest.raises(EvaluationInputError, match="a config applies to a ganas supernet"):
        evaluator.evaluate(Negate(), SUBNET)
    with pytest.raises(InputSizeError, match="not a multiple of 64"):
        evaluator.evaluate(create_generator("unet", ngf=2, num_downs=6))
    with pytest.raises(EvaluationInputError, match="one image per input, of the input's height and width"):
        evaluator.evaluate(torch.nn.AvgPool2d(2))


def test_latency_is_measured_on_the_static_subnet(made_data):
    options = MetricOptions(latency_runs=2, latency_warmup=0)
    evaluator = Evaluator(open_split(made_data["labelled"]), "latency,psnr", settings(options=options))
    result = evaluator.evaluate(tiny_supernet(), SUBNET)
    assert result.metrics["latency"] > 0 and result.extras["latency_p90_ms"] >= result.metrics["latency"]
    assert result.identities["latency"] == f"latency:eager:cpu:{torch.get_num_threads()}threads"
    assert result.directions["latency"] == "minimize"
    subnet = static_model(tiny_supernet(), SUBNET)
    assert not subnet.elastic and subnet.config == SUBNET


def test_sample_grid_rows_are_input_generated_target(made_data, tmp_path):
    dataset = open_split(made_data["labelled"])
    grid = Evaluator(dataset, "psnr", settings()).sample_grid(tiny_supernet(), SUBNET, n=3)
    assert grid.shape == (96, 96, 3) and grid.dtype == np.uint8
    item = dataset[1]
    as_uint8 = lambda t: ((t + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()  # noqa: E731
    assert np.array_equal(grid[32:64, :32], as_uint8(item["A"]))
    assert np.array_equal(grid[32:64, 64:], as_uint8(item["B"]))
    inverted = open_split(write_inverted(tmp_path / "inverted"))
    perfect = sample_grid(Negate(1.0), inverted, n=2)
    assert np.array_equal(perfect[:, 16:32], perfect[:, 32:48])  # generated == target
    with pytest.raises(EvaluationInputError, match="n >= 1"):
        sample_grid(Negate(), inverted, n=0)


def test_plain_function_matches_the_evaluator(made_data):
    dataset = open_split(made_data["labelled"])
    one_off = evaluate(tiny_supernet(), dataset, "fid,ssim", SUBNET, extractor=PoolExtractor(), batch_size=2)
    kept = Evaluator(dataset, ["fid", "ssim"], EvaluationSettings(batch_size=2, extractor=PoolExtractor()))
    assert bits(one_off.metrics) == bits(kept.evaluate(tiny_supernet(), SUBNET).metrics)
    with pytest.raises(EvaluationInputError, match="unknown evaluation setting.* kid_size; allowed: batch_size"):
        evaluate(tiny_supernet(), dataset, "fid", kid_size=3)
