"""Fine-tuning one config of a supernet, outside (extracted) or inside it, with GAN Compression's losses."""
import pytest
import torch

from distill.gan_compression import GANCompressionSettings
from distill.jobs import DataSpec, TeacherSource, finetune
from distill.loop import LoopSettings
from imagedata import MakeOptions, make_dataset
from supernet import create_generator, extract_subnet, load_generator, save_generator

CONFIG = (8, 12, 8, 16, 8, 12, 8, 16)


@pytest.mark.parametrize("outside", [True, False])
def test_finetune_writes_a_trained_static_subnet(tmp_path, outside):
    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=6, val_count=2), progress=False)
    data = DataSpec(tmp_path / "data" / "labelled", size=32)
    torch.manual_seed(0)
    teacher = save_generator(create_generator("resnet", ngf=8, n_blocks=3), tmp_path / "teacher.pt")
    supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3)
    supernet_path = save_generator(supernet, tmp_path / "supernet.pt", kind="supernet", space="channels-16")
    settings = GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4)
    path = finetune(data, supernet_path, CONFIG, TeacherSource(teacher), settings,
                    LoopSettings(steps=3, batch_size=2, checkpoint_every=3), tmp_path / "out", outside=outside,
                    progress=False)
    subnet = load_generator(path)
    assert not subnet.elastic and subnet.config == CONFIG and path.name == "subnet.pt"
    record = torch.load(path, weights_only=True)
    assert record["meta"]["config"] == "8_12_8_16_8_12_8_16" and record["meta"]["outside"] == outside
    untrained = extract_subnet(supernet, CONFIG).state_dict()
    changed = [k for k, v in subnet.state_dict().items() if v.is_floating_point() and not torch.equal(v, untrained[k])]
    assert changed  # the weights moved


def test_supernet_from_a_trained_generator_with_sorted_channels(tmp_path):
    """--init-from / --sort-channels: the supernet starts as the given network (same full-width output),
    with every width's strongest channels first, and trains from there."""
    from distill.jobs import initial_supernet, train_gan_compression
    from distill.loop import TrainingError
    from supernet.sorting import channel_groups, group_importance

    torch.manual_seed(1)
    full = create_generator("mobile_resnet", ngf=16, n_blocks=3).eval()
    path = save_generator(full, tmp_path / "full.pt")
    supernet = initial_supernet(path, "channels-16", sort=True).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert (supernet(x) - full(x)).abs().max() <= 1e-5
    for group in channel_groups(supernet):
        importance = group_importance(group)
        assert torch.all(importance[:-1] >= importance[1:] - 1e-6)
    assert not torch.equal(supernet.state_dict()["model.1.weight"], full.state_dict()["model.1.weight"])

    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=6, val_count=2), progress=False)
    data = DataSpec(tmp_path / "data" / "labelled", size=32)
    teacher = save_generator(create_generator("resnet", ngf=8, n_blocks=3), tmp_path / "teacher.pt")
    settings = GANCompressionSettings(space="channels-16", netd="n_layers", n_layers_d=1, ndf=4)
    loop = LoopSettings(steps=2, batch_size=2, checkpoint_every=2)
    out = train_gan_compression(data, TeacherSource(teacher), settings, loop, tmp_path / "sn", progress=False,
                                init_from=path, sort_channels=True)
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["initialised_from"]["sorted_channels"] is True
    with pytest.raises(TrainingError, match="give --init-from"):
        train_gan_compression(data, TeacherSource(teacher), settings, loop, tmp_path / "sn2", progress=False,
                              sort_channels=True)
