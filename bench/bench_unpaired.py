"""Distillation on unpaired data: GAN Compression's supernet (pseudo-pairs) vs OMGD's unpaired supernet.

On ``photo2texture`` (unaligned), per seed, in one resumable work folder (a stage is skipped when its
output exists):

1. a CycleGAN teacher (ResNet, the demo's ngf and depth);
2. GAN Compression's supernet distilled from it (task unpaired: the teacher's outputs are the targets);
3. OMGD's unpaired supernet with the same step budget (its own CycleGAN teacher pair, at the CycleGAN
   teacher's width, trains online: ``teacher_phase`` teacher steps then ``n_dis`` x as many student
   steps, ten rounds), recording its online teacher;
4. each registered with its own teacher, searched at the same MACs budgets for ``teacher-ssim`` (fidelity
   to the teacher it distilled from; unpaired data has no ground truth) and finalized (best per budget);
5. every final model and both teachers scored on val against the CycleGAN teacher (``teacher-psnr``,
   ``teacher-ssim``), against their own teacher (finalize's figures), and by FID when the Inception
   weights are found.

Equal steps, not equal teachers: GAN Compression starts from a teacher trained for ``teacher_steps``,
OMGD trains its teachers within its ``supernet_steps``. Prints a markdown table (mean and std over seeds)
and, per budget, the method with the lower FID (or, without Inception weights, the higher SSIM to the
CycleGAN teacher, which favours GAN Compression by construction: it is said so).

    python bench/bench_unpaired.py --out ganas-workspace/bench/unpaired          # 3 seeds, 64x64
    python bench/bench_unpaired.py --smoke --out /tmp/unpaired-smoke             # plumbing, 32 px
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from bench_compression import Clock, _finished, _resumed
from distill.gan_compression import GANCompressionSettings
from distill.jobs import DataSpec, TeacherSource, train_gan_compression, train_omgd, train_teacher
from distill.loop import LoopSettings
from distill.losses import OMGDStudentLoss
from distill.omgd_unpaired import UnpairedOMGDSettings
from distill.teacher import TeacherSettings
from evaluators.closed_form import generator_count
from evaluators.evaluate import EvaluationSettings, Evaluator, teacher_identity
from evaluators.features import check_extractor_inputs
from foundation.errors import GanasError
from foundation.hashing import file_sha256
from imagedata import MakeOptions, make_dataset
from nas.demo import DemoSettings
from nas.finalize import Choice, FinalizeSettings, Finalizer, choose
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.registry import register_supernet
from nas.search_setup import create_search
from nas.store import FinalStatus, Store
from nas.workspace import Workspace
from supernet.checkpoint import load_generator
from supernet.spaces import get_space

REPO = Path(__file__).resolve().parents[1]
METHODS = ("gan-compression", "omgd")
N_DIS, LAMBDA_CD = 4, 10.0  # OMGD's horse2zebra script; the CLI's --lambda-cd


def _loop(s: DemoSettings, steps: int) -> LoopSettings:
    return LoopSettings(steps, s.train_batch, s.seed, 200)


def _eta(s: DemoSettings) -> int:
    """OMGD's wide teacher at the CycleGAN teacher's width (ngf), so both methods distil from teachers of one width."""
    return max(1, s.teacher_ngf // get_space(s.space).ngf)


def train_all(s: DemoSettings, data: DataSpec, seed_dir: Path, clock: Clock, progress: bool) -> dict[str, Path]:
    """The CycleGAN teacher, then both supernets at the same step budget."""
    ckpt = {"teacher": seed_dir / "teacher" / "teacher.pt", "gan-compression": seed_dir / "gc" / "supernet.pt",
            "omgd": seed_dir / "omgd" / "supernet.pt"}
    teacher = TeacherSettings(arch="resnet", hparams={"ngf": s.teacher_ngf, "n_blocks": s.blocks}, ndf=32)
    gc = GANCompressionSettings(space=s.space, task="unpaired", ndf=32, sampling="sandwich")
    omgd = UnpairedOMGDSettings(student_arch="mobile_resnet", student_hparams={"n_blocks": s.blocks}, space=s.space,
                                sampling="sandwich", ndf=32, n_dis=N_DIS, eta=_eta(s),
                                teacher_phase=max(1, s.supernet_steps // (10 * (1 + N_DIS))),
                                student_loss=OMGDStudentLoss(perceptual="none", lambda_cd=LAMBDA_CD, ssim_range="unit"))
    jobs = [("teacher", f"CycleGAN teacher ResNet ngf {s.teacher_ngf}, {s.teacher_steps} steps",
             lambda out, resume: train_teacher("cyclegan", data, teacher, _loop(s, s.teacher_steps), out, resume,
                                               progress)),
            ("gan-compression", f"GAN Compression supernet {s.space} (unpaired), {s.supernet_steps} steps",
             lambda out, resume: train_gan_compression(data, TeacherSource(ckpt["teacher"]), gc,
                                                       _loop(s, s.supernet_steps), out, resume, progress)),
            ("omgd", f"OMGD unpaired supernet {s.space}, {s.supernet_steps} steps (teacher phase "
                     f"{omgd.teacher_phase}, n_dis {N_DIS})",
             lambda out, resume: train_omgd(data, omgd, _loop(s, s.supernet_steps), out, resume, progress))]
    for key, label, train in jobs:
        path = ckpt[key]
        clock.run(f"seed {s.seed}/{key}", label, path.exists(),
                  lambda: _finished(path, train(path.parent, _resumed(path))))  # noqa: B023 (run now)
    return ckpt


def search_and_finalize(s: DemoSettings, args, ws: Workspace, method: str, supernet: Path, seed_dir: Path,
                        clock: Clock) -> list[dict]:
    """Register (with the teacher its checkpoint records), search for teacher-ssim, finalize the best per budget."""
    finals_file = seed_dir / f"finals-{method}.json"

    def run() -> None:
        with Store(ws.database_url) as store:
            name = register_supernet(store, supernet, f"bench-unpaired-{method}-seed{s.seed}", workspace=ws).name
            search = create_search(store, name, budgets=s.budgets, metric="teacher-ssim", strategy=s.strategy,
                                   trials=s.trials, seed=s.seed, batch_size=s.batch_size, workspace=ws)
            Orchestrator(store, ws, search.id, OrchestratorSettings(workers=1, executor="local", progress=s.progress,
                                                                    lease_seconds=600)).run()
            best = {b: choose(store, search.id, budgets=[b])[0].config for b in sorted(s.budgets)}
            chosen = [Choice(c, b) for c, b in {c: b for b, c in reversed(best.items())}.items()]
            settings = FinalizeSettings(steps=args.finetune_steps, batch_size=s.train_batch, workers=1,
                                        executor="local", threads_per_worker=args.threads, progress=s.progress)
            records = {r.config: r for r in Finalizer(store, ws, search.id, settings).run(chosen)}
        bad = [f"{r.config}: {r.error}" for r in records.values() if r.status != FinalStatus.DONE]
        if bad:
            raise SystemExit(f"seed {s.seed} {method}: finalize failed for {'; '.join(bad)}")
        finals_file.write_text(json.dumps([
            {"budget": b, "config": c, "checkpoint": str(ws.root / records[c].files["checkpoint"]),
             "own_teacher": dict(records[c].after), "own_teacher_self": dict(records[c].teacher)}
            for b, c in best.items()], indent=1))

    clock.run(f"seed {s.seed}/{method} search + finalize", f"teacher-ssim search, {s.trials} trials; finalize "
              f"{args.finetune_steps} steps per budget", finals_file.exists(), run)
    return json.loads(finals_file.read_text())


def measure(s: DemoSettings, evaluator: Evaluator, ckpt: dict[str, Path], finals: dict[str, list[dict]],
            seed_dir: Path, clock: Clock) -> list[dict]:
    """Every final model and both teachers on val against the CycleGAN teacher (and FID); kept in seed_dir."""
    file = seed_dir / "scores.json"
    models = [("CycleGAN teacher", "teacher", None, ckpt["teacher"], {}),
              ("OMGD online teacher", "teacher", None, ckpt["omgd"].parent / "teacher.pt", {})]
    models += [(f"{method} <= {f['budget'] / 1e6:g}M", method, f["budget"], Path(f["checkpoint"]), f["own_teacher"])
               for method in METHODS for f in finals[method]]

    def score() -> None:
        rows = []
        for name, method, budget, path, own in models:
            generator = load_generator(path).eval()
            count = generator_count(generator, (s.size, s.size))
            rows.append({"name": name, "method": method, "budget": budget, "macs": count.macs,
                         "vs_cyclegan": dict(evaluator.evaluate(generator).metrics), "vs_own_teacher": own})
        file.write_text(json.dumps(rows, indent=1))

    clock.run(f"seed {s.seed}/evaluate", f"{len(models)} models on val", file.exists(), score)
    return json.loads(file.read_text())


def _mean(values: list[float]) -> str:
    if not values:
        return "-"
    spread = f" ± {statistics.stdev(values):.3g}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4g}{spread}"


def report(per_seed: dict[int, list[dict]], fid: bool) -> str:
    """The markdown table (mean ± std over seeds) and the winner per budget."""
    names = [row["name"] for row in next(iter(per_seed.values()))]
    lines = ["| model | MACs | SSIM to CycleGAN teacher | PSNR to it (dB) | SSIM to own teacher |"
             + (" FID |" if fid else ""), "|---|---|---|---|---|" + ("---|" if fid else "")]
    by_name = {name: [next(r for r in rows if r["name"] == name) for rows in per_seed.values()] for name in names}
    for name, rows in by_name.items():
        cells = [f"{rows[0]['macs'] / 1e6:.2f}M", _mean([r["vs_cyclegan"]["teacher-ssim"] for r in rows]),
                 _mean([r["vs_cyclegan"]["teacher-psnr"] for r in rows]),
                 _mean([r["vs_own_teacher"]["teacher-ssim"] for r in rows if r["vs_own_teacher"]])]
        if fid:
            cells.append(_mean([r["vs_cyclegan"]["fid"] for r in rows]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    key, better, what = ("fid", min, "lower FID") if fid else \
        ("teacher-ssim", max, "higher SSIM to the CycleGAN teacher (GAN Compression distils that teacher, OMGD its own: "
                              "this favours GAN Compression by construction; give Inception weights for FID)")
    budgets = sorted({rows[0]["budget"] for rows in by_name.values() if rows[0]["budget"]})
    lines.append("")
    for budget in budgets:
        score = {m: statistics.fmean(r["vs_cyclegan"][key] for r in by_name[f"{m} <= {budget / 1e6:g}M"])
                 for m in METHODS}
        lines.append(f"<= {budget / 1e6:g}M: {better(score, key=score.get)} wins ({what}; "
                     + ", ".join(f"{m} {v:.4g}" for m, v in score.items()) + ")")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "ganas-workspace" / "bench" / "unpaired",
                   help="work folder; a run killed at any stage continues there when run again")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--finetune-steps", type=int, default=DemoSettings().finetune_steps)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--smoke", action="store_true", help="plumbing check: the demo's --quick sizes, one seed, 32 px")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = DemoSettings.quick() if args.smoke else DemoSettings()
    s = replace(base, executor="local", workers=1, progress=not args.quiet)
    if args.smoke:
        args.seeds, args.finetune_steps = args.seeds[:1], 4
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    recorded = json.loads(json.dumps({**{k: v for k, v in asdict(s).items() if k not in ("seed", "progress")},
                                      "finetune_steps": args.finetune_steps, "n_dis": N_DIS, "lambda_cd": LAMBDA_CD,
                                      "eta": _eta(s)}))
    settings_file = out / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != recorded:
        raise SystemExit(f"{out} holds a run with other settings ({settings_file}); use another --out")
    settings_file.write_text(json.dumps(recorded, indent=1))
    clock = Clock(out)
    root = out / "data"
    if not (root / "dataset.json").exists():
        make_dataset("photo2texture", root, MakeOptions(size=s.size, count=s.count, val_count=s.val_count, seed=0),
                     progress=False)
    data = DataSpec(root, "unaligned", "AtoB", s.size)
    data.ensure_split(0)
    try:
        check_extractor_inputs("inception", None)
        fid = True
    except GanasError as exc:
        fid = False
        print(f"no FID: {str(exc).splitlines()[0]}")
    ws = Workspace(out / "workspace").ensure()
    per_seed = {}
    for seed in args.seeds:
        seeded, seed_dir = replace(s, seed=seed), out / f"seed{seed}"
        ckpt = train_all(seeded, data, seed_dir, clock, not args.quiet)
        finals = {m: search_and_finalize(seeded, args, ws, m, ckpt[m], seed_dir, clock) for m in METHODS}
        teacher = load_generator(ckpt["teacher"]).eval()
        evaluator = Evaluator(data.open("val", seed, train=False), ["teacher-psnr", "teacher-ssim"]
                              + (["fid"] if fid else []), EvaluationSettings(
                                  batch_size=8, cache_dir=ws.cache, teacher=teacher,
                                  teacher_identity=teacher_identity(ckpt["teacher"], file_sha256(ckpt["teacher"]))))
        per_seed[seed] = measure(seeded, evaluator, ckpt, finals, seed_dir, clock)
    text = report(per_seed, fid)
    (out / "results.json").write_text(json.dumps({"settings": recorded, "seeds": args.seeds, "fid": fid,
                                                  "per_seed": per_seed, "timings_s": clock.timings}, indent=1))
    print(f"\nphoto2texture {s.size}x{s.size}, {len(args.seeds)} seed(s), val split\n\n{text}")
    print(f"\nresults: {out / 'results.json'}; total {clock.elapsed().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
