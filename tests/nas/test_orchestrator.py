"""The orchestrator: searches end to end, leases and retries, kill and resume, bad input."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evaluators.closed_form import closed_form_macs
from nas.budget import BudgetInfeasibleError
from nas.executors import Executor, LocalExecutor
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.pareto import pareto_front
from nas.search_setup import SearchSetupError, create_search
from nas.summary import summarize
from nas.store import LOST_LEASES_LIMIT, CandidateStatus, NotFoundError, SearchBusyError, SearchState, Store
from nas.worker import Outcome
from nas.workspace import Workspace
from supernet.errors import CheckpointError

LOCAL = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=60)


def _search(store, fixture, **kw):
    args = dict(budgets=[60_000_000, 80_000_000], metric="ssim", strategy="evolution", trials=8, seed=1,
                batch_size=4, strategy_settings={"population_size": 4})
    args.update(kw)
    return create_search(store, fixture.name, **args)


def _done(store, search_id):
    return {c.config: dict(c.metrics) for c in store.candidates(search_id, CandidateStatus.DONE)}


def test_search_runs_to_a_front_and_logs_mlflow(registered_supernet):
    ws = Workspace(registered_supernet.workspace)
    with Store(ws.database_url) as store:
        search = _search(store, registered_supernet)
        summary = Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert summary.state == "done" and summary.counts.done == 8
        done = list(store.candidates(search.id, CandidateStatus.DONE))
        assert all(c.macs <= 80_000_000 and 0 < c.metrics["ssim"] <= 1 for c in done)
        points = [(c.macs, c.metrics["ssim"]) for c in done]
        brute = {done[i].config for i in pareto_front(points, ["minimize", "maximize"])}
        assert {p.config for p in summary.front.front} == brute
        assert all(b.candidate for b in summary.best)
        assert all((ws.samples_dir(search.id) / f"{c.config}.png").is_file() for c in done)
    from mlflow import MlflowClient

    client = MlflowClient(ws.mlflow_uri)
    run = client.search_runs([client.get_experiment_by_name("ganas-search").experiment_id],
                             filter_string=f"tags.`ganas.search_id` = '{search.id}'")[0]
    assert run.data.metrics["candidates_done"] == 8 and run.data.params["strategy"] == "evolution"
    with Store(ws.database_url) as store:  # the teacher, measured once with the same evaluator, is on the run
        assert run.data.metrics["teacher_ssim"] == pytest.approx(store.get_search(search.id).teacher["metrics"]["ssim"])
    members = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert members and all("x_fewer_macs" in m.data.metrics and "ssim_vs_teacher" in m.data.metrics for m in members)


def test_budget_below_smallest_subnet_is_refused_with_the_numbers(registered_supernet):
    with Store(Workspace(registered_supernet.workspace).database_url) as store:
        before = len(store.list_searches())
        smallest = closed_form_macs("mobile_resnet", (8,) * 8, (32, 32), ngf=16, n_blocks=3)
        with pytest.raises(BudgetInfeasibleError, match=rf"1,000,000 MACs.*smallest.*{smallest:,}"):
            _search(store, registered_supernet, budgets=[1_000_000])
        assert len(store.list_searches()) == before


def test_unknown_supernet_and_unavailable_metric(registered_supernet, tmp_path):
    with Store(Workspace(registered_supernet.workspace).database_url) as store:
        with pytest.raises(NotFoundError, match="no supernet 'nope'"):
            _search(store, registered_supernet.__class__(registered_supernet.workspace, registered_supernet.checkpoint,
                                                         "nope"))
        with pytest.raises(SearchSetupError, match="unknown metric"):
            _search(store, registered_supernet, metric="lpips")


class FlakyExecutor(Executor):
    """Wraps the local executor: the first task on each candidate in ``hang`` never returns, and
    ``lose`` candidates always lose their worker; everything else evaluates for real."""

    def __init__(self, hang=(), lose=()):
        self.inner, self.hang, self.lose = LocalExecutor(), set(hang), set(lose)
        self.restarts, self.held = [], {}

    def start(self, names, payload):
        self.inner.start(names, payload)

    def submit(self, name, task):
        config = getattr(task, "config", None)  # a TeacherTask has none
        if config in self.hang:
            self.hang.discard(config)
            self.held[name] = task
        elif config in self.lose:
            self.held[name] = ("lost", task)
        else:
            self.inner.submit(name, task)

    def wait(self, timeout):
        lost = [(n, t[1]) for n, t in self.held.items() if isinstance(t, tuple)]
        for name, _ in lost:
            del self.held[name]
        if lost:
            return [Outcome(n, t.candidate_id, False, error="worker process died", worker_lost=True) for n, t in lost]
        outcomes = self.inner.wait(timeout)
        if not outcomes:
            time.sleep(min(timeout, 0.05))
        return outcomes

    def restart(self, name):
        self.restarts.append(name)
        self.held.pop(name, None)
        self.inner.restart(name)

    def shutdown(self):
        self.inner.shutdown()


def test_hung_worker_costs_an_attempt_and_a_dead_worker_none(registered_supernet):
    """A hung evaluation's lease expires and counts; a worker that dies under a candidate costs it nothing, until a
    config that kills its worker every time is given up after LOST_LEASES_LIMIT lost leases."""
    ws = Workspace(registered_supernet.workspace)
    with Store(ws.database_url) as store:
        search = _search(store, registered_supernet, strategy="random", trials=4, seed=7, strategy_settings={},
                         max_attempts=2)
        probe = _search(store, registered_supernet, strategy="random", trials=4, seed=7, strategy_settings={})
        configs = [c.config for c in Orchestrator(store, ws, probe.id, LOCAL, log=lambda m: None).run().front.front] or \
            [c.config for c in store.candidates(probe.id)]
        first, second = [c.config for c in store.candidates(probe.id)][:2]
        executor = FlakyExecutor(hang={first}, lose={second})
        settings = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=1.0)
        summary = Orchestrator(store, ws, search.id, settings, executor=executor, log=lambda m: None).run()
        hung = store.find_candidate(search.id, first)
        assert hung.status == CandidateStatus.DONE and (hung.attempts, hung.lost) == (2, 0)  # retried after its lease
        lost = store.find_candidate(search.id, second)
        assert lost.status == CandidateStatus.FAILED and (lost.attempts, lost.lost) == (0, LOST_LEASES_LIMIT)
        assert "died" in lost.error and "given up" in lost.error
        assert summary.state == "done" and summary.counts.done == 3 and summary.counts.failed == 1  # the search went on
        assert len(executor.restarts) == 1 + LOST_LEASES_LIMIT
        assert configs


class TerminatedExecutor(FlakyExecutor):
    """Evaluates for real until the third candidate, which never returns: SIGTERM arrives while it runs."""

    def __init__(self):
        super().__init__()
        self.submitted = 0

    def submit(self, name, task):
        if getattr(task, "config", None) is None or self.submitted < 2:
            self.submitted += getattr(task, "config", None) is not None
            return self.inner.submit(name, task)
        self.held[name] = task
        os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_hands_the_running_evaluation_back_uncharged_and_pauses(registered_supernet):
    ws = Workspace(registered_supernet.workspace)
    before = signal.getsignal(signal.SIGTERM)
    with Store(ws.database_url) as store:
        search = _search(store, registered_supernet, strategy="random", trials=4, seed=9, strategy_settings={},
                         max_attempts=1)
        log = []
        orchestrator = Orchestrator(store, ws, search.id, LOCAL, executor=TerminatedExecutor(), log=log.append)
        summary = orchestrator.run()
        assert orchestrator.terminated and summary.state == "paused" and summary.counts.done == 2
        (handed,) = [c for c in store.candidates(search.id) if c.error and "stopped while running it" in c.error]
        assert (handed.status, handed.attempts, handed.lost) == (CandidateStatus.QUEUED, 0, 0)  # handed back on purpose
        assert "handed back; not counted as an attempt" in handed.error
        stopped = store.get_search(search.id)
        assert (stopped.owner, stopped.error) == (None, None)
        assert any(f"continue with: ganas search resume {search.id}" in line for line in log), log
        assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
        summary = Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert summary.state == "done" and summary.counts.done == 4
        assert store.get_candidate(handed.id).attempts == 1


def test_tampered_checkpoint_and_second_orchestrator_change_nothing(registered_supernet, tmp_path):
    from tests.nas.conftest import build_registered_supernet

    fixture = build_registered_supernet(tmp_path, "tampered")
    ws = Workspace(fixture.workspace)
    with Store(ws.database_url) as store:
        search = _search(store, fixture)
        store.claim_search(search.id, "someone-else", 60)
        with pytest.raises(SearchBusyError):
            Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert store.get_search(search.id).state == SearchState.CREATED and not store.candidates(search.id)
        store.release_search(search.id, "someone-else")
        data = bytearray(fixture.checkpoint.read_bytes())
        data[-10] ^= 0xFF
        fixture.checkpoint.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match="no longer the registered file"):
            Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert store.get_search(search.id).state == SearchState.CREATED and not store.candidates(search.id)


def _cli(workspace, *args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "nas.cli", "search", "--workspace", str(workspace), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parents[2])


START = ["start", "--supernet", "tiny", "--budget", "60M", "--budget", "80M", "--metric", "ssim", "--strategy",
         "evolution", "--trials", "16", "--batch-size", "4", "--seed", "3", "--setting", "population_size=4",
         "--executor", "local", "--quiet"]


def test_sigkill_and_resume_equals_an_uninterrupted_run(registered_supernet):
    ws = Workspace(registered_supernet.workspace)
    straight = _cli(ws.root, *START)
    assert straight.wait(300) == 0, straight.stdout.read().decode()
    with Store(ws.database_url) as store:
        reference_id = max(s.id for s in store.list_searches())
        reference = _done(store, reference_id)
    assert len(reference) == 16

    killed = _cli(ws.root, *START)
    with Store(ws.database_url) as store:
        deadline = time.time() + 240
        while time.time() < deadline:
            searches = [s for s in store.list_searches() if s.id > reference_id]
            if searches and store.count_candidates(searches[0].id).done >= 5:
                break
            time.sleep(0.05)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        search_id = searches[0].id
        before = {c.config: c for c in store.candidates(search_id, CandidateStatus.DONE)}
        assert 5 <= len(before) < 16
        assert store.get_search(search_id).state == SearchState.RUNNING  # nobody cleaned up: a real crash

    resumed = _cli(ws.root, "resume", str(search_id), "--executor", "local", "--quiet")
    assert resumed.wait(300) == 0, resumed.stdout.read().decode()
    with Store(ws.database_url) as store:
        after = {c.config: c for c in store.candidates(search_id, CandidateStatus.DONE)}
        for config, record in before.items():  # no completed candidate lost or evaluated again
            assert after[config].finished_at == record.finished_at and after[config].attempts == record.attempts
        assert {k: dict(v.metrics) for k, v in after.items()} == reference
        assert [p.config for p in summarize(store, search_id).front.front] == \
            [p.config for p in summarize(store, reference_id).front.front]
        assert store.get_search(search_id).state == SearchState.DONE


def test_ray_workers_get_the_supernet_through_the_object_store(registered_supernet):
    pytest.importorskip("ray")
    ws = Workspace(registered_supernet.workspace)
    settings = OrchestratorSettings(workers=2, executor="ray", progress=False, lease_seconds=120)
    with Store(ws.database_url) as store:
        search = _search(store, registered_supernet, strategy="random", trials=4, seed=11, strategy_settings={})
        summary = Orchestrator(store, ws, search.id, settings, log=lambda m: None).run()
        assert summary.counts.done == 4
        owners = {c.last_owner for c in store.candidates(search.id)}
        assert owners <= {f"search{search.id}-w0", f"search{search.id}-w1"} and owners
        # the same seed evaluated in-process gives the same configs and the same numbers (up to the
        # float summation order of another thread count)
        local = _search(store, registered_supernet, strategy="random", trials=4, seed=11, strategy_settings={})
        Orchestrator(store, ws, local.id, LOCAL, log=lambda m: None).run()
        in_process, on_ray = _done(store, local.id), _done(store, search.id)
        assert set(in_process) == set(on_ray)
        assert all(in_process[c]["ssim"] == pytest.approx(on_ray[c]["ssim"], abs=1e-5) for c in on_ray)


def test_metric_the_dataset_cannot_give_is_refused(registered_supernet, tmp_path):
    """A supernet trained on unlabelled data cannot be searched for mIoU; nothing is stored."""
    from nas.registry import register_supernet
    from supernet import create_generator, save_generator

    dataset = {"root": str(tmp_path), "paired": True, "labelled": False, "size": 32, "search_split": "train2"}
    path = save_generator(create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3), tmp_path / "s.pt",
                          kind="supernet", space="channels-16", dataset=dataset)
    with Store(Workspace(registered_supernet.workspace).database_url) as store:
        record = register_supernet(store, path, "unlabelled")
        assert "miou" not in record.metrics and "ssim" in record.metrics
        before = len(store.list_searches())
        with pytest.raises(SearchSetupError, match="can give fid, kid, psnr, ssim, not miou.*labelled"):
            create_search(store, "unlabelled", budgets=[60_000_000], metric="miou")
        assert len(store.list_searches()) == before
