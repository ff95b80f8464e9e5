"""GAN Compression supernet training: every sampled subnet moves towards the teacher; resume is exact."""
import pytest
import torch

from distill.gan_compression import GANCompressionRecipe, GANCompressionSettings, student_for
from distill.loop import LoopSettings, TrainingError, run_training
from supernet import create_generator

from .test_teacher_training import PairedToy


def _teacher(seed=0):
    torch.manual_seed(seed)
    return create_generator("resnet", ngf=16, n_blocks=3).eval()


SETTINGS = GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4)


def test_student_follows_space_and_teacher_depth():
    arch, hparams = student_for(SETTINGS, _teacher())
    assert arch == "mobile_resnet" and hparams["ngf"] == 16 and hparams["n_blocks"] == 3


def test_supernet_training_resumes_exactly(tmp_path):
    data, example = PairedToy(n=4, size=16), torch.zeros(1, 3, 16, 16)
    loop = LoopSettings(steps=4, batch_size=2, seed=1, checkpoint_every=2)
    straight = GANCompressionRecipe(SETTINGS, _teacher(), 4, example, seed=5)
    run_training(straight, data, loop, tmp_path / "a", progress=False)
    first = GANCompressionRecipe(SETTINGS, _teacher(), 4, example, seed=5)
    run_training(first, data, loop, tmp_path / "b", progress=False, stop_after=1)
    second = GANCompressionRecipe(SETTINGS, _teacher(), 4, example, seed=5)
    run_training(second, data, loop, tmp_path / "b", resume=True, progress=False)
    for key, value in straight.state_dict()["student"].items():
        assert torch.equal(value, second.state_dict()["student"][key]), key


def test_distillation_moves_largest_and_smallest_towards_teacher(tmp_path):
    teacher = _teacher()
    data = PairedToy(n=4, size=16)
    data.b = teacher(data.a).detach()  # the teacher is perfect on this toy task
    recipe = GANCompressionRecipe(GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4,
                                                         sampling="sandwich", lambda_gan=0.1),
                                  teacher, 60, torch.zeros(1, 3, 16, 16), seed=0)
    space = recipe.space

    def gap(config):
        recipe.student.eval()
        with torch.no_grad():
            value = (recipe.student(data.a, config) - data.b).abs().mean().item()
        recipe.student.train()
        return value

    before = {c: gap(c) for c in (space.largest(), space.smallest())}
    run_training(recipe, data, LoopSettings(steps=60, batch_size=4, checkpoint_every=60), tmp_path, progress=False)
    for config, value in before.items():
        assert gap(config) < 0.7 * value, config


def test_mismatched_depth_is_refused():
    teacher = _teacher()
    settings = GANCompressionSettings(space="channels-16", student_hparams={"n_blocks": 6})
    with pytest.raises(TrainingError, match="teacher's depth"):
        GANCompressionRecipe(settings, teacher, 2, torch.zeros(1, 3, 16, 16))
