"""The dashboard: server-rendered HTML pages over the store (supernets, searches, fronts, candidates).

Pages are Jinja2 templates (package data in ``templates/``, autoescaped) with one stylesheet in
``static/``; the Pareto front is an inline SVG laid out by :mod:`dashboards.plot`. Nothing is
loaded from outside the server and no JavaScript is needed: a running search's page refreshes
itself with a meta refresh. Pages only read; actions go through the REST API.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from foundation.errors import GanasError
from nas.budget import format_macs
from nas.service.context import ServiceContext, get_context
from nas.service.summary import finished_count, progress_fraction, summarize
from nas.store import CandidateRecord, CandidateStatus, NotFoundError, SearchRecord, SearchState
from nas.store.records import thaw

from .plot import front_plot

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
PAGE_SIZE = 50
REFRESH_SECONDS = 5  # while a search runs, its page reloads this often


def _when(timestamp: float | None) -> str:
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1e4:  # counts and areas: 1,234,567 rather than 1.235e+06
        return f"{round(value):,}"
    return f"{value:.4g}"


ENVIRONMENT = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters.update(macs=format_macs, when=_when, seconds=_seconds, number=_number,
                           url=lambda text: quote(str(text), safe=""))


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    html = ENVIRONMENT.get_template(template).render(root=root, **values)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code, title=f"Error {status_code}", message=message)


def login_required_page(request: Request, wrong: bool) -> HTMLResponse:
    return render(request, "login.html", 401, title="Access token needed", wrong=wrong)


@dataclass(frozen=True)
class SearchRow:
    """A line of the searches table."""

    search: SearchRecord
    finished: int
    done: int
    failed: int
    progress: float


@dataclass(frozen=True)
class Position:
    """One position of a config string, with the choices its search space offers."""

    index: int
    name: str
    width: int
    choices: tuple[int, ...]


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
    import json

    from nas.search_setup import SearchPlan

    settings = dict(search.strategy_settings)
    try:
        plan = SearchPlan.from_search(search)
    except (KeyError, TypeError, ValueError):  # not made by search_setup, or by a release with another plan layout
        return tuple((key, json.dumps(thaw(value))) for key, value in settings.items())
    spec = plan.evaluation
    own = ", ".join(f"{k} {json.dumps(v)}" for k, v in plan.strategy.items()) or "defaults"
    return (("strategy settings", own),
            ("evaluation", f"{', '.join(spec.metrics)} on split {spec.split} of {spec.data_root} ({spec.size} px, "
                           f"{spec.samples} sample rows)"),
            ("batches", f"{plan.batch_size} configs asked and evaluated together; MACs counted at "
                        f"{plan.macs_size[0]}x{plan.macs_size[1]}"))


def _page_link(root: str, search_id: int, status: str | None, page: int) -> str:
    query = urlencode([(k, v) for k, v in (("status", status), ("page", page)) if v not in (None, 1)])
    return f"{root}/searches/{search_id}" + (f"?{query}" if query else "")


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request):
        return RedirectResponse(f"{request.scope.get('root_path', '')}/searches", status_code=307)

    @router.get("/supernets", response_class=HTMLResponse)
    def supernets_page(request: Request, ctx: ServiceContext = Depends(get_context)):
        searches = ctx.store.list_searches()
        per_supernet = {s.id: sum(1 for x in searches if x.supernet_id == s.id) for s in ctx.store.list_supernets()}
        return render(request, "supernets.html", title="Supernets", supernets=ctx.store.list_supernets(),
                      search_counts=per_supernet)

    @router.get("/searches", response_class=HTMLResponse)
    def searches_page(request: Request, supernet: Optional[str] = None, state: Optional[str] = None,
                      ctx: ServiceContext = Depends(get_context)):
        rows = []
        for search in ctx.store.list_searches(supernet or None, state or None):
            counts = ctx.store.count_candidates(search.id)
            rows.append(SearchRow(search, finished_count(counts), counts.done, counts.failed,
                                  progress_fraction(counts, search.trials)))
        return render(request, "searches.html", title="Searches", rows=rows, supernet=supernet, state=state,
                      states=[s.value for s in SearchState],
                      refresh=REFRESH_SECONDS if any(r.search.state == SearchState.RUNNING for r in rows) else None)

    @router.get("/searches/{search_id}", response_class=HTMLResponse)
    def search_page(request: Request, search_id: int, status: Optional[CandidateStatus] = None,
                    page: int = Query(1, ge=1), metric: Optional[str] = None,
                    ctx: ServiceContext = Depends(get_context)):
        summary = summarize(ctx.store, search_id, metric)
        root = request.scope.get("root_path", "")
        plot = front_plot(summary.front, summary.search.budgets,
                          lambda config: f"{root}/searches/{search_id}/candidates/{quote(config, safe='')}")
        listed = ctx.store.candidates(search_id, status)
        pages = max(1, math.ceil(len(listed) / PAGE_SIZE))
        page = min(page, pages)
        shown: tuple[CandidateRecord, ...] = listed[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        metric_names = sorted({name for c in shown for name in c.metrics})
        status_value = None if status is None else status.value
        links = {"prev": _page_link(root, search_id, status_value, page - 1) if page > 1 else None,
                 "next": _page_link(root, search_id, status_value, page + 1) if page < pages else None}
        running = summary.search.state == SearchState.RUNNING
        return render(request, "search.html", title=f"Search {search_id}", summary=summary, plot=plot,
                      candidates=shown, metric_names=metric_names, status=status_value, page=page, pages=pages,
                      total=len(listed), links=links, statuses=[s.value for s in CandidateStatus],
                      launch=ctx.launcher.info(search_id), plan=_plan_facts(summary.search),
                      refresh=REFRESH_SECONDS if running else None)

    @router.get("/searches/{search_id}/candidates/{config}", response_class=HTMLResponse)
    def candidate_page(request: Request, search_id: int, config: str, ctx: ServiceContext = Depends(get_context)):
        search = ctx.store.get_search(search_id)
        candidate = ctx.store.find_candidate(search_id, config)
        if candidate is None:
            raise NotFoundError(f"search {search_id} has no candidate {config!r}")
        supernet = ctx.store.get_supernet(search.supernet_id)
        return render(request, "candidate.html", title=f"{config} (search {search_id})", search=search,
                      candidate=candidate, supernet=supernet, positions=_positions(supernet.space, config),
                      has_sample=ctx.sample_path(search_id, config) is not None,
                      sample_file=ctx.workspace.samples_dir(search_id) / f"{config}.png")

    @router.get("/searches/{search_id}/candidates/{config}/sample.png")
    def sample_image(search_id: int, config: str, ctx: ServiceContext = Depends(get_context)):
        return FileResponse(ctx.require_sample(search_id, config), media_type="image/png")

    return router
