"""The FID Inception-v3 (layout, weights files, preprocessing), weights discovery and extractors."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evaluators.features import (ExtractorError, ExtractorInputError, FeatureExtractor, InceptionExtractor,
                                 TorchScriptExtractor, _EXTRACTORS, create_extractor, extract_features,
                                 list_extractors, load_extractor, register_extractor)
from evaluators.inception import (PREPROCESSING, FIDInceptionV3, InceptionInputError, InceptionWeightsError,
                                  build_fid_inception, get_preprocessing, load_fid_inception, resize_bilinear_tf1,
                                  weights_digest)
from evaluators.weights import INCEPTION_WEIGHTS, find_inception_weights
from foundation.errors import GanasError, WeightsNotFoundError
from foundation.weights import hub_checkpoint_dir

# --------------------------------------------------------------------------- the standard layout, as data
# Taken from torch-fidelity's feature_extractor_inceptionv3.py / util_convert_inception_weights.py and
# pytorch-fid's inception.py: every BasicConv2d is (conv without bias, BatchNorm). Rows: branch, in, out, kh, kw;
# "IN" is the block's input width, "P" InceptionA's pool features, "C7" InceptionC's 7x7 width.
BLOCK_ROWS = {
    "A": [("branch1x1", "IN", 64, 1, 1), ("branch5x5_1", "IN", 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
          ("branch3x3dbl_1", "IN", 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3),
          ("branch_pool", "IN", "P", 1, 1)],
    "B": [("branch3x3", "IN", 384, 3, 3), ("branch3x3dbl_1", "IN", 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
          ("branch3x3dbl_3", 96, 96, 3, 3)],
    "C": [("branch1x1", "IN", 192, 1, 1), ("branch7x7_1", "IN", "C7", 1, 1), ("branch7x7_2", "C7", "C7", 1, 7),
          ("branch7x7_3", "C7", 192, 7, 1), ("branch7x7dbl_1", "IN", "C7", 1, 1),
          ("branch7x7dbl_2", "C7", "C7", 7, 1), ("branch7x7dbl_3", "C7", "C7", 1, 7),
          ("branch7x7dbl_4", "C7", "C7", 7, 1), ("branch7x7dbl_5", "C7", 192, 1, 7), ("branch_pool", "IN", 192, 1, 1)],
    "D": [("branch3x3_1", "IN", 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3), ("branch7x7x3_1", "IN", 192, 1, 1),
          ("branch7x7x3_2", 192, 192, 1, 7), ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3)],
    "E": [("branch1x1", "IN", 320, 1, 1), ("branch3x3_1", "IN", 384, 1, 1), ("branch3x3_2a", 384, 384, 1, 3),
          ("branch3x3_2b", 384, 384, 3, 1), ("branch3x3dbl_1", "IN", 448, 1, 1), ("branch3x3dbl_2", 448, 384, 3, 3),
          ("branch3x3dbl_3a", 384, 384, 1, 3), ("branch3x3dbl_3b", 384, 384, 3, 1), ("branch_pool", "IN", 192, 1, 1)],
}
STEM = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
        ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3)]
BLOCKS = [("Mixed_5b", "A", {"IN": 192, "P": 32}), ("Mixed_5c", "A", {"IN": 256, "P": 64}),
          ("Mixed_5d", "A", {"IN": 288, "P": 64}), ("Mixed_6a", "B", {"IN": 288}),
          ("Mixed_6b", "C", {"IN": 768, "C7": 128}), ("Mixed_6c", "C", {"IN": 768, "C7": 160}),
          ("Mixed_6d", "C", {"IN": 768, "C7": 160}), ("Mixed_6e", "C", {"IN": 768, "C7": 192}),
          ("Mixed_7a", "D", {"IN": 768}), ("Mixed_7b", "E", {"IN": 1280}), ("Mixed_7c", "E", {"IN": 2048})]
REPRESENTATIVE = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_1a_3x3.bn.running_var": (32,),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1), "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3), "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.bn.bias": (192,), "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1), "Mixed_7c.branch_pool.bn.running_mean": (192,),
    "fc.weight": (1008, 2048), "fc.bias": (1008,),
}
# torchvision documents inception_v3 at 27,161,264 parameters (1000 classes, with AuxLogits). AuxLogits holds
# 768*128 + 2*128 + 128*768*25 + 2*768 + 768*1000 + 1000 = 3,326,696; the FID graph has 8 more classes (8 * 2049).
EXPECTED_PARAMETERS = 27_161_264 - 3_326_696 + 8 * 2049


def expected_layout() -> dict[str, tuple[int, ...]]:
    rows = [(f"{name}", i, o, kh, kw) for name, i, o, kh, kw in STEM]
    for block, kind, widths in BLOCKS:
        rows += [(f"{block}.{branch}", widths.get(i, i), widths.get(o, o), kh, kw)
                 for branch, i, o, kh, kw in BLOCK_ROWS[kind]]
    layout: dict[str, tuple[int, ...]] = {}
    for prefix, i, o, kh, kw in rows:
        layout[f"{prefix}.conv.weight"] = (o, i, kh, kw)
        for tensor in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{prefix}.bn.{tensor}"] = (o,)
    layout["fc.weight"], layout["fc.bias"] = (1008, 2048), (1008,)
    return layout


def standard_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the layout of weights-inception-2015-12-05-6726825d.pth, with seeded values."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in expected_layout().items():
        value = torch.randn(shape, generator=generator) * 0.05
        state[key] = value.abs() + 0.5 if key.endswith("running_var") else value
    return state


@pytest.fixture(scope="module")
def network() -> FIDInceptionV3:
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("torch_home") / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / "weights-inception-2015-12-05-6726825d.pth"
    state = standard_state_dict()
    torch.save(state, path)
    return path, state


# --------------------------------------------------------------------------- architecture

def test_layout_matches_the_standard_weights_file(network):
    own = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    layout = expected_layout()
    assert len(layout) == 94 * 5 + 2 == 472
    assert own == layout
    for key, shape in REPRESENTATIVE.items():
        assert own[key] == shape, key
    assert sum(p.numel() for p in network.parameters()) == EXPECTED_PARAMETERS == 23_850_960


def test_standard_file_loads_strictly_with_weights_only(weights_file):
    path, state = weights_file
    raw = torch.load(path, map_location="cpu", weights_only=True)
    plain = FIDInceptionV3()
    plain.load_state_dict(raw, strict=True)  # exactly the layout, no remapping
    loaded = load_fid_inception(path)
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_6b.branch7x7_2.bn.running_var", "fc.bias"):
        assert torch.equal(loaded.state_dict()[key], state[key])
    assert not any(p.requires_grad for p in loaded.parameters())


def test_pytorch_fid_layout_loads_to_the_same_weights(weights_file, tmp_path):
    path, state = weights_file
    # pytorch-fid's file is a torchvision Inception3(num_classes=1008, aux_logits=False) state dict: the same
    # names plus num_batches_tracked per BatchNorm; a DataParallel copy adds "module.".
    with_counters = dict(state)
    for key in [k for k in state if k.endswith(".bn.running_var")]:
        with_counters[key.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    variant = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({f"module.{k}": v for k, v in with_counters.items()}, variant)
    assert weights_digest(load_fid_inception(variant)) == weights_digest(load_fid_inception(path))
    assert weights_digest(build_fid_inception(standard_state_dict(seed=1))) != weights_digest(load_fid_inception(path))


def test_wrong_weights_are_refused_with_the_offending_keys(tmp_path):
    state = standard_state_dict()
    bad = dict(state, **{"Mixed_5b.branch1x1.conv.weight": torch.zeros(63, 192, 1, 1)})
    wrong = r"wrong shape: Mixed_5b\.branch1x1\.conv\.weight \(63, 192, 1, 1\)"
    with pytest.raises(InceptionWeightsError, match=wrong):
        build_fid_inception(bad)
    missing = {k: v for k, v in state.items() if not k.startswith("Mixed_7c.branch_pool")}
    with pytest.raises(InceptionWeightsError, match=r"missing: Mixed_7c\.branch_pool\.conv\.weight"):
        build_fid_inception(missing)
    imagenet = dict(state, **{"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000),
                              "AuxLogits.fc.weight": torch.zeros(1000, 768)})
    with pytest.raises(InceptionWeightsError, match="torchvision's ImageNet Inception"):
        build_fid_inception(imagenet)
    corrupt = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(InceptionWeightsError, match="cannot be read"):
        load_fid_inception(corrupt)
    assert issubclass(InceptionWeightsError, GanasError)


def test_fid_specific_pooling(network):
    x = torch.arange(1 * 2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    corner_mean = x[..., :2, :2].mean(dim=(-2, -1))  # TF ignores padding: 4 real pixels, not 4/9 of a window
    edge_mean = x[..., :2, :3].mean(dim=(-2, -1))
    for block in (network.Mixed_5b, network.Mixed_6b, network.Mixed_7b):
        pooled = block.pool(x)
        torch.testing.assert_close(pooled[..., 0, 0], corner_mean)
        torch.testing.assert_close(pooled[..., 0, 1], edge_mean)
        torch.testing.assert_close(block.pool(torch.ones(1, 3, 5, 5)), torch.ones(1, 3, 5, 5))
    maxed = network.Mixed_7c.pool(x)  # the last E block of the FID graph pools with max
    torch.testing.assert_close(maxed[..., 0, 0], x[..., :2, :2].amax(dim=(-2, -1)))
    torch.testing.assert_close(maxed[..., 2, 2], x[..., 1:4, 1:4].amax(dim=(-2, -1)))


# --------------------------------------------------------------------------- preprocessing

def resize_tf1_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF 1.x resize_bilinear (align_corners=False) written from its C++ kernel, one pixel at a time."""
    in_h, in_w = image.shape
    out = np.zeros((out_h, out_w), dtype=np.float64)
    for i in range(out_h):
        y = i * (in_h / out_h)
        y0, y1 = int(np.floor(y)), min(int(np.ceil(y)), in_h - 1)
        for j in range(out_w):
            x = j * (in_w / out_w)
            x0, x1 = int(np.floor(x)), min(int(np.ceil(x)), in_w - 1)
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * (x - x0)
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * (x - x0)
            out[i, j] = top + (bottom - top) * (y - y0)
    return out


