"""Checkpoints of pytorch-CycleGAN-and-pix2pix and GAN Compression load into ganas unchanged.

The reference layouts below are written from the documented layer order of
``ResnetGenerator`` / ``UnetGenerator`` (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py)
and ``MobileResnetGenerator`` / ``SeparableConv2d`` (mit-han-lab/gan-compression), never from
ganas's code; so are the hand-built reference forward passes.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from supernet import CheckpointError, create_generator, load_reference_generator
from supernet.foreign import import_generator

Layout = list[tuple[str, tuple[int, ...]]]


# -- reference state-dict layouts ------------------------------------------------------------------
def _conv(name: str, cout: int, cin: int, k: int, bias: bool) -> Layout:
    return [(f"{name}.weight", (cout, cin, k, k))] + ([(f"{name}.bias", (cout,))] if bias else [])


def _conv_t(name: str, cin: int, cout: int, k: int, bias: bool) -> Layout:
    return [(f"{name}.weight", (cin, cout, k, k))] + ([(f"{name}.bias", (cout,))] if bias else [])


def _norm(name: str, c: int, norm: str) -> Layout:
    if norm == "instance":  # InstanceNorm2d(affine=False, track_running_stats=False): no state
        return []
    return [(f"{name}.{k}", (c,)) for k in ("weight", "bias", "running_mean", "running_var")] + \
        [(f"{name}.num_batches_tracked", ())]


def resnet_layout(ngf=64, n_blocks=9, norm="instance", dropout=False, mobile=False) -> Layout:
    """``model`` = [pad, conv7 (1), norm, relu, conv3 s2 (4), norm, relu, conv3 s2 (7), norm, relu,
    blocks (10..), convT (+0), norm, relu, convT (+3), norm, relu, pad, conv7 (+7, bias), tanh].
    A block's ``conv_block`` = [pad, conv (1), norm, relu, (dropout), pad, conv (5 or 6), norm].
    GAN Compression's mobile blocks always hold the dropout and use SeparableConv2d:
    ``conv`` = [depthwise kxk (groups=C, bias), InstanceNorm, pointwise 1x1 (bias)]."""
    bias = norm == "instance"
    out = _conv("model.1", ngf, 3, 7, bias) + _norm("model.2", ngf, norm)
    out += _conv("model.4", 2 * ngf, ngf, 3, bias) + _norm("model.5", 2 * ngf, norm)
    out += _conv("model.7", 4 * ngf, 2 * ngf, 3, bias) + _norm("model.8", 4 * ngf, norm)
    dim = 4 * ngf
    second = 6 if dropout or mobile else 5
    for i in range(10, 10 + n_blocks):
        for conv in (1, second):
            name = f"model.{i}.conv_block.{conv}"
            if mobile:
                out += _conv(f"{name}.conv.0", dim, 1, 3, True) + _conv(f"{name}.conv.2", dim, dim, 1, True)
            else:
                out += _conv(name, dim, dim, 3, bias)
            out += _norm(f"model.{i}.conv_block.{conv + 1}", dim, norm)
    up = 10 + n_blocks
    out += _conv_t(f"model.{up}", 4 * ngf, 2 * ngf, 3, bias) + _norm(f"model.{up + 1}", 2 * ngf, norm)
    out += _conv_t(f"model.{up + 3}", 2 * ngf, ngf, 3, bias) + _norm(f"model.{up + 4}", ngf, norm)
    out += _conv(f"model.{up + 7}", 3, ngf, 7, True)
    return out


def unet_levels(ngf: int, num_downs: int) -> list[tuple[int, int]]:
    """(outer_nc, inner_nc) from the outermost level down, as UnetGenerator builds them bottom-up:
    innermost (8, 8), num_downs - 5 middle (8, 8), then (4, 8), (2, 4), (1, 2) x ngf, outermost (3, ngf)."""
    bottom_up = [(8 * ngf, 8 * ngf)] * (num_downs - 4) + [(4 * ngf, 8 * ngf), (2 * ngf, 4 * ngf), (ngf, 2 * ngf)]
    return [(3, ngf)] + bottom_up[::-1]


def unet_layout(ngf=64, num_downs=8, norm="batch") -> Layout:
    """Outermost ``model`` = [downconv (0), sub (1), relu, upconv (3, bias), tanh]; middle =
    [lrelu, downconv (1), norm (2), sub (3), relu, upconv (5), norm (6)]; innermost =
    [lrelu, downconv (1), relu, upconv (3), norm (4)]; the submodule's keys sit under ``.model``."""
    bias = norm == "instance"
    levels = unet_levels(ngf, num_downs)

    def level(i: int, prefix: str) -> Layout:
        outer, inner = levels[i]
        if i == 0:
            return (_conv(f"{prefix}.0", inner, 3, 4, bias) + level(1, f"{prefix}.1.model")
                    + _conv_t(f"{prefix}.3", 2 * inner, outer, 4, True))
        if i == num_downs - 1:
            return (_conv(f"{prefix}.1", inner, outer, 4, bias) + _conv_t(f"{prefix}.3", inner, outer, 4, bias)
                    + _norm(f"{prefix}.4", outer, norm))
        return (_conv(f"{prefix}.1", inner, outer, 4, bias) + _norm(f"{prefix}.2", inner, norm)
                + level(i + 1, f"{prefix}.3.model") + _conv_t(f"{prefix}.5", 2 * inner, outer, 4, bias)
                + _norm(f"{prefix}.6", outer, norm))

    return level(0, "model.model")


