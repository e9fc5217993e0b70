"""Assembles the simulator: every provider's routes and the control routes under ``/_sim``."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router, get
from litestar.di import Provide

from app.simulator import deepgram_live, sarvam_live
from app.simulator.control import control_router
from app.simulator.deepgram import deepgram_router
from app.simulator.openai import openai_router
from app.simulator.sarvam import sarvam_router
from app.simulator.state import SimulatorState

SIM_API_KEY = "sim-local-key"
"""The key the gateway sends to the simulator; the simulator accepts any non-empty key."""

SIM_PREFIX = "/_sim"


def create_simulator_router() -> Router:
    """All simulated providers under ``/_sim``, with a fault table and request log of their own."""
    state = SimulatorState()

    def provide_state() -> SimulatorState:
        return state

    return Router(
        SIM_PREFIX,
        route_handlers=[control_router(), sarvam_router(), deepgram_router(), openai_router(),
                        Router("/sarvam", route_handlers=[sarvam_live.speech_to_text, sarvam_live.text_to_speech]),
                        Router("/deepgram", route_handlers=[deepgram_live.listen, deepgram_live.speak])],
        dependencies={"sim_state": Provide(provide_state, sync_to_thread=False)},
    )


@get("/", include_in_schema=False)
async def index() -> dict[str, Any]:
    return {
        "service": "provider-simulator",
        "providers": {name: f"{SIM_PREFIX}/{name}" for name in ("sarvam", "deepgram", "openai")},
        "faults": f"{SIM_PREFIX}/faults",
        "requests": f"{SIM_PREFIX}/requests",
    }


def create_simulator_app() -> Litestar:
    """The simulator on its own (``python -m app simulate``)."""
    return Litestar(route_handlers=[create_simulator_router(), index], openapi_config=None)
