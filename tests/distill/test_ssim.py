"""SSIM against scikit-image (valid region) and an independent zero-padded SciPy computation."""
import numpy as np
import pytest
import torch
from scipy import ndimage, signal
from skimage import data, transform
from skimage.metrics import structural_similarity

from distill.losses import FeatureMismatchError, LossConfigError, SSIMLoss, gaussian_window, ssim, ssim_map


def _pair(size=32, seed=0):
    """A real photo crop in [-1, 1] and a noisy, darkened copy (float64)."""
    rng = np.random.default_rng(seed)
    photo = transform.resize(data.astronaut()[:256, 128:384], (size, size), anti_aliasing=True)  # [0, 1] HWC
    x = photo.transpose(2, 0, 1) * 2 - 1
    y = np.clip(0.8 * x + 0.15 * rng.standard_normal(x.shape) - 0.1, -1, 1)
    return x, y


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))[None]


def test_window_is_the_normalised_gaussian():
    expected = signal.windows.gaussian(11, 1.5)
    expected = expected / expected.sum()
    assert np.allclose(gaussian_window(11, 1.5, dtype=torch.float64).numpy(), expected, atol=1e-15)


@pytest.mark.parametrize("data_range", [1.0, 2.0])
def test_valid_ssim_equals_scikit_image(data_range):
    x, y = _pair()
    ours = ssim(_t(x), _t(y), data_range=data_range, padding="valid").item()
    theirs = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                   data_range=data_range, channel_axis=0)
    assert 0.2 < theirs < 0.95  # a non-trivial pair
    assert ours == pytest.approx(theirs, abs=1e-10)


def _zero_padded_reference(x, y, data_range):
    """SSIM map with each channel Gaussian-filtered by SciPy, zero outside the image (OMGD's padding)."""
    def blur(a):
        return np.stack([ndimage.gaussian_filter(c, 1.5, truncate=3.5, mode="constant", cval=0.0) for c in a])
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


@pytest.mark.parametrize("data_range", [1.0, 2.0])
def test_zero_padded_map_equals_scipy_reference(data_range):
    x, y = _pair(24, seed=1)
    ours = ssim_map(_t(x), _t(y), data_range=data_range)[0].numpy()
    expected = _zero_padded_reference(x, y, data_range)
    assert ours.shape == x.shape
    assert np.allclose(ours, expected, atol=1e-10)
    # the mean over batch, channels and pixels is the loss's SSIM (pytorch-ssim's size_average)
    assert ssim(_t(x), _t(y), data_range=data_range).item() == pytest.approx(expected.mean(), abs=1e-10)


def test_interior_of_same_size_map_equals_scikit_image_map():
    x, y = _pair(28, seed=2)
    ours = ssim_map(_t(x), _t(y))[0].numpy()
    for c in range(3):
        _, full = structural_similarity(x[c], y[c], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, full=True)
        assert np.allclose(ours[c, 5:-5, 5:-5], full[5:-5, 5:-5], atol=1e-10)
    # on the border OMGD's zero padding and scikit-image's reflection really differ (c = 2 here)
    assert np.abs(ours[2, 0] - full[0]).max() > 1e-3


def test_loss_is_one_minus_ssim_and_differentiable():
    x, y = _pair(16, seed=3)
    xs = _t(x).float().requires_grad_(True)
    ys = _t(y).float()
    loss = SSIMLoss()(xs, ys)
    assert loss.item() == pytest.approx(1 - ssim(xs.detach(), ys).item(), abs=1e-6)
    loss.backward()
    assert xs.grad is not None and xs.grad.abs().sum() > 0
    assert SSIMLoss()(ys, ys).item() == pytest.approx(0.0, abs=1e-5)
    batch = torch.cat([xs.detach(), ys])
    assert ssim(batch, batch.flip(0)).item() == pytest.approx(ssim(xs.detach(), ys).item(), abs=1e-6)


def test_bad_inputs_are_typed_errors():
    a = torch.zeros(1, 3, 8, 8)
    with pytest.raises(FeatureMismatchError, match="one shape"):
        ssim(a, torch.zeros(1, 3, 8, 9))
    with pytest.raises(FeatureMismatchError, match="at least 11x11"):
        ssim(a, a, padding="valid")
    with pytest.raises(LossConfigError, match="zeros, valid"):
        ssim(a, a, padding="reflect")
    with pytest.raises(LossConfigError):
        SSIMLoss(window_size=10)
    with pytest.raises(LossConfigError):
        SSIMLoss(data_range=0)
