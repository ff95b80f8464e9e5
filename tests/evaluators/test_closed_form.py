"""The closed-form count equals the traced count, for every registered space and architecture.

The traced count (thop with the papers' rules, :mod:`evaluators.macs`) is itself pinned to the
published 56.8G and cross-checked with torchprofile in test_macs.py; here the closed form is
pinned to it config by config, and to figures computed by hand or published.
"""
import itertools
import random

import pytest
import torch

from evaluators.closed_form import (closed_form_count, closed_form_macs, closed_form_params, generator_count,
                                    space_count, space_hparams)
from evaluators.macs import MacsCount, count_macs
from supernet import (ArchitectureError, ConfigError, InputSizeError, create_generator, extract_subnet,
                      get_space, list_architectures, list_spaces)
from supernet.norms import get_norm, list_norms


def _traced(arch: str, config, size, **hparams) -> MacsCount:
    """thop trace of the static generator, built on the meta device: shapes flow, nothing is computed."""
    with torch.device("meta"):
        generator = create_generator(arch, config=config, **hparams)
    return count_macs(generator, size)


def _small_sizes(space):
    """A small valid square size (at least 32, twice the downsampling factor: a SPADE's separable convs
    instance-normalise its smallest map, which needs more than one pixel) and a non-square one."""
    with torch.device("meta"):
        factor = create_generator(space.architecture, **space_hparams(space)).downsample_factor
    side = max(32, 2 * factor)
    return [(side, side), (side, side + factor if factor >= 32 else side + 16)]


# -- every registered search space --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list_spaces())
def test_covering_sample_of_every_space_matches_the_trace(name):
    space = get_space(name)
    hparams = space_hparams(space)
    configs = space.covering_sample(seed=0)
    for position, choices in enumerate(space.choices):  # the sample really covers every choice
        assert {c[position] for c in configs} == set(choices)
    for size in _small_sizes(space):
        for config in configs:
            traced = _traced(space.architecture, config, size, **hparams)
            assert space_count(space, config, size) == traced, (config, size)


@pytest.mark.parametrize("name", list_spaces())
def test_largest_and_smallest_of_every_space_match_the_trace_at_256(name):
    space = get_space(name)
    for config in (space.largest(), space.smallest()):
        assert space_count(space, config, 256) == _traced(space.architecture, config, (256, 256),
                                                           **space_hparams(space)), config


def test_extremes_of_a_space_are_its_smallest_and_largest_configs():
    space = get_space("channels-16")
    counts = [space_count(space, c, (32, 32)) for c in space]
    assert len(counts) == space.size
    assert min(counts, key=lambda c: c.macs) == space_count(space, space.smallest(), (32, 32))
    assert max(counts, key=lambda c: c.macs) == space_count(space, space.largest(), (32, 32))
    assert min(c.params for c in counts) == space_count(space, space.smallest(), 32).params


# -- every registered architecture, static, any hyper-parameters ---------------------------------------------

@pytest.mark.parametrize("arch", list_architectures())
def test_every_architecture_full_width_and_at_random_configs(arch):
    rng = random.Random(arch)
    with torch.device("meta"):
        base = create_generator(arch, ngf=8)
    positions, factor = len(base.config), base.downsample_factor
    size = (max(16, factor), max(16, factor) * 2)
    assert closed_form_count(arch, None, size, ngf=8) == count_macs(base, size)
    for _ in range(2):
        config = tuple(rng.randint(1, 12) for _ in range(positions))  # odd widths, wider than ngf: all allowed
        assert closed_form_count(arch, config, size, ngf=8) == _traced(arch, config, size, ngf=8), config


RESNET_VARIANTS = [dict(n_blocks=n, norm=norm, input_nc=cin, output_nc=cout, padding_type=pad, dropout=drop)
                   for n, norm, cin, cout, pad, drop in [(0, "instance", 3, 3, "reflect", 0.0),
                                                         (1, "batch", 1, 2, "zero", 0.0),
                                                         (2, "instance", 4, 1, "replicate", 0.5),
                                                         (5, "batch", 3, 3, "reflect", 0.5),
                                                         (7, "instance", 2, 3, "zero", 0.0)]]


