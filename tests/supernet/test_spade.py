"""The SPADE family: NVlabs/SPADE checkpoints load unchanged and compute what the reference computes;
elastic mobile SPADE supernets extract to equal subnets; bad options and configs are refused clearly."""
import pytest
import torch

from supernet import (ArchitectureError, CheckpointError, ConfigError, create_generator, extract_subnet, get_space,
                      load_generator, save_generator)
from supernet.checkpoint import import_plain, load_reference_generator

from .spade_reference import nvlabs_forward, nvlabs_state_dict, one_hot_labels

SIZES = {"normal": (64, 128), "more": (128, 256), "most": (256, 128)}  # a map of at least 2x2 at the bottom


@pytest.mark.parametrize("depth", ["normal", "more", "most"])
def test_an_nvlabs_checkpoint_loads_as_is_and_equals_the_reference_forward(depth, tmp_path):
    labels = 5  # 4 classes + the instance edge channel
    state = nvlabs_state_dict(labels, ngf=2, depth=depth, nhidden=8, seed=1)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    generator = load_reference_generator(path, "spade", num_upsampling_layers=None if depth == "normal" else depth)
    assert generator.num_upsampling_layers == depth and generator.spectral and generator.input_nc == labels
    assert list(generator.state_dict()) == list(state)  # the keys unchanged, in NVlabs's order
    seg = one_hot_labels(labels - 1, *SIZES[depth], seed=2)
    expected = nvlabs_forward(state, seg, depth)
    with torch.no_grad():
        got = generator.eval()(seg)
    assert got.shape == (1, 3, *SIZES[depth])
    assert (got - expected).abs().max() <= 1e-5 and expected.std() > 0.01


def test_the_import_reports_how_it_loaded_and_what_it_assumed():
    imported = import_plain(nvlabs_state_dict(5, 2, nhidden=8), "latest_net_G.pth", None)  # no --teacher-arch
    assert imported.arch == "spade" and imported.method == "as is" and imported.key_map is None
    report = "\n".join(imported.report("latest_net_G.pth"))
    assert "spectral norm, batch norm, 5 -> 3 channels" in report and "normal assumed" in report
    explicit = import_plain(nvlabs_state_dict(5, 2, nhidden=8), "x", "spade", num_upsampling_layers="more")
    assert "assumed" not in "\n".join(explicit.report("x"))


@pytest.mark.parametrize("given, message", [
    (dict(input_nc=9), "takes 5 input channels .* not 9: give the --label-nc"),
    (dict(num_upsampling_layers="most"), "normal or more \\(it has no up_4 block\\), not most"),
    (dict(ngf=4), "has ngf 2 .*not 4"),
])
def test_a_checkpoint_of_other_options_is_refused_naming_them(given, message):
    with pytest.raises(CheckpointError, match=message):
        import_plain(nvlabs_state_dict(5, 2, nhidden=8), "latest_net_G.pth", "spade", **given)


def test_a_most_checkpoint_read_as_normal_is_refused():
    with pytest.raises(CheckpointError, match="most \\(it has an up_4 block\\), not normal"):
        import_plain(nvlabs_state_dict(5, 2, "most", nhidden=8), "x.pth", "spade", num_upsampling_layers="normal")


def test_ganas_checkpoints_keep_nvlabs_keys_and_roundtrip(tmp_path):
    torch.manual_seed(0)
    generator = create_generator("spade", input_nc=5, ngf=2, nhidden=8).eval()
    record = torch.load(save_generator(generator, tmp_path / "g.pt"), weights_only=True)
    assert "fc.weight" in record["state_dict"] and not any(k.startswith("model.") for k in record["state_dict"])
    loaded = load_generator(tmp_path / "g.pt").eval()
    seg = one_hot_labels(4, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(seg), generator(seg))


def test_removing_spectral_norm_keeps_the_output_with_the_normalised_weights():
    state = nvlabs_state_dict(5, 2, nhidden=8, seed=3)
    teacher = import_plain(state, "x", "spade").generator.eval()
    plain = teacher.without_spectral_norm().eval()
    assert not plain.spectral and "head_0.conv_0.weight" in plain.state_dict()
    assert not any(k.endswith(("weight_orig", "weight_u", "weight_v")) for k in plain.state_dict())
    seg = one_hot_labels(4, 64, 128, seed=4)
    with torch.no_grad():
        assert (plain(seg) - nvlabs_forward(state, seg)).abs().max() <= 1e-5


