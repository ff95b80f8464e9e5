"""``ganas data``: list, make, check and split datasets (see docs/datasets.md)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="built-in datasets, layout checks and the train1/train2 split",
                                 description="Make built-in datasets, check dataset folders, split training sets.")
    commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="list the built-in dataset makers and the folder layouts")
    listing.set_defaults(func=_list)

    make = commands.add_parser("make", help="generate a built-in dataset from a seed (no download)")
    make.add_argument("name", help="maker name (see `ganas data list`)")
    make.add_argument("--out", required=True, type=Path, help="output folder (must not exist or be empty)")
    make.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    make.add_argument("--count", type=int, default=200, help="training images, per domain if unpaired (default 200)")
    make.add_argument("--val-count", type=int, default=None, help="validation images (default count/4, at least 1)")
    make.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files (default 0)")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=_make)

    check = commands.add_parser("check", help="detect the layout and read every file of every split")
    check.add_argument("root", type=Path, help="dataset folder")
    check.add_argument("--layout", default="auto", help="aligned, unaligned, labelled or auto (default: detect)")
    check.add_argument("--direction", default="AtoB", help="AtoB or BtoA (default AtoB)")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=_check)

    split = commands.add_parser("split", help="hold out part of train as train2 (for search), record it in split.json")
    split.add_argument("root", type=Path, help="dataset folder")
    split.add_argument("--layout", default="auto", help="aligned, unaligned, labelled or auto (default: detect)")
    amount = split.add_mutually_exclusive_group(required=True)
    amount.add_argument("--holdout", type=float, help="fraction of the training files held out, e.g. 0.2")
    amount.add_argument("--holdout-count", type=int, help="number of training files held out (per domain if unpaired)")
    split.add_argument("--seed", type=int, default=0, help="seed of the division (default 0)")
    split.set_defaults(func=_split)


def _layout(text: str) -> str | None:
    return None if text == "auto" else text


def _list(args: argparse.Namespace) -> int:
    from imagedata import get_layout, get_maker, list_layouts, list_makers

    print("dataset makers (ganas data make NAME --out DIR):")
    for name in list_makers():
        entry = get_maker(name)
        print(f"  {name:<15} {entry.description} -> {', '.join(entry.layouts)}")
    print("folder layouts (--layout):")
    for name in list_layouts():
        print(f"  {name:<15} {get_layout(name).description}")
    return 0


def _make(args: argparse.Namespace) -> int:
    from imagedata import MakeOptions, make_dataset

    val_count = args.val_count if args.val_count is not None else max(1, args.count // 4)
    options = MakeOptions(size=args.size, count=args.count, val_count=val_count, seed=args.seed)
    result = make_dataset(args.name, args.out, options, progress=not args.quiet)
    counts = ", ".join(f"{n} {split}" for split, n in result.counts.items())
    print(f"made {result.maker} (seed {options.seed}, {options.size}px, {counts})")
    for layout, root in result.layouts.items():
        print(f"  {layout:<10} {root}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from imagedata import SPLIT_FILE, create_dataset, detect_layout, get_layout

    if args.layout == "auto":
        detection = detect_layout(args.root)
        print(detection.describe())
        layout = detection.layout
    else:
        layout = args.layout
        print(f"{args.root}: {get_layout(layout).layout} layout (given)")
    splits = get_layout(layout).available_splits(args.root)
    if (args.root / SPLIT_FILE).is_file():
        splits += ["train1", "train2"]
    if not splits:
        create_dataset(args.root, layout, "train")  # raises the error that says what is missing
    for split in splits:
        dataset = create_dataset(args.root, layout, split, direction=args.direction)
        # train1/train2 are subsets of train, whose files were just read: check the record only
        files = len(dataset.files.all_files()) if split in ("train1", "train2") else \
            dataset.validate(progress=not args.quiet)
        print(f"  {split:<7} {len(dataset):>6} items {files:>6} files ok  content {dataset.fingerprint()[:16]}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from imagedata import SPLIT_FILE, split_dataset

    record = split_dataset(args.root, _layout(args.layout), seed=args.seed, fraction=args.holdout,
                           count=args.holdout_count)
    for part in ("train1", "train2"):
        counts = ", ".join(f"{len(files)} {role}" for role, files in record.parts[part].roles.items())
        print(f"  {part}: {counts}  content {record.hashes[part][:16]}")
    print(f"wrote {args.root / SPLIT_FILE} ({record.layout} layout, seed {record.seed})")
    return 0
