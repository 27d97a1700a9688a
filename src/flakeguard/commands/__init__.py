"""CLI command groups, one module per capability; each has `register(app, enqueue_app)`."""
