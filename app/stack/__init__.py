"""The observability stack built from pinned Go modules (``stack/``, ``scripts/build-stack.sh``)."""
