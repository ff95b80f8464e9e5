"""The generator contract: declared members, and the rule that a config lives only inside ``configured``."""
import pytest
import torch
from torch import nn

from supernet import ArchitectureError, ChannelGenerator, ConfigError, create_generator, list_architectures
from supernet.registry import get_architecture

SMALL = dict(ngf=8, n_blocks=3)


class Minimal(ChannelGenerator):
    """The smallest complete family: one elastic 1x1 conv whose width is position 0."""

    arch = "minimal"
    downsample_factor = 1

    def __init__(self, ngf: int = 4, config=None, elastic: bool = False):
        super().__init__(ngf, config, elastic)

    def multipliers(self):
        return (1,)

    def hparams(self):
        return {"ngf": self.ngf}

    def build_model(self, widths):
        from supernet.layers import LayerKit
        return nn.Sequential(LayerKit("instance", self.elastic).conv(3, widths[0], 1))

    def slot_layers(self):
        return [[self.model[0]]]

    def distill_layer_names(self):
        return ["model.0"]


MEMBERS = ["downsample_factor", "multipliers", "hparams", "build_model", "slot_layers", "distill_layer_names"]


def test_the_contract_is_declared_abstract_in_the_base_class():
    assert set(ChannelGenerator.__abstractmethods__) == set(MEMBERS)
    for name in ("arch", "distill_concat_halves", "model"):
        assert name in ChannelGenerator.__annotations__, name


@pytest.mark.parametrize("missing", MEMBERS)
def test_a_family_missing_a_declared_member_fails_at_construction(missing):
    body = {name: Minimal.__dict__[name] for name in ["arch"] + MEMBERS if name != missing}
    family = type("Incomplete", (ChannelGenerator,), body)
    with pytest.raises(TypeError, match=f"abstract .*{missing}"):
        family(4, None, True)


def test_a_family_without_an_arch_name_is_refused():
    nameless = type("Nameless", (Minimal,), {"arch": ""})
    with pytest.raises(ArchitectureError, match="Nameless declares no arch name"):
        nameless()


def test_a_complete_family_runs_and_configures():
    g = Minimal(elastic=True)
    x = torch.randn(1, 3, 4, 4)
    assert g(x).shape[1] == 4 and list(g.state_dict()) == ["model.0.weight", "model.0.bias"]
    with g.configured((2,)):
        assert g(x).shape[1] == 2
        assert g.to(torch.float64)(x.double()).shape[1] == 2  # nn.Module's own machinery is left alone


@pytest.mark.parametrize("name", list_architectures())
def test_every_registered_architecture_implements_the_contract(name):
    cls = get_architecture(name).generator_class
    assert not cls.__abstractmethods__ and cls.arch and isinstance(cls.distill_concat_halves, bool)
    g = create_generator(name, ngf=4)
    assert isinstance(g.model, nn.Module) and len(g.config) == g.num_positions == len(g.multipliers())
    assert isinstance(g.downsample_factor, int) and g.downsample_factor >= 1


def _widths(supernet):
    return [layer.active_out for layers in supernet.slot_layers() for layer in layers]


def test_outside_every_block_a_supernet_runs_at_full_width():
    torch.manual_seed(0)
    supernet = create_generator("resnet", elastic=True, **SMALL)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        full = supernet(x)
        half = supernet(x, config=(4,) * 8)  # this call only
        assert supernet.active_config == supernet.config and set(_widths(supernet)) == {None}
        assert torch.equal(supernet(x), full) and not torch.equal(half, full)
        with supernet.configured((4,) * 8) as active:
            assert active == (4,) * 8 and torch.equal(supernet(x), half)
        assert torch.equal(supernet(x), full)


def test_nested_blocks_restore_the_outer_config_also_after_an_error():
    supernet = create_generator("resnet", elastic=True, **SMALL)
    outer, inner = (6,) * 8, (2, 4, 6, 8, 2, 4, 6, 8)
    with supernet.configured(outer):
        with supernet.configured(inner):
            assert supernet.active_config == inner
            supernet(torch.randn(1, 3, 16, 16), config=(4,) * 8)
            assert supernet.active_config == inner
        assert supernet.active_config == outer
        assert supernet.model[1].active_out == 6
        with pytest.raises(RuntimeError, match="boom"):
            with supernet.configured(inner):
                raise RuntimeError("boom")
        assert supernet.active_config == outer and supernet.model[1].active_out == 6
        with pytest.raises(ConfigError, match="allows 1..8"):
            with supernet.configured((9,) * 8):
                pass
        assert supernet.active_config == outer
    assert supernet.active_config == supernet.config and set(_widths(supernet)) == {None}


def test_a_static_generator_cannot_be_configured():
    static = create_generator("resnet", **SMALL)
    with pytest.raises(ArchitectureError, match="static"):
        with static.configured(None):
            pass
    with pytest.raises(ArchitectureError, match="static"):
        static(torch.randn(1, 3, 16, 16), config=(4,) * 8)
