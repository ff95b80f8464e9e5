"""OMGD's combined student loss: weights, terms, the perceptual=none mode and where gradients go."""
import numpy as np
import pytest
import torch

from distill.losses import (ChannelDistiller, DistillLayer, LossConfigError, OMGDStudentCriterion, OMGDStudentLoss,
                            VGG16FeatureExtractor, ssim, total_variation)
from foundation.errors import WeightsNotFoundError


def _img(seed, grad=False, size=16):
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return x.requires_grad_(grad)


def np_gram(a):
    n, c, h, w = a.shape
    f = a.reshape(n, c, h * w)
    return np.einsum("nik,njk->nij", f, f) / (c * h * w)


def test_defaults_are_omgd_published_weights():
    cfg = OMGDStudentLoss()
    assert (cfg.lambda_ssim, cfg.lambda_style, cfg.lambda_perceptual, cfg.lambda_tv) == (10.0, 1e4, 10.0, 1e-5)
    assert cfg.perceptual == "vgg16" and cfg.ssim_data_range == 1.0 and cfg.tv_reduction == "sum"


def test_perceptual_none_is_ssim_plus_tv_and_says_so():
    crit = OMGDStudentCriterion(OMGDStudentLoss(perceptual="none"))
    assert crit.extractor is None
    student, teachers = _img(0), [_img(1), _img(2)]
    out = crit(student, teachers)
    assert set(out.terms) == {"ssim", "tv"}
    assert out.disabled == {"style": "perceptual=none", "perceptual": "perceptual=none", "cd": "lambda_cd = 0"}
    ssim_term = 10 * sum(1 - ssim(student, t).item() for t in teachers)
    a = student.numpy()
    tv = np.abs(np.diff(a, axis=-1)).sum() + np.abs(np.diff(a, axis=-2)).sum()
    assert out.terms["ssim"].item() == pytest.approx(ssim_term, rel=1e-5)
    assert out.terms["tv"].item() == pytest.approx(1e-5 * 2 * tv, rel=1e-5)  # once per teacher, as OMGD
    assert out.total.item() == pytest.approx(ssim_term + 1e-5 * 2 * tv, rel=1e-5)
    assert set(out.scalars()) == {"ssim", "tv", "total"}


def test_vgg_terms_against_numpy_with_a_random_extractor():
    torch.manual_seed(0)
    vgg = VGG16FeatureExtractor()
    crit = OMGDStudentCriterion(OMGDStudentLoss(lambda_ssim=0, lambda_tv=0), extractor=vgg)
    student, teachers = _img(3), [_img(4), _img(5)]
    out = crit(student, teachers)
    assert set(out.terms) == {"style", "perceptual"}
    with torch.no_grad():
        s = [f.numpy() for f in vgg(student)]
        ts = [[f.numpy() for f in vgg(t)] for t in teachers]
    style = sum(np.abs(np_gram(a) - np_gram(b)).mean() for t in ts for a, b in zip(s, t))
    perceptual = sum(np.abs(s[1] - t[1]).mean() for t in ts)  # relu2_2
    assert out.terms["style"].item() == pytest.approx(1e4 * style, rel=1e-4)
    assert out.terms["perceptual"].item() == pytest.approx(10 * perceptual, rel=1e-5)


def test_gradients_reach_the_student_only():
    torch.manual_seed(0)
    student_net = torch.nn.Conv2d(3, 3, 3, padding=1)
    teacher_net = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = _img(6)
    cd = ChannelDistiller([DistillLayer("s", "t", 3, 3)])
    crit = OMGDStudentCriterion(OMGDStudentLoss(lambda_cd=10.0), channel_distiller=cd,
                                extractor=VGG16FeatureExtractor())
    s_out, t_out = student_net(x).tanh(), teacher_net(x).tanh()
    out = crit(s_out, [t_out], {"s": s_out}, {"t": t_out})
    assert set(out.terms) == {"ssim", "style", "perceptual", "tv", "cd"} and out.disabled == {}
    assert out.terms["cd"].item() == pytest.approx(10 * cd({"s": s_out}, {"t": t_out}).item(), rel=1e-5)
    out.total.backward()
    assert student_net.weight.grad.abs().sum() > 0
    assert teacher_net.weight.grad is None
    assert all(p.grad is None for p in crit.extractor.parameters())
    assert {id(p) for p in crit.trainable_parameters()} == {id(p) for p in cd.parameters()}
    assert all(p.grad is not None for p in cd.parameters())


def test_channel_distillation_needs_its_distiller_and_features():
    with pytest.raises(LossConfigError, match="needs a ChannelDistiller"):
        OMGDStudentCriterion(OMGDStudentLoss(perceptual="none", lambda_cd=1.0))
    crit = OMGDStudentCriterion(OMGDStudentLoss(perceptual="none", lambda_cd=1.0),
                                channel_distiller=ChannelDistiller([DistillLayer("s", "t", 3, 3)]))
    with pytest.raises(LossConfigError, match="student_features"):
        crit(_img(0), [_img(1)])


def test_vgg16_without_weights_file_fails_with_the_remedy(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GANAS_VGG16_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="--perceptual none"):
        OMGDStudentCriterion(OMGDStudentLoss())


@pytest.mark.parametrize("kwargs,match", [
    (dict(lambda_ssim=-1.0), "lambda_ssim must be"),
    (dict(lambda_tv=float("nan")), "lambda_tv must be"),
    (dict(perceptual="lpips"), "vgg16, none"),
    (dict(ssim_padding="reflect"), "zeros, valid"),
    (dict(tv_reduction="max"), "sum, mean"),
    (dict(ssim_data_range=0.0), "positive"),
])
def test_bad_settings_are_typed_errors(kwargs, match):
    with pytest.raises(LossConfigError, match=match):
        OMGDStudentLoss(**kwargs)


def test_teachers_must_be_a_sequence():
    crit = OMGDStudentCriterion(OMGDStudentLoss(perceptual="none"))
    with pytest.raises(LossConfigError, match="non-empty sequence"):
        crit(_img(0), _img(1))
    # TV follows the configured reduction
    crit = OMGDStudentCriterion(OMGDStudentLoss(perceptual="none", lambda_ssim=0, tv_reduction="mean"))
    x = _img(2)
    assert crit(x, [_img(3)]).total.item() == pytest.approx(1e-5 * total_variation(x, "mean").item(), rel=1e-6)


def test_unit_ssim_range_equals_ssim_of_shifted_images():
    import torch

    from distill.losses import OMGDStudentCriterion, OMGDStudentLoss, SSIMLoss
    from distill.losses.errors import LossConfigError

    g = torch.Generator().manual_seed(0)
    student, teacher = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    config = OMGDStudentLoss(perceptual="none", lambda_tv=0.0, ssim_range="unit")
    got = OMGDStudentCriterion(config)(student, [teacher]).terms["ssim"]
    expected = 10.0 * SSIMLoss()((student + 1) / 2, (teacher + 1) / 2)
    assert torch.allclose(got, expected)
    signed = OMGDStudentCriterion(OMGDStudentLoss(perceptual="none", lambda_tv=0.0))(student, [teacher]).terms["ssim"]
    assert not torch.allclose(got, signed)
    with pytest.raises(LossConfigError, match="unknown SSIM range"):
        OMGDStudentLoss(ssim_range="percent")