def test_tf1_resize_by_hand():
    image = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    # source coordinates 0, 0.5, 1, 1.5 -> the last two clamp to the border pixel (no half-pixel centres)
    expected = torch.tensor([[0.0, 5.0, 10.0, 10.0], [10.0, 15.0, 20.0, 20.0],
                             [20.0, 25.0, 30.0, 30.0], [20.0, 25.0, 30.0, 30.0]])
    torch.testing.assert_close(resize_bilinear_tf1(image, (4, 4))[0, 0], expected)
    row = torch.arange(4.0).view(1, 1, 1, 4)
    torch.testing.assert_close(resize_bilinear_tf1(row, (1, 2))[0, 0, 0], torch.tensor([0.0, 2.0]))  # picks 0, 2


def test_tf1_resize_matches_reference_and_differs_from_interpolate():
    generator = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (1, 1, 5, 7), generator=generator).float()
    for size in ((3, 11), (13, 4), (5, 7), (299, 299)):
        ours = resize_bilinear_tf1(image, size)[0, 0].double().numpy()
        np.testing.assert_allclose(ours, resize_tf1_reference(image[0, 0].double().numpy(), *size), atol=1e-4)
    torch.testing.assert_close(resize_bilinear_tf1(image, (5, 7)), image)
    half_pixel = F.interpolate(image, size=(13, 4), mode="bilinear", align_corners=False)
    assert (resize_bilinear_tf1(image, (13, 4)) - half_pixel).abs().max() > 1.0
    with pytest.raises(InceptionInputError):
        resize_bilinear_tf1(torch.zeros(3, 8, 8), (4, 4))


