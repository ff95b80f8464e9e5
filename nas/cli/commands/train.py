"""``ganas train teacher|supernet|finetune`` (and ``segmenter``, registered by the evaluators' command module)."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any, Iterator

from ..arguments import store_flag, teacher_state_dict_flags, workspace_of


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train teachers, supernets (GAN Compression / OMGD), fine-tune",
                                  description="Training commands. Every run checkpoints to --out and resumes "
                                              "with --resume to exactly the weights of an uninterrupted run.")
    commands = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    _teacher_parser(commands)
    _supernet_parser(commands)
    _finetune_parser(commands)
    from . import segmenter  # ``ganas train segmenter`` lives with the evaluation commands

    segmenter.register_train(commands)


def _common(p: argparse.ArgumentParser, steps: int) -> None:
    data = p.add_argument_group("data")
    data.add_argument("--data", required=True, type=Path, help="dataset folder (see docs/datasets.md)")
    data.add_argument("--layout", default=None, help="aligned, unaligned or labelled (default: detect)")
    data.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="default AtoB")
    data.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, type=Path, help="output folder (checkpoints)")
    run.add_argument("--threads", type=int, default=None, metavar="N",
                     help="torch threads (default: every core this process may use; see docs/training.md)")
    run.add_argument("--steps", type=int, default=steps, help=f"optimisation steps (default {steps})")
    run.add_argument("--batch-size", type=int, default=1, help="default 1, as pix2pix / CycleGAN (per worker with "
                                                                 "--workers: the total batch is workers x this)")
    run.add_argument("--seed", type=int, default=0, help="seed of init, data order and sampling (default 0)")
    run.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4; beta1 0.5)")
    cluster = p.add_argument_group("data-parallel (Ray Train; see docs/training.md)")
    cluster.add_argument("--workers", type=int, default=None, metavar="N",
                         help="train on N Ray Train workers, each on its share of every batch (default: one process)")
    cluster.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                         help="with --workers: join this Ray cluster (default: a private one on this machine)")
    cluster.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                         help="with --workers: cpu (gloo) or cuda (NCCL, one GPU per worker); default cpu")
    cluster.add_argument("--checkpoint-storage", default=None, metavar="PATH|URI",
                         help="with --workers: where Ray Train keeps checkpoints, a folder or a pyarrow URI that "
                              "every node reaches (default OUT/ray-checkpoints)")


def _teacher_import_flags(p) -> None:
    teacher_state_dict_flags(p)
    p.add_argument("--save-teacher-map", type=Path, default=None, metavar="FILE",
                   help="write the key mapping the teacher loaded with, for --teacher-map")
    p.add_argument("--teacher-layers", default=None, metavar="A,B,...",
                   help="the teacher's layers to distil, one per layer the student distils, by module name (a "
                        "TorchScript or torch.export teacher; default: a ganas generator's own, none for a program, "
                        "which then distils outputs only)")
    p.add_argument("--lambda-output", type=float, default=None,
                   help="paired data: weight of L1 to the teacher's output (default 10 when no features are "
                        "distilled, else 0)")


def _discriminator(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("discriminator")
    d.add_argument("--netd", default="basic", help="basic (70x70 PatchGAN), n_layers or pixel (default basic)")
    d.add_argument("--ndf", type=int, default=64, help="discriminator width (default 64)")
    d.add_argument("--n-layers-d", type=int, default=3, help="PatchGAN depth for --netd n_layers (default 3)")


def _teacher_parser(commands) -> None:
    p = commands.add_parser("teacher", help="train a pix2pix (paired) or CycleGAN (unpaired) teacher",
                            description="Writes OUT/teacher.pt (and OUT/teacher_BA.pt for CycleGAN).")
    p.add_argument("--method", choices=["pix2pix", "cyclegan"], default="pix2pix")
    p.add_argument("--arch", default="resnet", help="generator architecture (see `ganas macs --help`)")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--blocks", type=int, default=None, help="residual blocks (ResNet) or levels (U-Net)")
    p.add_argument("--norm", default=None, help="instance, instance_affine or batch (the registered norm variants; "
                                                "default: the architecture's)")
    p.add_argument("--gan-mode", default="lsgan", help="lsgan, hinge or vanilla (default lsgan)")
    p.add_argument("--lambda-l1", type=float, default=100.0, help="pix2pix L1 weight (default 100)")
    p.add_argument("--lambda-cycle", type=float, default=10.0, help="CycleGAN cycle weight (default 10)")
    p.add_argument("--lambda-identity", type=float, default=0.5, help="CycleGAN identity weight (default 0.5)")
    _discriminator(p)
    _common(p, steps=2000)
    p.set_defaults(func=_train_teacher)


def _supernet_parser(commands) -> None:
    p = commands.add_parser("supernet", help="train a once-for-all supernet (GAN Compression or OMGD)",
                            description="Trains on the train1 part of the dataset (a split is recorded if none "
                                        "exists) and writes OUT/supernet.pt.")
    p.add_argument("--method", choices=["gan-compression", "omgd"], default="gan-compression")
    p.add_argument("--space", default=None, help="search space (see `ganas space list`; default for GAN Compression: "
                                                 "the one that fits the teacher's family, width and depth)")
    p.add_argument("--student-arch", default=None, help="default: the space's architecture (mobile_resnet, unet)")
    p.add_argument("--blocks", type=int, default=None, help="student blocks (default: the teacher's, or 9)")
    p.add_argument("--sampling", default="uniform", choices=["uniform", "sandwich"],
                   help="subnet per step: uniform, or sandwich (largest, smallest, random)")
    p.add_argument("--gan-mode", default=None, help="default hinge (paired) / lsgan (unpaired)")
    p.add_argument("--register", action="store_true", help="record the supernet in the search store when done")
    p.add_argument("--name", default=None, help="registry name (default: from the output folder)")
    p.add_argument("--workspace", default=None, help="workspace for --register (default ./ganas-workspace)")
    store_flag(p)
    gc = p.add_argument_group("GAN Compression")
    gc.add_argument("--teacher", type=Path, help="teacher: a ganas teacher.pt, another implementation's state dict "
                                                 "(.pth/.pt/.ckpt/.safetensors), a TorchScript file, a torch.export "
                                                 "archive (.pt2) or an ONNX model (see docs/teachers.md)")
    _teacher_import_flags(gc)
    gc.add_argument("--lambda-recon", type=float, default=None, help="default 100 (paired) / 10 (unpaired)")
    gc.add_argument("--lambda-distill", type=float, default=None, help="default 1 (paired) / 0.01 (unpaired)")
    gc.add_argument("--init-from", type=Path, default=None,
                    help="start the supernet from a trained full-width generator of the student's architecture")
    gc.add_argument("--sort-channels", action="store_true",
                    help="with --init-from: reorder its channels by importance first (anycost-GAN), so slim "
                         "configs start from the strongest channels")
    om = p.add_argument_group("OMGD")
    om.add_argument("--student-ngf", type=int, default=None, help="static student width (default: the space's ngf)")
    om.add_argument("--eta", type=int, default=4, help="wide teacher width multiplier (default 4)")
    om.add_argument("--teachers", default=None, choices=["both", "wide", "deep"],
                    help="online teachers: wide (ngf x eta), deep, or both (default: both on paired data, wide on "
                         "unpaired data, as OMGD's CycleGAN recipe)")
    om.add_argument("--n-dis", type=int, default=4, help="unpaired data: student steps per teacher step, in phases "
                                                         "(OMGD's n_dis; default 4)")
    om.add_argument("--teacher-phase", type=int, default=100,
                    help="unpaired data: teacher steps per phase; then n-dis x as many student steps (default 100)")
    om.add_argument("--perceptual", default="vgg16", choices=["vgg16", "none"],
                    help="vgg16 needs vgg16-397923af.pth; none: SSIM + TV + channel distillation only")
    om.add_argument("--vgg-weights", default=None, help="path of vgg16-397923af.pth")
    om.add_argument("--ssim-range", default=None, choices=["signed", "unit"],
                    help="SSIM on [-1, 1] outputs (signed, OMGD's code) or on [0, 1] (unit); default: signed with "
                         "vgg16, unit with --perceptual none (see docs/training.md)")
    om.add_argument("--lambda-cd", type=float, default=10.0, help="channel distillation weight (default 10)")
    om.add_argument("--lambda-ssim", type=float, default=10.0)
    om.add_argument("--lambda-style", type=float, default=1e4)
    om.add_argument("--lambda-perceptual", type=float, default=10.0)
    om.add_argument("--lambda-tv", type=float, default=1e-5)
    _discriminator(p)
    _common(p, steps=2000)
    p.set_defaults(func=_train_supernet)


def _finetune_parser(commands) -> None:
    p = commands.add_parser("finetune", help="fine-tune one config of a supernet with GAN Compression's losses",
                            description="Writes OUT/subnet.pt, a static generator ready for `ganas export`.")
    p.add_argument("--supernet", required=True, type=Path, help="supernet.pt")
    p.add_argument("--config", required=True, help="config string, e.g. 16_16_24_16_32_64_16_24")
    p.add_argument("--inside", action="store_true", help="train inside the supernet (default: extract, then train)")
    p.add_argument("--teacher", required=True, type=Path, help="teacher checkpoint (see docs/teachers.md)")
    _teacher_import_flags(p)
    p.add_argument("--gan-mode", default=None)
    p.add_argument("--lambda-recon", type=float, default=None)
    p.add_argument("--lambda-distill", type=float, default=None)
    _discriminator(p)
    _common(p, steps=1000)
    p.set_defaults(func=_finetune)


# -- the commands ---------------------------------------------------------------------------------
def _loop(args):
    """The loop's settings; its batch is the total over the workers (what a resumed run must keep)."""
    from distill.loop import LoopSettings

    _set_threads(args.threads)
    return LoopSettings(args.steps, args.batch_size * (args.workers or 1), args.seed, args.checkpoint_every)


