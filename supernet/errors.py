"""Typed errors of generators, search spaces and checkpoints, under ganas's root :class:`GanasError`."""
from foundation.errors import GanasError


class ConfigError(GanasError):
    """A malformed or out-of-space channel config string."""


class ArchitectureError(GanasError):
    """An unknown architecture, or arguments it cannot be built with."""


class SearchSpaceError(GanasError):
    """An unknown search space, or one that does not fit a supernet."""


class InputSizeError(GanasError):
    """An input resolution the network cannot process."""


class InputChannelsError(GanasError):
    """Inputs of another number of channels than the network takes (images given to a label-map generator)."""


class CheckpointError(GanasError):
    """A checkpoint that is missing, corrupt, or of another architecture."""
