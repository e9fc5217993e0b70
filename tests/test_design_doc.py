"""docs/DESIGN.md names every contract the code has: each list below is taken from the code itself
(the settings loader, the routers, the instruments, the rule source, the error and event names),
so a name added to the code without a line in the document fails here, and so does a metric or an
alert the document still names after the code dropped it."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Router
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest

from app.api import docs, dropin, health, live_routes, metrics, status, stt_stream, v1
from app.api.problems import HTTP_ERROR_TYPES
from app.calls import ErrorType
from app.config import PROVIDERS, AlertSettings, load_settings
from app.logs import events
from app.monitoring.render import TEST_SPEND_BUDGETS
from app.monitoring.rules import alert_rules, recording_rules
from app.simulator.control import control_router
from app.simulator.router import SIM_PREFIX
from app.telemetry import instruments
from app.telemetry.instruments import Instruments

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")


def quoted(name: str) -> bool:
    """Whether the document writes ``name`` as code: `` `name` ``."""
    return f"`{name}`" in DESIGN


class RecordedEnviron(dict[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)


def settings_variables() -> set[str]:
    """Every variable the settings loader reads, as the document writes it: a name read for every
    provider (``SARVAM_TIMEOUT``, ..., ``RAG_TIMEOUT``) is ``P_TIMEOUT``; ``X_FILE`` is ``NAME_FILE``."""
    environ = RecordedEnviron()
    load_settings(environ)
    read = environ.read
    prefixes = [p.upper() + "_" for p in PROVIDERS]
    names: set[str] = set()
    for name in read:
        if name.endswith("_FILE") and name.removesuffix("_FILE") in read:
            names.add("NAME_FILE")
            continue
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        suffix = name.removeprefix(prefix) if prefix else ""
        if prefix and all(p + suffix in read for p in prefixes):
            names.add("P_" + suffix)
        else:
            names.add(name)
    return names


def _string_values(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> Iterator[str]:
    """The names an environment lookup's argument can be: a literal, an f-string (each ``{var}``
    written ``{VAR}``) or a variable assigned one of those somewhere in the module."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        yield "".join(str(part.value) if isinstance(part, ast.Constant) else
                      "{" + ast.unparse(part.value).upper() + "}" if isinstance(part, ast.FormattedValue) else ""
                      for part in node.values)
    elif isinstance(node, ast.Name):
        for value in assigned.get(node.id, []):
            yield from _string_values(value, {})


def _is_environ_lookup(call: ast.Call) -> bool:
    """``os.environ.get(...)``, ``os.getenv(...)`` or a module's ``_env(...)`` helper."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "_env"
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "getenv":
        return isinstance(func.value, ast.Name) and func.value.id == "os"
    return func.attr == "get" and ast.unparse(func.value) == "os.environ"


def other_variables(modules: Iterable[Path]) -> set[str]:
    """Variables read from ``os.environ`` outside the settings loader (OpenTelemetry's, the stack's).
    Names starting with ``_`` are private to the gateway's own processes."""
    names: set[str] = set()
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                assigned.setdefault(node.target.id, []).append(node.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and _is_environ_lookup(node):
                names.update(n for n in _string_values(node.args[0], assigned) if not n.startswith("_"))
    return names


def test_every_variable_the_settings_loader_reads_is_documented() -> None:
    names = settings_variables()
    assert {"P_RATE_LIMIT", "NAME_FILE", "ENVIRONMENT"} <= names  # the recording works
    assert sorted(n for n in names if not quoted(n)) == []


def test_every_other_environment_variable_the_code_reads_is_documented() -> None:
    app_modules = [p for p in (ROOT / "app").rglob("*.py") if p.name not in ("config.py", "config_env.py")]
    names = other_variables(app_modules)
    assert len(names) >= 4, names  # the scan finds the OpenTelemetry and stack variables
    assert sorted(n for n in names if not quoted(n)) == []


def test_every_error_type_is_documented() -> None:
    error_types = {e.value for e in ErrorType} | set(HTTP_ERROR_TYPES.values())
    assert sorted(e for e in error_types if not quoted(e)) == []


def _routes(router: Router, prefix: str = "") -> Iterator[str]:
    for route in router.routes:
        if ":path}" in route.path:  # catch-alls (static files, unknown drop-in paths)
            continue
        path = prefix + re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        yield path if path != "/health" else "/health/"


def test_every_route_is_documented() -> None:
    routers = [v1.router, health.router, metrics.router, status.router, docs.router, *dropin.routers(),
               stt_stream.router, *live_routes.routers()]
    paths = {p for r in routers for p in _routes(r)} | set(_routes(control_router(), SIM_PREFIX))
    assert {"/health/", "/v1/translate", "/_sim/faults", "/openai/v1/embeddings", "/v1/stt/stream",
            "/sarvam/speech-to-text/ws"} <= paths
    missing = [p for p in sorted(paths)
               if not re.search(rf"(?<![\w/]){re.escape(p)}(?![\w/{{-])", DESIGN)]
    assert missing == []


def prometheus_metric_names() -> tuple[set[str], int]:
    """Every instrument's name after the Prometheus exporter's translation (as ``/metrics`` writes it),
    and how many instruments there are."""
    registry = CollectorRegistry(auto_describe=False)
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(scope_info_enabled=False, registry=registry)])

    def one(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1)]

    made = Instruments(provider.get_meter("design"), one, one, one, one, one, one)
    for instrument in vars(made).values():  # the observable gauges report through ``one``
        for method in ("record", "add", "set"):
            if hasattr(instrument, method):
                getattr(instrument, method)(1)
                break
    text = generate_latest(registry).decode()
    provider.shutdown()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")} - {"target_info"}, len(
        vars(made))


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    names, count = prometheus_metric_names()
    assert len(names) == count
    assert sorted(n for n in names if not quoted(n)) == []
    first_cells = [line.split("|")[1] for line in DESIGN.splitlines() if line.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`((?:provider|gateway|gen_ai)_[a-z_]+)`", cell)}
    assert sorted(documented - names) == []
    labels = [instruments.PROVIDER, instruments.OPERATION, instruments.OUTCOME, instruments.ERROR_TYPE_LABEL,
              instruments.REASON, instruments.BACKEND, instruments.PERIOD, instruments.TOKEN_INPUT,
              instruments.TOKEN_OUTPUT,
              *(r.value for r in instruments.REJECTION_REASONS)]
    assert sorted(label for label in labels if not quoted(label) and f" {label}" not in DESIGN) == []


def test_every_alert_and_recording_rule_is_documented_and_every_documented_alert_exists() -> None:
    rules = alert_rules(dataclasses.replace(AlertSettings(), spend=TEST_SPEND_BUDGETS))  # unset budgets: no rule
    rows = {(rule.name, rule.severity) for rule in rules}
    assert sorted(row for row in rows if f"| `{row[0]}` | {row[1]} |" not in DESIGN) == []
    assert sorted({label for rule in rules for label in rule.by if not quoted(label)}) == []
    documented = set(re.findall(r"`((?:Provider|Gateway)[A-Z]\w+)`", DESIGN))
    assert sorted(documented - {rule.name for rule in rules}) == []
    records = [rule.record for rule in recording_rules(AlertSettings())]
    assert sorted(r for r in records if not quoted(r)) == []


def test_every_log_event_is_documented() -> None:
    names = {value for key, value in vars(events).items() if key.isupper() and isinstance(value, str)}
    assert events.CALL_FAILED in names
    assert sorted(n for n in names if not quoted(n)) == []
