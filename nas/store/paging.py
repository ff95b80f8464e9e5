"""A page of a search's candidates, filtered and sorted by the database (not in Python).

:class:`CandidateQuery` says which candidates (status, MACs at most, configs among) and in what order
(a column, or a metric read from the JSON ``metrics`` column); :meth:`nas.store.Store.candidate_page`
runs it with ``OFFSET``/``LIMIT`` and a ``COUNT``. Sort keys are a registry, so the API, the dashboard
and their tests enumerate the same ones. Candidates without the sorted metric come last either way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from foundation.registry import Registry

from .errors import InvalidValueError
from .models import candidates
from .records import CandidateRecord, CandidateStatus, candidate_status

METRIC_PREFIX = "metric:"
METRIC_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

SORT_COLUMNS: Registry[Callable[[], Any]] = Registry("candidate sort key", InvalidValueError, sort=False)
for _name, _column in (("order", "order_index"), ("macs", "macs"), ("params", "params"), ("status", "status"),
                       ("attempts", "attempts"), ("eval_seconds", "eval_seconds"), ("config", "config")):
    SORT_COLUMNS.register(_name, lambda column=_column: candidates.c[column])


def sort_keys() -> tuple[str, ...]:
    """Every sort key: the columns, then ``metric:NAME`` for any metric."""
    return (*SORT_COLUMNS.names(), f"{METRIC_PREFIX}NAME")


@dataclass(frozen=True)
class CandidateQuery:
    """Which candidates of a search, in which order; the default is every one in proposal order."""

    status: CandidateStatus | None = None
    max_macs: int | None = None  # within a MACs budget
    configs: frozenset[str] | None = None  # only these (the front's members, say); empty: none
    sort: str = "order"  # a SORT_COLUMNS key, or "metric:NAME"
    descending: bool = False

    def __post_init__(self) -> None:
        if self.status is not None:
            object.__setattr__(self, "status", candidate_status(self.status))
        if self.max_macs is not None and (isinstance(self.max_macs, bool) or not isinstance(self.max_macs, int)
                                          or self.max_macs < 0):
            raise InvalidValueError(f"max_macs must be a whole number of MACs >= 0, got {self.max_macs!r}")
        self.sort_column()  # an unknown key fails here, before any query

    def sort_column(self) -> Any:
        if self.sort.startswith(METRIC_PREFIX):
            name = self.sort[len(METRIC_PREFIX):]
            if not METRIC_NAME.fullmatch(name):
                raise InvalidValueError(f"sort key {self.sort!r} does not name a metric: use {METRIC_PREFIX}NAME "
                                        "with letters, digits, '_', '.' or '-', e.g. metric:fid")
            return candidates.c.metrics[name].as_float()
        if self.sort not in SORT_COLUMNS:
            raise InvalidValueError(f"unknown sort key {self.sort!r}; sort by one of {', '.join(sort_keys())}")
        return SORT_COLUMNS.get(self.sort)()

    def where(self, query: Any, search_id: int) -> Any:
        query = query.where(candidates.c.search_id == search_id)
        if self.status is not None:
            query = query.where(candidates.c.status == self.status.value)
        if self.max_macs is not None:
            query = query.where(candidates.c.macs <= self.max_macs)
        if self.configs is not None:
            query = query.where(candidates.c.config.in_(sorted(self.configs)))
        return query

    def order(self, query: Any) -> Any:
        column = self.sort_column()
        key = column.desc() if self.descending else column.asc()
        return query.order_by(column.is_(None), key, candidates.c.order_index, candidates.c.id)


@dataclass(frozen=True)
class CandidatePage:
    """One page of a query's candidates, and how many match in all."""

    total: int
    offset: int
    limit: int | None
    records: tuple[CandidateRecord, ...]
