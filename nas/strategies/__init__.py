"""Search strategies: they propose configs (``ask``) and learn from results (``tell``), nothing else.

Registered by name: ``random``, ``evolution`` (GAN Compression / once-for-all), ``nsga2`` and
``tpe`` (Optuna samplers). Build one with :func:`create_strategy`; list them with
:func:`list_strategies`.
"""
from .base import (MACS, Objective, Strategy, StrategyError, StrategySettings, TrialResult, create_strategy,
                   get_strategy_class, list_strategies, make_settings, register_strategy)
from .evolution import EvolutionSearch, EvolutionSettings
from .optuna_samplers import NSGA2Settings, NSGA2Strategy, OptunaStrategy, TPESettings, TPEStrategy
from .random_search import RandomSearch, SamplingSettings

__all__ = [
    "MACS", "Objective", "Strategy", "StrategyError", "StrategySettings", "TrialResult", "create_strategy",
    "get_strategy_class", "list_strategies", "make_settings", "register_strategy",
    "RandomSearch", "SamplingSettings", "EvolutionSearch", "EvolutionSettings",
    "OptunaStrategy", "NSGA2Strategy", "NSGA2Settings", "TPEStrategy", "TPESettings",
]
