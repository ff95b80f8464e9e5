"""Creating a search: everything is checked before anything is written to the store.

A search's plan (batch size, MACs resolution, how candidates are evaluated) is stored with it in a
versioned ``plan`` column, and the strategy's own settings in ``strategy_settings``, so a resumed
orchestrator rebuilds exactly the same search. The plan's paths are recorded relative to the workspace
when they lie inside it, and located in the workspace that runs the search.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

from foundation.errors import GanasError
from supernet.spaces import get_space

from . import fields
from .budget import check_budgets, parse_budgets
from .objectives import MACS, Objective
from .store import SearchRecord, Store, SupernetRecord
from .workspace import Workspace, recorded_path


class SearchSetupError(GanasError):
    """A search that cannot be created as asked."""


class SearchFieldError(fields.FieldError, SearchSetupError):
    """A field of a search request with a value ganas refuses (``field`` names it)."""


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
    cache_dir: str | None = None  # set by the orchestrator to the workspace's cache for its workers; never a request's
    samples: int = 4  # images in each candidate's sample grid (0: none)
    metric_options: Mapping[str, Any] = field(default_factory=dict)  # evaluators.metrics.MetricOptions fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationSpec":
        values = dict(data)
        values["metrics"] = tuple(values["metrics"])
        values["metric_options"] = dict(values.get("metric_options") or {})
        return cls(**values)

    def options(self):
        """The metric options (KID subsets, latency timing, ...) every worker evaluates with; a bad one raises
        :class:`SearchFieldError` naming ``metric_options.NAME``."""
        from dataclasses import fields as dataclass_fields

        from evaluators.metrics import MetricOptionError, MetricOptions

        if not isinstance(self.metric_options, Mapping):
            raise SearchFieldError("metric_options", "metric_options must be an object of option: value, got "
                                                     f"{fields.shown(self.metric_options)}")
        known = [f.name for f in dataclass_fields(MetricOptions)]
        unknown = sorted(str(k) for k in set(self.metric_options) - set(known))
        if unknown:
            raise SearchFieldError("metric_options", f"unknown metric option(s) {', '.join(unknown)}; "
                                                     f"allowed: {', '.join(known)}")
        try:
            return MetricOptions(**dict(self.metric_options))
        except MetricOptionError as exc:
            raise SearchFieldError(f"metric_options.{exc.option}", str(exc)) from None

    def recorded(self, workspace: Workspace | None) -> "EvaluationSpec":
        """The spec as the store keeps it: the paths a user gave, relative to ``workspace`` when inside it
        (the data's path is the supernet record's, recorded already)."""
        given = {name: recorded_path(value, workspace) for name, value in self._paths().items() if name != "data_root"}
        return replace(self, **given)

    def located(self, workspace: Workspace) -> "EvaluationSpec":
        """The spec as workers use it: every recorded path located in ``workspace``, and the real-image
        statistics cached in the workspace (whatever folder an older plan named)."""
        paths = {name: str(workspace.absolute(value)) for name, value in self._paths().items()}
        return replace(self, **paths, cache_dir=str(workspace.cache))

    def _paths(self) -> dict[str, str]:
        """The fields that hold a path: the data, the metric networks' files, and the extractor when it names a
        TorchScript file rather than a registered extractor."""
        names = ["data_root", "inception_weights", "segmenter"]
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


def create_search(store: Store, supernet: str, *, budgets: str | Sequence[str | int], metric: str,
                  strategy: str = "evolution", trials: int = 100, seed: int = 0, multi_objective: bool | None = None,
                  strategy_settings: Mapping[str, Any] | None = None, batch_size: int = 8,
                  macs_size: Sequence[int] | None = None, extractor: str | None = None,
                  inception_weights: str | None = None, segmenter: str | None = None, max_attempts: int = 3,
                  metric_options: Mapping[str, Any] | None = None, workspace: Workspace | None = None) -> SearchRecord:
    """Check every field and create the search (state ``created``); nothing is written when a check fails.

    The one place the CLI (``ganas search start``) and the REST API (``POST /api/searches``) check a search: a
    bad value raises :class:`SearchFieldError` naming the field (see docs/search.md for the list of checks);
    an unknown supernet :class:`~nas.store.NotFoundError`. ``budgets``: MACs as numbers or text (``"2G,500M"``).
    The metric networks' paths are recorded relative to ``workspace`` when inside it, absolute otherwise; the
    data's path is the supernet's, as its record keeps it.
    """
    from evaluators.metric_catalog import get_metric

    record = store.get_supernet(supernet)
    trials, batch_size = fields.TRIALS.check(trials), fields.BATCH_SIZE.check(batch_size)
    seed, max_attempts = fields.SEED.check(seed), fields.MAX_ATTEMPTS.check(max_attempts)
    if multi_objective is not None and not isinstance(multi_objective, bool):
        raise SearchFieldError("multi_objective", f"multi_objective must be true, false or null, got "
                                                  f"{fields.shown(multi_objective)}")
    _check_metric(record, metric)
    _check_strategy_name(strategy)
    _check_image_input(record)
    dataset = dict(record.dataset)
    if "search_split" not in dataset:
        raise SearchSetupError(f"supernet {record.name!r} records no held-out search split; retrain it with "
                               "`ganas train supernet` (it trains on train1 and keeps train2 for search)")
    size = int(dataset.get("size", 256))
    macs_size = _macs_size(macs_size, size)
    space = get_space(record.space)
    macs_of = macs_function(record, macs_size)
    budgets = list(parse_budgets(budgets))
    check_budgets(budgets, macs_of(space.smallest()), record.space)
    multi = len(budgets) > 1 if multi_objective is None else multi_objective
    objectives = [Objective(metric, get_metric(metric).direction)] + ([Objective(MACS, "minimize")] if multi else [])
    settings = _strategy_settings(strategy, space, objectives, macs_of, budgets, seed, strategy_settings)
    paths = _metric_inputs(metric, extractor=extractor, inception_weights=inception_weights, segmenter=segmenter)
    evaluation = EvaluationSpec(
        data_root=dataset["root"], layout=dataset.get("layout"), direction=dataset.get("direction", "AtoB"),
        split=dataset["search_split"], size=size, metrics=(metric,), **paths,
        metric_options={} if metric_options is None else metric_options).recorded(workspace)
    evaluation.options()  # unknown option names and bad values are refused before anything is stored
    plan = SearchPlan(evaluation, batch_size, macs_size, settings)
    return store.create_search(record.name, budgets=budgets, objectives=objectives, strategy=strategy, trials=trials,
                               seed=seed, strategy_settings=plan.strategy, plan=plan.to_dict(),
                               max_attempts=max_attempts)


def _check_image_input(record: SupernetRecord) -> None:
    """Workers feed candidates the dataset's images (RGB, 3 channels): a supernet that takes other inputs (a
    one-hot label map: SPADE) is refused here, not per candidate."""
    from supernet.registry import get_architecture

    input_nc = dict(record.hparams).get("input_nc")
    if input_nc is None or int(input_nc) == 3:
        return
    what = ("one-hot label maps of" if get_architecture(record.architecture).generator_class.takes_label_maps
            else "inputs of")
    raise SearchSetupError(f"supernet {record.name!r} ({record.architecture}) takes {what} {input_nc} channels, but "
                           "search workers feed candidates the dataset's 3-channel images: label-map generators can be "
                           "counted, exported and imported as teachers, not searched on data yet (docs/teachers.md)")


def _check_metric(record: SupernetRecord, metric: Any) -> None:
    from .registry import missing_needs, needs_teacher, search_metrics

    allowed = search_metrics()
    if metric not in allowed:
        raise SearchFieldError("metric", f"unknown metric {fields.shown(metric)}; choose one of {', '.join(allowed)}")
    if needs_teacher(metric):
        _check_teacher_metric(record, metric)
        return
    if metric not in record.metrics:
        missing = missing_needs(metric, record.dataset)
        raise SearchFieldError("metric", (
            f"supernet {record.name!r} was trained on a dataset that can give {', '.join(record.metrics)}, not "
            f"{metric}" + (f" ({metric} needs {'; '.join(missing)})" if missing else "")))


def _check_teacher_metric(record: SupernetRecord, metric: str) -> None:
    """A teacher-fidelity metric compares with the teacher recorded at registration; one that reads a weights file
    (teacher-perceptual: VGG16) needs it where workers look for it (its environment variable, the torch hub cache)."""
    from evaluators.metric_catalog import get_metric
    from foundation.weights import find_weights

    if record.teacher is None:
        raise SearchFieldError("metric", f"{metric} compares subnets with the supernet's teacher, but supernet "
                                         f"{record.name!r} records none; register it with --teacher FILE (`ganas "
                                         "supernet register CHECKPOINT --teacher FILE`), or choose another metric")
    weights = get_metric(metric).weights
    if weights is not None:
        try:
            find_weights(weights)
        except GanasError as exc:
            raise SearchFieldError("metric", f"{metric}: {exc}") from None


def _check_strategy_name(strategy: Any) -> None:
    from .strategies import list_strategies

    if strategy not in list_strategies():
        raise SearchFieldError("strategy", f"unknown strategy {fields.shown(strategy)}; choose one of "
                                           f"{', '.join(list_strategies())}")


def _macs_size(value: Sequence[int] | None, size: int) -> tuple[int, int]:
    if value is None:
        return (size, size)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise SearchFieldError("macs_size", f"macs_size must be [height, width], got {fields.shown(value)}")
    return (fields.MACS_SIDE.check(value[0]), fields.MACS_SIDE.check(value[1]))


def _strategy_settings(strategy: str, space, objectives, macs_of, budgets, seed: int,
                       settings: Mapping[str, Any] | None) -> dict:
    """The strategy's own settings, checked by building the strategy once (unknown keys, bad values)."""
    from .strategies import StrategyError, create_strategy

    if settings is not None and not isinstance(settings, Mapping):
        raise SearchFieldError("strategy_settings", f"strategy_settings must be an object of setting: value, got "
                                                    f"{fields.shown(settings)}")
    settings = dict(settings or {})
    try:
        create_strategy(strategy, space, objectives, macs_of, budgets, seed, settings)
    except (StrategyError, ValueError, TypeError, OverflowError) as exc:  # a sampler's own refusal of a value
        raise SearchFieldError("strategy_settings", f"strategy {strategy}: {exc}") from None
    return settings


