"""Settings from the environment, validated once at start-up.

Every variable of the seed keeps its name and meaning, generalised per provider
(``SARVAM_RATE_LIMIT``, ``DEEPGRAM_MAX_FAILURES``, ...). An empty variable counts as unset.
A bad value raises :class:`ConfigError` naming the variable and what it accepts; the typed reader
is :mod:`app.config_env`.

Why not pydantic-settings: its errors name the field (``sarvam_rate_limit``), not the variable,
and echo the value (``input_value='redis://user:password@host'``), where ours say
``SARVAM_RATE_LIMIT: expected an integer >= 1 (got 'lots')`` and never show a secret or a URL's
password (tests/test_config.py pins both). Keeping that would mean a translation layer over its
``ValidationError``s, plus a custom source for ``NAME_FILE`` secrets and per-provider prefixes
built at run time: more code than the reader it would replace.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from .config_env import LATENCY_BUCKETS, ConfigError, Env, Secret, format_duration, parse_duration
from .config_files import ANONYMOUS, ClientBudget, PriceRule, load_budgets, load_prices

__all__ = [
    "ANONYMOUS", "OPERATIONS", "PROVIDERS", "AlertSettings", "ClientBudget", "ConfigError", "Objectives", "PriceRule",
    "Secret", "ServiceConfig", "Settings", "SloSettings", "SpendBudget", "format_duration", "get_service_config",
    "get_settings", "load_settings", "parse_duration", "redact_url",
]

PROVIDERS: tuple[str, ...] = ("sarvam", "deepgram", "openai", "rag")
SPEECH_ORDERS = ("auto", "sarvam,deepgram", "deepgram,sarvam")
OPERATIONS: dict[str, tuple[str, ...]] = {
    "sarvam": ("translate", "tts", "stt"), "deepgram": ("stt", "tts"), "openai": ("chat", "embeddings"),
    "rag": ("query", "ingest"),
}
"""Each provider's operations (the services of ``providers/catalog.py``), for the files that name them."""
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Environment = Literal["development", "production"]


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of one provider (``config.get_service_config('sarvam')``)."""

    name: str
    rate_limit: int
    """Calls per rate-limit window (one minute unless ``RATE_LIMIT_WINDOW`` says otherwise)."""
    max_failures: int
    """Consecutive failures that open the circuit breaker."""
    circuit_reset_time: float
    """Seconds an open breaker waits before letting one trial call through."""
    timeout: float
    """Seconds one HTTP attempt may take (connect to last byte of a non-streamed answer)."""
    max_retries: int
    """Further attempts after a failed one (0: fail fast; callers retry on ``Retry-After``)."""
    max_text_length: int
    max_audio_size_mb: float
    max_audio_duration_sec: float
    max_stream_seconds: float
    """Seconds a live (WebSocket) session may last; it is then closed with 1008 ``invalid_input``."""
    max_concurrency: int
    """Calls in flight to the provider at once in this process (a bulkhead); one more is refused
    at once with 503 ``overloaded``. The provider's connection pool is sized from it."""
    api_key: Secret | None = field(repr=False)
    base_url: str | None
    """The provider's URL; for a simulated provider, the simulator's (filled in at start-up)."""

    @property
    def mode(self) -> Literal["live", "simulated"]:
        return "live" if self.api_key is not None else "simulated"

    @property
    def is_simulated(self) -> bool:
        return self.api_key is None

    @property
    def max_audio_size_bytes(self) -> int:
        return int(self.max_audio_size_mb * 1024 * 1024)

    def public_dict(self) -> dict[str, Any]:
        """Everything but the key, for ``/health/configuration``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_key"}
        data["mode"] = self.mode
        data["api_key"] = "configured" if self.api_key is not None else None
        data["base_url"] = redact_url(self.base_url)
        return data


def redact_url(url: str | None) -> str | None:
    """``url`` with the password of its user part (``https://user:pw@host``) masked."""
    if url is None or not urlsplit(url).password:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"))


# The seed's numbers where it gives them, our choices elsewhere.
# Concurrency: a voice stream holds its slot for as long as it plays (tens of seconds), so the
# speech providers get room for a few hundred streams per process; chat calls are short but many.
_SERVICE_DEFAULTS: dict[str, dict[str, float]] = {  # rate limits per the seed
    "sarvam": {"rate_limit": 60, "timeout": 30.0, "max_concurrency": 256},
    "deepgram": {"rate_limit": 100, "timeout": 30.0, "max_concurrency": 256},
    "openai": {"rate_limit": 1000, "timeout": 60.0, "max_concurrency": 512},
    "rag": {"rate_limit": 200, "timeout": 60.0, "max_concurrency": 256},
}
LIVE_BASE_URLS: dict[str, str] = {
    "sarvam": "https://api.sarvam.ai",
    "deepgram": "https://api.deepgram.com",
    "openai": "https://api.openai.com/v1",
}
SIMULATOR_PATHS: dict[str, str] = {"sarvam": "/sarvam", "deepgram": "/deepgram", "openai": "/openai/v1"}


def _service(env: Env, name: str) -> ServiceConfig:
    p = name.upper()
    defaults = _SERVICE_DEFAULTS[name]
    api_key = env.secret(f"{p}_API_KEY")
    return ServiceConfig(
        name=name,
        rate_limit=env.integer(f"{p}_RATE_LIMIT", int(defaults["rate_limit"]), minimum=1),
        max_failures=env.integer(f"{p}_MAX_FAILURES", 5, minimum=1),
        circuit_reset_time=env.number(f"{p}_CIRCUIT_RESET_TIME", 60.0),
        timeout=env.number(f"{p}_TIMEOUT", defaults["timeout"]),
        max_retries=env.integer(f"{p}_MAX_RETRIES", 0),
        max_text_length=env.integer(f"{p}_MAX_TEXT_LENGTH", 10000, minimum=1),
        max_audio_size_mb=env.number(f"{p}_MAX_AUDIO_SIZE_MB", 50.0),
        max_audio_duration_sec=env.number(f"{p}_MAX_AUDIO_DURATION_SEC", 300.0),
        max_stream_seconds=env.duration(f"{p}_MAX_STREAM_SECONDS", 3600.0),
        max_concurrency=env.integer(f"{p}_MAX_CONCURRENCY", int(defaults["max_concurrency"]), minimum=1),
        api_key=api_key,
        base_url=env.url(f"{p}_BASE_URL") or (LIVE_BASE_URLS.get(name) if api_key else None),
    )


@dataclass(frozen=True)
class Objectives:
    """The service-level objectives of one provider's operations (``SLO_*``, or ``P_SLO_*``)."""

    availability: float = 0.995
    """Share of attempted calls that succeed (``SLO_AVAILABILITY``); its error budget is 1 - it."""
    latency: float = 0.99
    """Share of attempted calls faster than :attr:`latency_threshold` (``SLO_LATENCY``)."""
    latency_threshold: float = 5.0
    """Seconds (``SLO_LATENCY_THRESHOLD``): a bound of the latency histogram, so both engines count
    the slow calls exactly from its buckets."""


@dataclass(frozen=True)
class SloSettings:
    """Objectives per provider and the period their error budgets cover."""

    defaults: Objectives = Objectives()
    overrides: Mapping[str, Objectives] = field(default_factory=dict)
    """Providers whose objectives differ from :attr:`defaults` (set by ``P_SLO_*``)."""
    period: float = 30 * 86400.0
    """Seconds the error budget covers (``SLO_PERIOD``, default 30d)."""
    time_scale: int = 1
    """Every burn-rate window and the period divided by this (``SLO_TIME_SCALE``, default 1): with
    60, the 3-day window is 72 minutes, so the tests run what takes days in production."""

    def objectives(self, provider: str) -> Objectives:
        return self.overrides.get(provider, self.defaults)

    @property
    def providers(self) -> Mapping[str, Objectives]:
        """Every known provider's objectives."""
        return {name: self.objectives(name) for name in PROVIDERS}


@dataclass(frozen=True)
class SpendBudget:
    """A provider's spend budget in USD (``P_BUDGET_DAILY_USD``, ``P_BUDGET_MONTHLY_USD``); None is
    no budget."""

    daily: float | None = None
    monthly: float | None = None


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and timing shared by the in-app evaluator and the rendered rule files."""

    window: float = 300.0
    """Seconds of history each alert looks at (``ALERT_WINDOW``, default 5m)."""
    for_: float = 60.0
    """Seconds a condition must hold before the alert fires (``ALERT_FOR``, default 1m)."""
    eval_interval: float = 15.0
    """Seconds between evaluations (``ALERT_EVAL_INTERVAL``, default 15s)."""
    min_requests: int = 10
    """Attempted calls the window must hold before rate and latency alerts may fire."""
    success_rate_warning: float = 0.95
    success_rate_critical: float = 0.80
    latency_p95_warning: float = 5.0
    """Seconds; a histogram bucket boundary so that the alert is exact."""
    latency_p95_critical: float = 10.0
    event_loop_lag_warning: float = 0.1
    """Seconds of p99 event-loop lag above which a replica is saturated (a lag histogram bound)."""
    saturation_ratio: float = 0.8
    """Share of ``P_MAX_CONCURRENCY`` in flight at which ``ProviderSaturated`` holds."""
    slo: SloSettings = SloSettings()
    """The objectives whose error-budget burn rates ``ProviderErrorBudgetBurn`` and
    ``ProviderLatencyBudgetBurn`` watch."""
    spend: Mapping[str, SpendBudget] = field(default_factory=dict)
    """Per provider with a budget, what ``ProviderBudgetBurn`` watches (none by default: no rule)."""


@dataclass(frozen=True)
class Settings:
    """The whole configuration, read once from the environment."""

    environment: Environment
    services: Mapping[str, ServiceConfig]
    enable_metrics: bool
    metrics_interval: float
    health_check_interval: float
    rate_limit_window: float
    """Seconds of the moving rate-limit window; 60 makes ``P_RATE_LIMIT`` a per-minute limit."""
    alerts: AlertSettings
    alertmanager_url: str | None
    monitoring_bucket: float
    """Seconds per time bucket of the in-app recorder."""
    monitoring_horizon: float
    """Seconds of history the in-app recorder keeps."""
    state_redis_url: str | None = field(repr=False)
    gateway_api_keys: tuple[Secret, ...] = field(repr=False)
    """The client keys (without their names)."""
    client_names: tuple[str, ...]
    """Per key of :attr:`gateway_api_keys`, the client its usage and cost are attributed to
    (``name`` of a ``name:key`` entry, else ``anonymous``)."""
    admin_api_key: Secret | None = field(repr=False)
    metrics_require_auth: bool
    fallbacks_enabled: bool
    speech_order: str
    """``FALLBACKS_SPEECH_ORDER``: ``auto`` (Sarvam first for ``-IN`` languages, Deepgram first
    otherwise), or ``sarvam,deepgram`` / ``deepgram,sarvam`` for every language both speak."""
    openai_model: str
    rag_db_path: str
    log_format: Literal["json", "text"]
    log_level: str
    shutdown_grace: float
    upload_spool_dir: str
    """Where uploads past the in-memory threshold are spooled (each process in its own directory)."""
    upload_idle_timeout: float
    """Seconds an upload may send nothing before it is answered 408 and its spool removed."""
    upload_deadline: float
    """Seconds a whole upload may take (a client sending a byte now and then never idles);
    past them it is answered 408 and its spool removed."""
    stream_idle_timeout: float
    """Seconds a live session's caller may send nothing before it is closed with 1008."""
    stream_max_frame_bytes: int
    """The largest WebSocket message a live session's caller may send (1008 past it)."""
    access_log: bool = False
    """One line per HTTP request (common log format plus trace id) when true."""
    log_summary_interval: float = 10.0
    """Seconds between summaries of repeated log events (storm control)."""
    prices: tuple[PriceRule, ...] = ()
    """``PRICES_FILE``'s rules, which take precedence over the built-in prices."""
    budgets: Mapping[str, ClientBudget] = field(default_factory=dict)
    """``CLIENT_BUDGETS_FILE``'s budgets by client name."""

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def get_service_config(self, provider: str) -> ServiceConfig:
        try:
            return self.services[provider.lower()]
        except KeyError:
            raise KeyError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}") from None

    def with_simulator(self, simulator_url: str) -> Settings:
        """Point every simulated provider without its own base URL at the simulator."""
        services = {
            name: svc if svc.base_url or name not in SIMULATOR_PATHS
            else dataclasses.replace(svc, base_url=simulator_url.rstrip("/") + SIMULATOR_PATHS[name])
            for name, svc in self.services.items()
        }
        return dataclasses.replace(self, services=services)

    @property
    def needs_simulator(self) -> bool:
        return any(svc.is_simulated and svc.base_url is None for svc in self.services.values())

    def public_dict(self) -> dict[str, Any]:
        """The configuration with every secret redacted, for ``/health/configuration``."""
        return {
            "environment": self.environment,
            "enable_metrics": self.enable_metrics,
            "metrics_interval": self.metrics_interval,
            "health_check_interval": self.health_check_interval,
            "rate_limit_window": self.rate_limit_window,
            "alerts": dataclasses.asdict(self.alerts),
            "alertmanager_url": redact_url(self.alertmanager_url),
            "monitoring": {"bucket": self.monitoring_bucket, "horizon": self.monitoring_horizon},
            "state": "redis" if self.state_redis_url else "memory",
            "client_auth": bool(self.gateway_api_keys),
            "clients": sorted(set(self.client_names)),
            "prices_overridden": len(self.prices),
            "budgets": {name: dataclasses.asdict(budget) for name, budget in self.budgets.items()},
            "admin_auth": self.admin_api_key is not None,
            "metrics_require_auth": self.metrics_require_auth,
            "fallbacks_enabled": self.fallbacks_enabled,
            "speech_order": self.speech_order,
            "openai_model": self.openai_model,
            "log_format": self.log_format,
            "log_level": self.log_level,
            "access_log": self.access_log,
            "log_summary_interval": self.log_summary_interval,
            "services": {name: svc.public_dict() for name, svc in self.services.items()},
        }


