"""Online fine-tuning: OMGD's distillation applied to one subnet, with the registered teacher as its online teacher.

GAN Compression fine-tunes a subnet against a frozen teacher, with a discriminator and the ground
truth on the student. OMGD instead keeps its teachers training and keeps the student away from both:
here a copy of the teacher the supernet was distilled from trains on (GAN + L1 to the ground truth,
against its own discriminator, started from the teacher's when its checkpoint holds one), and the
subnet learns only from the teacher's detached outputs and features: SSIM, TV, VGG style and
perceptual terms when the VGG16 weights are configured, and channel distillation of its distilled
layers into the teacher's. Paired tasks only: the teacher's online loss needs the ground truth.
"""
from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from supernet.programs.base import ProgramGenerator

from .adversarial import AdversarialSettings
from .loop import Recipe, TrainingError, derived_seed
from .losses import ChannelDistiller, FeatureTap, GANLoss, OMGDStudentCriterion, OMGDStudentLoss, probe_layers
from .teacher import set_requires_grad


def _student_loss() -> OMGDStudentLoss:
    # without VGG weights (nothing is downloaded) SSIM is the only image term: on [0, 1] it keeps colours
    return OMGDStudentLoss(perceptual="none", lambda_cd=10.0, ssim_range="unit")


@dataclass(frozen=True)
class OnlineFinetuneSettings(AdversarialSettings):
    """The student's OMGD loss, the teacher's online losses; discriminator settings apply when the teacher's
    checkpoint has no discriminator of its own."""

    student_loss: OMGDStudentLoss = field(default_factory=_student_loss)
    teacher_layers: tuple[str, ...] | None = None  # default: the teacher's distill_layer_names(); (): outputs only
    gan_mode: str = "lsgan"  # the pix2pix teacher's
    lambda_gan: float = 1.0
    lambda_recon: float = 100.0

    @classmethod
    def from_dict(cls, values: dict) -> "OnlineFinetuneSettings":
        values = dict(values)
        if isinstance(values.get("student_loss"), dict):
            values["student_loss"] = OMGDStudentLoss(**values["student_loss"])
        if values.get("teacher_layers") is not None:
            values["teacher_layers"] = tuple(values["teacher_layers"])
        return cls(**values)

    def with_teacher_discriminator(self, teacher_meta: dict) -> "OnlineFinetuneSettings":
        """These settings with the discriminator the teacher trained with (when its checkpoint says)."""
        d = teacher_meta.get("discriminator") or {}
        if not d.get("state_dict"):
            return self
        own = (teacher_meta.get("settings") or {}).get("gan_mode", self.gan_mode)
        return type(self)(**{**self.__dict__, "netd": d["netd"], "ndf": d["ndf"], "n_layers_d": d["n_layers_d"],
                             "d_norm": d["d_norm"], "gan_mode": own})


