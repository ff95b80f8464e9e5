"""What the dashboard shows, read from a workspace's store: the one module of :mod:`dashboards` that knows ``nas``.

Pages ask a :class:`DashboardReader` (one per request, over the service's context) for rows and
views, frozen records ready to render; they never hold the store, the launcher or the search
space. The figures come from :mod:`nas.summary`, :mod:`nas.reference` (the teacher's ratios),
:mod:`nas.comparison` and :mod:`nas.service.downloads`, the same code as the REST API's, so the API and
the pages always agree; the candidates table is filtered, sorted and paged by the database
(:class:`nas.store.CandidateQuery`). Everything the reader does only reads; the changes a page can ask
for (a finalize; start, pause, resume, cancel) go through :class:`DashboardActions` to the same
functions as ``POST /api/searches/{id}/finalize`` and ``POST /api/searches/{id}/{action}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from fastapi import Request

from nas.budget import format_macs
from nas.fields import FieldError
from nas.reference import Comparison, SearchReference, compare_final, reference_of, search_reference, times_fewer
from nas.comparison import FrontComparison, compare_searches, metric_groups
from nas.service.context import FINAL_FILE_KINDS, ServiceContext, get_context
from nas.service.downloads import FORMATS, Download, candidate_query, candidates_download, front_download
from nas.service.control import ACTIONS, SearchAction, apply_action
from nas.service.errors import ActionNotAllowedError
from nas.service.launcher import FinalizeOptions, LaunchInfo, LaunchOptions
from nas.summary import SearchFront, SearchSummary, finished_count, progress_fraction, summary_of
from nas.store import (CandidatePage, CandidateQuery, CandidateRecord, CandidateStatus, FinalRecord, NotFoundError, SearchRecord,
                       SearchState, SupernetRecord, UnreadableRow)
from nas.store.records import thaw
from nas.teacher import TeacherInfo
from foundation.errors import GanasError

__all__ = ["FINAL_FILE_KINDS", "FINALIZE_DEFAULT_STEPS", "CandidateRecord", "CandidateStatus", "CandidateTable", "CandidateView",
           "Comparison", "CompareView", "DashboardActions", "FrontComparison", "NotFoundError", "DashboardReader", "Download", "FieldError", "FinalRow", "Position", "SearchFront",
           "SearchReference", "SearchRow", "StalePageError", "SearchSummary", "SearchView", "SearchState", "Table", "download_formats", "format_macs", "get_actions",
           "get_reader"]

FINALIZE_DEFAULT_STEPS = 1000  # as ganas search finalize


def finalize_purpose(search_id: int) -> str:
    """What a search page's finalize form token is for."""
    return f"finalize:{search_id}"


def action_purpose(search_id: int) -> str:
    """What a search page's action forms' token is for (start, pause, resume, cancel)."""
    return f"action:{search_id}"


class StalePageError(ActionNotAllowedError):
    """An action sent from a page that showed the search in another state than it is in now (another client
    acted on it since): refused, so nobody pauses what they saw running but someone else already cancelled."""


@dataclass(frozen=True)
class SearchRow:
    """A line of the searches table."""

    search: SearchRecord
    finished: int
    done: int
    failed: int
    progress: float


@dataclass(frozen=True)
class Table:
    """The rows of a listing page, and a warning for each row of the store it left out because it cannot be read."""

    rows: tuple
    warnings: tuple[str, ...] = ()
    counts: Mapping[int, int] = field(default_factory=dict)  # supernets: searches per supernet id


def _warnings(unreadable: Sequence[UnreadableRow]) -> tuple[str, ...]:
    return tuple(row.describe() for row in unreadable)


@dataclass(frozen=True)
class Position:
    """One position of a config string, with the choices its search space offers."""

    index: int
    name: str
    width: int
    choices: tuple[int, ...]


@dataclass(frozen=True)
class FinalRow:
    """A line of the final models table: the record, and how it compares with the supernet's teacher."""

    record: FinalRecord
    vs_teacher: Comparison | None  # x fewer MACs; after fine-tuning against the teacher (same split)
    speedup: float | None  # teacher latency / its latency: x faster on the CPU

    @property
    def metric_names(self) -> tuple[str, ...]:
        r = self.record
        return tuple(dict.fromkeys([*r.after, *r.before, *r.teacher]))