@pytest.mark.parametrize("arch", ["resnet", "mobile_resnet", "deep_resnet"])
@pytest.mark.parametrize("hparams", RESNET_VARIANTS, ids=lambda h: f"{h['n_blocks']}blocks-{h['norm']}")
def test_resnet_family_any_depth_norm_channels_and_size(arch, hparams):
    if arch not in list_architectures():
        pytest.skip(f"{arch} is not registered")
    config = (8, 4, 6, 5, 3, 7, 4, 8)
    for size in [(12, 20), (28, 8)]:
        assert closed_form_count(arch, config, size, ngf=8, **hparams) == \
            _traced(arch, config, size, ngf=8, **hparams), size


@pytest.mark.parametrize("num_downs", [5, 6, 7])
@pytest.mark.parametrize("norm, cin, cout, dropout", [("batch", 3, 3, False), ("instance", 1, 2, True)])
def test_unet_any_depth_norm_channels_and_size(num_downs, norm, cin, cout, dropout):
    rng = random.Random(num_downs)
    config = tuple(rng.randint(1, 8) for _ in range(num_downs))
    hparams = dict(ngf=8, num_downs=num_downs, norm=norm, input_nc=cin, output_nc=cout, dropout=dropout)
    f = 2 ** num_downs
    for size in [(f, f), (2 * f, f), (f, 3 * f)]:
        assert closed_form_count("unet", config, size, **hparams) == _traced("unet", config, size, **hparams)


# -- every registered norm variant, with the conv bias each implementation sets ----------------------------------

@pytest.mark.parametrize("arch", ["resnet", "mobile_resnet", "deep_resnet", "unet", "deep_unet"])
@pytest.mark.parametrize("norm", list_norms())
@pytest.mark.parametrize("conv_bias", [None, True, False])
def test_every_norm_variant_and_conv_bias(arch, norm, conv_bias):
    depth = dict(num_downs=5) if "unet" in arch else dict(n_blocks=4)
    hparams = dict(ngf=4, norm=norm, conv_bias=conv_bias, **depth)
    with torch.device("meta"):
        positions = len(create_generator(arch, **hparams).config)
    config = tuple(random.Random(f"{arch}{norm}").randint(1, 7) for _ in range(positions))
    size = (32, 64)
    assert closed_form_count(arch, config, size, **hparams) == _traced(arch, config, size, **hparams)
    plain = closed_form_count(arch, config, size, **{**hparams, "norm": "instance", "conv_bias": conv_bias})
    extra = closed_form_count(arch, config, size, **hparams)
    # the norm itself costs MACs and parameters exactly when it is affine
    assert (extra.macs > plain.macs) == get_norm(norm).affine


def test_omgd_deep_unet_teacher_matches_omgds_figures():
    """OMGD's unet_deepest_256 at ngf 16: 44.172M parameters, 18.376G MACs on one 3x256x256 image."""
    count = closed_form_count("deep_unet", ngf=16)
    assert count == _traced("deep_unet", None, (256, 256), ngf=16)
    assert round(count.params / 1e6, 3) == 44.172 and round(count.macs / 1e9, 3) == 18.376
    assert count.macs == 18_376_141_824 and count.params == 44_171_939


@pytest.mark.parametrize("num_downs", [5, 6])
@pytest.mark.parametrize("norm, dropout", [("batch", False), ("instance", True)])
def test_deep_unet_any_depth_norm_and_size(num_downs, norm, dropout):
    config = tuple(random.Random(num_downs).randint(1, 6) for _ in range(num_downs))
    f = 2 ** num_downs
    for size in [(f, f), (2 * f, 3 * f)]:
        hparams = dict(ngf=4, num_downs=num_downs, norm=norm, dropout=dropout, input_nc=1, output_nc=2)
        assert closed_form_count("deep_unet", config, size, **hparams) == _traced("deep_unet", config, size, **hparams)


