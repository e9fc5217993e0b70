"""Wire-compatible local imitations of Sarvam, Deepgram and OpenAI, with fault injection.

The gateway serves a provider from here whenever that provider has no API key; the official client libraries work
against it. See :mod:`app.simulator.router` for the routes and :mod:`app.simulator.faults` for fault injection.
"""

from app.simulator.router import SIM_API_KEY, create_simulator_app, create_simulator_router

__all__ = ["SIM_API_KEY", "create_simulator_app", "create_simulator_router"]