class OnlineFinetuneRecipe(Recipe):
    """Fine-tunes a static ``student`` from a copy of ``teacher`` that trains online (the original is untouched)."""

    kind = "finetune-online"

    def __init__(self, settings: OnlineFinetuneSettings, teacher: torch.nn.Module, student: torch.nn.Module,
                 total_steps: int, example: torch.Tensor, seed: int = 0, teacher_discriminator: dict | None = None):
        if isinstance(teacher, ProgramGenerator) or not any(True for _ in teacher.parameters()):
            raise TrainingError("online fine-tuning trains the teacher further: it needs a teacher with weights (a "
                                "ganas checkpoint or a state dict), not a program; use the gan-compression recipe")
        self.settings = s = settings
        self.teacher = copy.deepcopy(teacher).train()
        set_requires_grad(self.teacher, True)
        self.student = student.train()
        in_nc, out_nc = self.teacher.input_nc, self.teacher.output_nc
        self.discriminator = s.discriminator(in_nc + out_nc, derived_seed(seed, "D"))
        if teacher_discriminator is not None:
            self.discriminator.load_state_dict(teacher_discriminator)
        self.discriminator.train()
        teacher_layers = list(s.teacher_layers if s.teacher_layers is not None else teacher.distill_layer_names())
        loss = s.student_loss
        self.student_layers: list[str] = []
        distiller = None
        if loss.lambda_cd > 0 and teacher_layers:
            self.student_layers = student.distill_layer_names()
            if len(self.student_layers) != len(teacher_layers):
                raise TrainingError(f"the student distils {len(self.student_layers)} layers but the teacher names "
                                    f"{len(teacher_layers)} ({', '.join(teacher_layers)}); name one teacher layer per "
                                    "student layer, or none (outputs only)")
            layers = probe_layers(student, self.teacher, self.student_layers, example, teacher_layers,
                                  concat_halves=student.distill_concat_halves)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derived_seed(seed, "cd"))
                distiller = ChannelDistiller(layers)
        elif loss.lambda_cd > 0:  # no teacher layers to distil into: outputs only
            loss = OMGDStudentLoss(**{**asdict(loss), "lambda_cd": 0.0})
        self.teacher_layers = teacher_layers if distiller is not None else []
        self.criterion = OMGDStudentCriterion(loss, distiller)
        self.opt_teacher = s.adam(self.teacher.parameters())
        self.opt_d = s.adam(self.discriminator.parameters())
        self.opt_student = s.adam(list(self.student.parameters()) + self.criterion.trainable_parameters())
        self.schedule = s.schedule(total_steps)
        self.gan = GANLoss(s.gan_mode)

    def shard_losses(self, world: int) -> None:
        self.criterion.batch_shares = world

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps,
                "disabled_terms": self.criterion.disabled_terms()}

    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        s = self.settings
        for optimizer in (self.opt_teacher, self.opt_d, self.opt_student):
            self.schedule.apply(optimizer, step)
        real_a, real_b = batch["A"], batch["B"]
        with FeatureTap(self.teacher, self.teacher_layers) as t_tap:
            fake = self.teacher(real_a)
            teacher_features = {k: v.detach() for k, v in t_tap.features.items()} if self.teacher_layers else None

        # the teacher's own pix2pix step: its discriminator, then GAN + L1 to the ground truth
        set_requires_grad(self.discriminator, True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (self.gan(self.discriminator(torch.cat([real_a, fake.detach()], 1)), False)
                        + self.gan(self.discriminator(torch.cat([real_a, real_b], 1)), True))
        loss_d.backward()
        self.opt_d.step()
        set_requires_grad(self.discriminator, False)
        self.opt_teacher.zero_grad(set_to_none=True)
        gan = self.gan(self.discriminator(torch.cat([real_a, fake], 1)), True, for_discriminator=False)
        recon = F.l1_loss(fake, real_b) * s.lambda_recon
        (gan * s.lambda_gan + recon).backward()
        self.opt_teacher.step()

        # the student: the teacher's detached outputs and features only, never D or the ground truth
        self.opt_student.zero_grad(set_to_none=True)
        with FeatureTap(self.student, self.student_layers) as s_tap:
            student_b = self.student(real_a)
            breakdown = self.criterion(student_b, [fake.detach()],
                                       dict(s_tap.features) if self.student_layers else None, teacher_features)
        breakdown.total.backward()
        self.opt_student.step()
        return {"T": (gan * s.lambda_gan + recon).item(), "D": loss_d.item(),
                **{f"S_{k}": v for k, v in breakdown.scalars().items()}}

    def state_dict(self) -> dict:
        return {"student": self.student.state_dict(), "criterion": self.criterion.state_dict(),
                "teacher": self.teacher.state_dict(), "D": self.discriminator.state_dict(),
                "opt_teacher": self.opt_teacher.state_dict(), "opt_D": self.opt_d.state_dict(),
                "opt_student": self.opt_student.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.criterion.load_state_dict(state["criterion"])
        self.teacher.load_state_dict(state["teacher"])
        self.discriminator.load_state_dict(state["D"])
        self.opt_teacher.load_state_dict(state["opt_teacher"])
        self.opt_d.load_state_dict(state["opt_D"])
        self.opt_student.load_state_dict(state["opt_student"])
