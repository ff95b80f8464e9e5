"""Training jobs from dataset folders to self-describing checkpoints.

A job opens the dataset (``imagedata``), builds a recipe, runs the resumable loop and writes the
final generator checkpoint, whose ``meta`` records architecture, search space, dataset, teacher
and losses (all loadable with ``torch.load(..., weights_only=True)``). Supernets train on the
``train1`` part of a recorded split, so that search scores candidates on ``train2`` only.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from foundation.hashing import file_sha256
from foundation.registry import Registry
from imagedata import FolderDataset, Preprocess, create_dataset, detect_layout, split_dataset
from imagedata.splits import SPLIT_FILE
from supernet.checkpoint import generator_from_record, read_checkpoint, save_generator
from supernet.foreign import MappingFile
from supernet.generators import ChannelGenerator
from supernet.space import format_config
from supernet.teachers import LoadedTeacher, TeacherOptions, load_teacher

from .gan_compression import GANCompressionRecipe, GANCompressionSettings
from .loop import LoopSettings, Recipe, TrainingError, TrainingRunner, run_training
from .omgd import OMGDRecipe, OMGDSettings, deep_teacher_of
from .omgd_unpaired import UnpairedOMGDRecipe, UnpairedOMGDSettings
from .online import OnlineFinetuneRecipe, OnlineFinetuneSettings
from .teacher import TEACHER_RECIPES, TeacherSettings

SUPERNET_FILE = "supernet.pt"
TEACHER_FILE = "teacher.pt"
SUBNET_FILE = "subnet.pt"


@dataclass(frozen=True)
class DataSpec:
    """Where the training images are and how to read them."""

    root: Path
    layout: str | None = None  # None: detect
    direction: str = "AtoB"
    size: int = 256  # crop size; load size follows pix2pix's 286/256 ratio
    holdout: float = 0.2  # fraction held out as train2 when no split is recorded yet

    def open(self, split: str, seed: int, train: bool | None = None) -> FolderDataset:
        return create_dataset(self.root, self.layout, split, preprocess=Preprocess.for_size(self.size), seed=seed,
                              direction=self.direction, train=train)

    def layout_name(self) -> str:
        return self.layout or detect_layout(self.root).layout

    def ensure_split(self, seed: int) -> bool:
        """Record a train1/train2 split if none exists; True when one was made now."""
        if (Path(self.root) / SPLIT_FILE).exists():
            return False
        split_dataset(self.root, self.layout, seed=seed, fraction=self.holdout)
        return True

    def describe(self, training_split: str, seed: int) -> dict[str, Any]:
        """The dataset as checkpoints record it (identity of each split used)."""
        layout = self.layout_name()
        info: dict[str, Any] = {"root": str(Path(self.root).resolve()), "layout": layout, "direction": self.direction,
                                "size": self.size, "training_split": training_split}
        data = self.open(training_split, seed)
        info["paired"] = bool(data.paired) and layout != "unaligned"
        info["labelled"] = layout == "labelled"
        info["training_identity"] = data.fingerprint()
        if training_split == "train1":
            info["search_split"] = "train2"
            info["search_identity"] = self.open("train2", seed, train=False).fingerprint()
        return info


def _channels(data: FolderDataset) -> tuple[int, int]:
    item = data[0]
    return int(item["A"].shape[0]), int(item["B"].shape[0])


def train_teacher(method: str, data: DataSpec, settings: TeacherSettings, loop: LoopSettings, out: Path,
                  resume: bool = False, progress: bool = True, runner: TrainingRunner = run_training) -> Path:
    """Train a pix2pix or CycleGAN teacher on the whole training split; writes ``out/teacher.pt``.

    ``runner`` runs the steps: in this process, or data-parallel (every job takes one)."""
    if method not in TEACHER_RECIPES:
        raise TrainingError(f"unknown teacher method {method!r}; choose one of {', '.join(TEACHER_RECIPES)}")
    dataset = data.open("train", loop.seed)
    recipe = TEACHER_RECIPES[method](settings, loop.steps, _channels(dataset), seed=loop.seed)
    height, width = (int(n) for n in dataset[0]["A"].shape[-2:])
    for generator in recipe.outputs().values():  # a size the architecture cannot take: refused before any step
        generator.check_input_size(height, width)
    result = runner(recipe, dataset, loop, out, resume, progress, f"teacher ({method})")
    if not result["finished"]:
        return Path(result["checkpoint"])
    outputs = recipe.outputs()
    meta = {"kind": "teacher", "method": method, "dataset": data.describe("train", loop.seed),
            "settings": asdict(settings), "steps": loop.steps, "seed": loop.seed,
            "discriminator": {"state_dict": (recipe.discriminator if method == "pix2pix" else recipe.d_b).state_dict(),
                              "netd": settings.netd, "ndf": settings.ndf, "n_layers_d": settings.n_layers_d,
                              "d_norm": settings.d_norm}}
    path = save_generator(outputs["G"], Path(out) / TEACHER_FILE, **meta)
    if "G_BA" in outputs:
        save_generator(outputs["G_BA"], Path(out) / "teacher_BA.pt", **{**meta, "discriminator": None})
    return path


@dataclass(frozen=True)
class TeacherSource:
    """A teacher file of any kind :mod:`supernet.teachers` reads: a ganas checkpoint, another implementation's
    state dict, or a program (TorchScript, torch.export, ONNX); see docs/teachers.md.

    ``arch`` and ``hparams`` narrow what a state dict may be (the rest is read off its tensors);
    ``key_map`` maps its keys to ganas's (a :class:`~supernet.foreign.MappingFile` given by hand, or the
    dict an earlier import recorded); ``kind`` is the kind the file must be (None: whatever it is).
    :meth:`resolve` fixes all four to what the load found, so that every later load of the file
    (training, search workers, finalize) repeats it exactly.
    """

    path: Path
    arch: str | None = None
    hparams: dict = field(default_factory=dict)
    key_map: Any = None
    kind: str | None = None

    def load(self) -> tuple[torch.nn.Module, dict]:
        loaded = self.open()
        return loaded.generator, loaded.meta

    def open(self) -> LoadedTeacher:
        """The teacher (eval mode) and how it loaded."""
        path = Path(self.path)
        if not path.is_file():
            raise TrainingError(f"teacher {path} does not exist")
        options = TeacherOptions(self.arch, dict(self.hparams), self.key_map)
        return load_teacher(path.read_bytes(), str(path), options, self.kind)

    def resolve(self) -> tuple["TeacherSource", LoadedTeacher]:
        """This source with the load's findings fixed, and the loaded teacher."""
        loaded = self.open()
        imported = loaded.imported
        if imported is None:
            return TeacherSource(self.path, self.arch, dict(self.hparams), self.key_map, loaded.kind), loaded
        return TeacherSource(self.path, imported.arch, dict(imported.hparams), imported.key_map, loaded.kind), loaded

    def describe(self) -> dict[str, Any]:
        """What checkpoints and the search store record of the teacher: enough to load and verify it again."""
        key_map = self.key_map.mapping if isinstance(self.key_map, MappingFile) else self.key_map
        return {"path": str(Path(self.path).resolve()), "sha256": file_sha256(self.path), "arch": self.arch,
                "hparams": dict(self.hparams), "key_map": key_map, "kind": self.kind}


