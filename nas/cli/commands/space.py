"""``ganas space list`` and ``ganas space show``: the registered channel search spaces."""
from __future__ import annotations

import argparse
import json
from typing import Any

from ..arguments import image_size
from ..output import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("space", help="list and inspect the registered channel search spaces")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every registered space: name, family, positions, size, description")
    listing.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    listing.set_defaults(func=run_list)
    show = actions.add_parser("show", help="a space's positions and choices, its size, its MACs range")
    show.add_argument("space", metavar="SPACE", help="registered space name (see `ganas space list`)")
    show.add_argument("--size", type=image_size, default=(256, 256), metavar="H|HxW",
                      help="input image size for the MACs range, height x width (default 256)")
    show.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    show.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    from supernet import get_space, list_spaces

    spaces = [get_space(name) for name in list_spaces()]
    if args.json:
        print(json.dumps({"spaces": [
            {"name": s.name, "family": s.family, "architecture": s.architecture, "ngf": s.ngf,
             "positions": s.num_positions, "size": s.size, "description": s.description} for s in spaces
        ]}))
        return 0
    print_table([(s.name, s.family, s.num_positions, f"{s.size:,}", s.description) for s in spaces],
                header=("NAME", "FAMILY", "POSITIONS", "SUBNETS", "DESCRIPTION"))
    return 0


def describe_space(name: str, size: tuple[int, int]) -> dict[str, Any]:
    """A space's layout and, in closed form, its smallest and largest subnets at ``size``.

    MACs and parameters grow with every width (all terms of the closed form are products of
    widths with positive coefficients), so the extremes are the all-smallest and all-largest configs.
    """
    from evaluators.closed_form import space_count, space_hparams
    from supernet import format_config, get_space

    space = get_space(name)
    extremes = {}
    for label, config in (("smallest", space.smallest()), ("largest", space.largest())):
        count = space_count(space, config, size)
        extremes[label] = {"config": format_config(config), "macs": count.macs, "params": count.params}
    return {
        "name": space.name, "family": space.family, "architecture": space.architecture,
        "hparams": space_hparams(space), "description": space.description, "subnets": space.size,
        "positions": [{"index": i, "name": n, "choices": list(c)}
                      for i, (n, c) in enumerate(zip(space.position_names, space.choices))],
        "size": list(size), **extremes,
    }


def run_show(args: argparse.Namespace) -> int:
    from evaluators.macs import format_count

    info = describe_space(args.space, args.size)
    if args.json:
        print(json.dumps(info))
        return 0
    hparams = ", ".join(f"{k} {v}" for k, v in info["hparams"].items())
    print_table([("space", info["name"]), ("description", info["description"]),
                 ("family", f"{info['family']} (supernet: {info['architecture']}, {hparams})"),
                 ("subnets", f"{info['subnets']:,}")])
    print()
    print_table([(p["index"], p["name"], " ".join(map(str, p["choices"]))) for p in info["positions"]],
                header=("#", "POSITION", "CHOICES"))
    print()
    height, width = info["size"]
    print_table([(label, info[label]["config"], format_count(info[label]["macs"]),
                  format_count(info[label]["params"])) for label in ("smallest", "largest")],
                header=(f"AT {height}x{width}", "CONFIG", "MACS", "PARAMS"))
    return 0
