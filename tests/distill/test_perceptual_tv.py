"""Gram/style, perceptual L1 and TV against NumPy and hand computations (OMGD's conventions)."""
import numpy as np
import pytest
import torch

from distill.losses import FeatureMismatchError, LossConfigError, feature_l1, gram_matrix, style_loss, total_variation


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def np_gram(a):
    n, c, h, w = a.shape
    f = a.reshape(n, c, h * w)
    return np.einsum("nik,njk->nij", f, f) / (c * h * w)


def test_gram_hand_computed():
    # one sample, 2 channels of 2 pixels: F = [[1, 2], [3, 4]], F F^T = [[5, 11], [11, 25]], / (2 * 1 * 2)
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    assert torch.allclose(gram_matrix(x), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)


def test_gram_and_style_against_numpy():
    s = [_rand(2, c, h, h, seed=i) for i, (c, h) in enumerate([(4, 8), (6, 4), (8, 2)])]
    t = [_rand(2, c, h, h, seed=10 + i) for i, (c, h) in enumerate([(4, 8), (6, 4), (8, 2)])]
    for a in s:
        assert np.allclose(gram_matrix(a).numpy(), np_gram(a.numpy()))
    expected = sum(np.abs(np_gram(a.numpy()) - np_gram(b.numpy())).mean() for a, b in zip(s, t))
    assert style_loss(s, t).item() == pytest.approx(expected, rel=1e-12)


def test_feature_l1_and_teacher_is_detached():
    s = _rand(2, 3, 4, 4, seed=1).requires_grad_(True)
    t = _rand(2, 3, 4, 4, seed=2).requires_grad_(True)
    loss = feature_l1(s, t) + style_loss([s], [t])
    assert feature_l1(s, t).item() == pytest.approx(np.abs(s.detach().numpy() - t.detach().numpy()).mean())
    loss.backward()
    assert s.grad is not None and t.grad is None


def test_mismatched_features_are_typed_errors():
    with pytest.raises(FeatureMismatchError, match="student activation"):
        style_loss([_rand(1, 2, 4, 4)], [_rand(1, 2, 4, 5)])
    with pytest.raises(FeatureMismatchError, match="2 student activations against 1"):
        style_loss([_rand(1, 2, 4, 4)] * 2, [_rand(1, 2, 4, 4)])


def test_tv_hand_computed_sum_and_mean():
    x = torch.tensor([[[[1.0, 2.0], [4.0, 8.0]]]])
    # horizontal |2-1| + |8-4| = 5, vertical |4-1| + |8-2| = 9
    assert total_variation(x).item() == 14.0
    assert total_variation(x, "mean").item() == pytest.approx(14.0 / 4)


def test_tv_sums_over_the_batch_like_numpy():
    x = _rand(3, 2, 5, 7, seed=4)
    a = x.numpy()
    expected = np.abs(np.diff(a, axis=-1)).sum() + np.abs(np.diff(a, axis=-2)).sum()
    assert total_variation(x).item() == pytest.approx(expected, rel=1e-12)
    assert total_variation(torch.ones(2, 3, 4, 4)).item() == 0.0
    with pytest.raises(LossConfigError, match="sum, mean"):
        total_variation(x, "max")
