"""Optuna samplers (NSGA-II, TPE) behind the ``Strategy`` contract, through Optuna's ask/tell.

Each position of a config is one categorical parameter ``c0``, ``c1``, ... over its choices;
the study's directions are the objectives'. The study lives in the RDB storage passed in (the
store's database, so one file holds a whole search) or in memory; on resume the study is loaded
by name (``load_if_exists``) and no replay is needed: finished trials become the strategy's
results, and results told again are ignored.

Trials that never become candidates are still told, so the sampler learns and the study stays
consistent:

* over the largest budget: constraint ``macs`` (MACs / largest budget - 1, > 0) and state
  PRUNED; constrained samplers rank it infeasible, no objective value is invented;
* a config proposed or told before: state FAIL (user attribute ``ganas_duplicate``);
* an evaluation that failed: FAIL (``ganas_failed``); evaluated but infeasible for the caller
  (e.g. latency): COMPLETE with constraint ``infeasible`` = 1.

After an over-budget or duplicate suggestion a repaired config is enqueued for the next ask
(user attribute ``ganas_repaired_from``): the suggestion with widths stepped down until it fits,
or a new neighbour one width away. Without it, TPE and NSGA-II keep re-suggesting their best
configs on a categorical space, and a tight budget in a large space starves them.

Pending trials (asked, never told; e.g. the orchestrator stopped) stay RUNNING on resume: their
configs are listed by ``pending()`` and are never proposed again, and telling their results
later completes them. A RUNNING trial without a config (a crash inside ``ask``) is marked FAIL.
"""
from __future__ import annotations

import hashlib
import random
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from supernet.space import Config, format_config

from ..objectives import MACS
from .base import (Strategy, StrategyError, StrategySettings, TrialResult, register_strategy,
                   require_fraction, require_int)

CONFIG_ATTR = "ganas_config"
FAILED_ATTR = "ganas_failed"
DUPLICATE_ATTR = "ganas_duplicate"
REPAIRED_ATTR = "ganas_repaired_from"
SPACE_ATTR = "ganas_space"
OBJECTIVES_ATTR = "ganas_objectives"
SQLITE_TIMEOUT_S = 30  # the store and the study share one SQLite file


@dataclass(frozen=True)
class NSGA2Settings(StrategySettings):
    population_size: int = 50
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require_int(self, "population_size", 2)
        require_fraction(self, "crossover_prob")
        require_fraction(self, "swapping_prob")


@dataclass(frozen=True)
class TPESettings(StrategySettings):
    n_startup_trials: int = 10
    n_ei_candidates: int = 24

    def __post_init__(self) -> None:
        super().__post_init__()
        require_int(self, "n_startup_trials", 0)
        require_int(self, "n_ei_candidates", 1)