@contextlib.contextmanager
def _runner(args) -> Iterator[Any]:
    """The steps' runner: this process, or Ray Train with --workers (its cluster and checkpoint storage checked on
    entry, before anything trains or is written; Ray shut down on exit when this command started it)."""
    from distill.loop import run_training

    if args.workers is None:
        given = [flag for flag, value in (("--ray-address", args.ray_address), ("--checkpoint-storage",
                 args.checkpoint_storage), ("--device cuda", args.device != "cpu")) if value]
        if given:
            from nas.cli import CliUsageError

            raise CliUsageError(f"{', '.join(given)} applies to data-parallel training: add --workers N")
        yield run_training
        return
    from nas.ray_training import ClusterSettings, RayTrainRunner

    with RayTrainRunner(ClusterSettings(args.workers, args.ray_address, args.device, args.checkpoint_storage,
                                        args.threads)) as runner:
        runner.prepare(args.out)
        yield runner


def _set_threads(threads: int | None) -> None:
    import torch

    from foundation.threads import usable_cores

    if threads is not None and threads < 1:
        from nas.cli import CliUsageError

        raise CliUsageError(f"--threads {threads} must be at least 1")
    torch.set_num_threads(threads or usable_cores())


def _data(args):
    from distill.jobs import DataSpec

    return DataSpec(args.data, args.layout, args.direction, args.size)


