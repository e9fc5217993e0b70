"""The call vocabulary every layer shares (a leaf module: it imports nothing from ``app``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True, slots=True)
class ServiceKey:
    """One operation of one provider. Written ``provider.operation`` wherever it is a name: the
    keys of ``/health/metrics``, trend and status URLs, alert labels' ``service``."""

    provider: str
    operation: str

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation}"

    @classmethod
    def parse(cls, text: str) -> ServiceKey:
        """``"sarvam.tts"`` as a key; a ``ValueError`` names what is wrong with anything else."""
        provider, dot, operation = text.partition(".")
        if not dot or not provider or not operation or "." in operation:
            raise ValueError(f"{text!r} is not a service key of the form provider.operation")
        return cls(provider, operation)
