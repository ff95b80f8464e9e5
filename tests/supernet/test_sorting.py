"""Channel importance sorting: same function at full width, sorted importances, better slim subnets."""
import copy

import pytest
import torch
from torch import nn

from supernet import ArchitectureError, ChannelGenerator, create_generator
from supernet.sorting import channel_groups, group_importance, sort_channels

SMALL = {
    "resnet": dict(ngf=8, n_blocks=3),
    "mobile_resnet": dict(ngf=8, n_blocks=4),
    "unet": dict(ngf=4, num_downs=5),
}


def _input(size=32, seed=0, batch=2):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _supernet(arch, norm, seed=0):
    torch.manual_seed(seed)
    g = create_generator(arch, elastic=True, norm=norm, **SMALL[arch])
    with torch.no_grad():
        for p in g.parameters():  # spread filter norms so that sorting really moves channels
            p.mul_(torch.rand_like(p) * 2)
        if norm == "batch":  # non-trivial running statistics and affine parameters
            g.train()
            for _ in range(2):
                g(_input(seed=5))
    return g


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("train_mode", [False, True])
def test_sorting_keeps_the_full_network_output(arch, norm, train_mode):
    original = _supernet(arch, norm)
    permuted = copy.deepcopy(original)
    sort_channels(permuted)
    changed = [k for k, v in original.state_dict().items() if not torch.equal(v, permuted.state_dict()[k])]
    assert changed, "sorting moved no channel: the test would prove nothing"
    original.train(train_mode)
    permuted.train(train_mode)
    x = _input(seed=1)
    with torch.no_grad():
        diff = (original(x.clone()) - permuted(x.clone())).abs().max()
    assert diff <= 1e-5
    if train_mode and norm == "batch":  # the updated running statistics agree too
        original.eval()
        permuted.eval()
        with torch.no_grad():
            assert (original(x.clone()) - permuted(x.clone())).abs().max() <= 1e-5


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_importance_is_non_increasing_in_every_group_after_sorting(arch):
    g = _supernet(arch, "batch")
    before = [group_importance(group) for group in channel_groups(g)]
    assert any((imp[1:] > imp[:-1]).any() for imp in before)
    sort_channels(g)
    for group, old in zip(channel_groups(g), before):
        imp = group_importance(group)
        assert (imp[1:] <= imp[:-1] + 1e-6).all(), group.name
        assert torch.allclose(imp, old.sort(descending=True).values, rtol=1e-6), group.name


def test_sorting_twice_changes_nothing():
    g = _supernet("mobile_resnet", "batch")
    sort_channels(g)
    once = copy.deepcopy(g.state_dict())
    sort_channels(g)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in once.items())


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_groups_cover_exactly_the_elastic_slots(arch):
    """Every layer whose width a config position sets is a producer of a group at that position."""
    g = _supernet(arch, "instance")
    groups = channel_groups(g)
    for position, layers in enumerate(g.slot_layers()):
        producers = {id(p) for group in groups if group.position == position for p in group.producers}
        assert producers == {id(m) for m in layers}, position


def test_resnet_trunk_importance_sums_all_producers_by_hand():
    g = _supernet("resnet", "instance")
    m = g.model

    def l1(w, out_dim=0):
        return w.detach().abs().transpose(0, out_dim).flatten(1).sum(1)
    # layer order: pad, stem conv 1, norm, relu, down 4, norm, relu, down 7, norm, relu, blocks 10..12
    expected = l1(m[7].weight) + sum(l1(m[i].conv_block[5].weight) for i in (10, 11, 12))
    trunk = next(gr for gr in channel_groups(g) if gr.name == "trunk")
    assert torch.allclose(group_importance(trunk), expected)
    up1 = next(gr for gr in channel_groups(g) if gr.name == "up1")
    assert torch.allclose(group_importance(up1), l1(m[13].weight, out_dim=1))  # ConvTranspose: (in, out, k, k)


def _plant_dead_channels(g: ChannelGenerator, scale: float = 1e-3) -> None:
    """Make the first half of every group nearly useless: tiny filters and tiny read weights."""
    with torch.no_grad():
        for group in channel_groups(g):
            dead = torch.arange(group.width // 2)
            for p in group.producers:
                w = p.weight.transpose(0, 1) if isinstance(p, nn.ConvTranspose2d) else p.weight
                w[dead] *= scale
            for c in group.consumers:
                transposed = isinstance(c.module, nn.ConvTranspose2d)
                w = c.module.weight if transposed else c.module.weight.transpose(0, 1)
                offset = 0 if c.half is None else c.half * (w.shape[0] // 2)
                w[dead + offset] *= scale


@pytest.mark.parametrize("arch,half", [("resnet", (4, 4, 4, 4, 4, 4, 4, 4)),
                                       ("mobile_resnet", (4, 4, 4, 4, 4, 4, 4, 4)),
                                       ("unet", (2, 2, 2, 2, 2))])
def test_sorting_makes_a_half_width_subnet_closer_to_the_full_network(arch, half):
    g = _supernet(arch, "batch" if arch == "unet" else "instance").eval()
    _plant_dead_channels(g)
    x = _input(seed=3)
    with torch.no_grad():
        full = g(x.clone(), None)
        before = (g(x.clone(), half) - full).abs().mean()
        sort_channels(g)
        assert g.active_config == g.config  # g(x, half) configured that call only
        assert (g(x.clone()) - full).abs().max() <= 1e-5
        after = (g(x.clone(), half) - full).abs().mean()
    assert after < before / 3, (float(before), float(after))


def test_unknown_architecture_is_refused():
    class Custom(ChannelGenerator):
        arch = "custom"
        downsample_factor = 1

        def multipliers(self):
            return (1,)

        def hparams(self):
            return {"ngf": self.ngf}

        def build_model(self, widths):
            return torch.nn.Identity()

        def slot_layers(self):
            return [[]]

        def distill_layer_names(self):
            return []

    with pytest.raises(ArchitectureError, match="custom.*registered: mobile_resnet, mobile_spade, resnet, spade, unet"):
        sort_channels(Custom(8, None, True))
