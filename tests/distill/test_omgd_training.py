"""OMGD online distillation: the student learns only from the teachers; supernet mode; exact resume."""
import random

import pytest
import torch

from distill.loop import LoopSettings, TrainingError, run_training
from distill.losses import OMGDStudentLoss
from distill.omgd import OMGDRecipe, OMGDSettings

from .test_teacher_training import PairedToy

NO_VGG = OMGDStudentLoss(perceptual="none", lambda_cd=10.0)


def _settings(**kw):
    base = dict(student_hparams={"ngf": 8, "n_blocks": 3}, eta=2, student_loss=NO_VGG, netd="n_layers",
                n_layers_d=1, ndf=4)
    base.update(kw)
    return OMGDSettings(**base)


def test_student_never_sees_ground_truth_or_discriminator():
    """Two runs that differ only in the ground truth train different teachers but the same student step."""
    data = PairedToy(n=2, size=16)
    recipes = []
    for target in (data.b, -data.b):
        recipe = OMGDRecipe(_settings(), 4, torch.zeros(1, 3, 16, 16), seed=1)
        before = {k: v.clone() for k, v in recipe.student.state_dict().items()}
        torch.manual_seed(0)
        recipe.train_step(0, {"A": data.a, "B": target}, random.Random(0))
        recipes.append(recipe)
    student = [r.student.state_dict() for r in recipes]
    assert any(not torch.equal(v, student[0][k]) for k, v in before.items())  # the student did learn
    assert all(torch.equal(v, student[1][k]) for k, v in student[0].items())
    wide = [r.teachers["wide"].state_dict() for r in recipes]
    assert any(not torch.equal(v, wide[1][k]) for k, v in wide[0].items())  # the teachers saw the targets


def test_supernet_mode_resumes_exactly(tmp_path):
    settings = _settings(space="channels-16", student_hparams={"n_blocks": 3}, sampling="sandwich")
    data, example = PairedToy(n=4, size=16), torch.zeros(1, 3, 16, 16)
    loop = LoopSettings(steps=4, batch_size=2, seed=2, checkpoint_every=2)
    straight = OMGDRecipe(settings, 4, example, seed=3)
    assert straight.student.elastic and set(straight.teachers) == {"wide", "deep"}
    run_training(straight, data, loop, tmp_path / "a", progress=False)
    first = OMGDRecipe(settings, 4, example, seed=3)
    run_training(first, data, loop, tmp_path / "b", progress=False, stop_after=3)
    second = OMGDRecipe(settings, 4, example, seed=3)
    run_training(second, data, loop, tmp_path / "b", resume=True, progress=False)
    for key, value in straight.state_dict()["student"].items():
        assert torch.equal(value, second.state_dict()["student"][key]), key


def test_unet_student_trains_with_the_deep_unet_teacher():
    """OMGD's U-Net recipe: wide U-Net (ngf x eta) and unet_deepest teachers; both learn, and so does the student."""
    settings = _settings(student_arch="unet", student_hparams={"ngf": 4, "num_downs": 5})
    recipe = OMGDRecipe(settings, 2, torch.zeros(1, 3, 32, 32), seed=0)
    deep = recipe.teachers["deep"]
    assert deep.arch == "deep_unet" and (deep.ngf, deep.num_downs, deep.norm) == (4, 5, recipe.student.norm)
    assert recipe.teachers["wide"].arch == "unet" and recipe.teachers["wide"].ngf == 8
    before = {name: {k: v.clone() for k, v in m.state_dict().items()}
              for name, m in (("student", recipe.student), ("deep", deep))}
    data = PairedToy(n=2, size=32)
    losses = recipe.train_step(0, {"A": data.a, "B": data.b}, random.Random(0))
    assert "T_deep" in losses and "S_cd" in losses
    for name, module in (("student", recipe.student), ("deep", deep)):
        assert any(not torch.equal(v, before[name][k]) for k, v in module.state_dict().items()), name


def test_deep_teachers_for_an_architecture_without_one_are_refused(monkeypatch):
    from distill import omgd

    monkeypatch.delitem(omgd.DEEP_TEACHERS, "unet")  # as a family registered without a deep teacher
    unet = dict(student_arch="unet", student_hparams={"ngf": 4, "num_downs": 5})
    for teachers in ("deep", "both"):
        with pytest.raises(TrainingError, match="no deep teacher architecture for a unet student; use --teachers wide"):
            OMGDRecipe(_settings(teachers=teachers, **unet), 2, torch.zeros(1, 3, 32, 32))
    recipe = OMGDRecipe(_settings(teachers="wide", **unet), 2, torch.zeros(1, 3, 32, 32))
    assert set(recipe.teachers) == {"wide"}
    with pytest.raises(TrainingError, match="deep_extra_blocks deepens a ResNet deep teacher"):
        monkeypatch.undo()
        OMGDRecipe(_settings(deep_extra_blocks=1, **unet), 2, torch.zeros(1, 3, 32, 32))
