"""``/status``: the human status page over the same data as the ``/health`` endpoints."""

from .routes import router

__all__ = ["router"]
