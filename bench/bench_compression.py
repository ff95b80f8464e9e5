"""Compression at the teacher's quality on labels2scene: search + finalize winners vs fixed-width baselines.

Per seed, in one resumable work folder (every stage is skipped when its output exists):

1. the demo's pix2pix teacher (ResNet, ngf 32, 6 blocks);
2. the demo's GAN Compression supernet (``channels-16``) and an OMGD supernet of the same space and steps
   (wide + deep teachers trained online, ``--perceptual none``), each registered in the folder's workspace
   with the teacher as its reference;
3. the demo's search on each supernet (evolution, mIoU on train2, its budgets and trial count, local executor);
4. ``nas.finalize``: the best config per budget fine-tuned (GAN Compression's recipe), measured and exported;
   ``--pipelines ... omgd-online`` adds the OMGD supernet's winners fine-tuned with the online recipe
   (OMGD's way, from the registered teacher), in a search of their own (the same seeded search);
5. baselines at the same total steps (supernet + fine-tune), at widths ngf 8 and 12 of the supernet's
   student (mobile ResNet, its depth): OMGD static students (wide + deep teachers, ``--perceptual none``)
   and the same networks trained alone as pix2pix generators. Equal steps, not equal images: the
   baselines and finalize's fine-tuning both train at batch 4 (the demo's), and the pix2pix baselines
   train on all of train (as the teacher does), not train1 only, which favours them;
6. every model scored on ``val`` by one evaluator (mIoU with the shared segmenter, PSNR vs the ground
   truth), MACs by the closed form, batch-1 CPU latency measured side by side in this process.

The dataset (``labels2scene``, seeded as the demo) and the segmenter (it scores, it is not compared)
are made once for all seeds. Prints a markdown table (mean ± std over seeds) and whether the target
holds: >= 20x fewer MACs at <= 2% mIoU below the teacher, and a front that dominates the baselines.

    python bench/bench_compression.py --out ganas-workspace/bench/compression        # 3 seeds, 64x64
    python bench/bench_compression.py --smoke --out /tmp/compression-smoke           # plumbing, 32 px

At 64x64 the demo's budgets (35M, 50M, 70M) leave the ngf-8 baselines (25.46M MACs) below every
winner, so nothing can dominate them, and a 35M winner may have fewer than 20x the teacher's 680.3M.
Adding ``--budgets 25460736 34013184 35000000 50000000 70000000`` (the ngf-8 MACs, where only the all-8
subnet fits, and the teacher's / 20) makes both parts of the target checkable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from compression_table import BASELINE, TEACHER, WINNER, Measured, aggregate, describe, table, verdict
from distill.gan_compression import GANCompressionSettings
from distill.jobs import DataSpec, TeacherSource, train_gan_compression, train_omgd, train_teacher
from distill.loop import LoopSettings
from distill.losses import OMGDStudentLoss
from distill.omgd import OMGDSettings
from distill.teacher import TeacherSettings
from evaluators.closed_form import generator_count
from evaluators.evaluate import EvaluationSettings, Evaluator
from evaluators.latency import measure_latency
from nas.budget import format_macs
from nas.demo import DemoSettings, _make_data, _search, _segmenter
from nas.finalize import Choice, FinalizeSettings, Finalizer, choose
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.search_setup import create_search
from nas.registry import register_supernet
from nas.store import FinalStatus, Store
from nas.workspace import Workspace
from supernet.checkpoint import load_generator

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (8, 12)  # fixed-width baselines (default): the smallest and middle widths of channels-16
LAMBDA_CD = 10.0  # `ganas train supernet --method omgd` default
LOG_EVERY = 200


class Clock:
    """Prints each stage with its wall time; keeps the times of stages run now in OUT/timings.json."""

    def __init__(self, out: Path):
        self.file, self.started = out / "timings.json", time.perf_counter()
        self.timings = json.loads(self.file.read_text()) if self.file.exists() else {}

    def run(self, key: str, label: str, done: bool, work):
        if done:
            print(f"[{self.elapsed()}] {key}: {label} (kept from an earlier run)", flush=True)
            return None
        print(f"[{self.elapsed()}] {key}: {label} ...", flush=True)
        t0 = time.perf_counter()
        result = work()
        self.timings[key] = round(time.perf_counter() - t0, 1)
        self.file.write_text(json.dumps(self.timings, indent=1))
        print(f"[{self.elapsed()}] {key}: {self.timings[key]:.0f} s", flush=True)
        return result

    def elapsed(self) -> str:
        return f"{time.perf_counter() - self.started:6.0f}s"


def _finished(path: Path, trained: Path) -> None:
    if trained != path:
        raise SystemExit(f"{path.parent}: training stopped before its last step ({trained}); run again to resume")


def _resumed(path: Path) -> bool:
    return (path.parent / "last.pt").exists()


def _loop(s: DemoSettings, steps: int) -> LoopSettings:
    return LoopSettings(steps, s.train_batch, s.seed, LOG_EVERY)


def teacher(s: DemoSettings, data: DataSpec, seed_dir: Path, clock: Clock, progress: bool) -> Path:
    """The demo's pix2pix teacher (its stage 2 settings), for one seed."""
    path = seed_dir / "teacher" / "teacher.pt"
    settings = TeacherSettings(arch="resnet", hparams={"ngf": s.teacher_ngf, "n_blocks": s.blocks}, gan_mode="lsgan",
                               ndf=32)
    clock.run(f"seed {s.seed}/teacher", f"pix2pix teacher ResNet ngf {s.teacher_ngf}, {s.teacher_steps} steps",
              path.exists(), lambda: _finished(path, train_teacher(
                  "pix2pix", data, settings, _loop(s, s.teacher_steps), path.parent, _resumed(path), progress)))
    return path


