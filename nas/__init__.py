"""The search side: strategies, orchestrator, store, MLflow logging, service and CLI."""
