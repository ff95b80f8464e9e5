"""``ganas export``: write a subnet (from a supernet or a static generator checkpoint) as a deployable file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..arguments import image_size

# Listed here so ``ganas --help`` needs no torch import; a test keeps it equal to list_formats().
FORMAT_NAMES = ("onnx", "pt2", "torchscript")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a subnet as ONNX, a torch.export archive (.pt2) or TorchScript",
        description="Export a subnet for deployment. From a supernet checkpoint, --config picks the subnet "
                    "(extracted with its shared weights); a static generator checkpoint is exported as is. "
                    "The file is then loaded with its own runtime and checked against PyTorch.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="ganas generator checkpoint: a supernet or a static generator, as ganas train writes it")
    parser.add_argument("--config", help="subnet config string, e.g. 16_16_24_16_32_64_16_24 "
                                         "(required for a supernet; for a static generator it must match)")
    parser.add_argument("--format", required=True, metavar="FORMAT",
                        help=f"one of {', '.join(FORMAT_NAMES)} (pt2: torch.export archive; torchscript is "
                             "deprecated in torch 2.13)")
    parser.add_argument("--out", required=True, type=Path, help="output file")
    parser.add_argument("--size", type=image_size, default=(256, 256), metavar="H|HxW",
                        help="input size the program is exported at (default 256); a multiple of the "
                             "generator's downsampling factor")
    parser.add_argument("--dynamic", action="append", default=[], metavar="AXES",
                        help="keep 'batch' and/or 'spatial' dimensions free (pt2, onnx); repeat or join with ','")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |exported - PyTorch| output difference accepted (default 1e-4)")
    parser.add_argument("--no-verify", action="store_true", help="skip running the exported file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from supernet.export import (ExportError, export_generator, generator_for_export, get_format,
                                 input_spec, verify_export)

    fmt = get_format(args.format)  # bad flags fail before the checkpoint is read
    dynamic = sorted({axis.strip() for value in args.dynamic for axis in value.split(",") if axis.strip()})
    generator = generator_for_export(args.checkpoint, args.config)
    spec = input_spec(generator, args.size, fmt, dynamic)
    path = export_generator(generator, args.out, fmt.name, args.size, dynamic)
    params = sum(p.numel() for p in generator.parameters())
    shape = "x".join(map(str, spec.shape))
    print(f"exported {generator.arch} {'_'.join(map(str, generator.config))} -> {path} "
          f"({fmt.name}, {path.stat().st_size / 2**20:.2f} MiB, {params:,} parameters)")
    print(f"input {shape}" + (f", dynamic {' and '.join(dynamic)}" if dynamic else ", static shape"))
    if fmt.note:
        print(f"note: {fmt.note}")
    if args.no_verify:
        return 0
    check = verify_export(generator, path, fmt.name, args.size, dynamic)
    shapes = ", ".join("x".join(map(str, s)) for s in check.shapes)
    if check.max_abs_diff > args.tolerance:
        raise ExportError(f"{path} was written but its output differs from PyTorch by {check.max_abs_diff:.3g} "
                          f"(tolerance {args.tolerance:g}, inputs {shapes}); do not deploy it")
    print(f"verified on {shapes}: max |exported - PyTorch| = {check.max_abs_diff:.2e} (tolerance {args.tolerance:g})")
    return 0