def _metric_inputs(metric: str, **paths: Any) -> dict[str, str | None]:
    """The metric-network paths as the plan keeps them, each checked now (on this machine) when given or needed:
    a segmenter for mIoU, a feature extractor (by default Inception, whose weights must be found) for FID/KID."""
    from evaluators.features import check_extractor_inputs
    from evaluators.metric_catalog import get_metric
    from evaluators.metrics import Need
    from evaluators.segmenter import check_segmenter_file
    from foundation.errors import WeightsFileError, WeightsNotFoundError

    for name, value in paths.items():
        if value is not None and (not isinstance(value, (str, os.PathLike)) or not os.fspath(value)):
            raise SearchFieldError(name, f"{name} must be a path or a name, got {fields.shown(value)}")
    paths = {name: None if value is None else os.fspath(value) for name, value in paths.items()}
    needs = get_metric(metric).needs
    segmenter, extractor, weights = paths["segmenter"], paths["extractor"], paths["inception_weights"]
    if segmenter is None and Need.LABELS in needs:
        raise SearchFieldError("segmenter", f"{metric} needs a segmenter: give the path of one (`ganas train "
                                            "segmenter --data DIR --out PATH` writes one, or a TorchScript file)")
    if segmenter is not None:
        try:
            check_segmenter_file(segmenter)
        except GanasError as exc:
            raise SearchFieldError("segmenter", str(exc)) from None
    if Need.FEATURES in needs or extractor is not None or weights is not None:
        try:
            check_extractor_inputs(extractor or "inception", weights)
        except (WeightsNotFoundError, WeightsFileError) as exc:
            raise SearchFieldError("inception_weights", str(exc)) from None
        except GanasError as exc:
            raise SearchFieldError("extractor" if extractor is not None else "inception_weights", str(exc)) from None
    return paths
