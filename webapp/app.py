"""``create_web_app``: :func:`nas.service.create_app` with the dashboard as its pages."""
from __future__ import annotations

import os

from fastapi import FastAPI

from dashboards.pages import Dashboard
from nas.service import create_app
from nas.service.guard import AllowedHosts
from nas.service.launcher import CommandFactory, orchestrator_command
from nas.workspace import Workspace


def create_web_app(workspace: Workspace | str | os.PathLike, token: str | None = None, *,
                   command: CommandFactory = orchestrator_command, hosts: AllowedHosts | None = None) -> FastAPI:
    """The REST API under ``/api`` and the dashboard elsewhere, over ``workspace``, behind ``token`` if given,
    answering the ``hosts`` (None: the loopback names)."""
    return create_app(workspace, token, command=command, pages=Dashboard(), hosts=hosts)