class OptunaStrategy(Strategy):
    """A strategy whose proposals come from an Optuna sampler and whose state is its study."""

    keeps_own_state = True

    def __init__(self, *args: Any, storage: Any = None, study_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import optuna

        self._optuna = optuna
        self._params = [f"c{i}" for i in range(self.space.num_positions)]
        self._distributions = {p: optuna.distributions.CategoricalDistribution(list(choices))
                               for p, choices in zip(self._params, self.space.choices)}
        self._live: dict[Config, Any] = {}  # pending config -> its optuna Trial
        self.study = self._open_study(storage, study_name)
        self._load_trials()

    @abstractmethod
    def _make_sampler(self, seed: int) -> Any:
        """The Optuna sampler, seeded."""

    # -- study ---------------------------------------------------------------------------------
    def _open_study(self, storage: Any, study_name: str | None) -> Any:
        optuna = self._optuna
        if storage is not None and not study_name:
            raise StrategyError(f"strategy {self.name} with a storage needs a study name (e.g. the search's name)")
        if storage is None:
            storage = optuna.storages.InMemoryStorage()
        elif isinstance(storage, str):
            storage = self._rdb_storage(storage)
        self._storage = storage  # its public API finds a resumed RUNNING trial by number (see _load_trials)
        directions = [o.direction for o in self.objectives]
        study = optuna.create_study(storage=storage, study_name=study_name or f"ganas-{self.name}",
                                    sampler=self._make_sampler(self.seed), directions=directions,
                                    load_if_exists=True)
        found = [d.name.lower() for d in study.directions]
        if found != directions:
            raise StrategyError(f"Optuna study {study.study_name!r} has directions {found}, this search needs "
                                f"{directions}; use another study name")
        space = {"name": self.space.name, "choices": [list(c) for c in self.space.choices]}
        objectives = [o.metric for o in self.objectives]
        for key, label, wanted in ((SPACE_ATTR, "search space", space), (OBJECTIVES_ATTR, "objectives", objectives)):
            stored = study.user_attrs.get(key)
            if stored is None:
                study.set_user_attr(key, wanted)
            elif stored != wanted:
                raise StrategyError(f"Optuna study {study.study_name!r} was made for {label} {stored}, "
                                    f"not {wanted}; use another study name")
        existing = len(study.get_trials(deepcopy=False))
        if existing:
            # A resumed study must not replay the first session's random stream: reseed from its size.
            digest = hashlib.sha256(f"{self.seed}:{existing}".encode()).digest()
            study.sampler = self._make_sampler(int.from_bytes(digest[:4], "little"))
        return study

    def _rdb_storage(self, url: str) -> Any:
        from sqlalchemy.engine import make_url

        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - any unparsable URL is reported below
            raise StrategyError(f"Optuna storage {url!r} is not a database URL (e.g. sqlite:///search.db)") from None
        from nas.store.engine import server_engine_kwargs

        engine_kwargs = ({"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite")
                         else server_engine_kwargs(make_url(url)) if url.startswith("postgresql") else {})
        try:
            return self._optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except Exception as exc:  # noqa: BLE001 - driver errors vary by database
            raise StrategyError(f"cannot open Optuna storage {shown}: {type(exc).__name__}: {exc}") from None

    def _load_trials(self) -> None:
        """Make the study's finished trials this strategy's results and keep its pending ones."""
        state = self._optuna.trial.TrialState
        study_id = self._storage.get_study_id_from_name(self.study.study_name)
        for frozen in self.study.get_trials(deepcopy=False):
            text = frozen.user_attrs.get(CONFIG_ATTR)
            if text is None:
                if frozen.state == state.RUNNING:
                    self.study.tell(frozen.number, state=state.FAIL)
                continue
            config = self.space.parse(text)
            macs = self.macs(config)
            if frozen.state == state.RUNNING:
                self._seen.add(config)
                trial_id = self._storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
                self._live[config] = self._optuna.trial.Trial(self.study, trial_id)
            elif frozen.state == state.COMPLETE:
                values = {o.metric: v for o, v in zip(self.objectives, frozen.values) if o.metric != MACS}
                feasible = frozen.constraints.get("infeasible", 0.0) <= 0
                self._record(TrialResult(config, macs, values, feasible=feasible))
            elif frozen.state == state.FAIL and frozen.user_attrs.get(FAILED_ATTR):
                self._record(TrialResult(config, macs, failed=True))

    # -- ask / tell ----------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Config]:
        rng = self.batch_rng()
        out: list[Config] = []
        for _ in range(n):
            config = self._ask_one(rng, set(out))
            if config is None:
                break
            out.append(config)
        return out

    def _ask_one(self, rng: random.Random, taken: set[Config]) -> Config | None:
        """One new feasible config from the sampler, within ``max_tries`` suggestions."""
        state = self._optuna.trial.TrialState
        largest = self.budgets.largest
        for _ in range(self.settings.max_tries):
            trial = self.study.ask(self._distributions)
            config = tuple(int(trial.params[p]) for p in self._params)
            macs = self.macs(config)
            trial.set_user_attr(CONFIG_ATTR, format_config(config))
            if config in taken or not self.is_new(config):
                trial.set_user_attr(DUPLICATE_ATTR, True)
                self.study.tell(trial, state=state.FAIL)
                self._enqueue(self._neighbour(rng, config, taken), REPAIRED_ATTR, config)
                continue
            if largest is not None:
                trial.set_constraint("macs", macs / largest - 1.0)
                if macs > largest:
                    self.study.tell(trial, state=state.PRUNED)
                    self._enqueue(self._shrunk(rng, config, taken), REPAIRED_ATTR, config)
                    continue
            self._live[config] = trial
            return config
        return None

    # -- repairs: the next ask gets a usable config close to an unusable suggestion --------------
    def _enqueue(self, config: Config | None, attr: str, origin: Config) -> None:
        if config is not None:
            self.study.enqueue_trial(dict(zip(self._params, config)), user_attrs={attr: format_config(origin)})

    def _neighbour(self, rng: random.Random, config: Config, taken: set[Config]) -> Config | None:
        """A new feasible config one width away from an already seen one (TPE and NSGA-II
        re-suggest their best configs on categorical spaces; without this they stall)."""
        for _ in range(self.settings.max_tries):
            i = rng.randrange(self.space.num_positions)
            others = [c for c in self.space.choices[i] if c != config[i]]
            if not others:
                continue
            candidate = config[:i] + (rng.choice(others),) + config[i + 1:]
            if candidate not in taken and self.is_new(candidate) and self.fits(candidate):
                return candidate
        return None

    def _shrunk(self, rng: random.Random, config: Config, taken: set[Config]) -> Config | None:
        """The suggestion with randomly chosen widths stepped down until it fits the largest budget."""
        shrunk = list(config)
        while not self.fits(tuple(shrunk)):
            wider = [i for i, c in enumerate(shrunk) if c != self.space.choices[i][-1]]
            if not wider:
                return None
            i = rng.choice(wider)
            choices = self.space.choices[i]
            shrunk[i] = choices[choices.index(shrunk[i]) + 1]
        candidate = tuple(shrunk)
        return candidate if candidate not in taken and self.is_new(candidate) else None

    def _observe(self, results: list[TrialResult]) -> None:
        state = self._optuna.trial.TrialState
        for result in results:
            trial = self._live.pop(result.config, None)
            if trial is None:
                self._add_finished(result)
            elif result.failed:
                trial.set_user_attr(FAILED_ATTR, True)
                self.study.tell(trial, state=state.FAIL)
            else:
                trial.set_constraint("infeasible", 0.0 if result.feasible else 1.0)
                self.study.tell(trial, values=self._values(result))

    def _add_finished(self, result: TrialResult) -> None:
        """A result for a config this study never proposed (e.g. replayed into a fresh in-memory study)."""
        create = self._optuna.trial.create_trial
        common = dict(params=dict(zip(self._params, result.config)), distributions=self._distributions,
                      user_attrs={CONFIG_ATTR: format_config(result.config)})
        if result.failed:
            common["user_attrs"][FAILED_ATTR] = True
            self.study.add_trial(create(state=self._optuna.trial.TrialState.FAIL, **common))
            return
        constraints = {"infeasible": 0.0 if result.feasible else 1.0}
        if self.budgets.largest is not None:
            constraints["macs"] = result.macs / self.budgets.largest - 1.0
        self.study.add_trial(create(values=self._values(result), constraints=constraints, **common))

    def _values(self, result: TrialResult) -> list[float]:
        return [float(result.value(o)) for o in self.objectives]


@register_strategy
class NSGA2Strategy(OptunaStrategy):
    """Multi-objective NSGA-II (constrained domination handles the budget)."""

    name = "nsga2"
    settings_class = NSGA2Settings

    def _make_sampler(self, seed: int) -> Any:
        s = self.settings
        return self._optuna.samplers.NSGAIISampler(population_size=s.population_size, crossover_prob=s.crossover_prob,
                                                   swapping_prob=s.swapping_prob, seed=seed)


@register_strategy
class TPEStrategy(OptunaStrategy):
    """Tree-structured Parzen estimator (single or multi-objective, constraint-aware)."""

    name = "tpe"
    settings_class = TPESettings

    def _make_sampler(self, seed: int) -> Any:
        s = self.settings
        return self._optuna.samplers.TPESampler(n_startup_trials=s.n_startup_trials,
                                                n_ei_candidates=s.n_ei_candidates, seed=seed)
