"""Elastic supernets: full width equals the static generator; any config equals its extracted subnet."""
import pytest
import torch

from supernet import (ArchitectureError, ConfigError, InputSizeError, create_generator, extract_subnet,
                      get_space, list_architectures, list_spaces, load_generator, save_generator)
from supernet.norms import list_norms

SMALL = {
    "resnet": dict(ngf=16, n_blocks=3),
    "mobile_resnet": dict(ngf=16, n_blocks=3),
    "unet": dict(ngf=16, num_downs=5),
}


def _input(size=32, seed=0, channels=3):
    return torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", list_architectures())
def test_every_architecture_builds_and_runs(arch):
    torch.manual_seed(0)
    g = create_generator(arch, ngf=8)
    size = g.downsample_factor * 2
    y = g.eval()(_input(size, channels=g.input_nc))  # an image, or a label map (SPADE)
    assert y.shape == (1, 3, size, size)
    assert y.abs().max() <= 1


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("norm", list_norms())
def test_full_width_supernet_equals_static_generator(arch, norm):
    torch.manual_seed(0)
    supernet = create_generator(arch, elastic=True, norm=norm, **SMALL[arch]).eval()
    static = create_generator(arch, norm=norm, **SMALL[arch]).eval()
    static.load_state_dict(supernet.state_dict())
    x = _input()
    with torch.no_grad():
        assert torch.equal(supernet(x), static(x))


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("train_mode", [False, True])
@pytest.mark.parametrize("norm", list_norms())  # instance: the U-Net's transposed convs have a bias to slice
def test_extracted_subnet_matches_supernet(arch, train_mode, norm):
    torch.manual_seed(0)
    supernet = create_generator(arch, elastic=True, norm=norm, **SMALL[arch])
    with torch.no_grad():  # affine norms away from their identity init, so slicing them is tested
        for name, p in supernet.named_parameters():
            if p.dim() == 1 and not name.endswith("bias"):
                p.uniform_(0.5, 1.5)
    # non-trivial running statistics, so eval mode compares real numbers
    supernet.train()
    with torch.no_grad():
        for _ in range(2):
            supernet(torch.randn(2, 3, 32, 32))
    supernet.train(train_mode)
    rng = torch.Generator().manual_seed(1)
    positions = len(supernet.config)
    for _ in range(3):
        config = tuple(int(torch.randint(2, 17, (1,), generator=rng)) for _ in range(positions))
        subnet = extract_subnet(supernet, config)
        subnet.train(train_mode)
        x = _input(seed=2)
        with torch.no_grad():
            expected = supernet(x.clone(), config)
            got = subnet(x.clone())
        assert (expected - got).abs().max() <= 1e-5
        assert sum(p.numel() for p in subnet.parameters()) < sum(p.numel() for p in supernet.parameters())
        assert subnet.widths() == supernet.widths(config)


def test_subnet_roundtrips_through_weights_only_checkpoint(tmp_path):
    torch.manual_seed(0)
    supernet = create_generator("mobile_resnet", elastic=True, **SMALL["mobile_resnet"])
    subnet = extract_subnet(supernet, (8, 8, 12, 8, 16, 4, 8, 12)).eval()
    path = save_generator(subnet, tmp_path / "sub.pt", note="test")
    record = torch.load(path, weights_only=True)
    assert record["config"] == [8, 8, 12, 8, 16, 4, 8, 12] and record["arch"] == "mobile_resnet"
    loaded = load_generator(path).eval()
    x = _input()
    with torch.no_grad():
        assert torch.equal(loaded(x), subnet(x))


def test_config_wider_than_supernet_is_refused():
    supernet = create_generator("resnet", elastic=True, **SMALL["resnet"])
    with pytest.raises(ConfigError, match="position 2 .* allows 1..16"):
        supernet.validate_config((16, 16, 32, 16, 16, 16, 16, 16))
    with pytest.raises(ConfigError, match="takes 8 channel numbers"):
        supernet.validate_config((16, 16))


def test_bad_architecture_arguments():
    with pytest.raises(ArchitectureError, match="unknown architecture 'resnet_7'.*registered: .*mobile_resnet"):
        create_generator("resnet_7")
    with pytest.raises(ArchitectureError, match="does not take num_downs"):
        create_generator("resnet", num_downs=3)
    with pytest.raises(ArchitectureError, match="n_blocks >= 3"):
        create_generator("resnet", elastic=True, n_blocks=2)


def test_input_size_check_names_the_factor():
    g = create_generator("unet", ngf=8, num_downs=6)
    with pytest.raises(InputSizeError, match="multiple of 64"):
        g.check_input_size(100, 64)
    g.check_input_size(128, 64)


def test_space_registry_has_gan_compression_spaces():
    names = list_spaces()
    for name in ("channels-64-cycleGAN", "channels-64-pix2pix", "channels-32", "channels-48"):
        assert name in names
    assert get_space("channels-64-cycleGAN").size == 5 ** 8
    assert get_space("channels-64-pix2pix").size == 7 ** 8
    assert get_space("channels-64-pix2pix").choices[0] == (64, 56, 48, 40, 32, 24, 16)


def test_eval_slice_cache_follows_weight_updates():
    """The no-grad slice cache must never serve stale weights: after an optimizer step or a
    load_state_dict, the supernet still equals a freshly extracted subnet."""
    torch.manual_seed(0)
    supernet = create_generator("unet", elastic=True, **SMALL["unet"]).eval()
    config = (8, 8, 4, 4, 4)
    x = _input()
    with torch.no_grad():
        first = supernet(x, config)
        assert torch.equal(first, supernet(x, config))  # served from the cache
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1)
    supernet(x, config).square().mean().backward()
    optimizer.step()
    with torch.no_grad():
        after_step = supernet(x, config)
        assert not torch.equal(after_step, first)
        assert (after_step - extract_subnet(supernet, config).eval()(x)).abs().max() <= 1e-5
        other = create_generator("unet", elastic=True, **SMALL["unet"])
        supernet.load_state_dict(other.state_dict())
        assert (supernet(x, config) - extract_subnet(supernet, config).eval()(x)).abs().max() <= 1e-5
