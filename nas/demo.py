"""The main job: the whole pipeline on the built-in labelled task, on one machine.

make data -> train a pix2pix teacher -> distil it into a GAN Compression supernet and register it
-> train a small segmenter for mIoU -> search under several MACs budgets with Ray workers ->
finalize the best subnet per budget (fine-tune, measure next to the teacher on val, export,
register in MLflow) -> print the final table and the Pareto front, write its plot, and say how to
open MLflow and the dashboard.

Every stage keeps its output in the workspace and is skipped (or resumed) when run again, so an
interrupted demo continues where it stopped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .workspace import Workspace

SUPERNET_NAME = "demo-labels2scene"


@dataclass(frozen=True)
class DemoSettings:
    size: int = 64  # image side; the papers use 256, 2 CPU cores want smaller
    count: int = 160  # training images (train1 trains the supernet, train2 scores candidates)
    val_count: int = 40
    teacher_ngf: int = 32
    blocks: int = 6
    teacher_steps: int = 1200
    supernet_steps: int = 1500
    segmenter_steps: int = 400
    finetune_steps: int = 1500  # per finalized subnet (GAN Compression's last stage)
    train_batch: int = 4  # images per training step (teacher, supernet, fine-tuning)
    space: str = "channels-16"
    budgets: tuple[int, ...] = (35_000_000, 50_000_000, 70_000_000)
    metric: str = "miou"
    strategy: str = "evolution"
    trials: int = 32
    batch_size: int = 8
    workers: int = 2
    executor: str = "ray"
    seed: int = 0
    progress: bool = True

    @classmethod
    def quick(cls, **overrides) -> "DemoSettings":
        """A minute-long run of every stage (for tests and a first look)."""
        values = dict(size=32, count=16, val_count=4, teacher_ngf=16, blocks=3, teacher_steps=20,
                      supernet_steps=20, segmenter_steps=20, finetune_steps=10, budgets=(7_000_000, 9_000_000),
                      trials=8, batch_size=4, workers=2)
        values.update(overrides)
        return cls(**values)


def run_demo(workspace: Workspace, settings: DemoSettings, say: Callable[[str], None] = print) -> dict:
    from distill.gan_compression import GANCompressionSettings
    from distill.jobs import DataSpec, TeacherSource, train_gan_compression, train_teacher
    from distill.loop import LoopSettings
    from distill.teacher import TeacherSettings

    s = settings
    workspace.open_store().close()  # an unusable store is reported now, not after the training stages
    root = workspace.root / "demo"
    started = time.time()
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        timings[name] = time.time() - t0
        say(f"  {name}: {timings[name]:.0f}s")

    store = "" if workspace.store_url is None else f", store {workspace.store_label}"
    say(f"ganas demo in {workspace.root}{store} ({s.size}x{s.size} images, {s.workers} workers)")
    t0 = time.time()
    data_root = _make_data(root / "data", s)
    data = DataSpec(data_root, "labelled", "AtoB", s.size)
    data.ensure_split(s.seed)
    stage("1/6 data (labels2scene, label map -> photo)", t0)

    t0 = time.time()
    teacher_dir = root / "teacher"
    teacher_ckpt = teacher_dir / "teacher.pt"
    if not teacher_ckpt.exists():
        teacher_settings = TeacherSettings(arch="resnet", hparams={"ngf": s.teacher_ngf, "n_blocks": s.blocks},
                                           gan_mode="lsgan", ndf=32)
        train_teacher("pix2pix", data, teacher_settings, LoopSettings(s.teacher_steps, s.train_batch, s.seed, 200),
                      teacher_dir, resume=(teacher_dir / "last.pt").exists(), progress=s.progress)
    stage(f"2/6 pix2pix teacher (ResNet ngf {s.teacher_ngf}, {s.blocks} blocks, {s.teacher_steps} steps)", t0)

    t0 = time.time()
    supernet_dir = root / "supernet"
    supernet_ckpt = supernet_dir / "supernet.pt"
    if not supernet_ckpt.exists():
        gc = GANCompressionSettings(space=s.space, task="paired", ndf=32, sampling="sandwich")
        train_gan_compression(data, TeacherSource(teacher_ckpt), gc,
                              LoopSettings(s.supernet_steps, s.train_batch, s.seed, 200), supernet_dir,
                              resume=(supernet_dir / "last.pt").exists(), progress=s.progress)
    record = _register(workspace, supernet_ckpt)
    stage(f"3/6 GAN Compression supernet ({s.space}, {s.supernet_steps} steps), registered as {record.name!r}", t0)

    t0 = time.time()
    segmenter = root / "segmenter.pt"
    ceiling = _segmenter(data, segmenter, s)
    stage(f"4/6 segmenter for mIoU (mIoU on real validation photos: {ceiling:.3f}, the ceiling)", t0)

    t0 = time.time()
    summary, search_id = _search(workspace, record.name, segmenter, s)
    stage(f"5/6 search {search_id} ({s.strategy}, {s.trials} candidates, {s.workers} workers)", t0)

    t0 = time.time()
    finals = _finalize(workspace, search_id, s)
    stage(f"6/6 finalize {len(finals)} subnet(s) ({s.finetune_steps} fine-tuning steps each, measured on val)", t0)

    plot = _report(workspace, summary, search_id, finals, s, say)
    say(f"done in {time.time() - started:.0f}s. Front plot: {plot}")
    say(f"MLflow:    mlflow ui --backend-store-uri {workspace.mlflow_uri}   (then open http://127.0.0.1:5000)")
    store = ""  # a URL with a password is not printed, even masked (a masked one would not work pasted)
    if workspace.store_url is not None:
        masked = workspace.store_label
        store = f" --store {masked}" if "***" not in masked else " --store URL (the store URL given to the demo)"
    say(f"dashboard: ganas serve --workspace {workspace.root}{store}   (then open http://127.0.0.1:8765)")
    return {"search_id": search_id, "summary": summary, "timings": timings, "plot": plot, "segmenter_miou": ceiling,
            "finals": finals}


def _make_data(folder: Path, s: DemoSettings) -> Path:
    from imagedata import MakeOptions, make_dataset

    labelled = folder / "labelled"
    if not (labelled / "dataset.json").exists():
        make_dataset("labels2scene", folder, MakeOptions(s.size, s.count, s.val_count, s.seed), progress=s.progress)
    return labelled


def _register(workspace: Workspace, checkpoint: Path):
    from .registry import register_supernet

    with workspace.open_store() as store:
        return register_supernet(store, checkpoint, SUPERNET_NAME, workspace=workspace)


def _segmenter(data, path: Path, s: DemoSettings) -> float:
    import torch

    from evaluators.segmenter import load_segmenter, save_segmenter, train_segmenter

    if not path.exists():
        trained = train_segmenter(data.open("train1", s.seed), steps=s.segmenter_steps, seed=s.seed,
                                  progress=s.progress)
        miou = _real_miou(trained.network, data.open("val", s.seed, train=False))
        save_segmenter(trained.network, path, trained.arch, trained.hparams, trained.num_classes,
                       dataset={"root": str(data.root)}, val_miou=miou, steps=trained.steps,
                       image_size=(s.size, s.size))
    record = torch.load(path, map_location="cpu", weights_only=True)
    load_segmenter(path)  # fails early and clearly if the file is unusable
    return float(record["val_miou"])


def _real_miou(network, dataset) -> float:
    """mIoU of the segmenter on the real validation photos (what a perfect generator would reach)."""
    from evaluators.metric_impls.segmentation import mean_iou
    from evaluators.segmenter import Segmenter

    spec = dataset.spec
    batches = ((dataset[i]["B"].unsqueeze(0), dataset[i]["label"].unsqueeze(0)) for i in range(len(dataset)))
    return mean_iou(Segmenter(network, spec.num_classes, "demo"), batches, spec.num_classes, spec.ignore_index)


def _search(workspace: Workspace, supernet: str, segmenter: Path, s: DemoSettings):
    from .orchestrator import Orchestrator, OrchestratorSettings
    from .search_setup import create_search
    from .store import SearchState

    with workspace.open_store() as store:
        previous = [x for x in store.list_searches(supernet) if x.state != SearchState.CANCELLED]
        if previous:
            search = previous[-1]
        else:
            search = create_search(store, supernet, budgets=s.budgets, metric=s.metric, strategy=s.strategy,
                                   trials=s.trials, seed=s.seed, batch_size=s.batch_size, segmenter=str(segmenter),
                                   workspace=workspace)
        settings = OrchestratorSettings(workers=s.workers if s.executor == "ray" else 1, executor=s.executor,
                                        progress=s.progress, lease_seconds=600)
        summary = Orchestrator(store, workspace, search.id, settings).run()
    return summary, search.id


def _finalize(workspace: Workspace, search_id: int, s: DemoSettings):
    from .finalize import FinalizeSettings, Finalizer, choose

    settings = FinalizeSettings(steps=s.finetune_steps, batch_size=s.train_batch,
                                workers=s.workers if s.executor == "ray" else 1, executor=s.executor,
                                progress=s.progress, lease_seconds=1800)
    with workspace.open_store() as store:
        return Finalizer(store, workspace, search_id, settings).run(choose(store, search_id))


def _report(workspace: Workspace, summary, search_id: int, finals, s: DemoSettings, say) -> Path:
    from .budget import format_macs
    from .cli.output import print_table
    from .finalize.report import HEADER, final_rows
    from .store import CandidateStatus
    from .reference import reference_of
    from .tracking import front_plot_png

    metric = s.metric
    with workspace.open_store() as store:
        supernet = store.get_supernet(summary.search.supernet_id)
        vs = reference_of(supernet, store.get_search(search_id))
        done = store.candidates(search_id, CandidateStatus.DONE)
    front = summary.front.front
    say(f"\nPareto front of search {search_id} (MACs vs {metric} on train2, the split that chose them), "
        f"{len(front)} subnets; {vs.describe(metric)}:")
    print_table([(p.config, format_macs(p.macs), vs.fewer_macs_text(p.macs), f"{p.value:.4f}",
                  vs.versus_text(metric, p.value)) for p in front], ["CONFIG", "MACS", "X FEWER MACS", metric.upper(), "VS TEACHER"])
    say(f"\nfinal models: the best subnet per budget, fine-tuned, next to the teacher on the held-out split "
        f"(teacher {format_macs(supernet.teacher['macs'])} MACs):")
    print_table(final_rows(finals, dict(supernet.teacher)), HEADER)
    path = workspace.search_dir(search_id) / "pareto_front.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(front_plot_png([(c.macs, c.metrics[metric]) for c in done],
                                    [(p.macs, p.value) for p in front], metric, s.budgets))
    return path
