"""Which way a number is better: the one vocabulary of metrics, objectives, Pareto fronts and the store.

Kept apart from :mod:`evaluators.metrics` so that code which only names a direction (the store,
the Pareto front) does not import torch.
"""
MINIMIZE = "minimize"
MAXIMIZE = "maximize"
DIRECTIONS = (MINIMIZE, MAXIMIZE)