def _trained_statistics(supernet, labels: int, size=(64, 64)) -> None:
    """Running statistics away from (0, 1), so eval mode compares real numbers."""
    supernet.train()
    with torch.no_grad():
        for seed in range(2):
            supernet(torch.cat([one_hot_labels(labels - 1, *size, seed=seed)] * 2))


@pytest.mark.parametrize("train_mode", [False, True])
@pytest.mark.parametrize("hparams", [dict(), dict(param_free_norm="instance"), dict(nhidden=12),
                                     dict(num_upsampling_layers="most")], ids=["batch", "instance", "nhidden", "most"])
def test_a_subnet_extracted_from_a_mobile_spade_supernet_equals_the_supernet_at_its_config(train_mode, hparams):
    torch.manual_seed(0)
    labels = 6
    supernet = create_generator("mobile_spade", elastic=True, input_nc=labels, ngf=8, **hparams)
    size = (256, 128) if hparams.get("num_upsampling_layers") == "most" else (64, 64)
    _trained_statistics(supernet, labels, size)
    supernet.train(train_mode)
    seg = torch.cat([one_hot_labels(labels - 1, *size, seed=5)] * 2)
    rng = torch.Generator().manual_seed(1)
    for _ in range(2):
        config = tuple(int(torch.randint(1, full + 1, (1,), generator=rng)) for full in supernet.config)
        subnet = extract_subnet(supernet, config).train(train_mode)
        with torch.no_grad():
            assert (supernet(seg.clone(), config) - subnet(seg.clone())).abs().max() <= 1e-5, config
        assert subnet.widths() == supernet.widths(config)
        assert sum(p.numel() for p in subnet.parameters()) < sum(p.numel() for p in supernet.parameters())


def test_the_full_width_supernet_equals_the_static_generator():
    torch.manual_seed(0)
    supernet = create_generator("mobile_spade", elastic=True, input_nc=6, ngf=8)
    _trained_statistics(supernet, 6)
    static = create_generator("mobile_spade", input_nc=6, ngf=8)
    static.load_state_dict(supernet.state_dict())
    seg = one_hot_labels(5, 64, 64)
    with torch.no_grad():
        assert torch.equal(supernet.eval()(seg), static.eval()(seg))


def test_the_paper_subnet_of_an_ngf48_supernet_extracts_at_cityscapes_widths():
    space = get_space("spade-channels-48")
    config = space.parse("32_32_48_32_32_32_32_24")
    with torch.device("meta"):
        supernet = create_generator(space.architecture, elastic=True, input_nc=36, num_upsampling_layers="more",
                                    **space.supernet_hparams())
    assert supernet.widths(config) == (512, 512, 768, 512, 256, 128, 64, 24)
    assert supernet.hidden_widths(config)[1:] == (64, 96, 64, 64, 64, 64, 48)


def test_spectral_norm_is_refused_in_an_elastic_supernet():
    with pytest.raises(ArchitectureError, match="holds plain weights .*without_spectral_norm"):
        create_generator("spade", elastic=True, ngf=4)
    create_generator("spade", elastic=True, ngf=4, spectral=False)


@pytest.mark.parametrize("text, message", [("32_32_48_32_32_32_32", "has 7 positions; space spade-channels-48 has 8"),
                                           ("32_32_48_32_32_32_32_16", "position 7 \\(up_3\\) is 16; .* allows 48, 40, "
                                                                       "32, 24"),
                                           ("64_32_48_32_32_32_32_24", "position 0 \\(fc\\) is 64")])
def test_configs_of_the_wrong_length_or_widths_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        get_space("spade-channels-48").parse(text)


