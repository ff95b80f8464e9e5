"""``ganas data``: list, make, check and split, and exit status 2 with one message on bad input."""
from __future__ import annotations

import json

import numpy as np

from imagedata import list_makers
from nas.cli import main

from .conftest import random_rgb, save, write_aligned

MAKE = ["--size", "16", "--count", "4", "--val-count", "2", "--quiet"]


def test_list_names_every_maker_and_layout(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_makers())
    assert all(layout in out for layout in ("aligned", "unaligned", "labelled"))


def test_make_check_split_round_trip(tmp_path, capsys):
    out = tmp_path / "scenes"
    assert main(["data", "make", "labels2scene", "--out", str(out), *MAKE]) == 0
    printed = capsys.readouterr().out
    assert f"labelled   {out / 'labelled'}" in printed and "4 train, 2 val" in printed
    assert len(list((out / "labelled" / "train" / "images").glob("*.png"))) == 4
    assert main(["data", "check", str(out / "aligned"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "aligned layout" in printed and "train        4 items      4 files ok" in printed
    assert main(["data", "split", str(out / "labelled"), "--holdout-count", "1", "--seed", "3"]) == 0
    record = json.loads((out / "labelled" / "split.json").read_text())
    assert len(record["parts"]["train2"]["roles"]["image"]) == 1 and record["seed"] == 3
    assert main(["data", "check", str(out / "labelled"), "--quiet"]) == 0
    assert "train2       1 items      2 files ok" in capsys.readouterr().out


def test_make_default_val_count_is_a_quarter(tmp_path, capsys):
    assert main(["data", "make", "photo2texture", "--out", str(tmp_path / "p"), "--size", "16", "--count", "8",
                 "--quiet"]) == 0
    assert len(list((tmp_path / "p" / "valB").glob("*.png"))) == 2


def test_bad_input_exits_2_with_one_message(tmp_path, capsys):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=2)
    save(root / "train" / "odd.png", random_rgb(np.random.default_rng(0), 16, 31))
    cases = [
        (["data", "check", str(root), "--quiet"], "odd.png: an aligned A|B image must have an even width"),
        (["data", "check", str(tmp_path / "missing")], "missing does not exist"),
        (["data", "check", str(root), "--layout", "tiles"], "unknown layout 'tiles'"),
        (["data", "make", "nope", "--out", str(tmp_path / "x")], "unknown dataset maker 'nope'"),
        (["data", "make", "edges2photo", "--out", str(root), *MAKE], "is not empty"),
        (["data", "make", "edges2photo", "--out", str(tmp_path / "y"), "--size", "3"], "size must be between"),
        (["data", "split", str(root), "--holdout", "1.5"], "held-out fraction must be between 0 and 1"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("ganas data: error: ") and message in err, (argv, err)
