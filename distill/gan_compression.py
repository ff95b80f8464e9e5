"""GAN Compression: distil a frozen teacher into a once-for-all supernet (and fine-tune one config).

Each step trains one subnet sampled from the search space (uniform, or the sandwich rule) with
GAN + reconstruction + lambda_distill x sum over the distilled layers of
MSE(1x1 conv(student feature), teacher feature). Reconstruction is L1 to the ground truth x100
for paired tasks, and L1 to the teacher's output x10 for unpaired ones (pseudo-pairs). The 1x1
mappings are elastic on their input and train with the generator.

The distilled layers are the teacher's own (``distill_layer_names()``), or the ones ``teacher_layers``
names (a program teacher names none by itself). With no layer, only the teacher's outputs are
distilled: unpaired tasks learn them anyway (pseudo-pairs), and paired tasks add L1 to the teacher's
output x ``lambda_output`` (default 10 then, 0 when features are distilled, as GAN Compression).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from supernet.generators import ChannelGenerator
from supernet.space import ChannelSearchSpace, Config
from supernet.spaces import get_space

from .loop import Recipe, TrainingError, derived_seed
from .losses import FeatureDistiller, FeatureTap, GANLoss, probe_layers, run_with_features
from .adversarial import AdversarialSettings
from .teacher import build_generator, set_requires_grad

TASKS = ("paired", "unpaired")
OUTPUTS_ONLY_WEIGHT = 10.0  # paired, no features distilled: L1 to the teacher's output, a tenth of the ground truth's
SAMPLING = ("uniform", "sandwich", "fixed")


@dataclass(frozen=True)
class GANCompressionSettings(AdversarialSettings):
    space: str
    task: str = "paired"
    student_arch: str | None = None  # default: the space's architecture
    student_hparams: dict = field(default_factory=dict)  # default: the teacher's depth and norm, ngf of the space
    sampling: str = "uniform"
    fixed_config: tuple[int, ...] | None = None  # sampling "fixed": fine-tune this config only
    teacher_layers: tuple[str, ...] | None = None  # default: the teacher's distill_layer_names(); (): outputs only
    lambda_gan: float = 1.0
    lambda_recon: float | None = None  # default 100 (paired, to ground truth) / 10 (unpaired, to teacher)
    lambda_distill: float | None = None  # default 1 (paired) / 0.01 (unpaired)
    gan_mode: str | None = None  # default hinge (paired) / lsgan (unpaired), as GAN Compression
    lambda_output: float | None = None  # paired: L1 to the teacher's output; default 10 without features, else 0

    def __post_init__(self):
        if self.task not in TASKS:
            raise TrainingError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.sampling not in SAMPLING:
            raise TrainingError(f"unknown sampling rule {self.sampling!r}; choose one of {', '.join(SAMPLING)}")
        if (self.sampling == "fixed") != (self.fixed_config is not None):
            raise TrainingError("sampling 'fixed' and fixed_config go together (fine-tuning one config)")
        paired = self.task == "paired"
        defaults = {"lambda_recon": 100.0 if paired else 10.0, "lambda_distill": 1.0 if paired else 0.01,
                    "gan_mode": "hinge" if paired else "lsgan"}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.teacher_layers is not None:
            object.__setattr__(self, "teacher_layers", tuple(self.teacher_layers))
        if not paired and self.lambda_output:
            raise TrainingError("an unpaired task already learns the teacher's outputs (its reconstruction target, "
                                "--lambda-recon): --lambda-output applies to paired tasks only")

    def output_weight(self, distils_features: bool) -> float:
        """The weight of L1 to the teacher's output (paired tasks; unpaired ones reconstruct it anyway)."""
        if self.task != "paired":
            return 0.0
        if self.lambda_output is not None:
            return float(self.lambda_output)
        return 0.0 if distils_features else OUTPUTS_ONLY_WEIGHT


def student_for(settings: GANCompressionSettings, teacher: torch.nn.Module) -> tuple[str, dict]:
    """The student's architecture and hyper-parameters: the space's arch and width, the teacher's depth and norm
    (a program teacher has neither: the architecture's defaults, or ``student_hparams``)."""
    space = get_space(settings.space)
    arch = settings.student_arch or space.architecture
    hparams = {"input_nc": teacher.input_nc, "output_nc": teacher.output_nc, "ngf": space.ngf}
    if getattr(teacher, "norm", None) is not None:
        hparams["norm"] = teacher.norm
    if space.family == "resnet" and getattr(teacher, "n_blocks", None) is not None:
        hparams["n_blocks"] = teacher.n_blocks
    depth = getattr(teacher, "num_downs", None)
    if space.family == "unet" and depth is not None and space.hparams.get("num_downs", depth) != depth \
            and "num_downs" not in settings.student_hparams:
        raise TrainingError(f"space {space.name} has {space.hparams['num_downs']} levels but the teacher U-Net has "
                            f"{depth}: the student takes the teacher's depth, so give a space of {depth} levels "
                            "(ganas space list), or omit --space to have it chosen")
    hparams.update(space.hparams)  # what the space's layout fixes (a U-Net space: num_downs)
    hparams.update(settings.student_hparams)
    return arch, hparams


