"""``ganas demo``: the whole pipeline on the built-in labelled task (the README's first command)."""
from __future__ import annotations

import argparse

from ..arguments import store_flag, workspace_of


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole pipeline on built-in data: teacher, supernet, search, finalize",
        description="Makes the labels2scene dataset, trains a pix2pix teacher, distils a GAN Compression supernet, "
                    "trains a segmenter for mIoU, searches the supernet under three MACs budgets with Ray workers, "
                    "and finalizes the best subnet per budget (fine-tuned, measured next to the teacher on val, "
                    "exported, registered in MLflow). Defaults take about 10 minutes on 2 CPU cores at 64x64; "
                    "running it again reuses (or resumes) every finished stage.")
    p.add_argument("--workspace", default=None, help="default ./ganas-workspace or $GANAS_WORKSPACE")
    store_flag(p)
    p.add_argument("--quick", action="store_true", help="a tiny run of every stage (about a minute)")
    p.add_argument("--workers", type=int, default=None, help="Ray workers (default 2)")
    p.add_argument("--trials", type=int, default=None, help="candidates to evaluate (default 32)")
    p.add_argument("--executor", default="ray", choices=["ray", "local"])
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    from nas.demo import DemoSettings, run_demo

    overrides = {k: v for k, v in (("workers", args.workers), ("trials", args.trials)) if v is not None}
    overrides.update(executor=args.executor, progress=not args.quiet)
    settings = DemoSettings.quick(**overrides) if args.quick else DemoSettings(**overrides)
    run_demo(workspace_of(args), settings)
    return 0
