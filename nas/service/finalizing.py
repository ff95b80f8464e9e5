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
from pathlib import Path
from typing import TYPE_CHECKING

from nas.store import SearchRecord, Store

from .launcher import FinalizeOptions, LaunchInfo, OrchestratorLauncher

if TYPE_CHECKING:  # nas.finalize is imported when a finalize is asked for, not with the service
    from nas.finalize import Choice


@dataclass(frozen=True)
class FinalizeStarted:
    """What a finalize request started: the configs chosen (with the budget each is best under) and the process."""

    choices: tuple[Choice, ...]
    launch: LaunchInfo


def check_finalize(store: Store, search_id: int, options: FinalizeOptions) -> tuple[Choice, ...]:
    """The configs ``options`` choose, or the :class:`~nas.finalize.FinalizeError` the CLI would raise (nothing is
    written either way)."""
    from foundation.hashing import file_sha256
    from nas.finalize import FinalizeError, choose
    from nas.teacher import TeacherInfo

    search = store.get_search(search_id)
    for name, value in (("steps", options.steps), ("workers", options.workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            what = "fine-tuning steps" if name == "steps" else "workers"
            raise FinalizeError(f"{name} must be a positive number of {what}, got {value!r}")
    choices = tuple(choose(store, search_id, options.budgets, options.front, options.configs))
    supernet = store.get_supernet(search.supernet_id)
    teacher = TeacherInfo.from_dict(supernet.teacher)
    if teacher is None:
        raise FinalizeError(f"supernet {supernet.name!r} records no teacher to fine-tune from and compare with; "
                            "register it with --teacher FILE (ganas supernet register CHECKPOINT --teacher FILE)")
    teacher.read_bytes()  # missing or changed since registration: the CLI's message
    checkpoint = Path(supernet.checkpoint)
    if not checkpoint.is_file() or file_sha256(checkpoint) != supernet.checkpoint_sha256:
        raise FinalizeError(f"supernet {supernet.name!r}: {checkpoint} is missing or no longer the registered file")
    return choices


def start_finalize(store: Store, launcher: OrchestratorLauncher, search_id: int,
                   options: FinalizeOptions) -> FinalizeStarted:
    """Check the request (:func:`check_finalize`) and spawn ``ganas search finalize`` for it."""
    chosen: list[Choice] = []

    def check(search: SearchRecord) -> None:
        chosen.extend(check_finalize(store, search.id, options))

    launch = launcher.start(search_id, options, before_spawn=check)
    return FinalizeStarted(tuple(chosen), launch)
