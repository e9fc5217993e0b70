"""Configuration: every seed variable, defaults, validation and secrets."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest

import app.config as config_module
from app.config import ConfigError, Secret, format_duration, load_settings, parse_duration

pytestmark = pytest.mark.unit

SEED_ENV = {
    "ENVIRONMENT": "production",
    "SARVAM_RATE_LIMIT": "61", "DEEPGRAM_RATE_LIMIT": "101", "OPENAI_RATE_LIMIT": "1001", "RAG_RATE_LIMIT": "201",
    "SARVAM_MAX_FAILURES": "7", "SARVAM_CIRCUIT_RESET_TIME": "45",
    "SARVAM_MAX_TEXT_LENGTH": "9000", "SARVAM_MAX_AUDIO_SIZE_MB": "25", "SARVAM_MAX_AUDIO_DURATION_SEC": "120",
    "ENABLE_METRICS": "false", "METRICS_INTERVAL": "15", "HEALTH_CHECK_INTERVAL": "20",
}


def test_every_seed_variable_is_read_with_its_meaning() -> None:
    settings = load_settings(SEED_ENV)
    assert settings.environment == "production" and settings.is_production
    assert [settings.get_service_config(p).rate_limit for p in ("sarvam", "deepgram", "openai", "rag")] == [
        61, 101, 1001, 201]
    sarvam = settings.get_service_config("sarvam")
    assert (sarvam.max_failures, sarvam.circuit_reset_time) == (7, 45.0)
    assert (sarvam.max_text_length, sarvam.max_audio_size_mb, sarvam.max_audio_duration_sec) == (9000, 25.0, 120.0)
    assert settings.enable_metrics is False
    assert settings.metrics_interval == 15.0 and settings.health_check_interval == 20.0


def test_seed_variables_generalise_to_every_provider() -> None:
    env = {f"{p}_{name}": value for p in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG")
           for name, value in (("MAX_FAILURES", "3"), ("CIRCUIT_RESET_TIME", "9"), ("TIMEOUT", "2.5"),
                               ("MAX_RETRIES", "1"), ("MAX_TEXT_LENGTH", "50"), ("MAX_AUDIO_SIZE_MB", "1.5"),
                               ("MAX_AUDIO_DURATION_SEC", "30"))}
    settings = load_settings(env)
    for provider in ("sarvam", "deepgram", "openai", "rag"):
        cfg = settings.get_service_config(provider)
        assert (cfg.max_failures, cfg.circuit_reset_time, cfg.timeout, cfg.max_retries) == (3, 9.0, 2.5, 1)
        assert (cfg.max_text_length, cfg.max_audio_size_mb, cfg.max_audio_duration_sec) == (50, 1.5, 30.0)


def test_defaults_match_the_seed() -> None:
    settings = load_settings({})
    assert settings.environment == "development" and settings.log_format == "text"
    assert [settings.get_service_config(p).rate_limit for p in ("sarvam", "deepgram", "openai", "rag")] == [
        60, 100, 1000, 200]
    cfg = settings.get_service_config("SARVAM")
    assert (cfg.max_failures, cfg.circuit_reset_time, cfg.max_retries) == (5, 60.0, 0)
    assert (cfg.max_text_length, cfg.max_audio_size_mb, cfg.max_audio_duration_sec) == (10000, 50.0, 300.0)
    assert cfg.mode == "simulated" and cfg.base_url is None
    assert settings.enable_metrics and settings.metrics_interval == 60 and settings.health_check_interval == 30
    alerts = settings.alerts
    assert (alerts.window, alerts.min_requests, alerts.success_rate_warning, alerts.success_rate_critical) == (
        300.0, 10, 0.95, 0.80)
    assert (alerts.latency_p95_warning, alerts.latency_p95_critical) == (5.0, 10.0)
    assert settings.state_redis_url is None and settings.rate_limit_window == 60.0
    assert load_settings({"ENVIRONMENT": "production"}).log_format == "json"


def test_empty_variables_count_as_unset() -> None:
    settings = load_settings({"SARVAM_API_KEY": "", "SARVAM_RATE_LIMIT": " ", "ALERT_WINDOW": ""})
    assert settings.get_service_config("sarvam").mode == "simulated"
    assert settings.get_service_config("sarvam").rate_limit == 60
    assert settings.alerts.window == 300.0


def test_alert_for_may_be_zero_like_prometheus() -> None:
    assert load_settings({"ALERT_FOR": "0s"}).alerts.for_ == 0.0
    with pytest.raises(ConfigError, match="ALERT_WINDOW"):
        load_settings({"ALERT_WINDOW": "0"})


def test_a_key_makes_a_provider_live_with_its_real_url() -> None:
    settings = load_settings({"OPENAI_API_KEY": "sk-test", "DEEPGRAM_API_KEY": "dg", "DEEPGRAM_BASE_URL": "http://x:1/"})
    assert settings.get_service_config("openai").mode == "live"
    assert settings.get_service_config("openai").base_url == "https://api.openai.com/v1"
    assert settings.get_service_config("deepgram").base_url == "http://x:1"
    simulated = settings.with_simulator("http://127.0.0.1:9/_sim")
    assert simulated.get_service_config("sarvam").base_url == "http://127.0.0.1:9/_sim/sarvam"
    assert simulated.get_service_config("openai").base_url == "https://api.openai.com/v1"


@pytest.mark.parametrize(("variable", "value", "accepts"), [
    ("SARVAM_RATE_LIMIT", "lots", "integer >= 1"),
    ("SARVAM_RATE_LIMIT", "0", "integer >= 1"),
    ("DEEPGRAM_MAX_FAILURES", "-1", "integer >= 1"),
    ("OPENAI_CIRCUIT_RESET_TIME", "soon", "number > 0"),
    ("RAG_TIMEOUT", "0", "number > 0"),
    ("SARVAM_MAX_AUDIO_SIZE_MB", "nan", "number > 0"),
    ("SARVAM_MAX_RETRIES", "1.5", "integer >= 0"),
    ("ENVIRONMENT", "staging", "development or production"),
    ("ENABLE_METRICS", "maybe", "true or false"),
    ("ALERT_WINDOW", "5 minutes", "duration"),
    ("ALERT_FOR", "-1s", "duration"),
    ("ALERT_MIN_REQUESTS", "0", "integer >= 1"),
    ("ALERT_SUCCESS_RATE_WARNING", "95", "ratio"),
    ("ALERTMANAGER_URL", "localhost:9093", "http:// or https:// URL"),
    ("SARVAM_BASE_URL", "ftp://x", "http:// or https:// URL"),
    ("FALLBACKS_SPEECH_ORDER", "openai,sarvam", "auto or sarvam,deepgram or deepgram,sarvam"),
])
def test_invalid_values_stop_start_up_naming_the_variable(variable: str, value: str, accepts: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert str(raised.value).startswith(f"{variable}: expected")
    assert accepts in str(raised.value)
    assert raised.value.variable == variable


def test_inconsistent_thresholds_are_rejected() -> None:
    with pytest.raises(ConfigError, match="ALERT_SUCCESS_RATE_CRITICAL"):
        load_settings({"ALERT_SUCCESS_RATE_CRITICAL": "0.97"})
    with pytest.raises(ConfigError, match="ALERT_LATENCY_P95_CRITICAL"):
        load_settings({"ALERT_LATENCY_P95_CRITICAL": "4s"})


def test_a_bad_redis_url_is_named_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"STATE_REDIS_URL": "http://user:hunter2@host"})
    assert "STATE_REDIS_URL" in str(raised.value) and "hunter2" not in str(raised.value)


def test_durations_read_and_write_like_prometheus() -> None:
    assert [parse_duration(t) for t in ("30s", "5m", "1h30m", "500ms", "90", "1.5")] == [30, 300, 5400, 0.5, 90, 1.5]
    assert [format_duration(s) for s in (300, 30, 3600, 0.5, 90)] == ["5m", "30s", "1h", "500ms", "90s"]
    with pytest.raises(ValueError):
        parse_duration("5 m")


def test_secrets_never_show(caplog: pytest.LogCaptureFixture) -> None:
    env = {"SARVAM_API_KEY": "sk-sarvam-SECRET1", "GATEWAY_API_KEYS": "client-SECRET2, client-SECRET3",
           "ADMIN_API_KEY": "admin-SECRET4", "STATE_REDIS_URL": "redis://:pw-SECRET5@localhost:6379"}
    settings = load_settings(env)
    cfg = settings.get_service_config("sarvam")
    assert cfg.api_key is not None and cfg.api_key.get_secret_value() == "sk-sarvam-SECRET1"
    shown = [repr(settings), str(settings), repr(cfg), str(cfg.api_key), f"{cfg.api_key}",
             json.dumps(settings.public_dict())]
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings %s %r", settings, cfg)
    shown.append(caplog.text)
    for text in shown:
        assert "SECRET" not in text, text
    assert settings.public_dict()["services"]["sarvam"]["api_key"] == "configured"
    assert settings.public_dict()["services"]["sarvam"]["mode"] == "live"
    with pytest.raises(TypeError):
        pickle.dumps(Secret("x"))
    with pytest.raises(TypeError):
        json.dumps({"key": cfg.api_key})


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("admin-from-file\n")
    (tmp_path / "empty").write_text("")
    settings = load_settings({"ADMIN_API_KEY_FILE": str(tmp_path / "admin"),
                              "OPENAI_API_KEY_FILE": str(tmp_path / "empty")})
    assert settings.admin_api_key == Secret("admin-from-file")
    assert settings.get_service_config("openai").mode == "simulated"  # an empty file is no key
    assert load_settings({"ADMIN_API_KEY": "direct", "ADMIN_API_KEY_FILE": str(tmp_path / "admin")}
                         ).admin_api_key == Secret("direct")
    with pytest.raises(ConfigError, match="ADMIN_API_KEY_FILE: expected the path of a readable file"):
        load_settings({"ADMIN_API_KEY_FILE": str(tmp_path / "missing")})


def test_the_seed_config_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SARVAM_RATE_LIMIT", "77")
    config_module.get_settings.cache_clear()
    try:
        # The seed's module-level object is built from the environment when it is first read.
        assert config_module.config.get_service_config("sarvam").rate_limit == 77
        assert config_module.get_service_config("sarvam").max_failures == 5
    finally:
        config_module.get_settings.cache_clear()


def test_slo_objectives_defaults_and_per_provider_overrides() -> None:
    slo = load_settings({}).alerts.slo
    assert (slo.defaults.availability, slo.defaults.latency, slo.defaults.latency_threshold) == (0.995, 0.99, 5.0)
    assert (slo.period, slo.time_scale, dict(slo.overrides)) == (30 * 86400.0, 1, {})
    slo = load_settings({"SLO_AVAILABILITY": "0.999", "SLO_LATENCY_THRESHOLD": "2.5", "SLO_PERIOD": "28d",
                         "SLO_TIME_SCALE": "60", "SARVAM_SLO_LATENCY": "0.95",
                         "DEEPGRAM_SLO_LATENCY_THRESHOLD": "10s"}).alerts.slo
    assert (slo.defaults.availability, slo.defaults.latency_threshold, slo.period, slo.time_scale) == (
        0.999, 2.5, 28 * 86400.0, 60)
    assert set(slo.overrides) == {"sarvam", "deepgram"}
    sarvam, deepgram, openai = (slo.objectives(p) for p in ("sarvam", "deepgram", "openai"))
    assert (sarvam.availability, sarvam.latency, sarvam.latency_threshold) == (0.999, 0.95, 2.5)
    assert (deepgram.latency, deepgram.latency_threshold) == (0.99, 10.0)
    assert openai == slo.defaults


@pytest.mark.parametrize(("name", "value", "accepts"), [
    ("SLO_AVAILABILITY", "1", "a ratio between 0 and 1"),
    ("RAG_SLO_LATENCY", "0", "a ratio between 0 and 1"),
    ("SLO_LATENCY_THRESHOLD", "4s", "a bound of the latency histogram: 0.005s, "),
    ("OPENAI_SLO_LATENCY_THRESHOLD", "3", "a bound of the latency histogram"),
    ("SLO_PERIOD", "0", "a duration"),
    ("SLO_TIME_SCALE", "0", "an integer >= 1"),
])
def test_slo_settings_are_validated_at_start(name: str, value: str, accepts: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(f"{name}: expected {accepts}")


def test_provider_spend_budgets_are_read_per_provider_and_unset_is_none() -> None:
    assert dict(load_settings({}).alerts.spend) == {}
    spend = load_settings({"OPENAI_BUDGET_DAILY_USD": "25", "OPENAI_BUDGET_MONTHLY_USD": "500.5",
                           "DEEPGRAM_BUDGET_MONTHLY_USD": "30"}).alerts.spend
    assert set(spend) == {"openai", "deepgram"}
    assert (spend["openai"].daily, spend["openai"].monthly) == (25.0, 500.5)
    assert (spend["deepgram"].daily, spend["deepgram"].monthly) == (None, 30.0)


@pytest.mark.parametrize(("name", "value"), [
    ("OPENAI_BUDGET_DAILY_USD", "0"),
    ("SARVAM_BUDGET_MONTHLY_USD", "-5"),
    ("RAG_BUDGET_DAILY_USD", "ten"),
    ("DEEPGRAM_BUDGET_DAILY_USD", "inf"),
])
def test_provider_spend_budgets_are_validated_at_start(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(f"{name}: expected a number > 0")
