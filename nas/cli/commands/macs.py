"""``ganas macs``: MACs and parameters of a generator, full width or at a channel config.

Counted in closed form by default (microseconds, nothing is built); ``--trace`` builds the
network and counts one forward pass with thop instead, to the same figures.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from ..arguments import image_size
from ..output import print_table

DEPTH_PARAMETERS = ("n_blocks", "num_downs")  # what --blocks sets, the first one the architecture takes


@dataclass(frozen=True)
class MacsRequest:
    """What to count: a registered architecture with its hyper-parameters, a config, an image size."""

    arch: str
    hparams: dict[str, Any]
    config: tuple[int, ...] | None  # None: the full-width static generator
    size: tuple[int, int]
    space: str | None = None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "macs", help="MACs and parameters of a generator at a channel config",
        description="Count MACs (papers' convention: a CycleGAN ResNet generator at 256x256 = 56.80G) and "
                    "parameters of a registered architecture, full width or at a channel config of its "
                    "elastic supernet.",
    )
    parser.add_argument("--arch", required=True, help="registered architecture, e.g. resnet, mobile_resnet, unet "
                                                      "(an unknown name lists them all)")
    parser.add_argument("--ngf", type=int, help="base width; default: the architecture's (64), or the widest "
                                                "choice of --space")
    parser.add_argument("--blocks", type=int, help="depth: n_blocks (residual blocks) for the ResNet family, "
                                                   "num_downs (levels) for the U-Net family")
    parser.add_argument("--config", help="channel config applied to the elastic version of ARCH, numbers "
                                         "joined by '_' (e.g. 16_16_24_16_32_64_16_24)")
    parser.add_argument("--space", help="search space the config must belong to (see `ganas space list`)")
    labels = parser.add_argument_group("label-map input (SPADE: spade, mobile_spade)")
    labels.add_argument("--label-nc", type=int, help="label classes of the one-hot input map, without dontcare "
                                                     "(Cityscapes 35, COCO-Stuff 182); default: the architecture's "
                                                     "36 input channels (Cityscapes with instance edges)")
    labels.add_argument("--contain-dontcare", action="store_true", help="the map has a dontcare label: one more "
                                                                        "channel (SPADE's --contain_dontcare_label)")
    labels.add_argument("--no-instance", action="store_true", help="no instance edge channel (SPADE's --no_instance)")
    labels.add_argument("--num-upsampling-layers", choices=("normal", "more", "most"),
                        help="SPADE's num_upsampling_layers (default normal; NVlabs's Cityscapes models: more)")
    parser.add_argument("--size", type=image_size, default=(256, 256), metavar="H|HxW",
                        help="input image size, height x width (default 256)")
    parser.add_argument("--trace", action="store_true",
                        help="count by tracing the built network with thop instead of the closed form (slow)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run_macs)


def depth_parameter(arch: str) -> str:
    """The hyper-parameter --blocks sets for ``arch``."""
    from supernet import ArchitectureError, get_architecture

    taken = get_architecture(arch).parameters()
    for name in DEPTH_PARAMETERS:
        if name in taken:
            return name
    raise ArchitectureError(f"--blocks does not apply to {arch}: it takes none of {', '.join(DEPTH_PARAMETERS)}")


@dataclass(frozen=True)
class LabelInput:
    """SPADE's input options: the one-hot map has label_nc channels, + 1 for dontcare, + 1 for instance edges."""

    label_nc: int | None = None
    contain_dontcare: bool = False
    no_instance: bool = False
    num_upsampling_layers: str | None = None

    def hparams(self, arch: str) -> dict[str, Any]:
        """The hyper-parameters these flags set; refused for an architecture whose input is an image."""
        from supernet import ArchitectureError, get_architecture

        given = self.label_nc is not None or self.contain_dontcare or self.no_instance
        if not (given or self.num_upsampling_layers):
            return {}
        if not get_architecture(arch).generator_class.takes_label_maps:
            raise ArchitectureError(f"--label-nc, --contain-dontcare, --no-instance and --num-upsampling-layers "
                                    f"apply to label-map generators (spade, mobile_spade), not to {arch}")
        hparams: dict[str, Any] = {}
        if self.num_upsampling_layers:
            hparams["num_upsampling_layers"] = self.num_upsampling_layers
        if given:
            if self.label_nc is None or self.label_nc <= 0:
                raise ArchitectureError("--contain-dontcare and --no-instance change the channels of --label-nc "
                                        "classes; give --label-nc N (a positive number of classes)")
            hparams["input_nc"] = self.label_nc + self.contain_dontcare + (not self.no_instance)
        return hparams