class GANCompressionRecipe(Recipe):
    """Trains ``student`` (an elastic supernet, or a static subnet when fine-tuning outside it)."""

    kind = "supernet-gan-compression"

    def __init__(self, settings: GANCompressionSettings, teacher: torch.nn.Module, total_steps: int,
                 example: torch.Tensor, seed: int = 0, student: ChannelGenerator | None = None,
                 teacher_discriminator: dict | None = None):
        self.settings = s = settings
        self.space: ChannelSearchSpace = get_space(s.space)
        self.teacher = teacher.eval()
        set_requires_grad(self.teacher, False)
        if getattr(teacher, "output_nc", None) is None:  # a program says its channels once it has run
            with torch.no_grad():
                teacher(example)
        if student is None:
            arch, hparams = student_for(s, teacher)
            student = build_generator(arch, hparams, derived_seed(seed, "student"), elastic=True)
        self.student = student.train()
        if student.elastic and len(student.config) != self.space.num_positions:
            raise TrainingError(f"space {s.space} has {self.space.num_positions} positions but the "
                                f"{student.arch} supernet has {len(student.config)}")
        self.teacher_layers = list(s.teacher_layers if s.teacher_layers is not None
                                   else teacher.distill_layer_names())
        self.student_layers = student.distill_layer_names() if self.teacher_layers else []
        self._check_layer_counts(s)
        self.distiller = None  # outputs only
        if self.teacher_layers:
            # outside a configured block a supernet runs at full width, the widths the mappings take
            layers = probe_layers(student, teacher, self.student_layers, example, self.teacher_layers,
                                  concat_halves=student.distill_concat_halves)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derived_seed(seed, "mappings"))
                self.distiller = FeatureDistiller(layers)
        self.lambda_output = s.output_weight(bool(self.teacher_layers))
        in_nc, out_nc = teacher.input_nc, teacher.output_nc
        d_input = in_nc + out_nc if s.task == "paired" else out_nc
        self.discriminator = s.discriminator(d_input, derived_seed(seed, "D"))
        if teacher_discriminator is not None:  # GAN Compression starts D from the teacher's
            self.discriminator.load_state_dict(teacher_discriminator)
        self.discriminator.train()
        g_params = list(self.student.parameters()) + (list(self.distiller.parameters()) if self.distiller else [])
        self.opt_g = s.adam(g_params)
        self.opt_d = s.adam(self.discriminator.parameters())
        self.schedule = s.schedule(total_steps)
        self.gan = GANLoss(s.gan_mode)

    def _check_layer_counts(self, s: GANCompressionSettings) -> None:
        if len(self.student_layers) == len(self.teacher_layers):
            return
        if s.teacher_layers is not None:
            raise TrainingError(
                f"--teacher-layers names {len(self.teacher_layers)} layers but the student distils "
                f"{len(self.student_layers)} ({', '.join(self.student_layers)}): name one teacher layer per student "
                "layer, in the same order (or change the student's depth with --blocks)")
        raise TrainingError(
            f"the student distils {len(self.student_layers)} layers ({', '.join(self.student_layers)}) but the "
            f"teacher has {len(self.teacher_layers)} ({', '.join(self.teacher_layers)}); use a student with the "
            "teacher's depth (n_blocks / num_downs)"
        )

    @property
    def outputs_only(self) -> bool:
        """No intermediate feature is distilled: only the teacher's outputs."""
        return self.distiller is None

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps,
                "student": {"arch": self.student.arch, "hparams": self.student.hparams(),
                            "elastic": self.student.elastic},
                "teacher": {"arch": self.teacher.arch, "hparams": self.teacher.hparams()},
                "lambda_output": self.lambda_output}

    def config_for(self, step: int, rng: random.Random) -> Config | None:
        if not self.student.elastic:
            return None
        if self.settings.sampling == "fixed":
            return self.space.validate(self.settings.fixed_config)
        return self.space.draw(self.settings.sampling, step, rng)

    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        s = self.settings
        for optimizer in (self.opt_g, self.opt_d):
            self.schedule.apply(optimizer, step)
        real_a, real_b = batch["A"], batch["B"]
        config = self.config_for(step, rng)
        with torch.no_grad():
            teacher_b, teacher_features = run_with_features(self.teacher, real_a, self.teacher_layers)
        with FeatureTap(self.student, self.student_layers) as s_tap:
            fake_b = self.student(real_a, config=config)
            student_features = dict(s_tap.features)
        paired = s.task == "paired"
        judged = (lambda img: torch.cat([real_a, img], 1)) if paired else (lambda img: img)

        set_requires_grad(self.discriminator, True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (self.gan(self.discriminator(judged(fake_b.detach())), False)
                        + self.gan(self.discriminator(judged(real_b)), True))
        loss_d.backward()
        self.opt_d.step()

        set_requires_grad(self.discriminator, False)
        self.opt_g.zero_grad(set_to_none=True)
        loss_gan = self.gan(self.discriminator(judged(fake_b)), True, for_discriminator=False) * s.lambda_gan
        target = real_b if paired else teacher_b
        loss_recon = F.l1_loss(fake_b, target) * s.lambda_recon
        losses = {"G_gan": loss_gan, "G_recon": loss_recon}
        if self.distiller is not None:
            losses["G_distill"] = self.distiller(student_features, teacher_features) * s.lambda_distill
        if self.lambda_output:
            losses["G_output"] = F.l1_loss(fake_b, teacher_b) * self.lambda_output
        sum(losses.values()).backward()
        self.opt_g.step()
        return {**{name: loss.item() for name, loss in losses.items()}, "D": loss_d.item()}

    def state_dict(self) -> dict:
        return {"student": self.student.state_dict(),
                "distiller": self.distiller.state_dict() if self.distiller is not None else {},
                "D": self.discriminator.state_dict(), "opt_G": self.opt_g.state_dict(),
                "opt_D": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        if self.distiller is not None:
            self.distiller.load_state_dict(state["distiller"])
        self.discriminator.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])