def test_affine_instance_norm_resnet_by_hand():
    """issue 10's teacher: ResNet-9 at ngf 64 with an affine InstanceNorm after every conv but the last."""
    channels = 64 + 128 + 256 + 18 * 256 + 128 + 64  # the 23 norms
    elements = 256 * 256 * 64 + 128 * 128 * 128 + 64 * 64 * 256 * 19 + 128 * 128 * 128 + 256 * 256 * 64
    count = closed_form_count("resnet", norm="instance_affine")
    assert count.params == 11_378_179 + 2 * channels == 11_388_675  # "11.39M parameters"
    assert count.macs == closed_form_macs("resnet") + elements
    assert closed_form_params("resnet", norm="batch", conv_bias=True) == closed_form_params("resnet", norm="batch") \
        + (64 + 128 + 256 + 18 * 256 + 128 + 64)  # BatchNorm with conv biases, as some re-implementations


# -- supernets -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, hparams", [("resnet", dict(ngf=16, n_blocks=3)),
                                           ("mobile_resnet", dict(ngf=16, n_blocks=3, norm="batch")),
                                           ("resnet", dict(ngf=8, n_blocks=3, norm="instance_affine")),
                                           ("unet", dict(ngf=8, num_downs=5, norm="instance_affine", conv_bias=False))])
def test_supernet_at_config_equals_extracted_subnet_and_closed_form(arch, hparams):
    supernet = create_generator(arch, elastic=True, **hparams)
    rng = random.Random(0)
    size = (32, 64)
    for _ in range(2):
        config = tuple(rng.randint(1, full) for full in supernet.config)
        expected = closed_form_count(arch, config, size, **hparams)
        assert count_macs(supernet, size, config=config) == expected
        assert count_macs(extract_subnet(supernet, config), size) == expected
        assert generator_count(supernet, size, config) == expected
    with pytest.raises(ConfigError, match="allows 1.."):
        generator_count(supernet, size, tuple(c + 1 for c in supernet.config))


# -- hand-computed and published figures -------------------------------------------------------------------------

def test_resnet_breakdown_by_hand():
    a0, a1, a2 = 256 * 256, 128 * 128, 64 * 64
    stem = a0 * 64 * 3 * 7 * 7  # 0.617G
    down = [a1 * 128 * 64 * 9, a2 * 256 * 128 * 9]  # 1.208G each
    blocks = 18 * a2 * 256 * 256 * 9  # 43.487G
    up = [a1 * 128 * 256 * 9, a0 * 64 * 128 * 9]  # 4.832G each, on the output side
    out = a0 * 3 * 64 * 7 * 7
    assert [round(x / 1e9, 3) for x in (stem, *down, blocks, *up, out)] == \
        [0.617, 1.208, 1.208, 43.487, 4.832, 4.832, 0.617]
    assert closed_form_macs("resnet") == stem + sum(down) + blocks + sum(up) + out == 56_799_264_768
    convs = 64 * 3 * 49 + 128 * 64 * 9 + 256 * 128 * 9 + 18 * 256 * 256 * 9 + 256 * 128 * 9 + 128 * 64 * 9 + 64 * 3 * 49
    biases = 64 + 128 + 256 + 18 * 256 + 128 + 64 + 3
    assert closed_form_params("resnet") == convs + biases == 11_378_179


def test_published_mobile_resnet_figures():
    full = closed_form_count("mobile_resnet")
    assert round(closed_form_params("resnet") / full.params, 1) == 5.7  # GAN Compression: ~5.7x fewer params
    assert round(closed_form_macs("resnet") / full.macs, 1) == 3.1  # and 3.1x fewer MACs
    smallest = space_count(get_space("channels-64-cycleGAN"), (16,) * 8, 256)  # OMGD: 1.41G, 0.137M
    assert (round(smallest.macs / 1e9, 2), round(smallest.params / 1e6, 3)) == (1.41, 0.137)


