"""The ``Strategy`` contract (ask a batch of configs, tell results) and the strategy registry.

Lifecycle: the orchestrator builds a strategy from the search's space, objectives, closed-form
MACs function, budgets, seed and settings; it calls ``ask(n)`` for configs to evaluate and
``tell(results)`` as evaluations finish. Strategies only propose: they never touch the store
or Ray. On resume the orchestrator builds a fresh strategy with the same arguments and tells it
the completed candidates again (replay). Random and evolution draw each batch from an RNG keyed
by (seed, results told, configs seen), so after a replay they propose exactly what the
uninterrupted strategy would have proposed at the same point; Optuna strategies keep their
state in their study instead.

Guarantees of every strategy: ``ask`` never returns a config over the largest budget, nor one it
proposed or was told before; when no new feasible config turns up within a bounded number of
tries, ``ask`` returns fewer configs (possibly none) instead of looping.
"""
from __future__ import annotations

import dataclasses
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

from foundation.errors import GanasError
from foundation.registry import Registry
from supernet.space import ChannelSearchSpace, Config, format_config

from ..budget import Budgets, check_budgets
from ..objectives import MACS, Objective
from ..pareto import pareto_ranks


class StrategyError(GanasError):
    """An unknown strategy, bad settings or objectives, or results that do not fit the search."""


@dataclass(frozen=True)
class TrialResult:
    """What an evaluation of one config produced.

    ``failed``: the evaluation crashed and has no values. ``feasible=False``: it was evaluated
    but violates a constraint the caller measured (e.g. a latency budget).
    """

    config: Config
    macs: int
    values: Mapping[str, float] = field(default_factory=dict, hash=False)
    feasible: bool = True
    failed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", tuple(int(c) for c in self.config))
        object.__setattr__(self, "values", MappingProxyType({k: float(v) for k, v in self.values.items()}))

    def value(self, objective: Objective) -> float | None:
        if objective.metric == MACS:
            return float(self.macs)
        return self.values.get(objective.metric)


@dataclass(frozen=True)
class StrategySettings:
    """Settings every strategy has; subclasses add their own fields."""

    max_tries: int = 200  # attempts to make one new feasible config before giving up on it

    def __post_init__(self) -> None:
        require_int(self, "max_tries", 1)


def require_int(settings: object, name: str, low: int) -> None:
    """Settings check: ``name`` is an integer of at least ``low``."""
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise StrategyError(f"setting {name} must be an integer >= {low}, got {value!r}")


def require_fraction(settings: object, name: str, low: float = 0.0, high: float = 1.0) -> None:
    """Settings check: ``name`` is a number in [low, high]."""
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise StrategyError(f"setting {name} must be a number in [{low}, {high}], got {value!r}")