def _arch_hparams(arch: str, ngf: int | None, blocks: int | None, norm: str | None = None) -> dict:
    from supernet.registry import get_architecture

    entry = get_architecture(arch)
    hparams: dict = {}
    if ngf is not None:
        hparams["ngf"] = ngf
    if blocks is not None:
        hparams["num_downs" if "num_downs" in entry.parameters() else "n_blocks"] = blocks
    if norm is not None:
        hparams["norm"] = norm
    return hparams


def _train_teacher(args) -> int:
    from distill.jobs import train_teacher
    from distill.teacher import TeacherSettings

    settings = TeacherSettings(arch=args.arch, hparams=_arch_hparams(args.arch, args.ngf, args.blocks, args.norm),
                               gan_mode=args.gan_mode, lambda_l1=args.lambda_l1, lambda_cycle=args.lambda_cycle,
                               lambda_identity=args.lambda_identity, netd=args.netd, ndf=args.ndf,
                               n_layers_d=args.n_layers_d, lr=args.lr)
    with _runner(args) as runner:
        path = train_teacher(args.method, _data(args), settings, _loop(args), args.out, args.resume, not args.quiet,
                             runner)
    print(f"teacher: {path}")
    return 0


def _teacher_source(args, layers: tuple[str, ...] | None):
    """The teacher, loaded and run once on the data before anything is written: how it loaded printed (its
    mapping saved when asked), and fixed in the returned source so that training and the supernet's record
    load it the same way. Returns the source and the loaded teacher."""
    from distill.jobs import TeacherSource, check_teacher, teacher_example
    from nas.cli import CliUsageError
    from supernet.foreign import read_key_map, write_key_map

    if args.teacher is None:
        raise CliUsageError("--method gan-compression needs --teacher (a ganas teacher.pt, another implementation's "
                            "generator state dict, or a program: see docs/teachers.md)")
    hparams = {"ngf": args.teacher_ngf} if args.teacher_ngf else {}
    key_map = read_key_map(args.teacher_map) if args.teacher_map is not None else None
    source, loaded = TeacherSource(args.teacher, args.teacher_arch, hparams, key_map).resolve()
    check_teacher(loaded.generator, *teacher_example(_data(args), args.seed), str(args.teacher), layers)
    print("\n".join(loaded.report(str(args.teacher))))
    if not (layers if layers is not None else loaded.generator.distill_layer_names()):
        print(f"teacher {args.teacher}: no layers to distil (--teacher-layers), so the run distils its outputs only "
              "(paired data: L1 to them, --lambda-output; unpaired: they are the targets; see docs/teachers.md)")
    if args.save_teacher_map is not None:
        if loaded.imported is None:
            print(f"teacher {args.teacher} is a {loaded.kind} file: it needs no key mapping, none saved")
        else:
            print(f"key mapping saved to {write_key_map(args.save_teacher_map, loaded.imported)} (give it with "
                  "--teacher-map)")
    return source, loaded


