"""GAN losses against hand computations and torch's independent BCE on probabilities."""
import math

import pytest
import torch

from distill.losses import GANLoss, LossConfigError, list_gan_modes
from foundation.errors import GanasError

P = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]]])  # (1, 1, 2, 2)
VALUES = [0.5, -1.0, 2.0, 0.0]


def softplus(v):
    return math.log1p(math.exp(v))


@pytest.mark.parametrize("mode,real,expected", [
    ("lsgan", True, (0.25 + 4 + 1 + 1) / 4),
    ("lsgan", False, (0.25 + 1 + 4 + 0) / 4),
    ("vanilla", True, sum(softplus(-v) for v in VALUES) / 4),
    ("vanilla", False, sum(softplus(v) for v in VALUES) / 4),
    ("hinge", True, (0.5 + 2 + 0 + 1) / 4),
    ("hinge", False, (1.5 + 0 + 3 + 1) / 4),
])
def test_discriminator_losses_match_hand_computation(mode, real, expected):
    assert GANLoss(mode)(P, real).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses():
    assert GANLoss("hinge")(P, True, for_discriminator=False).item() == pytest.approx(-(1.5 / 4))
    # lsgan and vanilla are the same loss for G and D
    for mode in ("lsgan", "vanilla"):
        assert GANLoss(mode)(P, True, for_discriminator=False).item() == pytest.approx(GANLoss(mode)(P, True).item())
    with pytest.raises(LossConfigError, match="aim for real"):
        GANLoss("hinge")(P, False, for_discriminator=False)


def test_vanilla_equals_bce_on_sigmoid_probabilities():
    pred = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    bce = torch.nn.BCELoss()
    assert GANLoss("vanilla")(pred, True).item() == pytest.approx(bce(pred.sigmoid(), torch.ones_like(pred)).item(),
                                                                rel=1e-5)
    assert GANLoss("vanilla")(pred, False).item() == pytest.approx(bce(pred.sigmoid(), torch.zeros_like(pred)).item(),
                                                                 rel=1e-5)


def test_custom_labels_and_gradient():
    loss = GANLoss("lsgan", real_label=0.9, fake_label=0.1)
    assert loss(P, True).item() == pytest.approx(sum((v - 0.9) ** 2 for v in VALUES) / 4)
    assert loss(P, False).item() == pytest.approx(sum((v - 0.1) ** 2 for v in VALUES) / 4)
    p = P.clone().requires_grad_(True)
    GANLoss("lsgan")(p, True).backward()
    assert torch.allclose(p.grad, 2 * (P - 1) / 4)


def test_multiscale_predictions_average_over_scales():
    loss = GANLoss("hinge")
    a, b = P, P * 2
    expected = (loss(a, True) + loss(b, True)) / 2
    assert loss([a, b], True).item() == pytest.approx(expected.item())
    # a scale given as a list of intermediate features: the last one is the prediction
    features = torch.full((1, 4, 2, 2), 100.0)
    assert loss([[features, a], [features, b]], True).item() == pytest.approx(expected.item())


def test_unknown_mode_is_a_typed_error_listing_modes():
    with pytest.raises(LossConfigError) as err:
        GANLoss("wasserstein")
    assert isinstance(err.value, GanasError)
    for mode in ("hinge", "lsgan", "vanilla"):
        assert mode in str(err.value)
    assert list_gan_modes() == ["hinge", "lsgan", "vanilla"]
