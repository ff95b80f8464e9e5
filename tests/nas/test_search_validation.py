"""Every field of a search and of a run is checked before anything is written: by create_search and the settings
records, and so by ``ganas search start / resume / finalize`` (exit 2, the flag named, no traceback)."""
from __future__ import annotations

import warnings
import zipfile
from dataclasses import fields as dataclass_fields

import pytest
import torch
from torch import nn

from nas.cli import main
from nas.fields import FieldError
from nas.search_setup import create_search
from nas.store import Store
from nas.workspace import Workspace

SHA = "ab" * 32
PAIRED = {"root": "/data", "size": 32, "paired": True, "search_split": "train2"}
LABELLED = {"root": "/data", "size": 32, "paired": True, "labelled": True, "search_split": "train2"}


def _register(store: Store) -> None:
    for name, dataset, metrics in (("tiny", PAIRED, ["fid", "kid", "psnr", "ssim"]),
                                   ("labelled", LABELLED, ["fid", "kid", "miou", "psnr", "ssim"])):
        store.register_supernet(name, architecture="mobile_resnet", space="channels-16", checkpoint="c",
                                checkpoint_sha256=SHA, hparams={"ngf": 16, "n_blocks": 3}, dataset=dataset,
                                metrics=metrics)


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    workspace = Workspace(tmp_path / "ws").ensure()
    with Store(workspace.database_url) as store:
        _register(store)
    return workspace


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """Metric-network files, good and bad, as a user might give them."""
    from evaluators.segmenter import create_segmenter_network, save_segmenter

    folder = tmp_path_factory.mktemp("files")
    text = folder / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    plain_zip = folder / "notes.zip"
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("notes.txt", "not a network")
    checkpoint = folder / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, checkpoint)
    torch.manual_seed(0)
    segmenter = save_segmenter(create_segmenter_network("tiny_unet", 3, width=4), folder / "segmenter.pt",
                               "tiny_unet", {"width": 4}, 3)
    scripted = folder / "scripted.pt"
    with warnings.catch_warnings():  # torch 2.x deprecates TorchScript; users still bring such files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(nn.Conv2d(3, 3, 1)), str(scripted))
    return {"text": str(text), "zip": str(plain_zip), "checkpoint": str(checkpoint), "segmenter": str(segmenter),
            "torchscript": str(scripted), "missing": str(folder / "absent.pt"), "folder": str(folder)}


def _count(workspace: Workspace) -> int:
    with Store(workspace.database_url) as store:
        return len(store.search_listing().records)


