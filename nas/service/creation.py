"""Creating supernets and searches from API requests, through the same functions the CLI uses.

The service adds no rules of its own here: registration reads the checkpoint with
:func:`nas.registry.register_supernet`, and search creation checks every field (budgets, counts,
metric and the files it reads, strategy and its settings, metric options) in
:func:`nas.search_setup.create_search` before anything is written; a refused field is answered 422.
"""
from __future__ import annotations

from nas.store import SearchRecord, Store, SupernetRecord
from nas.workspace import Workspace

from .schemas import SearchCreate


def register_supernet(store: Store, workspace: Workspace, checkpoint: str, name: str | None = None) -> SupernetRecord:
    """Register the supernet checkpoint at ``checkpoint`` (a path on the server), its paths recorded relative
    to ``workspace`` when inside it."""
    from nas.registry import register_supernet as register  # reads the checkpoint with torch: import on use

    return register(store, checkpoint, name=name, workspace=workspace)


def create_search(store: Store, workspace: Workspace, body: SearchCreate) -> SearchRecord:
    """A new search in state ``created``, validated before anything is written."""
    from nas.search_setup import create_search as create

    options = body.model_dump(exclude={"supernet"}, exclude_none=True)
    return create(store, body.supernet, workspace=workspace, **options)