def _parameters(layout: Layout) -> int:
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return sum(torch.Size(shape).numel() for key, shape in layout if not key.endswith(stats))


def _layout_of(arch: str, **hparams) -> Layout:
    with torch.device("meta"):  # shapes only: no memory for the 54M-parameter U-Net
        g = create_generator(arch, **hparams)
    return [(k, tuple(v.shape)) for k, v in g.state_dict().items()]


def _random_state(layout: Layout, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=rng) + 0.5
        else:
            state[key] = torch.randn(shape, generator=rng) * 0.2
    return state


# -- layouts ---------------------------------------------------------------------------------------
def test_reference_tables_reproduce_published_figures():
    """The tables themselves: the reference prints 11.378 M (resnet_9blocks) and 54.414 M (unet_256)
    parameters; GAN Compression's mobile generator has about 5.7x fewer than the ResNet."""
    table = dict(resnet_layout())
    assert table["model.1.weight"] == (64, 3, 7, 7) and table["model.19.weight"] == (256, 128, 3, 3)
    assert table["model.10.conv_block.5.weight"] == (256, 256, 3, 3) and table["model.26.bias"] == (3,)
    assert _parameters(resnet_layout()) == 11_378_179
    assert round(_parameters(unet_layout()) / 1e6, 3) == 54.414
    assert round(_parameters(resnet_layout()) / _parameters(resnet_layout(mobile=True)), 1) == 5.7


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("dropout", [False, True])
def test_resnet_9blocks_has_the_reference_keys_and_shapes(norm, dropout):
    expected = resnet_layout(norm=norm, dropout=dropout)
    assert _layout_of("resnet_9blocks", norm=norm, dropout=0.5 if dropout else 0.0) == expected
    keys = dict(expected)
    assert (len(keys.get("model.10.conv_block.6.weight", ())) == 4) == dropout  # the conv moves to 6
    assert ("model.1.bias" in keys) == (norm == "instance") and "model.26.bias" in keys


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_256_has_the_reference_keys_and_shapes(norm):
    expected = unet_layout(norm=norm)
    assert _layout_of("unet_256", norm=norm) == expected
    keys = dict(expected)
    assert keys["model.model.0.weight"] == (64, 3, 4, 4) and keys["model.model.3.bias"] == (3,)
    assert keys["model.model.1.model.1.weight"] == (128, 64, 4, 4)


def test_mobile_resnet_has_gan_compression_keys_and_shapes():
    expected = resnet_layout(mobile=True)
    assert _layout_of("mobile_resnet") == expected
    keys = dict(expected)
    assert keys["model.10.conv_block.1.conv.0.weight"] == (256, 1, 3, 3)  # depthwise, groups=256
    assert keys["model.10.conv_block.6.conv.2.weight"] == (256, 256, 1, 1)


def test_mobile_resnet_with_batch_norm_has_gan_compression_keys():
    bias_free = [(k, s) for k, s in resnet_layout(norm="batch", mobile=True)
                 if not (".conv." in k and k.endswith(".bias"))]
    assert _layout_of("mobile_resnet", norm="batch") == bias_free


