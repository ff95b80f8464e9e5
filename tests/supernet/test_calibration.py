"""BatchNorm recalibration (GAN Compression's calibrate): exact statistics of the batches given, per subnet."""
import pytest
import torch

from supernet import ConfigError, create_generator, extract_subnet, recalibrate_batchnorm

from .spade_reference import one_hot_labels

CONFIG = (4, 6, 8, 2, 5, 3, 8, 1)


def _supernet():
    torch.manual_seed(0)
    supernet = create_generator("mobile_spade", elastic=True, input_nc=6, ngf=8)
    supernet.train()
    with torch.no_grad():  # statistics of the full width, as supernet training leaves them
        supernet(torch.cat([one_hot_labels(5, 64, 64, seed=s) for s in range(2)]))
    return supernet


def _batches():
    return [torch.cat([one_hot_labels(5, 64, 64, seed=10 + 2 * i + j) for j in range(2)]) for i in range(3)]


def test_statistics_are_the_exact_average_over_the_batches():
    subnet = extract_subnet(_supernet(), CONFIG).eval()
    norm = subnet.model.up_1.norm_1.param_free_norm
    seen = []
    handle = norm.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    assert recalibrate_batchnorm(subnet, _batches()) == 3
    handle.remove()
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen])
    variances = torch.stack([x.transpose(0, 1).reshape(x.shape[1], -1).var(dim=1, unbiased=True) for x in seen])
    assert torch.allclose(norm.running_mean, means.mean(0), atol=1e-6)
    assert torch.allclose(norm.running_var, variances.mean(0), atol=1e-5)
    assert norm.momentum == 0.1 and not norm.training and not subnet.training  # restored


def test_a_supernet_recalibrated_at_a_config_extracts_to_the_recalibrated_subnet():
    supernet = _supernet()
    subnet = extract_subnet(supernet, CONFIG)
    recalibrate_batchnorm(subnet, _batches())
    recalibrate_batchnorm(supernet, _batches(), config=CONFIG)
    seg = one_hot_labels(5, 64, 64, seed=99)
    with torch.no_grad():
        before = extract_subnet(_supernet(), CONFIG).eval()(seg)
        after = subnet.eval()(seg)
        assert (supernet.eval()(seg, CONFIG) - after).abs().max() <= 1e-5
        assert (extract_subnet(supernet, CONFIG).eval()(seg) - after).abs().max() <= 1e-5
    assert (before - after).abs().max() > 1e-3  # the statistics changed what the subnet computes


def test_no_batches_is_refused_before_anything_is_reset():
    subnet = extract_subnet(_supernet(), CONFIG)
    state = {k: v.clone() for k, v in subnet.state_dict().items()}
    with pytest.raises(ConfigError, match="no batches"):
        recalibrate_batchnorm(subnet, iter([]))
    assert all(torch.equal(v, subnet.state_dict()[k]) for k, v in state.items())


def test_a_generator_without_batchnorm_has_nothing_to_calibrate():
    generator = create_generator("resnet", ngf=4, n_blocks=3)  # InstanceNorm
    assert recalibrate_batchnorm(generator, [torch.randn(1, 3, 16, 16)]) == 0