def _teacher_layers(args, recorded: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """``--teacher-layers a,b,c`` as names (``recorded``: what the supernet was distilled with, when not given)."""
    if args.teacher_layers is None:
        return recorded
    names = tuple(name.strip() for name in args.teacher_layers.split(",") if name.strip())
    if not names:
        from nas.cli import CliUsageError

        raise CliUsageError("--teacher-layers takes module names separated by commas, e.g. model.9,model.12")
    return names


def _space_for(args, loaded) -> str:
    """``--space``, or the space that fits the teacher's family, width and depth (printed)."""
    from nas.cli import CliUsageError
    from supernet.spaces import get_space, space_for_teacher

    if args.space is not None:
        return get_space(args.space).name
    if loaded.is_program:
        raise CliUsageError(f"teacher {args.teacher} is a {loaded.kind} program, whose family and width ganas cannot "
                            "read: give --space (see `ganas space list`)")
    teacher = loaded.generator
    space = space_for_teacher(teacher.arch, teacher.hparams())
    print(f"space: {space.name} (the {space.family} space for this teacher: ngf {teacher.ngf}"
          + (f", {teacher.num_downs} levels" if space.family == "unet" else "") + "; give --space to choose another)")
    return space.name


def _gc_settings(args, space: str, student_arch: str | None, student_hparams: dict, sampling: str,
                 teacher_layers: tuple[str, ...] | None = None):
    """GAN Compression's settings from the flags that ``train supernet`` and ``train finetune`` share; the
    student (architecture, hyper-parameters, sampling) is passed in, since only ``train supernet`` has flags
    for it (fine-tuning takes its student from the supernet checkpoint)."""
    from distill.gan_compression import GANCompressionSettings
    from imagedata import detect_layout

    layout = args.layout or detect_layout(args.data).layout
    return GANCompressionSettings(
        space=space, task="unpaired" if layout == "unaligned" else "paired", student_arch=student_arch,
        student_hparams=student_hparams, sampling=sampling, lambda_recon=args.lambda_recon,
        lambda_distill=args.lambda_distill, gan_mode=args.gan_mode, netd=args.netd, ndf=args.ndf,
        n_layers_d=args.n_layers_d, lr=args.lr, teacher_layers=teacher_layers, lambda_output=args.lambda_output)


def _train_supernet(args) -> int:
    from nas.cli import CliUsageError

    if args.method == "gan-compression":  # teacher read and run, space chosen, settings checked: before any write
        layers = _teacher_layers(args)
        teacher, loaded = _teacher_source(args, layers)
        student = {"n_blocks": args.blocks} if args.blocks else {}
        settings = _gc_settings(args, _space_for(args, loaded), args.student_arch, student, args.sampling, layers)
    # a store that cannot be opened is reported before the training, once nothing else can refuse the run
    store_check = (lambda: workspace_of(args).open_store().close()) if args.register else None
    if args.method == "gan-compression":
        from distill.jobs import train_gan_compression

        with _runner(args) as runner:
            path = train_gan_compression(_data(args), teacher, settings, _loop(args), args.out, args.resume,
                                         not args.quiet, args.init_from, args.sort_channels, store_check, runner)
    else:
        from distill.jobs import train_omgd
        from distill.losses import OMGDStudentLoss

        if args.space is None and args.student_ngf is None:
            raise CliUsageError("--method omgd needs --space (a supernet) or --student-ngf (one static student)")
        student_arch = args.student_arch or ("mobile_resnet" if args.space is None else None)
        if student_arch is None:
            from supernet.spaces import get_space

            student_arch = get_space(args.space).architecture
        hparams = _arch_hparams(student_arch, args.student_ngf, args.blocks)
        ssim_range = args.ssim_range or ("unit" if args.perceptual == "none" else "signed")
        loss = OMGDStudentLoss(lambda_ssim=args.lambda_ssim, lambda_style=args.lambda_style,
                               lambda_perceptual=args.lambda_perceptual, lambda_tv=args.lambda_tv,
                               lambda_cd=args.lambda_cd, perceptual=args.perceptual, vgg_weights=args.vgg_weights,
                               ssim_range=ssim_range)
        if args.perceptual == "none":
            print(f"OMGD student loss: --perceptual none, so SSIM (on {'[0, 1]' if ssim_range == 'unit' else '[-1, 1]'}"
                  ") + TV + channel distillation only")
        with _runner(args) as runner:
            path = train_omgd(_data(args), _omgd_settings(args, student_arch, hparams, loss), _loop(args), args.out,
                              args.resume, not args.quiet, store_check, runner)
    what = {"supernet.pt": "supernet", "subnet.pt": "static student"}.get(path.name, "stopped early, resume from")
    print(f"{what}: {path}")
    if args.register and path.name.endswith("supernet.pt"):
        from nas.registry import register_supernet

        workspace = workspace_of(args)
        with workspace.open_store() as store:
            record = register_supernet(store, path, args.name, workspace=workspace)
        print(f"registered supernet {record.name!r} in {workspace.store_label}")
    return 0


def _omgd_settings(args, student_arch: str, hparams: dict, loss):
    """OMGD's settings for the data: pix2pix-style teachers on paired data, CycleGAN teacher pairs on unpaired."""
    from distill.omgd import OMGDSettings
    from distill.omgd_unpaired import UnpairedOMGDSettings
    from imagedata import detect_layout

    common = dict(student_arch=student_arch, student_hparams=hparams, space=args.space, sampling=args.sampling,
                  eta=args.eta, student_loss=loss, netd=args.netd, ndf=args.ndf, n_layers_d=args.n_layers_d,
                  lr=args.lr)
    common.update({k: v for k, v in (("teachers", args.teachers), ("gan_mode", args.gan_mode)) if v is not None})
    if (args.layout or detect_layout(args.data).layout) == "unaligned":
        return UnpairedOMGDSettings(**common, n_dis=args.n_dis, teacher_phase=args.teacher_phase)
    return OMGDSettings(**common)


def _finetune(args) -> int:
    from distill.jobs import finetune
    from supernet.space import parse_config_numbers

    space, arch, hparams, recorded_layers = _supernet_student(args.supernet)
    layers = _teacher_layers(args, recorded_layers)
    teacher, _ = _teacher_source(args, layers)
    settings = _gc_settings(args, space, arch, hparams, "uniform", layers)  # finetune() fixes the sampling
    with _runner(args) as runner:
        path = finetune(_data(args), args.supernet, parse_config_numbers(args.config), teacher, settings,
                        _loop(args), args.out, outside=not args.inside, resume=args.resume, progress=not args.quiet,
                        runner=runner)
    print(f"subnet: {path}")
    return 0


def _supernet_student(supernet: Path) -> tuple[str, str, dict, tuple[str, ...] | None]:
    """The search space, architecture, hyper-parameters and distilled teacher layers (as ``--teacher-layers``
    gave them) recorded in a supernet checkpoint."""
    from supernet.checkpoint import read_checkpoint
    from supernet.errors import CheckpointError

    record = read_checkpoint(supernet)
    record = record if isinstance(record, dict) else {}
    space = (record.get("meta") or {}).get("space")
    if not space or not record.get("arch"):
        raise CheckpointError(f"{supernet} records no search space; is it a supernet written by "
                              "`ganas train supernet`?")
    layers = ((record.get("meta") or {}).get("losses") or {}).get("teacher_layers")
    return space, record["arch"], dict(record.get("hparams") or {}), tuple(layers) if layers is not None else None