@dataclass(frozen=True)
class CandidateTable:
    """What a search page's candidates table shows: a filter (status, within a budget, front members only), an
    order (a sort key of :func:`nas.store.sort_keys`), and which page of ``page_size`` rows."""

    status: CandidateStatus | None = None
    budget: int | None = None
    front: bool = False
    sort: str = "order"
    descending: bool = False
    page: int = 1
    page_size: int = 50

    def query(self, store, search_id: int, metric: str | None):
        return candidate_query(store, search_id, self.status, self.budget, self.front, self.sort, self.descending,
                               metric)


@dataclass(frozen=True)
class SearchView:
    """A search page: its summary (front, best per budget), its candidates of one status, how it was run, its
    teacher, its final models and what its finalize form needs."""

    summary: SearchSummary
    candidates: CandidatePage  # the table's page, as CandidateTable asked
    launch: LaunchInfo | None  # the process (orchestrator or finalizer) this server started, if any
    plan: tuple[tuple[str, str], ...]  # (label, text) lines of the search's settings
    reference: SearchReference
    finals: tuple[FinalRow, ...] = ()
    form_token: str = ""  # the finalize form's token
    records: tuple[CandidateRecord, ...] = ()  # every candidate, proposal order: the interactive chart's points
    action_token: str = ""  # the action forms' token

    @property
    def actions(self) -> tuple[SearchAction, ...]:
        """The actions the search's state allows now, in the registry's order."""
        return tuple(a for a in ACTIONS.values() if self.summary.search.state in a.allowed_from)

    @property
    def running(self) -> bool:
        return self.summary.search.state == SearchState.RUNNING

    @property
    def finalizing(self) -> bool:
        return self.launch is not None and self.launch.running and self.launch.job == "finalizer"

    def vs_teacher(self, macs: int, params: int, metrics: Mapping[str, float]) -> Comparison | None:
        teacher = self.reference.teacher
        return None if teacher is None else teacher.compare(macs, params, metrics)


@dataclass(frozen=True)
class CandidateView:
    """A candidate page: the candidate, its search and supernet, its widths against the space's choices."""

    search: SearchRecord
    candidate: CandidateRecord
    supernet: SupernetRecord
    positions: tuple[Position, ...]  # empty when the space is unknown here or the config does not fit it
    has_sample: bool
    sample_file: Path  # where the worker writes the sample grid
    reference: SearchReference

    @property
    def vs_teacher(self) -> Comparison | None:
        teacher, c = self.reference.teacher, self.candidate
        return None if teacher is None else teacher.compare(c.macs, c.params, c.metrics)


@dataclass(frozen=True)
class CompareView:
    """A comparison page: the fronts of the searches asked for (None when they cannot be compared: ``problem``
    says why), and every search's id under its metric, to choose from."""

    comparison: FrontComparison | None
    groups: Mapping[str, tuple[int, ...]]
    asked: tuple[int, ...]
    problem: str | None = None
    status_code: int = 200