# -- loading saved state dicts ----------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["", "module."])
def test_reference_resnet_checkpoint_loads_unchanged(tmp_path, prefix):
    state = _random_state(resnet_layout())
    torch.save({prefix + k: v for k, v in state.items()}, tmp_path / "latest_net_G.pth")
    g = load_reference_generator(tmp_path / "latest_net_G.pth", "resnet_9blocks")
    loaded = g.state_dict()
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


@pytest.mark.parametrize("prefix", ["", "module."])
def test_reference_unet_checkpoint_loads_unchanged(tmp_path, prefix):
    state = _random_state(unet_layout(ngf=8))
    torch.save({prefix + k: v for k, v in state.items()}, tmp_path / "latest_net_G.pth")
    g = load_reference_generator(tmp_path / "latest_net_G.pth", "unet_256", ngf=8)
    assert all(torch.equal(g.state_dict()[k], v) for k, v in state.items())
    assert g.num_downs == 8


def test_checkpoint_of_another_architecture_names_the_first_tensor_that_does_not_fit(tmp_path):
    torch.save(_random_state(unet_layout(ngf=8)), tmp_path / "unet.pth")
    with pytest.raises(CheckpointError) as info:
        load_reference_generator(tmp_path / "unet.pth", "resnet_9blocks", ngf=8)
    message = str(info.value)
    assert "unet.pth does not fit a resnet_9blocks (ngf 8, 9 blocks, norm instance, conv bias yes" in message
    assert message.endswith("model.model.0.weight (8, 3, 4, 4) does not fit: expected there model.1.weight "
                            "(8, 3, 7, 7) (the weight of a Conv2d)")


def test_checkpoint_of_another_width_or_norm_is_refused(tmp_path):
    torch.save(_random_state(resnet_layout(ngf=8)), tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match=r"model\.1\.weight \(8, 3, 7, 7\) does not fit: expected there "
                                              r"model\.1\.weight \(16, 3, 7, 7\)"):
        load_reference_generator(tmp_path / "g.pth", "resnet_9blocks", ngf=16)
    # the closest BatchNorm generator (convs with a bias) expects a norm after the first conv; there is none
    instance_as_batch = r"model\.4\.weight \(16, 8, 3, 3\) does not fit: expected there model\.2\.weight \(8,\) " \
                        r"\(the weight of a BatchNorm2d\)"
    with pytest.raises(CheckpointError, match=instance_as_batch):
        load_reference_generator(tmp_path / "g.pth", "resnet_9blocks", ngf=8, norm="batch")


def test_pre_0_4_instance_norm_checkpoint_loads(tmp_path):
    state = _random_state(resnet_layout(ngf=8))
    norms = ["model.2", "model.5", "model.8", "model.20", "model.23"]
    norms += [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (2, 6)]
    for name, c in zip(norms, [8, 16, 32, 16, 8] + [32] * 18):
        state[f"{name}.running_mean"], state[f"{name}.running_var"] = torch.zeros(c), torch.ones(c)
    torch.save(state, tmp_path / "old.pth")
    load_reference_generator(tmp_path / "old.pth", "resnet_9blocks", ngf=8)
    imported = import_generator(state, "old.pth")  # the statistics are left out, and the mapping says so
    assert imported.method == "as is" and imported.key_map["model.2.running_mean"] is None
    assert imported.key_map["model.1.weight"] == "model.1.weight" and len(imported.key_map) == len(state)


