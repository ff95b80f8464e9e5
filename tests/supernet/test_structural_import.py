"""Teachers from other implementations load into ganas by the order and shapes of their tensors.

The reference generators (tests/supernet/reimplementations.py) are written from the documented layer order
of public re-implementations; each is saved with random weights, imported through ganas, and ganas's
generator must compute what the reference module computes.
"""
import json
import os

import pytest
import torch

from supernet import CheckpointError, create_generator, load_reference_generator
from supernet.checkpoint import generator_from_bytes, read_checkpoint
from supernet.foreign import import_generator, read_key_map, write_key_map
from supernet.structure import Candidate, Fit, best

from .reimplementations import (AitorzipGenerator, Arnab39ResnetGenerator, Arnab39UnetGenerator,
                                EriklindernorenGenerator, Issue10Generator, LornatangGenerator, ZnxlwmGenerator,
                                randomise_)

# name: (reference module, how it loads, what ganas reads off it)
REFERENCES = {
    "aitorzip": (lambda: AitorzipGenerator(n_residual_blocks=9), "as is",
                 dict(ngf=64, n_blocks=9, norm="instance", conv_bias=None)),
    "lornatang": (LornatangGenerator, "by structure", dict(ngf=64, n_blocks=9, norm="instance", conv_bias=None)),
    "znxlwm": (ZnxlwmGenerator, "by structure", dict(ngf=32, n_blocks=6, norm="instance", conv_bias=None)),
    "arnab39-resnet-batch": (lambda: Arnab39ResnetGenerator(ngf=16, norm="batch"), "by structure",
                             dict(ngf=16, n_blocks=6, norm="batch", conv_bias=None)),
    "arnab39-resnet-instance": (lambda: Arnab39ResnetGenerator(ngf=16, norm="instance", use_dropout=False),
                                "by structure", dict(ngf=16, n_blocks=6, norm="instance", conv_bias=None)),
    "arnab39-unet": (lambda: Arnab39UnetGenerator(num_downs=6, ngf=8), "by structure",
                     dict(ngf=8, num_downs=6, norm="batch", conv_bias=None)),
    "issue10": (lambda: Issue10Generator(ngf=64, blocks=9), "by structure",
                dict(ngf=64, n_blocks=9, norm="instance_affine", conv_bias=None)),
}


def _saved(tmp_path, module: torch.nn.Module, seed: int = 0, name: str = "G.pth"):
    randomise_(module, seed).eval()
    torch.save(module.state_dict(), tmp_path / name)
    return module, tmp_path / name


def _same_output(ours: torch.nn.Module, reference: torch.nn.Module, size: int = 64, train: bool = False) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(5))
    ours.train(train)
    reference.train(train)
    with torch.no_grad():
        return float((ours(x.clone()) - reference(x.clone())).abs().max())


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_loads_and_computes_what_the_reference_computes(tmp_path, name):
    build, method, expected = REFERENCES[name]
    reference, path = _saved(tmp_path, build())
    imported = import_generator(read_checkpoint(path), str(path))
    assert imported.method == method
    assert {k: imported.hparams[k] for k in expected} == expected
    assert (imported.key_map is None) == (method == "as is")
    assert _same_output(imported.generator, reference) <= 1e-5
    parameters = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in imported.generator.parameters()) == parameters


def test_batch_norm_reference_in_training_mode_too(tmp_path):
    """BatchNorm: eval mode uses the imported running statistics, training mode the batch's (and updates the
    statistics the same way)."""
    reference, path = _saved(tmp_path, Arnab39ResnetGenerator(ngf=8, norm="batch", use_dropout=False, num_blocks=3))
    ours = load_reference_generator(path)
    assert ours.norm == "batch"
    assert _same_output(ours, reference, train=False) <= 1e-5
    assert _same_output(ours, reference, train=True) <= 1e-5
    stats = [k for k in reference.state_dict() if k.endswith("running_mean")]
    ours_stats = [v for k, v in ours.state_dict().items() if k.endswith("running_mean")]
    assert len(stats) == len(ours_stats) == 3 + 2 * 3 + 2
    assert all(torch.allclose(reference.state_dict()[k], v, atol=1e-6) for k, v in zip(stats, ours_stats))


