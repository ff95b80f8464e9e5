"""GauGAN's SPADE generator (NVlabs/SPADE, no VAE encoder) and GAN Compression's mobile variant.

The network: the label map resized to ``H/2**n x W/2**n`` -> ``fc`` (3x3 conv) -> ``head_0`` ->
up -> ``G_middle_0`` -> (up, for 'more' and 'most') -> ``G_middle_1`` -> up -> ``up_0`` -> ... ->
up -> ``up_3`` -> (up -> ``up_4``, for 'most') -> leaky ReLU -> ``conv_img`` -> tanh, every block a
SPADE residual block that reads the label map (:mod:`.spade_blocks`).

Config positions, GAN Compression's (``configs/spade_configs.py``): c0 the 16x trunk (``fc`` and
the outputs of ``head_0``, ``G_middle_0``, ``G_middle_1``), c1..c3 the hidden widths of those three
blocks (x16), c4..c7 the widths of ``up_0``..``up_3`` (x8, x4, x2, x1); 'most' adds c8 for
``up_4`` (x1, ``ngf // 2`` at full width). Each block's SPADE layers have ``nhidden`` channels
(NVlabs: 128), or twice the block's config number when ``nhidden`` is None (GAN Compression).

State-dict keys are NVlabs's (``fc.weight``, ``head_0.conv_0.weight_orig``, ...): the ``model.``
prefix of the module tree is left out of state dicts, so ``latest_net_G.pth`` loads as it is.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArchitectureError
from .base import ChannelGenerator
from .spade_blocks import LEAK, SpadeOptions, SpadeResnetBlock

UPSAMPLING = {"normal": 5, "more": 6, "most": 7}  # num_upsampling_layers -> how many times the map doubles
TRUNK_BLOCKS = ("head_0", "G_middle_0", "G_middle_1")
PREFIX = "model."


class SpadeNetwork(nn.Module):
    """The module tree (NVlabs's ``SPADEGenerator`` without its VAE branch) at given widths."""

    def __init__(self, options: SpadeOptions, widths: tuple[int, ...], hidden: tuple[int, ...], output_nc: int,
                 num_upsampling_layers: str):
        super().__init__()
        self.num_up = UPSAMPLING[num_upsampling_layers]
        trunk = widths[0]
        self.fc = options.kit.conv(options.semantic_nc, trunk, 3, padding=1)  # no spectral norm: NVlabs's neither
        for i, name in enumerate(TRUNK_BLOCKS, start=1):
            setattr(self, name, SpadeResnetBlock(options, trunk, trunk, widths[i], hidden[i], False))
        fin = trunk
        for i, width in enumerate(widths[4:]):
            setattr(self, f"up_{i}", SpadeResnetBlock(options, fin, width, width, hidden[4 + i], True))
            fin = width
        self.conv_img = options.kit.conv(fin, output_nc, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def up_blocks(self) -> list[SpadeResnetBlock]:
        return [m for name, m in self.named_children() if name.startswith("up_")]

    def blocks(self) -> list[SpadeResnetBlock]:
        return [getattr(self, name) for name in TRUNK_BLOCKS] + self.up_blocks()

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        height, width = seg.shape[2] // 2 ** self.num_up, seg.shape[3] // 2 ** self.num_up
        x = self.fc(F.interpolate(seg, size=(height, width)))
        x = self.head_0(x, seg)
        x = self.G_middle_0(self.up(x), seg)
        if self.num_up > 5:
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        for block in self.up_blocks():
            x = block(self.up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, LEAK)))


