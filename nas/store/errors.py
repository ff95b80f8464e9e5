"""Typed store errors: each says what was wrong and what to do (the CLI prints it, exit 2)."""
from __future__ import annotations

from foundation.errors import GanasError


class StoreError(GanasError):
    """Base class of every error raised by :class:`nas.store.Store`."""


class StoreUrlError(StoreError):
    """A database URL that cannot be parsed, or whose driver is not installed."""


class StoreConnectionError(StoreError):
    """The database cannot be reached or opened."""


class ReadOnlyStoreError(StoreError):
    """A write asked of a store opened read-only."""


class EmptyStoreError(StoreError):
    """A store opened read-only that holds no ganas tables yet (nothing was ever written to it)."""


class SchemaVersionError(StoreError):
    """The database's schema version is newer than, or unknown to, this ganas."""


class NotFoundError(StoreError):
    """No supernet, search or candidate with the given name or id."""


class DuplicateNameError(StoreError):
    """A supernet name already registered with different contents."""


class InvalidValueError(StoreError):
    """An argument outside what the store accepts (state, status, budget, metric, ...)."""


class StateTransitionError(StoreError):
    """A search state change that the search lifecycle does not allow."""


class SearchBusyError(StoreError):
    """Another live orchestrator holds the search (or this one lost its claim)."""


class LeaseError(StoreError):
    """A candidate completion or failure by someone who does not hold its lease."""


class UnreadableRowError(StoreError):
    """A row the store holds but cannot turn into a record (written by hand, or by a ganas that checked less);
    ``row`` says which and why. Listings leave such rows out and report them instead of failing."""

    def __init__(self, row) -> None:
        super().__init__(row.describe())
        self.row = row
