"""Evolution search as in GAN Compression / once-for-all, in ask/tell form.

Per budget: a first population of ``population_size`` uniform samples under that budget; then
each generation keeps the best ``parent_ratio`` of the results that fit the budget as parents
(evaluated results are cached by config, so parents are never proposed again) and refills the
rest, ``mutation_ratio`` of it by mutation (each gene resampled with ``mutation_prob``) and the
rest by uniform crossover of two parents. Children over the budget or already seen are
rejected and redrawn, at most ``max_tries`` times; then a fresh uniform sample stands in.

It runs steady-state: parents are taken from whatever results have been told when ``ask`` is
called, so workers never wait for a whole generation. A result counts as a parent for every
budget it fits under. Defaults are GAN Compression's (population 100, parents 25%, half
mutation, gene mutation probability 0.2).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from supernet.space import Config

from .base import TrialResult, register_strategy, require_fraction, require_int
from .random_search import RandomSearch, SamplingSettings


@dataclass(frozen=True)
class EvolutionSettings(SamplingSettings):
    population_size: int = 100
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutation_prob: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        require_int(self, "population_size", 2)
        require_fraction(self, "parent_ratio")
        require_fraction(self, "mutation_ratio")
        require_fraction(self, "mutation_prob")

    @property
    def num_parents(self) -> int:
        return min(self.population_size - 1, max(1, round(self.parent_ratio * self.population_size)))

    @property
    def children_per_generation(self) -> int:
        return self.population_size - self.num_parents

    @property
    def mutations_per_generation(self) -> int:
        return round(self.mutation_ratio * self.children_per_generation)


@register_strategy
class EvolutionSearch(RandomSearch):
    """Budget-constrained evolution: top parents, mutation and uniform crossover."""

    name = "evolution"
    settings_class = EvolutionSettings

    @property
    def generation(self) -> int:
        """0 while the first population is proposed, then the number of the generation being bred."""
        bred = len(self._seen) - self._initial_size()
        if bred < 0:
            return 0
        per_budget = bred // max(1, len(self.budgets.values))
        return 1 + per_budget // self.settings.children_per_generation

    def _initial_size(self) -> int:
        return self.settings.population_size * max(1, len(self.budgets.values))

    def _batch_context(self, lanes: list[int | None]) -> dict[int | None, list[TrialResult]]:
        return {b: self.ranked(b)[: self.settings.num_parents] for b in lanes}

    def _next_config(self, rng: random.Random, slot: int, budget: int | None, taken: set[Config],
                     parents: dict[int | None, list[TrialResult]]) -> Config | None:
        child = self._breed(rng, slot, budget, parents[budget], taken)
        return child if child is not None else self.sampler.sample(rng, budget, taken)

    def _breed(self, rng: random.Random, slot: int, budget: int | None, parents: list[TrialResult],
               taken: set[Config]) -> Config | None:
        """A child for ``slot`` (None during the first population or when no child is found)."""
        bred = slot - self._initial_size()
        if bred < 0 or not parents:
            return None
        index_in_generation = (bred // max(1, len(self.budgets.values))) % self.settings.children_per_generation
        by_mutation = index_in_generation < self.settings.mutations_per_generation or len(parents) < 2
        for _ in range(self.settings.max_tries):
            child = self._mutate(rng, parents) if by_mutation else self._crossover(rng, parents)
            if child not in taken and self.is_new(child) and self.fits(child, budget):
                return child
        return None

    def _mutate(self, rng: random.Random, parents: list[TrialResult]) -> Config:
        parent = rng.choice(parents).config
        p = self.settings.mutation_prob
        return tuple(rng.choice(choices) if rng.random() < p else gene
                     for gene, choices in zip(parent, self.space.choices))

    def _crossover(self, rng: random.Random, parents: list[TrialResult]) -> Config:
        first, second = rng.sample(parents, 2)
        return tuple(a if rng.random() < 0.5 else b for a, b in zip(first.config, second.config))