class SpadeGenerator(ChannelGenerator):
    """NVlabs/SPADE's generator: one-hot label map (``input_nc`` channels) in, an image out."""

    arch = "spade"
    mobile = False
    takes_label_maps = True

    def __init__(self, input_nc: int = 36, output_nc: int = 3, ngf: int = 64, num_upsampling_layers: str = "normal",
                 param_free_norm: str = "batch", nhidden: int | None = 128, spectral: bool = True,
                 config: Sequence[int] | None = None, elastic: bool = False):
        if num_upsampling_layers not in UPSAMPLING:
            raise ArchitectureError(f"unknown num_upsampling_layers {num_upsampling_layers!r}; choose one of "
                                    f"{', '.join(UPSAMPLING)}")
        if nhidden is not None and (not isinstance(nhidden, int) or nhidden <= 0):
            raise ArchitectureError(f"nhidden must be a positive integer or null (got {nhidden!r})")
        self.input_nc, self.output_nc, self.num_upsampling_layers = input_nc, output_nc, num_upsampling_layers
        self.nhidden, self.spectral = nhidden, bool(spectral)
        self.options = SpadeOptions(input_nc, param_free_norm, self.mobile, self.spectral, elastic)
        if config is None and num_upsampling_layers == "most":
            config = (ngf,) * 8 + (max(1, ngf // 2),)  # NVlabs: up_4 outputs nf // 2
        super().__init__(ngf, config, elastic)
        self._register_state_dict_hook(_drop_prefix)
        self._register_load_state_dict_pre_hook(_add_prefix)

    @property
    def downsample_factor(self) -> int:
        return 2 ** UPSAMPLING[self.num_upsampling_layers]

    def multipliers(self) -> tuple[int, ...]:
        return (16, 16, 16, 16, 8, 4, 2, 1) + ((1,) if self.num_upsampling_layers == "most" else ())

    def hidden_widths(self, config: Sequence[int] | None = None) -> tuple[int, ...]:
        """Per position, the SPADE hidden width of the block it names (position 0 names none: 0)."""
        config = self.config if config is None else config
        return (0,) + tuple(self.nhidden or 2 * c for c in config[1:])

    def build_model(self, widths: tuple[int, ...]) -> SpadeNetwork:
        return SpadeNetwork(self.options, widths, self.hidden_widths(), self.output_nc, self.num_upsampling_layers)

    def hparams(self) -> dict:
        return dict(input_nc=self.input_nc, output_nc=self.output_nc, ngf=self.ngf,
                    num_upsampling_layers=self.num_upsampling_layers, param_free_norm=self.options.param_free_norm,
                    nhidden=self.nhidden, spectral=self.spectral)

    def slot_layers(self) -> list[list[nn.Module]]:
        net: SpadeNetwork = self.model
        slots: list[list[nn.Module]] = [[net.fc]] + [[] for _ in range(self.num_positions - 1)]
        blocks = net.blocks()
        for position, block in enumerate(blocks, start=1):
            inputs = 0 if position <= 4 else position - 1  # the position that sets the block's input width
            slots[inputs] += block.norm_0.output_convs()
            if block.learned_shortcut:  # an up block: its width is its own position's
                slots[inputs] += block.norm_s.output_convs()
                slots[position] += [block.conv_0, block.conv_1, block.conv_s]
            else:  # a trunk block writes back into the trunk
                slots[position].append(block.conv_0)
                slots[0].append(block.conv_1)
            slots[position] += block.norm_1.output_convs()
        return slots

    def hidden_layers(self) -> list[list[nn.Module]]:
        """Per position, the shared SPADE convs whose width is that position's hidden width (none when fixed)."""
        if self.nhidden is not None:
            return [[] for _ in range(self.num_positions)]
        return [[]] + [[norm.mlp_shared[0] for norm in block.norms()] for block in self.model.blocks()]

    def _set_widths(self, config: tuple[int, ...] | None) -> None:
        super()._set_widths(config)
        hidden = [None] * self.num_positions if config is None else self.hidden_widths(config)
        for layers, width in zip(self.hidden_layers(), hidden):
            for layer in layers:
                layer.active_out = width

    def distill_layer_names(self) -> list[str]:
        """GAN Compression's distilled SPADE layers (its ``mapping_layers``): head_0, G_middle_1 and up_1."""
        return ["model.head_0", "model.G_middle_1", "model.up_1"]

    @torch.no_grad()
    def without_spectral_norm(self) -> "SpadeGenerator":
        """The same generator with plain convs holding the normalised weights ``W / sigma`` (GAN Compression's
        remove_spectral_norm); equal output in eval mode. A supernet initialised from it slices these weights."""
        modules = dict(self.named_modules())
        state = {}
        for key, value in self.state_dict().items():
            layer, _, name = key.rpartition(".")
            if name == "weight_orig":
                state[f"{layer}.weight"] = _normalised_weight(modules[PREFIX + layer])
            elif name not in ("weight_u", "weight_v"):
                state[key] = value
        plain = type(self)(**{**self.hparams(), "spectral": False}, config=self.config)
        plain.load_state_dict(state)
        return plain.train(self.training)


class MobileSpadeGenerator(SpadeGenerator):
    """GAN Compression's mobile SPADE generator: gamma and beta convs separable (depthwise 3x3 ->
    InstanceNorm -> pointwise 1x1), hidden width twice the config number, no spectral norm by default.
    The family of GAN Compression's SPADE supernets."""

    arch = "mobile_spade"
    mobile = True

    def __init__(self, input_nc: int = 36, output_nc: int = 3, ngf: int = 64, num_upsampling_layers: str = "normal",
                 param_free_norm: str = "batch", nhidden: int | None = None, spectral: bool = False,
                 config: Sequence[int] | None = None, elastic: bool = False):
        super().__init__(input_nc, output_nc, ngf, num_upsampling_layers, param_free_norm, nhidden, spectral,
                         config, elastic)


def _normalised_weight(conv: nn.Module) -> torch.Tensor:
    """``weight_orig / sigma`` with ``sigma = u . (W v)``, W the weight flattened to (out, -1), as
    :func:`torch.nn.utils.spectral_norm` computes it in eval mode."""
    weight = conv.weight_orig
    sigma = torch.dot(conv.weight_u, torch.mv(weight.reshape(weight.shape[0], -1), conv.weight_v))
    return weight / sigma


def _drop_prefix(module, state_dict, prefix, local_metadata):
    """state_dict hook: ``model.fc.weight`` -> ``fc.weight`` (NVlabs's keys)."""
    for key in [k for k in state_dict if k.startswith(prefix + PREFIX)]:
        state_dict[prefix + key[len(prefix + PREFIX):]] = state_dict.pop(key)
    return state_dict


def _add_prefix(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    """load_state_dict pre-hook: NVlabs's ``fc.weight`` -> ``model.fc.weight``, the module tree's name."""
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + PREFIX)]:
        state_dict[prefix + PREFIX + key[len(prefix):]] = state_dict.pop(key)
