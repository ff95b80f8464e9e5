"""Typed errors of the loss functions (the CLI turns every ``GanasError`` into one message, exit 2)."""
from foundation.errors import GanasError


class LossConfigError(GanasError):
    """An unknown loss name or an invalid loss setting (a negative weight, an unknown mode)."""


class FeatureMismatchError(GanasError):
    """Student and teacher features (or a feature and its mapping) that cannot be compared."""
