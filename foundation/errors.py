"""The error root of ganas and the errors several packages raise. The CLI turns every
``GanasError`` into one message and exit status 2."""
from __future__ import annotations


class GanasError(Exception):
    """Base class for errors caused by bad input: say what was wrong and how to fix it."""

    exit_code = 2


class AlreadyRegisteredError(GanasError, ValueError):
    """A name registered twice in one registry (a plug-in clashing with a built-in, or a typo)."""


class WeightsNotFoundError(GanasError):
    """A pretrained weight file (Inception, VGG16, a segmenter) is not on disk; ganas never downloads one."""


class WeightsFileError(GanasError):
    """A pretrained weight file exists but cannot be read, or holds another network's weights."""
