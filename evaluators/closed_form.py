"""MACs and parameters of a generator at a channel config, in closed form: nothing is built or run.

Each architecture family has a formula (a sum of products of adjacent widths times spatial
sizes) written from the layer lists in ``supernet/generators``, in the papers' counting
convention (see :mod:`evaluators.macs`). Tests pin every formula to the traced count, for
every registered architecture and search space. This is what the search's budget check
uses: microseconds per config instead of a forward pass.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from foundation.registry import Registry
from supernet.errors import ArchitectureError, ConfigError, InputSizeError
from supernet.generators.spade import UPSAMPLING
from supernet.generators.spade_blocks import PARAM_FREE_NORMS
from supernet.layers import PADDINGS
from supernet.norms import get_norm, resolve_conv_bias
from supernet.registry import get_architecture
from supernet.space import ChannelSearchSpace

from .macs import MacsCount, parse_size

Config = tuple[int, ...]
Hparams = dict[str, Any]


@dataclass(frozen=True)
class FamilyFormula:
    """The closed form of one generator family: its positions, downsampling factor and count."""

    positions: Callable[[Hparams], int]
    downsample_factor: Callable[[Hparams], int]
    count: Callable[[Hparams, Config, int, int], MacsCount]  # (hparams, config, height, width)
    check: Callable[[Hparams], None] = lambda hp: None
    full_config: Callable[[Hparams], Config] | None = None  # the full-width config; None: ngf at every position

    def default_config(self, hp: Hparams) -> Config:
        return self.full_config(hp) if self.full_config is not None else (hp["ngf"],) * self.positions(hp)


_FORMULAS: Registry[FamilyFormula] = Registry("architecture family with a closed-form MACs count", ArchitectureError,
                                               hint="; add one with register_closed_form")


def register_closed_form(family: str, formula: FamilyFormula) -> FamilyFormula:
    """Register the formula for generators whose class has ``arch == family``."""
    return _FORMULAS.register(family, formula)


# -- ResNet family --------------------------------------------------------------------------------

def _check_resnet(hp: Hparams) -> None:
    if not isinstance(hp["n_blocks"], int) or hp["n_blocks"] < 0:
        raise ArchitectureError(f"n_blocks must be an integer >= 0 (got {hp['n_blocks']!r})")
    if hp["padding_type"] not in PADDINGS:
        raise ArchitectureError(f"unknown padding type {hp['padding_type']!r}; choose one of {', '.join(PADDINGS)}")


Terms = tuple[int, int, int, int]  # (MACs without norms, params without norms, norm elements, norm channels)


def _plain_block(trunk: int, hidden: int, area: int, bias: bool) -> Terms:
    """conv 3x3 trunk -> hidden, norm, ReLU, conv 3x3 hidden -> trunk, norm (plus the skip: free)."""
    return 18 * hidden * trunk * area, 18 * hidden * trunk + bias * (hidden + trunk), area * (trunk + hidden), \
        trunk + hidden


def _separable_block(trunk: int, hidden: int, area: int, bias: bool) -> Terms:
    """Each 3x3 conv becomes depthwise 3x3 -> InstanceNorm (never affine: free) -> pointwise 1x1,
    both convs with a bias when the generator's convs have one, as GAN Compression's; block norms as above."""
    macs = area * (9 * trunk + hidden * trunk + 9 * hidden + trunk * hidden)
    params = 9 * trunk + trunk * hidden + 9 * hidden + hidden * trunk + bias * 2 * (trunk + hidden)
    return macs, params, area * (trunk + hidden), trunk + hidden


def _resnet_count(hp: Hparams, config: Config, height: int, width: int, block=_plain_block,
                  stage_blocks: bool = False) -> MacsCount:
    """Stem 7x7, two stride-2 3x3 convs, residual blocks, two transposed 3x3 convs, 7x7 out.

    ``stage_blocks``: OMGD's deep teacher, a plain block (width -> width) after each of the
    four down/up-sampling stages.
    """
    c0, c1, c2, c3, c4, c5, c6, c7 = config
    w0, w1, trunk, w6, w7 = c0, 2 * c1, 4 * c2, 2 * c6, c7
    cin, cout, n = hp["input_nc"], hp["output_nc"], hp["n_blocks"]
    a0 = height * width
    a1, a2 = a0 // 4, a0 // 16
    bias = resolve_conv_bias(hp["norm"], hp["conv_bias"])  # of the convs a norm follows
    # stem, down 1, down 2, up 1, up 2 (transposed: output side), out conv (always with a bias)
    macs = a0 * w0 * cin * 49 + a1 * w1 * w0 * 9 + a2 * trunk * w1 * 9 + a1 * w6 * trunk * 9 \
        + a0 * w7 * w6 * 9 + a0 * cout * w7 * 49
    params = (w0 * cin * 49 + w1 * w0 * 9 + trunk * w1 * 9 + w6 * trunk * 9 + w7 * w6 * 9 + cout * w7 * 49 + cout
              + bias * (w0 + w1 + trunk + w6 + w7))
    norm_elements = a0 * w0 + a1 * w1 + a2 * trunk + a1 * w6 + a0 * w7
    norm_channels = w0 + w1 + trunk + w6 + w7
    first = n // 3  # GAN Compression's split of the blocks into three groups: n//3, n//3, the rest
    blocks = [(count, block(trunk, hidden, a2, bias))
              for count, hidden in ((first, 4 * c3), (first, 4 * c4), (n - 2 * first, 4 * c5))]
    if stage_blocks:
        blocks += [(1, _plain_block(w, w, area, bias)) for w, area in ((w1, a1), (trunk, a2), (w6, a1), (w7, a0))]
    for count, (m, p, e, c) in blocks:
        macs, params = macs + count * m, params + count * p
        norm_elements, norm_channels = norm_elements + count * e, norm_channels + count * c
    return _with_norms(hp, macs, params, norm_elements, norm_channels)


def _with_norms(hp: Hparams, macs: int, params: int, norm_elements: int, norm_channels: int) -> MacsCount:
    """An affine norm costs one MAC per element and holds a weight and a bias per channel; others are free."""
    if get_norm(hp["norm"]).affine:
        macs += norm_elements
        params += 2 * norm_channels
    return MacsCount(macs, params)


_RESNET = dict(positions=lambda hp: 8, downsample_factor=lambda hp: 4, check=_check_resnet)
register_closed_form("resnet", FamilyFormula(count=_resnet_count, **_RESNET))
register_closed_form("mobile_resnet", FamilyFormula(
    count=lambda hp, c, h, w: _resnet_count(hp, c, h, w, block=_separable_block), **_RESNET))
register_closed_form("deep_resnet", FamilyFormula(
    count=lambda hp, c, h, w: _resnet_count(hp, c, h, w, stage_blocks=True), **_RESNET))


# -- U-Net family -----------------------------------------------------------------------------------

def _check_unet(hp: Hparams) -> None:
    if not isinstance(hp["num_downs"], int) or hp["num_downs"] < 5:
        raise ArchitectureError(f"unet needs an integer num_downs >= 5 (got {hp['num_downs']!r}), as pix2pix's "
                                "UnetGenerator")


def _expansion_block(dim: int, height: int, width: int, bias: bool) -> Terms:
    """OMGD's U-Net block: pad, 1x1 d -> 4d on the padded map, 3x3 4d -> 4d, 1x1 4d -> d, pad, 3x3 d -> d; a norm
    after each conv."""
    hidden, area, padded = 4 * dim, height * width, (height + 2) * (width + 2)
    macs = padded * hidden * dim + area * hidden * hidden * 9 + area * dim * hidden + area * dim * dim * 9
    params = 2 * hidden * dim + 9 * hidden * hidden + 9 * dim * dim + bias * 2 * (hidden + dim)
    return macs, params, padded * hidden + area * (hidden + 2 * dim), 2 * (hidden + dim)


def _unet_stage_blocks(n: int, w: list[int], height: int, width: int) -> list[tuple[int, int, int]]:
    """(width, height, width of the map) of each stage of ``deep_unet``'s expansion blocks: after each down-sampling
    and each up-sampling output of the levels 1..n-2, and at the outermost level on both sides of its submodule."""
    side = lambda level: (height >> level, width >> level)  # noqa: E731
    stages = [(w[0], *side(1)), (2 * w[0], *side(1))]
    for i in range(1, n - 1):
        stages += [(w[i], *side(i + 1)), (w[i - 1], *side(i))]
    return stages


def _unet_count(hp: Hparams, config: Config, height: int, width: int, stage_blocks: int = 0) -> MacsCount:
    """Level i: conv 4x4 s2 w[i-1] -> w[i]; transposed 4x4 s2 back to w[i-1] from the skip concatenation.

    ``stage_blocks``: OMGD's deep teacher, that many expansion blocks at each stage of :func:`_unet_stage_blocks`.
    """
    n, cin, cout = hp["num_downs"], hp["input_nc"], hp["output_nc"]
    w = [c * min(2 ** i, 8) for i, c in enumerate(config)]
    bias = resolve_conv_bias(hp["norm"], hp["conv_bias"])
    area = [height * width] + [(height >> (i + 1)) * (width >> (i + 1)) for i in range(n)]  # area[i+1]: level i out
    # outermost level: no norm; its up-conv maps the concatenation 2*w0 -> output_nc with a bias
    macs = area[1] * w[0] * cin * 16 + area[0] * cout * 2 * w[0] * 16
    params = w[0] * cin * 16 + bias * w[0] + 2 * w[0] * cout * 16 + cout
    norm_elements = norm_channels = 0
    for i in range(1, n):
        inner, outer = w[i], w[i - 1]
        up_in = inner if i == n - 1 else 2 * inner  # the innermost level has no skip below it
        macs += area[i + 1] * inner * outer * 16 + area[i] * outer * up_in * 16
        params += inner * outer * 16 + up_in * outer * 16 + bias * (inner + outer)
        norm_elements += area[i] * outer  # after the up-conv
        norm_channels += outer
        if i < n - 1:  # after the down-conv, except innermost
            norm_elements += area[i + 1] * inner
            norm_channels += inner
    for dim, h, v in _unet_stage_blocks(n, w, height, width) if stage_blocks else ():
        m, p, e, c = _expansion_block(dim, h, v, bias)
        macs, params = macs + stage_blocks * m, params + stage_blocks * p
        norm_elements, norm_channels = norm_elements + stage_blocks * e, norm_channels + stage_blocks * c
    return _with_norms(hp, macs, params, norm_elements, norm_channels)


_UNET = dict(positions=lambda hp: hp["num_downs"], downsample_factor=lambda hp: 2 ** hp["num_downs"],
             check=_check_unet)
register_closed_form("unet", FamilyFormula(count=_unet_count, **_UNET))
register_closed_form("deep_unet", FamilyFormula(
    count=lambda hp, c, h, w: _unet_count(hp, c, h, w, stage_blocks=2), **_UNET))


# -- SPADE family ---------------------------------------------------------------------------------------

def _check_spade(hp: Hparams) -> None:
    if hp["num_upsampling_layers"] not in UPSAMPLING:
        raise ArchitectureError(f"unknown num_upsampling_layers {hp['num_upsampling_layers']!r}; choose one of "
                                f"{', '.join(UPSAMPLING)}")
    if hp["param_free_norm"] not in PARAM_FREE_NORMS:
        raise ArchitectureError(f"unknown SPADE parameter-free norm {hp['param_free_norm']!r}; choose one of "
                                f"{', '.join(PARAM_FREE_NORMS)}")
    if hp["nhidden"] is not None and (not isinstance(hp["nhidden"], int) or hp["nhidden"] <= 0):
        raise ArchitectureError(f"nhidden must be a positive integer or null (got {hp['nhidden']!r})")


def _spade_most(hp: Hparams) -> bool:
    return hp["num_upsampling_layers"] == "most"


class _Tally:
    """MACs and parameters summed layer by layer (SPADE has too many kinds of layer for one expression)."""

    def __init__(self):
        self.macs = self.params = 0

    def conv(self, cin: int, cout: int, kernel: int, area: int, bias: bool = True) -> None:
        self.macs += area * cout * cin * kernel * kernel
        self.params += cout * cin * kernel * kernel + bias * cout

    def separable(self, cin: int, cout: int, area: int) -> None:
        """depthwise 3x3 -> InstanceNorm (not affine: free) -> pointwise 1x1, both with a bias."""
        self.macs += area * cin * 9 + area * cin * cout
        self.params += cin * 9 + cin + cin * cout + cout

    def spade(self, labels: int, norm_nc: int, hidden: int, area: int, mobile: bool) -> None:
        """Parameter-free norm (free), shared conv, gamma and beta convs, the modulation (1 MAC per element)."""
        self.conv(labels, hidden, 3, area)
        for _ in range(2):
            self.separable(hidden, norm_nc, area) if mobile else self.conv(hidden, norm_nc, 3, area)
        self.macs += area * norm_nc


def _spade_count(hp: Hparams, config: Config, height: int, width: int, mobile: bool = False) -> MacsCount:
    """fc, three trunk SPADE blocks, four (five for 'most') up blocks with learned shortcuts, conv_img."""
    n_up, labels = UPSAMPLING[hp["num_upsampling_layers"]], hp["input_nc"]
    widths = [c * m for c, m in zip(config, (16, 16, 16, 16, 8, 4, 2, 1, 1))]
    hidden = [hp["nhidden"] or 2 * c for c in config]
    tally, trunk = _Tally(), widths[0]
    area = (height >> n_up) * (width >> n_up)
    tally.conv(labels, trunk, 3, area)
    for position in (1, 2, 3):  # head_0, G_middle_0, G_middle_1: trunk -> hidden width -> trunk
        if position == 2 or (position == 3 and n_up > 5):
            area *= 4
        middle = widths[position]
        tally.spade(labels, trunk, hidden[position], area, mobile)
        tally.conv(trunk, middle, 3, area)
        tally.spade(labels, middle, hidden[position], area, mobile)
        tally.conv(middle, trunk, 3, area)
    fin = trunk
    for position in range(4, len(config)):  # up_0 .. up_3 (up_4): fin -> width, and a learned 1x1 shortcut
        area *= 4
        fout = widths[position]
        for norm_nc in (fin, fout, fin):  # norm_0, norm_1, norm_s
            tally.spade(labels, norm_nc, hidden[position], area, mobile)
        tally.conv(fin, fout, 3, area)
        tally.conv(fout, fout, 3, area)
        tally.conv(fin, fout, 1, area, bias=False)
        fin = fout
    tally.conv(fin, hp["output_nc"], 3, area)
    return MacsCount(tally.macs, tally.params)


_SPADE = dict(positions=lambda hp: 9 if _spade_most(hp) else 8,
              downsample_factor=lambda hp: 2 ** UPSAMPLING[hp["num_upsampling_layers"]], check=_check_spade,
              full_config=lambda hp: (hp["ngf"],) * 8 + ((max(1, hp["ngf"] // 2),) if _spade_most(hp) else ()))
register_closed_form("spade", FamilyFormula(count=_spade_count, **_SPADE))
register_closed_form("mobile_spade", FamilyFormula(
    count=lambda hp, c, h, w: _spade_count(hp, c, h, w, mobile=True), **_SPADE))


# -- resolution of architecture, hyper-parameters, config and size -------------------------------------

@functools.lru_cache(maxsize=None)
def _architecture(arch: str) -> tuple[str, FamilyFormula, tuple[tuple[str, Any], ...]]:
    """(family, formula, default hparams) of a registered architecture name."""
    entry = get_architecture(arch)
    formula = _FORMULAS.get(entry.family)
    signature = inspect.signature(entry.generator_class.__init__).parameters
    defaults = {name: signature[name].default for name in entry.parameters()}
    defaults.update(entry.defaults)
    return entry.family, formula, tuple(defaults.items())


def resolve_hparams(arch: str, hparams: dict[str, Any]) -> tuple[FamilyFormula, Hparams]:
    """The formula of ``arch`` and its full hyper-parameters (registry defaults, then ``hparams``)."""
    _, formula, defaults = _architecture(arch)
    resolved = dict(defaults)
    unknown = [k for k in hparams if k not in resolved]
    if unknown:
        raise ArchitectureError(f"{arch} does not take {', '.join(sorted(unknown))}; it takes {', '.join(resolved)}")
    resolved.update((k, v) for k, v in hparams.items() if v is not None)
    for key in ("input_nc", "output_nc", "ngf"):
        if not isinstance(resolved[key], int) or resolved[key] <= 0:
            raise ArchitectureError(f"{key} must be a positive integer (got {resolved[key]!r})")
    if "norm" in resolved:  # families with ganas's norm variants (SPADE's norm is its own)
        get_norm(resolved["norm"])  # an unknown name lists the registered ones
    if resolved.get("conv_bias") not in (None, True, False):
        raise ArchitectureError(f"conv_bias must be true, false or null (got {resolved['conv_bias']!r})")
    formula.check(resolved)
    return formula, resolved


def _config(arch: str, formula: FamilyFormula, hp: Hparams, config: Sequence[int] | None) -> Config:
    positions = formula.positions(hp)
    if config is None:
        return formula.default_config(hp)
    config = tuple(config)
    if len(config) != positions:
        raise ConfigError(f"{arch} takes {positions} channel numbers, got {len(config)} ({config})")
    if not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in config):
        raise ConfigError(f"channel numbers must be positive integers, got {config}")
    return config


def _checked_size(arch: str, formula: FamilyFormula, hp: Hparams, size: int | Sequence[int]) -> tuple[int, int]:
    height, width = parse_size(size)
    f = formula.downsample_factor(hp)
    if height % f or width % f:
        raise InputSizeError(
            f"input size {height}x{width} is not a multiple of {f}, the downsampling factor of {arch}; "
            f"use e.g. {max(f, height // f * f)}x{max(f, width // f * f)}"
        )
    return height, width


# -- public API ---------------------------------------------------------------------------------------

def closed_form_count(arch: str, config: Sequence[int] | None = None, size: int | Sequence[int] = (256, 256),
                      **hparams: Any) -> MacsCount:
    """MACs and parameters of ``create_generator(arch, config=config, **hparams)`` on one image of ``size``.

    ``config`` ``None`` is the full-width generator (every position at ``ngf``). Equals
    :func:`evaluators.macs.count_macs` of that generator, and of a supernet run at ``config``.
    """
    formula, hp = resolve_hparams(arch, hparams)
    config = _config(arch, formula, hp, config)
    height, width = _checked_size(arch, formula, hp, size)
    return formula.count(hp, config, height, width)


def closed_form_macs(arch: str, config: Sequence[int] | None = None, size: int | Sequence[int] = (256, 256),
                     **hparams: Any) -> int:
    return closed_form_count(arch, config, size, **hparams).macs


def closed_form_params(arch: str, config: Sequence[int] | None = None, **hparams: Any) -> int:
    """Parameters do not depend on the image size; counted at the smallest valid one."""
    formula, hp = resolve_hparams(arch, hparams)
    f = formula.downsample_factor(hp)
    return formula.count(hp, _config(arch, formula, hp, config), f, f).params


def generator_count(generator: Any, size: int | Sequence[int] = (256, 256),
                    config: Sequence[int] | None = None) -> MacsCount:
    """Closed form for a built :class:`~supernet.generators.ChannelGenerator` at ``config``.

    ``config`` defaults to the generator's active config; a supernet accepts any config up to
    its widths, a static generator only its own.
    """
    config = tuple(generator.active_config if config is None else config)
    if generator.elastic:
        too_wide = [i for i, (c, full) in enumerate(zip(config, generator.config)) if c > full]
        if too_wide:
            i = too_wide[0]
            raise ConfigError(f"position {i} of config {config} is {config[i]}; this supernet allows "
                              f"1..{generator.config[i]}")
    elif config != tuple(generator.config):
        raise ArchitectureError(f"this static {generator.arch} generator is built at {generator.config}, "
                                f"not {config}")
    return closed_form_count(generator.arch, config, size, **generator.hparams())


def space_hparams(space: ChannelSearchSpace) -> dict[str, Any]:
    """Hyper-parameters of the supernet a search space is built for: ngf = widest choice, its depth."""
    return space.supernet_hparams()


def space_count(space: ChannelSearchSpace, config: Sequence[int], size: int | Sequence[int] = (256, 256),
                **hparams: Any) -> MacsCount:
    """Closed form of ``config`` (checked against ``space``) on the space's architecture."""
    config = space.validate(config)
    return closed_form_count(space.architecture, config, size, **{**space_hparams(space), **hparams})
