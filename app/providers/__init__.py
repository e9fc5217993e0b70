"""Provider services behind the one call pipeline, and the service manager that owns them."""
