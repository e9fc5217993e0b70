"""Wire-compatible local imitations of Sarvam, Deepgram and OpenAI, with fault injection.

The gateway serves a provider from here whenever that provider has no API key; the official client libraries work
against it (base URLs ``{root}/_sim/sarvam``, ``{root}/_sim/deepgram``, ``{root}/_sim/openai/v1``).

Routes, all under ``/_sim``:

- ``sarvam``: ``POST /translate``, ``/text-to-speech``, ``/text-to-speech/stream``, ``/speech-to-text``
- ``deepgram``: ``POST /v1/listen``, ``POST /v1/speak``, ``GET /v1/projects`` (health)
- ``openai``: ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``GET /v1/models`` (health)
- ``PUT|GET|DELETE /faults`` (see :class:`app.simulator.faults.FaultSpec`), ``GET|DELETE /requests``
"""

from app.simulator.router import SIM_API_KEY, create_simulator_app, create_simulator_router

__all__ = ["SIM_API_KEY", "create_simulator_app", "create_simulator_router"]