def test_non_square_sizes_scale_with_the_area():
    assert closed_form_macs("resnet", size=(512, 256)) == 2 * closed_form_macs("resnet", size=256)
    assert closed_form_macs("resnet", size=(256, 512)) == closed_form_macs("resnet", size=(512, 256))
    with_norms = closed_form_count("unet", size=(512, 256))
    assert with_norms.macs == 2 * closed_form_macs("unet", size=256)
    assert with_norms.params == closed_form_params("unet")


def test_aliases_resolve_their_registry_defaults():
    assert closed_form_count("resnet_6blocks") == closed_form_count("resnet", n_blocks=6)
    assert closed_form_count("unet_128", size=128) == closed_form_count("unet", size=128, num_downs=7)


# -- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, size, message", [("resnet", (30, 32), "not a multiple of 4"),
                                                 ("unet", (256, 384), "not a multiple of 256"),
                                                 ("unet_128", 64, "not a multiple of 128")])
def test_sizes_not_divisible_by_the_downsampling_factor(arch, size, message):
    with pytest.raises(InputSizeError, match=message):
        closed_form_count(arch, size=size)


@pytest.mark.parametrize("config, message", [((16,) * 7, "takes 8 channel numbers, got 7"),
                                             ((16,) * 7 + (0,), "positive integers"),
                                             ((16,) * 7 + (1.5,), "positive integers")])
def test_malformed_configs(config, message):
    with pytest.raises(ConfigError, match=message):
        closed_form_count("resnet", config)


@pytest.mark.parametrize("arch, hparams, message", [("vgg", {}, "unknown architecture"),
                                                    ("resnet", dict(num_downs=8), "does not take num_downs"),
                                                    ("resnet", dict(norm="group"), "unknown norm"),
                                                    ("resnet", dict(conv_bias="yes"), "conv_bias must be"),
                                                    ("resnet", dict(ngf=0), "ngf must be a positive integer"),
                                                    ("unet", dict(num_downs=4), "num_downs >= 5")])
def test_bad_architectures_and_hparams(arch, hparams, message):
    with pytest.raises(ArchitectureError, match=message):
        closed_form_count(arch, **hparams)


@pytest.mark.parametrize("arch, hparams, size", [("resnet", dict(ngf=8, n_blocks=3), (16, 24)),
                                                 ("mobile_resnet", dict(ngf=8, norm="batch"), (16, 16)),
                                                 ("unet", dict(ngf=4, num_downs=5), (32, 64))])
def test_tracing_on_the_meta_device_counts_what_a_real_pass_counts(arch, hparams, size):
    config = (4,) * len(create_generator(arch, **hparams).config)
    real = count_macs(create_generator(arch, config=config, **hparams), size)
    assert _traced(arch, config, size, **hparams) == real == closed_form_count(arch, config, size, **hparams)


def test_every_config_of_a_tiny_space_is_consistent_with_the_params_only_entry_point():
    space = get_space("channels-16")
    for config in itertools.islice(iter(space), 0, None, 97):
        assert space_count(space, config, 16).params == closed_form_params(
            space.architecture, config, **space_hparams(space))


# -- SPADE (GauGAN) -------------------------------------------------------------------------------------------------

CITYSCAPES = dict(input_nc=35 + 1, num_upsampling_layers="more")  # 35 labels + instance edges; NVlabs's setting
COCO_STUFF = dict(input_nc=182 + 1 + 1)  # 182 labels + dontcare + instance edges, normal upsampling


