"""Teacher training: pix2pix (paired) and CycleGAN (unpaired), as pytorch-CycleGAN-and-pix2pix.

pix2pix: conditional PatchGAN on cat(A, B), GAN (lsgan/hinge/vanilla) + L1 x100; D step, then G.
CycleGAN: two generators and two PatchGANs, lsgan, cycle x10, identity x0.5, image pools of 50;
G step, then D. Both: Adam(2e-4, beta1 0.5), constant rate then linear decay.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from supernet.generators import ChannelGenerator
from supernet.registry import create_generator

from .adversarial import AdversarialSettings
from .discriminators import init_normal_
from .image_pool import ImagePool
from .loop import Recipe, derived_seed
from .losses.gan import GANLoss


@dataclass(frozen=True)
class TeacherSettings(AdversarialSettings):
    arch: str = "resnet"
    hparams: dict = field(default_factory=dict)  # ngf, n_blocks / num_downs, norm, ...
    gan_mode: str = "lsgan"
    lambda_l1: float = 100.0  # pix2pix
    lambda_cycle: float = 10.0  # CycleGAN
    lambda_identity: float = 0.5  # CycleGAN, relative to lambda_cycle
    pool_size: int = 50


def build_generator(arch: str, hparams: dict, seed: int, **extra) -> ChannelGenerator:
    """A generator with pix2pix's N(0, 0.02) weights drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return init_normal_(create_generator(arch, **{**hparams, **extra}))


def set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Pix2PixTeacher(Recipe):
    kind = "teacher-pix2pix"

    def __init__(self, settings: TeacherSettings, total_steps: int, channels: tuple[int, int] = (3, 3),
                 seed: int = 0):
        self.settings = settings
        in_nc, out_nc = channels
        self.generator = build_generator(settings.arch, settings.hparams, derived_seed(seed, "G"),
                                         input_nc=in_nc, output_nc=out_nc)
        self.discriminator = settings.discriminator(in_nc + out_nc, derived_seed(seed, "D"))
        self.opt_g = settings.adam(self.generator.parameters())
        self.opt_d = settings.adam(self.discriminator.parameters())
        self.gan = GANLoss(settings.gan_mode)
        self.schedule = settings.schedule(total_steps)
        self.generator.train()
        self.discriminator.train()

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps}

    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        for optimizer in (self.opt_g, self.opt_d):
            self.schedule.apply(optimizer, step)
        real_a, real_b = batch["A"], batch["B"]
        fake_b = self.generator(real_a)
        set_requires_grad(self.discriminator, True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d_fake = self.gan(self.discriminator(torch.cat([real_a, fake_b.detach()], 1)), False)
        loss_d_real = self.gan(self.discriminator(torch.cat([real_a, real_b], 1)), True)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        loss_d.backward()
        self.opt_d.step()
        set_requires_grad(self.discriminator, False)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g_gan = self.gan(self.discriminator(torch.cat([real_a, fake_b], 1)), True, for_discriminator=False)
        loss_g_l1 = F.l1_loss(fake_b, real_b) * self.settings.lambda_l1
        (loss_g_gan + loss_g_l1).backward()
        self.opt_g.step()
        return {"G_gan": loss_g_gan.item(), "G_L1": loss_g_l1.item(), "D": loss_d.item()}

    def state_dict(self) -> dict:
        return {"G": self.generator.state_dict(), "D": self.discriminator.state_dict(),
                "opt_G": self.opt_g.state_dict(), "opt_D": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["G"])
        self.discriminator.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])

    def outputs(self) -> dict[str, ChannelGenerator]:
        """The trained generators by role (``G``: A -> B)."""
        return {"G": self.generator}