def test_the_mapping_used_is_printed_and_can_be_saved_and_given_back(tmp_path):
    reference, path = _saved(tmp_path, Issue10Generator(ngf=8, blocks=3))
    imported = import_generator(read_checkpoint(path), str(path))
    report = imported.report("G.pth")
    assert report[0] == ("teacher G.pth: loaded by structure as resnet (ngf 8, 3 blocks, norm instance_affine, "
                         "conv bias yes, 3 -> 3 channels)")
    assert report[1].startswith("  (matched by the order and shapes of its tensors; unless")
    assert report[2] == "  checkpoint key -> ganas key (24 renamed or left out, 22 unchanged):"
    assert "  model.10.block.1.weight -> model.10.conv_block.1.weight" in report
    assert "  model.12.block.6.bias -> model.12.conv_block.6.bias" in report
    assert len(report) == 3 + 24  # 3 blocks x (2 convs + 2 norms) x (weight, bias) renamed
    saved = write_key_map(tmp_path / "map.json", imported)
    record = json.loads(saved.read_text())
    assert record["arch"] == "resnet" and record["hparams"]["norm"] == "instance_affine"
    assert record["mapping"]["model.10.block.2.weight"] == "model.10.conv_block.2.weight"
    again = import_generator(read_checkpoint(path), str(path), key_map=read_key_map(saved))
    assert again.method == f"by the mapping in {saved}"
    assert _same_output(again.generator, reference) <= 1e-5


@pytest.mark.parametrize("dropout, padding", [(0.5, "reflect"), (0.0, "zero"), (0.5, "zero")])
def test_a_reference_resnet_with_dropout_or_zero_padding_loads_as_is_without_saying_so(dropout, padding):
    """Dropout and zero padding leave no tensor but move a block's module indices (its second conv from 5 to 6
    with dropout, to 4 without a pad layer): both are tried, and the variant keeping the names wins."""
    state = randomise_(create_generator("resnet_9blocks", ngf=4, dropout=dropout, padding_type=padding)).state_dict()
    imported = import_generator(state, "latest_net_G.pth")
    assert imported.method == "as is"
    assert (imported.hparams["dropout"], imported.hparams["padding_type"]) == (dropout, padding)


def test_named_layers_map_to_the_sequential_tree(tmp_path):
    _, path = _saved(tmp_path, ZnxlwmGenerator(ngf=8, nb=2))
    key_map = import_generator(read_checkpoint(path), str(path)).key_map
    assert key_map["conv1.weight"] == "model.1.weight" and key_map["conv3.bias"] == "model.7.bias"
    assert key_map["resnet_blocks.1.conv2.weight"] == "model.11.conv_block.5.weight"
    assert key_map["deconv1.weight"] == "model.12.weight" and key_map["deconv3.bias"] == "model.19.bias"


def test_a_recorded_import_repeats_exactly_from_bytes(tmp_path):
    """What a search worker does with the recorded architecture, hyper-parameters and key map."""
    reference, path = _saved(tmp_path, LornatangGenerator())
    imported = import_generator(read_checkpoint(path), str(path))
    again = generator_from_bytes(path.read_bytes(), str(path), imported.arch, imported.key_map, **imported.hparams)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), imported.generator.state_dict().values()))


# -- hand-written mappings ---------------------------------------------------------------------------------------
def _hand_map(tmp_path, mapping: dict, **extra) -> str:
    (tmp_path / "hand.json").write_text(json.dumps({"mapping": mapping, **extra}))
    return str(tmp_path / "hand.json")


