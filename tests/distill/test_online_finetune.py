"""Online fine-tuning (OMGD's way, from the registered teacher): the subnet learns only from the teacher, which
trains on as a copy; the teacher's discriminator is reused; resume is exact; programs and bad layers refused."""
import random

import pytest
import torch

from distill.jobs import FINETUNE_RECIPES, DataSpec, finetune_subnet
from distill.loop import LoopSettings, TrainingError, run_training
from distill.online import OnlineFinetuneRecipe, OnlineFinetuneSettings
from imagedata import MakeOptions, make_dataset
from supernet import create_generator, extract_subnet

from .test_teacher_training import PairedToy

CONFIG = (8, 12, 8, 16, 8, 12, 8, 16)
SMALL_D = dict(netd="n_layers", n_layers_d=1, ndf=4)


def _models(seed=0):
    torch.manual_seed(seed)
    teacher = create_generator("resnet", ngf=8, n_blocks=3)
    supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3)
    return teacher, extract_subnet(supernet, CONFIG)


def _recipe(teacher, student, **kw):
    return OnlineFinetuneRecipe(OnlineFinetuneSettings(**{**SMALL_D, **kw}), teacher, student, 4,
                                torch.zeros(1, 3, 16, 16), seed=1)


def test_student_learns_from_the_teacher_only_and_the_teacher_trains_as_a_copy():
    """Two runs that differ only in the ground truth train different teachers but the same first student step."""
    data = PairedToy(n=2, size=16)
    runs = []
    for target in (data.b, -data.b):
        teacher, student = _models()
        original = {k: v.clone() for k, v in teacher.state_dict().items()}
        before = {k: v.clone() for k, v in student.state_dict().items()}
        recipe = _recipe(teacher, student)
        torch.manual_seed(0)
        losses = recipe.train_step(0, {"A": data.a, "B": target}, random.Random(0))
        assert "S_cd" in losses and "S_ssim" in losses  # channel distillation into the teacher's layers
        assert all(torch.equal(v, original[k]) for k, v in teacher.state_dict().items())  # the given one untouched
        runs.append(recipe)
    students = [r.student.state_dict() for r in runs]
    assert any(not torch.equal(v, students[0][k]) for k, v in before.items() if v.is_floating_point())
    assert all(torch.equal(v, students[1][k]) for k, v in students[0].items())
    teachers = [r.teacher.state_dict() for r in runs]
    assert any(not torch.equal(v, teachers[1][k]) for k, v in teachers[0].items())  # the teachers saw the targets


def test_outputs_only_without_teacher_layers():
    teacher, student = _models()
    recipe = _recipe(teacher, student, teacher_layers=())
    assert recipe.criterion.channel_distiller is None and "cd" in recipe.criterion.disabled_terms()


def test_a_teacher_layer_list_of_the_wrong_length_is_refused():
    teacher, student = _models()
    with pytest.raises(TrainingError, match="names 1"):
        _recipe(teacher, student, teacher_layers=("model.10",))


def test_the_teachers_own_discriminator_and_gan_mode_are_used():
    meta = {"settings": {"gan_mode": "vanilla"},
            "discriminator": {"state_dict": {"x": 1}, "netd": "n_layers", "ndf": 4, "n_layers_d": 1, "d_norm": "batch"}}
    own = OnlineFinetuneSettings().with_teacher_discriminator(meta)
    assert (own.netd, own.ndf, own.n_layers_d, own.gan_mode) == ("n_layers", 4, 1, "vanilla")
    assert OnlineFinetuneSettings().with_teacher_discriminator({}) == OnlineFinetuneSettings()


def test_settings_survive_the_json_a_finalize_job_stores():
    import json
    from dataclasses import asdict

    settings = OnlineFinetuneSettings(teacher_layers=("a", "b"), **SMALL_D)
    stored = json.loads(json.dumps(asdict(settings)))
    assert FINETUNE_RECIPES.get("online").settings(stored) == settings


def test_online_fine_tuning_resumes_exactly(tmp_path):
    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=6, val_count=2), progress=False)
    data = DataSpec(tmp_path / "data" / "labelled", size=32)
    torch.manual_seed(0)
    teacher = create_generator("resnet", ngf=8, n_blocks=3)
    supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3)
    settings = OnlineFinetuneSettings(**SMALL_D)
    loop = LoopSettings(steps=4, batch_size=2, seed=2, checkpoint_every=2)
    straight, _ = finetune_subnet(data, supernet, CONFIG, teacher, settings, loop, tmp_path / "a", progress=False,
                                  recipe="online")
    # a run stopped after step 3, then resumed, ends with the same subnet
    from distill.jobs import _online_recipe

    dataset = data.open("train", 2)
    first, _ = _online_recipe(settings, teacher, extract_subnet(supernet, CONFIG), CONFIG, 4,
                              dataset[0]["A"].unsqueeze(0), 2, None)
    run_training(first, dataset, loop, tmp_path / "b", progress=False, stop_after=3)
    resumed, _ = finetune_subnet(data, supernet, CONFIG, teacher, settings, loop, tmp_path / "b", progress=False,
                                 recipe="online", resume=True)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_program_teacher_is_refused(tmp_path):
    from supernet.teachers import load_teacher

    teacher, student = _models()
    path = tmp_path / "teacher.ts"
    torch.jit.save(torch.jit.trace(teacher.eval(), torch.zeros(1, 3, 16, 16)), str(path))
    program = load_teacher(path.read_bytes(), str(path), None, None).generator
    with pytest.raises(TrainingError, match="not a program"):
        _recipe(program, student)


@pytest.mark.parametrize("deep", [("deep_resnet", dict(ngf=8, n_blocks=3))])
@pytest.mark.parametrize("recipe", FINETUNE_RECIPES.names())
def test_an_omgd_deep_teacher_fine_tunes_from_its_outputs(deep, recipe):
    """OMGD with --teachers deep records its deep teacher as the supernet's: both finalize recipes distil its
    outputs (it names no layers) instead of failing on every worker."""
    from distill.gan_compression import GANCompressionSettings

    torch.manual_seed(0)
    teacher = create_generator(deep[0], **deep[1])
    student = extract_subnet(create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3), CONFIG)
    way = FINETUNE_RECIPES.get(recipe)
    settings = (OnlineFinetuneSettings(**SMALL_D) if recipe == "online"
                else GANCompressionSettings(space="channels-16", **SMALL_D))
    training, _ = way.build(settings, teacher, student, CONFIG, 2, torch.zeros(1, 3, 16, 16), 0, {})
    assert training.student_layers == []
    data = PairedToy(n=2, size=16)
    losses = training.train_step(0, {"A": data.a, "B": data.b}, random.Random(0))
    assert all(v == v for v in losses.values())


def test_deep_unet_names_no_layers_to_distil():
    assert create_generator("deep_unet", ngf=4, num_downs=5).distill_layer_names() == []