class CycleGANTeacher(Recipe):
    kind = "teacher-cyclegan"
    data_parallel_refusal = ("CycleGAN's image pools (the past fakes its discriminators see) are kept in one "
                             "process; train a CycleGAN teacher without --workers")

    def __init__(self, settings: TeacherSettings, total_steps: int, channels: tuple[int, int] = (3, 3),
                 seed: int = 0):
        self.settings = settings
        a_nc, b_nc = channels
        self.g_ab = build_generator(settings.arch, settings.hparams, derived_seed(seed, "G_AB"),
                                    input_nc=a_nc, output_nc=b_nc)
        self.g_ba = build_generator(settings.arch, settings.hparams, derived_seed(seed, "G_BA"),
                                    input_nc=b_nc, output_nc=a_nc)
        self.d_b = settings.discriminator(b_nc, derived_seed(seed, "D_B"))
        self.d_a = settings.discriminator(a_nc, derived_seed(seed, "D_A"))
        self.opt_g = settings.adam(itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()))
        self.opt_d = settings.adam(itertools.chain(self.d_a.parameters(), self.d_b.parameters()))
        self.pool_a, self.pool_b = ImagePool(settings.pool_size), ImagePool(settings.pool_size)
        self.gan = GANLoss(settings.gan_mode)
        self.schedule = settings.schedule(total_steps)
        for m in (self.g_ab, self.g_ba, self.d_a, self.d_b):
            m.train()

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps}

    def _d_loss(self, d, real, fake):
        return 0.5 * (self.gan(d(real), True) + self.gan(d(fake.detach()), False))

    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        s = self.settings
        for optimizer in (self.opt_g, self.opt_d):
            self.schedule.apply(optimizer, step)
        real_a, real_b = batch["A"], batch["B"]
        fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
        rec_a, rec_b = self.g_ba(fake_b), self.g_ab(fake_a)
        set_requires_grad(self.d_a, False)
        set_requires_grad(self.d_b, False)
        self.opt_g.zero_grad(set_to_none=True)
        losses = {
            "G_AB": self.gan(self.d_b(fake_b), True, for_discriminator=False),
            "G_BA": self.gan(self.d_a(fake_a), True, for_discriminator=False),
            "cycle_A": F.l1_loss(rec_a, real_a) * s.lambda_cycle,
            "cycle_B": F.l1_loss(rec_b, real_b) * s.lambda_cycle,
        }
        if s.lambda_identity > 0:
            losses["idt_B"] = F.l1_loss(self.g_ab(real_b), real_b) * s.lambda_cycle * s.lambda_identity
            losses["idt_A"] = F.l1_loss(self.g_ba(real_a), real_a) * s.lambda_cycle * s.lambda_identity
        sum(losses.values()).backward()
        self.opt_g.step()
        set_requires_grad(self.d_a, True)
        set_requires_grad(self.d_b, True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d_b = self._d_loss(self.d_b, real_b, self.pool_b.query(fake_b, rng))
        loss_d_a = self._d_loss(self.d_a, real_a, self.pool_a.query(fake_a, rng))
        (loss_d_a + loss_d_b).backward()
        self.opt_d.step()
        out = {k: v.item() for k, v in losses.items()}
        out.update(D_A=loss_d_a.item(), D_B=loss_d_b.item())
        return out

    def state_dict(self) -> dict:
        return {"G_AB": self.g_ab.state_dict(), "G_BA": self.g_ba.state_dict(), "D_A": self.d_a.state_dict(),
                "D_B": self.d_b.state_dict(), "opt_G": self.opt_g.state_dict(), "opt_D": self.opt_d.state_dict(),
                "pool_A": self.pool_a.state_dict(), "pool_B": self.pool_b.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for name, module in (("G_AB", self.g_ab), ("G_BA", self.g_ba), ("D_A", self.d_a), ("D_B", self.d_b)):
            module.load_state_dict(state[name])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])
        self.pool_a.load_state_dict(state["pool_A"])
        self.pool_b.load_state_dict(state["pool_B"])

    def outputs(self) -> dict[str, ChannelGenerator]:
        return {"G": self.g_ab, "G_BA": self.g_ba}


TEACHER_RECIPES: dict[str, type[Recipe]] = {"pix2pix": Pix2PixTeacher, "cyclegan": CycleGANTeacher}
