"""The search store: supernets, searches and candidates in SQL (SQLite by default, any SQLAlchemy URL).

The database is the search service's source of truth: the orchestrator leases candidates from
it, workers' results land in it, and a stopped search resumes from it. See :class:`Store`.
"""
from .engine import Database, absolute_url, as_url
from .errors import (DuplicateNameError, EmptyStoreError, InvalidValueError, LeaseError, NotFoundError,
                     ReadOnlyStoreError, SchemaVersionError, SearchBusyError, StateTransitionError,
                     StoreConnectionError, StoreError, StoreUrlError, UnreadableRowError)
from .models import SCHEMA_VERSION
from .records import (LOST_LEASES_LIMIT, SEARCH_TRANSITIONS, AddResult, CandidateCounts, CandidateRecord,
                      CandidateStatus, FinalRecord, FinalStatus, FrozenDict, Listing, NewCandidate, NewFinal,
                      Objective, SearchRecord, SearchState, SupernetRecord, UnreadableRow)
from .paging import CandidatePage, CandidateQuery, sort_keys
from .schema import MIGRATIONS, Migration, ensure_schema, register_migration
from .store import Store

__all__ = [
    "AddResult", "CandidateCounts", "CandidatePage", "CandidateQuery", "CandidateRecord", "CandidateStatus", "Database",
    "FinalRecord", "FinalStatus", "Listing", "NewFinal", "UnreadableRow", "UnreadableRowError",
    "DuplicateNameError", "EmptyStoreError", "FrozenDict", "InvalidValueError", "LOST_LEASES_LIMIT", "LeaseError",
    "MIGRATIONS", "Migration", "NewCandidate", "NotFoundError", "Objective", "ReadOnlyStoreError", "SCHEMA_VERSION",
    "SEARCH_TRANSITIONS", "SchemaVersionError", "SearchBusyError", "SearchRecord", "SearchState",
    "StateTransitionError", "Store", "StoreConnectionError", "StoreError", "StoreUrlError", "SupernetRecord",
    "absolute_url", "as_url", "ensure_schema", "register_migration", "sort_keys",
]
