"""The baseline for the overhead benchmark: a Litestar proxy that does nothing but forward.

It serves ``POST /v1/translate`` and ``POST /v1/chat/completions`` by relaying the request body to
the simulator's Sarvam and OpenAI routes with the gateway's own HTTP client
(``openai.DefaultAioHttpClient``: ``httpx2`` on the aiohttp transport, pooled the same way), and
answers with the upstream body and status as they are. No validation, rate limit, breaker,
telemetry or error mapping: whatever the gateway costs beyond this is the price of its pipeline.

Run: ``python bench/bare_proxy.py --port 8200 --upstream http://127.0.0.1:8100`` (one uvicorn
worker on uvloop and httptools, as ``python -m app serve`` runs the gateway).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import uvicorn
from litestar import Litestar, Request, Response, get, post
from openai import DefaultAioHttpClient

SIM_API_KEY = "bench-bare-proxy"
"""The simulator accepts any non-empty key."""
MAX_CONNECTIONS = 512
"""The gateway's pool size (``app/providers/http_client.py``)."""


def create_bare_proxy(upstream: str) -> Litestar:
    """The proxy app relaying to the simulator at ``upstream`` (``http://host:port``)."""
    upstream = upstream.rstrip("/")
    translate_url = f"{upstream}/_sim/sarvam/translate"
    chat_url = f"{upstream}/_sim/openai/v1/chat/completions"
    client: httpx2.AsyncClient = DefaultAioHttpClient(
        limits=httpx2.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        timeout=httpx2.Timeout(None),
        follow_redirects=False,
    )

    async def relay(request: Request[Any, Any, Any], url: str, headers: dict[str, str]) -> Response[bytes]:
        answer = await client.post(url, content=await request.body(),
                                   headers={**headers, "content-type": "application/json"})
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type", "application/json"))

    @post("/v1/translate", status_code=200)
    async def translate(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await relay(request, translate_url, {"api-subscription-key": SIM_API_KEY})

    @post("/v1/chat/completions", status_code=200)
    async def chat(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await relay(request, chat_url, {"authorization": f"Bearer {SIM_API_KEY}"})

    @get("/health", status_code=200)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    # logging_config=None: Litestar's default config would log every upstream request (httpx2 at INFO).
    return Litestar(route_handlers=[translate, chat, health], lifespan=[lifespan], openapi_config=None,
                    logging_config=None, debug=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the simulator's base URL, e.g. http://127.0.0.1:8100")
    args = parser.parse_args()
    uvicorn.run(create_bare_proxy(args.upstream), host=args.host, port=args.port, workers=1, loop="uvloop",
                http="httptools", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