# (arguments of create_search beyond supernet "tiny", budgets 1G, metric ssim; the field named; in the message)
BAD_FIELDS = [
    ({"budgets": "1e999"}, "budgets", "above 9,223,372,036,854,775,807 MACs"),
    ({"budgets": [2**70]}, "budgets", "above 9,223,372,036,854,775,807 MACs"),
    ({"budgets": [10**5000]}, "budgets", "MACs budget a 5001-digit integer is above"),
    ({"budgets": "inf"}, "budgets", "is not a number"),
    ({"budgets": []}, "budgets", "no MACs budget given"),
    ({"budgets": "1K"}, "budgets", "below the smallest subnet"),
    ({"seed": 2**70}, "seed", "seed must be an integer from 0 to 4,294,967,295, got 1180591620717411303424"),
    ({"seed": -1}, "seed", "seed must be an integer from 0"),
    ({"seed": 1.5}, "seed", "got 1.5"),
    ({"trials": 0}, "trials", "trials must be a positive integer"),
    ({"trials": 2**40}, "trials", "at most 2,147,483,647"),
    ({"batch_size": 0}, "batch_size", "batch_size must be a positive integer"),
    ({"max_attempts": 0}, "max_attempts", "max_attempts must be a positive integer"),
    ({"macs_size": (-64, 64)}, "macs_size", "macs_size must be a positive integer"),
    ({"macs_size": (10**7, 64)}, "macs_size", "at most 65,536"),
    ({"macs_size": (64,)}, "macs_size", "macs_size must be [height, width]"),
    ({"multi_objective": "yes"}, "multi_objective", "true, false or null"),
    ({"metric": "nope"}, "metric", "unknown metric 'nope'"),
    ({"metric": "miou"}, "metric", "not miou (miou needs label maps"),
    ({"strategy": "greedy"}, "strategy", "unknown strategy 'greedy'"),
    ({"strategy_settings": {"population_size": 1}}, "strategy_settings", "population_size must be an integer >= 2"),
    ({"strategy_settings": {"popsize": 4}}, "strategy_settings", "unknown setting(s) popsize"),
    ({"strategy_settings": [1, 2]}, "strategy_settings", "must be an object"),
    ({"metric_options": {"kid_size": 5}}, "metric_options", "unknown metric option(s) kid_size"),
    ({"metric_options": {"kid_subsets": 0}}, "metric_options.kid_subsets", "kid_subsets must be an integer from 1"),
    ({"metric_options": {"seed": 2**40}}, "metric_options.seed", "seed must be an integer from 0 to 4,294,967,295"),
    ({"metric_options": {"latency_backend": ""}}, "metric_options.latency_backend", "non-empty name"),
    ({"metric_options": "kid_subsets=3"}, "metric_options", "must be an object"),
]
# (arguments, field, message) for the files a metric reads; values naming FILES entries are replaced by their path
BAD_FILES = [
    ({"supernet": "labelled", "metric": "miou"}, "segmenter", "miou needs a segmenter"),
    ({"supernet": "labelled", "metric": "miou", "segmenter": "text"}, "segmenter", "is not a segmenter file"),
    ({"supernet": "labelled", "metric": "miou", "segmenter": "missing"}, "segmenter", "does not exist"),
    ({"supernet": "labelled", "metric": "miou", "segmenter": "folder"}, "segmenter", "does not exist"),
    ({"supernet": "labelled", "metric": "miou", "segmenter": "zip"}, "segmenter", "neither a ganas segmenter"),
    ({"supernet": "labelled", "metric": "miou", "segmenter": "checkpoint"}, "segmenter", "not a ganas segmenter"),
    ({"supernet": "labelled", "metric": "miou", "segmenter": ""}, "segmenter", "must be a path or a name"),
    ({"segmenter": "text"}, "segmenter", "is not a segmenter file"),  # given for ssim: checked all the same
    ({"metric": "fid"}, "inception_weights", "FID Inception-v3 weights file"),
    ({"metric": "fid", "inception_weights": "missing"}, "inception_weights", "absent.pt (given explicitly)"),
    ({"metric": "kid", "extractor": "nope"}, "extractor", "unknown feature extractor 'nope'"),
    ({"metric": "fid", "extractor": "missing"}, "extractor", "TorchScript extractor file"),
    ({"metric": "fid", "extractor": "checkpoint"}, "extractor", "is not a TorchScript file"),
    ({"metric": "fid", "extractor": "text"}, "extractor", "is not a TorchScript extractor file"),
    ({"metric": "fid", "extractor": "torchscript", "inception_weights": "text"}, "extractor",
     "reads no Inception weights"),
]


def _resolved(arguments: dict, files: dict) -> dict:
    paths = ("segmenter", "extractor", "inception_weights")
    return {k: files.get(v, v) if k in paths and isinstance(v, str) else v for k, v in arguments.items()}


@pytest.mark.parametrize("arguments, field, message", BAD_FIELDS + BAD_FILES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_FIELDS + BAD_FILES)])
def test_create_search_refuses_a_bad_field_and_writes_nothing(workspace, files, monkeypatch, arguments, field,
                                                              message):
    monkeypatch.delenv("GANAS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", files["folder"])  # no Inception weights in the hub cache either
    arguments = {"supernet": "tiny", "budgets": "1G", "metric": "ssim", "trials": 2, **_resolved(arguments, files)}
    with Store(workspace.database_url) as store:
        with pytest.raises(FieldError) as info:
            create_search(store, arguments.pop("supernet"), **arguments)
    assert info.value.field == field and message in str(info.value), str(info.value)
    assert _count(workspace) == 0


