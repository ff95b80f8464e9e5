"""GAN Compression: distil a frozen teacher into a once-for-all supernet (and fine-tune one config).

Each step trains one subnet sampled from the search space (uniform, or the sandwich rule) with
GAN + reconstruction + lambda_distill x sum over the distilled layers of
MSE(1x1 conv(student feature), teacher feature). Reconstruction is L1 to the ground truth x100
for paired tasks, and L1 to the teacher's output x10 for unpaired ones (pseudo-pairs). The 1x1
mappings are elastic on their input and train with the generator.
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
from .losses import FeatureDistiller, FeatureTap, GANLoss, probe_layers
from .adversarial import AdversarialSettings
from .teacher import build_generator, set_requires_grad

TASKS = ("paired", "unpaired")
SAMPLING = ("uniform", "sandwich", "fixed")


@dataclass(frozen=True)
class GANCompressionSettings(AdversarialSettings):
    space: str
    task: str = "paired"
    student_arch: str | None = None  # default: the space's architecture
    student_hparams: dict = field(default_factory=dict)  # default: the teacher's depth and norm, ngf of the space
    sampling: str = "uniform"
    fixed_config: tuple[int, ...] | None = None  # sampling "fixed": fine-tune this config only
    lambda_gan: float = 1.0
    lambda_recon: float | None = None  # default 100 (paired, to ground truth) / 10 (unpaired, to teacher)
    lambda_distill: float | None = None  # default 1 (paired) / 0.01 (unpaired)
    gan_mode: str | None = None  # default hinge (paired) / lsgan (unpaired), as GAN Compression

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


def student_for(settings: GANCompressionSettings, teacher: ChannelGenerator) -> tuple[str, dict]:
    """The student's architecture and hyper-parameters: the space's arch and width, the teacher's depth."""
    space = get_space(settings.space)
    arch = settings.student_arch or space.architecture
    hparams = {"input_nc": teacher.input_nc, "output_nc": teacher.output_nc, "norm": teacher.norm,
               "ngf": space.ngf}
    if space.family == "resnet":
        hparams["n_blocks"] = getattr(teacher, "n_blocks", 9)
    hparams.update(space.hparams)  # what the space's layout fixes (a U-Net space: num_downs)
    hparams.update(settings.student_hparams)
    return arch, hparams


class GANCompressionRecipe(Recipe):
    """Trains ``student`` (an elastic supernet, or a static subnet when fine-tuning outside it)."""

    kind = "supernet-gan-compression"

    def __init__(self, settings: GANCompressionSettings, teacher: ChannelGenerator, total_steps: int,
                 example: torch.Tensor, seed: int = 0, student: ChannelGenerator | None = None,
                 teacher_discriminator: dict | None = None):
        self.settings = s = settings
        self.space: ChannelSearchSpace = get_space(s.space)
        self.teacher = teacher.eval()
        set_requires_grad(self.teacher, False)
        if student is None:
            arch, hparams = student_for(s, teacher)
            student = build_generator(arch, hparams, derived_seed(seed, "student"), elastic=True)
        self.student = student.train()
        if student.elastic and len(student.config) != self.space.num_positions:
            raise TrainingError(f"space {s.space} has {self.space.num_positions} positions but the "
                                f"{student.arch} supernet has {len(student.config)}")
        self.student_layers = student.distill_layer_names()
        self.teacher_layers = teacher.distill_layer_names()
        if len(self.student_layers) != len(self.teacher_layers):
            raise TrainingError(
                f"the student distils {len(self.student_layers)} layers ({', '.join(self.student_layers)}) but the "
                f"teacher has {len(self.teacher_layers)} ({', '.join(self.teacher_layers)}); use a student with the "
                "teacher's depth (n_blocks / num_downs)"
            )
        # outside a configured block a supernet runs at full width, the widths the mappings take
        layers = probe_layers(student, teacher, self.student_layers, example, self.teacher_layers,
                              concat_halves=student.distill_concat_halves)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(seed, "mappings"))
            self.distiller = FeatureDistiller(layers)
        in_nc, out_nc = teacher.input_nc, teacher.output_nc
        d_input = in_nc + out_nc if s.task == "paired" else out_nc
        self.discriminator = s.discriminator(d_input, derived_seed(seed, "D"))
        if teacher_discriminator is not None:  # GAN Compression starts D from the teacher's
            self.discriminator.load_state_dict(teacher_discriminator)
        self.discriminator.train()
        g_params = list(self.student.parameters()) + list(self.distiller.parameters())
        self.opt_g = s.adam(g_params)
        self.opt_d = s.adam(self.discriminator.parameters())
        self.schedule = s.schedule(total_steps)
        self.gan = GANLoss(s.gan_mode)

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps,
                "student": {"arch": self.student.arch, "hparams": self.student.hparams(),
                            "elastic": self.student.elastic},
                "teacher": {"arch": self.teacher.arch, "hparams": self.teacher.hparams()}}

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
        with torch.no_grad(), FeatureTap(self.teacher, self.teacher_layers) as t_tap:
            teacher_b = self.teacher(real_a)
            teacher_features = dict(t_tap.features)
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
        loss_distill = self.distiller(student_features, teacher_features) * s.lambda_distill
        (loss_gan + loss_recon + loss_distill).backward()
        self.opt_g.step()
        return {"G_gan": loss_gan.item(), "G_recon": loss_recon.item(), "G_distill": loss_distill.item(),
                "D": loss_d.item()}

    def state_dict(self) -> dict:
        return {"student": self.student.state_dict(), "distiller": self.distiller.state_dict(),
                "D": self.discriminator.state_dict(), "opt_G": self.opt_g.state_dict(),
                "opt_D": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.distiller.load_state_dict(state["distiller"])
        self.discriminator.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])
