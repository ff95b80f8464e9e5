"""``ganas train segmenter``: fit the segmenter mIoU uses, on the real photos of a labelled dataset.

argparse allows one ``train`` parser, owned by :mod:`nas.cli.commands.train`; it calls
:func:`register_train` to add ``segmenter`` to its sub-commands. :func:`register` adds nothing.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterator

from ..arguments import image_size


def register(subparsers: argparse._SubParsersAction) -> None:
    """Nothing at the top level: ``segmenter`` lives under ``ganas train`` (see :func:`register_train`)."""


def register_train(train_subparsers: argparse._SubParsersAction) -> None:
    parser = train_subparsers.add_parser(
        "segmenter", help="train the segmenter that mIoU runs on generated images",
        description="Train a small fully-convolutional segmenter on the real photos and label maps of a "
                    "labelled dataset's train split (cross-entropy, Adam, seeded), report its mIoU on the real "
                    "val photos (the ceiling a generator can reach) and save a checkpoint for "
                    "`ganas evaluate --metrics miou --segmenter PATH`.")
    parser.add_argument("--data", required=True, type=Path, help="labelled dataset folder (dataset.json, "
                                                                 "train/ and val/ with images/ and labels/)")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write")
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    parser.add_argument("--size", type=image_size, metavar="H|HxW",
                        help="train on random crops of this size (images resized by 286/256 first, as pix2pix) "
                             "and score val resized to it (default: the files' own size)")
    parser.add_argument("--arch", default="tiny_unet", help="registered segmenter: tiny_unet (default), dilated_fcn")
    parser.add_argument("--width", type=int, help="base channel width (default: the architecture's)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step (default 8)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, batch order and crops (default 0)")
    parser.add_argument("--val-split", default="val", help="split the mIoU ceiling is measured on (default val)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train_segmenter)


def _val_batches(dataset: Any) -> Iterator[tuple[Any, Any]]:
    """One image at a time: the confusion matrix sums pixels, so batching would not change the score."""
    for index in range(len(dataset)):
        item = dataset[index]
        yield item["B"].unsqueeze(0), item["label"].unsqueeze(0)


def run_train_segmenter(args: argparse.Namespace) -> int:
    from evaluators.metric_impls.segmentation import mean_iou
    from evaluators.segmenter import Segmenter, save_segmenter, train_segmenter
    from imagedata import Preprocess, create_dataset

    train_pre = Preprocess.for_size(args.size) if args.size else Preprocess(mode="none")
    val_pre = Preprocess(mode="resize", crop_size=args.size) if args.size else Preprocess(mode="none")
    train = create_dataset(args.data, "labelled", "train", preprocess=train_pre, seed=args.seed, train=True)
    val = create_dataset(args.data, "labelled", args.val_split, preprocess=val_pre, train=False)
    hparams = {"width": args.width} if args.width is not None else {}
    trained = train_segmenter(train, args.arch, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, device=args.device, progress=not args.quiet, **hparams)
    spec = train.spec
    segmenter = Segmenter(trained.network, spec.num_classes, f"training:{args.arch}")
    val_miou = mean_iou(segmenter, _val_batches(val), spec.num_classes, spec.ignore_index)
    dataset = {"root": str(args.data.resolve()), "layout": "labelled", "split": "train",
               "hash": train.fingerprint(), "val_split": args.val_split, "val_hash": val.fingerprint(),
               "classes": list(spec.classes), "ignore_index": spec.ignore_index}
    size = tuple(args.size) if args.size else tuple(train[0]["B"].shape[-2:])
    path = save_segmenter(trained.network, args.out, trained.arch, trained.hparams, spec.num_classes, spec.classes,
                          dataset, val_miou, trained.steps, size)
    if args.json:
        print(json.dumps({"out": str(path), "arch": trained.arch, "steps": trained.steps,
                          "seconds": trained.seconds, "final_loss": trained.losses[-1], "val_miou": val_miou,
                          "num_classes": spec.num_classes, "val_images": len(val), "dataset_hash": dataset["hash"]}))
        return 0
    print(f"trained {trained.arch} segmenter: {trained.steps} steps in {trained.seconds:.1f} s, final loss "
          f"{trained.losses[-1]:.4f}")
    print(f"mIoU on the {len(val)} real {args.val_split} images ({spec.num_classes} classes): {val_miou:.4f} "
          "(the ceiling a generator can reach with this segmenter)")
    print(f"saved {path}")
    return 0
