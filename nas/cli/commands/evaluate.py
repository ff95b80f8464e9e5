"""``ganas evaluate``: score a generator or a supernet subnet on a dataset split (FID, KID, mIoU, PSNR, SSIM, latency,
and fidelity to a teacher: teacher-psnr, teacher-ssim, teacher-perceptual with ``--teacher FILE``).

The checkpoint is a ganas generator or supernet checkpoint; ``--config`` picks a subnet of a
supernet (default: full width). Real-image statistics are cached under ``<workspace>/cache``
(or ``--cache DIR``), keyed by the split's content hash, the image size and the extractor.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ..arguments import image_size, teacher_state_dict_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a generator or supernet subnet: fid, kid, miou, psnr, ssim, latency",
        description="Evaluate a ganas generator checkpoint (or a supernet at --config) on a dataset split. "
                    "Metrics: fid, kid (feature extractor vs cached real statistics), miou (segmenter on "
                    "generated images vs label maps), psnr, ssim (vs paired ground truth), latency (batch 1), "
                    "teacher-psnr, teacher-ssim, teacher-perceptual (vs the outputs of --teacher on the same "
                    "inputs). See docs/evaluation.md.")
    parser.add_argument("--checkpoint", required=True, type=Path, help="ganas generator or supernet checkpoint")
    parser.add_argument("--config", help="subnet of a supernet, channel numbers joined by '_' (default: full width)")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder")
    parser.add_argument("--split", default="val", help="split to evaluate on: val (default), test, train, train2, ...")
    parser.add_argument("--layout", default="auto", help="aligned, unaligned, labelled or auto (default: detect)")
    parser.add_argument("--direction", default="AtoB", help="AtoB (default) or BtoA")
    parser.add_argument("--metrics", default="fid", help="comma-separated metrics (default fid): fid,kid,miou,psnr,"
                                                         "ssim,latency,teacher-psnr,teacher-ssim,teacher-perceptual")
    parser.add_argument("--size", type=image_size, metavar="H|HxW",
                        help="resize every image to this size (default: keep the files' size, which must be one)")
    parser.add_argument("--extractor", default="inception",
                        help="FID/KID features: inception (default), inception-pytorch-fid, or a TorchScript file")
    parser.add_argument("--inception-weights", metavar="PATH", help="FID Inception weights file or its folder "
                        "(default: $GANAS_INCEPTION_WEIGHTS, then $TORCH_HOME/hub/checkpoints)")
    parser.add_argument("--segmenter", metavar="PATH", help="for miou: a `ganas train segmenter` checkpoint or a "
                                                            "TorchScript segmenter (images -> logits)")
    parser.add_argument("--teacher", type=Path, metavar="FILE",
                        help="for teacher-*: the teacher whose outputs to compare with (any teacher file ganas "
                             "reads: docs/teachers.md)")
    teacher_state_dict_flags(parser)
    parser.add_argument("--vgg-weights", metavar="PATH", help="for teacher-perceptual: vgg16-397923af.pth or its "
                        "folder (default: $GANAS_VGG16_WEIGHTS, then $TORCH_HOME/hub/checkpoints)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="folder of cached real-image statistics (default: <workspace>/cache)")
    parser.add_argument("--no-cache", action="store_true", help="compute real-image statistics without caching")
    parser.add_argument("--workspace", help="workspace folder (default $GANAS_WORKSPACE or ./ganas-workspace)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    parser.add_argument("--kid-subset-size", type=int, default=1000,
                        help="images per KID subset (default 1000); needs at least that many images per side")
    parser.add_argument("--latency-backend", default="eager", help="eager (default), torchscript or onnxruntime")
    parser.add_argument("--latency-runs", type=int, default=20, help="timed latency runs (default 20)")
    parser.add_argument("--grid", type=Path, metavar="PNG", help="also write input | generated | target rows here")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_evaluate)


def _cache_dir(args: argparse.Namespace) -> Path | None:
    if args.no_cache:
        return None
    if args.cache is not None:
        return args.cache
    from nas.workspace import Workspace

    return Workspace.resolve(args.workspace).cache


def _teacher(args: argparse.Namespace):
    """The ``--teacher`` generator and its identity (file and SHA-256), or (None, None)."""
    if args.teacher is None:
        return None, None
    from evaluators.evaluate import teacher_identity
    from foundation.hashing import bytes_sha256
    from supernet.errors import CheckpointError
    from supernet.foreign import read_key_map
    from supernet.teachers import TeacherOptions, load_teacher

    if not args.teacher.is_file():
        raise CheckpointError(f"teacher {args.teacher} does not exist; give the teacher file with --teacher FILE")
    data = args.teacher.read_bytes()
    options = TeacherOptions(args.teacher_arch, {"ngf": args.teacher_ngf} if args.teacher_ngf else {},
                             read_key_map(args.teacher_map) if args.teacher_map is not None else None)
    loaded = load_teacher(data, str(args.teacher), options)
    return loaded.generator, teacher_identity(args.teacher.resolve(), bytes_sha256(data))


def run_evaluate(args: argparse.Namespace) -> int:
    from evaluators.evaluate import EvaluationSettings, Evaluator
    from evaluators.metrics import MetricOptions
    from imagedata import Preprocess, create_dataset, write_png
    from supernet import format_config, parse_config_numbers
    from supernet.checkpoint import generator_from_record, read_checkpoint

    generator = generator_from_record(read_checkpoint(args.checkpoint), str(args.checkpoint))
    config = parse_config_numbers(args.config) if args.config else None
    preprocess = Preprocess(mode="resize", crop_size=args.size) if args.size else Preprocess(mode="none")
    layout = None if args.layout == "auto" else args.layout
    dataset = create_dataset(args.data, layout, args.split, preprocess=preprocess, direction=args.direction,
                             train=False)
    options = MetricOptions(kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                            latency_backend=args.latency_backend, latency_runs=args.latency_runs)
    settings = EvaluationSettings(batch_size=args.batch_size, size=args.size, extractor=args.extractor,
                                  inception_weights=args.inception_weights, segmenter=args.segmenter,
                                  cache_dir=_cache_dir(args), device=args.device, options=options,
                                  progress=not args.quiet)
    teacher, identity = _teacher(args)
    settings = replace(settings, teacher=teacher, teacher_identity=identity, vgg_weights=args.vgg_weights)
    evaluator = Evaluator(dataset, args.metrics, settings)
    result = evaluator.evaluate(generator, config)
    if args.grid is not None:
        write_png(args.grid, evaluator.sample_grid(generator, config, reference=teacher))
    shown_config = format_config(config if config is not None else generator.config)
    if args.json:
        print(json.dumps({**result.to_json(), "checkpoint": str(args.checkpoint), "arch": generator.arch,
                          "config_str": shown_config, "data": str(args.data), "split": args.split,
                          "reference_cache_hit": evaluator.reference_cache_hit}))
        return 0
    kind = "supernet" if generator.elastic else "generator"
    print(f"{generator.arch} {kind} at {shown_config} on {dataset.layout} {args.data} ({args.split}): "
          f"{result.num_images} images at {result.size[0]}x{result.size[1]}")
    width = max(len(name) for name in result.metrics)
    for name, value in result.metrics.items():
        print(f"  {name:<{width}}  {value:.6g}  ({result.directions[name]}; {result.identities[name]})")
    for name, value in result.extras.items():
        print(f"  {name}  {value:.6g}")
    cache = {None: "not used", True: "hit", False: "computed and stored"}[evaluator.reference_cache_hit] \
        if settings.cache_dir is not None else "off"
    print(f"  seconds: {result.seconds_total:.2f} total, {result.seconds_generating:.2f} generating, "
          f"{result.seconds_metrics:.2f} in metrics; real statistics cache: {cache}")
    if args.grid is not None:
        print(f"  sample grid: {args.grid}")
    return 0
