"""The dashboard: server-rendered HTML pages over the store (supernets, searches, fronts, comparisons, candidates).

Pages are Jinja2 templates (package data in ``templates/``, autoescaped) with one stylesheet in
``static/``. Every page reads and works without JavaScript: the Pareto front is an inline SVG laid out
by :mod:`dashboards.plot`, and a running search's page refreshes itself with a meta refresh. With
JavaScript, ``static/front.js`` and ``static/compare.js`` draw the fronts interactively with plotly.js,
which this server serves from the installed ``plotly`` package (nothing is loaded from outside the
server), from the JSON :mod:`dashboards.chart` embeds. Pages read through :mod:`dashboards.read_model`;
the forms (a search's finalize and its actions) post to this server's page routes (the service refuses
a post from another site), which check their form token and call the functions the REST API calls
(the API itself never accepts the dashboard's cookie). :class:`Dashboard` is what :mod:`webapp` hands
the service as its pages.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from .chart import compare_chart, front_chart
from .plot import front_plot
from .read_model import (FINAL_FILE_KINDS, FINALIZE_DEFAULT_STEPS, CandidateStatus, CandidateTable, DashboardActions,
                         DashboardReader, Download, FieldError, SearchState, download_formats, format_macs, get_actions,
                         get_reader)

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
PAGE_SIZE = 50
REFRESH_SECONDS = 5  # while a search runs, its page reloads this often
PLOTLY_URL = "/static/vendor/plotly.min.js"  # under /static: readable without the login, as the stylesheet


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


def _times(value: float | None) -> str:
    """A ratio as ``1.5×``, ``33.3×`` or ``2,840×`` (empty when unknown)."""
    if value is None:
        return ""
    return f"{value:,.0f}×" if value >= 100 else f"{value:.3g}×"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4g}"


ENVIRONMENT = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters.update(macs=format_macs, when=_when, seconds=_seconds, number=_number, times=_times,
                           signed=_signed, url=lambda text: quote(str(text), safe=""))


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    html = ENVIRONMENT.get_template(template).render(root=root, **values)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code, title=f"Error {status_code}", message=message)


def login_required_page(request: Request, wrong: bool) -> HTMLResponse:
    return render(request, "login.html", 401, title="Access token needed", wrong=wrong)


def plotly_bundle_path() -> Path:
    """plotly.min.js inside the installed ``plotly`` package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def _search_ids(texts: list[str]) -> tuple[list[int], list[str]]:
    """The search ids of a comparison URL (``search`` repeated, or comma-separated), and the words that are not ids."""
    words = [w.strip() for text in texts for w in text.split(",") if w.strip()]
    return [int(w) for w in words if w.isdigit()], [w for w in words if not w.isdigit()]


def _table_link(root: str, search_id: int, table: CandidateTable, metric: str | None, **changes: Any) -> str:
    """The search page with its candidates table as ``table`` says, but for ``changes`` (defaults left out)."""
    table = replace(table, **changes)
    values = (("metric", metric), ("status", None if table.status is None else table.status.value),
              ("budget", table.budget), ("front", 1 if table.front else None),
              ("sort", None if table.sort == "order" else table.sort), ("desc", 1 if table.descending else None),
              ("page", None if table.page == 1 else table.page))
    query = urlencode([(k, v) for k, v in values if v is not None])
    return f"{root}/searches/{search_id}" + (f"?{query}" if query else "")


def _download_link(root: str, search_id: int, what: str, fmt: str, query: str) -> str:
    return f"{root}/searches/{search_id}/{what}.{fmt}" + (f"?{query}" if query else "")


def table_of(status: Optional[str] = None, page: int = Query(1, ge=1), budget: Optional[str] = None,
             front: bool = False, sort: str = "order", desc: bool = False) -> CandidateTable:
    """FastAPI dependency: the candidates table a search page's query asks for (the filter form sends "" for any)."""
    return CandidateTable(_status(status), _whole_or_none(budget, "budget"), front, sort or "order", desc, page,
                          PAGE_SIZE)


def _status(text: str | None) -> CandidateStatus | None:
    if not text:
        return None
    try:
        return CandidateStatus(text)
    except ValueError:
        raise FieldError("status", f"status {text!r} is not a candidate status; use one of "
                                   f"{', '.join(s.value for s in CandidateStatus)}") from None


