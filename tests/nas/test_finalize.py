"""Finalize: fine-tune the chosen subnets on workers, measure them next to the teacher on val, export, register."""
import os
import shutil
import signal
import time

import pytest

from nas.cli import main
from nas.executors import LocalExecutor
from nas.finalize import FinalizeSettings, Finalizer, choose
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.search_setup import create_search
from nas.store import FinalStatus, SearchState, Store
from nas.workspace import Workspace
from tests.nas.conftest import build_registered_supernet

LOCAL = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=120)
FINAL = FinalizeSettings(steps=2, workers=1, executor="local", latency_runs=2, progress=False)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A done search of the tiny supernet, with its teacher's figures."""
    fixture = build_registered_supernet(tmp_path_factory.mktemp("finalize"))
    ws = Workspace(fixture.workspace)
    with Store(ws.database_url) as store:
        search = create_search(store, fixture.name, budgets=[60_000_000, 80_000_000], metric="ssim",
                               strategy="random", trials=4, seed=3, batch_size=4)
        Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
    return fixture, ws, search.id


def test_a_search_measures_its_teacher_once_on_the_search_split(searched):
    fixture, ws, search_id = searched
    with Store(ws.database_url) as store:
        search, supernet = store.get_search(search_id), store.get_supernet(fixture.name)
    assert search.teacher["split"] == "train2" and 0 < search.teacher["metrics"]["ssim"] <= 1
    assert supernet.teacher["architecture"] == "resnet" and supernet.teacher["macs"] > 0


def test_finalize_fine_tunes_measures_against_the_teacher_exports_and_registers(searched):
    fixture, ws, search_id = searched
    with Store(ws.database_url) as store:
        choices = choose(store, search_id)
        assert {c.budget for c in choices} <= {60_000_000, 80_000_000} and choices
        finals = Finalizer(store, ws, search_id, FINAL, log=lambda m: None).run(choices)
        assert all(f.status == FinalStatus.DONE for f in finals)
        for f in finals:
            assert f.split == "val" and set(f.before) == set(f.after) == set(f.teacher) == {"ssim"}
            assert f.latency_ms > 0 and f.teacher_latency_ms > 0 and f.model_uri.startswith("models:/ganas-")
            assert {"checkpoint", "onnx", "pt2"} <= set(f.files) and max(f.export_errors.values()) < 1e-3
            assert all((ws.root / path).is_file() for path in f.files.values())
        again = Finalizer(store, ws, search_id, FINAL, log=lambda m: None).run(choices)
        assert [(f.id, f.model_uri, f.finished_at) for f in again] == [(f.id, f.model_uri, f.finished_at)
                                                                        for f in finals]  # nothing redone
    from supernet.checkpoint import load_generator

    subnet = load_generator(ws.root / finals[0].files["checkpoint"])
    assert "_".join(map(str, subnet.config)) == finals[0].config and not subnet.elastic


def test_a_killed_finalize_resumes_its_leased_job(searched):
    fixture, ws, search_id = searched
    with Store(ws.database_url) as store:
        (choice,) = [c for c in choose(store, search_id, front=True) if c.config not in
                     {f.config for f in store.finals(search_id)}][:1] or pytest.skip("front already finalized")
        from nas.finalize.runner import finetune_settings
        from nas.store import NewFinal

        candidate = store.find_candidate(search_id, choice.config)
        store.add_finals(search_id, [NewFinal(choice.config, candidate.macs, candidate.params, 2,
                                              settings=finetune_settings(fixture.checkpoint.read_bytes(),
                                                                         store.get_supernet(fixture.name)))])
        (leased,) = store.lease_finals(search_id, f"final{search_id}-w0", 1, 3600)  # then the process was killed
        (done,) = Finalizer(store, ws, search_id, FINAL, log=lambda m: None).run([choice])
        assert done.id == leased.id and done.status == FinalStatus.DONE
        assert (done.attempts, done.lost) == (1, 1)  # the killed finalizer's lease was not an attempt


