"""Data-parallel training on Ray Train: N workers at per-worker batch b end with the weights of one process at batch
N x b (teacher, GAN Compression supernet and fine-tune, OMGD), resume across worker counts, and bad input refused
before any training. One private 2-CPU Ray cluster for the module (starting Ray is the slow part)."""
from __future__ import annotations

import socket

import pytest
import torch

from distill.gan_compression import GANCompressionRecipe, GANCompressionSettings
from distill.jobs import DataSpec, TeacherSource, finetune
from distill.loop import LoopSettings, TrainingError, run_training
from distill.losses import OMGDStudentLoss
from distill.omgd import OMGDRecipe, OMGDSettings
from distill.teacher import CycleGANTeacher, Pix2PixTeacher
from nas.ray_training import ClusterSettings, ClusterTrainingError, RayTrainRunner
from supernet import create_generator, load_generator, save_generator

from ..cli_run import run_cli
from ..distill.test_parallel import TEACHER, assert_same_network, assert_same_weights, inputs as _inputs
from ..distill.test_teacher_training import PairedToy

ray = pytest.importorskip("ray")

SUPERNET = GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4, sampling="sandwich")
OMGD = OMGDSettings(space="channels-16", student_hparams={"n_blocks": 3}, sampling="sandwich", eta=2, netd="n_layers",
                    n_layers_d=1, ndf=4, student_loss=OMGDStudentLoss(perceptual="none", lambda_cd=10.0))
EXAMPLE = torch.zeros(1, 3, 16, 16)
CONFIG = (8, 12, 8, 16, 8, 12, 8, 16)


@pytest.fixture(scope="module")
def cluster():
    from nas.executors import start_local_ray

    if ray.is_initialized():
        ray.shutdown()
    start_local_ray(2)
    yield
    ray.shutdown()


def _runner(workers=2, **kw):
    return RayTrainRunner(ClusterSettings(workers=workers, threads=1, **kw))


def test_pix2pix_teacher_two_workers_equal_one_process(cluster, tmp_path):
    loop = LoopSettings(steps=3, batch_size=4, seed=1, checkpoint_every=2)
    one, two = Pix2PixTeacher(TEACHER, 3), Pix2PixTeacher(TEACHER, 3)
    run_training(one, PairedToy(8), loop, tmp_path / "one", progress=False)
    with _runner() as runner:
        result = runner(two, PairedToy(8), loop, tmp_path / "two", progress=False)
    assert result["finished"] and result["step"] == 3 and result["images_per_second"] > 0
    assert set(result["losses"]) == {"G_gan", "G_L1", "D"}
    assert_same_network(one.generator, two.generator, _inputs())
    assert_same_network(one.discriminator, two.discriminator, _inputs(6))  # BatchNorm on the whole batch


def test_gan_compression_supernet_two_workers_equal_one_process(cluster, tmp_path):
    teacher = create_generator("resnet", ngf=16, n_blocks=3).eval()
    loop = LoopSettings(steps=3, batch_size=4, seed=2, checkpoint_every=3)
    one, two = (GANCompressionRecipe(SUPERNET, teacher, 3, EXAMPLE, seed=5) for _ in range(2))
    run_training(one, PairedToy(8), loop, tmp_path / "one", progress=False)
    with _runner() as runner:
        runner(two, PairedToy(8), loop, tmp_path / "two", progress=False)
    largest, smallest = one.space.largest(), one.space.smallest()
    assert_same_network(one.student, two.student, _inputs(), configs=(largest, smallest, CONFIG))
    assert_same_network(one.discriminator, two.discriminator, _inputs(6))
    mappings = dict(two.distiller.named_parameters())
    for name, value in one.distiller.named_parameters():  # the 1x1 distillation mappings
        assert_same_weights(name, value.detach(), mappings[name].detach())


def test_finetune_job_two_workers_equals_one_process(cluster, tmp_path):
    from imagedata import MakeOptions, make_dataset

    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=16, count=4, val_count=1), progress=False)
    data = DataSpec(tmp_path / "data" / "labelled", size=16)
    torch.manual_seed(0)
    teacher = save_generator(create_generator("resnet", ngf=8, n_blocks=3), tmp_path / "teacher.pt")
    supernet = save_generator(create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3),
                              tmp_path / "supernet.pt", kind="supernet", space="channels-16")
    settings = GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4)
    loop = LoopSettings(steps=2, batch_size=4, seed=3, checkpoint_every=2)
    one = finetune(data, supernet, CONFIG, TeacherSource(teacher), settings, loop, tmp_path / "one", progress=False)
    with _runner() as runner:
        two = finetune(data, supernet, CONFIG, TeacherSource(teacher), settings, loop, tmp_path / "two",
                       progress=False, runner=runner)
    assert_same_network(load_generator(one), load_generator(two), _inputs())


def test_omgd_two_workers_equal_one_process(cluster, tmp_path):
    """Online teachers, the shared discriminator, channel distillation (its BatchNorm) and a batch-summed TV term."""
    loop = LoopSettings(steps=2, batch_size=4, seed=4, checkpoint_every=2)
    one, two = (OMGDRecipe(OMGD, 2, EXAMPLE, seed=3) for _ in range(2))
    run_training(one, PairedToy(8), loop, tmp_path / "one", progress=False)
    with _runner() as runner:
        runner(two, PairedToy(8), loop, tmp_path / "two", progress=False)
    assert_same_network(one.student, two.student, _inputs(), configs=(one.space.largest(), one.space.smallest()))
    for name, teacher in one.teachers.items():
        assert_same_network(teacher, two.teachers[name], _inputs())
    assert_same_network(one.discriminator, two.discriminator, _inputs(6))


