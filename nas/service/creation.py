"""Creating supernets and searches from API requests, through the same functions the CLI uses.

The service adds no rules of its own here: registration reads the checkpoint with
:func:`nas.registry.register_supernet`, and search creation validates everything (supernet,
metric, strategy and its settings, budgets against the space's smallest subnet) in
:func:`nas.search_setup.create_search` before anything is written.
"""
from __future__ import annotations

from nas.budget import parse_budgets
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

    options = body.model_dump(exclude={"supernet", "budgets"}, exclude_none=True)
    return create(store, body.supernet, budgets=parse_budgets(body.budgets), workspace=workspace, **options)
