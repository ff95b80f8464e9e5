"""The service application: the REST API under ``/api`` over one workspace, plus any HTML pages given to it.

``create_app(workspace, token, hosts=...)`` opens the workspace's store once (``workspace.store_url``, e.g. a
PostgreSQL database, else the folder's SQLite file; an unusable database fails here, before the server
listens) and wires the request guard (:mod:`.guard`: the Host allow-list, same-origin and JSON-only
state changes), the access rule, the API and the error handlers. The dashboard is not known here
(``nas`` never imports ``dashboards``): :mod:`webapp` composes the two by passing the dashboard as
``pages``, anything with the :class:`WebPages` shape. The OpenAPI schema is served at ``/openapi.json``;
the Swagger and ReDoc pages are off because they load their JavaScript from a CDN, which nothing here
may reach.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from foundation.errors import GanasError
from nas.workspace import Workspace

from .api import api_router
from .auth import COOKIE, LOGIN_PARAMETER, TokenAuth
from .context import ServiceContext
from .errors import error_body, http_status
from .guard import AllowedHosts, check_request
from .launcher import CommandFactory, OrchestratorLauncher, orchestrator_command

API_PREFIX = "/api"
PUBLIC_PATHS = ("/openapi.json", "/static/")


def _is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _version() -> str:
    try:
        return version("ganas")
    except PackageNotFoundError:
        return "0+unknown"


class WebPages(Protocol):
    """HTML pages served beside the API under the same access rule (the dashboard is one)."""

    static_dir: Path  # served at /static, readable without a token

    def router(self) -> APIRouter:
        """The pages' routes (outside ``/api``)."""

    def error_page(self, request: Request, status_code: int, message: str) -> Response:
        """What a page request that failed answers."""

    def login_page(self, request: Request, wrong: bool) -> Response:
        """What a page request without a valid token answers (``wrong``: a token was given, not the right one)."""


def create_app(workspace: Workspace | str | os.PathLike, token: str | None = None, *,
               command: CommandFactory = orchestrator_command, pages: WebPages | None = None,
               hosts: AllowedHosts | None = None) -> FastAPI:
    """The service over ``workspace``; with ``token``, every request must carry it.

    ``command`` builds the orchestrator command line for a search id (tests inject a fake).
    ``pages`` adds HTML pages outside ``/api`` (None: the API alone; other paths answer JSON).
    ``hosts`` are the ``Host`` headers it answers (None: the loopback names on any port; see
    :func:`nas.service.guard.allowed_hosts` for a server's binding).
    """
    hosts = AllowedHosts.loopback() if hosts is None else hosts
    workspace = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    store = workspace.open_store()
    context = ServiceContext(workspace, store, OrchestratorLauncher(workspace, store, command), TokenAuth(token))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            store.close()  # orchestrators run in their own sessions and keep going

    app = FastAPI(title="ganas", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Search compact GAN generators under a MACs budget: supernets, searches, candidates "
                              "and Pareto fronts. With a token, send `Authorization: Bearer <token>`. Every POST sends "
                              "`Content-Type: application/json`, an empty body too.")
    app.state.ganas = context

    @app.middleware("http")
    async def access_control(request: Request, call_next):
        auth, path = context.auth, request.url.path
        if not auth.enabled or path.startswith(PUBLIC_PATHS):
            return await call_next(request)
        if _is_api(path):
            if auth.accepts_header(request.headers.get("authorization")):
                return await call_next(request)
            return JSONResponse({"detail": "missing or wrong access token: send the header 'Authorization: Bearer "
                                           "<token>' with the token the server was started with",
                                 "error": "AuthenticationError"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if pages is None:
            return JSONResponse({"detail": "not found", "error": "NotFound"}, status_code=404)
        login = request.query_params.get(LOGIN_PARAMETER)
        if login is not None:
            if not auth.accepts(login):
                return pages.login_page(request, wrong=True)
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != LOGIN_PARAMETER])
            response: Response = RedirectResponse(path + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, login, httponly=True, samesite="lax", path="/")
            return response
        if auth.accepts(request.cookies.get(COOKIE)):
            return await call_next(request)
        return pages.login_page(request, wrong=False)

    @app.middleware("http")  # added last, so it runs first: before the token and any route
    async def request_guard(request: Request, call_next):
        try:
            check_request(hosts, request.method, request.headers, _is_api(request.url.path))
        except GanasError as exc:
            return error_response(request, exc)
        return await call_next(request)

    def error_response(request: Request, exc: GanasError) -> Response:
        status = http_status(exc)
        if pages is None or _is_api(request.url.path):
            return JSONResponse(error_body(exc), status_code=status)
        return pages.error_page(request, status, str(exc))

    @app.exception_handler(GanasError)
    async def ganas_error(request: Request, exc: GanasError):
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        if pages is not None and not _is_api(request.url.path):
            return pages.error_page(request, 422, "; ".join(problems))
        return JSONResponse({"detail": "; ".join(problems), "error": "RequestValidationError",
                             "errors": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                                        for e in exc.errors()]}, status_code=422)

    app.include_router(api_router(), prefix=API_PREFIX)
    if pages is not None:
        app.include_router(pages.router())
        app.mount("/static", StaticFiles(directory=pages.static_dir), name="static")
    return app
