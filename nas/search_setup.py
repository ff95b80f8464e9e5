"""Creating a search: everything is checked before anything is written to the store.

A search's plan (batch size, MACs resolution, how candidates are evaluated) is stored with it in a
versioned ``plan`` column, and the strategy's own settings in ``strategy_settings``, so a resumed
orchestrator rebuilds exactly the same search. The plan's paths are recorded relative to the workspace
when they lie inside it, and located in the workspace that runs the search.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

from foundation.errors import GanasError
from supernet.spaces import get_space

from .budget import check_budgets
from .objectives import MACS, Objective
from .store import SearchRecord, Store, SupernetRecord
from .workspace import Workspace, recorded_path


class SearchSetupError(GanasError):
    """A search that cannot be created as asked."""


@dataclass(frozen=True)
class EvaluationSpec:
    """How a worker scores a candidate: which images, at which size, with which metric networks."""

    data_root: str
    layout: str | None
    direction: str
    split: str  # train2: the held-out part of the supernet's training set
    size: int
    metrics: tuple[str, ...]
    batch_size: int = 8
    extractor: str | None = None  # FID/KID feature extractor: "inception" (default) or a TorchScript path
    inception_weights: str | None = None
    segmenter: str | None = None  # mIoU segmenter checkpoint or TorchScript file
    cache_dir: str | None = None
    samples: int = 4  # images in each candidate's sample grid (0: none)
    metric_options: Mapping[str, Any] = field(default_factory=dict)  # evaluators.metrics.MetricOptions fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationSpec":
        values = dict(data)
        values["metrics"] = tuple(values["metrics"])
        values["metric_options"] = dict(values.get("metric_options") or {})
        return cls(**values)

    def options(self):
        """The metric options (KID subsets, latency timing, ...) every worker evaluates with."""
        from evaluators.metrics import MetricOptions

        try:
            return MetricOptions(**dict(self.metric_options))
        except TypeError:
            from dataclasses import fields

            allowed = ", ".join(f.name for f in fields(MetricOptions))
            unknown = ", ".join(sorted(set(self.metric_options) - {f.name for f in fields(MetricOptions)}))
            raise SearchSetupError(f"unknown metric option(s) {unknown}; allowed: {allowed}") from None

    def recorded(self, workspace: Workspace | None) -> "EvaluationSpec":
        """The spec as the store keeps it: the paths a user gave, relative to ``workspace`` when inside it
        (the data's path is the supernet record's, recorded already)."""
        given = {name: recorded_path(value, workspace) for name, value in self._paths().items() if name != "data_root"}
        return replace(self, **given)

    def located(self, workspace: Workspace) -> "EvaluationSpec":
        """The spec as workers use it: every recorded path located in ``workspace``, and the real-image
        statistics cached in the workspace unless the search names another folder."""
        paths = {"cache_dir": str(workspace.cache)}
        paths.update({name: str(workspace.absolute(value)) for name, value in self._paths().items()})
        return replace(self, **paths)

    def _paths(self) -> dict[str, str]:
        """The fields that hold a path: the data, the metric networks' files, a cache folder, and the
        extractor when it names a TorchScript file rather than a registered extractor."""
        names = ["data_root", "inception_weights", "segmenter", "cache_dir"]
        if self.extractor and not _names_an_extractor(self.extractor):
            names.append("extractor")
        return {name: getattr(self, name) for name in names if getattr(self, name)}


def _names_an_extractor(value: str) -> bool:
    from evaluators.features import list_extractors

    return value in list_extractors()


PLAN_VERSION = 1  # the layout of SearchPlan.to_dict(); a new layout bumps it and still reads the old ones


class SearchPlanError(SearchSetupError):
    """A search whose stored plan this ganas cannot read (none, or a version it does not know)."""


@dataclass(frozen=True)
class SearchPlan:
    """How a search runs besides the store's other columns: kept in its versioned ``plan`` column.

    ``strategy`` is the strategy's own settings, the search's ``strategy_settings`` column (not part of
    the plan column).
    """

    evaluation: EvaluationSpec
    batch_size: int = 8  # configs asked, evaluated and told together: results do not depend on timing
    macs_size: tuple[int, int] = (256, 256)  # resolution at which MACs budgets are counted
    strategy: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``plan`` column: ``{"version": PLAN_VERSION, "evaluation", "batch_size", "macs_size"}``."""
        return {"version": PLAN_VERSION, "evaluation": asdict(self.evaluation), "batch_size": self.batch_size,
                "macs_size": list(self.macs_size)}

    @classmethod
    def from_search(cls, search: SearchRecord) -> "SearchPlan":
        plan = search.plan
        if plan is None:
            raise SearchPlanError(f"search {search.id} has no plan (it was created through the store directly, not "
                                  "by `ganas search start` or the REST API), so it cannot be run")
        if plan.get("version") != PLAN_VERSION:
            raise SearchPlanError(f"search {search.id} has a plan of version {plan.get('version')!r}; this ganas reads "
                                  f"version {PLAN_VERSION}. Run it with the ganas release that created it.")
        return cls(EvaluationSpec.from_dict(plan["evaluation"]), int(plan["batch_size"]), tuple(plan["macs_size"]),
                   dict(search.strategy_settings))


