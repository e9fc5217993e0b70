"""An observability-first gateway for speech and language AI providers."""

__version__ = "0.1.0"
