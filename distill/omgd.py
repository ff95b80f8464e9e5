"""OMGD: online multi-granularity distillation.

A wide teacher (the student's architecture at ngf x eta) and a deep teacher (``deep_resnet``:
a residual block after every down/up-sampling stage; ``deep_unet``, OMGD's ``unet_deepest``, for U-Nets) train online with GAN + L1 x100 against a
shared discriminator. The student never sees the discriminator or the ground truth: every step it
learns from the teachers' detached outputs (SSIM, VGG style and perceptual, TV) plus channel
distillation against the wide teacher's features.

Beyond the paper, the student can be a whole supernet: each step a subnet is sampled from the
search space and distilled, so the result is a once-for-all supernet ready for search.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from supernet.generators import ChannelGenerator
from supernet.space import ChannelSearchSpace, Config
from supernet.spaces import get_space

from .loop import Recipe, TrainingError, derived_seed
from .losses import ChannelDistiller, FeatureTap, GANLoss, OMGDStudentCriterion, OMGDStudentLoss, probe_layers
from .adversarial import AdversarialSettings
from .teacher import build_generator, set_requires_grad

TEACHERS = ("both", "wide", "deep")


@dataclass(frozen=True)
class DeepTeacher:
    """A student family's deep teacher: its architecture, the student hyper-parameters it keeps, and the one
    ``deep_extra_blocks`` deepens (None: its depth is fixed by the student's)."""

    arch: str
    kept: tuple[str, ...]
    extra_blocks: str | None = None


DEEP_TEACHERS = {  # student family -> deep teacher
    "resnet": DeepTeacher("deep_resnet", ("input_nc", "output_nc", "norm", "n_blocks", "dropout"), "n_blocks"),
    "unet": DeepTeacher("deep_unet", ("input_nc", "output_nc", "norm", "num_downs", "dropout", "conv_bias")),
}


@dataclass(frozen=True)
class OMGDSettings(AdversarialSettings):
    student_arch: str = "mobile_resnet"
    student_hparams: dict = field(default_factory=dict)  # ngf, n_blocks / num_downs, norm
    space: str | None = None  # set: train the whole supernet (a random subnet per step)
    sampling: str = "uniform"  # with a space: uniform or sandwich
    eta: int = 4  # wide teacher ngf = student ngf x eta
    deep_ngf: int | None = None  # default: the student's ngf
    deep_extra_blocks: int = 0  # trunk blocks added to the deep teacher beyond the student's
    teachers: str = "both"
    student_loss: OMGDStudentLoss = field(default_factory=OMGDStudentLoss)
    lambda_gan: float = 1.0
    lambda_recon: float = 100.0
    gan_mode: str = "hinge"

    def __post_init__(self):
        if self.teachers not in TEACHERS:
            raise TrainingError(f"unknown teachers {self.teachers!r}; choose one of {', '.join(TEACHERS)}")
        if self.eta < 1:
            raise TrainingError(f"eta must be >= 1, got {self.eta}")
        if self.sampling not in ("uniform", "sandwich"):
            raise TrainingError(f"unknown sampling rule {self.sampling!r}; choose uniform or sandwich")


def deep_teacher_of(arch: str) -> DeepTeacher:
    """The deep teacher of a student architecture (a registered name or family), or a TrainingError."""
    from supernet.registry import get_architecture

    family = get_architecture(arch).family.removeprefix("mobile_")
    found = DEEP_TEACHERS.get(family)
    if found is None:
        raise TrainingError(f"no deep teacher architecture for a {arch} student; use --teachers wide "
                            f"(deep teachers exist for the families: {', '.join(DEEP_TEACHERS)})")
    return found


def deep_teacher(student: ChannelGenerator, settings: OMGDSettings) -> tuple[str, dict]:
    """The deep teacher's architecture and hyper-parameters for ``student`` (its family's, at ``deep_ngf``)."""
    found = deep_teacher_of(student.arch)
    hparams = {k: v for k, v in student.hparams().items() if k in found.kept}
    hparams["ngf"] = settings.deep_ngf or student.ngf
    if settings.deep_extra_blocks:
        if found.extra_blocks is None:
            raise TrainingError(f"deep_extra_blocks deepens a ResNet deep teacher; {found.arch} takes the depth of "
                                f"the {student.arch} student")
        hparams[found.extra_blocks] += settings.deep_extra_blocks
    return found.arch, hparams


def student_hparams(settings: OMGDSettings, channels: tuple[int, int]) -> tuple[ChannelSearchSpace | None, dict]:
    """The student's search space (None: one static student) and hyper-parameters, the space's where it fixes them."""
    space = get_space(settings.space) if settings.space else None
    hparams = {"input_nc": channels[0], "output_nc": channels[1], **settings.student_hparams}
    if space is not None:
        for name, value in space.supernet_hparams().items():  # ngf, and what the layout fixes
            hparams.setdefault(name, value)
    return space, hparams


class OMGDStudent:
    """What both OMGD recipes share: the student (static, or a supernet sampled per step), its loss against the
    teachers' images (plus channel distillation against the wide teacher's features), and its optimizer.

    The student only ever sees its input images and the teachers' detached outputs and features.
    """

    def __init__(self, settings: OMGDSettings, channels: tuple[int, int], seed: int):
        self.settings = settings
        self.space, self.hparams = student_hparams(settings, channels)
        self.student = build_generator(settings.student_arch, self.hparams, derived_seed(seed, "student"),
                                       elastic=self.space is not None).train()
        if self.space is not None and len(self.student.config) != self.space.num_positions:
            raise TrainingError(f"space {settings.space} does not fit a {settings.student_arch} student")
        self.cd_layers: list[str] = []

    def attach(self, wide: ChannelGenerator | None, example: torch.Tensor, seed: int,
               extractor: torch.nn.Module | None = None) -> None:
        """Build the loss (its channel-distillation mappings probe the ``wide`` teacher) and the optimizer."""
        s, distiller = self.settings, None
        if s.student_loss.lambda_cd > 0:
            if wide is None:
                raise TrainingError("channel distillation (lambda_cd > 0) needs the wide teacher")
            self.cd_layers = self.student.distill_layer_names()
            # outside a configured block a supernet runs at full width, the widths the mappings take
            layers = probe_layers(self.student, wide, self.cd_layers, example,
                                  concat_halves=self.student.distill_concat_halves)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derived_seed(seed, "cd"))
                distiller = ChannelDistiller(layers)
        self.criterion = OMGDStudentCriterion(s.student_loss, distiller, extractor)
        self.optimizer = s.adam(list(self.student.parameters()) + self.criterion.trainable_parameters())

    def teacher_tap(self, wide: ChannelGenerator | None) -> FeatureTap | None:
        """A tap on the wide teacher's distilled layers (None without channel distillation)."""
        return FeatureTap(wide, self.cd_layers) if self.cd_layers else None

    def config_for(self, step: int, rng: random.Random) -> Config | None:
        if self.space is None:
            return None
        return self.space.draw(self.settings.sampling, step, rng)

    def learn(self, real_a: torch.Tensor, teacher_images: list[torch.Tensor], wide_features: dict | None,
              config: Config | None) -> dict[str, float]:
        """One step of the student on the teachers' (detached) images and features."""
        self.optimizer.zero_grad(set_to_none=True)
        with FeatureTap(self.student, self.cd_layers) as s_tap:
            student_b = self.student(real_a, config=config)
            breakdown = self.criterion(student_b, [image.detach() for image in teacher_images],
                                       dict(s_tap.features) if self.cd_layers else None, wide_features)
        breakdown.total.backward()
        self.optimizer.step()
        return {f"S_{k}": v for k, v in breakdown.scalars().items()}

    def state_dict(self) -> dict:
        return {"student": self.student.state_dict(), "criterion": self.criterion.state_dict(),
                "opt_student": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.criterion.load_state_dict(state["criterion"])
        self.optimizer.load_state_dict(state["opt_student"])


class OMGDRecipe(Recipe):
    """Teachers and discriminator train online; the student (static or supernet) learns from the teachers."""

    kind = "supernet-omgd"

    def __init__(self, settings: OMGDSettings, total_steps: int, example: torch.Tensor, seed: int = 0,
                 channels: tuple[int, int] = (3, 3), extractor: torch.nn.Module | None = None):
        self.settings = s = settings
        in_nc, out_nc = channels
        self.learner = OMGDStudent(s, channels, seed)
        self.student, self.space, hparams = self.learner.student, self.learner.space, self.learner.hparams
        self.teachers: dict[str, ChannelGenerator] = {}
        if s.teachers in ("both", "wide"):
            self.teachers["wide"] = build_generator(s.student_arch, {**hparams, "ngf": self.student.ngf * s.eta},
                                                    derived_seed(seed, "wide")).train()
        if s.teachers in ("both", "deep"):
            deep_arch, deep = deep_teacher(self.student, s)
            self.teachers["deep"] = build_generator(deep_arch, deep, derived_seed(seed, "deep")).train()
        self.discriminator = s.discriminator(in_nc + out_nc, derived_seed(seed, "D")).train()
        self.learner.attach(self.teachers.get("wide"), example, seed, extractor)
        self.criterion = self.learner.criterion
        self.opt_teachers = s.adam(itertools.chain(*(t.parameters() for t in self.teachers.values())))
        self.opt_d = s.adam(self.discriminator.parameters())
        self.schedule = s.schedule(total_steps)
        self.gan = GANLoss(s.gan_mode)

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps,
                "disabled_terms": self.criterion.disabled_terms()}

    def shard_losses(self, world: int) -> None:
        self.criterion.batch_shares = world

    def config_for(self, step: int, rng: random.Random) -> Config | None:
        return self.learner.config_for(step, rng)

    def outputs(self) -> dict[str, ChannelGenerator]:
        """The trained models by role: ``student``, and ``teacher`` (A -> B: the wide one, else the deep one)."""
        return {"student": self.student, "teacher": self.teachers.get("wide", self.teachers.get("deep"))}

    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        s = self.settings
        for optimizer in (self.opt_teachers, self.opt_d, self.learner.optimizer):
            self.schedule.apply(optimizer, step)
        real_a, real_b = batch["A"], batch["B"]
        wide_tap = self.learner.teacher_tap(self.teachers.get("wide"))
        try:
            fakes = {name: teacher(real_a) for name, teacher in self.teachers.items()}
            wide_features = {k: v.detach() for k, v in wide_tap.features.items()} if wide_tap else None
        finally:
            if wide_tap:
                wide_tap.close()
        losses: dict[str, float] = {}

        # the shared discriminator, then the teachers (GAN + L1 to the ground truth)
        set_requires_grad(self.discriminator, True)
        self.opt_d.zero_grad(set_to_none=True)
        real_pred = self.discriminator(torch.cat([real_a, real_b], 1))
        loss_d = sum(0.5 * (self.gan(self.discriminator(torch.cat([real_a, f.detach()], 1)), False)
                            + self.gan(real_pred, True)) for f in fakes.values())
        loss_d.backward()
        self.opt_d.step()
        set_requires_grad(self.discriminator, False)
        self.opt_teachers.zero_grad(set_to_none=True)
        total_teacher = 0
        for name, fake in fakes.items():
            gan = self.gan(self.discriminator(torch.cat([real_a, fake], 1)), True, for_discriminator=False)
            recon = F.l1_loss(fake, real_b) * s.lambda_recon
            total_teacher = total_teacher + gan * s.lambda_gan + recon
            losses[f"T_{name}"] = (gan * s.lambda_gan + recon).item()
        total_teacher.backward()
        self.opt_teachers.step()
        losses["D"] = loss_d.item()

        # the student: teachers' outputs only, never D or the ground truth
        losses.update(self.learner.learn(real_a, list(fakes.values()), wide_features, self.config_for(step, rng)))
        return losses

    def state_dict(self) -> dict:
        return {**self.learner.state_dict(), "teachers": {k: t.state_dict() for k, t in self.teachers.items()},
                "D": self.discriminator.state_dict(), "opt_teachers": self.opt_teachers.state_dict(),
                "opt_D": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state)
        for name, teacher in self.teachers.items():
            teacher.load_state_dict(state["teachers"][name])
        self.discriminator.load_state_dict(state["D"])
        self.opt_teachers.load_state_dict(state["opt_teachers"])
        self.opt_d.load_state_dict(state["opt_D"])
