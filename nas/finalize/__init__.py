"""From a search to deployable generators: fine-tune the chosen configs, measure them against the teacher on the
held-out split, export them (:mod:`.runner` drives the jobs, :mod:`.job` is what a worker runs)."""
from .runner import Choice, FinalizeError, FinalizeSettings, Finalizer, choose

__all__ = ["Choice", "FinalizeError", "FinalizeSettings", "Finalizer", "choose"]