# -- the same computation as the reference ----------------------------------------------------------
class ResBlock(nn.Module):
    """The reference's ResnetBlock: x + [pad, conv, norm, relu, (dropout), pad, conv, norm](x)."""

    def __init__(self, dim: int, norm: type, bias: bool, dropout: bool):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceResnet(nn.Module):
    def __init__(self, ngf: int, n_blocks: int, norm: str, dropout: bool):
        super().__init__()
        norm_layer, bias = (nn.InstanceNorm2d, True) if norm == "instance" else (nn.BatchNorm2d, False)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), norm_layer(ngf), nn.ReLU(True)]
        for c in (ngf, 2 * ngf):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(2 * c), nn.ReLU(True)]
        layers += [ResBlock(4 * ngf, norm_layer, bias, dropout) for _ in range(n_blocks)]
        for c in (4 * ngf, 2 * ngf):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, 1, bias=bias), norm_layer(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


@pytest.mark.parametrize("norm,dropout", [("instance", False), ("batch", False), ("instance", True)])
def test_resnet_output_equals_hand_built_reference(tmp_path, norm, dropout):
    reference = ReferenceResnet(8, 9, norm, dropout)
    layout = resnet_layout(ngf=8, norm=norm, dropout=dropout)
    assert [(k, tuple(v.shape)) for k, v in reference.state_dict().items()] == layout
    state = _random_state(layout, seed=1)
    reference.load_state_dict(state)
    torch.save(state, tmp_path / "latest_net_G.pth")
    g = load_reference_generator(tmp_path / "latest_net_G.pth", "resnet_9blocks", ngf=8, norm=norm,
                                 dropout=0.5 if dropout else 0.0)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (g.eval()(x.clone()) - reference.eval()(x.clone())).abs().max() <= 1e-6


def unet_reference_forward(state: dict, x: torch.Tensor, num_downs: int, skip_after_lrelu: bool = True,
                           outputs: dict | None = None, level: int = 0, prefix: str = "model.model") -> torch.Tensor:
    """UnetSkipConnectionBlock in eval mode, written with torch.nn.functional over a state dict.

    The reference's in-place ``LeakyReLU(0.2, True)`` opens every non-outermost block and rewrites
    its input, which is also the skip half of ``cat([x, model(x)])``: with ``skip_after_lrelu`` the
    skip is that activated tensor, as in the reference. ``outputs`` collects each level's output.
    """
    def conv(h, name):
        return F.conv2d(h, state[f"{prefix}.{name}.weight"], state.get(f"{prefix}.{name}.bias"), 2, 1)

    def up(h, name):
        return F.conv_transpose2d(h, state[f"{prefix}.{name}.weight"], state.get(f"{prefix}.{name}.bias"), 2, 1)

    def bn(h, name):
        s = {k: state[f"{prefix}.{name}.{k}"] for k in ("running_mean", "running_var", "weight", "bias")}
        return F.batch_norm(h, s["running_mean"], s["running_var"], s["weight"], s["bias"], False, 0.0, 1e-5)

    def inner(h, sub):
        return unet_reference_forward(state, h, num_downs, skip_after_lrelu, outputs, level + 1,
                                      f"{prefix}.{sub}.model")

    if level == 0:
        out = torch.tanh(up(F.relu(inner(conv(x, "0"), 1)), "3"))
    else:
        activated = F.leaky_relu(x, 0.2)
        if level == num_downs - 1:
            h = bn(up(F.relu(conv(activated, "1")), "3"), "4")
        else:
            h = bn(up(F.relu(inner(bn(conv(activated, "1"), "2"), 3)), "5"), "6")
        out = torch.cat([activated if skip_after_lrelu else x, h], 1)
    if outputs is not None:
        outputs[level] = out
    return out


def test_unet_output_and_block_outputs_equal_functional_reference(tmp_path):
    state = _random_state(unet_layout(ngf=4, num_downs=5), seed=3)
    torch.save(state, tmp_path / "latest_net_G.pth")
    g = load_reference_generator(tmp_path / "latest_net_G.pth", "unet", ngf=4, num_downs=5).eval()
    got_blocks: dict[int, torch.Tensor] = {}
    block, level = g.model, 0
    while block is not None:  # hook every UnetSkipConnectionBlock, outermost first
        block.register_forward_hook(lambda m, i, o, level=level: got_blocks.__setitem__(level, o.clone()))
        block = next((m for m in block.model if type(m) is type(g.model)), None)
        level += 1
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    expected_blocks, plain_blocks = {}, {}
    with torch.no_grad():
        got = g(x.clone())
        expected = unet_reference_forward(state, x.clone(), 5, outputs=expected_blocks)
        plain = unet_reference_forward(state, x.clone(), 5, skip_after_lrelu=False, outputs=plain_blocks)
    assert (got - expected).abs().max() <= 1e-6
    assert sorted(got_blocks) == sorted(expected_blocks) == list(range(5))
    for i in range(1, 5):
        assert (got_blocks[i] - expected_blocks[i]).abs().max() <= 1e-6, i
        # the quirk shows in the block outputs (features a distiller may hook) ...
        assert (got_blocks[i] - plain_blocks[i]).abs().max() > 1e-2, i
    # ... but not in the image: the up-path ReLU after each concatenation undoes the LeakyReLU
    assert (got - plain).abs().max() <= 1e-6