class DashboardReader:
    """The dashboard's queries over the service's store; see the module docstring."""

    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        self._store = context.store

    def supernets(self) -> Table:
        """Every supernet, oldest first, and how many searches each has (``counts``, by supernet id)."""
        listing = self._store.supernet_listing()
        searches = self._store.list_searches()
        counts = {s.id: sum(1 for x in searches if x.supernet_id == s.id) for s in listing.records}
        return Table(listing.records, _warnings(listing.unreadable), counts)

    def searches(self, supernet: str | None = None, state: str | None = None) -> Table:
        """The searches table (:class:`SearchRow`), oldest first, optionally of one supernet and/or in one state."""
        listing = self._store.search_listing(supernet or None, state or None)
        rows = []
        for search in listing.records:
            counts = self._store.count_candidates(search.id)
            rows.append(SearchRow(search, finished_count(counts), counts.done, counts.failed,
                                  progress_fraction(counts, search.trials)))
        return Table(tuple(rows), _warnings(listing.unreadable))

    def search(self, search_id: int, table: CandidateTable = CandidateTable(), metric: str | None = None) -> SearchView:
        """A search page: its summary, and the page of its candidates that ``table`` asks for (the last page if
        ``table.page`` is past it)."""
        search = self._store.get_search(search_id)
        records = self._store.candidates(search_id)
        summary = summary_of(search, records, metric)
        supernet = self._store.get_supernet(summary.search.supernet_id)
        teacher = TeacherInfo.from_dict(supernet.teacher)
        finals = tuple(_final_row(f, teacher) for f in self._store.finals(search_id))
        members = frozenset(p.config for p in summary.front.front) if table.front else None
        query = CandidateQuery(table.status, table.budget, members, table.sort or "order", table.descending)
        page = self._store.candidate_page(search_id, query, (table.page - 1) * table.page_size, table.page_size)
        if not page.records and page.total:  # past the last page: show the last one
            last = (page.total - 1) // table.page_size
            page = self._store.candidate_page(search_id, query, last * table.page_size, table.page_size)
        return SearchView(summary, page, self._context.launcher.info(search_id), _plan_facts(summary.search),
                          reference_of(supernet, search), finals,
                          self._context.auth.form_token(finalize_purpose(search_id)), records,
                          self._context.auth.form_token(action_purpose(search_id)))

    def compare(self, search_ids: Sequence[int], metric: str | None = None) -> CompareView:
        """The fronts of ``search_ids`` overlaid; an unknown id or searches of different metrics give a view with
        the ``problem`` in words (and the 404 or 400 the page answers) instead of raising."""
        groups, asked = metric_groups(self._store), tuple(dict.fromkeys(search_ids))
        if not asked:
            return CompareView(None, groups, asked)
        try:
            return CompareView(compare_searches(self._store, asked, metric), groups, asked)
        except NotFoundError as exc:
            return CompareView(None, groups, asked, f"{exc}; nothing to compare it with", 404)
        except GanasError as exc:  # different metrics, an unknown metric, too many
            return CompareView(None, groups, asked, str(exc), 400)

    def candidates_file(self, search_id: int, table: CandidateTable, fmt: str, metric: str | None = None) -> Download:
        """Every candidate ``table``'s filter selects, in its order, as a CSV or JSON file (as the API's)."""
        return candidates_download(self._store, search_id, table.query(self._store, search_id, metric), fmt)

    def front_file(self, search_id: int, fmt: str, metric: str | None = None) -> Download:
        """The search's front as a CSV or JSON file (as the API's)."""
        return front_download(self._store, search_id, fmt, metric)

    def candidate(self, search_id: int, config: str) -> CandidateView:
        search = self._store.get_search(search_id)
        candidate = self._store.find_candidate(search_id, config)
        if candidate is None:
            raise NotFoundError(f"search {search_id} has no candidate {config!r}")
        supernet = self._store.get_supernet(search.supernet_id)
        return CandidateView(search, candidate, supernet, _positions(supernet.space, config),
                             self._context.sample_path(search_id, config) is not None,
                             self._context.workspace.samples_dir(search_id) / f"{config}.png",
                             search_reference(self._store, search_id))

    def final_file(self, search_id: int, config: str, kind: str) -> Path:
        """A final model's file (checkpoint, onnx, pt2) as the store records it, inside the workspace."""
        return self._context.final_file(search_id, config, kind)

    def sample(self, search_id: int, config: str) -> Path:
        """The candidate's sample image file (a typed error when the worker has not written it)."""
        return self._context.require_sample(search_id, config)


def download_formats() -> tuple[str, ...]:
    """The file formats candidates and fronts download as (csv, json)."""
    return tuple(FORMATS.names())


def get_reader(request: Request) -> DashboardReader:
    """FastAPI dependency: a reader over the context the service put on the app."""
    return DashboardReader(get_context(request))