def test_killed_run_resumes_on_another_worker_count(cluster, tmp_path):
    """2 workers x 1 stopped after 2 of 4 steps, resumed on 1 worker x 2: the weights of one uninterrupted process;
    a resume with another total batch is refused before any training."""
    loop = LoopSettings(steps=4, batch_size=2, seed=6, checkpoint_every=1)
    straight = Pix2PixTeacher(TEACHER, 4)
    run_training(straight, PairedToy(6), loop, tmp_path / "straight", progress=False)
    with _runner(2) as runner:
        first = runner(Pix2PixTeacher(TEACHER, 4), PairedToy(6), loop, tmp_path / "run", progress=False,
                       stop_after=2)
    assert first["step"] == 2 and not first["finished"]
    with _runner(2) as runner, pytest.raises(ClusterTrainingError, match="pass --resume"):
        runner(Pix2PixTeacher(TEACHER, 4), PairedToy(6), loop, tmp_path / "run", progress=False)
    bigger = LoopSettings(steps=4, batch_size=4, seed=6, checkpoint_every=1)
    with _runner(2) as runner, pytest.raises(TrainingError, match="other settings"):
        runner(Pix2PixTeacher(TEACHER, 4), PairedToy(6), bigger, tmp_path / "run", resume=True, progress=False)
    resumed = Pix2PixTeacher(TEACHER, 4)
    with _runner(1) as runner:
        second = runner(resumed, PairedToy(6), loop, tmp_path / "run", resume=True, progress=False)
    assert second["finished"] and second["step"] == 4
    assert_same_network(straight.generator, resumed.generator, _inputs())
    assert_same_network(straight.discriminator, resumed.discriminator, _inputs(6))


def test_bad_cluster_input_is_refused_before_training(cluster, tmp_path):
    with pytest.raises(ClusterTrainingError, match="at least 1 worker"):
        ClusterSettings(workers=0)
    loop = LoopSettings(steps=1, batch_size=3)
    with _runner(3) as runner, pytest.raises(ClusterTrainingError, match="needs 3 CPUs .* has 2"):
        runner(Pix2PixTeacher(TEACHER, 1), PairedToy(6), loop, tmp_path / "a", progress=False)
    with _runner(2) as runner, pytest.raises(ClusterTrainingError, match="does not split over 2 workers"):
        runner(Pix2PixTeacher(TEACHER, 1), PairedToy(6), loop, tmp_path / "b", progress=False)
    with _runner(2) as runner, pytest.raises(ClusterTrainingError, match="image pools"):
        runner(CycleGANTeacher(TEACHER, 1), PairedToy(6), LoopSettings(steps=1, batch_size=2), tmp_path / "c")
    (tmp_path / "file").write_text("not a folder")
    with _runner(2, storage=str(tmp_path / "file" / "store")) as runner, \
            pytest.raises(ClusterTrainingError, match="not writable"):
        runner.prepare(tmp_path / "d")
    assert not any((tmp_path / name).exists() for name in "abcd")  # nothing trained, nothing written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_refuses_bad_workers_and_unreachable_cluster_with_exit_2(tmp_path, capsys):
    common = ["train", "teacher", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--steps", "1"]
    status, _, err = run_cli([*common, "--workers", "0"], capsys)
    assert status == 2 and "--workers 0" in err and "Traceback" not in err
    status, _, err = run_cli([*common, "--workers", "2", "--ray-address", f"127.0.0.1:{_free_port()}"], capsys)
    assert status == 2 and "cannot reach the Ray cluster" in err and "Traceback" not in err
    status, _, err = run_cli([*common, "--ray-address", "127.0.0.1:6379"], capsys)
    assert status == 2 and "--workers" in err
    assert not (tmp_path / "out").exists()


def test_supernet_trained_on_two_workers_registers(cluster, tmp_path, capsys):
    from imagedata import MakeOptions, make_dataset

    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=6, val_count=1), progress=False)
    torch.manual_seed(0)
    teacher = save_generator(create_generator("resnet", ngf=8, n_blocks=3), tmp_path / "teacher.pt", kind="teacher")
    status, out, err = run_cli(["train", "supernet", "--data", str(tmp_path / "data" / "labelled"), "--size", "32",
                                "--teacher", str(teacher), "--space", "channels-16", "--netd", "n_layers",
                                "--n-layers-d", "1", "--ndf", "4", "--steps", "2", "--batch-size", "1",
                                "--workers", "2", "--threads", "1", "--out", str(tmp_path / "run"), "--quiet"],
                               capsys)
    assert status == 0, err
    record = torch.load(tmp_path / "run" / "supernet.pt", weights_only=True)
    assert record["meta"]["kind"] == "supernet" and record["meta"]["steps"] == 2
    workspace = ["supernet", "--workspace", str(tmp_path / "ws")]
    status, out, err = run_cli([*workspace, "register", str(tmp_path / "run" / "supernet.pt"), "--name", "dp"], capsys)
    assert status == 0, err
    status, out, err = run_cli([*workspace, "list"], capsys)
    assert status == 0 and "dp" in out