def test_normalisation_of_each_preprocessing():
    white, black = torch.full((1, 3, 64, 64), 255.0), torch.zeros(1, 3, 64, 64)
    fidelity, pytorch_fid = get_preprocessing("torch-fidelity"), get_preprocessing("pytorch-fid")
    assert fidelity(white).shape == (1, 3, 299, 299)
    torch.testing.assert_close(fidelity(white), torch.full((1, 3, 299, 299), 127 / 128))  # (x - 128) / 128
    torch.testing.assert_close(pytorch_fid(white), torch.ones(1, 3, 299, 299))  # 2 x / 255 - 1
    torch.testing.assert_close(fidelity(black), -torch.ones(1, 3, 299, 299))
    assert sorted(PREPROCESSING) == ["pytorch-fid", "torch-fidelity"]
    with pytest.raises(InceptionInputError, match="choose one of pytorch-fid, torch-fidelity"):
        get_preprocessing("tf2")


# --------------------------------------------------------------------------- the Inception extractor

def test_inception_extractor_gives_2048_features_for_small_images(network):
    extractor = InceptionExtractor(network)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    features = extractor.features(images)
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and (features >= 0).all()  # pool3 averages ReLU outputs
    assert not torch.equal(features[0], features[1])
    assert extractor.num_features == 2048
    assert re.fullmatch(r"inception-v3-fid:[0-9a-f]{8}", extractor.identity)
    other = InceptionExtractor(network, preprocessing="pytorch-fid", quantize=False)
    assert other.identity == extractor.identity.replace(
        "inception-v3-fid:", "inception-v3-fid(preprocessing=pytorch-fid,quantize=no):")


