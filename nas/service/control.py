"""Search actions (start, pause, resume, cancel): a registry of what each does to a search.

The database is the source of truth: pause and cancel only set the state (the orchestrator
sees it at its next loop and stops, releasing its claim); start and resume set ``running``
and spawn an orchestrator through the :class:`OrchestratorLauncher`, which refuses while one
is alive. ``resume`` also restarts a search left ``running`` by an orchestrator that died
(its claim has expired).
"""
from __future__ import annotations

from dataclasses import dataclass

from foundation.registry import Registry
from nas.store import SearchRecord, SearchState, Store

from .errors import ActionNotAllowedError, LaunchError
from .launcher import LaunchInfo, LaunchOptions, OrchestratorLauncher


@dataclass(frozen=True)
class SearchAction:
    """One action: the states it applies to, the state it sets, whether it spawns an orchestrator."""

    name: str
    allowed_from: frozenset[SearchState]
    target: SearchState
    spawns: bool
    summary: str


ACTIONS: Registry[SearchAction] = Registry("search action", ActionNotAllowedError, sort=False)


def register_action(action: SearchAction) -> SearchAction:
    return ACTIONS.register(action.name, action)


S = SearchState
register_action(SearchAction("start", frozenset({S.CREATED}), S.RUNNING, True,
                             "run a new search: set it running and start its orchestrator"))
register_action(SearchAction("resume", frozenset({S.PAUSED, S.FAILED, S.RUNNING}), S.RUNNING, True,
                             "continue a paused or failed search (or one whose orchestrator died)"))
register_action(SearchAction("pause", frozenset({S.RUNNING}), S.PAUSED, False,
                             "stop after the candidates in flight; resume later"))
register_action(SearchAction("cancel", frozenset({S.CREATED, S.RUNNING, S.PAUSED, S.FAILED}), S.CANCELLED, False,
                             "stop for good (evaluated candidates are kept)"))


@dataclass(frozen=True)
class ActionResult:
    search: SearchRecord
    launch: LaunchInfo | None


def get_action(name: str) -> SearchAction:
    return ACTIONS.get(name)


def apply_action(store: Store, launcher: OrchestratorLauncher, search_id: int, name: str,
                 options: LaunchOptions | None = None) -> ActionResult:
    """Apply the named action to the search; ``options`` say how a spawned orchestrator runs its workers."""
    action = get_action(name)
    state = store.get_search(search_id).state
    if state not in action.allowed_from:
        allowed = ", ".join(sorted(s.value for s in action.allowed_from))
        possible = ", ".join(a.name for a in ACTIONS.values() if state in a.allowed_from) or "none (it is final)"
        raise ActionNotAllowedError(f"cannot {name} search {search_id}: it is {state.value} ({name} applies to "
                                    f"{allowed}); actions possible now: {possible}")
    if not action.spawns:
        return ActionResult(store.set_search_state(search_id, action.target), None)

    def set_running(search: SearchRecord) -> None:
        store.set_search_state(search_id, action.target)

    try:
        launch = launcher.start(search_id, options or LaunchOptions(), before_spawn=set_running)
    except LaunchError as exc:
        store.set_search_state(search_id, SearchState.FAILED, error=str(exc))
        raise
    return ActionResult(store.get_search(search_id), launch)
