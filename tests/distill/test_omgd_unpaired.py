"""OMGD on unpaired data: CycleGAN teacher pairs online, the student only from the A -> B teachers' outputs."""
import random

import pytest
import torch

from distill.loop import LoopSettings, TrainingError, run_training
from distill.losses import OMGDStudentLoss
from distill.omgd_unpaired import UnpairedOMGDRecipe, UnpairedOMGDSettings

NO_VGG = OMGDStudentLoss(perceptual="none", lambda_cd=10.0, ssim_range="unit")
EXAMPLE = torch.zeros(1, 3, 16, 16)


class UnpairedToy(torch.utils.data.Dataset):
    """Two unrelated domains: A random images, B smooth random colour fields."""

    def __init__(self, n=4, size=16):
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.b = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g) * 2 - 1, size=size)

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[(i + 1) % len(self.b)]}


def _settings(**kw):
    base = dict(student_hparams={"ngf": 4, "n_blocks": 1}, eta=2, student_loss=NO_VGG, netd="n_layers",
                n_layers_d=1, ndf=4, teacher_phase=1, n_dis=2, pool_size=2)
    base.update(kw)
    return UnpairedOMGDSettings(**base)


def _batch(data, step, nan_b=False):
    items = [data[(2 * step + k) % len(data)] for k in range(2)]
    batch = {key: torch.stack([item[key] for item in items]) for key in ("A", "B")}
    if nan_b:
        batch["B"] = torch.full_like(batch["B"], float("nan"))
    return batch


def test_the_schedule_alternates_teacher_phases_and_n_dis_student_phases():
    settings = _settings(teacher_phase=2, n_dis=3)
    assert [settings.is_teacher_step(s) for s in range(10)] == [True] * 2 + [False] * 6 + [True] * 2
    for name, value in (("n_dis", 0), ("teacher_phase", -1), ("n_dis", 1.5)):
        with pytest.raises(TrainingError, match=f"{name} must be an integer >= 1"):
            _settings(**{name: value})


def test_the_wide_pair_trains_with_cyclegans_losses_and_the_student_only_in_its_phase():
    recipe = UnpairedOMGDRecipe(_settings(), 3, EXAMPLE, seed=0)
    assert set(recipe.pairs) == {"wide"} and recipe.teachers["wide"].ngf == 8
    data = UnpairedToy()
    teacher_losses = recipe.train_step(0, _batch(data, 0), random.Random(0))
    assert {"T_wide_G_AB", "T_wide_cycle_A", "T_wide_idt_B", "D_A", "D_B"} <= set(teacher_losses)
    student_losses = recipe.train_step(1, _batch(data, 1), random.Random(1))
    assert set(student_losses) == {"S_ssim", "S_tv", "S_cd", "S_total"}


def test_student_never_receives_a_gradient_from_a_discriminator_or_real_b():
    """Hooks: the student's parameters get gradients only in student steps, where no discriminator runs; and
    student steps with NaN B images and NaN discriminators give exactly the student of a normal run."""
    data = UnpairedToy()
    runs = []
    for poisoned in (False, True):
        recipe = UnpairedOMGDRecipe(_settings(space="channels-16", student_hparams={"n_blocks": 3}), 6, EXAMPLE,
                                    seed=1)
        graded, judged, step_kind = [], [], {}
        for p in recipe.student.parameters():
            p.register_hook(lambda grad, log=graded: log.append(step_kind["now"]) or grad)
        for d in (recipe.d_a, recipe.d_b):
            d.register_forward_hook(lambda *_, log=judged: log.append(step_kind["now"]))
        for step in range(6):
            teacher = recipe.settings.is_teacher_step(step)
            step_kind["now"] = "teacher" if teacher else "student"
            kept = [{k: v.clone() for k, v in d.state_dict().items()} for d in (recipe.d_a, recipe.d_b)]
            if poisoned and not teacher:  # NaN discriminators for the student step only
                for d in (recipe.d_a, recipe.d_b):
                    for p in d.parameters():
                        p.data.fill_(float("nan"))
            torch.manual_seed(step)
            recipe.train_step(step, _batch(data, step, nan_b=poisoned and not teacher), random.Random(step))
            if poisoned and not teacher:  # the teachers' next phase sees the discriminators as they were
                for d, state in zip((recipe.d_a, recipe.d_b), kept):
                    d.load_state_dict(state)
        assert graded and set(graded) == {"student"}  # gradients reach the student in student steps only
        assert judged and set(judged) == {"teacher"}  # no discriminator runs in a student step
        runs.append({k: v.clone() for k, v in recipe.student.state_dict().items()})
    clean, poisoned = runs
    assert all(torch.isfinite(v).all() and torch.equal(v, poisoned[k]) for k, v in clean.items())


def test_unpaired_supernet_resumes_exactly(tmp_path):
    settings = _settings(space="channels-16", student_hparams={"n_blocks": 3}, sampling="sandwich", teachers="both")
    data = UnpairedToy()
    loop = LoopSettings(steps=6, batch_size=2, seed=2, checkpoint_every=2)
    straight = UnpairedOMGDRecipe(settings, 6, EXAMPLE, seed=3)
    assert straight.student.elastic and set(straight.pairs) == {"wide", "deep"}
    run_training(straight, data, loop, tmp_path / "a", progress=False)
    first = UnpairedOMGDRecipe(settings, 6, EXAMPLE, seed=3)
    run_training(first, data, loop, tmp_path / "b", progress=False, stop_after=4)  # inside a student phase
    second = UnpairedOMGDRecipe(settings, 6, EXAMPLE, seed=3)
    run_training(second, data, loop, tmp_path / "b", resume=True, progress=False)
    expected, resumed = straight.state_dict(), second.state_dict()
    for key, value in expected["student"].items():
        assert torch.equal(value, resumed["student"][key]), key
    for name in ("wide", "deep"):
        for part in ("AB", "BA"):
            assert all(torch.equal(v, resumed["pairs"][name][part][k]) for k, v in expected["pairs"][name][part].items())
        assert all(torch.equal(a, b) for a, b in zip(expected["pairs"][name]["pool_B"]["images"],
                                                     resumed["pairs"][name]["pool_B"]["images"]))
    assert all(torch.equal(v, resumed["D_B"][k]) for k, v in expected["D_B"].items())
