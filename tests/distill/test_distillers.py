"""FeatureTap, GAN Compression's feature distillation and OMGD's channel distillation."""
import pytest
import torch
import torch.nn.functional as F

from distill.losses import (ChannelDistiller, DistillLayer, FeatureDistiller, FeatureMismatchError, FeatureTap,
                            probe_layers)
from supernet import create_generator


def _rand(*shape, seed=0, grad=False):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).requires_grad_(grad)


def _map(weight, bias, x):
    """A 1x1 conv written as a channel contraction."""
    y = torch.einsum("oc,nchw->nohw", weight[:, :, 0, 0], x)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def test_feature_tap_records_named_outputs_and_removes_hooks():
    torch.manual_seed(0)
    g = create_generator("resnet", ngf=8, n_blocks=3).eval()
    names = g.distill_layer_names()
    assert names == ["model.9", "model.12"]
    x = _rand(1, 3, 16, 16)
    with torch.no_grad(), FeatureTap(g, names) as tap:
        g(x)
        assert torch.equal(tap.features["model.9"], g.model[:10](x))
        assert torch.equal(tap.features["model.12"], g.model[:13](x))
    assert tap.features == {}
    assert all(len(m._forward_hooks) == 0 for m in g.modules())
    with pytest.raises(FeatureMismatchError, match="no module named 'model.99'"):
        FeatureTap(g, ["model.99"])


def test_feature_tap_clone_protects_against_a_following_inplace_relu():
    # U-Net: the parent block applies ReLU(inplace=True) to its sub-block's output
    torch.manual_seed(0)
    g = create_generator("unet", ngf=4, num_downs=5).eval()
    x = _rand(1, 3, 32, 32)
    with torch.no_grad():
        with FeatureTap(g, ["model.model.1"]) as cloned:
            g(x)
            kept = cloned.features["model.model.1"]
        with FeatureTap(g, ["model.model.1"], clone=False) as raw:
            g(x)
            overwritten = raw.features["model.model.1"]
    assert float(kept.min()) < 0  # the block's real output (LeakyReLU skip half is negative somewhere)
    assert float(overwritten.min()) >= 0 and torch.equal(overwritten, kept.relu())


def test_feature_distiller_is_sum_of_mse_of_mapped_features():
    layers = [DistillLayer("a", "A", 6, 10), DistillLayer("b", "B", 4, 8)]
    distiller = FeatureDistiller(layers)
    s = {"a": _rand(2, 6, 4, 4, seed=1), "b": _rand(2, 4, 2, 2, seed=2)}
    t = {"A": _rand(2, 10, 4, 4, seed=3), "B": _rand(2, 8, 2, 2, seed=4)}
    expected = {}
    for (name, tname), conv in zip([("a", "A"), ("b", "B")], distiller.mappings):
        diff = _map(conv.weight, conv.bias, s[name]) - t[tname]
        expected[name] = (diff ** 2).mean()
    got = distiller.layer_losses(s, t)
    assert list(got) == ["a", "b"]
    for name in got:
        assert got[name].item() == pytest.approx(expected[name].item(), rel=1e-5)
    assert distiller(s, t).item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-5)
    assert abs(float(distiller.mappings[0].weight.detach().std()) - 0.02) < 0.01  # pix2pix normal init
    assert list(distiller.state_dict()) == ["mappings.0.weight", "mappings.0.bias", "mappings.1.weight",
                                            "mappings.1.bias"]


def test_elastic_mapping_uses_the_first_input_channels():
    distiller = FeatureDistiller([DistillLayer("a", "A", 16, 12)])
    conv = distiller.mappings[0]
    s, t = _rand(2, 8, 3, 3, seed=5), _rand(2, 12, 3, 3, seed=6)
    expected = ((_map(conv.weight[:, :8], conv.bias, s) - t) ** 2).mean()
    assert distiller({"a": s}, {"A": t}).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(FeatureMismatchError, match="C <= 16"):
        distiller({"a": _rand(2, 20, 3, 3)}, {"A": t})


def test_elastic_mapping_of_concatenated_halves():
    distiller = FeatureDistiller([DistillLayer("u", "U", 16, 6, concat_halves=True)])
    conv = distiller.mappings[0]
    s, t = _rand(1, 8, 4, 4, seed=7), _rand(1, 6, 4, 4, seed=8)  # cat of two 4-channel halves of 8
    keep = [0, 1, 2, 3, 8, 9, 10, 11]
    expected = ((_map(conv.weight[:, keep], conv.bias, s) - t) ** 2).mean()
    assert distiller({"u": s}, {"U": t}).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradients_reach_student_and_mappings_never_teacher():
    distiller = FeatureDistiller([DistillLayer("a", "A", 6, 10)])
    s, t = _rand(2, 6, 4, 4, seed=1, grad=True), _rand(2, 10, 4, 4, seed=2, grad=True)
    distiller({"a": s}, {"A": t}).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert distiller.mappings[0].weight.grad is not None
    assert t.grad is None


