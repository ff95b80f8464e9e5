"""distill.parallel without Ray: two gloo processes, each on half of every batch, end with the weights of one process
on the whole batch (gradients averaged, BatchNorm on the whole batch); without the averaging they do not.
The equivalence check defined here is the one the Ray Train tests use (tests/nas/test_ray_training.py)."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from distill.loop import BatchOrder, LoopSettings, Shard, run_training, seeded_step
from distill.parallel import GradientAverager, global_batch_norm
from distill.teacher import Pix2PixTeacher, TeacherSettings

from .test_teacher_training import PairedToy

# "The same weights" in float32 with Adam: Adam's first steps are +-lr for any gradient, so an element whose gradient
# is near zero flips with the order of a sum. Hence, per weight tensor, at most 0.1% of the elements beyond 1e-5
# and none beyond one learning rate, and the networks' outputs within 1e-3: as close as one process is to itself
# with 1 vs 2 torch threads (an OMGD deep teacher, 2 steps: 1.1e-4 in weights, 6.8e-4 in outputs, measured).
# Biases are checked through the outputs: those ahead of an instance norm get only rounding noise (the norm
# cancels them), which Adam turns into lr-sized steps in any run.
TOL, OUTLIERS, LR, OUTPUT_TOL = 1e-5, 1e-3, 2e-4, 1e-3

# a BatchNorm PatchGAN (pix2pix's default d_norm), so that the whole-batch statistics are exercised
TEACHER = TeacherSettings(arch="resnet", hparams={"ngf": 4, "n_blocks": 1}, ndf=4, netd="n_layers", n_layers_d=1)
LOOP = LoopSettings(steps=3, batch_size=4, seed=1, checkpoint_every=3)


def assert_same_weights(name: str, one: torch.Tensor, other: torch.Tensor) -> None:
    diff = (one - other).abs()
    assert diff.max() <= LR and (diff > TOL).float().mean() <= OUTLIERS, \
        f"{name}: max {diff.max():.2e}, {int((diff > TOL).sum())} of {diff.numel()} beyond {TOL}"


def assert_same_network(one: torch.nn.Module, other: torch.nn.Module, inputs: torch.Tensor, configs=(None,)):
    theirs = dict(other.named_parameters())
    for name, value in one.named_parameters():
        if not name.endswith("bias"):
            assert_same_weights(name, value.detach(), theirs[name].detach())
    with torch.no_grad():
        for config in configs:
            run = (lambda m: m(inputs)) if config is None else (lambda m: m(inputs, config=config))
            torch.testing.assert_close(run(one.eval()), run(other.eval()), atol=OUTPUT_TOL, rtol=0)


def inputs(channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, channels, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _train(rank: int, synchronised: bool) -> dict:
    recipe, data = Pix2PixTeacher(TEACHER, LOOP.steps), PairedToy(8)
    order = BatchOrder(len(data), LOOP.batch_size, LOOP.seed)
    averager = GradientAverager(recipe, 2) if synchronised else None
    with global_batch_norm(2 if synchronised else 1):
        for step in range(LOOP.steps):
            losses = seeded_step(recipe, data, order, LOOP, step, Shard(rank, 2))
            if averager is not None:
                averager.after_step(losses)
    return recipe.state_dict()


def _worker(rank: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    states = {"synchronised": _train(rank, True), "alone": _train(rank, False)}
    if rank == 0:
        torch.save(states, os.path.join(folder, "rank0.pt"))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> dict[str, Pix2PixTeacher]:
    """Rank 0's recipe after 3 steps on half batches: with gradients averaged, and each process alone."""
    folder = tmp_path_factory.mktemp("ranks")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(folder)), nprocs=2)
    recipes = {}
    for name, state in torch.load(folder / "rank0.pt", weights_only=True).items():
        recipes[name] = Pix2PixTeacher(TEACHER, LOOP.steps)
        recipes[name].load_state_dict(state)
    return recipes


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    recipe = Pix2PixTeacher(TEACHER, LOOP.steps)
    run_training(recipe, PairedToy(8), LOOP, tmp_path_factory.mktemp("one"), progress=False)
    return recipe


def test_two_processes_on_half_batches_equal_one_process(one_process, two_processes):
    two = two_processes["synchronised"]
    assert_same_network(one_process.generator, two.generator, inputs())
    assert_same_network(one_process.discriminator, two.discriminator, inputs(6))
    buffers = {k: v for k, v in one_process.discriminator.state_dict().items() if "running_" in k}
    assert buffers  # BatchNorm's running statistics: the whole batch's
    for name, value in buffers.items():
        torch.testing.assert_close(value, two.discriminator.state_dict()[name], atol=TOL, rtol=0)


def test_without_averaging_the_check_fails(one_process, two_processes):
    with pytest.raises(AssertionError):
        assert_same_network(one_process.generator, two_processes["alone"].generator, inputs())


def test_every_optimizer_and_model_of_a_recipe_is_found():
    """OMGD keeps its student's optimizer in a helper object: the averaging must still see it."""
    from distill.losses import OMGDStudentLoss
    from distill.omgd import OMGDRecipe, OMGDSettings
    from distill.parallel import recipe_modules, recipe_optimizers

    settings = OMGDSettings(space="channels-16", student_hparams={"n_blocks": 3}, eta=2, netd="n_layers",
                            n_layers_d=1, ndf=4, student_loss=OMGDStudentLoss(perceptual="none", lambda_cd=10.0))
    recipe = OMGDRecipe(settings, 2, torch.zeros(1, 3, 16, 16), seed=3)
    optimizers = recipe_optimizers(recipe)
    assert len(optimizers) == 3 and any(o is recipe.learner.optimizer for o in optimizers)
    modules = recipe_modules(recipe)
    for wanted in (recipe.student, recipe.discriminator, recipe.criterion, *recipe.teachers.values()):
        assert any(m is wanted for m in modules)
    trained = {id(p) for o in optimizers for g in o.param_groups for p in g["params"]}
    assert all(id(p) in trained for m in (recipe.student, recipe.discriminator, *recipe.teachers.values())
               for p in m.parameters())


def test_a_program_teacher_is_refused_for_data_parallel_training(tmp_path):
    """A TorchScript teacher cannot be pickled to Ray Train workers: refused before anything trains or Ray starts."""
    from distill.gan_compression import GANCompressionRecipe, GANCompressionSettings
    from distill.loop import LoopSettings
    from distill.parallel import data_parallel_refusal
    from nas.ray_training import ClusterSettings, ClusterTrainingError, RayTrainRunner
    from supernet import create_generator
    from supernet.teachers import load_teacher

    teacher = create_generator("resnet", ngf=4, n_blocks=1).eval()
    path = tmp_path / "teacher.ts"
    torch.jit.trace(teacher, torch.zeros(1, 3, 16, 16)).save(str(path))
    program = load_teacher(path.read_bytes(), str(path)).generator
    recipe = GANCompressionRecipe(GANCompressionSettings(space="channels-16", student_hparams={"n_blocks": 3}),
                                  program, 2, torch.zeros(1, 3, 16, 16))
    assert "TorchScript program" in data_parallel_refusal(recipe)
    with pytest.raises(ClusterTrainingError, match="cannot be sent to data-parallel workers: train without --workers"):
        RayTrainRunner(ClusterSettings(2))(recipe, None, LoopSettings(2, 2), tmp_path / "out")
    assert not (tmp_path / "out").exists()
