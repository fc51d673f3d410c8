"""The command groups under ``dependents``, one module each; ``pipeline.cli`` gathers them."""
