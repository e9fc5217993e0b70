"""The two dashboards: the overview of every provider and operation, and the drill-down into one."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, QueryVariable, Row, TimePicker
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import (
    AnnotationQuery,
    DashboardCursorSync,
    DashboardLinkType,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.dashboard import Dashboard as Model

from . import queries as q
from . import signals
from .alerting import Facts
from .panels import PROMETHEUS

OVERVIEW_UID, PROVIDER_UID = "ai-gateway-overview", "ai-gateway-provider"


class AlertAnnotation(AnnotationQuery):
    """Prometheus's firing alerts as annotations, in the form Grafana's Prometheus datasource reads:
    the query in ``target``, title and tags from the labels. The SDK's model (Grafana 11.6) knows
    only the legacy top-level ``expr``, with no title or tags."""

    def __init__(self, expr: str) -> None:
        super().__init__(name="Firing alerts", datasource=PROMETHEUS, enable=True, icon_color="red")
        self.query = expr

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update(
            target={"refId": "Anno", "expr": self.query, "range": True, "instant": False},
            titleFormat="{{alertname}} ({{severity}})",
            textFormat="{{provider}} {{operation}} {{backend}} {{instance}}",
            tagKeys="alertname,severity,provider,operation,backend,instance",
            useValueForTime=False,
        )
        return payload


class _Annotation(Builder[AnnotationQuery]):
    def __init__(self, expr: str) -> None:
        self.expr = expr

    def build(self) -> AnnotationQuery:
        return AlertAnnotation(self.expr)


def _dashboard(uid: str, title: str, description: str, other: tuple[str, str], facts: Facts,
               scope: q.Scope, process: bool) -> Dashboard:
    """``process``: the rows include the gateway's own signals, which no provider filter selects."""
    dashboard = (
        Dashboard(title).uid(uid).description(description).tags(["ai-gateway"]).timezone("browser")
        .readonly().tooltip(DashboardCursorSync.CROSSHAIR).refresh("30s").time("now-1h", "now")
        .timepicker(TimePicker()).version(1)
        .annotation(_Annotation(q.firing_alerts(scope)))
        .link(DashboardLink(other[1]).type(DashboardLinkType.LINK).url(f"/d/{other[0]}").keep_time(True)
              .icon("dashboard"))
        .link(DashboardLink("Runbooks").type(DashboardLinkType.LINK).url(facts.runbook_index).icon("doc").target_blank(True))
    )
    rows = [signals.calls(scope, facts), signals.slo(scope, facts), signals.refusals(scope, facts),
            signals.usage(scope, facts),
            signals.health(scope, facts), signals.saturation(scope, facts, process),
            signals.alerts(scope, facts, process)]
    panel_id = 0
    for heading, panels in rows:
        panel_id += 1
        dashboard = dashboard.with_row(Row(heading).id(panel_id))
        for panel in panels:
            panel_id += 1
            # Grafana needs unique ids for panel links and annotation filters.
            dashboard = dashboard.with_panel(panel.id(panel_id))
    return dashboard


def overview(facts: Facts) -> Model:
    return _dashboard(OVERVIEW_UID, "AI gateway: overview",
                      "Every provider and operation of the gateway. Drill down with 'AI gateway: provider'.",
                      (PROVIDER_UID, "Provider drill-down"), facts, q.ALL, process=True).build()


def provider(facts: Facts) -> Model:
    dashboard = _dashboard(PROVIDER_UID, "AI gateway: provider",
                           "One provider and operation (variables at the top).",
                           (OVERVIEW_UID, "Overview"), facts, q.CHOSEN, process=False)
    operations = 'label_values(provider_circuit_state{provider="$provider"}, operation)'
    for name, query, default in (("provider", "label_values(provider_circuit_state, provider)", "sarvam"),
                                 ("operation", operations, "translate")):
        dashboard = dashboard.with_variable(
            QueryVariable(name).label(name).query(query).datasource(PROMETHEUS)
            .current(VariableOption(text=default, value=default)).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC).allow_custom_value(False))
    model = dashboard.build()
    for variable in (model.templating.list_val or []):
        # The SDK writes the interval variables' auto fields on every variable; the schema has none.
        variable.auto = variable.auto_min = variable.auto_count = None
    return model
