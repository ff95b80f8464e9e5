"""OMGD on unpaired data, as OMGD's CycleGAN recipe (bytedance/OMGD ``cycleganbest`` distiller).

The teachers are CycleGAN pairs trained online: the wide pair (A -> B and B -> A, the student's
architecture at ngf x eta; OMGD's recipe) and, beyond OMGD, optionally the deep pair. They learn
with CycleGAN's losses (lsgan, cycle x10, identity x0.5, image pools) against the discriminators
D_A and D_B. The student never sees a discriminator or a real B image: it learns from the A -> B
teachers' detached outputs (SSIM, style, perceptual, TV) and the wide teacher's features (channel
distillation), on the A images only.

The schedule alternates as OMGD's ``n_dis``: ``teacher_phase`` teacher steps, then
``n_dis x teacher_phase`` student steps against the teachers as they are, and again (OMGD counts
its phases in epochs, 10 teacher epochs then 4 x 10 student epochs for horse2zebra, and hands the
student the teacher of best FID so far; ganas hands it the latest, having no FID during training).
With ``space`` the student is a whole supernet, a subnet sampled per student step.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from supernet.generators import ChannelGenerator

from .image_pool import ImagePool
from .loop import Recipe, TrainingError, derived_seed
from .losses import GANLoss
from .omgd import OMGDSettings, OMGDStudent, deep_teacher
from .teacher import build_generator, set_requires_grad


@dataclass(frozen=True)
class UnpairedOMGDSettings(OMGDSettings):
    """OMGD's settings with CycleGAN's teacher losses and OMGD's alternation (defaults: its horse2zebra script)."""

    teachers: str = "wide"  # OMGD's CycleGAN recipe distils from the wide teacher only
    gan_mode: str = "lsgan"  # CycleGAN's
    n_dis: int = 4  # student phases are n_dis x the teacher phase
    teacher_phase: int = 100  # teacher steps per round
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # relative to lambda_cycle, as CycleGAN
    pool_size: int = 50

    def __post_init__(self):
        super().__post_init__()
        for name in ("n_dis", "teacher_phase"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainingError(f"{name} must be an integer >= 1, got {value!r}")

    def is_teacher_step(self, step: int) -> bool:
        """Whether ``step`` trains the teachers (else the student): phases of teacher_phase, then n_dis x that."""
        return step % (self.teacher_phase * (1 + self.n_dis)) < self.teacher_phase


@dataclass
class TeacherPair:
    """One CycleGAN teacher pair, with the image pools its discriminator steps draw from."""

    ab: ChannelGenerator
    ba: ChannelGenerator
    pool_a: ImagePool
    pool_b: ImagePool


class UnpairedOMGDRecipe(Recipe):
    """CycleGAN teacher pairs and their discriminators train online; the student learns from the A -> B teachers."""

    kind = "supernet-omgd-unpaired"
    data_parallel_refusal = ("unpaired OMGD's teacher pairs draw their discriminators' fakes from image pools kept in "
                             "one process; train it without --workers")

    def __init__(self, settings: UnpairedOMGDSettings, total_steps: int, example: torch.Tensor, seed: int = 0,
                 channels: tuple[int, int] = (3, 3), extractor: torch.nn.Module | None = None):
        self.settings = s = settings
        a_nc, b_nc = channels
        self.learner = OMGDStudent(s, channels, seed)
        self.student, self.space, hparams = self.learner.student, self.learner.space, self.learner.hparams
        builders = {}
        if s.teachers in ("both", "wide"):
            builders["wide"] = (s.student_arch, {**hparams, "ngf": self.student.ngf * s.eta})
        if s.teachers in ("both", "deep"):
            builders["deep"] = deep_teacher(self.student, s)
        self.pairs: dict[str, TeacherPair] = {}
        for name, (arch, values) in builders.items():
            ab = build_generator(arch, {**values, "input_nc": a_nc, "output_nc": b_nc}, derived_seed(seed, name))
            ba = build_generator(arch, {**values, "input_nc": b_nc, "output_nc": a_nc},
                                 derived_seed(seed, name, "BA"))
            self.pairs[name] = TeacherPair(ab.train(), ba.train(), ImagePool(s.pool_size), ImagePool(s.pool_size))
        self.d_a = s.discriminator(a_nc, derived_seed(seed, "D_A")).train()
        self.d_b = s.discriminator(b_nc, derived_seed(seed, "D_B")).train()
        self.learner.attach(self.pairs["wide"].ab if "wide" in self.pairs else None, example, seed, extractor)
        self.criterion = self.learner.criterion
        teachers = [m.parameters() for pair in self.pairs.values() for m in (pair.ab, pair.ba)]
        self.opt_teachers = s.adam(itertools.chain(*teachers))
        self.opt_d = s.adam(itertools.chain(self.d_a.parameters(), self.d_b.parameters()))
        self.schedule = s.schedule(total_steps)
        self.gan = GANLoss(s.gan_mode)

    @property
    def teachers(self) -> dict[str, ChannelGenerator]:
        """The A -> B teachers by name: what the student learns from."""
        return {name: pair.ab for name, pair in self.pairs.items()}

    def describe(self) -> dict:
        return {"settings": asdict(self.settings), "total_steps": self.schedule.total_steps,
                "disabled_terms": self.criterion.disabled_terms()}

    def outputs(self) -> dict[str, ChannelGenerator]:
        """``student``, ``teacher`` (A -> B: the wide one, else the deep one) and ``teacher_BA`` (its partner)."""
        pair = self.pairs.get("wide", self.pairs.get("deep"))
        return {"student": self.student, "teacher": pair.ab, "teacher_BA": pair.ba}

    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        for optimizer in (self.opt_teachers, self.opt_d, self.learner.optimizer):
            self.schedule.apply(optimizer, step)
        if self.settings.is_teacher_step(step):
            return self._teacher_step(batch["A"], batch["B"], rng)
        return self._student_step(batch["A"], self.learner.config_for(step, rng))

    def _teacher_step(self, real_a: torch.Tensor, real_b: torch.Tensor, rng: random.Random) -> dict[str, float]:
        """CycleGAN's step for every pair: generators (GAN, cycle, identity), then D_A and D_B on pooled fakes."""
        s = self.settings
        set_requires_grad(self.d_a, False)
        set_requires_grad(self.d_b, False)
        self.opt_teachers.zero_grad(set_to_none=True)
        losses, fakes = {}, {}
        for name, pair in self.pairs.items():
            fake_b, fake_a = pair.ab(real_a), pair.ba(real_b)
            terms = {"G_AB": self.gan(self.d_b(fake_b), True, for_discriminator=False),
                     "G_BA": self.gan(self.d_a(fake_a), True, for_discriminator=False),
                     "cycle_A": F.l1_loss(pair.ba(fake_b), real_a) * s.lambda_cycle,
                     "cycle_B": F.l1_loss(pair.ab(fake_a), real_b) * s.lambda_cycle}
            if s.lambda_identity > 0:
                weight = s.lambda_cycle * s.lambda_identity
                terms["idt_B"] = F.l1_loss(pair.ab(real_b), real_b) * weight
                terms["idt_A"] = F.l1_loss(pair.ba(real_a), real_a) * weight
            losses.update({f"T_{name}_{k}": v for k, v in terms.items()})
            fakes[name] = (fake_a, fake_b)
        sum(losses.values()).backward()
        self.opt_teachers.step()
        set_requires_grad(self.d_a, True)
        set_requires_grad(self.d_b, True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d_a = loss_d_b = 0
        for name, pair in self.pairs.items():
            fake_a, fake_b = fakes[name]
            loss_d_b = loss_d_b + self._d_loss(self.d_b, real_b, pair.pool_b.query(fake_b, rng))
            loss_d_a = loss_d_a + self._d_loss(self.d_a, real_a, pair.pool_a.query(fake_a, rng))
        (loss_d_a + loss_d_b).backward()
        self.opt_d.step()
        return {**{k: v.item() for k, v in losses.items()}, "D_A": loss_d_a.item(), "D_B": loss_d_b.item()}

    def _d_loss(self, d: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.gan(d(real), True) + self.gan(d(fake.detach()), False))

    def _student_step(self, real_a: torch.Tensor, config) -> dict[str, float]:
        """The student on the A images: the A -> B teachers' outputs and the wide one's features, no gradient to them."""
        tap = self.learner.teacher_tap(self.pairs["wide"].ab if "wide" in self.pairs else None)
        try:
            with torch.no_grad():
                images = [pair.ab(real_a) for pair in self.pairs.values()]
            features = {k: v.detach() for k, v in tap.features.items()} if tap else None
        finally:
            if tap:
                tap.close()
        return self.learner.learn(real_a, images, features, config)

    def state_dict(self) -> dict:
        pairs = {name: {"AB": p.ab.state_dict(), "BA": p.ba.state_dict(), "pool_A": p.pool_a.state_dict(),
                        "pool_B": p.pool_b.state_dict()} for name, p in self.pairs.items()}
        return {**self.learner.state_dict(), "pairs": pairs, "D_A": self.d_a.state_dict(),
                "D_B": self.d_b.state_dict(), "opt_teachers": self.opt_teachers.state_dict(),
                "opt_D": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state)
        for name, pair in self.pairs.items():
            saved = state["pairs"][name]
            pair.ab.load_state_dict(saved["AB"])
            pair.ba.load_state_dict(saved["BA"])
            pair.pool_a.load_state_dict(saved["pool_A"])
            pair.pool_b.load_state_dict(saved["pool_B"])
        self.d_a.load_state_dict(state["D_A"])
        self.d_b.load_state_dict(state["D_B"])
        self.opt_teachers.load_state_dict(state["opt_teachers"])
        self.opt_d.load_state_dict(state["opt_D"])