class Strategy(ABC):
    """Proposes configs of ``space`` under the budgets and learns from told results."""

    name: ClassVar[str]
    settings_class: ClassVar[type[StrategySettings]] = StrategySettings
    # True: the strategy restores itself from its own storage (Optuna studies); False: the
    # orchestrator rebuilds it by replaying the stored asks and tells, which reproduces it exactly.
    keeps_own_state: ClassVar[bool] = False

    def __init__(self, space: ChannelSearchSpace, objectives: Sequence[Objective],
                 macs_of: Callable[[Config], int], budgets: Sequence[int] = (), seed: int = 0,
                 settings: StrategySettings | Mapping[str, Any] | None = None, *,
                 storage: Any = None, study_name: str | None = None) -> None:
        """``storage``/``study_name``: where a strategy that keeps state may keep it (an RDB URL,
        normally the store's database); strategies rebuilt by replay ignore them."""
        self.space = space
        self.objectives = _check_objectives(objectives)
        self.macs_of = macs_of
        self.budgets = Budgets(tuple(budgets))
        self.seed = int(seed)
        self.settings = make_settings(self.settings_class, settings)
        self._macs: dict[Config, int] = {}
        check_budgets(self.budgets.values, self.macs(space.smallest()), space.name)
        self._results: list[TrialResult] = []
        self._told: dict[Config, TrialResult] = {}
        self._seen: set[Config] = set()

    # -- the contract -------------------------------------------------------------------------
    def ask(self, n: int) -> list[Config]:
        """Up to ``n`` new configs within the largest budget (fewer when none can be found)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise StrategyError(f"ask needs a non-negative number of configs, got {n!r}")
        proposals = self._propose(n) if n else []
        for config in proposals:
            if not self.is_new(config) or not self.fits(config):  # the contract, checked once here
                raise RuntimeError(f"strategy {self.name} proposed {format_config(config)}: seen before or "
                                   "over the largest budget")
            self._seen.add(config)
        return proposals

    def tell(self, results: Iterable[TrialResult]) -> None:
        """Record finished evaluations; a config told twice keeps its first result."""
        results = list(results)
        for result in results:  # all or nothing: a bad record must not leave half a batch told
            self._check_result(result)
        fresh = []
        for result in results:
            if result.config in self._told:
                continue
            self._record(result)
            fresh.append(result)
        if fresh:
            self._observe(fresh)

    def _record(self, result: TrialResult) -> None:
        self._told[result.config] = result
        self._results.append(result)
        self._seen.add(result.config)

    def pending(self) -> list[Config]:
        """Configs proposed and not yet told (sorted); after a resume, Optuna trials left RUNNING."""
        return sorted(self._seen.difference(self._told))

    @property
    def results(self) -> tuple[TrialResult, ...]:
        """Every told result, in the order told."""
        return tuple(self._results)

    @abstractmethod
    def _propose(self, n: int) -> list[Config]:
        """At most ``n`` distinct configs, none seen before, each within the largest budget."""

    def _observe(self, results: list[TrialResult]) -> None:
        """Hook for strategies that learn incrementally (results are already recorded)."""

    # -- helpers for implementations -----------------------------------------------------------
    def macs(self, config: Config) -> int:
        """MACs of a config from the caller's closed form, cached by config."""
        cached = self._macs.get(config)
        if cached is None:
            value = self.macs_of(config)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise StrategyError(f"macs_of({format_config(config)}) returned {value!r}; expected a MACs count")
            cached = self._macs[config] = int(value)
        return cached

    def fits(self, config: Config, budget: int | None = None) -> bool:
        """Within ``budget`` (default: the largest budget; always true without budgets)."""
        limit = self.budgets.largest if budget is None else budget
        return limit is None or self.macs(config) <= limit

    def is_new(self, config: Config) -> bool:
        return config not in self._seen

    def batch_rng(self) -> random.Random:
        """The RNG of one ask: a function of the seed and of what the strategy has seen."""
        return random.Random(f"{self.name}:{self.seed}:{len(self._results)}:{len(self._seen)}")

    def ranked(self, budget: int | None = None) -> list[TrialResult]:
        """Usable results within ``budget``, best first.

        Order: Pareto rank over the objectives, then the first objective that is not MACs,
        then fewer MACs, then the config string (so the order never depends on telling order).
        """
        usable = [r for r in self._results if not r.failed and r.feasible and self.fits(r.config, budget)
                  and all(r.value(o) is not None for o in self.objectives)]
        if not usable:
            return []
        points = [[r.value(o) for o in self.objectives] for r in usable]
        directions = [o.direction for o in self.objectives]
        ranks = pareto_ranks(points, directions) if len(self.objectives) > 1 else [0] * len(usable)
        primary = next((o for o in self.objectives if o.metric != MACS), self.objectives[0])
        keyed = sorted(zip(ranks, usable), key=lambda rr: (rr[0], primary.oriented(rr[1].value(primary)),
                                                            rr[1].macs, format_config(rr[1].config)))
        return [r for _, r in keyed]

    def _check_result(self, result: TrialResult) -> None:
        if not isinstance(result, TrialResult):
            raise StrategyError(f"tell expects TrialResult records, got {type(result).__name__}")
        if not self.space.contains(result.config):
            raise StrategyError(f"told config {format_config(result.config)} is not in search space {self.space.name}")
        if not result.failed:
            missing = [o.metric for o in self.objectives if result.value(o) is None]
            if missing:
                raise StrategyError(f"result for {format_config(result.config)} lacks objective value(s) "
                                    f"{', '.join(missing)}; mark it failed=True if the evaluation failed")
            broken = [o.metric for o in self.objectives if not math.isfinite(result.value(o))]
            if broken:
                raise StrategyError(f"result for {format_config(result.config)} has non-finite "
                                    f"{', '.join(broken)}; mark it failed=True instead")


def _check_objectives(objectives: Sequence[Any]) -> tuple[Objective, ...]:
    objectives = tuple(Objective.coerce(o) for o in objectives)
    if not objectives:
        raise StrategyError("a search needs at least one objective (e.g. Objective('fid', 'minimize'))")
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise StrategyError(f"objective names must be distinct: {', '.join(names)}")
    return objectives


def make_settings(cls: type[StrategySettings], given: StrategySettings | Mapping[str, Any] | None) -> StrategySettings:
    """Settings from an instance, a mapping (CLI, REST, database) or defaults; unknown keys are errors."""
    if given is None:
        return cls()
    if isinstance(given, cls):
        return given
    if isinstance(given, StrategySettings):
        raise StrategyError(f"settings of type {type(given).__name__} given where {cls.__name__} is needed")
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise StrategyError(f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    try:
        return cls(**dict(given))
    except TypeError as exc:
        raise StrategyError(f"bad settings {dict(given)!r}: {exc}") from None


_STRATEGIES: Registry[type[Strategy]] = Registry("search strategy", StrategyError, key="name")
# register_strategy is a class decorator: a strategy is available by its ``name``
register_strategy, list_strategies, get_strategy_class = _STRATEGIES.add, _STRATEGIES.names, _STRATEGIES.get


def create_strategy(name: str, space: ChannelSearchSpace, objectives: Sequence[Objective],
                    macs_of: Callable[[Config], int], budgets: Sequence[int] = (), seed: int = 0,
                    settings: StrategySettings | Mapping[str, Any] | None = None, *,
                    storage: Any = None, study_name: str | None = None) -> Strategy:
    """Build a registered strategy by name (see :class:`Strategy` for the arguments)."""
    return get_strategy_class(name)(space, objectives, macs_of, budgets, seed, settings,
                                    storage=storage, study_name=study_name)
