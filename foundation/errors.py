"""The error root of ganas, the errors several packages raise, and how an error is written down. The CLI
turns every ``GanasError`` into one message and exit status 2."""
from __future__ import annotations

import re


class GanasError(Exception):
    """Base class for errors caused by bad input: say what was wrong and how to fix it."""

    exit_code = 2


class AlreadyRegisteredError(GanasError, ValueError):
    """A name registered twice in one registry (a plug-in clashing with a built-in, or a typo)."""


class WeightsNotFoundError(GanasError):
    """A pretrained weight file (Inception, VGG16, a segmenter) is not on disk; ganas never downloads one."""


class WeightsFileError(GanasError):
    """A pretrained weight file exists but cannot be read, or holds another network's weights."""


# ANSI escape sequences (colours, cursor moves) as terminals and Ray's tracebacks write them
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[ -/]*[0-~])")  # CSI, OSC, others
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what is left that a terminal or a web page would mangle


def clean_message(text: str) -> str:
    """``text`` without ANSI escape sequences and control characters (newlines and tabs stay), stripped."""
    return _CONTROL.sub("", _ANSI.sub("", str(text))).strip()


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, for storing and showing: one function wherever errors are stored.

    A wrapper that carries the original exception as ``cause`` (Ray's ``RayTaskError`` for an exception
    raised on a worker, with the remote traceback in its text) is described by that original exception.
    """
    seen = set()
    while isinstance(getattr(exc, "cause", None), BaseException) and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.cause  # type: ignore[attr-defined]
    message = clean_message(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
