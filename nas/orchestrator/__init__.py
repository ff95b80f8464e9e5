"""The search orchestrator, in three parts: who decides (:mod:`.runner`: the strategy's batches and
their replay), who dispatches (:mod:`.dispatcher`: leases, workers, outcomes) and who reports
(:mod:`.reporting`: MLflow); :mod:`.claim` keeps one live orchestrator per search; :mod:`.backlog` counts
what MLflow missed and :mod:`.sync` logs it from the store."""
from .runner import Orchestrator, OrchestratorSettings, ReplayError

__all__ = ["Orchestrator", "OrchestratorSettings", "ReplayError"]