def test_the_online_recipe_fine_tunes_from_a_teacher_that_trains_on(searched, capsys):
    fixture, ws, search_id = searched
    with Store(ws.database_url) as store:
        done = {f.config for f in store.finals(search_id)}
        config = next(c.config for c in store.candidates(search_id) if c.config not in done and c.macs)
    assert main(["search", "--workspace", str(ws.root), "finalize", str(search_id), "--config", config, "--recipe",
                 "online", "--steps", "2", "--executor", "local", "--latency-runs", "2", "--quiet", "--json"]) == 0
    import json

    import torch

    (final,) = json.loads(capsys.readouterr().out)  # progress lines go to stderr with --json
    assert final["status"] == "done" and final["settings"]["recipe"] == "online"
    assert final["settings"]["student_loss"]["lambda_cd"] == 10.0 and set(final["after"]) == {"ssim"}
    meta = torch.load(ws.root / final["files"]["checkpoint"], weights_only=True)["meta"]
    assert meta["recipe"] == "online" and meta["losses"]["ndf"] == 64  # this teacher kept no discriminator


def test_the_online_recipe_needs_paired_data_and_a_teacher_with_weights(searched):
    from dataclasses import replace

    from nas.finalize import FinalizeError

    fixture, ws, search_id = searched
    online = replace(FINAL, recipe="online")
    with Store(ws.database_url) as store:
        finalizer = Finalizer(store, ws, search_id, online, log=lambda m: None)
        finalizer.supernet = replace(finalizer.supernet, dataset={**finalizer.supernet.dataset, "paired": False})
        with pytest.raises(FinalizeError, match="unpaired data; use --recipe gan-compression"):
            finalizer.preflight()
        finalizer.supernet = replace(finalizer.supernet, teacher={**finalizer.supernet.teacher, "kind": "onnx"})
        finalizer.supernet = replace(finalizer.supernet, dataset={**finalizer.supernet.dataset, "paired": True})
        with pytest.raises(FinalizeError, match="onnx program"):
            finalizer._check_recipe(__import__("nas.teacher", fromlist=["TeacherInfo"]).TeacherInfo.from_dict(
                finalizer.supernet.teacher))


def _finals(ws, search_id):
    with Store(ws.database_url) as store:
        return store.finals(search_id)


def test_bad_finalize_requests_are_refused_with_one_message_and_change_nothing(searched, tmp_path, capsys):
    fixture, ws, search_id = searched
    before = _finals(ws, search_id)
    base = ["search", "--workspace", str(ws.root), "finalize"]
    local = ["--executor", "local", "--steps", "2", "--quiet"]
    cases = [(["999999"], "no search"), ([str(search_id), "--config", "4_4_4_4_4_4_4_4"], "not a done candidate"),
             ([str(search_id), "--steps", "0", "--executor", "local"], "--steps must be a positive"),
             ([str(search_id), "--budget", "1K"], "no done candidate"),
             ([str(search_id), "--recipe", "bogus"], "--recipe 'bogus' is not a fine-tuning recipe; choose one of "
                                                     "gan-compression, online")]
    for args, message in cases:
        assert main(base + args + (local if "--steps" not in args else [])) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    with Store(ws.database_url) as store:
        running = create_search(store, fixture.name, budgets=[80_000_000], metric="ssim", strategy="random", trials=1)
        store.set_search_state(running.id, SearchState.RUNNING)
    assert main(base + [str(running.id)] + local) == 2 and "is running" in capsys.readouterr().err
    teacher = fixture.teacher
    saved = tmp_path / "teacher.pt"
    shutil.copy(teacher, saved)
    try:
        teacher.write_bytes(saved.read_bytes() + b"changed")
        assert main(base + [str(search_id), "--front"] + local) == 2
        assert "changed since the supernet was registered" in capsys.readouterr().err
        teacher.unlink()
        assert main(base + [str(search_id), "--front"] + local) == 2
        assert "is missing" in capsys.readouterr().err
    finally:
        shutil.copy(saved, teacher)
    assert _finals(ws, search_id) == before