class DashboardActions:
    """The changes the dashboard asks for, from a search page's forms: finalize it, start, pause, resume or cancel it.

    A form is checked (this server's form token; one from another site was refused before, by the
    service) and then handed to the function the REST API calls (:func:`nas.service.finalizing.start_finalize`
    for ``POST /api/searches/{id}/finalize``, :func:`nas.service.control.apply_action` for ``POST
    /api/searches/{id}/{action}``): the same checks, the same launcher, the same answers. An action also
    carries the state the page showed; if the search is no longer in it, nothing is done (:class:`StalePageError`).
    """

    def __init__(self, context: ServiceContext) -> None:
        self._context = context

    def act(self, search_id: int, name: str, form: Mapping[str, Sequence[str]]) -> SearchRecord:
        """Apply the action ``name`` (start, pause, resume, cancel) from a search page's form: fields ``form_token``,
        ``seen_state`` (the state the page showed), and for start/resume ``workers`` and ``executor``."""
        def first(field_name: str, default: str) -> str:
            return (form.get(field_name) or [default])[0].strip()

        self._context.auth.check_form(action_purpose(search_id), first("form_token", ""))
        action = ACTIONS.get(name)
        store = self._context.store
        now, seen = store.get_search(search_id).state, first("seen_state", "")
        if now.value != seen:
            raise StalePageError(f"search {search_id} is {now.value} now, not {seen or 'what this page showed'}: "
                                 f"someone changed it after this page was loaded, so it was not {_past(name)}. "
                                 "Reload the page to see it as it is, and choose again")
        options = None
        if action.spawns:
            options = LaunchOptions(workers=_whole(first("workers", "2"), "workers"), executor=first("executor", "ray"))
        return apply_action(store, self._context.launcher, search_id, name, options).search

    def finalize(self, search_id: int, form: Mapping[str, Sequence[str]]) -> None:
        """Start a finalize from the form's fields: ``steps``, ``workers``, ``budget`` (repeated), ``front``, ``recipe``."""
        from nas.service.finalizing import start_finalize

        def first(name: str, default: str) -> str:
            return (form.get(name) or [default])[0].strip()

        self._context.auth.check_form(finalize_purpose(search_id), first("form_token", ""))
        options = FinalizeOptions(steps=_whole(first("steps", str(FINALIZE_DEFAULT_STEPS)), "steps"),
                                  budgets=tuple(sorted({_whole(b, "budget") for b in form.get("budget", [])})),
                                  front=bool(form.get("front")), workers=_whole(first("workers", "2"), "workers"),
                                  executor=first("executor", "ray"), recipe=first("recipe", "gan-compression"))
        start_finalize(self._context.store, self._context.workspace, self._context.launcher, search_id,
                       options)


def get_actions(request: Request) -> DashboardActions:
    """FastAPI dependency: the dashboard's actions over the service's context."""
    return DashboardActions(get_context(request))


def _past(action: str) -> str:
    return {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}.get(action, action)


def _whole(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FieldError(what, f"{what} must be a whole number, got {text!r}") from None


def _final_row(record: FinalRecord, teacher: TeacherInfo | None) -> FinalRow:
    return FinalRow(record, compare_final(teacher, record), times_fewer(record.teacher_latency_ms, record.latency_ms))


def _positions(space_name: str, config: str) -> tuple[Position, ...]:
    from supernet import get_space
    from supernet.space import parse_config_numbers

    try:
        space = get_space(space_name)
        numbers = parse_config_numbers(config)
    except GanasError:
        return ()
    if len(numbers) != space.num_positions:
        return ()
    return tuple(Position(i, n, w, c) for i, (n, w, c) in enumerate(zip(space.position_names, numbers,
                                                                          space.choices)))


def _plan_facts(search: SearchRecord) -> tuple[tuple[str, str], ...]:
    """The search's own settings as (label, text) lines: its plan if ``ganas search`` made it, else the raw settings."""
    from nas.search_setup import SearchPlan, SearchPlanError

    raw = tuple((key, json.dumps(thaw(value))) for key, value in search.strategy_settings.items())
    if search.plan is None:  # created through the store directly: only the strategy's settings
        return raw
    try:
        plan = SearchPlan.from_search(search)
    except SearchPlanError:  # a plan version this release does not read: shown as stored
        return raw + (("plan", json.dumps(thaw(search.plan))),)
    spec = plan.evaluation
    own = ", ".join(f"{k} {json.dumps(v)}" for k, v in plan.strategy.items()) or "defaults"
    return (("strategy settings", own),
            ("evaluation", f"{', '.join(spec.metrics)} on split {spec.split} of {spec.data_root} ({spec.size} px, "
                           f"{spec.samples} sample rows)"),
            ("batches", f"{plan.batch_size} configs asked and evaluated together; MACs counted at "
                        f"{plan.macs_size[0]}x{plan.macs_size[1]}"))
