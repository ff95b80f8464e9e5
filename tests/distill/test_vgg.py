"""VGG16 features: torchvision's state-dict layout loads, features have the right shapes and values."""
import pytest
import torch
import torch.nn.functional as F

from distill.losses import VGG16_FILENAME, VGG16FeatureExtractor
from foundation.errors import WeightsFileError, WeightsNotFoundError

# torchvision vgg16: features.<index> conv (in, out); classifier Linear layers
CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
         (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]
CLASSIFIER = {"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
              "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
              "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}
SMALL_CLASSIFIER_SUBSET = ("classifier.0.bias", "classifier.3.bias", "classifier.6.weight", "classifier.6.bias")


def torchvision_state_dict(classifier_keys=()):
    g = torch.Generator().manual_seed(0)
    sd = {}
    for index, cin, cout in CONVS:
        sd[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        sd[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.01
    for key in classifier_keys:
        sd[key] = torch.randn(CLASSIFIER[key], generator=g) * 0.01
    return sd


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    torch.save(torchvision_state_dict(SMALL_CLASSIFIER_SUBSET), folder / VGG16_FILENAME)
    return folder


@pytest.fixture(scope="module")
def vgg(weights_dir):
    return VGG16FeatureExtractor.from_pretrained(weights_dir)


def test_torchvision_file_with_classifier_keys_loads(vgg, weights_dir):
    saved = torch.load(weights_dir / VGG16_FILENAME, weights_only=True)
    own = vgg.state_dict()
    # every conv up to relu4_3 (features.21) is loaded; later convs and the classifier are ignored
    assert sorted(own) == sorted(f"features.{i}.{p}" for i, _, _ in CONVS if i <= 21 for p in ("weight", "bias"))
    for key, value in own.items():
        assert torch.equal(value, saved[key])


def test_state_dict_without_classifier_loads_too():
    vgg = VGG16FeatureExtractor()
    sd = torchvision_state_dict()
    vgg.load_torchvision_state_dict(sd)
    assert len(vgg.features) == 23  # built up to relu4_3 only
    assert torch.equal(vgg.features[21].weight, sd["features.21.weight"])


def test_feature_shapes_for_64x64(vgg):
    with torch.no_grad():
        f = vgg(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert [tuple(t.shape) for t in f] == [(1, 64, 64, 64), (1, 128, 32, 32), (1, 256, 16, 16), (1, 512, 8, 8)]
    assert f._fields == ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    assert all(float(t.min()) >= 0 for t in f)


def test_features_equal_a_hand_written_chain(vgg):
    """relu1_2 and relu2_2 recomputed with F.conv2d straight from torchvision's keys."""
    sd = torchvision_state_dict()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((x + 1) / 2 - mean) / std

    def conv(h, i):
        return F.relu(F.conv2d(h, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=1))

    relu1_2 = conv(conv(h, 0), 2)
    relu2_2 = conv(conv(F.max_pool2d(relu1_2, 2), 5), 7)
    with torch.no_grad():
        f = vgg(x)
    assert torch.allclose(f.relu1_2, relu1_2, atol=1e-5)
    assert torch.allclose(f.relu2_2, relu2_2, atol=1e-5)
    # OMGD's variant: [0, 1] input, no ImageNet normalisation
    plain = VGG16FeatureExtractor(imagenet_norm=False)
    plain.load_torchvision_state_dict(sd)
    with torch.no_grad():
        assert torch.allclose(plain(x).relu1_2, conv(conv((x + 1) / 2, 0), 2), atol=1e-5)


def test_frozen_eval_but_gradients_reach_the_input(vgg):
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training and not any(m.training for m in vgg.modules())
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_(True)
    vgg(x).relu2_2.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_environment_variable_is_used(weights_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("GANAS_VGG16_WEIGHTS", str(weights_dir / VGG16_FILENAME))
    VGG16FeatureExtractor.from_pretrained()


def test_missing_file_error_says_what_and_where(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("GANAS_VGG16_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError) as err:
        VGG16FeatureExtractor.from_pretrained()
    message = str(err.value)
    assert VGG16_FILENAME in message
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / VGG16_FILENAME) in message
    assert "$GANAS_VGG16_WEIGHTS" in message and "--perceptual none" in message


def test_wrong_file_is_a_typed_error(tmp_path):
    sd = torchvision_state_dict()
    del sd["features.12.bias"]
    sd["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(sd, tmp_path / VGG16_FILENAME)
    with pytest.raises(WeightsFileError) as err:
        VGG16FeatureExtractor.from_pretrained(tmp_path / VGG16_FILENAME)
    assert "missing features.12.bias" in str(err.value)
    assert "features.0.weight (64, 1, 3, 3) (expected (64, 3, 3, 3))" in str(err.value)
