"""Real-image statistics are computed once per (split content, geometry, extractor) and reused from disk."""
from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from PIL import Image

from evaluators.evaluate import EvaluationSettings, Evaluator
from evaluators.frechet import FeatureStatistics
from evaluators.metrics import MetricOptions
from evaluators.reference_cache import ReferenceCache, ReferenceKey, StaleCacheWarning

from .evaluation_helpers import (SUBNET, PoolExtractor, labelled_copy, made_data,  # noqa: F401
                                 one_torch_thread, open_split, tiny_supernet)

pytestmark = pytest.mark.filterwarnings("ignore::evaluators.frechet.RankDeficientCovarianceWarning")  # tiny test sets

KEY = ReferenceKey("ab" * 32, "aligned", "AtoB", "none:load=[286, 286]:crop=[256, 256]", (32, 32), "pool2x2-test")


def statistics(identity: str = "pool2x2-test", count: int = 6, seed: int = 0) -> FeatureStatistics:
    features = np.random.default_rng(seed).normal(size=(count, 4))
    return FeatureStatistics.from_features(features, identity)


def test_key_digest_is_stable_and_covers_every_field():
    same = ReferenceKey(**{**KEY.__dict__})
    assert same.digest == KEY.digest and len(KEY.digest) == 64
    changed = [ReferenceKey(**{**KEY.__dict__, field: value}) for field, value in (
        ("dataset_hash", "cd" * 32), ("layout", "labelled"), ("direction", "BtoA"), ("preprocess", "resize"),
        ("size", (64, 64)), ("extractor", "inception-v3-fid:12345678"))]
    assert len({KEY.digest, *(k.digest for k in changed)}) == 7


def test_store_then_load_round_trip_atomically(tmp_path):
    cache = ReferenceCache(tmp_path)
    assert cache.load(KEY) is None
    stats = statistics()
    path = cache.store(KEY, stats)
    assert path == cache.path(KEY) and path.name == KEY.digest[:32] + ".npz"
    loaded = cache.load(KEY, need_features=True)
    assert loaded.count == 6 and np.array_equal(loaded.mu, stats.mu) and np.array_equal(loaded.sigma, stats.sigma)
    assert np.array_equal(loaded.features, stats.features)
    written = sorted(p.name for p in path.parent.iterdir())
    assert written == sorted([path.name, path.with_suffix(".json").name])  # no temporary file left
    assert path.with_suffix(".json").stat().st_mode & 0o044 == path.stat().st_mode & 0o044  # same permissions
    described = path.with_suffix(".json").read_text()
    assert KEY.digest in described and '"extractor": "pool2x2-test"' in described


def test_statistics_without_features_do_not_serve_kid(tmp_path):
    cache = ReferenceCache(tmp_path)
    cache.store(KEY, FeatureStatistics.from_features(np.eye(5, 3), "pool2x2-test", keep_features=False))
    assert cache.load(KEY) is not None and cache.load(KEY, need_features=True) is None
    calls = []
    stats, hit = cache.get_or_compute(KEY, lambda: calls.append(1) or statistics(), need_features=True)
    assert not hit and calls == [1] and cache.load(KEY, need_features=True) is not None


def test_a_corrupt_file_is_recomputed_and_replaced(tmp_path):
    cache = ReferenceCache(tmp_path)
    cache.folder.mkdir(parents=True)
    cache.path(KEY).write_bytes(b"half a file")
    with pytest.warns(StaleCacheWarning, match="recomputing"):
        stats, hit = cache.get_or_compute(KEY, lambda: statistics(seed=3))
    assert not hit and np.array_equal(cache.load(KEY).mu, stats.mu)


def test_statistics_of_another_extractor_are_refused(tmp_path):
    with pytest.raises(Exception, match="cannot be stored under a key"):
        ReferenceCache(tmp_path).store(KEY, statistics(identity="other"))


def build(dataset, extractor, cache_dir):
    options = MetricOptions(kid_subsets=3, kid_subset_size=4)
    return Evaluator(dataset, "fid,kid", EvaluationSettings(batch_size=2, extractor=extractor, cache_dir=cache_dir,
                                                           options=options))


def test_second_evaluator_does_no_real_image_pass_and_an_edited_image_is_recomputed(labelled_copy, tmp_path):
    cache_dir, generator = tmp_path / "cache", tiny_supernet()
    first_extractor = PoolExtractor()
    first = build(open_split(labelled_copy), first_extractor, cache_dir)
    assert first.reference_cache_hit is False
    assert (first_extractor.calls, first_extractor.images) == (3, 5)  # 5 real images in batches of 2

    second_extractor = PoolExtractor()
    second = build(open_split(labelled_copy), second_extractor, cache_dir)
    assert second.reference_cache_hit is True and second_extractor.calls == 0  # no real-image pass
    one, two = first.evaluate(generator, SUBNET), second.evaluate(generator, SUBNET)
    assert second_extractor.images == 5  # only the 5 generated images went through it
    pack = [struct.pack("<d", v) for v in (*one.metrics.values(),)]
    assert pack == [struct.pack("<d", v) for v in two.metrics.values()]  # cached = computed, bit for bit

    time.sleep(0.01)
    edited = sorted((labelled_copy / "val" / "images").iterdir())[2]
    pixels = np.array(Image.open(edited))
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(edited)
    third_extractor = PoolExtractor()
    third = build(open_split(labelled_copy), third_extractor, cache_dir)
    assert third.reference_cache_hit is False and third_extractor.calls == 3
    assert third.reference_key.digest != first.reference_key.digest
    assert len(list((cache_dir / "reference-statistics").glob("*.npz"))) == 2
    assert not np.array_equal(third.context.real.mu, first.context.real.mu)


def test_the_key_follows_size_and_extractor(labelled_copy, tmp_path):
    cache_dir = tmp_path / "cache"
    base = build(open_split(labelled_copy), PoolExtractor(), cache_dir)
    renamed = PoolExtractor(identity="pool2x2-other")
    other = build(open_split(labelled_copy), renamed, cache_dir)
    assert other.reference_cache_hit is False and renamed.calls == 3
    assert base.reference_key.size == (32, 32) and other.reference_key.extractor == "pool2x2-other"


def test_without_a_cache_folder_every_evaluator_computes(labelled_copy):
    for _ in range(2):
        extractor = PoolExtractor()
        evaluator = build(open_split(labelled_copy), extractor, None)
        assert evaluator.reference_cache_hit is False and extractor.calls == 3
