"""``ganas train --threads``: torch gets the threads asked for, or every usable core; a bad count is refused
before anything is written."""
import torch

from foundation.threads import usable_cores
from imagedata import MakeOptions, make_dataset
from nas.cli import main


def _train(tmp_path, *flags):
    data = tmp_path / "data"
    if not data.exists():
        make_dataset("labels2scene", data, MakeOptions(size=32, count=4, val_count=1), progress=False)
    return main(["train", "teacher", "--data", str(data / "labelled"), "--size", "32", "--ngf", "4", "--blocks", "2",
                 "--steps", "1", "--quiet", "--out", str(tmp_path / "out"), *flags])


def test_training_uses_the_threads_asked_for_else_every_core(tmp_path):
    before = torch.get_num_threads()
    try:
        assert _train(tmp_path, "--threads", "1") == 0 and torch.get_num_threads() == 1
        assert _train(tmp_path, "--resume") == 0 and torch.get_num_threads() == usable_cores()
    finally:
        torch.set_num_threads(before)


def test_a_thread_count_below_one_is_refused_before_anything_is_written(tmp_path, capsys):
    assert _train(tmp_path, "--threads", "0") == 2
    assert "--threads 0 must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