def teacher_example(data: DataSpec, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One input (1, C, H, W) and its target (C, H, W) of the dataset, read without writing anything."""
    item = data.open("train", seed)[0]
    return item["A"].unsqueeze(0), item["B"]


def check_teacher(teacher: torch.nn.Module, example: torch.Tensor, target: torch.Tensor, source: str,
                  layers: tuple[str, ...] | None = None) -> None:
    """Run the teacher once on one input of the data: refused unless it returns the target's channels at the
    input's size (and, for a program, can give the layers named to distil)."""
    height, width = int(example.shape[-2]), int(example.shape[-1])
    checker = getattr(teacher, "check_input_size", None)
    if callable(checker):
        checker(height, width)
    check_channels = getattr(teacher, "check_input_channels", None)
    if callable(check_channels):
        check_channels(int(example.shape[1]), "the data")
    check_layers = getattr(teacher, "check_layers", None)
    if layers and callable(check_layers):
        check_layers(layers)
    with torch.no_grad():
        out = teacher.eval()(example)
    wanted = (1, int(target.shape[0]), height, width)
    if tuple(out.shape) != wanted:
        raise TrainingError(
            f"teacher {source} returns {tuple(out.shape)} for an input of shape {tuple(example.shape)}, but the "
            f"data's targets are {wanted[1]}-channel {height}x{width} images: the teacher must map A to B of this "
            "dataset (check --direction, and the size and channels the teacher was made for)")


def _supernet_meta(method: str, space: str, data: DataSpec, seed: int, steps: int, teacher: dict | None,
                   losses: dict, extra: dict | None = None) -> dict[str, Any]:
    return {"kind": "supernet", "method": method, "space": space, "dataset": data.describe("train1", seed),
            "teacher": teacher, "losses": json.loads(json.dumps(losses)), "steps": steps, "seed": seed,
            **(extra or {})}


def initial_supernet(path: Path, space: str, sort: bool) -> ChannelGenerator:
    """A supernet that starts from a trained full-width generator of the student's architecture.

    With ``sort`` (anycost-GAN), its channels are first reordered by importance, so that every
    slimmer config starts from the strongest channels instead of arbitrary ones; the full-width
    network computes the same function afterwards.
    """
    from supernet.registry import create_generator
    from supernet.sorting import sort_channels
    from supernet.spaces import get_space

    generator = generator_from_record(read_checkpoint(path), str(path))
    if generator.config != (generator.ngf,) * len(generator.config):
        raise TrainingError(f"{path} holds the subnet {format_config(generator.config)}; start a supernet from a "
                            "full-width generator")
    widest = get_space(space).ngf
    if generator.ngf < widest:
        raise TrainingError(f"{path} has ngf {generator.ngf} but space {space} needs {widest}")
    supernet = create_generator(generator.arch, elastic=True, **generator.hparams())
    supernet.load_state_dict(generator.state_dict())
    if sort:
        sort_channels(supernet)
    return supernet


def train_gan_compression(data: DataSpec, teacher: TeacherSource, settings: GANCompressionSettings,
                          loop: LoopSettings, out: Path, resume: bool = False, progress: bool = True,
                          init_from: Path | None = None, sort_channels: bool = False,
                          ready: Callable[[], None] | None = None, runner: TrainingRunner = run_training) -> Path:
    """Distil ``teacher`` into a supernet of ``settings.space`` on train1; writes ``out/supernet.pt``.

    ``init_from``: start the supernet from a trained full-width generator (``sort_channels``:
    reorder its channels by importance first) instead of pix2pix's random init. ``ready`` is called
    once the teacher, the student and their distilled layers are checked, before anything is written.
    """
    if sort_channels and init_from is None:
        raise TrainingError("--sort-channels reorders a trained network's channels: give --init-from CHECKPOINT")
    teacher_g, teacher_meta = teacher.load()  # before anything is written: a teacher that fails leaves no split
    example, target = teacher_example(data, loop.seed)
    check_teacher(teacher_g, example, target, str(teacher.path), settings.teacher_layers)
    d_state = (teacher_meta.get("discriminator") or {}).get("state_dict") if settings.task == "paired" else None
    student = initial_supernet(Path(init_from), settings.space, sort_channels) if init_from is not None else None
    recipe = GANCompressionRecipe(settings, teacher_g, loop.steps, example, seed=loop.seed, student=student,
                                  teacher_discriminator=_compatible(d_state, settings, teacher_meta))
    if ready is not None:
        ready()
    data.ensure_split(loop.seed)
    dataset = data.open("train1", loop.seed)
    result = runner(recipe, dataset, loop, out, resume, progress, "supernet (GAN Compression)")
    if not result["finished"]:
        return Path(result["checkpoint"])
    init = {"path": str(Path(init_from).resolve()), "sha256": file_sha256(init_from),
            "sorted_channels": sort_channels} if init_from is not None else None
    meta = _supernet_meta("gan-compression", settings.space, data, loop.seed, loop.steps, teacher.describe(),
                          asdict(settings), {"distilled_layers": recipe.student_layers, "initialised_from": init})
    return save_generator(recipe.student, Path(out) / SUPERNET_FILE, **meta)


def _compatible(d_state: dict | None, settings: GANCompressionSettings, teacher_meta: dict) -> dict | None:
    """The teacher's discriminator weights, when they fit the discriminator this run builds."""
    if d_state is None:
        return None
    d = teacher_meta["discriminator"]
    same = (d["netd"], d["ndf"], d["n_layers_d"], d["d_norm"]) == (settings.netd, settings.ndf, settings.n_layers_d,
                                                                 settings.d_norm)
    return d_state if same else None


def train_omgd(data: DataSpec, settings: OMGDSettings, loop: LoopSettings, out: Path, resume: bool = False,
               progress: bool = True, ready: Callable[[], None] | None = None,
               runner: TrainingRunner = run_training) -> Path:
    """OMGD online distillation on train1; writes ``out/supernet.pt`` (or ``subnet.pt``) and the A -> B teacher it
    distilled from as ``out/teacher.pt`` (``teacher_BA.pt`` too on unpaired data), recorded as the student's teacher.

    Paired data (aligned, labelled) takes :class:`OMGDSettings`; unpaired (unaligned) data
    :class:`~distill.omgd_unpaired.UnpairedOMGDSettings` (CycleGAN teacher pairs). ``ready`` is called once the
    data and the settings are checked, before anything is written.
    """
    unpaired = data.layout_name() == "unaligned"  # a dataset that cannot be read is refused here, before any write
    if unpaired != isinstance(settings, UnpairedOMGDSettings):
        raise TrainingError("unaligned (unpaired) data takes UnpairedOMGDSettings (CycleGAN teacher pairs)" if unpaired
                            else "UnpairedOMGDSettings are for unaligned (unpaired) data; this dataset is paired: "
                                 "use OMGDSettings")
    if settings.teachers != "wide":
        deep_teacher_of(settings.student_arch)  # refused before the split is written
    if settings.teachers == "deep" and settings.student_loss.lambda_cd > 0:
        raise TrainingError("channel distillation (lambda_cd > 0) distils the wide teacher's channels, and --teachers "
                            "deep trains none: add --lambda-cd 0 (outputs only), or use --teachers both")
    whole = data.open("train", loop.seed)
    channels = _channels(whole)  # both sides readable (an empty domain is refused), before any write
    from .omgd import OMGDStudent

    height, width = (int(n) for n in whole[0]["A"].shape[-2:])  # a size the student cannot take: before any write
    OMGDStudent(settings, channels, loop.seed).student.check_input_size(height, width)
    _check_teacher_files_free(Path(out))
    if ready is not None:
        ready()
    data.ensure_split(loop.seed)
    dataset = data.open("train1", loop.seed)
    example = dataset[0]["A"].unsqueeze(0)
    recipe_class = UnpairedOMGDRecipe if unpaired else OMGDRecipe
    recipe = recipe_class(settings, loop.steps, example, seed=loop.seed, channels=_channels(dataset))
    result = runner(recipe, dataset, loop, out, resume, progress, "OMGD" + (" (unpaired)" if unpaired else ""))
    if not result["finished"]:
        return Path(result["checkpoint"])
    outputs = recipe.outputs()
    teacher = _save_online_teachers(outputs, data, loop, Path(out))
    meta = _supernet_meta("omgd", settings.space or "", data, loop.seed, loop.steps, teacher, asdict(settings),
                          {"disabled_terms": recipe.criterion.disabled_terms(), "task": "unpaired" if unpaired
                           else "paired"})
    if recipe.student.elastic:
        return save_generator(recipe.student, Path(out) / SUPERNET_FILE, **meta)
    meta["kind"] = "subnet"
    return save_generator(recipe.student, Path(out) / SUBNET_FILE, **meta)


def _check_teacher_files_free(out: Path) -> None:
    """OMGD writes its online teachers as ``out/teacher.pt`` (and ``teacher_BA.pt``): a teacher of another run there
    (``ganas train teacher --out`` the same folder, the teacher a supernet records) is refused, not overwritten."""
    for name in (TEACHER_FILE, "teacher_BA.pt"):
        path = out / name
        if not path.exists():
            continue
        try:
            record = read_checkpoint(path)
            method = (record.get("meta") or {}).get("method") if isinstance(record, dict) else None
        except Exception:  # not a ganas checkpoint: not OMGD's either
            method = None
        if method != "omgd":
            raise TrainingError(f"{path} exists and is not an OMGD run's online teacher; OMGD writes its teachers "
                                "there at the end of the run: choose another --out (or move the file)")


def _save_online_teachers(outputs: dict, data: DataSpec, loop: LoopSettings, out: Path) -> dict[str, Any]:
    """Write the teachers OMGD trained online (A -> B as ``teacher.pt``, its B -> A partner as ``teacher_BA.pt``);
    returns the A -> B one as the student's record keeps it (the teacher search and finalize compare with)."""
    meta = {"kind": "teacher", "method": "omgd", "dataset": data.describe("train1", loop.seed), "steps": loop.steps,
            "seed": loop.seed, "discriminator": None}
    path = save_generator(outputs["teacher"], out / TEACHER_FILE, **meta)
    if "teacher_BA" in outputs:
        save_generator(outputs["teacher_BA"], out / "teacher_BA.pt", **meta)
    source, _ = TeacherSource(path).resolve()
    return source.describe()


def finetune(data: DataSpec, supernet_path: Path, config: tuple[int, ...], teacher: TeacherSource,
             settings: GANCompressionSettings, loop: LoopSettings, out: Path, outside: bool = True,
             resume: bool = False, progress: bool = True, runner: TrainingRunner = run_training) -> Path:
    """Fine-tune one config with GAN Compression's losses, as an extracted subnet (``outside``) or
    inside the supernet; writes ``out/subnet.pt`` (a static generator either way)."""
    record = read_checkpoint(supernet_path)
    supernet = generator_from_record(record, str(supernet_path))
    if not supernet.elastic:
        raise TrainingError(f"{supernet_path} is not a supernet")
    teacher_g, _ = teacher.load()
    check_teacher(teacher_g, *teacher_example(data, loop.seed), str(teacher.path), settings.teacher_layers)
    subnet, fixed = finetune_subnet(data, supernet, config, teacher_g, settings, loop, out, outside, resume, progress,
                                    runner=runner)
    if subnet is None:
        return Path(out) / "last.pt"
    meta = {"kind": "subnet", "method": "finetune", "config": format_config(config), "outside": outside,
            "supernet": {"path": str(Path(supernet_path).resolve()), "sha256": file_sha256(supernet_path)},
            "dataset": dict((record.get("meta") or {}).get("dataset") or {}), "teacher": teacher.describe(),
            "losses": json.loads(json.dumps(asdict(fixed))), "steps": loop.steps}
    return save_generator(subnet, Path(out) / SUBNET_FILE, **meta)


@dataclass(frozen=True)
class FinetuneRecipe:
    """One way to fine-tune an extracted subnet: its settings (from the dict a finalize job stores) and how it
    builds the training recipe for one config."""

    name: str
    description: str
    settings: Callable[[dict], Any]
    build: Callable[..., tuple[Recipe, Any]]  # (settings, teacher, student, config, steps, example, seed,
    #                                            teacher_meta) -> (training recipe, the settings it trains with)


def _gan_compression_recipe(settings: GANCompressionSettings, teacher, student, config, steps, example, seed,
                            teacher_meta):
    fixed = GANCompressionSettings(**{**asdict(settings), "sampling": "fixed", "fixed_config": tuple(config)})
    return GANCompressionRecipe(fixed, teacher.eval(), steps, example, seed=seed, student=student), fixed


def _online_recipe(settings: OnlineFinetuneSettings, teacher, student, config, steps, example, seed, teacher_meta):
    own = settings.with_teacher_discriminator(teacher_meta or {})
    d_state = ((teacher_meta or {}).get("discriminator") or {}).get("state_dict")
    return OnlineFinetuneRecipe(own, teacher, student, steps, example, seed, d_state), own


FINETUNE_RECIPES: Registry[FinetuneRecipe] = Registry("fine-tuning recipe", TrainingError, key="name")
FINETUNE_RECIPES.add(FinetuneRecipe(
    "gan-compression", "GAN Compression's: the subnet against a frozen teacher (distilled features, L1 to the "
    "ground truth, a discriminator)", lambda values: GANCompressionSettings(**values), _gan_compression_recipe))
FINETUNE_RECIPES.add(FinetuneRecipe(
    "online", "OMGD's: the teacher trains on online, the subnet learns only from its outputs and features "
    "(paired data, a teacher with weights)", OnlineFinetuneSettings.from_dict, _online_recipe))


def finetune_subnet(data: DataSpec, supernet: ChannelGenerator, config: tuple[int, ...], teacher: torch.nn.Module,
                    settings: GANCompressionSettings, loop: LoopSettings, out: Path, outside: bool = True,
                    resume: bool = False, progress: bool = True, recipe: str = "gan-compression",
                    teacher_meta: dict | None = None, runner: TrainingRunner = run_training
                    ) -> tuple[ChannelGenerator | None, Any]:
    """The training part of :func:`finetune`, on models already in memory (a search worker's), with one of
    :data:`FINETUNE_RECIPES` (``settings`` of its kind; ``teacher_meta``: the teacher checkpoint's meta).

    Checkpoints go to ``out/last.pt`` (resumable); returns the fine-tuned static subnet, or None
    when the run stopped before its last step, and the settings it trained with.
    """
    from supernet.extract import extract_subnet

    way = FINETUNE_RECIPES.get(recipe)
    if not outside and recipe != "gan-compression":
        raise TrainingError(f"the {recipe} recipe fine-tunes an extracted subnet only (outside the supernet)")
    dataset = data.open("train1" if (Path(data.root) / SPLIT_FILE).exists() else "train", loop.seed)
    student = extract_subnet(supernet, config) if outside else supernet
    training, used = way.build(settings, teacher, student, config, loop.steps, dataset[0]["A"].unsqueeze(0),
                               loop.seed, teacher_meta)
    result = runner(training, dataset, loop, out, resume, progress, f"fine-tune {format_config(config)}")
    if not result["finished"]:
        return None, used
    return (training.student if outside else extract_subnet(training.student, config)), used