def test_a_hand_written_mapping_loads_a_layout_the_order_does_not_give(tmp_path):
    """Layers registered in another order (all norms after all convs) match no order; a mapping by hand loads them."""
    reference, _ = _saved(tmp_path, Issue10Generator(ngf=4, blocks=3))
    state = reference.state_dict()
    shuffled = {k: v for k, v in state.items() if v.dim() == 4 or k.endswith("4.bias")}  # convs first ...
    shuffled.update({k: v for k, v in state.items() if k not in shuffled})  # ... then the norms
    torch.save(shuffled, tmp_path / "shuffled.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_reference_generator(tmp_path / "shuffled.pth")
    mapping = {k: k.replace(".block.", ".conv_block.") for k in shuffled}
    loaded = load_reference_generator(tmp_path / "shuffled.pth", key_map=read_key_map(_hand_map(tmp_path, mapping)))
    assert loaded.norm == "instance_affine" and _same_output(loaded, reference) <= 1e-5


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("model.1.bias"), r"gives no ganas key for .*'s model\.1\.bias"),
    (lambda m: m.update({"model.99.weight": "model.99.weight"}), r"maps model\.99\.weight, which .* does not hold"),
    (lambda m: m.update({"model.1.bias": "model.1.weight"}), r"maps both model\.1\.weight and model\.1\.bias to"),
    (lambda m: m.update({"model.2.weight": "model.5.weight", "model.5.weight": "model.2.weight"}),
     r"model\.5\.weight -> model\.2\.weight \(8,\) does not fit: ganas's model\.2\.weight \(4,\)"),
    (lambda m: m.update({"model.1.bias": None}), r"nothing is mapped to model\.1\.bias \(4,\)"),
])
def test_a_mapping_that_does_not_fit_names_what_is_wrong(tmp_path, change, message):
    _, path = _saved(tmp_path, Issue10Generator(ngf=4, blocks=3))
    mapping = {k: k.replace(".block.", ".conv_block.") for k in torch.load(path, weights_only=True)}
    change(mapping)
    with pytest.raises(CheckpointError, match=message):
        load_reference_generator(path, key_map=read_key_map(_hand_map(tmp_path, mapping)))


@pytest.mark.parametrize("text, message", [("not json", "is not JSON"), ('{"mapping": [1]}', "must hold"),
                                           ('{"mapping": {"a": 1}}', "must hold"),
                                           ('{"mapping": {}, "arch": 3}', "'arch' must be")])
def test_malformed_mapping_files(tmp_path, text, message):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        read_key_map(tmp_path / "m.json")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_key_map(tmp_path / "absent.json")


# -- wrapped checkpoints -----------------------------------------------------------------------------------------
def test_wrapped_checkpoint_prefixes_and_half_precision(tmp_path):
    """A Lightning-style .ckpt: the state dict under 'state_dict', both generators and discriminators side by side
    under prefixes, saved from DataParallel, in float16."""
    reference, _ = _saved(tmp_path, LornatangGenerator())
    other = randomise_(LornatangGenerator(), seed=9)
    state = {f"G_AB.module.{k}": v.half() for k, v in reference.state_dict().items()}
    state.update({f"G_BA.module.{k}": v.half() for k, v in other.state_dict().items()})
    state["D_A.module.model.0.weight"] = torch.zeros(64, 3, 4, 4, dtype=torch.float16)
    torch.save({"epoch": 3, "global_step": 100, "state_dict": state}, tmp_path / "last.ckpt")
    imported = import_generator(read_checkpoint(tmp_path / "last.ckpt"), "last.ckpt")
    assert imported.notes == ("state dict taken from checkpoint['state_dict']",
                              "tensors under 'G_AB.' taken (the checkpoint also holds D_A, G_BA)",
                              "prefix 'module.' removed", "float16 tensors cast to float32")
    assert all(v.dtype == torch.float32 for v in imported.generator.state_dict().values() if v.is_floating_point())
    assert _same_output(imported.generator, reference.half().float()) <= 1e-5
    assert "  (prefix 'module.' removed)" in imported.report("last.ckpt")


@pytest.mark.parametrize("wrap", [lambda s: {"netG": s, "netD": {"x": torch.zeros(1)}, "opt": {"lr": 1e-4}},
                                  lambda s: {"G_A2B": s, "G_B2A": {}}, lambda s: {"model": {"generator": s}},
                                  lambda s: {"module." + k: v for k, v in s.items()}])
