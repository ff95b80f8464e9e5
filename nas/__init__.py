"""The search side: strategies, orchestrator, store, MLflow logging, service and CLI.

The public names below load on first use (``lazy_loader``), so ``import nas`` (and the CLI's start)
never pulls SQLAlchemy, Ray, Optuna or MLflow before a command needs them.
"""
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "workspace": ["Workspace"],
    "store": ["Store"],
    "registry": ["register_supernet"],
    "search_setup": ["create_search"],
    "budget": ["BudgetInfeasibleError", "format_macs", "parse_budgets"],
    "demo": ["DemoSettings", "run_demo"],
})
