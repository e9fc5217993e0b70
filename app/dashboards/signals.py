"""Every signal of the gateway as panels, grouped in rows, for a :class:`~.queries.Scope`.

Thresholds come from the rules (:class:`~.alerting.Facts`): a panel draws a rule's threshold when
an alert reads the signal it shows, and has only a base step otherwise.
"""

from __future__ import annotations

from ..monitoring.slo import Signal as SloSignal
from . import links
from . import queries as q
from .alerting import Facts
from .panels import CRITICAL, OK, WARNING, Builders, Query, Signal, graph, listing, summary, timeline

CIRCUIT_OPEN = 2
"""``provider_circuit_state`` while open: ProviderCircuitOpen's condition (``== 2``)."""
CALL_LEGEND = "{{provider}} {{operation}}"
GEN_AI_LEGEND = "{{gen_ai_provider_name}} {{gen_ai_operation_name}}"
Row = tuple[str, list[Builders]]


def _pct(value: float) -> str:
    return f"{value:.0%}"


def calls(s: q.Scope, f: Facts) -> Row:
    warning, critical = f.success_rate
    slow, very_slow = f.latency_p95
    series = [links.traces(), links.logs()]
    return "Calls", [
        graph(Signal("Request rate", "Attempted calls per second that reached the provider "
                     "(provider_client_request_duration_seconds).", "reqps",
                     [Query(q.request_rate(s), CALL_LEGEND)], data_links=series)),
        graph(Signal("Success rate", f"Successful / attempted calls (0% when every call failed). Lines: "
                     f"ProviderSuccessRateLow fires below {_pct(warning)} (warning) and {_pct(critical)} "
                     "(critical) over its window.", "percentunit",
                     [Query(q.success_rate(s), CALL_LEGEND)], ((None, CRITICAL), (critical, WARNING), (warning, OK)),
                     [links.runbook("ProviderSuccessRateLow", f.runbooks["ProviderSuccessRateLow"])], series)),
        graph(Signal("Latency p50 and p95", f"Provider latency of attempted calls; exemplars link to their "
                     f"traces. Lines: ProviderLatencyHigh fires above {slow:g} s (warning) and {very_slow:g} s "
                     "(critical) at p95.", "s",
                     [Query(q.latency("0.50", s), "p50 " + CALL_LEGEND),
                      Query(q.latency("0.95", s), "p95 " + CALL_LEGEND, exemplars=True)],
                     ((None, OK), (slow, WARNING), (very_slow, CRITICAL)),
                     [links.runbook("ProviderLatencyHigh", f.runbooks["ProviderLatencyHigh"])], series)),
        graph(Signal("Errors by type", "Failed attempts per second by error_type (timeout, connection, "
                     "upstream_5xx, ...).", "reqps",
                     [Query(q.errors(s), CALL_LEGEND + " {{error_type}}")], data_links=series)),
    ]


def refusals(s: q.Scope, f: Facts) -> Row:
    return "Refusals and circuit breakers", [
        graph(Signal("Rejections by reason", "Calls refused before reaching the provider, by reason: "
                     "circuit_open, rate_limited, invalid_input, overloaded. Any rate_limited rejection fires "
                     "ProviderRateLimited, any overloaded one ProviderSaturated.", "reqps",
                     [Query(q.rejections(s), CALL_LEGEND + " {{reason}}")],
                     links=[links.runbook(a, f.runbooks[a]) for a in ("ProviderRateLimited", "ProviderSaturated")],
                     data_links=[links.logs()])),
        timeline(Signal("Circuit breaker state", "provider_circuit_state: closed, half-open or open; open "
                        "fires ProviderCircuitOpen.", "short", [Query(q.breaker_state(s), CALL_LEGEND)],
                        ((None, OK), (1, WARNING), (CIRCUIT_OPEN, CRITICAL)),
                        [links.runbook("ProviderCircuitOpen", f.runbooks["ProviderCircuitOpen"])],
                        mappings={"0": ("closed", OK), "1": ("half-open", WARNING),
                                  str(CIRCUIT_OPEN): ("open", CRITICAL)})),
        graph(Signal("Circuit breaker trips", "Times a breaker opened in each interval "
                     "(provider_circuit_opened_total); any trip in its window fires ProviderCircuitOpen.",
                     "short", [Query(q.breaker_trips(s), CALL_LEGEND)],
                     links=[links.runbook("ProviderCircuitOpen", f.runbooks["ProviderCircuitOpen"])])),
    ]


