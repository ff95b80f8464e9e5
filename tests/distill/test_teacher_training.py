"""Teacher training: losses go down on a learnable task; a killed run resumes to the same weights."""
import pytest
import torch

from distill.loop import LoopSettings, TrainingError, run_training
from distill.teacher import CycleGANTeacher, Pix2PixTeacher, TeacherSettings


class PairedToy(torch.utils.data.Dataset):
    """B is a fixed colour transform of A, so a generator can learn it."""

    def __init__(self, n=6, size=16):
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.b = self.a.flip(1) * 0.8

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[i]}


SMALL = TeacherSettings(arch="resnet", hparams={"ngf": 4, "n_blocks": 1}, ndf=4, netd="n_layers", n_layers_d=1, pool_size=3)


def _weights(recipe):
    return {k: v.clone() for k, v in recipe.state_dict()["G" if "G" in recipe.state_dict() else "G_AB"].items()}


@pytest.mark.parametrize("recipe_class", [Pix2PixTeacher, CycleGANTeacher])
def test_killed_run_resumes_to_identical_weights(tmp_path, recipe_class):
    settings = LoopSettings(steps=6, batch_size=2, seed=3, checkpoint_every=2)
    data = PairedToy()
    straight = recipe_class(SMALL, settings.steps)
    run_training(straight, data, settings, tmp_path / "straight", progress=False)

    first = recipe_class(SMALL, settings.steps)
    result = run_training(first, data, settings, tmp_path / "resumed", progress=False, stop_after=3)
    assert result["step"] == 3 and not result["finished"]
    second = recipe_class(SMALL, settings.steps)  # a new process: fresh weights, loaded from the checkpoint
    result = run_training(second, data, settings, tmp_path / "resumed", resume=True, progress=False)
    assert result["finished"]
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(second)[key]), key


def test_existing_run_needs_resume_and_same_settings(tmp_path):
    settings = LoopSettings(steps=2, batch_size=1, checkpoint_every=1)
    run_training(Pix2PixTeacher(SMALL, 2), PairedToy(), settings, tmp_path, progress=False)
    with pytest.raises(TrainingError, match="pass --resume"):
        run_training(Pix2PixTeacher(SMALL, 2), PairedToy(), settings, tmp_path, progress=False)
    other = TeacherSettings(arch="resnet", hparams={"ngf": 4, "n_blocks": 1}, ndf=4, netd="n_layers", n_layers_d=1, lambda_l1=5)
    with pytest.raises(TrainingError, match="other settings"):
        run_training(Pix2PixTeacher(other, 2), PairedToy(), settings, tmp_path, resume=True, progress=False)


def test_pix2pix_teacher_learns_the_mapping(tmp_path):
    torch.manual_seed(0)
    data = PairedToy(n=4, size=16)
    recipe = Pix2PixTeacher(TeacherSettings(arch="resnet", hparams={"ngf": 8, "n_blocks": 1}, ndf=8, netd="n_layers", n_layers_d=1), 60)
    before = _l1(recipe, data)
    run_training(recipe, data, LoopSettings(steps=60, batch_size=4, checkpoint_every=60), tmp_path, progress=False)
    after = _l1(recipe, data)
    assert after < 0.75 * before


def _l1(recipe, data):
    recipe.generator.eval()
    with torch.no_grad():
        value = (recipe.generator(data.a) - data.b).abs().mean().item()
    recipe.generator.train()
    return value