def test_good_metric_files_are_accepted_and_kept_in_the_plan(workspace, files, inception_weights):
    with Store(workspace.database_url) as store:
        miou = create_search(store, "labelled", budgets="1G", metric="miou", trials=2, segmenter=files["segmenter"])
        scripted = create_search(store, "labelled", budgets="1G", metric="miou", trials=2,
                                 segmenter=files["torchscript"])
        fid = create_search(store, "tiny", budgets=["500M", 10**9], metric="fid", trials=2)
        own = create_search(store, "tiny", budgets="1G", metric="kid", trials=2, extractor=files["torchscript"],
                            seed=2**32 - 1, macs_size=[64, 48], metric_options={"kid_subset_size": 2})
    assert miou.plan["evaluation"]["segmenter"] == files["segmenter"]
    assert scripted.plan["evaluation"]["segmenter"] == files["torchscript"]
    assert fid.budgets == (500_000_000, 10**9) and fid.plan["evaluation"]["extractor"] is None
    assert own.seed == 2**32 - 1 and own.plan["macs_size"] == (64, 48) and own.plan["evaluation"]["cache_dir"] is None


def test_the_cache_folder_is_not_a_field_of_a_search():
    import inspect

    from nas.service.schemas import SearchCreate

    assert "cache_dir" not in inspect.signature(create_search).parameters
    assert "cache_dir" not in SearchCreate.model_fields


@pytest.mark.parametrize("make, arguments, field", [
    ("OrchestratorSettings", {"workers": 0}, "workers"), ("OrchestratorSettings", {"workers": -1}, "workers"),
    ("OrchestratorSettings", {"workers": 10**6}, "workers"),
    ("OrchestratorSettings", {"lease_seconds": 0}, "lease_seconds"),
    ("OrchestratorSettings", {"lease_seconds": float("nan")}, "lease_seconds"),
    ("OrchestratorSettings", {"lease_seconds": float("inf")}, "lease_seconds"),
    ("OrchestratorSettings", {"claim_seconds": -1.0}, "claim_seconds"),
    ("OrchestratorSettings", {"executor": "slurm"}, "executor"),
    ("OrchestratorSettings", {"threads_per_worker": 0}, "threads_per_worker"),
    ("FinalizeSettings", {"steps": 0}, "steps"), ("FinalizeSettings", {"steps": 2**40}, "steps"),
    ("FinalizeSettings", {"batch_size": 0}, "batch_size"), ("FinalizeSettings", {"workers": 0}, "workers"),
    ("FinalizeSettings", {"lease_seconds": 0.0}, "lease_seconds"),
    ("FinalizeSettings", {"latency_runs": 0}, "latency_runs"),
    ("LaunchOptions", {"workers": 0}, "workers"), ("LaunchOptions", {"lease_seconds": -5}, "lease_seconds"),
    ("LaunchOptions", {"executor": "slurm"}, "executor"), ("FinalizeOptions", {"steps": 0}, "steps"),
    ("LaunchOptions", {"threads_per_worker": 0}, "threads_per_worker"),
    ("FinalizeOptions", {"threads_per_worker": -1}, "threads_per_worker"),
    ("FinalizeOptions", {"workers": 2**70}, "workers"), ("FinalizeOptions", {"budgets": (0,)}, "budgets"),
])
def test_run_settings_refuse_what_would_hang_or_fail_later(make, arguments, field):
    from nas.finalize import FinalizeSettings
    from nas.orchestrator import OrchestratorSettings
    from nas.service.launcher import FinalizeOptions, LaunchOptions

    classes = {c.__name__: c for c in (OrchestratorSettings, FinalizeSettings, LaunchOptions, FinalizeOptions)}
    with pytest.raises(FieldError) as info:
        classes[make](**arguments)
    assert info.value.field == field


def test_every_metric_option_has_a_rule():
    from evaluators.metrics import MetricOptionError, MetricOptions

    for option in dataclass_fields(MetricOptions):
        with pytest.raises(MetricOptionError) as info:
            MetricOptions(**{option.name: object()})
        assert info.value.option == option.name
    assert MetricOptions(latency_threads=None, latency_device=None) == MetricOptions()


# -- the command line ----------------------------------------------------------------------------------------------
START = ["start", "--supernet", "tiny", "--budget", "1G", "--metric", "ssim", "--trials", "2", "--executor", "local",
         "--quiet"]