def macs_function(supernet: SupernetRecord, size: Sequence[int]):
    """config -> MACs of the supernet at that config, by the closed form (microseconds, no tracing)."""
    from evaluators.closed_form import closed_form_macs

    hparams = dict(supernet.hparams)
    height, width = size
    return lambda config: closed_form_macs(supernet.architecture, tuple(config), (height, width), **hparams)


def create_search(store: Store, supernet: str, *, budgets: Sequence[int], metric: str, strategy: str = "evolution",
                  trials: int = 100, seed: int = 0, multi_objective: bool | None = None,
                  strategy_settings: Mapping[str, Any] | None = None, batch_size: int = 8,
                  macs_size: Sequence[int] | None = None, extractor: str | None = None,
                  inception_weights: str | None = None, segmenter: str | None = None,
                  cache_dir: str | None = None, max_attempts: int = 3,
                  metric_options: Mapping[str, Any] | None = None, workspace: Workspace | None = None) -> SearchRecord:
    """Validate and create a search (state ``created``); nothing is written when a check fails.

    The paths given (metric networks' files, a cache folder) are recorded relative to ``workspace`` when
    inside it, absolute otherwise; the data's path is the supernet's, as its record keeps it."""
    from evaluators.metric_catalog import get_metric

    from .registry import missing_needs, search_metrics
    from .strategies import create_strategy, list_strategies

    record = store.get_supernet(supernet)
    allowed = search_metrics()
    if metric not in allowed:
        raise SearchSetupError(f"unknown metric {metric!r}; choose one of {', '.join(allowed)}")
    if metric not in record.metrics:
        missing = missing_needs(metric, record.dataset)
        raise SearchSetupError(
            f"supernet {record.name!r} was trained on a dataset that can give {', '.join(record.metrics)}, not "
            f"{metric}" + (f" ({metric} needs {'; '.join(missing)})" if missing else ""))
    if strategy not in list_strategies():
        raise SearchSetupError(f"unknown strategy {strategy!r}; choose one of {', '.join(list_strategies())}")
    if batch_size < 1 or trials < 1:
        raise SearchSetupError(f"batch size and trials must be positive (got {batch_size}, {trials})")
    dataset = dict(record.dataset)
    size = int(dataset.get("size", 256))
    macs_size = tuple(macs_size) if macs_size is not None else (size, size)
    space = get_space(record.space)
    macs_of = macs_function(record, macs_size)
    budgets = sorted(int(b) for b in budgets)
    if not budgets:
        raise SearchSetupError("give at least one MACs budget, e.g. --budget 2G")
    check_budgets(budgets, macs_of(space.smallest()), record.space)
    multi = len(budgets) > 1 if multi_objective is None else multi_objective
    objectives = [Objective(metric, get_metric(metric).direction)] + ([Objective(MACS, "minimize")] if multi else [])
    # building the strategy once checks its settings (unknown keys, bad values) before anything is stored
    create_strategy(strategy, space, objectives, macs_of, budgets, seed, dict(strategy_settings or {}))
    if "search_split" not in dataset:
        raise SearchSetupError(f"supernet {record.name!r} records no held-out search split; retrain it with "
                               "`ganas train supernet` (it trains on train1 and keeps train2 for search)")
    evaluation = EvaluationSpec(
        data_root=dataset["root"], layout=dataset.get("layout"), direction=dataset.get("direction", "AtoB"),
        split=dataset["search_split"], size=size, metrics=(metric,), extractor=extractor,
        inception_weights=inception_weights, segmenter=segmenter, cache_dir=cache_dir,
        metric_options=dict(metric_options or {})).recorded(workspace)
    evaluation.options()  # unknown option names are refused before anything is stored
    plan = SearchPlan(evaluation, batch_size, macs_size, dict(strategy_settings or {}))
    return store.create_search(record.name, budgets=budgets, objectives=objectives, strategy=strategy, trials=trials,
                               seed=seed, strategy_settings=plan.strategy, plan=plan.to_dict(),
                               max_attempts=max_attempts)

