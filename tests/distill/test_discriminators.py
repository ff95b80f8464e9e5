"""PatchGAN / PixelGAN: pix2pix's key layout, parameter counts, output sizes and receptive fields."""
import pytest
import torch

from distill.discriminators import (NLayerDiscriminator, create_discriminator, list_discriminators,
                                    receptive_field)
from supernet.errors import ArchitectureError


def _conv(shape, bias=True):
    rows = [("weight", shape)]
    return rows + ([("bias", (shape[0],))] if bias else [])


def _bn(c):
    return [("weight", (c,)), ("bias", (c,)), ("running_mean", (c,)), ("running_var", (c,)),
            ("num_batches_tracked", ())]


def test_basic_patchgan_has_pix2pix_keys_and_shapes():
    # pytorch-CycleGAN-and-pix2pix NLayerDiscriminator(6, 64, 3, BatchNorm2d)
    expected = {}
    table = [(0, _conv((64, 6, 4, 4))), (2, _conv((128, 64, 4, 4), bias=False)), (3, _bn(128)),
             (5, _conv((256, 128, 4, 4), bias=False)), (6, _bn(256)),
             (8, _conv((512, 256, 4, 4), bias=False)), (9, _bn(512)), (11, _conv((1, 512, 4, 4)))]
    for index, rows in table:
        for name, shape in rows:
            expected[f"model.{index}.{name}"] = shape
    d = create_discriminator("basic", 6, 64, norm="batch")
    got = {k: tuple(v.shape) for k, v in d.state_dict().items()}
    assert got == expected
    assert list(got) == list(expected)  # same order as the reference
    assert [type(m).__name__ for m in d.model] == [
        "Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
        "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d"]
    assert all(m.negative_slope == 0.2 for m in d.model if isinstance(m, torch.nn.LeakyReLU))
    convs = [m for m in d.model if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((4, 4), (2, 2), (1, 1))] * 3 + [
        ((4, 4), (1, 1), (1, 1))] * 2


@pytest.mark.parametrize("input_nc,params", [(6, 2_768_705), (3, 2_765_633)])
def test_parameter_count_matches_pix2pix_and_cyclegan(input_nc, params):
    # pix2pix prints "[Network D] Total number of parameters : 2.769 M" (A|B input), CycleGAN 2.765 M
    d = NLayerDiscriminator(input_nc)
    assert sum(p.numel() for p in d.parameters()) == params


def test_instance_norm_convs_have_bias_and_no_norm_state():
    d = NLayerDiscriminator(3, 16, 3, norm="instance")
    keys = set(d.state_dict())
    assert {"model.2.bias", "model.5.bias", "model.8.bias"} <= keys
    assert not any(k.startswith(("model.3.", "model.6.", "model.9.")) for k in keys)


@pytest.mark.parametrize("size,ndf,patches", [(64, 64, 6), (256, 16, 30)])
def test_output_patch_grid(size, ndf, patches):
    d = create_discriminator("basic", 3, ndf).eval()
    with torch.no_grad():
        y = d(torch.randn(1, 3, size, size))
    assert y.shape == (1, 1, patches, patches)


@pytest.mark.parametrize("n_layers,field", [(1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_receptive_field_formula(n_layers, field):
    # pix2pix paper: 16x16, 70x70 and 286x286 PatchGANs
    assert receptive_field(NLayerDiscriminator(3, 4, n_layers)) == field


def test_receptive_field_measured_by_gradient_is_70():
    torch.manual_seed(0)
    d = NLayerDiscriminator(1, 4, 3, norm="none")
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    y = d(x)
    assert y.shape[-1] == 14
    y[0, 0, 7, 7].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


def test_pixel_discriminator_is_per_pixel():
    d = create_discriminator("pixel", 3, 8, norm="instance")
    assert receptive_field(d) == 1
    assert [k for k in d.state_dict()] == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias",
                                           "net.5.weight", "net.5.bias"]
    assert d(torch.randn(2, 3, 10, 12)).shape == (2, 1, 10, 12)


@pytest.mark.parametrize("name", list_discriminators())
def test_every_registered_discriminator_runs(name):
    d = create_discriminator(name, 3, 8, n_layers=2)
    y = d(torch.randn(2, 3, 32, 32))
    assert y.dim() == 4 and y.shape[:2] == (2, 1)


def test_pix2pix_normal_init():
    torch.manual_seed(0)
    d = create_discriminator("basic", 3, 64)
    w = d.model[8].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.001
    assert torch.all(d.model[0].bias == 0)
    assert abs(float(d.model[9].weight.detach().mean()) - 1.0) < 0.01


def test_bad_names_are_typed_errors():
    with pytest.raises(ArchitectureError, match="registered: basic, n_layers, pixel"):
        create_discriminator("multiscale", 3)
    with pytest.raises(ArchitectureError, match="batch, instance, none"):
        create_discriminator("basic", 3, norm="group")
    with pytest.raises(ArchitectureError, match="n_layers >= 0"):
        NLayerDiscriminator(3, 64, -1)