# (flags added to START, what the one error line says)
BAD_FLAGS = [
    (["--budget", "1e999"], "--budget: MACs budget '1e999' is above 9,223,372,036,854,775,807 MACs"),
    (["--seed", "1180591620717411303424"], "--seed must be an integer from 0 to 4,294,967,295"),
    (["--seed", "-1"], "--seed must be an integer from 0"),
    (["--trials", "0"], "--trials must be a positive integer"),
    (["--batch-size", "99999999999"], "--batch-size must be a positive integer (at most 2,147,483,647)"),
    (["--macs-size", "9999999"], "--macs-size must be a positive integer (at most 65,536)"),
    (["--workers", "0"], "--workers must be a positive integer (at most 1,024), got 0"),
    (["--workers", "-1"], "--workers must be a positive integer"),
    (["--lease-seconds", "0"], "--lease-seconds must be a finite number of seconds > 0, got 0.0"),
    (["--lease-seconds", "nan"], "--lease-seconds must be a finite number of seconds > 0, got nan"),
    (["--threads-per-worker", "0"], "--threads-per-worker must be a positive integer"),
    (["--setting", "population_size=1"], "--setting: strategy evolution: setting population_size must be"),
    (["--metric-option", "kid_subsets=0"], "--metric-option kid_subsets: metric option kid_subsets must be"),
    (["--segmenter", "/etc/passwd"], "--segmenter: /etc/passwd is not a segmenter file"),
    (["--supernet", "labelled", "--metric", "miou"], "--segmenter: miou needs a segmenter"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS, ids=[f[0] for f, _ in BAD_FLAGS])
def test_search_start_refuses_a_bad_flag_with_one_line_and_writes_nothing(workspace, capsys, flags, message):
    code = main(["search", "--workspace", str(workspace.root)] + START + flags)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert _count(workspace) == 0


@pytest.mark.parametrize("flags, argument", [(["--seed", "1e23"], "--seed"), (["--macs-size", "-64"], "--macs-size"),
                                              (["--workers", "two"], "--workers")])
def test_numbers_argparse_cannot_read_are_usage_errors(workspace, capsys, flags, argument):
    with pytest.raises(SystemExit) as info:
        main(["search", "--workspace", str(workspace.root)] + START + flags)
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"error: argument {argument}" in err and "Traceback" not in err
    assert _count(workspace) == 0


@pytest.mark.parametrize("command, flags, message", [
    ("resume", ["--workers", "0"], "--workers must be a positive integer"),
    ("resume", ["--workers", "-1", "--executor", "local"], "--workers must be a positive integer"),
    ("resume", ["--lease-seconds", "0"], "--lease-seconds must be a finite number of seconds > 0"),
    ("finalize", ["--workers", "0"], "--workers must be a positive integer"),
    ("finalize", ["--steps", "0"], "--steps must be a positive integer"),
    ("finalize", ["--threads-per-worker", "-2"], "--threads-per-worker must be a positive integer"),
    ("finalize", ["--latency-runs", "0"], "--latency-runs must be a positive integer"),
    ("finalize", ["--lease-seconds", "inf"], "--lease-seconds must be a finite number of seconds > 0, got inf"),
    ("finalize", ["--budget", "1e999"], "--budget: MACs budget '1e999' is above"),
])
def test_resume_and_finalize_refuse_bad_run_flags_before_anything_changes(workspace, capsys, command, flags, message):
    with Store(workspace.database_url) as store:
        search = create_search(store, "tiny", budgets="1G", metric="ssim", trials=2)
        store.set_search_state(search.id, "running")
        store.set_search_state(search.id, "paused")
        before = store.get_search(search.id), store.finals(search.id)
    code = main(["search", "--workspace", str(workspace.root), command, str(search.id)] + flags)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1, err
    with Store(workspace.database_url) as store:
        assert (store.get_search(search.id), store.finals(search.id)) == before


def test_a_search_id_beyond_the_store_is_not_found(workspace, capsys):
    for command in ("status", "front", "resume", "pause"):
        code = main(["search", "--workspace", str(workspace.root), command, str(10**23)])
        err = capsys.readouterr().err
        assert code == 2 and f"no search with id {10**23}" in err and "`ganas search list` lists them" in err, err
        assert "list_searches" not in err
