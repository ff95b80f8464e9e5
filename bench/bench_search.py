"""Search throughput with 1 and 2 Ray workers, and the orchestrator's overhead per candidate.

Builds (once) a supernet on the built-in labels2scene task, then runs the same random search
(same seed, so the same configs) with 1 and with 2 workers and reports, from the store's own
timestamps:

- throughput: candidates per second between the first lease and the last result (Ray start-up
  and model loading excluded; they are reported separately);
- overhead: (wall time per candidate x workers - mean evaluation time) / mean evaluation time,
  i.e. what leasing, dispatch, recording, MLflow logging and the strategy cost beyond evaluating.

Run from the repository root:  python bench/bench_search.py [--trials 32] [--size 64] [--images 40]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def build(root: Path, size: int, images: int):
    from distill.jobs import DataSpec
    from imagedata import MakeOptions, make_dataset
    from nas.registry import register_supernet
    from nas.store import Store
    from nas.workspace import Workspace
    from supernet import create_generator, save_generator

    make_dataset("labels2scene", root / "data", MakeOptions(size=size, count=2 * images, val_count=4), progress=False)
    data = DataSpec(root / "data" / "labelled", size=size, holdout=0.5)
    data.ensure_split(0)
    torch.manual_seed(0)
    supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=6)
    checkpoint = save_generator(supernet, root / "supernet.pt", kind="supernet", space="channels-16",
                                dataset=data.describe("train1", 0), method="bench")
    workspace = Workspace(root / "ws").ensure()
    with Store(workspace.database_url) as store:
        register_supernet(store, checkpoint, "bench", workspace=workspace)
    return workspace


def run(workspace, workers: int, trials: int, seed: int) -> dict:
    from nas.orchestrator import Orchestrator, OrchestratorSettings
    from nas.search_setup import create_search
    from nas.store import CandidateStatus, Store

    with Store(workspace.database_url) as store:
        search = create_search(store, "bench", budgets=[10**12], metric="ssim", strategy="random", trials=trials,
                               seed=seed, batch_size=8)
        settings = OrchestratorSettings(workers=workers, executor="ray", progress=False, threads_per_worker=1)
        start = time.perf_counter()
        Orchestrator(store, workspace, search.id, settings, log=lambda m: None).run()
        total = time.perf_counter() - start
        done = store.candidates(search.id, CandidateStatus.DONE)
    first, last = min(c.leased_at for c in done), max(c.finished_at for c in done)
    loop = last - first
    evals = [c.eval_seconds for c in done]
    per_candidate = loop / len(done)
    mean_eval = statistics.mean(evals)
    return {"workers": workers, "candidates": len(done), "total_s": total, "loop_s": loop,
            "startup_s": total - loop, "throughput": len(done) / loop, "mean_eval_s": mean_eval,
            "overhead": (per_candidate * workers - mean_eval) / mean_eval,
            "configs": sorted(c.config for c in done)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=40, help="held-out images scored per candidate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ganas-bench-") as folder:
        workspace = build(Path(folder), args.size, args.images)
        results = [run(workspace, w, args.trials, args.seed) for w in (1, 2)]
    one, two = results
    assert one["configs"] == two["configs"], "the same seed must evaluate the same configs with 1 and 2 workers"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in the driver, 1 thread per worker; "
          f"{args.trials} candidates, {args.images} images of {args.size}x{args.size} each, metric ssim")
    print("| workers | candidates | start-up (s) | search loop (s) | candidates/s | mean evaluation (s) | overhead |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['workers']} | {r['candidates']} | {r['startup_s']:.1f} | {r['loop_s']:.1f} | "
              f"{r['throughput']:.2f} | {r['mean_eval_s']:.3f} | {100 * r['overhead']:.1f}% |")
    speedup = two["throughput"] / one["throughput"]
    print(f"speed-up with 2 workers: {speedup:.2f}x (target >= 1.7x); overhead with 1 worker: "
          f"{100 * one['overhead']:.1f}% (target <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