def test_pixels_are_quantised_like_saved_images(network):
    extractor = InceptionExtractor(network)
    levels = torch.arange(256.0)
    roundtrip = extractor.to_pixels((levels / 127.5 - 1).view(1, 1, 1, 256))  # real uint8 images come back exact
    torch.testing.assert_close(roundtrip.flatten(), levels, rtol=0, atol=0)
    # tensor2im truncates: 0.0 -> 127.5 -> 127; out-of-range values clamp
    assert extractor.to_pixels(torch.tensor([0.0, -1.0, 1.0, 1.5])).tolist() == [127.0, 0.0, 255.0, 255.0]
    assert InceptionExtractor(network, quantize=False).to_pixels(torch.tensor([0.0])).item() == 127.5


def test_image_checks(network):
    extractor = InceptionExtractor(network)
    with pytest.raises(ExtractorInputError, match="float tensor"):
        extractor.features(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ExtractorInputError, match=r"\[-1, 1\]"):
        extractor.features(torch.full((1, 3, 8, 8), 255.0))
    with pytest.raises(ExtractorInputError, match=r"\(N, 3, H, W\)"):
        extractor.features(torch.zeros(1, 1, 8, 8))


# --------------------------------------------------------------------------- weights discovery

@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GANAS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return monkeypatch


def test_weights_discovery_order(clean_env, tmp_path):
    hub = hub_checkpoint_dir()
    assert hub == tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    pt_fid = hub / "pt_inception-2015-12-05-6726825d.pth"
    pt_fid.write_bytes(b"x")
    assert find_inception_weights() == pt_fid  # either file name is found in the hub cache
    fidelity = hub / "weights-inception-2015-12-05-6726825d.pth"
    fidelity.write_bytes(b"x")
    assert find_inception_weights() == fidelity  # torch-fidelity's name is preferred
    elsewhere = tmp_path / "mine" / "inception.pth"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"x")
    clean_env.setenv("GANAS_INCEPTION_WEIGHTS", str(elsewhere))
    assert find_inception_weights() == elsewhere
    assert find_inception_weights(hub) == fidelity  # an explicit folder beats the environment variable


