"""Typed errors. The CLI turns every ``GanasError`` into one message and exit status 2."""


class GanasError(Exception):
    """Base class for errors caused by bad input: say what was wrong and how to fix it."""

    exit_code = 2


class ConfigError(GanasError):
    """A malformed or out-of-space channel config string."""


class ArchitectureError(GanasError):
    """An unknown architecture, or arguments it cannot be built with."""


class SearchSpaceError(GanasError):
    """An unknown search space, or one that does not fit a supernet."""


class InputSizeError(GanasError):
    """An input resolution the network cannot process."""


class CheckpointError(GanasError):
    """A checkpoint that is missing, corrupt, or of another architecture."""


class WeightsNotFoundError(GanasError):
    """A pretrained weight file (Inception, VGG16, a segmenter) is not on disk; ganas never downloads one."""
