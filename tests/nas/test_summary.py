"""The running front a search keeps batch by batch equals the summary read from the store."""
import random

import pytest

from nas.store import CandidateStatus, Store
from nas.summary import RunningFront, summarize

SHA = "0" * 64


@pytest.mark.parametrize("objective", ["psnr:maximize", "fid:minimize"])
def test_running_front_equals_the_store_summary_after_every_batch(tmp_path, objective):
    rng = random.Random(3)
    with Store(tmp_path / "s.db") as store:
        store.register_supernet("s", architecture="mobile_resnet", space="channels-16", checkpoint="c",
                                checkpoint_sha256=SHA)
        search = store.create_search("s", budgets=[4 * 10**8, 8 * 10**8], objectives=[objective], strategy="random",
                                     trials=60)
        metric = objective.partition(":")[0]
        running = RunningFront.of(store.get_search(search.id))
        configs = [(f"{i}_{i}", rng.randrange(10**8, 10**9), 1) for i in range(60)]
        for start in range(0, 60, 7):
            added = store.add_candidates(search.id, configs[start:start + 7]).records
            finished = []
            for c in added:
                (leased,) = store.lease_candidates(search.id, "w", 1, 60)
                if rng.random() < 0.15:
                    finished.append(store.fail_candidate(leased.id, "w", "boom"))
                else:
                    value = round(rng.uniform(1, 30), 1)  # ties on purpose
                    finished.append(store.complete_candidate(leased.id, "w", {metric: value}, "test", 0.1))
            running.add(finished)
            summary = summarize(store, search.id)
            assert [c.config for c in running.members] == [p.config for p in summary.front.front]
            assert running.hypervolume == pytest.approx(summary.hypervolume)
            assert running.done == summary.counts.done
            assert {b: (c.config if c else None) for b, c in running.best().items()} == \
                {b.budget: (b.candidate.config if b.candidate else None) for b in summary.best}
            assert len(running.points) == len(store.candidates(search.id, CandidateStatus.DONE))
