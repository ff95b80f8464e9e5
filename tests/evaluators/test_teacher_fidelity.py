"""Teacher-fidelity metrics: a generator's outputs against its teacher's, checked against independent computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity
from torch import nn

from evaluators.evaluate import EvaluationInputError, EvaluationSettings, Evaluator, teacher_identity
from evaluators.metric_catalog import get_metric
from evaluators.metrics import MetricUnavailableError, Need
from evaluators.vgg import TAPS, VGG16_FILENAME, VGG16FeatureExtractor
from foundation.errors import WeightsNotFoundError

from .evaluation_helpers import Negate, made_data, one_torch_thread, open_split  # noqa: F401

TEACHER_METRICS = {"teacher-psnr": "maximize", "teacher-ssim": "maximize", "teacher-perceptual": "minimize"}
IDENTITY = teacher_identity("teachers/t.pt", "cd" * 32)


class Squash(nn.Module):
    """A 'teacher': tanh(1.5 x) per pixel, counting the images it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.images = 0

    def forward(self, x):
        self.images += x.shape[0]
        return torch.tanh(1.5 * x) + self.anchor


def eight_bit(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] -> [0, 1] at 8-bit levels, as the metrics read both sides."""
    unit = ((images.double() + 1) / 2).clamp(0, 1)
    return (np.floor(unit.numpy() * 255 + 1e-4).clip(max=255) / 255)


def outputs(dataset, module: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    inputs = torch.stack([dataset[i]["A"] for i in range(len(dataset))])
    with torch.no_grad():
        return inputs.numpy(), eight_bit(module(inputs))


def evaluator(split, metrics, teacher=None, identity=IDENTITY, **settings) -> Evaluator:
    return Evaluator(split, metrics, EvaluationSettings(batch_size=2, teacher=teacher, teacher_identity=identity,
                                                        **settings))


def test_registered_with_direction_need_and_teacher_identity(made_data):
    for name, direction in TEACHER_METRICS.items():
        assert get_metric(name).direction == direction and get_metric(name).needs == {Need.TEACHER}
    result = evaluator(open_split(made_data["unaligned"]), "teacher-psnr,teacher-ssim", Squash()).evaluate(Negate(-0.9))
    assert set(result.metrics) == {"teacher-psnr", "teacher-ssim"}
    for identity in result.identities.values():
        assert identity.endswith("vs teacher teachers/t.pt sha256:" + "cd" * 32)


def test_psnr_and_ssim_against_the_teachers_outputs_match_independent_computations(made_data):
    split = open_split(made_data["unaligned"])  # unpaired: no ground truth, the teacher is the reference
    student, teacher = Negate(-0.9), Squash()
    _, fake = outputs(split, student)
    _, reference = outputs(split, Squash())
    psnr = np.mean([10 * np.log10(1.0 / np.mean((f - t) ** 2)) for f, t in zip(fake, reference)])
    ssim = np.mean([structural_similarity(t, f, data_range=1.0, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False) for f, t in zip(fake, reference)])
    result = evaluator(split, "teacher-psnr,teacher-ssim", teacher).evaluate(student)
    assert 0.05 < ssim < 0.99 and 3 < psnr < 40
    assert result.metrics["teacher-psnr"] == pytest.approx(psnr, rel=1e-6)
    assert result.metrics["teacher-ssim"] == pytest.approx(ssim, abs=1e-5)


def test_the_teacher_against_itself_scores_ssim_one_and_a_finite_psnr_cap(made_data):
    split = open_split(made_data["unaligned"])
    teacher = Squash()
    result = evaluator(split, "teacher-psnr,teacher-ssim", teacher).evaluate(teacher)
    values = 3 * 32 * 32
    assert result.metrics["teacher-ssim"] == pytest.approx(1.0, abs=1e-6)
    # half the smallest non-zero MSE: 3 dB above an image one level off in one value
    assert result.metrics["teacher-psnr"] == pytest.approx(10 * np.log10(2 * 255 ** 2 * values))


def test_the_teachers_outputs_are_computed_once_per_evaluator(made_data):
    split = open_split(made_data["unaligned"])
    teacher = Squash()
    scorer = evaluator(split, "teacher-ssim", teacher)
    first = scorer.evaluate(Negate(-0.9)).metrics["teacher-ssim"]
    scorer.evaluate(Negate(-0.6))
    assert teacher.images == len(split)
    assert scorer.evaluate(Negate(-0.9)).metrics["teacher-ssim"] == first
    assert scorer.evaluate(Negate(-0.9)).seconds_by_part["teacher"] >= 0


def _lpips_uniform(fake: np.ndarray, reference: np.ndarray, vgg: VGG16FeatureExtractor) -> float:
    """LPIPS's formula with every weight 1, written out per layer with F.normalize."""
    scores = []
    for f, t in zip(fake, reference):
        with torch.no_grad():
            a = vgg(torch.from_numpy(f).float().unsqueeze(0) * 2 - 1)
            b = vgg(torch.from_numpy(t).float().unsqueeze(0) * 2 - 1)
        total = 0.0
        for layer in TAPS:
            x = F.normalize(getattr(a, layer).double(), dim=1, eps=0)
            y = F.normalize(getattr(b, layer).double(), dim=1, eps=0)
            total += float(((x - y) ** 2).sum(1).mean())
        scores.append(total)
    return float(np.mean(scores))