def test_missing_weights_error_says_where_to_put_them(clean_env, tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        find_inception_weights()
    message = str(info.value)
    for text in (*INCEPTION_WEIGHTS.file_names, str(hub_checkpoint_dir()), "GANAS_INCEPTION_WEIGHTS",
                 "--inception-weights", "TorchScript", "downloads nothing"):
        assert text in message
    clean_env.setenv("GANAS_INCEPTION_WEIGHTS", str(tmp_path / "nowhere.pth"))
    with pytest.raises(WeightsNotFoundError, match=r"nowhere\.pth \(from \$GANAS_INCEPTION_WEIGHTS\)"):
        find_inception_weights()  # a set variable is final: no silent fallback to the hub cache
    with pytest.raises(WeightsNotFoundError, match=r"gone\.pth \(given explicitly\)"):
        load_extractor("inception", weights=tmp_path / "gone.pth")
    assert issubclass(WeightsNotFoundError, GanasError)


def test_load_inception_extractor_from_discovered_weights(clean_env, weights_file):
    path, _ = weights_file
    clean_env.setenv("TORCH_HOME", str(path.parent.parent.parent))  # the file is in $TORCH_HOME/hub/checkpoints
    extractor = load_extractor("inception")
    assert extractor.identity == f"inception-v3-fid:{weights_digest(load_fid_inception(path))}"
    by_file = load_extractor(str(path))  # the weights file itself names the Inception extractor
    assert isinstance(by_file, InceptionExtractor) and by_file.identity == extractor.identity
    assert load_extractor("inception-pytorch-fid", weights=path).preprocessing == "pytorch-fid"


# --------------------------------------------------------------------------- TorchScript and the registry

class TinyFeatures(torch.nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.num_features = 5
        self.proj = torch.nn.Linear(3, 5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images.mean(dim=(2, 3)))


def save_script(module: torch.nn.Module, path, trace: bool = False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.trace(module, torch.zeros(1, 3, 8, 8)) if trace else torch.jit.script(module)
        torch.jit.save(scripted, str(path))
    return path


def test_torchscript_extractor(tmp_path):
    module = TinyFeatures(seed=0)
    path = save_script(module, tmp_path / "tiny.pt")
    extractor = load_extractor(str(path))
    assert isinstance(extractor, TorchScriptExtractor) and extractor.num_features == 5
    assert re.fullmatch(r"torchscript:[0-9a-f]{8}:tiny\.pt", extractor.identity)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(extractor.features(images), module(images).detach())
    torch.testing.assert_close(extract_features(extractor, [images[:3], images[3:]]), module(images).detach())
    other = load_extractor(str(save_script(TinyFeatures(seed=1), tmp_path / "other.pt")))
    assert other.identity.split(":")[1] != extractor.identity.split(":")[1]
    traced = load_extractor(str(save_script(TinyFeatures(seed=0), tmp_path / "traced.pt", trace=True)))
    assert traced.num_features == 5  # no attribute after tracing: inferred by one probe


def test_bad_extractor_specs(tmp_path):
    not_script = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(2)}, not_script)
    with pytest.raises(ExtractorError, match="not a TorchScript file"):
        load_extractor(str(not_script))
    with pytest.raises(ExtractorError, match="does not exist"):
        load_extractor(str(tmp_path / "absent.pt"))
    with pytest.raises(ExtractorError, match="inception, inception-pytorch-fid"):
        load_extractor("vgg")
    with pytest.raises(ExtractorError, match="takes no option"):
        create_extractor("inception", resize="area")


def test_registered_extractor_is_loaded_by_name(request):
    class Means(FeatureExtractor):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale, self.num_features, self.identity = scale, 3, f"channel-means:{scale}"

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return images.mean(dim=(2, 3)) * self.scale

    register_extractor("channel-means")(Means)
    request.addfinalizer(lambda: _EXTRACTORS.unregister("channel-means"))
    assert "channel-means" in list_extractors()
    extractor = load_extractor("channel-means", scale=2.0)
    images = torch.zeros(2, 3, 4, 4)
    images[1] = 0.5
    torch.testing.assert_close(extractor.features(images), torch.tensor([[0.0] * 3, [1.0] * 3]))