def test_common_wrappers(tmp_path, wrap):
    reference = randomise_(create_generator("resnet", ngf=4, n_blocks=3))
    torch.save(wrap(reference.state_dict()), tmp_path / "g.pt")
    loaded = load_reference_generator(tmp_path / "g.pt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), reference.state_dict().values()))


def test_a_mobile_resnet_from_gan_compression_renamed_and_wrapped(tmp_path):
    reference = randomise_(create_generator("mobile_resnet", ngf=8, n_blocks=3, norm="batch")).eval()
    torch.save({"generator": {f"net.{k}": v.bfloat16() for k, v in reference.state_dict().items()}}, tmp_path / "m.pt")
    imported = import_generator(read_checkpoint(tmp_path / "m.pt"), "m.pt")
    assert (imported.arch, imported.hparams["norm"], imported.method) == ("mobile_resnet", "batch", "by structure")
    assert imported.key_map["net.model.10.conv_block.1.conv.0.weight"] == "model.10.conv_block.1.conv.0.weight"


# -- bad input ---------------------------------------------------------------------------------------------------
def test_another_family_is_refused_naming_the_first_tensor_that_does_not_fit(tmp_path):
    """eriklindernoren's generator upsamples with Upsample + conv: its first up-conv is (out, in), where ganas's
    transposed conv is (in, out)."""
    _, path = _saved(tmp_path, EriklindernorenGenerator())
    with pytest.raises(CheckpointError) as info:
        load_reference_generator(path)
    assert str(info.value).endswith(
        "G.pth does not fit a resnet (ngf 64, 9 blocks, norm instance, conv bias yes, 3 -> 3 channels): "
        "model.20.weight (128, 256, 3, 3) does not fit: expected there model.19.weight (256, 128, 3, 3) (the weight "
        "of a ConvTranspose2d)")


def test_partial_and_overlong_state_dicts(tmp_path):
    state = randomise_(create_generator("resnet", ngf=4, n_blocks=3)).state_dict()
    truncated = dict(list(state.items())[:-2])  # the output conv is missing
    torch.save(truncated, tmp_path / "short.pth")
    with pytest.raises(CheckpointError, match=r"short\.pth does not fit a resnet .*: the checkpoint ends after 22 "
                                              r"tensors; a resnet .* continues with model\.20\.weight"):
        load_reference_generator(tmp_path / "short.pth", "resnet", n_blocks=3)
    torch.save({**state, "head.weight": torch.zeros(3, 3, 1, 1)}, tmp_path / "long.pth")
    with pytest.raises(CheckpointError, match=r"head\.weight \(3, 3, 1, 1\) is left over: a resnet .* ends with "
                                              r"model\.20\.bias"):
        load_reference_generator(tmp_path / "long.pth", "resnet", n_blocks=3)


def test_what_is_no_generator_at_all(tmp_path):
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, tmp_path / "mlp.pth")
    with pytest.raises(CheckpointError, match=r"does not look like a generator ganas can import: resnet: 0 conv "
                                              r"weights are not 6 \+ 2 per residual block"):
        load_reference_generator(tmp_path / "mlp.pth")
    torch.save({"epoch": 3, "optimizer": {"lr": 1}}, tmp_path / "opt.pth")
    with pytest.raises(CheckpointError, match=r"is a dict of 'epoch', 'optimizer': no generator state dict"):
        load_reference_generator(tmp_path / "opt.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        load_reference_generator(tmp_path / "list.pth")


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    state = create_generator("resnet", ngf=4, n_blocks=3).state_dict()
    torch.save({"state_dict": state, "hook": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"evil\.pth holds pickled Python objects \((posix|nt)\.system\) that "
                                              "loading would have to import and run"):
        load_reference_generator(tmp_path / "evil.pth")
    assert not marker.exists()


def test_safetensors_needs_its_package(tmp_path, monkeypatch):
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (tmp_path / "g.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    monkeypatch.setitem(__import__("sys").modules, "safetensors", None)  # as if it were not installed
    with pytest.raises(CheckpointError, match="reading it needs the 'safetensors' package, which is not installed: "
                                              "pip install safetensors"):
        load_reference_generator(tmp_path / "g.safetensors")


def test_safetensors_loads_by_structure(tmp_path):
    from safetensors.torch import save_file

    reference = randomise_(LornatangGenerator()).eval()
    save_file(reference.state_dict(), str(tmp_path / "g.safetensors"))
    assert _same_output(load_reference_generator(tmp_path / "g.safetensors"), reference) <= 1e-5


def test_several_functions_fitting_one_state_dict_is_an_ambiguity():
    a = Candidate("resnet", dict(ngf=4, norm="instance"))
    b = Candidate("resnet", dict(ngf=4, norm="instance_affine"))
    same_function = Candidate("resnet", dict(ngf=4, norm="instance", dropout=0.5), frozenset({"dropout"}))
    with pytest.raises(CheckpointError, match=r"G\.pth fits several generators .*say which with --teacher-arch"):
        best([Fit(a, 3, None, (("x", "x"),)), Fit(b, 3, None, (("x", "x"),))], "G.pth")
    renamed, kept = Fit(a, 3, None, (("x", "y"),)), Fit(same_function, 3, None, (("x", "x"),))
    assert best([renamed, kept], "G.pth") is kept  # hidden hyper-parameters only: the one keeping names wins
