"""Traced MACs and parameters: the papers' convention, layer by layer and on whole generators.

Cross-checks against torchprofile 0.1 (an independent counter that reads the TorchScript graph
instead of module hooks). Where the two conventions differ, the tests say so:

* torchprofile charges one MAC per element to ``aten::leaky_relu`` (activations are free in the
  papers' count); the U-Net's LeakyReLU is in place (``aten::leaky_relu_``), which torchprofile
  skips with a warning, so on the generators the totals agree.
* BatchNorm: torchprofile 0.1 counts affine norms one per element, as the papers do; releases
  before 0.1 counted ``aten::batch_norm`` as 0 (assumed fused into the previous conv), which
  would make a U-Net come out lower by the BatchNorm elements.
* thop's own defaults differ too (why :mod:`evaluators.macs` passes custom rules): thop 2.x counts
  a transposed conv on its input side and charges 2 per norm element (4 if affine).
"""
import warnings

import pytest
import torch
from torch import nn

from evaluators.macs import MacsCount, count_macs, format_count, parse_size
from supernet import ArchitectureError, ConfigError, InputSizeError, create_generator, extract_subnet

torchprofile = pytest.importorskip("torchprofile")


def _torchprofile(module: nn.Module, x: torch.Tensor) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No handlers found" for ops it treats as free
        return int(torchprofile.profile_macs(module.eval(), x))


# -- the reference figure --------------------------------------------------------------------------

def test_resnet_generator_matches_the_papers_figure_to_the_mac():
    generator = create_generator("resnet", ngf=64, n_blocks=9)
    count = count_macs(generator, (256, 256), in_channels=3)
    assert count == MacsCount(macs=56_799_264_768, params=11_378_179)
    assert count.params == sum(p.numel() for p in generator.parameters())
    assert format_count(count.macs) == "56.80G (56,799,264,768)"


# -- one layer at a time, against hand computations ----------------------------------------------------

def _one(layer: nn.Module, shape=(1, 4, 8, 6)) -> MacsCount:
    return count_macs(layer, shape[2:], in_channels=shape[1])


def test_conv_counts_output_elements_times_inputs_times_kernel_and_no_bias():
    out = _one(nn.Conv2d(4, 5, 3, padding=1, bias=True))  # output 5 x 8 x 6
    assert out.macs == 5 * 8 * 6 * 4 * 9
    assert out.params == 5 * 4 * 9 + 5
    strided = _one(nn.Conv2d(4, 5, (3, 1), stride=2, padding=(1, 0), bias=False))  # output 5 x 4 x 3
    assert strided == MacsCount(5 * 4 * 3 * 4 * 3, 5 * 4 * 3)


def test_grouped_and_depthwise_convs_divide_the_inputs_by_groups():
    grouped = _one(nn.Conv2d(4, 6, 3, padding=1, groups=2))
    assert grouped == MacsCount(6 * 8 * 6 * (4 // 2) * 9, 6 * 2 * 9 + 6)
    depthwise = _one(nn.Conv2d(4, 4, 3, padding=1, groups=4))
    assert depthwise == MacsCount(4 * 8 * 6 * 9, 4 * 9 + 4)


def test_transposed_conv_is_counted_on_the_output_side():
    layer = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)  # 8x6 -> 16x12
    count = _one(layer)
    assert count.macs == 3 * 16 * 12 * 4 * 9  # 4x the input-side count 4 * 8 * 6 * 3 * 9
    assert count.params == 4 * 3 * 9 + 3
    unet_up = _one(nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False))  # 8x6 -> 16x12
    assert unet_up == MacsCount(2 * 16 * 12 * 4 * 16, 4 * 2 * 16)


@pytest.mark.parametrize("layer, macs, params", [
    (nn.InstanceNorm2d(4), 0, 0),  # CycleGAN's: not affine, free
    (nn.InstanceNorm2d(4, affine=True), 4 * 8 * 6, 8),
    (nn.BatchNorm2d(4), 4 * 8 * 6, 8),  # pix2pix U-Net's: affine, one MAC per element
    (nn.BatchNorm2d(4, affine=False), 0, 0),
    (nn.GroupNorm(2, 4), 4 * 8 * 6, 8),
])
def test_norms_count_one_mac_per_element_only_when_affine(layer, macs, params):
    assert _one(layer) == MacsCount(macs, params)


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.ReflectionPad2d(3),
                                   nn.ReplicationPad2d(1), nn.Dropout(0.5), nn.Identity()])
def test_activations_padding_and_dropout_are_free(layer):
    assert _one(layer) == MacsCount(0, 0)


class _SkipAndConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1, bias=False)

    def forward(self, x):
        y = self.conv(x)
        return torch.cat([x + y, y], 1)


def test_additions_and_concatenation_are_free():
    assert _one(_SkipAndConcat()) == MacsCount(4 * 8 * 6 * 4, 16)


def test_linear_counts_inputs_times_outputs():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4 * 8 * 6, 10)

        def forward(self, x):
            return self.fc(x.flatten(1))

    assert _one(Head()) == MacsCount(4 * 8 * 6 * 10, 4 * 8 * 6 * 10 + 10)


# -- whole generators, against torchprofile --------------------------------------------------------------

@pytest.mark.parametrize("arch, hparams, size", [
    ("resnet", dict(ngf=16, n_blocks=3), (32, 48)),
    ("resnet", dict(ngf=8, n_blocks=2, norm="batch"), (16, 16)),
    ("mobile_resnet", dict(ngf=16, n_blocks=4), (32, 32)),
    ("unet", dict(ngf=8, num_downs=5), (32, 64)),  # BatchNorm: both count one MAC per element
    ("unet", dict(ngf=8, num_downs=6, norm="instance", input_nc=1, output_nc=2), (64, 64)),
])
def test_generators_agree_with_torchprofile(arch, hparams, size):
    generator = create_generator(arch, **hparams).eval()
    x = torch.zeros(1, generator.input_nc, *size)
    assert count_macs(generator, size).macs == _torchprofile(generator, x)