def test_perceptual_distance_with_local_vgg16_weights(made_data, tmp_path):
    torch.manual_seed(0)
    vgg = VGG16FeatureExtractor()
    for p in vgg.parameters():  # random weights, but every ReLU passes something
        p.data.abs_()
    torch.save(vgg.state_dict(), tmp_path / VGG16_FILENAME)
    split = open_split(made_data["unaligned"])
    _, fake = outputs(split, Negate(-0.9))
    _, reference = outputs(split, Squash())
    result = evaluator(split, "teacher-perceptual", Squash(), vgg_weights=tmp_path).evaluate(Negate(-0.9))
    assert result.metrics["teacher-perceptual"] == pytest.approx(_lpips_uniform(fake, reference, vgg), rel=1e-4)
    assert result.metrics["teacher-perceptual"] > 0
    assert result.identities["teacher-perceptual"].startswith("vgg16-397923af(relu1_2,relu2_2,relu3_3,relu4_3;")
    itself = evaluator(split, "teacher-perceptual", Squash(), vgg_weights=tmp_path).evaluate(Squash())
    assert itself.metrics["teacher-perceptual"] == pytest.approx(0.0, abs=1e-12)


def test_perceptual_without_vgg16_weights_names_the_missing_file(made_data, tmp_path, monkeypatch):
    monkeypatch.setenv("GANAS_VGG16_WEIGHTS", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsNotFoundError, match=VGG16_FILENAME):
        evaluator(open_split(made_data["unaligned"]), "teacher-perceptual", Squash())


def test_refused_without_a_teacher_or_without_its_identity(made_data):
    split = open_split(made_data["unaligned"])
    with pytest.raises(MetricUnavailableError, match="teacher-ssim compare.*no teacher was given.*--teacher FILE"):
        evaluator(split, "teacher-ssim")
    with pytest.raises(EvaluationInputError, match="needs teacher_identity"):
        evaluator(split, "teacher-psnr", Squash(), identity=None)


def test_cli_evaluate_with_a_teacher_equals_the_library_and_refuses_without(made_data, tmp_path, capsys):
    import json

    from foundation.hashing import file_sha256
    from nas.cli import main
    from supernet import create_generator, save_generator

    torch.manual_seed(0)
    teacher = create_generator("resnet", ngf=4, n_blocks=1)
    student = create_generator("resnet", ngf=2, n_blocks=1)
    teacher_file = save_generator(teacher, tmp_path / "teacher.pt", kind="teacher")
    student_file = save_generator(student, tmp_path / "student.pt")
    argv = ["evaluate", "--checkpoint", str(student_file), "--data", str(made_data["unaligned"]),
            "--metrics", "teacher-psnr,teacher-ssim", "--no-cache", "--quiet", "--json"]
    assert main(argv + ["--teacher", str(teacher_file)]) == 0
    shown = json.loads(capsys.readouterr().out)
    identity = teacher_identity(teacher_file.resolve(), file_sha256(teacher_file))
    library = evaluator(open_split(made_data["unaligned"]), "teacher-psnr,teacher-ssim", teacher.eval(),
                        identity).evaluate(student)
    assert shown["metrics"] == pytest.approx(library.metrics) and shown["identities"] == library.identities
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no teacher was given: pass --teacher FILE" in err and "Traceback" not in err
    assert main(argv + ["--teacher", str(tmp_path / "none.pt")]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err