def usage(s: q.Scope, f: Facts) -> Row:
    slow, very_slow = f.latency_p95
    return "Streaming and usage", [
        graph(Signal("Time to first byte (p95)", "Until the first byte of streamed answers (TTS audio, chat "
                     "streams): what a listener waits before audio starts.", "s",
                     [Query(q.first_byte(s), CALL_LEGEND, exemplars=True)], data_links=[links.traces()], width=8)),
        graph(Signal("Audio seconds", "Seconds of audio sent to or produced by providers, per second of wall "
                     "time (provider_client_audio_duration_seconds_total).", "s",
                     [Query(q.audio_seconds(s), CALL_LEGEND)], width=8)),
        graph(Signal("Characters", "Text characters sent to translate and TTS per second "
                     "(provider_client_characters_total): the billing unit of speech providers.", "cps",
                     [Query(q.characters(s), CALL_LEGEND)], width=8)),
        graph(Signal("Tokens", "GenAI tokens per second by type, input and output "
                     "(gen_ai_client_token_usage).", "short",
                     [Query(q.tokens(s), GEN_AI_LEGEND + " {{gen_ai_token_type}}")])),
        graph(Signal("GenAI operation duration (p95)", "gen_ai_client_operation_duration_seconds of chat, "
                     f"embeddings and RAG. Lines: ProviderLatencyHigh's p95 thresholds ({slow:g} s, {very_slow:g} s), "
                     "which that alert applies to the same calls' provider latency.", "s",
                     [Query(q.gen_ai_duration(s), GEN_AI_LEGEND, exemplars=True)],
                     ((None, OK), (slow, WARNING), (very_slow, CRITICAL)), data_links=[links.traces()])),
    ]


def streams(s: q.Scope, f: Facts) -> Row:
    slow, very_slow = f.latency_p95
    return "Live sessions (WebSocket)", [
        graph(Signal("Sessions open", "Live speech sessions open now (provider_stream_sessions_active); each "
                     "holds a bulkhead slot until it ends.", "short",
                     [Query(q.sessions_open(s), CALL_LEGEND)], width=6)),
        graph(Signal("Time to first result (p95)", "From a session's start to its first transcript (stt) or "
                     "audio (tts): the session's latency, which the recorder and ProviderLatencyHigh count. "
                     f"Lines: ProviderLatencyHigh's p95 thresholds ({slow:g} s, {very_slow:g} s).", "s",
                     [Query(q.first_result(s), CALL_LEGEND, exemplars=True)],
                     ((None, OK), (slow, WARNING), (very_slow, CRITICAL)), data_links=[links.traces()], width=6)),
        graph(Signal("Session duration (p95)", "How long live sessions lasted "
                     "(provider_stream_session_duration_seconds).", "s",
                     [Query(q.session_duration(s), CALL_LEGEND)], width=6)),
        graph(Signal("Messages relayed", "Messages per second through live sessions, by direction (in: caller "
                     "to provider; out: provider to caller).", "short",
                     [Query(q.stream_messages(s), CALL_LEGEND + " {{direction}}")], width=6)),
    ]


def cost(s: q.Scope, f: Facts) -> Row:
    return "Cost", [
        graph(Signal("Spend rate", "US dollars per hour spent on provider calls, per provider operation "
                     "(provider_client_cost_usd_total; calls whose price is unknown are not in it).", "currencyUSD",
                     [Query(q.spend_rate(s), CALL_LEGEND)], width=6)),
        listing(Signal("Top clients", "The ten clients (names of GATEWAY_API_KEYS, or anonymous) spending most "
                       "now, in US dollars per hour.", "currencyUSD", [Query(q.top_clients(s), "{{client}}")],
                       width=6)),
        summary(Signal("Cost per provider operation", "US dollars per hour per provider operation, averaged "
                       "over the dashboard's time range.", "currencyUSD", [Query(q.spend_rate(s), CALL_LEGEND)],
                       width=6)),
        listing(Signal("Spent this month", "US dollars each provider has cost this UTC month, now "
                       "(provider_spend_usd, the fleet's); ProviderBudgetBurn pages at P_BUDGET_MONTHLY_USD.",
                       "currencyUSD", [Query(q.spent_this_month(s), "{{provider}}")], width=6)),
    ]


def health(s: q.Scope, f: Facts) -> Row:
    return "Active health checks", [
        timeline(Signal("Health checks: up or down", "Up while every active health check of the provider in "
                        "the interval succeeded (provider_health_check_duration_seconds by outcome); checks "
                        "run every HEALTH_CHECK_INTERVAL, apart from client calls.", "short",
                        [Query(q.health_up(s), "{{provider}}")], ((None, CRITICAL), (1, OK)),
                        mappings={"0": ("down", CRITICAL), "1": ("up", OK)}, width=8)),
        summary(Signal("Availability", "Share of active health checks that succeeded, averaged over the "
                       "dashboard's time range, per provider.", "percentunit",
                       [Query(q.health_availability(s), "{{provider}}")], width=8)),
        graph(Signal("Health check latency (p95)", "Duration of the active health checks per provider.", "s",
                     [Query(q.health_latency(s), "{{provider}}")], width=8)),
    ]