def _whole_or_none(text: str | None, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise FieldError(what, f"{what} must be a whole number of MACs, got {text!r}")
    return int(text)


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request):
        return RedirectResponse(f"{request.scope.get('root_path', '')}/searches", status_code=307)

    @router.get(PLOTLY_URL)
    def plotly_bundle():
        """plotly.js as the ``plotly`` Python package ships it: served from here, never from a CDN."""
        return FileResponse(plotly_bundle_path(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/supernets", response_class=HTMLResponse)
    def supernets_page(request: Request, reader: DashboardReader = Depends(get_reader)):
        table = reader.supernets()
        return render(request, "supernets.html", title="Supernets", supernets=table.rows, search_counts=table.counts,
                      warnings=table.warnings)

    @router.get("/searches", response_class=HTMLResponse)
    def searches_page(request: Request, supernet: Optional[str] = None, state: Optional[str] = None,
                      reader: DashboardReader = Depends(get_reader)):
        table = reader.searches(supernet, state)
        rows = table.rows
        return render(request, "searches.html", title="Searches", rows=rows, supernet=supernet, state=state,
                      states=[s.value for s in SearchState], warnings=table.warnings,
                      refresh=REFRESH_SECONDS if any(r.search.state == SearchState.RUNNING for r in rows) else None)

    @router.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, search: list[str] = Query([]), metric: Optional[str] = None,
                     reader: DashboardReader = Depends(get_reader)):
        """Several searches' fronts on one chart: ``/compare?search=1&search=2`` (a link to share)."""
        root = request.scope.get("root_path", "")
        ids, bad = _search_ids(search)
        view = reader.compare(ids, metric) if not bad else None
        chart = None
        if view is not None and view.comparison is not None:
            chart = compare_chart(view.comparison,
                                  lambda sid, config: f"{root}/searches/{sid}/candidates/{quote(config, safe='')}")
        problem = (f"{', '.join(repr(b) for b in bad)} is not a search id: give whole numbers, as "
                   "/compare?search=1&search=2") if bad else view.problem
        groups = reader.compare([]).groups if view is None else view.groups
        asked = tuple(ids) if view is None else view.asked
        share = f"{root}/compare?" + urlencode([("search", i) for i in asked] + ([("metric", metric)] if metric else []))
        return render(request, "compare.html", 400 if bad else view.status_code, title="Compare searches",
                      view=view, chart=chart, problem=problem, groups=groups, asked=asked, share=share)

    @router.get("/searches/{search_id}", response_class=HTMLResponse)
    def search_page(request: Request, search_id: int, metric: Optional[str] = None,
                    table: CandidateTable = Depends(table_of), reader: DashboardReader = Depends(get_reader)):
        view = reader.search(search_id, table, metric)
        summary, listed = view.summary, view.candidates
        root = request.scope.get("root_path", "")
        teacher = view.reference.teacher
        plot = front_plot(summary.front, summary.search.budgets,
                          lambda config: f"{root}/searches/{search_id}/candidates/{quote(config, safe='')}",
                          teacher_value=None if teacher is None else teacher.value(summary.objective.metric),
                          teacher_macs=None if teacher is None else teacher.macs)
        chart = front_chart(summary, view.records, view.finals, view.reference, f"{root}/searches/{search_id}/candidates/")
        pages = max(1, math.ceil(listed.total / PAGE_SIZE))
        page = listed.offset // PAGE_SIZE + 1
        metric_names = sorted({name for c in listed.records for name in c.metrics} | {summary.objective.metric})

        def link(**changes: Any) -> str:
            return _table_link(root, search_id, table, metric, **changes)

        filters = urlencode([(k, value) for k, values in parse_qs(request.url.query).items() if k != "page"
                             for value in values])
        front_query = urlencode([("metric", metric)] if metric else [])
        downloads = {f"{what} {fmt.upper()}": _download_link(root, search_id, what, fmt, query)
                     for what, query in (("candidates", filters), ("front", front_query))
                     for fmt in download_formats()}
        links = {"prev": link(page=page - 1) if page > 1 else None,
                 "next": link(page=page + 1) if page < pages else None}
        sorts = {key: link(sort=key, descending=table.sort == key and not table.descending, page=1)
                 for key in ("order", "config", "status", "macs", "params", "attempts", "eval_seconds",
                             *(f"metric:{m}" for m in metric_names))}
        return render(request, "search.html", title=f"Search {search_id}", summary=summary, plot=plot, chart=chart,
                      candidates=listed.records, metric_names=metric_names, table=table, page=page, pages=pages,
                      total=listed.total, links=links, link=link, sorts=sorts, downloads=downloads,
                      status=None if table.status is None else table.status.value, request_metric=metric,
                      statuses=[s.value for s in CandidateStatus],
                      launch=view.launch, plan=view.plan, view=view, teacher=teacher, file_kinds=FINAL_FILE_KINDS,
                      default_steps=FINALIZE_DEFAULT_STEPS,
                      refresh=REFRESH_SECONDS if view.running or view.finalizing else None)

    @router.get("/searches/{search_id}/candidates.{fmt}")
    def candidates_file(search_id: int, fmt: str, metric: Optional[str] = None,
                        table: CandidateTable = Depends(table_of), reader: DashboardReader = Depends(get_reader)):
        """The candidates the page's table filter selects, as ``GET /api/searches/{id}/candidates.{fmt}``."""
        return _attachment(reader.candidates_file(search_id, table, fmt, metric))

    @router.get("/searches/{search_id}/front.{fmt}")
    def front_file(search_id: int, fmt: str, metric: Optional[str] = None,
                   reader: DashboardReader = Depends(get_reader)):
        """The front, as ``GET /api/searches/{id}/front.{fmt}``."""
        return _attachment(reader.front_file(search_id, fmt, metric))

    @router.post("/searches/{search_id}/finalize")
    async def finalize_form(request: Request, search_id: int, actions: DashboardActions = Depends(get_actions)):
        """The search page's finalize form (urlencoded): start it, then back to the page's final models."""
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)
        await run_in_threadpool(actions.finalize, search_id, form)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/searches/{search_id}#finals", status_code=303)

    @router.post("/searches/{search_id}/actions/{name}")
    async def action_form(request: Request, search_id: int, name: str, actions: DashboardActions = Depends(get_actions)):
        """A search page's action button (urlencoded form): apply it as the API would, then back to the page."""
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)
        await run_in_threadpool(actions.act, search_id, name, form)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/searches/{search_id}", status_code=303)

    @router.get("/searches/{search_id}/candidates/{config}", response_class=HTMLResponse)
    def candidate_page(request: Request, search_id: int, config: str, reader: DashboardReader = Depends(get_reader)):
        view = reader.candidate(search_id, config)
        return render(request, "candidate.html", title=f"{config} (search {search_id})", search=view.search,
                      candidate=view.candidate, supernet=view.supernet, positions=view.positions,
                      has_sample=view.has_sample, sample_file=view.sample_file, reference=view.reference,
                      vs=view.vs_teacher, directions={o.metric: o.direction for o in view.search.objectives})

    @router.get("/searches/{search_id}/finals/{config}/files/{kind}")
    def final_file(search_id: int, config: str, kind: str, reader: DashboardReader = Depends(get_reader)):
        """A final model's file, as ``GET /api/searches/{id}/finals/{config}/files/{kind}`` serves it."""
        path = reader.final_file(search_id, config, kind)
        return FileResponse(path, media_type="application/octet-stream",
                            filename=f"search{search_id}-{config}{path.suffix}")

    @router.get("/searches/{search_id}/candidates/{config}/sample.png")
    def sample_image(search_id: int, config: str, reader: DashboardReader = Depends(get_reader)):
        return FileResponse(reader.sample(search_id, config), media_type="image/png")

    return router


def _attachment(download: Download) -> Response:
    return Response(download.body, media_type=download.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download.filename}"'})


class Dashboard:
    """The dashboard as the service's HTML pages (``nas.service.app.WebPages``): routes, stylesheet, error pages."""

    static_dir = STATIC_DIR

    def router(self) -> APIRouter:
        return dashboard_router()

    def error_page(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        return error_page(request, status_code, message)

    def login_page(self, request: Request, wrong: bool) -> HTMLResponse:
        return login_required_page(request, wrong)