def build_request(arch: str, ngf: int | None = None, blocks: int | None = None, config: str | None = None,
                  space: str | None = None, size: tuple[int, int] = (256, 256),
                  labels: LabelInput = LabelInput()) -> MacsRequest:
    """Resolve the flags into a checked request; every problem is a ``GanasError`` naming the flag."""
    from evaluators.closed_form import resolve_hparams
    from supernet import ConfigError, SearchSpaceError, get_architecture, get_space, parse_config_numbers

    entry = get_architecture(arch)
    hparams: dict[str, Any] = labels.hparams(arch)
    if blocks is not None:
        hparams[depth_parameter(arch)] = blocks
    chosen = get_space(space) if space is not None else None
    if chosen is not None:
        family_class = get_architecture(chosen.family).generator_class
        if not issubclass(entry.generator_class, family_class):
            raise SearchSpaceError(f"space {chosen.name} is for the {chosen.family} family; {arch} is "
                                   f"{entry.family}")
        hparams.setdefault("ngf", chosen.ngf)
        for name, value in chosen.hparams.items():  # what the space's layout fixes (a U-Net space: num_downs)
            if name in entry.parameters() and name not in entry.defaults:
                hparams.setdefault(name, value)
    if ngf is not None:
        hparams["ngf"] = ngf
    formula, resolved = resolve_hparams(arch, hparams)
    positions = formula.positions(resolved)
    if chosen is not None and chosen.num_positions != positions:
        raise SearchSpaceError(f"space {chosen.name} has {chosen.num_positions} positions; {arch} with "
                               f"{_describe(resolved)} has {positions}")
    numbers = None
    if config is not None:
        numbers = chosen.parse(config) if chosen is not None else parse_config_numbers(config)
        if len(numbers) != positions:
            raise ConfigError(f"config {config!r} has {len(numbers)} positions; {arch} with "
                              f"{_describe(resolved)} has {positions}")
        too_wide = [i for i, c in enumerate(numbers) if c > resolved["ngf"]]
        if too_wide:
            i = too_wide[0]
            raise ConfigError(f"config {config!r}: position {i} is {numbers[i]}; the {arch} supernet with ngf "
                              f"{resolved['ngf']} allows 1..{resolved['ngf']} (raise --ngf)")
    return MacsRequest(arch, hparams, numbers, size, chosen.name if chosen is not None else None)


def _describe(hparams: dict[str, Any]) -> str:
    shown = [k for k in ("ngf", *DEPTH_PARAMETERS, "num_upsampling_layers", "norm") if k in hparams]
    if "num_upsampling_layers" in hparams:  # a label map: its channels matter
        shown.append("input_nc")
    return ", ".join(f"{k} {hparams[k]}" for k in shown)


def count_request(request: MacsRequest, trace: bool = False):
    """Closed form, or a thop trace of the static generator built at the config.

    The trace builds the static subnet rather than the full supernet: a supernet at a config
    counts the same as its extracted subnet (tests/evaluators/test_closed_form.py) and the
    subnet is smaller, and it also covers architectures with no elastic version (deep_resnet).
    """
    from evaluators.closed_form import closed_form_count

    if not trace:
        return closed_form_count(request.arch, request.config, request.size, **request.hparams)
    from evaluators.macs import count_macs
    from supernet import create_generator

    generator = create_generator(request.arch, config=request.config, **request.hparams)
    return count_macs(generator, request.size)


def run_macs(args: argparse.Namespace) -> int:
    from evaluators.closed_form import resolve_hparams
    from evaluators.macs import format_count

    from supernet import format_config

    labels = LabelInput(args.label_nc, args.contain_dontcare, args.no_instance, args.num_upsampling_layers)
    request = build_request(args.arch, args.ngf, args.blocks, args.config, args.space, args.size, labels)
    count = count_request(request, args.trace)
    formula, hparams = resolve_hparams(request.arch, request.hparams)
    config = format_config(request.config or formula.default_config(hparams))
    height, width = request.size
    if args.json:
        print(json.dumps({
            "macs": count.macs, "params": count.params, "macs_g": round(count.macs / 1e9, 4),
            "params_m": round(count.params / 1e6, 6), "arch": request.arch, "hparams": hparams,
            "config": config, "full_width": request.config is None, "space": request.space,
            "size": [height, width], "method": "trace" if args.trace else "closed-form",
        }))
        return 0
    shown = config if request.config is not None else f"{config} (full width, static)"
    rows = [("arch", f"{request.arch} ({_describe(hparams)})"), ("config", shown)]
    if request.space:
        rows.append(("space", request.space))
    rows += [("size", f"{height}x{width}"), ("MACs", format_count(count.macs)),
             ("params", format_count(count.params)),
             ("method", "thop trace" if args.trace else "closed form")]
    print_table(rows)
    return 0