def test_a_final_model_mlflow_could_not_take_is_registered_by_a_sync_once(searched):
    from dataclasses import replace

    from nas.orchestrator.backlog import MlflowBacklog
    from nas.orchestrator.sync import sync_search

    fixture, ws, search_id = searched
    closed, messages = "http://127.0.0.1:9", []
    with Store(ws.database_url) as store:
        finalized = {f.config for f in store.finals(search_id)}
        config = next(c.config for c in store.candidates(search_id, "done") if c.config not in finalized)
        (final,) = Finalizer(store, ws, search_id, replace(FINAL, mlflow_uri=closed), log=messages.append).run(
            choose(store, search_id, configs=[config]))
        assert final.status == FinalStatus.DONE and final.model_uri is None  # kept in the workspace all the same
        assert ws.absolute(final.files["onnx"]).is_file()
        assert MlflowBacklog(ws, search_id).counts() == {closed: 1}
        assert "does not answer" in messages[0]
        assert f"ganas search sync {search_id} --mlflow-uri {closed}" in messages[-1]

        # a final model whose ONNX file is gone is reported, the sync goes on, and it stays in the backlog
        onnx = ws.absolute(final.files["onnx"])
        onnx.rename(onnx.with_suffix(".moved"))
        lines = []
        missing = sync_search(store, ws, search_id, log=lines.append)
        assert (missing.final_models, missing.final_models_failed) == (0, 1) and "not registered" in lines[-1]
        assert MlflowBacklog(ws, search_id).counts() == {closed: 1, ws.mlflow_uri: 1}
        onnx.with_suffix(".moved").rename(onnx)

        # the workspace's MLflow had the search from its live run: a sync adds the final model, nothing else
        report = sync_search(store, ws, search_id, log=lambda m: None)
        assert (report.run_created, report.params, report.metric_points, report.candidate_batches, report.front_runs,
                report.front_artifacts, report.final_models) == (False, 0, 0, 0, 0, False, 1)
        registered = store.get_final(final.id).model_uri
        assert registered.startswith(f"models:/ganas-{fixture.name}/")
        assert MlflowBacklog(ws, search_id).counts() == {closed: 1}  # the closed port's MLflow is still behind
        assert not sync_search(store, ws, search_id, log=lambda m: None).logged_anything
        assert store.get_final(final.id).model_uri == registered
        from nas.tracking import log_final_model

        assert log_final_model(ws.mlflow_uri, ws.mlflow_artifacts, search_id, store.get_final(final.id),
                               ws.absolute(final.files["onnx"]), f"ganas-{fixture.name}", None) == registered
    from mlflow import MlflowClient

    client = MlflowClient(ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("ganas-search").experiment_id],
                              filter_string=f"tags.`ganas.final` = 'true' and tags.`ganas.config` = '{config}'")
    assert len(runs) == 1 and runs[0].data.metrics["after_ssim"] == pytest.approx(final.after["ssim"])


class _TerminatedOnSubmit(LocalExecutor):
    """The job handed to the worker never finishes: SIGTERM arrives while it runs."""

    def submit(self, name, task):
        os.kill(os.getpid(), signal.SIGTERM)

    def wait(self, timeout):
        time.sleep(0.05)
        return []


def test_sigterm_hands_a_running_finalize_job_back_uncharged(searched):
    fixture, ws, _ = searched
    with Store(ws.database_url) as store:  # a search of its own: the module's configs are finalized by the others
        search_id = create_search(store, fixture.name, budgets=[80_000_000], metric="ssim", strategy="random",
                                  trials=1, seed=11, max_attempts=1).id
        Orchestrator(store, ws, search_id, LOCAL, log=lambda m: None).run()
        finalizer = Finalizer(store, ws, search_id, FINAL, executor=_TerminatedOnSubmit(), log=lambda m: None)
        (job,) = finalizer.run(choose(store, search_id))
        assert finalizer.terminated and (job.status, job.attempts, job.lost) == (FinalStatus.QUEUED, 0, 0)
        assert "not counted as an attempt" in job.error
        assert store.get_search(search_id).owner is None  # the claim was released
