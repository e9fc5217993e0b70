"""``PRICES_FILE``, ``CLIENT_BUDGETS_FILE`` and named ``GATEWAY_API_KEYS``: read at start-up, a bad
one stops the start with exit status 2 and a message naming the variable and the place; a price
from the file takes precedence over the built-in and library prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from tests.gateway import running_gateway
from tests.support import free_port
from tests.test_cli import run

from .test_costs import cost


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_named_keys_attribute_to_their_name_and_keep_only_the_key_as_the_secret() -> None:
    settings = load_settings({"GATEWAY_API_KEYS": "team-a:sk-1, sk-2 ,bad name:sk-3"})
    assert [k.get_secret_value() for k in settings.gateway_api_keys] == ["sk-1", "sk-2", "bad name:sk-3"]
    assert settings.client_names == ("team-a", "anonymous", "anonymous")
    assert "sk-1" not in repr(settings) and "team-a" in str(settings.public_dict()["clients"])


@pytest.mark.parametrize(("text", "message"), [
    ("sarvam: [1, 2]", "PRICES_FILE: expected a mapping of operation to models at sarvam"),
    ("acme: {}", "PRICES_FILE: expected a provider among sarvam, deepgram, openai, rag (got 'acme'"),
    ("sarvam: {dub: {'*': {character: 1}}}", "PRICES_FILE: expected an operation of sarvam among translate, tts, "
                                             "stt (got 'dub')"),
    ("deepgram: {stt: {'nova-3': {minute: 0.1}}}", "PRICES_FILE: expected units among character, audio_second"),
    ("deepgram: {stt: {'nova-3': {audio_second: -1}}}", "PRICES_FILE: expected a number of USD >= 0 at "
                                                        "deepgram.stt.nova-3.audio_second (got '-1')"),
    ("openai: {chat: {gpt: {input_token: cheap}}}", "(got 'cheap')"),
    ("sarvam: {tts: [", "PRICES_FILE: expected a YAML file"),
])
def test_a_bad_price_file_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"PRICES_FILE": write(tmp_path, "prices.yaml", text)})
    assert message in str(raised.value)


@pytest.mark.parametrize(("text", "message"), [
    ("team-z: {daily_usd: 1}", "CLIENT_BUDGETS_FILE: expected client names among team-a, anonymous"),
    ("team-a: {enforce: true}", "CLIENT_BUDGETS_FILE: expected daily_usd or monthly_usd at team-a"),
    ("team-a: {daily_usd: 1, weekly_usd: 5}", "CLIENT_BUDGETS_FILE: expected a mapping of daily_usd, enforce"),
    ("team-a: {daily_usd: 1, enforce: 'yes'}", "expected true or false at team-a.enforce"),
    ("team-a: {daily_usd: 1, max_in_flight: 0}", "expected an integer >= 1 at team-a.max_in_flight (got '0')"),
])
def test_a_bad_budget_file_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"GATEWAY_API_KEYS": "team-a:k", "CLIENT_BUDGETS_FILE": write(tmp_path, "b.yaml", text)})
    assert message in str(raised.value)


def test_budgets_are_read_with_their_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "b.yaml", "team-a: {daily_usd: 2.5, enforce: true}\nanonymous: {monthly_usd: 10}\n")
    budgets = load_settings({"GATEWAY_API_KEYS": "team-a:k", "CLIENT_BUDGETS_FILE": path}).budgets
    assert (budgets["team-a"].daily_usd, budgets["team-a"].monthly_usd, budgets["team-a"].enforce,
            budgets["team-a"].max_in_flight) == (2.5, None, True, 1)
    assert (budgets["anonymous"].monthly_usd, budgets["anonymous"].enforce) == (10.0, False)


def test_a_missing_price_file_stops_the_start_with_exit_status_2(tmp_path: Path) -> None:
    result = run("serve", "--port", str(free_port()), env={"PRICES_FILE": str(tmp_path / "nope.yaml")})
    assert result.returncode == 2
    assert f"PRICES_FILE: expected the path of a readable YAML file (got '{tmp_path / 'nope.yaml'}')" in result.stderr


def test_the_price_file_takes_precedence_over_built_in_and_library_prices(tmp_path: Path) -> None:
    prices = write(tmp_path, "prices.yaml", "\n".join([
        "sarvam:",
        "  translate:",
        "    '*': {character: 0.001}",
        "openai:",
        "  chat:",
        "    'sim-*': {input_token: 0.00001, output_token: 0.00002}",
    ]))
    with running_gateway({"PRICES_FILE": prices}) as gw:
        gw.translate("twelve chars").raise_for_status()
        assert cost(gw, provider="sarvam", operation="translate") == pytest.approx(12 * 0.001)
        answer = gw.client.post("/v1/chat/completions", json={
            "model": "sim-house-model", "messages": [{"role": "user", "content": "hi"}]}).json()
        tokens = answer["usage"]
        assert cost(gw, provider="openai", operation="chat", model="sim-house-model") == pytest.approx(
            tokens["prompt_tokens"] * 0.00001 + tokens["completion_tokens"] * 0.00002)
