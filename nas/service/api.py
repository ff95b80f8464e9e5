"""The REST API under ``/api``: supernets, searches, their actions, candidates, fronts, samples and final models.

Handlers are plain functions (FastAPI runs them in its thread pool, the store is thread-safe);
every bad input raises a typed :class:`GanasError` that the app answers with a JSON error and
the status of :data:`nas.service.errors.HTTP_STATUS`.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse

from nas.store import CandidateQuery, CandidateStatus, NotFoundError, Store, UnreadableRow

from . import schemas
from .context import ServiceContext, get_context
from .control import ACTIONS, apply_action
from .creation import create_search, register_supernet
from .downloads import Download, candidate_query, candidates_download, front_document, front_download
from .finalizing import start_finalize
from nas.reference import search_reference
from nas.summary import summarize
from nas.teacher import TeacherInfo

MAX_PAGE = 1000
ERRORS = {**{status: {"model": schemas.ErrorOut} for status in (400, 401, 404, 409)},
          422: {"model": schemas.ValidationErrorOut}}


def api_router() -> APIRouter:
    router = APIRouter(responses=ERRORS)

    @router.get("/supernets", response_model=list[schemas.SupernetOut], tags=["supernets"])
    def list_supernets(response: Response, ctx: ServiceContext = Depends(get_context)):
        """Every registered supernet, oldest first (one the store cannot read is named in a ``Warning`` header)."""
        listing = ctx.store.supernet_listing()
        warn_unreadable(response, listing.unreadable)
        return [schemas.SupernetOut.of(s) for s in listing.records]

    @router.post("/supernets", response_model=schemas.SupernetOut, status_code=201, tags=["supernets"])
    def post_supernet(body: schemas.SupernetCreate, ctx: ServiceContext = Depends(get_context)):
        """Register a supernet checkpoint that is on the server's disk."""
        return schemas.SupernetOut.of(register_supernet(ctx.store, ctx.workspace, body.checkpoint, body.name))

    @router.get("/supernets/{name}", response_model=schemas.SupernetOut, tags=["supernets"])
    def get_supernet(name: str, ctx: ServiceContext = Depends(get_context)):
        return schemas.SupernetOut.of(ctx.store.get_supernet(name))

    @router.get("/searches", response_model=list[schemas.SearchOut], tags=["searches"])
    def list_searches(response: Response, supernet: Optional[str] = None, state: Optional[str] = None,
                      ctx: ServiceContext = Depends(get_context)):
        """Searches, oldest first; optionally of one supernet and/or in one state. A search the store cannot read
        is left out and named in a ``Warning`` header (``199 ganas "search 7 cannot be read ..."``)."""
        listing = ctx.store.search_listing(supernet, state)
        warn_unreadable(response, listing.unreadable)
        return [schemas.SearchOut.of(s) for s in listing.records]

    @router.post("/searches", response_model=schemas.SearchOut, status_code=201, tags=["searches"])
    def post_search(body: schemas.SearchCreate, ctx: ServiceContext = Depends(get_context)):
        """Create a search (state ``created``); start it with ``POST /api/searches/{id}/start``."""
        return schemas.SearchOut.of(create_search(ctx.store, ctx.workspace, body))

    @router.get("/searches/{search_id}", response_model=schemas.SearchDetail, tags=["searches"])
    def get_search(search_id: int, metric: Optional[str] = None, ctx: ServiceContext = Depends(get_context)):
        """State, candidate counts, progress, best candidate per budget and hypervolume, next to the teacher."""
        summary = summarize(ctx.store, search_id, metric)
        return schemas.SearchDetail.of(summary, ctx.launcher.info(search_id), search_reference(ctx.store, search_id))

    for name, action in ACTIONS.items():
        router.add_api_route(f"/searches/{{search_id}}/{name}", _action_endpoint(name), methods=["POST"],
                             response_model=schemas.ActionOut, tags=["searches"], summary=f"{name}: {action.summary}",
                             name=f"{name}_search")

    @router.get("/searches/{search_id}/candidates", response_model=schemas.CandidatePage, tags=["candidates"])
    def list_candidates(search_id: int, status: Optional[CandidateStatus] = None, offset: int = Query(0, ge=0),
                        limit: int = Query(100, ge=1, le=MAX_PAGE), filters: CandidateFilters = Depends(),
                        ctx: ServiceContext = Depends(get_context)):
        """The search's candidates, a page at a time, filtered and sorted by the database: optionally of one status,
        within a MACs budget (``max_macs``), only the front's members (``front=true``), sorted by ``sort``
        (``order``, ``macs``, ``params``, ``status``, ``attempts``, ``eval_seconds``, ``config`` or
        ``metric:NAME``; candidates without that metric last) and ``descending``."""
        page = ctx.store.candidate_page(search_id, filters.query(ctx.store, search_id, status), offset, limit)
        reference = search_reference(ctx.store, search_id)
        return schemas.CandidatePage(total=page.total, offset=offset, limit=limit,
                                     status=None if status is None else status.value,
                                     items=[schemas.CandidateOut.of(c, reference) for c in page.records])

    @router.get("/searches/{search_id}/candidates.{fmt}", tags=["candidates"], response_class=Response,
                responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
    def download_candidates(search_id: int, fmt: str, status: Optional[CandidateStatus] = None,
                            filters: CandidateFilters = Depends(), ctx: ServiceContext = Depends(get_context)):
        """Every candidate the filters select (as ``GET .../candidates``), as a ``csv`` or ``json`` file."""
        return attachment(candidates_download(ctx.store, search_id, filters.query(ctx.store, search_id, status), fmt))

    @router.get("/searches/{search_id}/candidates/{config}", response_model=schemas.CandidateOut,
                tags=["candidates"])
    def get_candidate(search_id: int, config: str, ctx: ServiceContext = Depends(get_context)):
        ctx.store.get_search(search_id)
        record = ctx.store.find_candidate(search_id, config)
        if record is None:
            raise NotFoundError(f"search {search_id} has no candidate {config!r}")
        return schemas.CandidateOut.of(record, search_reference(ctx.store, search_id))

    @router.get("/searches/{search_id}/candidates/{config}/sample.png", response_class=FileResponse,
                tags=["candidates"], responses={200: {"content": {"image/png": {}}}})
    def get_sample(search_id: int, config: str, ctx: ServiceContext = Depends(get_context)):
        """The sample image grid the worker wrote for the candidate."""
        return FileResponse(ctx.require_sample(search_id, config), media_type="image/png")

    @router.get("/searches/{search_id}/front", response_model=schemas.FrontOut, tags=["searches"])
    def get_front(search_id: int, metric: Optional[str] = None, ctx: ServiceContext = Depends(get_context)):
        """The Pareto front of the done candidates: MACs (minimised) against the metric."""
        return front_document(ctx.store, search_id, metric)

    @router.get("/searches/{search_id}/front.{fmt}", tags=["searches"], response_class=Response,
                responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
    def download_front(search_id: int, fmt: str, metric: Optional[str] = None,
                       ctx: ServiceContext = Depends(get_context)):
        """The front (as ``GET .../front``) as a ``csv`` file (a row per point, ``on_front`` marks members) or a
        ``json`` one."""
        return attachment(front_download(ctx.store, search_id, fmt, metric))

    @router.get("/searches/{search_id}/finals", response_model=list[schemas.FinalOut], tags=["finals"])
    def list_finals(search_id: int, ctx: ServiceContext = Depends(get_context)):
        """The search's finalize jobs and final models, in the order they were queued."""
        search = ctx.store.get_search(search_id)
        teacher = TeacherInfo.from_dict(ctx.store.get_supernet(search.supernet_id).teacher)
        return [schemas.FinalOut.of(f, teacher) for f in ctx.store.finals(search_id)]

    @router.get("/searches/{search_id}/finals/{config}/files/{kind}", response_class=FileResponse, tags=["finals"],
                responses={200: {"content": {"application/octet-stream": {}}}})
    def get_final_file(search_id: int, config: str, kind: str, ctx: ServiceContext = Depends(get_context)):
        """A final model's file: its checkpoint (``.pt``), or its ``onnx`` or ``pt2`` export."""
        path = ctx.final_file(search_id, config, kind)
        return FileResponse(path, media_type="application/octet-stream",
                            filename=f"search{search_id}-{config}{path.suffix}")

    @router.post("/searches/{search_id}/finalize", response_model=schemas.FinalizeOut, status_code=202,
                 tags=["finals"])
    def post_finalize(search_id: int, body: schemas.FinalizeRequest, ctx: ServiceContext = Depends(get_context)):
        """Fine-tune, measure and export the chosen subnets: checked as ``ganas search finalize`` checks them, then
        run by a ``ganas search finalize`` process (see ``GET .../finals`` for the results)."""
        options = body.options()
        started = start_finalize(ctx.store, ctx.workspace, ctx.launcher, search_id, options)
        return schemas.FinalizeOut.of(search_id, options.steps, started)

    return router


class CandidateFilters:
    """The query parameters that filter and sort a candidates listing or download (besides ``status``)."""

    def __init__(self, max_macs: Optional[int] = Query(None, ge=0), front: bool = False, sort: str = "order",
                 descending: bool = False, metric: Optional[str] = None) -> None:
        self.max_macs, self.front, self.sort, self.descending, self.metric = max_macs, front, sort, descending, metric

    def query(self, store: Store, search_id: int, status: Optional[CandidateStatus]) -> CandidateQuery:
        return candidate_query(store, search_id, status, self.max_macs, self.front, self.sort, self.descending,
                               self.metric)


def attachment(download: Download) -> Response:
    """A download as a file the browser saves under its name."""
    return Response(download.body, media_type=download.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download.filename}"'})


def warn_unreadable(response: Response, rows: Sequence[UnreadableRow]) -> None:
    """One ``Warning: 199`` header per row a listing left out (RFC 7234's miscellaneous warning), in ASCII."""
    for row in rows:
        text = re.sub(r"[\x00-\x1f\x7f]", " ", row.describe()).replace("\\", "\\\\").replace('"', '\\"')
        response.headers.append("Warning", f'199 ganas "{text.encode("ascii", "backslashreplace").decode()}"')


def _action_endpoint(name: str):
    """The endpoint of one action; those that spawn an orchestrator take optional launch options."""
    if ACTIONS.get(name).spawns:
        def endpoint(search_id: int, body: Optional[schemas.LaunchRequest] = None,
                     ctx: ServiceContext = Depends(get_context)) -> schemas.ActionOut:
            options = None if body is None else body.options()
            return schemas.ActionOut.of(name, apply_action(ctx.store, ctx.launcher, search_id, name, options))
    else:
        def endpoint(search_id: int, ctx: ServiceContext = Depends(get_context)) -> schemas.ActionOut:
            return schemas.ActionOut.of(name, apply_action(ctx.store, ctx.launcher, search_id, name))

    endpoint.__name__ = f"{name}_search"
    endpoint.__doc__ = ACTIONS.get(name).summary
    return endpoint
