"""Panel builders over the SDK: every panel has a unit, thresholds and a description, and queries
the provisioned Prometheus datasource."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.dashboard import DashboardLink, ThresholdsConfig
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ..monitoring.render import DATASOURCE_UID

PROMETHEUS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
OK, WARNING, CRITICAL = "green", "orange", "red"
P = TypeVar("P", timeseries.Panel, statetimeline.Panel, stat.Panel, table.Panel)
Step = tuple[float | None, str]
"""A threshold step: from this value on (``None``: the base), this colour."""


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str
    exemplars: bool = False
    """Ask for exemplars (trace ids on histogram samples) too."""


@dataclass(frozen=True)
class Signal:
    """What a panel shows and how: the parts every panel kind shares."""

    title: str
    description: str
    unit: str
    queries: Sequence[Query]
    steps: Sequence[Step] = ((None, OK),)
    """Thresholds: a rule's, or only the base step when no alert reads the signal."""
    links: Sequence[DashboardLink] = ()
    """Panel links (runbooks)."""
    data_links: Sequence[DashboardLink] = ()
    """Per-series links (traces, logs)."""
    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Value to (text, colour)."""
    width: int = 12


def _targets(signal: Signal, instant: bool = False) -> list[Builder[Dataquery]]:
    targets: list[Builder[Dataquery]] = []
    for index, query in enumerate(signal.queries):
        target = (prometheus.Dataquery().expr(query.expr).legend_format(query.legend)
                  .ref_id(chr(ord("A") + index)).datasource(PROMETHEUS))
        target = target.instant().format(PromQueryFormat.TABLE) if instant else target.range()
        if query.exemplars:
            target = target.exemplar(True)
        targets.append(target)
    return targets


def _thresholds(steps: Sequence[Step]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def _mappings(signal: Signal) -> list[ValueMapping]:
    if not signal.mappings:
        return []
    return [ValueMap({value: ValueMappingResult(text=text, color=color, index=index)
                      for index, (value, (text, color)) in enumerate(signal.mappings.items())})]


def _common(builder: P, signal: Signal) -> P:
    return (builder.title(signal.title).description(signal.description).unit(signal.unit)
            .datasource(PROMETHEUS).thresholds(_thresholds(signal.steps)).mappings(_mappings(signal))
            .links(list(signal.links)).data_links(list(signal.data_links)).span(signal.width).height(8))


def graph(signal: Signal) -> timeseries.Panel:
    """A time series; rule thresholds are drawn as dashed lines."""
    style = common.GraphThresholdsStyleMode.DASHED if len(signal.steps) > 1 else common.GraphThresholdsStyleMode.OFF
    panel = _common(timeseries.Panel(), signal).targets(_targets(signal))
    return panel.thresholds_style(cb.GraphThresholdsStyleConfig().mode(style)).legend(
        cb.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM).calcs(["lastNotNull", "max"]))


def timeline(signal: Signal) -> statetimeline.Panel:
    """States over time, coloured by the value mappings."""
    return _common(statetimeline.Panel(), signal).targets(_targets(signal)).show_value(
        common.VisibilityMode.AUTO).merge_values(True)


def summary(signal: Signal) -> stat.Panel:
    """One number per series over the dashboard's time range (the mean)."""
    return _common(stat.Panel(), signal).targets(_targets(signal)).reduce_options(
        cb.ReduceDataOptions().calcs(["mean"]).values(False)).color_mode(common.BigValueColorMode.VALUE)


def listing(signal: Signal) -> table.Panel:
    """The series as rows, now."""
    return _common(table.Panel(), signal).targets(_targets(signal, instant=True))


Builders = timeseries.Panel | statetimeline.Panel | stat.Panel | table.Panel