def test_torchprofile_charges_out_of_place_leaky_relu_where_the_papers_do_not():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.LeakyReLU(0.2))
    ours = count_macs(net, (8, 8)).macs
    assert ours == 4 * 8 * 8 * 3 * 9
    assert _torchprofile(net, torch.zeros(1, 3, 8, 8)) == ours + 4 * 8 * 8
    in_place = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.LeakyReLU(0.2, True))
    assert _torchprofile(in_place, torch.zeros(1, 3, 8, 8)) == ours  # aten::leaky_relu_ has no handler


@pytest.mark.parametrize("arch, hparams", [("spade", dict(ngf=2, nhidden=8, input_nc=5)),
                                           ("mobile_spade", dict(ngf=4, input_nc=3, param_free_norm="instance"))])
def test_spade_agrees_with_torchprofile_but_for_its_leaky_relus(arch, hparams):
    """torchprofile charges SPADE's modulation ``x * (1 + gamma)`` one MAC per element (``aten::mul``), as
    ganas does, and its out-of-place leaky ReLUs (after every SPADE layer but the shortcut's, and before
    conv_img), which ganas leaves free."""
    generator = create_generator(arch, **hparams).eval()
    size = (64, 32)
    x = torch.zeros(1, generator.input_nc, *size)
    relu_elements = []
    hooks = [norm.register_forward_hook(lambda m, i, o: relu_elements.append(o.numel()))
             for block in generator.model.blocks() for norm in (block.norm_0, block.norm_1)]
    hooks.append(generator.model.conv_img.register_forward_pre_hook(lambda m, i: relu_elements.append(i[0].numel())))
    with torch.no_grad():
        generator(x)
    for hook in hooks:
        hook.remove()
    assert len(relu_elements) == 2 * 7 + 1
    assert count_macs(generator, size).macs + sum(relu_elements) == _torchprofile(generator, x)


# -- supernets at a config ----------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, hparams, config", [
    ("resnet", dict(ngf=16, n_blocks=3, norm="batch"), (8, 12, 16, 4, 8, 12, 16, 4)),
    ("mobile_resnet", dict(ngf=16, n_blocks=4), (16, 4, 8, 12, 4, 16, 8, 12)),
    ("unet", dict(ngf=8, num_downs=5), (8, 4, 6, 2, 8)),
])
def test_supernet_at_config_counts_as_its_extracted_subnet(arch, hparams, config):
    supernet = create_generator(arch, elastic=True, **hparams)
    subnet = extract_subnet(supernet, config)
    size = (32, 64)
    at_config = count_macs(supernet, size, config=config)
    assert at_config == count_macs(subnet, size)
    assert at_config.params == sum(p.numel() for p in subnet.parameters())
    assert at_config.params < sum(p.numel() for p in supernet.parameters())
    with supernet.configured(config):  # the active config is the default
        assert count_macs(supernet, size) == at_config


def test_counting_leaves_the_module_untouched():
    supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3).train()
    keys = list(supernet.state_dict())
    with supernet.configured((8,) * 8):
        count_macs(supernet, (16, 16), config=(16, 12, 8, 4, 16, 12, 8, 4))
        assert supernet.active_config == (8,) * 8
    assert list(supernet.state_dict()) == keys
    assert all(m.training for m in supernet.modules())
    for m in supernet.modules():
        assert "total_ops" not in vars(m) and "total_ops" not in m._buffers
        assert "total_params" not in vars(m) and "total_params" not in m._buffers
        assert not m._forward_hooks and not m._forward_pre_hooks


# -- bad input ------------------------------------------------------------------------------------------------

def test_size_not_divisible_by_the_downsampling_factor_is_refused():
    with pytest.raises(InputSizeError, match="not a multiple of 4"):
        count_macs(create_generator("resnet", ngf=8, n_blocks=1), (30, 32))
    with pytest.raises(InputSizeError, match="not a multiple of 32"):
        count_macs(create_generator("unet", ngf=8, num_downs=5), (32, 48))


@pytest.mark.parametrize("size", [0, (16,), (16, -4), (16.0, 16), "16", (True, 16)])
def test_malformed_sizes_are_refused(size):
    with pytest.raises(InputSizeError, match="positive integer"):
        parse_size(size)


def test_config_needs_a_ganas_generator_and_a_static_one_only_takes_its_own():
    with pytest.raises(ConfigError, match="ganas generators only"):
        count_macs(nn.Conv2d(3, 3, 1), (8, 8), config=(8,))
    static = create_generator("resnet", ngf=8, n_blocks=1)
    assert count_macs(static, (8, 8), config=(8,) * 8) == count_macs(static, (8, 8))
    with pytest.raises(ArchitectureError, match="static resnet generator"):
        count_macs(static, (8, 8), config=(4,) * 8)
    with pytest.raises(ConfigError, match="allows 1..8"):
        count_macs(create_generator("resnet", elastic=True, ngf=8, n_blocks=3), (8, 8), config=(16,) * 8)


@pytest.mark.parametrize("value, text", [(0, "0"), (999, "999"), (1_000, "1.00K (1,000)"),
                                         (11_378_179, "11.38M (11,378,179)"),
                                         (2_618_425_344, "2.62G (2,618,425,344)")])
def test_format_count(value, text):
    assert format_count(value) == text
