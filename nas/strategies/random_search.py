"""Random search: uniform sampling of new configs under the budgets, with bounded rejection.

With several budgets the draws take turns between them (each budget gets uniform samples of
the configs that fit it), so a small budget is not starved by a large one. Small spaces are
enumerated once, which makes sampling exact and lets exhaustion be detected; large spaces use
rejection sampling with at most ``max_tries`` draws per config, then (for tight budgets, where
rejection rarely succeeds) at most ``max_tries`` configs grown under the budget.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from supernet.space import Config

from .base import Strategy, StrategySettings, register_strategy, require_int


@dataclass(frozen=True)
class SamplingSettings(StrategySettings):
    enumerate_limit: int = 20_000  # spaces up to this size are enumerated instead of rejection-sampled

    def __post_init__(self) -> None:
        super().__post_init__()
        require_int(self, "enumerate_limit", 0)


class FeasibleSampler:
    """Uniform draws among a strategy's unseen configs that fit a budget."""

    def __init__(self, strategy: Strategy, enumerate_limit: int, max_tries: int) -> None:
        self.strategy = strategy
        self.enumerate = strategy.space.size <= enumerate_limit
        self.max_tries = max_tries
        self._fitting: dict[int | None, list[Config]] = {}

    def sample(self, rng: random.Random, budget: int | None, taken: set[Config]) -> Config | None:
        """One new config within ``budget`` not in ``taken``; None when none was found."""
        if self.enumerate:
            candidates = [c for c in self._configs_within(budget) if c not in taken and self.strategy.is_new(c)]
            return rng.choice(candidates) if candidates else None
        for _ in range(self.max_tries):
            config = self.strategy.space.random_config(rng)
            if self._usable(config, budget, taken):
                return config
        if budget is None:
            return None
        for _ in range(self.max_tries):
            config = self._grow(rng, budget)
            if self._usable(config, budget, taken):
                return config
        return None

    def _usable(self, config: Config, budget: int | None, taken: set[Config]) -> bool:
        return config not in taken and self.strategy.is_new(config) and self.strategy.fits(config, budget)

    def _grow(self, rng: random.Random, budget: int) -> Config:
        """A config built up from the smallest one, position by position in random order, each
        position drawn among the widths that still fit the budget.

        Used when rejection finds nothing (a tight budget in a large space): not uniform, but it
        reaches every config that fits, since MACs only grow with a width.
        """
        space = self.strategy.space
        config = list(space.smallest())
        order = list(range(space.num_positions))
        rng.shuffle(order)
        for i in order:
            options = [c for c in space.choices[i]
                       if self.strategy.fits(tuple(config[:i]) + (c,) + tuple(config[i + 1:]), budget)]
            if options:
                config[i] = rng.choice(options)
        return tuple(config)

    def _configs_within(self, budget: int | None) -> list[Config]:
        if budget not in self._fitting:
            self._fitting[budget] = [c for c in self.strategy.space if self.strategy.fits(c, budget)]
        return self._fitting[budget]


def lane_order(lanes: list[int | None], slot: int, exhausted: set[int | None]) -> int | None:
    """The budget whose turn it is at ``slot``, skipping budgets with nothing left to find."""
    for k in range(len(lanes)):
        lane = lanes[(slot + k) % len(lanes)]
        if lane not in exhausted:
            return lane
    raise ValueError("every budget is exhausted")


@register_strategy
class RandomSearch(Strategy):
    """Budget-constrained uniform sampling (the baseline every search is compared with)."""

    name = "random"
    settings_class = SamplingSettings

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sampler = FeasibleSampler(self, self.settings.enumerate_limit, self.settings.max_tries)

    def _propose(self, n: int) -> list[Config]:
        rng = self.batch_rng()
        lanes: list[int | None] = list(self.budgets.values) or [None]
        context = self._batch_context(lanes)
        exhausted: set[int | None] = set()
        out: list[Config] = []
        taken: set[Config] = set()
        slot = len(self._seen)
        while len(out) < n and len(exhausted) < len(lanes):
            budget = lane_order(lanes, slot, exhausted)
            config = self._next_config(rng, slot, budget, taken, context)
            if config is None:
                exhausted.add(budget)
                continue
            out.append(config)
            taken.add(config)
            slot += 1
        return out

    def _batch_context(self, lanes: list[int | None]) -> Any:
        """What one ask needs besides the RNG (subclasses: e.g. the parents per budget)."""
        return None

    def _next_config(self, rng: random.Random, slot: int, budget: int | None, taken: set[Config],
                     context: Any) -> Config | None:
        """One new config within ``budget`` (None: this budget's lane is exhausted)."""
        return self.sampler.sample(rng, budget, taken)
