"""The REST service and dashboard server (``ganas serve``): one FastAPI app over a workspace's store.

See :func:`nas.service.app.create_app`; ``docs/service.md`` describes the endpoints.
"""
from .app import create_app

__all__ = ["create_app"]
