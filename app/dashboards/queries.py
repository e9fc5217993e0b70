"""The PromQL behind every panel, for all calls or for the calls a dashboard's variables choose.

Every range is ``$__rate_interval`` (Grafana widens it to cover at least four scrapes); quantiles
use ``histogram_quantile`` over summed bucket rates, as the rules do. No query selects a bucket by
its bound or returns ``le``: Prometheus 3 spells a scraped bound ``"5.0"`` and one received over OTLP
``"5"``, so only the number is the same on both paths. No query selects ``job`` or ``instance``
either; ``instance`` is kept only to tell replicas apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..monitoring.slo import Signal, budget_record, burn_record

RATE = "[$__rate_interval]"
DURATION = "provider_client_request_duration_seconds"
HEALTH = "provider_health_check_duration_seconds"
GEN_AI = "gen_ai_provider_name, gen_ai_operation_name"
CALLS = "provider, operation"
COST = "provider_client_cost_usd_total"
HOUR = 3600
MONTH = 'period="month"'


@dataclass(frozen=True)
class Scope:
    """Label matchers for the calls shown: empty for all, ``$provider`` and ``$operation`` for one."""

    calls: str = ""
    """Matchers on ``provider`` and ``operation``."""
    provider: str = ""
    """Matchers on ``provider`` alone (per-provider metrics and alerts)."""
    gen_ai: str = ""
    """The same choice in the GenAI semantic-convention labels."""


ALL = Scope()
CHOSEN = Scope('provider="$provider",operation="$operation"', 'provider="$provider"',
               'gen_ai_provider_name="$provider",gen_ai_operation_name="$operation"')


def select(metric: str, *matchers: str) -> str:
    """``metric{a,b}`` with the non-empty matchers, or the bare name."""
    joined = ",".join(m for m in matchers if m)
    return f"{metric}{{{joined}}}" if joined else metric


def rate(by: str, metric: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({select(metric, *matchers)}{RATE}))"


def quantile(q: str, by: str, metric: str, *matchers: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({select(metric + '_bucket', *matchers)}{RATE})))"


def ratio(by: str, metric: str, good: str, *matchers: str) -> str:
    """Share of ``metric``'s count with ``good``; 0 rather than absent when none is good."""
    total = rate(by, f"{metric}_count", *matchers)
    return f"({rate(by, f'{metric}_count', *matchers, good)} or {total} * 0) / {total}"


def request_rate(s: Scope) -> str:
    return rate(CALLS, f"{DURATION}_count", s.calls)


def success_rate(s: Scope) -> str:
    """What ProviderSuccessRateLow reads, over the panel's interval instead of the alert window."""
    return ratio(CALLS, DURATION, 'outcome="success"', s.calls)


def latency(q: str, s: Scope) -> str:
    return quantile(q, CALLS, DURATION, s.calls)


def errors(s: Scope) -> str:
    return rate(f"{CALLS}, error_type", f"{DURATION}_count", s.calls, 'outcome="error"')


def rejections(s: Scope) -> str:
    return rate(f"{CALLS}, reason", "provider_client_rejections_total", s.calls)


def overloaded(s: Scope) -> str:
    return rate(CALLS, "provider_client_rejections_total", s.calls, 'reason="overloaded"')


def breaker_state(s: Scope) -> str:
    return f"max by ({CALLS}) ({select('provider_circuit_state', s.calls)})"


def breaker_trips(s: Scope) -> str:
    return f"sum by ({CALLS}) (increase({select('provider_circuit_opened_total', s.calls)}{RATE}))"


def first_byte(s: Scope) -> str:
    return quantile("0.95", CALLS, "provider_client_time_to_first_byte_seconds", s.calls)


def sessions_open(s: Scope) -> str:
    return f"sum by ({CALLS}) ({select('provider_stream_sessions_active', s.calls)})"


def first_result(s: Scope) -> str:
    return quantile("0.95", CALLS, "provider_stream_time_to_first_result_seconds", s.calls)


def session_duration(s: Scope) -> str:
    return quantile("0.95", CALLS, "provider_stream_session_duration_seconds", s.calls)


def stream_messages(s: Scope) -> str:
    return rate(f"{CALLS}, direction", "provider_stream_messages_total", s.calls)


def audio_seconds(s: Scope) -> str:
    return rate(CALLS, "provider_client_audio_duration_seconds_total", s.calls)


def characters(s: Scope) -> str:
    return rate(CALLS, "provider_client_characters_total", s.calls)


def tokens(s: Scope) -> str:
    return rate(f"{GEN_AI}, gen_ai_token_type", "gen_ai_client_token_usage_sum", s.gen_ai)


def spend_rate(s: Scope) -> str:
    """US dollars per hour being spent, per provider operation."""
    return f"{rate(CALLS, COST, s.calls)} * {HOUR}"


def spent_this_month(s: Scope) -> str:
    """US dollars each provider has cost this UTC month: the fleet's, which every replica exports."""
    return f"max by (provider) ({select('provider_spend_usd', MONTH, s.provider)})"


def top_clients(s: Scope) -> str:
    """The ten clients spending most now, in US dollars per hour."""
    return f"topk(10, {rate('client', COST, s.calls)} * {HOUR})"


def gen_ai_duration(s: Scope) -> str:
    return quantile("0.95", GEN_AI, "gen_ai_client_operation_duration_seconds", s.gen_ai)


def health_availability(s: Scope) -> str:
    """Share of active health checks that succeeded."""
    return ratio("provider", HEALTH, 'outcome="success"', s.provider)


def health_up(s: Scope) -> str:
    """1 while every health check in the interval succeeded, else 0."""
    return f"{health_availability(s)} == bool 1"


def health_latency(s: Scope) -> str:
    return quantile("0.95", "provider", HEALTH, s.provider)


def in_flight(s: Scope) -> str:
    return f"sum by ({CALLS}) ({select('provider_client_active_requests', s.calls)})"


def concurrency_limit(s: Scope) -> str:
    return f"max by (provider) ({select('provider_client_concurrency_limit', s.provider)})"


def saturation(s: Scope) -> str:
    """In flight over the limit in the fullest replica: the limit holds per process."""
    active = f"sum by (instance, provider) ({select('provider_client_active_requests', s.provider)})"
    limit = f"max by (instance, provider) ({select('provider_client_concurrency_limit', s.provider)})"
    return f"max by (provider) ({active} / on (instance, provider) {limit})"


def call_wait(s: Scope) -> str:
    return quantile("0.95", CALLS, "gateway_call_wait_seconds", s.calls)


def event_loop_lag() -> str:
    """What GatewayEventLoopLagHigh reads: p99 per replica."""
    return quantile("0.99", "instance", "gateway_event_loop_lag_seconds")


def state_backend() -> str:
    """What GatewayStateBackendDown reads."""
    return "min by (backend) (gateway_state_backend_up)"


def firing_alerts(s: Scope) -> str:
    return select("ALERTS", 'alertstate="firing"', s.provider)


def burn_rate(signal: Signal, window: str, s: Scope) -> str:
    """What the budget-burn alerts read: the recorded burn rate over ``window``."""
    return select(burn_record(signal, window), s.calls)


def budget_left(signal: Signal, s: Scope) -> str:
    """The recorded share of the error budget left over the period."""
    return select(budget_record(signal), s.calls)
