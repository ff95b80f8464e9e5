"""Distillation quality on the built-in paired task labels2scene: does a trained supernet imitate its teacher?

Trains, on the CPU, a pix2pix ResNet teacher, then a ``channels-16`` supernet with GAN Compression
(distilling that teacher) and another with OMGD (online teachers, ``--perceptual none``: the
VGG16 weights are not on this machine). Scores the largest and smallest config of each supernet,
trained and untrained (the recipe's own initial weights: same architecture, pix2pix init, same
seed), by L1, PSNR and SSIM against the teacher's outputs and the ground truth on the val split.
Writes sample-image grids and prints the markdown tables of docs/benchmarks.md. Exits with status 1
when a trained config is not closer to a teacher than the untrained one on every metric.

    python bench/bench_distillation.py                       # the documented run (labels2scene 64x64)
    python bench/bench_distillation.py --quick --out /tmp/q  # a smoke run of every stage (seconds)

    python bench/bench_distillation.py --loss-ablation 1000  # adds the single-loss ablation (OMGD's SSIM term)

Stages whose final checkpoint exists in --out are reused, with the wall time recorded when they
were trained; an interrupted stage resumes (and records the wall time of its last part only).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from distill.gan_compression import GANCompressionRecipe, GANCompressionSettings
from distill.jobs import DataSpec, TeacherSource, train_gan_compression, train_omgd, train_teacher
from distill.losses import OMGDStudentLoss
from distill.losses.ssim import SSIMLoss, ssim_map
from distill.loop import BatchOrder, LoopSettings, derived_seed, load_batch
from distill.omgd import OMGDRecipe, OMGDSettings
from distill.teacher import Pix2PixTeacher, TeacherSettings, build_generator
from evaluators.closed_form import generator_count
from imagedata import MakeOptions, make_dataset, tensor_to_image
from supernet.checkpoint import load_generator
from supernet.generators import ChannelGenerator
from supernet.space import Config, format_config
from supernet.spaces import get_space

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchSettings:
    """Everything the run depends on (recorded in OUT/results.json)."""

    size: int = 64
    count: int = 200
    val_count: int = 50
    teacher_ngf: int = 32
    blocks: int = 6
    ndf: int = 32
    batch_size: int = 4
    teacher_steps: int = 1200
    gc_steps: int = 1500
    omgd_steps: int = 1500
    space: str = "channels-16"
    sampling: str = "uniform"
    lambda_cd: float = 10.0  # ``ganas train supernet --method omgd`` default
    ssim_range: str = "unit"  # the CLI's default with --perceptual none
    seed: int = 0
    rows: int = 4
    ablation_steps: int = 0  # > 0: also the single-loss ablation of a static student (see loss_ablation)


REPORT_ONLY = ("rows", "ablation_steps")  # settings that change no checkpoint in --out
QUICK = BenchSettings(size=32, count=16, val_count=8, teacher_ngf=16, blocks=3, teacher_steps=30, gc_steps=30,
                      omgd_steps=30, rows=3)


@dataclass(frozen=True)
class Scores:
    """L1 (mean |a - b| on [0, 1] images), PSNR (dB, per image, data range 1) and SSIM (11x11 Gaussian,
    sigma 1.5, border-cropped, as scikit-image), averaged over images."""

    l1: float
    psnr: float
    ssim: float

    @classmethod
    def between(cls, images: torch.Tensor, reference: torch.Tensor) -> "Scores":
        a, b = unit(images), unit(reference)
        l1 = (a - b).abs().mean(dim=(1, 2, 3))
        mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        ssim = ssim_map(a, b, data_range=1.0, padding="valid").mean(dim=(1, 2, 3))
        return cls(float(l1.mean()), float((10 * torch.log10(1 / mse)).mean()), float(ssim.mean()))

    def closer_than(self, other: "Scores") -> bool:
        return self.l1 < other.l1 and self.psnr > other.psnr and self.ssim > other.ssim

    def cells(self) -> list[str]:
        return [f"{self.l1:.4f}", f"{self.psnr:.2f}", f"{self.ssim:.3f}"]


def unit(images: torch.Tensor) -> torch.Tensor:
    """Generator range [-1, 1] -> [0, 1]."""
    return ((images.float() + 1) / 2).clamp(0, 1)


@dataclass(frozen=True)
class Stage:
    """One training run: steps, batch size, wall time and whether this invocation trained it."""

    name: str
    steps: int
    batch_size: int
    wall_s: float
    trained_now: bool


class StageRunner:
    """Runs a training stage unless its final checkpoint exists; keeps wall times in OUT/timings.json."""

    def __init__(self, out: Path, progress: bool):
        self.file = out / "timings.json"
        self.timings: dict = json.loads(self.file.read_text()) if self.file.exists() else {}
        self.progress = progress

    def run(self, name: str, final: Path, steps: int, batch_size: int, train: Callable[[bool, bool], Path]) -> Stage:
        if final.exists():
            return Stage(name, steps, batch_size, self.timings.get(name, float("nan")), False)
        start = time.perf_counter()
        path = train((final.parent / "last.pt").exists(), self.progress)
        if path != final:
            raise SystemExit(f"{name}: training stopped before its last step ({path}); run again to resume")
        wall = time.perf_counter() - start
        self.timings[name] = wall
        self.file.write_text(json.dumps(self.timings, indent=1))
        return Stage(name, steps, batch_size, wall, True)


@torch.no_grad()
def generate(generator: torch.nn.Module, inputs: torch.Tensor, config: Config | None = None) -> torch.Tensor:
    """The generator's outputs on all inputs (eval mode, batches of 16)."""
    generator.eval()
    chunks = [generator(x, config) if config is not None else generator(x) for x in inputs.split(16)]
    return torch.cat(chunks)


