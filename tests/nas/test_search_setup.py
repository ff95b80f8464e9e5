"""A search's plan: written by create_search to the versioned plan column, read back by SearchPlan.from_search."""
import pytest

from nas.search_setup import PLAN_VERSION, SearchPlan, SearchPlanError, create_search
from nas.store import Store
from nas.store.records import thaw
from foundation.errors import GanasError

SHA = "ab" * 32
DATASET = {"root": "/data", "size": 32, "paired": True, "search_split": "train2"}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "ganas.db") as store:
        store.register_supernet("tiny", architecture="mobile_resnet", space="channels-16", checkpoint="c",
                                checkpoint_sha256=SHA, hparams={"ngf": 16, "n_blocks": 3}, dataset=DATASET,
                                metrics=["fid", "kid", "psnr", "ssim"])
        yield store


def test_plan_column_holds_the_versioned_plan_and_settings_only_the_strategys(store):
    search = create_search(store, "tiny", budgets=[10**9], metric="psnr", strategy="evolution", trials=5,
                           batch_size=4, macs_size=(64, 48), strategy_settings={"population_size": 4})
    assert thaw(search.strategy_settings) == {"population_size": 4}
    stored = thaw(search.plan)
    assert (stored["version"], stored["batch_size"], stored["macs_size"]) == (PLAN_VERSION, 4, [64, 48])
    assert stored["evaluation"]["metrics"] == ["psnr"] and stored["evaluation"]["split"] == "train2"
    plan = SearchPlan.from_search(store.get_search(search.id))
    assert (plan.batch_size, plan.macs_size, plan.strategy) == (4, (64, 48), {"population_size": 4})
    assert plan.evaluation.metrics == ("psnr",) and plan.evaluation.size == 32
    assert thaw(plan.to_dict()) == stored


def test_a_plan_of_an_unknown_version_or_no_plan_is_refused_clearly(store):
    unknown = store.create_search("tiny", budgets=[10**9], objectives=["fid"], strategy="random", trials=1,
                                  plan={"version": PLAN_VERSION + 1, "steps": []})
    with pytest.raises(SearchPlanError, match=f"plan of version {PLAN_VERSION + 1}; this ganas reads version "
                                              f"{PLAN_VERSION}") as info:
        SearchPlan.from_search(unknown)
    assert isinstance(info.value, GanasError)
    bare = store.create_search("tiny", budgets=[10**9], objectives=["fid"], strategy="random", trials=1)
    with pytest.raises(SearchPlanError, match="has no plan"):
        SearchPlan.from_search(bare)


def test_metric_options_reach_the_plan_and_unknown_ones_are_refused_before_writing(store, inception_weights):
    from nas.search_setup import SearchSetupError

    search = create_search(store, "tiny", budgets=[10**9], metric="kid", strategy="random", trials=2,
                           metric_options={"kid_subset_size": 5, "kid_subsets": 3})
    options = SearchPlan.from_search(store.get_search(search.id)).evaluation.options()
    assert (options.kid_subset_size, options.kid_subsets) == (5, 3)
    with pytest.raises(SearchSetupError, match="unknown metric option.*kid_size.*allowed: .*kid_subsets"):
        create_search(store, "tiny", budgets=[10**9], metric="kid", strategy="random", trials=2,
                      metric_options={"kid_size": 5})
    assert len(store.list_searches()) == 1
