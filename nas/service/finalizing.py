"""Finalizing a search from the service: check the request as ``ganas search finalize`` does, then spawn it.

Every check runs before anything is written, under the launcher's lock (so no other process of
the search can start in between): the search exists and is not running, the chosen configs are
done candidates (:func:`nas.finalize.choose`), the steps and workers are positive, the teacher is
recorded and is still the file recorded, the supernet checkpoint too. Then the launcher spawns
``ganas search finalize`` in its own session, as it spawns orchestrators; the finalizer claims the
search, so a resume waits until it has finished.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.store import SearchRecord, Store
from nas.workspace import Workspace

from .launcher import FinalizeOptions, LaunchInfo, OrchestratorLauncher

if TYPE_CHECKING:  # nas.finalize is imported when a finalize is asked for, not with the service
    from nas.finalize import Choice


@dataclass(frozen=True)
class FinalizeStarted:
    """What a finalize request started: the configs chosen (with the budget each is best under) and the process."""

    choices: tuple[Choice, ...]
    launch: LaunchInfo


def check_finalize(store: Store, workspace: Workspace, search_id: int, options: FinalizeOptions
                   ) -> tuple[Choice, ...]:
    """The configs ``options`` choose, or the :class:`~nas.finalize.FinalizeError` the CLI would raise (nothing is
    written either way): the same settings checks, choice and preflight as ``ganas search finalize``."""
    from nas.finalize import FinalizeSettings, Finalizer, choose

    settings = FinalizeSettings(steps=options.steps, workers=options.workers, executor=options.executor,
                                ray_address=options.ray_address, threads_per_worker=options.threads_per_worker,
                                recipe=options.recipe)
    choices = tuple(choose(store, search_id, options.budgets, options.front, options.configs))
    Finalizer(store, workspace, search_id, settings).preflight()
    return choices


def start_finalize(store: Store, workspace: Workspace, launcher: OrchestratorLauncher, search_id: int,
                   options: FinalizeOptions) -> FinalizeStarted:
    """Check the request (:func:`check_finalize`) and spawn ``ganas search finalize`` for it."""
    chosen: list[Choice] = []

    def check(search: SearchRecord) -> None:
        chosen.extend(check_finalize(store, workspace, search.id, options))

    launch = launcher.start(search_id, options, before_spawn=check)
    return FinalizeStarted(tuple(chosen), launch)