def saturation(s: q.Scope, f: Facts, process: bool) -> Row:
    """``process``: include the gateway's own event-loop lag (not a provider's signal)."""
    saturated = [links.runbook("ProviderSaturated", f.runbooks["ProviderSaturated"])]
    panels: list[Builders] = [
        graph(Signal("In-flight calls against the limit", "Calls in flight to each provider now "
                     "(provider_client_active_requests) and its per-process limit P_MAX_CONCURRENCY "
                     "(provider_client_concurrency_limit); over the limit, calls are refused as overloaded.",
                     "short", [Query(q.in_flight(s), CALL_LEGEND),
                               Query(q.concurrency_limit(s), "limit {{provider}}")], width=8)),
        graph(Signal("Saturation", "In flight / limit in the fullest replica. Line: ProviderSaturated fires "
                     f"at {_pct(f.saturation)} or more.", "percentunit",
                     [Query(q.saturation(s), "{{provider}}")], ((None, OK), (f.saturation, WARNING)), saturated,
                     width=8)),
        graph(Signal("Overloaded rejections", "Calls refused at once because the provider's concurrency "
                     "limit was full (503 overloaded); any fires ProviderSaturated.", "reqps",
                     [Query(q.overloaded(s), CALL_LEGEND)], links=saturated, data_links=[links.logs()], width=8)),
        graph(Signal("Wait inside the gateway (p95)", "Time a call waited in the gateway before its request "
                     "was written (admission, shared state, a connection): not provider latency.", "s",
                     [Query(q.call_wait(s), CALL_LEGEND)])),
    ]
    if process:
        panels.append(graph(Signal(
            "Event-loop lag (p99)", "How late the event loop runs callbacks, per replica: the process's own "
            f"saturation. Line: GatewayEventLoopLagHigh fires above {f.event_loop_lag:g} s at p99.", "s",
            [Query(q.event_loop_lag(), "{{instance}}")], ((None, OK), (f.event_loop_lag, WARNING)),
            [links.runbook("GatewayEventLoopLagHigh", f.runbooks["GatewayEventLoopLagHigh"])])))
    return "Isolation and saturation", panels


def alerts(s: q.Scope, f: Facts, process: bool) -> Row:
    """``process``: include the shared state store (one per gateway, not per provider)."""
    panels: list[Builders] = [
        listing(Signal("Firing alerts", "Alerts firing in Prometheus now (ALERTS), from the rules rendered from "
                       "app/monitoring/rules.py; their runbooks are linked from this panel.", "short",
                       [Query(q.firing_alerts(s), "{{alertname}}")],
                       links=[links.runbook(name, url) for name, url in f.runbooks.items()])),
    ]
    if process:
        panels.append(timeline(Signal(
            "Shared state store", "Whether every replica's shared state store (STATE_REDIS_URL) answers: "
            "down fires GatewayStateBackendDown.", "short", [Query(q.state_backend(), "{{backend}}")],
            ((None, CRITICAL), (1, OK)),
            [links.runbook("GatewayStateBackendDown", f.runbooks["GatewayStateBackendDown"])],
            mappings={"0": ("down", CRITICAL), "1": ("up", OK)})))
    return "Alerts and shared state", panels


def slo(s: q.Scope, f: Facts) -> Row:
    """Error budgets: what is left over the period, and each budget-burn pair's long window."""
    steps = ((None, OK), *((factor, WARNING if factor < 6 else CRITICAL) for _, factor in sorted(
        f.burn_pairs, key=lambda pair: pair[1])))
    pairs = ", ".join(f"{factor:g}x over {window}" for window, factor in f.burn_pairs)

    def burn(signal: SloSignal, alert: str, what: str) -> Builders:
        return graph(Signal(
            f"{signal.capitalize()} burn rate", f"{what} over the error budget (1 spends it exactly in "
            f"{f.slo_period}), over each pair's long window. Lines: {alert} fires when a pair's long and "
            f"short windows both burn above its factor ({pairs}; the first two page).", "short",
            [Query(q.burn_rate(signal, window, s), f"{window} {CALL_LEGEND}") for window, _ in f.burn_pairs],
            steps, [links.runbook(alert, f.runbooks[alert])], width=8))

    return "Error budgets", [
        graph(Signal("Error budget left", f"Share of each operation's error budget left over {f.slo_period} "
                     "(1 - the burn rate over the period): availability (failed calls) and latency (calls "
                     "slower than SLO_LATENCY_THRESHOLD). Below 0 the budget is overspent.", "percentunit",
                     [Query(q.budget_left("availability", s), "availability " + CALL_LEGEND),
                      Query(q.budget_left("latency", s), "latency " + CALL_LEGEND)],
                     ((None, CRITICAL), (0, OK)), width=8)),
        burn("availability", "ProviderErrorBudgetBurn", "Failed / attempted calls"),
        burn("latency", "ProviderLatencyBudgetBurn", "Calls slower than SLO_LATENCY_THRESHOLD / attempted calls"),
    ]