def _objectives(env: Env, prefix: str, defaults: Objectives) -> Objectives:
    threshold = env.duration(f"{prefix}SLO_LATENCY_THRESHOLD", defaults.latency_threshold)
    if threshold not in LATENCY_BUCKETS:
        raise ConfigError(f"{prefix}SLO_LATENCY_THRESHOLD", "a bound of the latency histogram: "
                          + ", ".join(f"{b:g}s" for b in LATENCY_BUCKETS))
    return Objectives(
        availability=env.ratio(f"{prefix}SLO_AVAILABILITY", defaults.availability),
        latency=env.ratio(f"{prefix}SLO_LATENCY", defaults.latency),
        latency_threshold=threshold,
    )


def _slo(env: Env) -> SloSettings:
    """``SLO_*``, then each provider's ``P_SLO_*`` over them."""
    defaults = _objectives(env, "", Objectives())
    overrides = {name: found for name in PROVIDERS
                 if (found := _objectives(env, f"{name.upper()}_", defaults)) != defaults}
    return SloSettings(defaults, overrides, env.duration("SLO_PERIOD", 30 * 86400.0),
                       env.integer("SLO_TIME_SCALE", 1, minimum=1))


def _spend(env: Env) -> dict[str, SpendBudget]:
    """``P_BUDGET_DAILY_USD`` and ``P_BUDGET_MONTHLY_USD`` per provider: unset is no budget, else a
    positive number of US dollars."""
    budgets: dict[str, SpendBudget] = {}
    for provider in PROVIDERS:
        daily, monthly = (f"{provider.upper()}_BUDGET_{period}_USD" for period in ("DAILY", "MONTHLY"))
        budget = SpendBudget(env.number(daily, 0.0) if env.raw(daily) is not None else None,
                             env.number(monthly, 0.0) if env.raw(monthly) is not None else None)
        if budget != SpendBudget():
            budgets[provider] = budget
    return budgets


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises :class:`ConfigError` on the first bad one."""
    env = Env(os.environ if environ is None else environ)
    environment: Environment = "production" if env.choice(
        "ENVIRONMENT", "development", ("development", "production")) == "production" else "development"
    production = environment == "production"
    alerts = AlertSettings(
        window=env.duration("ALERT_WINDOW", 300.0),
        for_=env.duration("ALERT_FOR", 60.0, allow_zero=True),
        eval_interval=env.duration("ALERT_EVAL_INTERVAL", 15.0),
        min_requests=env.integer("ALERT_MIN_REQUESTS", 10, minimum=1),
        success_rate_warning=env.ratio("ALERT_SUCCESS_RATE_WARNING", 0.95),
        success_rate_critical=env.ratio("ALERT_SUCCESS_RATE_CRITICAL", 0.80),
        latency_p95_warning=env.duration("ALERT_LATENCY_P95_WARNING", 5.0),
        latency_p95_critical=env.duration("ALERT_LATENCY_P95_CRITICAL", 10.0),
        event_loop_lag_warning=env.duration("ALERT_EVENT_LOOP_LAG_WARNING", 0.1),
    )
    alerts = dataclasses.replace(alerts, slo=_slo(env), spend=_spend(env))
    if alerts.success_rate_critical >= alerts.success_rate_warning:
        raise ConfigError("ALERT_SUCCESS_RATE_CRITICAL", "a ratio below ALERT_SUCCESS_RATE_WARNING")
    if alerts.latency_p95_critical <= alerts.latency_p95_warning:
        raise ConfigError("ALERT_LATENCY_P95_CRITICAL", "a duration above ALERT_LATENCY_P95_WARNING")
    redis_url = env.raw("STATE_REDIS_URL")
    if redis_url is not None and not re.match(r"^(redis|rediss|unix)://", redis_url.strip()):
        raise ConfigError("STATE_REDIS_URL", "a redis://, rediss:// or unix:// URL", secret=True)
    keys, names = _client_keys(env)
    prices_file, budgets_file = env.raw("PRICES_FILE"), env.raw("CLIENT_BUDGETS_FILE")
    bucket = env.duration("MONITORING_BUCKET", 10.0)
    horizon = env.duration("MONITORING_HORIZON", 3600.0)
    if horizon < max(bucket, alerts.window):
        raise ConfigError("MONITORING_HORIZON", "a duration at least ALERT_WINDOW and MONITORING_BUCKET")
    return Settings(
        environment=environment,
        services={name: _service(env, name) for name in PROVIDERS},
        enable_metrics=env.boolean("ENABLE_METRICS", True),
        metrics_interval=env.number("METRICS_INTERVAL", 60.0),
        health_check_interval=env.number("HEALTH_CHECK_INTERVAL", 30.0),
        rate_limit_window=env.duration("RATE_LIMIT_WINDOW", 60.0),
        alerts=alerts,
        alertmanager_url=env.url("ALERTMANAGER_URL"),
        monitoring_bucket=bucket,
        monitoring_horizon=horizon,
        state_redis_url=redis_url.strip() if redis_url else None,
        gateway_api_keys=keys,
        client_names=names,
        admin_api_key=env.secret("ADMIN_API_KEY"),
        metrics_require_auth=env.boolean("METRICS_REQUIRE_AUTH", False),
        fallbacks_enabled=env.boolean("FALLBACKS_ENABLED", True),
        speech_order=env.choice("FALLBACKS_SPEECH_ORDER", "auto", SPEECH_ORDERS),
        openai_model=env.raw("OPENAI_MODEL") or "gpt-4o-mini",
        rag_db_path=env.raw("RAG_DB_PATH") or ":memory:",
        log_format="json" if env.choice("LOG_FORMAT", "json" if production else "text", ("json", "text")) == "json"
        else "text",
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        shutdown_grace=env.duration("SHUTDOWN_GRACE", 10.0),
        upload_spool_dir=env.raw("UPLOAD_SPOOL_DIR") or tempfile.gettempdir(),
        upload_idle_timeout=env.duration("UPLOAD_IDLE_TIMEOUT", 30.0),
        upload_deadline=env.duration("UPLOAD_DEADLINE", 120.0),
        stream_idle_timeout=env.duration("STREAM_IDLE_TIMEOUT", 30.0),
        stream_max_frame_bytes=env.integer("STREAM_MAX_FRAME_BYTES", 1024 * 1024, minimum=1),
        access_log=env.boolean("ACCESS_LOG", False),
        log_summary_interval=env.duration("LOG_SUMMARY_INTERVAL", 10.0),
        prices=load_prices(prices_file.strip(), OPERATIONS) if prices_file else (),
        budgets=load_budgets(budgets_file.strip(), (*dict.fromkeys(names), ANONYMOUS)) if budgets_file else {},
    )


def _client_keys(env: Env) -> tuple[tuple[Secret, ...], tuple[str, ...]]:
    """``GATEWAY_API_KEYS``: each entry a key, or ``name:key`` to attribute the key's calls to
    ``name`` (letters, digits, ``_.-``); the name is never part of the key."""
    keys: list[Secret] = []
    names: list[str] = []
    for entry in env.secrets("GATEWAY_API_KEYS"):
        name, colon, key = entry.get_secret_value().partition(":")
        if colon and _CLIENT_NAME.match(name) and key.strip():
            keys.append(Secret(key.strip()))
            names.append(name)
        else:
            keys.append(entry)
            names.append(ANONYMOUS)
    return tuple(keys), tuple(names)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from ``os.environ`` on first use."""
    return load_settings()


def get_service_config(provider: str) -> ServiceConfig:
    """The seed's API: ``config.get_service_config('sarvam')``."""
    return get_settings().get_service_config(provider)


def __getattr__(name: str) -> Any:
    # ``from app.config import config`` gives the seed's ``config`` object, read lazily.
    if name == "config":
        return get_settings()
    raise AttributeError(name)
