"""CLI verbs, one module per capability; each defines ``register(app: typer.Typer)``."""
