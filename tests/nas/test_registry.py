"""The search's vocabulary comes from the registries: a metric registered in its own module is offered by
``metrics_for``, ``create_search``, the CLI and the REST schema, with its registered direction."""
import pytest

from evaluators import metrics as metric_registry
from evaluators.metric_catalog import get_metric, list_metrics
from evaluators.metrics import Metric, Need
from nas.cli import build_parser
from nas.objectives import Objective
from nas.registry import metrics_for, missing_needs, search_metrics
from nas.search_setup import SearchSetupError, create_search
from nas.service.schemas import SearchCreate
from nas.store import Store
from nas.strategies import list_strategies

SHA = "ab" * 32
PAIRED = {"root": "/data", "size": 32, "paired": True, "search_split": "train2"}


class Sharpness(Metric):
    """A metric a plug-in could add: paired, higher is better (never instantiated here)."""

    name = "sharpness"
    direction = "maximize"
    needs = frozenset({Need.PAIRED_TARGETS})


@pytest.fixture
def sharpness():
    registry = metric_registry.registered_metrics()
    registry.register(Sharpness.name, Sharpness)
    yield Sharpness.name
    registry.unregister(Sharpness.name)


def test_search_metrics_are_the_registered_scores_in_registry_order():
    assert search_metrics() == [m for m in list_metrics() if not get_metric(m).cost]
    teacher = ["teacher-psnr", "teacher-ssim", "teacher-perceptual"]
    assert search_metrics() == ["fid", "kid", "miou", "psnr", "ssim", *teacher]  # latency is a cost, not a score
    assert metrics_for({}) == ["fid", "kid"]
    assert metrics_for({}, teacher=True) == ["fid", "kid", *teacher]  # with a teacher recorded
    assert metrics_for({"paired": True}) == ["fid", "kid", "psnr", "ssim"]
    assert metrics_for({"paired": True, "labelled": True}) == ["fid", "kid", "miou", "psnr", "ssim"]
    assert missing_needs("miou", {"paired": True}) == [Need.LABELS.value] and missing_needs("fid", {}) == []


def test_a_registered_metric_reaches_every_front_door(sharpness, tmp_path):
    assert sharpness in search_metrics() and sharpness in metrics_for(PAIRED)
    assert sharpness not in metrics_for({}) and missing_needs(sharpness, {}) == [Need.PAIRED_TARGETS.value]
    args = build_parser().parse_args(["search", "start", "--supernet", "s", "--budget", "1G", "--metric", sharpness])
    assert args.metric == sharpness
    schema = SearchCreate.model_json_schema()["properties"]
    assert sharpness in schema["metric"]["enum"] and schema["strategy"]["enum"] == list_strategies()
    with Store(tmp_path / "ganas.db") as store:
        store.register_supernet("paired", architecture="mobile_resnet", space="channels-16", checkpoint="c",
                                checkpoint_sha256=SHA, hparams={"ngf": 16, "n_blocks": 3}, dataset=PAIRED,
                                metrics=metrics_for(PAIRED))
        search = create_search(store, "paired", budgets=[10**9], metric=sharpness, strategy="random", trials=2,
                               multi_objective=True)
        assert search.objectives == (Objective(sharpness, "maximize"), Objective("macs", "minimize"))
        with pytest.raises(SearchSetupError, match="not miou \\(miou needs label maps"):
            create_search(store, "paired", budgets=[10**9], metric="miou")
        with pytest.raises(SearchSetupError, match="unknown metric 'latency'; choose one of fid, kid, miou"):
            create_search(store, "paired", budgets=[10**9], metric="latency")


def test_cli_refuses_what_the_registries_do_not_list():
    parser = build_parser()
    for flag, value in (("--metric", "latency"), ("--strategy", "grid")):
        argv = ["search", "start", "--supernet", "s", "--budget", "1G", "--metric", "fid", flag, value]
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2