@dataclass(frozen=True)
class Pipeline:
    """How one supernet of a seed is trained and its winners fine-tuned, and where its stages keep their outputs."""

    label: str  # in stage names and table rows
    folder: str  # seed_dir/<folder>/supernet.pt (pipelines of one supernet share it and its registration)
    suffix: str  # search<suffix>.json, finals<suffix>.json
    recipe: str = "gan-compression"  # finalize's fine-tuning recipe
    own_search: bool = False  # a search of its own (a config is finalized once per search), same settings and seed

    @property
    def registered_name(self) -> str:
        return f"bench-compression{self.folder.removeprefix('supernet').replace('_', '-')}"

    def reference(self, teacher_path: Path) -> Path | None:
        """The teacher to register the supernet with: GAN Compression's checkpoint names its own."""
        return None if self.folder == "supernet" else teacher_path

    def train(self, s: DemoSettings, data: DataSpec, teacher_path: Path, out: Path, resume: bool,
              progress: bool) -> Path:
        loop = _loop(s, s.supernet_steps)
        if self.folder == "supernet":  # the demo's GAN Compression supernet (its stage 3)
            gc = GANCompressionSettings(space=s.space, task="paired", ndf=32, sampling="sandwich")
            return train_gan_compression(data, TeacherSource(teacher_path), gc, loop, out, resume, progress)
        # `ganas train supernet --method omgd --space channels-16 --blocks 6 --perceptual none --ndf 32`
        omgd = OMGDSettings(student_arch="mobile_resnet", student_hparams={"n_blocks": s.blocks}, space=s.space,
                            teachers="both", student_loss=_omgd_student_loss(), gan_mode="hinge", ndf=32)
        return train_omgd(data, omgd, loop, out, resume, progress)


PIPELINES = {"gan-compression": Pipeline("GAN Compression supernet + finalize", "supernet", ""),
             "omgd": Pipeline("OMGD supernet + finalize", "supernet_omgd", "_omgd"),
             "omgd-online": Pipeline("OMGD supernet + online finalize", "supernet_omgd", "_omgd_online", "online",
                                     own_search=True)}


def _omgd_student_loss() -> OMGDStudentLoss:
    return OMGDStudentLoss(perceptual="none", lambda_cd=LAMBDA_CD, ssim_range="unit")  # the CLI's --perceptual none


def supernet(method: Pipeline, s: DemoSettings, data: DataSpec, teacher_path: Path, seed_dir: Path,
             clock: Clock, progress: bool) -> Path:
    path = seed_dir / method.folder / "supernet.pt"
    clock.run(f"seed {s.seed}/{method.folder}", f"{method.folder} {s.space}, {s.supernet_steps} steps",
              path.exists(), lambda: _finished(path, method.train(s, data, teacher_path, path.parent, _resumed(path),
                                                                  progress)))
    return path


