"""HTTP surface: /v1 provider endpoints, /health endpoints, /metrics and the /status page."""
