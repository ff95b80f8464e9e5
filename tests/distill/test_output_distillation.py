"""A program teacher in GAN Compression: its named layers distilled through its graph, or its outputs only."""
import io
import random
import warnings

import pytest
import torch

from distill.gan_compression import GANCompressionRecipe, GANCompressionSettings, student_for
from distill.loop import LoopSettings, TrainingError, run_training
from supernet.teachers import load_teacher
from tests.supernet.program_generators import tiny_generator

from .test_teacher_training import PairedToy

EXAMPLE = torch.zeros(1, 3, 16, 16)


def _settings(**values):
    return GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4,
                                  student_hparams={"n_blocks": 3}, **values)


def _program(module=None):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module or tiny_generator(seed=1)), buffer)
    return load_teacher(buffer.getvalue(), "G.ts").generator


def _step(recipe):
    data = PairedToy(n=2, size=16)
    return recipe.train_step(0, {"A": data.a, "B": data.b}, random.Random(0))


def test_a_program_names_no_layers_so_a_paired_run_distils_its_outputs():
    recipe = GANCompressionRecipe(_settings(), _program(), 2, EXAMPLE)
    assert recipe.outputs_only and recipe.teacher_layers == [] and recipe.lambda_output == 10.0
    losses = _step(recipe)
    assert "G_distill" not in losses and losses["G_output"] > 0


def test_named_layers_are_distilled_through_the_programs_graph():
    recipe = GANCompressionRecipe(_settings(teacher_layers=("down", "blocks.2")), _program(), 2, EXAMPLE)
    assert not recipe.outputs_only and recipe.lambda_output == 0.0  # GAN Compression's paired recipe
    assert [(layer.student, layer.teacher, layer.student_channels, layer.teacher_channels)
            for layer in recipe.distiller.layers] == [("model.9", "down", 64, 32), ("model.12", "blocks.2", 64, 32)]
    losses = _step(recipe)
    assert losses["G_distill"] > 0 and "G_output" not in losses


def test_the_student_learns_the_program_teachers_outputs(tmp_path):
    teacher = _program()
    data = PairedToy(n=4, size=16)
    data.b = torch.rand_like(data.b) * 2 - 1  # a ground truth unrelated to the teacher: only its outputs teach it
    recipe = GANCompressionRecipe(_settings(lambda_recon=0.0, lambda_gan=0.0, sampling="sandwich"), teacher, 40,
                                  EXAMPLE, seed=0)
    with torch.no_grad():
        target = teacher(data.a)

    def gap():
        recipe.student.eval()
        with torch.no_grad():
            value = (recipe.student(data.a, recipe.space.largest()) - target).abs().mean().item()
        recipe.student.train()
        return value

    before = gap()
    run_training(recipe, data, LoopSettings(steps=40, batch_size=4, checkpoint_every=40), tmp_path, progress=False)
    assert gap() < 0.7 * before


def test_a_program_teacher_gives_the_student_its_channels_but_no_depth():
    program = _program(tiny_generator(seed=1, out_nc=1))
    with torch.no_grad():
        program(EXAMPLE)
    arch, hparams = student_for(GANCompressionSettings(space="channels-16"), program)
    assert arch == "mobile_resnet" and (hparams["input_nc"], hparams["output_nc"]) == (3, 1)
    assert "n_blocks" not in hparams and "norm" not in hparams  # the architecture's defaults


def test_output_weight_is_for_paired_tasks():
    with pytest.raises(TrainingError, match="an unpaired task already learns the teacher's outputs"):
        GANCompressionSettings(space="channels-16", task="unpaired", lambda_output=5.0)
    assert GANCompressionSettings(space="channels-16", task="unpaired").output_weight(False) == 0.0
    assert _settings(lambda_output=3.0).output_weight(True) == 3.0
