"""Cost of evaluating one search candidate on CPU: seconds per 100 images, generation vs each metric.

A search worker evaluates a supernet at a config on the held-out split: generate every image,
then FID/KID (Inception-v3 features of the generated images against cached real statistics),
mIoU (a segmenter on the generated images) and PSNR/SSIM. This script builds the worker's
:class:`evaluators.evaluate.Evaluator` on a ``labels2scene`` split (made here, seeded) at each
size, evaluates the mobile ResNet supernet at GAN Compression's CycleGAN subnet, and reports
the time of each per-image part scaled to 100 images, each metric's fixed per-candidate work
(FID's n x n eigen-problem, KID's subsets), and the evaluator's one-off setup (the real-image
pass the cache saves next time, and FID's real-covariance square root).

The FID Inception-v3 runs with *random* weights (the standard weights are not downloaded): it
is the same network at the same 299x299 input, so it costs the same; the FID values it gives
mean nothing and are not printed. The segmenter is an untrained ``tiny_unet`` for the same reason.

    python bench/bench_evaluate.py                       # 100 images at 64x64 and 256x256
    python bench/bench_evaluate.py --images 20 --sizes 64 --json cost.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from evaluators.evaluate import EvaluationSettings, Evaluator
from evaluators.features import InceptionExtractor
from evaluators.inception import FIDInceptionV3
from evaluators.metrics import MetricOptions
from evaluators.segmenter import Segmenter, create_segmenter_network
from imagedata import MakeOptions, Preprocess, create_dataset, make_dataset
from supernet import create_generator, parse_config_numbers

GAN_COMPRESSION_CYCLEGAN = "16_16_24_16_32_64_16_24"  # the published horse2zebra subnet, 2.67G MACs at 256
METRICS = "fid,kid,miou,psnr,ssim"
PER_IMAGE = ("loading", "generating", "features", "segmenter", "fid", "kid", "miou", "psnr", "ssim")
PER_CANDIDATE = tuple(f"{name}:compute" for name in METRICS.split(","))


def random_inception(seed: int = 0) -> InceptionExtractor:
    torch.manual_seed(seed)
    return InceptionExtractor(FIDInceptionV3().eval())


def random_segmenter(classes: int, seed: int = 0) -> Segmenter:
    torch.manual_seed(seed)
    return Segmenter(create_segmenter_network("tiny_unet", classes), classes, "random-tiny-unet")


def measure(size: int, images: int, config: tuple[int, ...], batch_size: int, repeats: int, folder: Path) -> dict:
    """Per-image parts scaled to 100 images, per-candidate parts as measured (medians over ``repeats``
    evaluations of the same config), and the evaluator's one-off setup (real-image pass + FID's real root)."""
    made = make_dataset("labels2scene", folder / f"scene{size}",
                        MakeOptions(size=size, count=1, val_count=images, seed=0), progress=False)
    dataset = create_dataset(made.layouts["labelled"], "labelled", "val", preprocess=Preprocess(mode="none"),
                             train=False)
    settings = EvaluationSettings(batch_size=batch_size, extractor=random_inception(),
                                  segmenter=random_segmenter(dataset.spec.num_classes),
                                  cache_dir=folder / "cache", options=MetricOptions(kid_subset_size=images))
    start = time.perf_counter()
    evaluator = Evaluator(dataset, METRICS, settings)
    setup = time.perf_counter() - start
    torch.manual_seed(0)
    supernet = create_generator("mobile_resnet", elastic=True)
    results = [evaluator.evaluate(supernet, config) for _ in range(repeats)]
    median = lambda values: float(statistics.median(values))  # noqa: E731
    scale = 100.0 / images
    per_image = {part: median([r.seconds_by_part.get(part, 0.0) for r in results]) * scale for part in PER_IMAGE}
    per_candidate = {part: median([r.seconds_by_part.get(part, 0.0) for r in results]) for part in PER_CANDIDATE}
    total = median([r.seconds_total for r in results])
    return {"size": size, "images": images, "repeats": repeats, "setup_seconds_once": setup,
            "candidate_seconds_total": total, "per_100_images": per_image, "per_candidate": per_candidate}


def print_table(rows: list[dict]) -> None:
    header = ["part"] + [f"{row['size']}x{row['size']}" for row in rows]
    lines = [header, ["seconds per 100 images"] + [""] * len(rows)]
    lines += [[f"  {name}"] + [f"{row['per_100_images'][name]:.2f}" for row in rows] for name in PER_IMAGE]
    lines.append(["seconds per candidate (fixed)"] + [""] * len(rows))
    lines += [[f"  {name}"] + [f"{row['per_candidate'][name]:.3f}" for row in rows] for name in PER_CANDIDATE]
    lines.append(["candidate total (s, measured)"] + [f"{row['candidate_seconds_total']:.2f}" for row in rows])
    lines.append(["evaluator setup once (s)"] + [f"{row['setup_seconds_once']:.2f}" for row in rows])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256", help="square image sizes, comma-separated (default 64,256)")
    parser.add_argument("--images", type=int, default=100, help="evaluation images per size (default 100)")
    parser.add_argument("--config", default=GAN_COMPRESSION_CYCLEGAN, help="mobile_resnet subnet config")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="evaluations of the candidate; medians (default 3)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = parse_config_numbers(args.config)
    with tempfile.TemporaryDirectory(prefix="ganas-bench-evaluate-") as tmp:
        rows = [measure(int(size), args.images, config, args.batch_size, args.repeats, Path(tmp))
                for size in args.sizes.split(",")]
    machine = {"python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "platform": platform.platform(),
               "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    print(f"mobile_resnet supernet at {args.config}, batch {args.batch_size}, {args.images} images per size, "
          f"{machine['threads']} threads, load average {machine['load_average']:.1f}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "config": args.config, "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