@dataclass(frozen=True)
class ConfigRow:
    """One config of one supernet, untrained and trained, scored against every reference."""

    method: str
    label: str
    config: str
    macs: int
    untrained: dict[str, Scores]
    trained: dict[str, Scores]


@dataclass(frozen=True)
class MethodResult:
    """One distillation method: its training stage, the references scored against, its rows and grid."""

    method: str
    stage: Stage
    references: list[str]  # names of the reference outputs, first = the one distilled from
    rows: list[ConfigRow]
    grid: Path


def score_supernet(method: str, untrained: ChannelGenerator, trained: ChannelGenerator, inputs: torch.Tensor,
                   references: dict[str, torch.Tensor], size: int, space_name: str
                   ) -> tuple[list[ConfigRow], dict[str, torch.Tensor]]:
    """Largest and smallest config of both supernets; returns the rows and the outputs for the grid."""
    space = get_space(space_name)
    rows, outputs = [], {}
    for label, config in (("largest", space.largest()), ("smallest", space.smallest())):
        before, after = generate(untrained, inputs, config), generate(trained, inputs, config)
        outputs[f"untrained {label}"], outputs[f"trained {label}"] = before, after
        rows.append(ConfigRow(method, label, format_config(config), generator_count(trained, (size, size), config).macs,
                              {k: Scores.between(before, ref) for k, ref in references.items()},
                              {k: Scores.between(after, ref) for k, ref in references.items()}))
    return rows, outputs


