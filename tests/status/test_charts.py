"""Chart geometry and text alternatives, from the chart builder's Python API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.api.status import charts
from app.api.status.charts import Threshold, line_chart
from app.api.status.view import percent

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RATES = (Threshold(0.95, "warning", True, "95%"), Threshold(0.80, "critical", True, "80%"))


def chart(values: list[float | None]) -> charts.Chart:
    points = [(START + timedelta(minutes=5 * (i + 1)), v) for i, v in enumerate(values)]
    return line_chart(chart_id="c", title="sarvam.translate success rate", points=points, start=START,
                      end=START + timedelta(minutes=5 * len(values)), y_max=1.0,
                      y_ticks=((0.0, "0%"), (1.0, "100%")), thresholds=RATES, fmt=percent, step_text="5m")


def test_points_land_on_the_plot_and_a_gap_breaks_the_line() -> None:
    c = chart([1.0, None, 0.0, 0.5])
    assert len(c.paths) == 2
    assert c.paths[0] == f"M{c.markers[0].x} {charts.TOP}"
    assert c.paths[1].startswith("M") and " L" in c.paths[1]
    assert [m.y for m in c.markers] == [charts.TOP, charts.BOTTOM, (charts.TOP + charts.BOTTOM) / 2]
    assert c.markers[-1].x == charts.RIGHT_EDGE
    assert [t.position for t in c.x_ticks] == [charts.LEFT, (charts.LEFT + charts.RIGHT_EDGE) / 2, charts.RIGHT_EDGE]
    assert [t.position for t in c.y_ticks] == [charts.BOTTOM, charts.TOP]


def test_each_point_says_which_line_it_is_past_by_shape_level_and_words() -> None:
    c = chart([0.99, 0.9, 0.5])
    assert [m.level for m in c.markers] == ["ok", "warning", "critical"]
    assert c.markers[0].text == "12:05 UTC: 99.0%"
    assert c.markers[2].text == "12:15 UTC: 50.0%, past the 80% critical line"
    assert [(g.label, g.level) for g in c.guides] == [("95% warning", "warning"), ("80% critical", "critical")]


def test_the_description_states_the_numbers() -> None:
    assert chart([0.99, None, 0.5]).description == (
        "2 of 3 intervals of 5m had calls from 12:00 to 12:15 UTC. Latest 50.0% at 12:15 UTC; "
        "lowest 50.0%, highest 99.0%. 1 interval below the 95% warning line. "
        "1 interval below the 80% critical line.")
    assert chart([None, None]).description == "No calls from 12:00 to 12:10 UTC."
    short = line_chart(chart_id="s", title="t", points=[(START + timedelta(seconds=30), 1.0)], start=START,
                       end=START + timedelta(seconds=30), y_max=1.0, y_ticks=(), thresholds=RATES, fmt=percent,
                       step_text="30s")
    assert short.markers[0].text == "12:00:30 UTC: 100.0%"  # seconds when the chart spans minutes