def search_and_finalize(s: DemoSettings, args, ws: Workspace, method: Pipeline, supernet: Path,
                        teacher_path: Path, segmenter: Path, seed_dir: Path, clock: Clock) -> list[dict]:
    """Register the supernet (with the seed's teacher as its reference), run the demo's search on it, finalize
    the best config per budget (seed_dir/finals<suffix>.json)."""
    with Store(ws.database_url) as store:
        name = register_supernet(store, supernet, f"{method.registered_name}-seed{s.seed}",
                                 teacher=method.reference(teacher_path), workspace=ws).name
    search_file, finals_file = seed_dir / f"search{method.suffix}.json", seed_dir / f"finals{method.suffix}.json"

    def search() -> None:
        if not method.own_search:  # the demo's: the supernet's latest search, else a new one
            search_file.write_text(json.dumps({"search_id": _search(ws, name, segmenter, s)[1]}))
            return
        started = seed_dir / f"search{method.suffix}.started.json"  # a killed run resumes this search
        with Store(ws.database_url) as store:
            if not started.exists():
                created = create_search(store, name, budgets=s.budgets, metric=s.metric, strategy=s.strategy,
                                        trials=s.trials, seed=s.seed, batch_size=s.batch_size,
                                        segmenter=str(segmenter), workspace=ws)
                started.write_text(json.dumps({"search_id": created.id}))
            search_id = json.loads(started.read_text())["search_id"]
            Orchestrator(store, ws, search_id, OrchestratorSettings(workers=1, executor="local", progress=s.progress,
                                                                    lease_seconds=600)).run()
        search_file.write_text(json.dumps({"search_id": search_id}))

    clock.run(f"seed {s.seed}/search{method.suffix}", f"search {name}: {s.trials} trials, budgets "
              f"{', '.join(map(format_macs, s.budgets))}", search_file.exists(), search)
    search_id = json.loads(search_file.read_text())["search_id"]

    def finalize() -> None:
        with Store(ws.database_url) as store:
            best = {b: choose(store, search_id, budgets=[b])[0].config for b in sorted(s.budgets)}
            chosen = [Choice(c, b) for c, b in {c: b for b, c in reversed(best.items())}.items()]  # once per config
            settings = FinalizeSettings(steps=args.finetune_steps, batch_size=s.train_batch, workers=1,
                                        executor="local", threads_per_worker=args.threads, progress=not args.quiet,
                                        recipe=method.recipe)
            records = {r.config: r for r in Finalizer(store, ws, search_id, settings).run(chosen)}
        bad = [f"{r.config}: {r.error}" for r in records.values() if r.status != FinalStatus.DONE]
        if bad:
            raise SystemExit(f"seed {s.seed}: finalize failed for {'; '.join(bad)}")
        finals_file.write_text(json.dumps([
            {"budget": b, "config": c, "macs": records[c].macs, "search_id": search_id,
             "checkpoint": str(ws.root / records[c].files["checkpoint"]), "finalize_before": dict(records[c].before),
             "finalize_after": dict(records[c].after), "finalize_teacher": dict(records[c].teacher),
             "finalize_latency_ms": records[c].latency_ms, "pipeline": method.label} for b, c in best.items()],
            indent=1))

    clock.run(f"seed {s.seed}/finalize{method.suffix}", f"finalize the best per budget, {args.finetune_steps} "
              f"fine-tuning steps each, {method.recipe} recipe",
              finals_file.exists(), finalize)
    return json.loads(finals_file.read_text())


def baselines(s: DemoSettings, args, data: DataSpec, n_blocks: int, seed_dir: Path, clock: Clock) -> dict[str, Path]:
    """OMGD static students and pix2pix-alone generators at each width, for supernet + fine-tune steps."""
    total, progress, ckpt = s.supernet_steps + args.finetune_steps, not args.quiet, {}
    student = _omgd_student_loss()
    for width in args.widths:
        hparams = {"ngf": width, "n_blocks": n_blocks}
        omgd = OMGDSettings(student_arch="mobile_resnet", student_hparams=hparams, teachers="both",
                            student_loss=student, gan_mode="hinge", ndf=32)
        alone = TeacherSettings(arch="mobile_resnet", hparams=hparams, gan_mode="lsgan", ndf=32)
        jobs = {"OMGD": (seed_dir / f"omgd_ngf{width}" / "subnet.pt", "OMGD static student",
                         lambda out, resume, omgd=omgd: train_omgd(data, omgd, _loop(s, total), out, resume, progress)),
                "pix2pix": (seed_dir / f"pix2pix_ngf{width}" / "teacher.pt", "pix2pix alone",
                            lambda out, resume, alone=alone: train_teacher("pix2pix", data, alone, _loop(s, total),
                                                                           out, resume, progress))}
        for method, (path, label, train) in jobs.items():
            ckpt[f"{method} {width}"] = path
            clock.run(f"seed {s.seed}/{method} ngf {width}", f"{label} mobile ResNet ngf {width}, {total} steps",
                      path.exists(), lambda: _finished(path, train(path.parent, _resumed(path))))  # noqa: B023 (run now)
    return ckpt