def save_grid(path: Path, columns: list[tuple[str, torch.Tensor]], rows: int) -> Path:
    """A PNG of ``rows`` val images: one column per (label, images), a header line with the labels."""
    from PIL import Image, ImageDraw, ImageFont

    size, gap, header = columns[0][1].shape[-1], 2, 24
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (len(columns) * (size + gap) - gap, header + rows * (size + gap) - gap), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (label, images) in enumerate(columns):
        x = c * (size + gap)
        draw.multiline_text((x + 1, 0), label.replace(" ", "\n", 1), fill="black", font=font, spacing=0)
        for r in range(rows):
            canvas.paste(tensor_to_image(images[r]), (x, header + r * (size + gap)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path


# a student's loss -> what it computes on (student, teacher) images in [-1, 1]
ABLATION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "10 x (1 - SSIM) on [-1, 1] images (OMGD's term)": lambda s, t: 10 * SSIMLoss()(s, t),
    "10 x (1 - SSIM) on [0, 1] images": lambda s, t: 10 * SSIMLoss()(unit(s), unit(t)),
    "10 x L1": lambda s, t: 10 * (s - t).abs().mean(),
}


def loss_ablation(s: BenchSettings, data: DataSpec, teacher: ChannelGenerator, inputs: torch.Tensor,
                  teacher_out: torch.Tensor) -> list[tuple[str, Scores, float]]:
    """A static student (the supernet's architecture at its largest config, the same initial weights) trained
    on train1 to imitate the frozen pix2pix teacher with one loss at a time, at a constant learning rate:
    what each term can teach on its own, without online teachers or subnet sampling."""
    space, train = get_space(s.space), data.open("train1", s.seed)
    order = BatchOrder(len(train), s.batch_size, s.seed)
    results = []
    for name, loss_fn in ABLATION_LOSSES.items():
        student = build_generator(space.architecture, {"ngf": space.ngf, "n_blocks": s.blocks},
                                  derived_seed(s.seed, "student")).train()
        optimizer = torch.optim.Adam(student.parameters(), lr=2e-4, betas=(0.5, 0.999))
        start = time.perf_counter()
        for step in range(s.ablation_steps):
            real_a = load_batch(train, order, step)["A"]
            with torch.no_grad():
                target = teacher(real_a)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(student(real_a), target).backward()
            optimizer.step()
        results.append((name, Scores.between(generate(student, inputs), teacher_out), time.perf_counter() - start))
    return results


def teacher_settings(s: BenchSettings) -> TeacherSettings:
    return TeacherSettings(arch="resnet", hparams={"ngf": s.teacher_ngf, "n_blocks": s.blocks}, gan_mode="lsgan",
                           ndf=s.ndf)


def omgd_settings(s: BenchSettings) -> OMGDSettings:
    loss = OMGDStudentLoss(perceptual="none", lambda_cd=s.lambda_cd, ssim_range=s.ssim_range)
    return OMGDSettings(student_arch=get_space(s.space).architecture, student_hparams={"n_blocks": s.blocks},
                        space=s.space, sampling=s.sampling, student_loss=loss, gan_mode="hinge", ndf=s.ndf)


@dataclass(frozen=True)
class Bench:
    """What every stage shares: settings, folders, the dataset and the val images."""

    s: BenchSettings
    out: Path
    images: Path
    runner: StageRunner
    data: DataSpec
    inputs: torch.Tensor
    truth: torch.Tensor

    @classmethod
    def open(cls, s: BenchSettings, out: Path, images: Path, progress: bool) -> "Bench":
        if not (out / "data" / "labelled" / "dataset.json").exists():
            make_dataset("labels2scene", out / "data", MakeOptions(s.size, s.count, s.val_count, s.seed),
                         progress=False)
        data = DataSpec(out / "data" / "labelled", "labelled", "AtoB", s.size)
        data.ensure_split(s.seed)
        val = data.open("val", s.seed, train=False)
        inputs = torch.stack([val[i]["A"] for i in range(len(val))])
        truth = torch.stack([val[i]["B"] for i in range(len(val))])
        return cls(s, out, images, StageRunner(out, progress), data, inputs, truth)

    @property
    def channels(self) -> tuple[int, int]:
        return self.inputs.shape[1], self.truth.shape[1]

    def loop(self, steps: int) -> LoopSettings:
        return LoopSettings(steps, self.s.batch_size, self.s.seed, 100)

    def macs(self, generator: ChannelGenerator, config: Config | None = None) -> int:
        return generator_count(generator, (self.s.size, self.s.size), config).macs


def teacher_stage(b: Bench) -> tuple[ChannelGenerator, dict]:
    """The pix2pix teacher, scored before (its recipe's initial weights) and after training."""
    s, settings, ckpt = b.s, teacher_settings(b.s), b.out / "teacher" / "teacher.pt"
    initial = Pix2PixTeacher(settings, s.teacher_steps, b.channels, seed=s.seed).generator
    stage = b.runner.run("teacher", ckpt, s.teacher_steps, s.batch_size, lambda resume, progress: train_teacher(
        "pix2pix", b.data, settings, b.loop(s.teacher_steps), ckpt.parent, resume, progress))
    teacher, _ = TeacherSource(ckpt).load()
    return teacher, {"stage": stage, "macs": b.macs(teacher), "path": ckpt,
                     "before": Scores.between(generate(initial, b.inputs), b.truth),
                     "after": Scores.between(generate(teacher, b.inputs), b.truth)}


def gan_compression_stage(b: Bench, teacher: ChannelGenerator, teacher_ckpt: Path) -> MethodResult:
    """The frozen teacher distilled into a supernet on train1."""
    s, ckpt = b.s, b.out / "gan_compression" / "supernet.pt"
    settings = GANCompressionSettings(space=s.space, task="paired", sampling=s.sampling, ndf=s.ndf)
    untrained = GANCompressionRecipe(settings, teacher, s.gc_steps, b.inputs[:1], seed=s.seed).student
    stage = b.runner.run("gan-compression", ckpt, s.gc_steps, s.batch_size, lambda resume, progress:
                         train_gan_compression(b.data, TeacherSource(teacher_ckpt), settings, b.loop(s.gc_steps),
                                               ckpt.parent, resume, progress))
    teacher_out = generate(teacher, b.inputs)
    refs = {"pix2pix teacher": teacher_out, "ground truth": b.truth}
    rows, outs = score_supernet("GAN Compression", untrained, load_generator(ckpt), b.inputs, refs, s.size, s.space)
    grid = save_grid(b.images / "distillation_gan_compression.png",
                     [("input", b.inputs), ("teacher", teacher_out), *grid_columns(outs), ("ground truth", b.truth)],
                     s.rows)
    return MethodResult("GAN Compression", stage, list(refs), rows, grid)


def omgd_stage(b: Bench, teacher: ChannelGenerator, teacher_info: dict) -> MethodResult:
    """Online wide and deep teachers; the student supernet sees only their outputs. Adds the online
    teachers' scores to ``teacher_info``."""
    s, ckpt, settings = b.s, b.out / "omgd" / "supernet.pt", omgd_settings(b.s)
    recipe = OMGDRecipe(settings, s.omgd_steps, b.inputs[:1], seed=s.seed, channels=b.channels)
    untrained = copy.deepcopy(recipe.student)  # the recipe is loaded with the trained state below
    stage = b.runner.run("omgd", ckpt, s.omgd_steps, s.batch_size, lambda resume, progress: train_omgd(
        b.data, settings, b.loop(s.omgd_steps), ckpt.parent, resume, progress))
    recipe.load_state_dict(torch.load(ckpt.parent / "last.pt", map_location="cpu", weights_only=True)["recipe"])
    online = {name: generate(t, b.inputs) for name, t in recipe.teachers.items()}
    teacher_info["omgd_teachers"] = {name: {"macs": b.macs(t), "vs_truth": Scores.between(online[name], b.truth)}
                                     for name, t in recipe.teachers.items()}
    teacher_out = generate(teacher, b.inputs)
    refs = {"OMGD wide teacher": online["wide"], "pix2pix teacher": teacher_out, "ground truth": b.truth}
    rows, outs = score_supernet("OMGD", untrained, load_generator(ckpt), b.inputs, refs, s.size, s.space)
    grid = save_grid(b.images / "distillation_omgd.png",
                     [("input", b.inputs), ("teacher", teacher_out), ("OMGD wide", online["wide"]),
                      *grid_columns(outs), ("ground truth", b.truth)], s.rows)
    return MethodResult("OMGD", stage, list(refs), rows, grid)


def grid_columns(outputs: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(name, outputs[name]) for name in ("untrained smallest", "trained smallest", "trained largest")]


def run(s: BenchSettings, out: Path, images: Path, progress: bool) -> tuple[dict, list[MethodResult]]:
    b = Bench.open(s, out, images, progress)
    teacher, teacher_info = teacher_stage(b)
    gc = gan_compression_stage(b, teacher, teacher_info["path"])
    if s.ablation_steps > 0:
        teacher_info["ablation"] = loss_ablation(s, b.data, teacher, b.inputs, generate(teacher, b.inputs))
    omgd = omgd_stage(b, teacher, teacher_info)
    return teacher_info, [gc, omgd]


# -- report -------------------------------------------------------------------------------------------

def machine() -> dict:
    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        names = [line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")]
        model = names[0] if names else ""
    except (OSError, subprocess.SubprocessError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_average": os.getloadavg()}


def table(header: list[str], rows: list[list[str]]) -> str:
    aligns = ["---" if i == 0 else "---:" for i in range(len(header))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, aligns, *rows])


def report(s: BenchSettings, teacher: dict, methods: list[MethodResult]) -> tuple[str, bool]:
    """The markdown of docs/benchmarks.md and whether every trained config beat its untrained self."""
    stages = [teacher["stage"], *(m.stage for m in methods)]
    lines = ["Stages (steps x batch size, wall time):", ""]
    lines += [f"- {st.name}: {st.steps} x {st.batch_size}, {st.wall_s:.0f} s ({st.wall_s / st.steps:.3f} s/step)"
              + ("" if st.trained_now else " (reused from an earlier run)") for st in stages]
    lines += ["", f"pix2pix teacher (ResNet ngf {s.teacher_ngf}, {s.blocks} blocks, {teacher['macs'] / 1e6:.1f}M MACs "
              f"at {s.size}x{s.size}) vs ground truth on the val split:", ""]
    trows = [["before training (pix2pix init)", *teacher["before"].cells()],
             [f"after {s.teacher_steps} steps", *teacher["after"].cells()]]
    trows += [[f"OMGD {name} teacher after {s.omgd_steps} steps ({info['macs'] / 1e6:.1f}M MACs)",
               *info["vs_truth"].cells()] for name, info in teacher["omgd_teachers"].items()]
    lines += [table(["generator", "L1", "PSNR dB", "SSIM"], trows)]
    ok = True
    for m in methods:
        lines += ["", f"{m.method} supernet (`{s.space}`, {m.stage.steps} steps), against "
                  + ", ".join(m.references) + " (L1 on [0, 1], PSNR in dB, SSIM):", ""]
        short = {"pix2pix teacher": "teacher", "ground truth": "truth", "OMGD wide teacher": "wide"}
        header = ["config", "MACs", "supernet"] + [f"{short[ref]} {metric}" for ref in m.references
                                                   for metric in ("L1", "PSNR", "SSIM")]
        body = []
        for row in m.rows:
            for state, scores in (("untrained", row.untrained), ("trained", row.trained)):
                cells = [f"{row.label} `{row.config}`", f"{row.macs / 1e6:.2f}M", state]
                body.append(cells + [c for ref in m.references for c in scores[ref].cells()])
        lines += [table(header, body), ""]
        for row in m.rows:
            for ref in (r for r in m.references if r != "ground truth"):
                before, after = row.untrained[ref], row.trained[ref]
                closer = after.closer_than(before)
                ok &= closer
                lines.append(f"- {m.method} {row.label}: trained is {'closer' if closer else 'NOT closer'} to the "
                             f"{ref} than untrained on every metric (L1 {before.l1:.4f} -> {after.l1:.4f}, "
                             f"PSNR {after.psnr - before.psnr:+.2f} dB, SSIM {after.ssim - before.ssim:+.3f})")
    if "ablation" in teacher:
        lines += ["", f"Single-loss ablation: a static `{get_space(s.space).architecture}` (the largest config, "
                  f"same initial weights) trained {s.ablation_steps} x {s.batch_size} steps on train1 to imitate the "
                  "frozen pix2pix teacher; scored against the teacher's val outputs:", ""]
        lines += [table(["student loss", "L1", "PSNR dB", "SSIM", "wall s"],
                        [[name, *scores.cells(), f"{wall:.0f}"] for name, scores, wall in teacher["ablation"]])]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help="work folder, reused when run again (default ganas-workspace/bench/distillation[-quick])")
    p.add_argument("--images", type=Path, default=None, help="where the grid PNGs go (default docs/images; "
                                                             "OUT/images with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (32 px, 30 steps per stage)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)")
    p.add_argument("--teacher-steps", type=int)
    p.add_argument("--gc-steps", type=int)
    p.add_argument("--omgd-steps", type=int)
    p.add_argument("--sampling", choices=["uniform", "sandwich"])
    p.add_argument("--seed", type=int)
    p.add_argument("--loss-ablation", type=int, default=None, metavar="STEPS", dest="ablation_steps",
                   help="also train a static student with each single loss for STEPS steps (default off)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.out = args.out or REPO / "ganas-workspace" / "bench" / ("distillation-quick" if args.quick else "distillation")
    args.images = args.images or (args.out / "images" if args.quick else REPO / "docs" / "images")
    torch.set_num_threads(args.threads)
    s = QUICK if args.quick else BenchSettings()
    overrides = {k: v for k, v in (("teacher_steps", args.teacher_steps), ("gc_steps", args.gc_steps),
                                   ("omgd_steps", args.omgd_steps), ("sampling", args.sampling),
                                   ("seed", args.seed), ("ablation_steps", args.ablation_steps)) if v is not None}
    s = replace(s, **overrides)
    args.out.mkdir(parents=True, exist_ok=True)
    settings_file = args.out / "settings.json"
    trained = {k: v for k, v in asdict(s).items() if k not in REPORT_ONLY}
    if settings_file.exists() and json.loads(settings_file.read_text()) != trained:
        raise SystemExit(f"{args.out} holds a run with other settings ({settings_file}); use another --out")
    settings_file.write_text(json.dumps(trained, indent=1))
    info = machine()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), torch {info['torch']}, {info['threads']} threads, "
          f"Python {info['python']}, load average {info['load_average'][0]:.1f}", flush=True)
    started = time.perf_counter()
    teacher, methods = run(s, args.out, args.images, not args.quiet)
    markdown, ok = report(s, teacher, methods)
    print(f"\n{markdown}\n")
    print(f"grids: {', '.join(str(m.grid) for m in methods)}")
    print(f"total {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.1f}")
    results = {"settings": asdict(s), "machine": info, "teacher": {**teacher, "path": str(teacher["path"])},
               "methods": [{"method": m.method, "stage": m.stage, "rows": m.rows} for m in methods]}
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=asdict))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
