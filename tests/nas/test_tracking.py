"""MLflow tracking: a run per search, candidate batches, front child runs and tags, resume."""
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("mlflow")

from nas.tracking import FRONT_TAG, FrontMember, SearchTracker, default_tracking_uri, front_plot_png  # noqa: E402


@dataclass(frozen=True)
class Candidate:
    config: str
    macs: int
    params: int
    metrics: dict = field(default_factory=dict)
    status: str = "done"


def test_search_run_front_children_and_resume(tmp_path):
    uri = default_tracking_uri(tmp_path)
    tracker = SearchTracker(uri, artifact_root=tmp_path / "artifacts")
    run_id = tracker.start_search(7, {"strategy": "evolution", "budgets": [1_000_000, 2_000_000], "seed": 3})
    tracker.log_candidates(run_id, [Candidate("8_8", 10, 5, {"fid": 3.5}), Candidate("4_4", 5, 2, {"fid": 9.0})], 0)
    tracker.log_progress(run_id, 2, {"candidates_done": 2, "hypervolume": 1.5})
    grid = np.zeros((8, 8, 3), dtype=np.uint8)
    png = front_plot_png([(10, 3.5), (5, 9.0)], [(10, 3.5), (5, 9.0)], "fid", [1_000_000])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    tracker.log_front(run_id, [FrontMember("8_8", 10, 5, {"fid": 3.5}, grid), FrontMember("4_4", 5, 2, {"fid": 9.0})],
                      "fid", png)

    # a resumed orchestrator reopens the same run and moves the front tag
    resumed = SearchTracker(uri, artifact_root=tmp_path / "artifacts")
    assert resumed.start_search(7, {}, run_id=run_id) == run_id
    resumed.log_front(run_id, [FrontMember("4_4", 5, 2, {"fid": 9.0}), FrontMember("6_6", 7, 3, {"fid": 4.0})],
                      "fid", None)
    resumed.finish(run_id)

    client = resumed.client
    run = client.get_run(run_id)
    assert run.data.params["strategy"] == "evolution"
    assert json.loads(run.data.params["budgets"]) == [1_000_000, 2_000_000]
    assert run.data.metrics["candidates_done"] == 2
    assert run.info.status == "FINISHED"
    children = client.search_runs([resumed.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    tags = {c.data.tags["ganas.config"]: c.data.tags[FRONT_TAG] for c in children}
    assert tags == {"8_8": "false", "4_4": "true", "6_6": "true"}
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"pareto_front.json", "pareto_front.png", "candidates"} <= artifacts
    front = json.loads(open(client.download_artifacts(run_id, "pareto_front.json", str(tmp_path))).read())
    assert [m["config"] for m in front["front"]] == ["4_4", "6_6"]