def models_of(ckpt: dict[str, Path], finals: list[dict], widths) -> list[tuple[str, str, Path, str]]:
    """(name, kind, checkpoint, config) of every compared model, in table order."""
    models = [("teacher", TEACHER, ckpt["teacher"], "")]
    models += [(winner_name(f), WINNER, Path(f["checkpoint"]), f["config"]) for f in finals]
    models += [(f"{method} ngf {w}", BASELINE, ckpt[f"{method} {w}"], "") for method in ("OMGD", "pix2pix")
               for w in widths]
    return models


def winner_name(final: dict) -> str:
    label = final.get("pipeline") or f"{final.get('method', 'GAN Compression')} supernet + finalize"  # older runs
    return f"{label} <= {format_macs(final['budget'])}"


def latencies(generators: list[torch.nn.Module], size: int, threads: int, rounds: int, runs: int) -> list[float]:
    """Median batch-1 latency (ms) of each generator, timed in rounds that rotate the order, so that background
    load falls on all alike; each round is one measure_latency call per model."""
    per_model: list[list[float]] = [[] for _ in generators]
    for r in range(rounds):
        order = list(range(len(generators)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            per_model[i].append(measure_latency(generators[i], size, runs=runs, warmup=2, threads=threads).median_ms)
    return [float(torch.tensor(times).median()) for times in per_model]


def measure_seed(s: DemoSettings, args, evaluator: Evaluator, ckpt: dict[str, Path], finals: list[dict],
                 seed_dir: Path, clock: Clock) -> list[Measured]:
    """Scores (val) and MACs of every model of one seed, then their latency side by side; kept in seed_dir."""
    scores_file, latency_file = seed_dir / "scores.json", seed_dir / "latency.json"
    models = models_of(ckpt, finals, args.widths)
    generators = {name: load_generator(path).eval() for name, _, path, _ in models}

    def score() -> None:
        scores = json.loads(scores_file.read_text()) if scores_file.exists() else {}
        for name, _, _, _ in models:
            if name in scores:  # a model added to the comparison later is scored alone
                continue
            count = generator_count(generators[name], (s.size, s.size))
            metrics = evaluator.evaluate(generators[name]).metrics
            scores[name] = {"macs": count.macs, "params": count.params, "miou": metrics["miou"],
                            "psnr": metrics["psnr"]}
        scores_file.write_text(json.dumps(scores, indent=1))

    def time_them() -> None:  # all together or none: the ratios are meant side by side
        ms = latencies(list(generators.values()), s.size, args.threads, args.latency_rounds, args.latency_runs)
        latency_file.write_text(json.dumps({"threads": args.threads, "ms": dict(zip(generators, ms))}, indent=1))

    def covered(path: Path, key: str | None = None) -> bool:  # every model compared now is in the file
        found = json.loads(path.read_text()) if path.exists() else {}
        return set(generators) <= set(found.get(key, {}) if key else found)

    clock.run(f"seed {s.seed}/evaluate", f"mIoU and PSNR of {len(models)} models on val", covered(scores_file), score)
    clock.run(f"seed {s.seed}/latency", f"batch-1 CPU latency, {args.threads} thread(s), side by side",
              covered(latency_file, "ms"), time_them)
    scores, ms = json.loads(scores_file.read_text()), json.loads(latency_file.read_text())["ms"]
    for final in finals:  # the finalize job measured them on val too
        name, own = winner_name(final), final["finalize_after"].get("miou")
        if own is not None and abs(own - scores[name]["miou"]) > 1e-6:
            print(f"  warning: {name}: finalize measured mIoU {own:.4f} on val, this evaluator {scores[name]['miou']:.4f}")
    return [Measured(name, kind, scores[name]["macs"], scores[name]["params"], scores[name]["miou"],
                     scores[name]["psnr"], ms[name], config) for name, kind, _, config in models]


def settings_from(args) -> DemoSettings:
    base = DemoSettings.quick() if args.smoke else DemoSettings()
    overrides = {"size": args.size, "teacher_steps": args.teacher_steps, "supernet_steps": args.supernet_steps,
                 "trials": args.trials, "budgets": tuple(args.budgets) if args.budgets else None}
    if args.smoke:
        overrides = {k: v for k, v in overrides.items() if k == "budgets"}  # --smoke is a fixed plumbing check
    s = replace(base, executor="local", workers=1, progress=not args.quiet,
                **{k: v for k, v in overrides.items() if v is not None})
    if args.smoke:
        args.seeds, args.finetune_steps = args.seeds[:1], 10
    return s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "ganas-workspace" / "bench" / "compression",
                   help="work folder; a run killed at any stage continues there when run again")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, help="image side (default 64, the demo's)")
    p.add_argument("--teacher-steps", type=int, help="default 1200 (the demo's)")
    p.add_argument("--supernet-steps", type=int, help="default 1500 (the demo's)")
    p.add_argument("--finetune-steps", type=int, default=DemoSettings().finetune_steps,
                   help="fine-tuning steps per winner (default 1500, the demo's)")
    p.add_argument("--trials", type=int, help="search candidates (default 32, the demo's)")
    p.add_argument("--budgets", type=int, nargs="+", help="MACs budgets (default 35M 50M 70M, the demo's)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and latency (default 1)")
    p.add_argument("--latency-rounds", type=int, default=10)
    p.add_argument("--latency-runs", type=int, default=10, help="timed runs per model per round")
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS),
                   help="ngf of the fixed-width baselines (default 8 12); a stage already run is reused")
    p.add_argument("--pipelines", nargs="+", choices=list(PIPELINES), default=["gan-compression", "omgd"],
                   help="supernet + fine-tuning pipelines per seed (default gan-compression omgd; omgd-online "
                        "finalizes the OMGD supernet's winners with the online recipe, in a search of its own)")
    p.add_argument("--smoke", action="store_true", help="plumbing check: the demo's --quick sizes, one seed, 32 px")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = settings_from(args)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    recorded = {**{k: v for k, v in asdict(s).items() if k not in ("seed", "progress")},
                "finetune_steps": args.finetune_steps, "lambda_cd": LAMBDA_CD}
    recorded = json.loads(json.dumps(recorded))
    settings_file = out / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != recorded:
        raise SystemExit(f"{out} holds a run with other settings ({settings_file}); use another --out")
    settings_file.write_text(json.dumps(recorded, indent=1))
    print(f"bench_compression in {out}: seeds {args.seeds}, {s.size}x{s.size}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)

    clock = Clock(out)
    data = DataSpec(_make_data(out / "data", s), "labelled", "AtoB", s.size)  # the demo's data, seed 0
    data.ensure_split(s.seed)
    segmenter = out / "segmenter.pt"
    ceiling = clock.run("segmenter", f"tiny_unet segmenter, {s.segmenter_steps} steps (shared by all seeds)",
                        segmenter.exists(), lambda: _segmenter(data, segmenter, s))
    ceiling = ceiling if ceiling is not None else _segmenter(data, segmenter, s)
    evaluator = Evaluator(data.open("val", s.seed, train=False), ["miou", "psnr"],
                          EvaluationSettings(batch_size=8, segmenter=str(segmenter)))
    ws = Workspace(out / "workspace").ensure()
    per_seed = {}
    for seed in args.seeds:
        seeded, seed_dir = replace(s, seed=seed), out / f"seed{seed}"
        ckpt = {"teacher": teacher(seeded, data, seed_dir, clock, not args.quiet)}
        finals = []
        for key in args.pipelines:
            method = PIPELINES[key]
            path = supernet(method, seeded, data, ckpt["teacher"], seed_dir, clock, not args.quiet)
            finals += sorted(search_and_finalize(seeded, args, ws, method, path, ckpt["teacher"], segmenter, seed_dir,
                                                 clock), key=lambda f: f["budget"])
        ckpt |= baselines(seeded, args, data, s.blocks, seed_dir, clock)
        per_seed[seed] = measure_seed(seeded, args, evaluator, ckpt, finals, seed_dir, clock)

    rows = aggregate(per_seed)
    v = verdict(rows)
    (out / "results.json").write_text(json.dumps(
        {"settings": recorded, "seeds": args.seeds, "segmenter_val_miou_real": ceiling, "threads": args.threads,
         "per_seed": {seed: [asdict(m) for m in ms] for seed, ms in per_seed.items()},
         "rows": [asdict(r) for r in rows], "target_met": v.target_met, "front_dominates": v.front_dominates,
         "timings_s": clock.timings}, indent=1))
    print(f"\nlabels2scene {s.size}x{s.size}, {len(args.seeds)} seed(s) {args.seeds}; val split, mIoU with a segmenter "
          f"whose mIoU on the real val photos is {ceiling:.3f}; latency batch 1, {args.threads} thread(s)\n")
    print(table(rows))
    print()
    print(describe(v))
    print("\nstage wall times (s, this run or an earlier one): "
          + ", ".join(f"{k} {v:.0f}" for k, v in clock.timings.items()))
    print(f"results: {out / 'results.json'}; total {clock.elapsed().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