def test_supernet_student_distilled_from_a_wider_teacher_at_any_config():
    torch.manual_seed(0)
    student = create_generator("resnet", ngf=8, n_blocks=3, elastic=True)
    teacher = create_generator("resnet", ngf=12, n_blocks=3)
    names = student.distill_layer_names()
    x = _rand(2, 3, 16, 16, seed=9)
    layers = probe_layers(student, teacher, names, x)
    assert [(l.student_channels, l.teacher_channels) for l in layers] == [(32, 48), (32, 48)]
    assert student.training and teacher.training  # probing restored the modes
    distiller = FeatureDistiller(layers)
    for config in [(8,) * 8, (4, 6, 4, 8, 2, 6, 4, 8)]:
        with student.configured(config), FeatureTap(student, names) as s_tap, FeatureTap(teacher, names) as t_tap:
            student(x)
            teacher(x)
            assert s_tap.features["model.9"].shape[1] == 4 * config[2]
            loss = distiller(s_tap.features, t_tap.features)
        student.zero_grad(), teacher.zero_grad(), distiller.zero_grad()
        loss.backward()
        assert student.model[1].weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in teacher.parameters())
        used = 4 * config[2]
        assert distiller.mappings[0].weight.grad[:, :used].abs().sum() > 0
        assert torch.all(distiller.mappings[0].weight.grad[:, used:] == 0)


def test_channel_distiller_matches_hand_computation():
    torch.manual_seed(0)
    cd = ChannelDistiller([DistillLayer("a", "A", 6, 5), DistillLayer("b", "B", 4, 3)])
    s = {"a": _rand(3, 6, 4, 4, seed=1), "b": _rand(3, 4, 2, 2, seed=2)}
    t = {"A": _rand(3, 5, 4, 4, seed=3), "B": _rand(3, 3, 8, 8, seed=4)}  # pooled: spatial sizes may differ
    expected = 0.0
    for (name, tname), seq in zip([("a", "A"), ("b", "B")], cd.mappings):
        conv, bn = seq[0], seq[1]
        assert conv.bias is None
        y = _map(conv.weight, None, s[name])
        mean = y.mean(dim=(0, 2, 3), keepdim=True)
        var = y.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        y = torch.relu((y - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1))
        expected += ((y.mean(dim=(2, 3)) - t[tname].mean(dim=(2, 3))) ** 2).mean().item()
    assert cd(s, t).item() == pytest.approx(expected, rel=1e-5)
    # OMGD's init: N(0, sqrt(2 / (1 * 1 * out_channels))), BN weight 1, bias 0
    assert torch.all(cd.mappings[0][1].weight == 1) and torch.all(cd.mappings[0][1].bias == 0)


def test_channel_distiller_elastic_input_and_detached_teacher():
    cd = ChannelDistiller([DistillLayer("a", "A", 8, 5)]).eval()  # eval: BN uses running stats (0, 1)
    conv, bn = cd.mappings[0][0], cd.mappings[0][1]
    s, t = _rand(2, 3, 4, 4, seed=1, grad=True), _rand(2, 5, 4, 4, seed=2, grad=True)
    y = torch.relu(_map(conv.weight[:, :3], None, s) / torch.sqrt(torch.tensor(1 + bn.eps)))
    expected = ((y.mean(dim=(2, 3)) - t.mean(dim=(2, 3))) ** 2).mean()
    loss = cd({"a": s}, {"A": t})
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert s.grad is not None and t.grad is None


def test_missing_features_and_bad_layers_are_typed_errors():
    distiller = FeatureDistiller([DistillLayer("a", "A", 4, 4)])
    with pytest.raises(FeatureMismatchError, match="no student feature 'a'"):
        distiller({}, {"A": _rand(1, 4, 2, 2)})
    with pytest.raises(FeatureMismatchError, match="mapped student feature"):
        distiller({"a": _rand(1, 4, 2, 2)}, {"A": _rand(1, 4, 3, 3)})
    with pytest.raises(FeatureMismatchError, match="odd width"):
        DistillLayer("u", "U", 7, 4, concat_halves=True)
    with pytest.raises(FeatureMismatchError, match="at least one"):
        ChannelDistiller([])
