"""Typed errors of the REST service, and the HTTP status each ganas error is answered with.

Every error the service raises is a :class:`GanasError` (the CLI prints it and exits 2); the
app turns any ``GanasError`` into a JSON ``{"detail": message, "error": class name}`` with the
status found by walking the exception's class hierarchy through :data:`HTTP_STATUS`. A refused field
(:class:`~nas.fields.FieldError`) is a 422 shaped as FastAPI's own: it adds ``field`` and ``errors``.
"""
from __future__ import annotations

from foundation.errors import GanasError
from nas.fields import FieldError
from nas.store import (DuplicateNameError, InvalidValueError, LeaseError, NotFoundError, SearchBusyError,
                       StateTransitionError, StoreConnectionError, UnreadableRowError)


class ServiceError(GanasError):
    """Base class of the service's own errors."""


class TokenRequiredError(ServiceError):
    """Serving on a non-loopback address without an access token."""


class OrchestratorRunningError(ServiceError):
    """A start/resume while an orchestrator still drives the search (a live claim or process)."""


class ActionNotAllowedError(ServiceError):
    """A search action (start, pause, resume, cancel) that the search's state does not allow."""


class LaunchError(ServiceError):
    """The orchestrator process could not be started."""


class SampleNotFoundError(ServiceError):
    """A candidate has no sample image (the worker did not write one)."""


class FinalFileNotFoundError(ServiceError):
    """A final model has no file of that kind in the workspace (not recorded, not written yet, or moved)."""


class FormRejectedError(ServiceError):
    """A dashboard form posted without this server's form token."""


class CrossSiteRequestError(ServiceError):
    """A state-changing request from another site's page, or an API one that is not JSON (see :mod:`.guard`)."""


class HostNotAllowedError(ServiceError):
    """A request whose ``Host`` is not a name the server was started for (DNS rebinding, a wrong name)."""


class AllowedHostsError(ServiceError):
    """``ganas serve``'s allowed hosts cannot be worked out: a malformed ``--allowed-host``, none on 0.0.0.0."""


# The most specific class wins (see :func:`http_status`); add an entry when adding an error type.
HTTP_STATUS: dict[type[BaseException], int] = {
    GanasError: 400,
    InvalidValueError: 400,
    FieldError: 422,  # a refused value of a request field (budgets, seed, workers, ...): the body names it
    NotFoundError: 404,
    SampleNotFoundError: 404,
    FinalFileNotFoundError: 404,
    FormRejectedError: 403,
    CrossSiteRequestError: 403,
    HostNotAllowedError: 421,
    DuplicateNameError: 409,
    StateTransitionError: 409,
    SearchBusyError: 409,
    LeaseError: 409,
    OrchestratorRunningError: 409,
    ActionNotAllowedError: 409,
    LaunchError: 500,
    UnreadableRowError: 500,  # the store holds a row it cannot read: the server's data, not the request
    StoreConnectionError: 503,
}


def http_status(error: BaseException) -> int:
    """The status of the error's most specific registered class (500 for anything unregistered)."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_body(error: GanasError) -> dict:
    """The JSON answer to ``error``: ``detail`` and ``error``; a refused field adds ``field`` and, as a request
    FastAPI refuses itself, ``errors`` with the field's location in the body."""
    body = {"detail": str(error), "error": type(error).__name__}
    if isinstance(error, FieldError):
        body["field"] = error.field
        body["errors"] = [{"loc": ["body", *error.field.split(".")], "msg": str(error), "type": "value_error"}]
    return body
