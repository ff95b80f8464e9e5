"""The REST service over a workspace's store: one FastAPI app, the API under ``/api``.

See :func:`nas.service.app.create_app`; ``docs/service.md`` describes the endpoints. The dashboard
is added by :mod:`webapp` (``ganas serve``), never imported from here.
"""
from .app import WebPages, create_app

__all__ = ["WebPages", "create_app"]