def test_a_config_wider_than_the_supernet_is_refused():
    supernet = create_generator("mobile_spade", elastic=True, ngf=8, input_nc=4)
    with pytest.raises(ConfigError, match="position 4 .* allows 1..8"):
        supernet.validate_config((8, 8, 8, 8, 9, 8, 8, 8))
    with pytest.raises(ConfigError, match="takes 8 channel numbers, got 9"):
        supernet.validate_config((8,) * 9)


@pytest.mark.parametrize("hparams, message", [(dict(num_upsampling_layers="many"), "choose one of normal, more, most"),
                                              (dict(param_free_norm="group"), "choose one of batch, instance"),
                                              (dict(nhidden=0), "nhidden must be a positive integer")])
def test_bad_spade_options(hparams, message):
    with pytest.raises(ArchitectureError, match=message):
        create_generator("spade", ngf=4, **hparams)


def test_an_extracted_subnet_exports_and_its_program_computes_the_same(tmp_path):
    from supernet.export import export_generator, read_export_metadata

    torch.manual_seed(0)
    supernet = create_generator("mobile_spade", elastic=True, input_nc=6, ngf=8)
    _trained_statistics(supernet, 6)
    subnet = extract_subnet(supernet, (4, 6, 8, 2, 5, 3, 8, 1)).eval()
    path = export_generator(subnet, tmp_path / "subnet.pt2", "pt2", (64, 64))
    seg = one_hot_labels(5, 64, 64, seed=7)
    with torch.no_grad():
        expected = subnet(seg)
        got = torch.export.load(path).module()(seg)
    assert (got - expected).abs().max() <= 1e-5 and expected.std() > 0.01
    assert read_export_metadata(path, "pt2")["input_shape"] == [1, 6, 64, 64]


@pytest.mark.parametrize("arch, hparams", [("mobile_spade", {}), ("mobile_spade", dict(param_free_norm="instance")),
                                           ("spade", dict(spectral=False))])
@pytest.mark.parametrize("train_mode", [False, True])
def test_channel_sorting_keeps_the_full_network_and_orders_every_group(arch, hparams, train_mode):
    import copy

    from supernet.sorting import channel_groups, group_importance, sort_channels

    torch.manual_seed(0)
    supernet = create_generator(arch, elastic=True, input_nc=6, ngf=4, **hparams)
    with torch.no_grad():
        for p in supernet.parameters():  # spread filter norms so that sorting really moves channels
            p.mul_(torch.rand_like(p) * 2)
    _trained_statistics(supernet, 6)
    groups = channel_groups(supernet)
    for position, (slots, hidden) in enumerate(zip(supernet.slot_layers(), supernet.hidden_layers())):
        if supernet.nhidden is not None:  # fixed hidden widths are sorted too, though no position slices them
            hidden = [n.mlp_shared[0] for n in supernet.model.blocks()[position - 1].norms()] if position else []
        producers = {id(p) for group in groups if group.position == position for p in group.producers}
        assert {id(m) for m in slots + hidden} == producers, position  # every elastic layer, and only those
    sorted_net = copy.deepcopy(supernet)
    sort_channels(sorted_net)
    assert any(not torch.equal(a, b) for a, b in zip(supernet.state_dict().values(),
                                                     sorted_net.state_dict().values()))  # channels moved
    seg = torch.cat([one_hot_labels(5, 64, 64, seed=8)] * 2)
    with torch.no_grad():
        expected = supernet.train(train_mode)(seg)
        assert (sorted_net.train(train_mode)(seg) - expected).abs().max() <= 1e-4
    for group in channel_groups(sorted_net):
        importance = group_importance(group)
        assert (importance[1:] <= importance[:-1] + 1e-5).all(), group.name


def test_a_spade_of_twice_ngf_hidden_channels_loads_as_gan_compression_builds_it():
    """GAN Compression's SPADE teachers have ngf * 2 hidden SPADE channels, not NVlabs's fixed 128."""
    state = nvlabs_state_dict(5, 2, nhidden=4, seed=6)
    generator = import_plain(state, "x", "spade").generator.eval()
    assert generator.nhidden == 4
    seg = one_hot_labels(4, 64, 64, seed=9)
    with torch.no_grad():
        assert (generator(seg) - nvlabs_forward(state, seg)).abs().max() <= 1e-5
