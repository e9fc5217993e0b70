"""The official SDKs pointed at a gateway by their base URL only, as the README shows."""

from __future__ import annotations

from typing import Any

import openai
from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from sarvamai import SarvamAI
from sarvamai.environment import SarvamAIEnvironment

CLIENT_KEY = "gw-dropin-client-key"
NO_RETRIES: Any = {"max_retries": 0}
"""Sarvam's ``request_options``: its SDK retries 429 and 5xx twice by default."""


def openai_sdk(gateway: str, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/openai/v1", api_key=key, max_retries=0)


def sarvam_sdk(gateway: str, key: str = CLIENT_KEY) -> SarvamAI:
    base = f"{gateway}/sarvam"
    environment = SarvamAIEnvironment(base=base, creative=f"{base}/dubbing", production=base.replace("http", "ws", 1))
    return SarvamAI(api_subscription_key=key, environment=environment)


def deepgram_sdk(gateway: str, key: str = CLIENT_KEY) -> DeepgramClient:
    base = f"{gateway}/deepgram"
    ws = base.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=base, production=ws, agent=ws, agent_rest=base)
    return DeepgramClient(api_key=key, environment=environment, max_retries=0)