def test_published_gaugan_figures():
    """GAN Compression's table: Cityscapes 281G / 93.0M, COCO-Stuff 191G / 97.5M, and its paper subnet of an
    ngf-48 supernet at Cityscapes size 31.7G / 20.4M."""
    city = closed_form_count("spade", size=(256, 512), **CITYSCAPES)
    assert (round(city.macs / 1e9), round(city.params / 1e6, 1)) == (281, 93.0)
    coco = closed_form_count("spade", size=(256, 256), **COCO_STUFF)
    assert (round(coco.macs / 1e9), round(coco.params / 1e6, 1)) == (191, 97.5)
    space = get_space("spade-channels-48")
    subnet = space_count(space, space.parse("32_32_48_32_32_32_32_24"), (256, 512), **CITYSCAPES)
    assert round(subnet.params / 1e6, 1) == 20.4
    # 31.65G here; the published 31.7G also charges the (not affine) InstanceNorm inside each separable
    # gamma/beta conv one MAC per element, which this convention leaves free as for the mobile ResNet
    assert round(subnet.macs / 1e9, 2) == 31.65
    hidden = (64, 96, 64, 64, 64, 64, 48)  # 2 x config, head_0 .. up_3
    areas = (32, 128, 512, 2048, 8192, 32768, 131072)  # 4x8 doubled per upsampling ('more')
    norms = (2, 2, 2, 3, 3, 3, 3)  # SPADE layers per block
    separable_norm_elements = sum(2 * n * a * h for n, a, h in zip(norms, areas, hidden))
    assert round((subnet.macs + separable_norm_elements) / 1e9, 1) == 31.7


def test_gaugan_compression_ratio_and_conv_only_breakdown():
    """The teacher's count is its convs plus one MAC per modulated element (x * (1 + gamma) + beta)."""
    city = closed_form_count("spade", size=(256, 512), **CITYSCAPES)
    modulated = 0
    area, trunk = 32, 1024
    for widths, grow in (((trunk, trunk), 1), ((trunk, trunk), 4), ((trunk, trunk), 4), ((trunk, 512, trunk), 4),
                         ((512, 256, 512), 4), ((256, 128, 256), 4), ((128, 64, 128), 4)):
        area *= grow
        modulated += area * sum(widths)
    assert modulated == 80_019_456 and city.macs - modulated == 281_276_612_608
    space = get_space("spade-channels-48")
    subnet = space_count(space, space.parse("32_32_48_32_32_32_32_24"), (256, 512), **CITYSCAPES)
    assert round(city.macs / subnet.macs, 1) == 8.9  # GAN Compression: 9x


@pytest.mark.parametrize("arch", ["spade", "mobile_spade"])
@pytest.mark.parametrize("hparams", [dict(num_upsampling_layers="more", param_free_norm="instance"),
                                     dict(num_upsampling_layers="most", nhidden=5, output_nc=1),
                                     dict(nhidden=None, spectral=False, input_nc=3)], ids=["more", "most", "plain"])
def test_spade_family_any_options_and_size(arch, hparams):
    with torch.device("meta"):
        positions = len(create_generator(arch, ngf=4, **hparams).config)
    config = tuple(random.Random(arch).randint(1, 7) for _ in range(positions))
    f = 2 ** {"normal": 5, "more": 6, "most": 7}[hparams.get("num_upsampling_layers", "normal")]
    for size in [(2 * f, f), (f, 3 * f)]:
        assert closed_form_count(arch, config, size, ngf=4, **hparams) == \
            _traced(arch, config, size, ngf=4, **hparams), size


def test_spade_most_defaults_its_last_block_to_half_ngf():
    assert closed_form_count("spade", None, (256, 256), num_upsampling_layers="most") == \
        closed_form_count("spade", (64,) * 8 + (32,), (256, 256), num_upsampling_layers="most")
    with pytest.raises(ConfigError, match="takes 9 channel numbers, got 8"):
        closed_form_count("spade", (64,) * 8, 256, num_upsampling_layers="most")
    with pytest.raises(InputSizeError, match="not a multiple of 64"):
        closed_form_count("spade", size=(256, 480), **CITYSCAPES)
