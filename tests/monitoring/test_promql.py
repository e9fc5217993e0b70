"""Prometheus's arithmetic and template functions, on values worked out by hand."""

from __future__ import annotations

import math

import pytest

from app.monitoring.promql import bucket_quantile, extrapolated_increase, extrapolated_rate
from app.monitoring.templates import go_float, humanize_duration, render

pytestmark = pytest.mark.unit

INF = math.inf


def counter(start: float, step: float, values: list[float]) -> list[tuple[float, float]]:
    return [(start + i * step, v) for i, v in enumerate(values)]


def test_increase_over_a_fully_sampled_window_is_the_difference() -> None:
    assert extrapolated_increase(counter(0, 15, list(range(21))), 0, 300) == 20


def test_increase_extrapolates_to_both_edges_when_close() -> None:
    # Samples at 15..300 (values 1..20) in [10, 310]: 19 over 285 s, extended by 5 s and 10 s.
    assert extrapolated_increase(counter(15, 15, list(range(1, 21))), 10, 310) == pytest.approx(20)


def test_rate_divides_the_factor_by_the_range_first_as_prometheus_does() -> None:
    # 3960 over samples 0..60 s in [-240, 60]: 3960 * (1 / 300) is 13.200000000000001 in floating
    # point, not 3960 / 300; a p99 on a bucket bound (0.1 s) then reads 0.1 in both engines.
    samples = counter(0, 15, [0, 990, 1980, 2970, 3960])
    assert extrapolated_rate(samples, -240, 60) == 13.200000000000001
    assert extrapolated_rate(samples, -240, 60) != 3960 / 300
    assert extrapolated_rate(samples[:1], -240, 60) is None


def test_increase_extends_only_half_an_interval_towards_a_distant_edge() -> None:
    # 10..23 sampled from 100 to 300 in [0, 300]: the start is 100 s away, so +7.69 s only.
    assert extrapolated_increase(counter(100, 200 / 13, list(range(10, 24))), 0, 300) == pytest.approx(13.5)


def test_increase_never_extrapolates_below_the_counters_zero() -> None:
    # Starts at 0 at t=100: the zero point is the first sample, no extension towards 0 s.
    assert extrapolated_increase(counter(100, 20, list(range(11))), 0, 300) == pytest.approx(10)


def test_increase_adds_counter_resets() -> None:
    assert extrapolated_increase(counter(0, 15, [5, 10, 2, 4]), -1, 45) == pytest.approx(9 * 46 / 45)


def test_increase_needs_two_samples_in_the_range() -> None:
    assert extrapolated_increase(counter(0, 15, [1, 2, 3]), 31, 100) is None
    assert extrapolated_increase([], 0, 300) is None


def test_the_range_is_left_open_as_in_prometheus_3() -> None:
    # (0, 15] holds the sample at 15 s only; the one at 0 s is outside.
    assert extrapolated_increase(counter(0, 15, [1, 2, 3]), 0, 15) is None
    # (0, 45]: 10, 2 (a reset), 4 is 4, extrapolated by 15 s towards the start over 30 s sampled.
    assert extrapolated_increase(counter(0, 15, [5, 10, 2, 4]), 0, 45) == 6


def test_a_distant_start_is_cut_to_half_an_interval_before_the_zero_point_is_considered() -> None:
    # 8..108 sampled every 10 s from 100 s in (0, 200]: the start is 100 s away, so half an
    # interval (5 s); the zero point, 8 s back, is further. (Prometheus 2 took the zero point first.)
    assert extrapolated_increase(counter(100, 10, [8.0 + 10 * i for i in range(11)]), 0, 200) == pytest.approx(105)


def test_quantile_interpolates_linearly_within_the_bucket() -> None:
    # 94 calls under 5 s and 6 between 5 and 7.5 s: rank 95 is 1/6 into (5, 7.5].
    buckets = [(2.5, 0.0), (5.0, 94.0), (7.5, 100.0), (INF, 100.0)]
    assert bucket_quantile(0.95, buckets) == pytest.approx(5 + 2.5 / 6)


def test_quantile_on_a_bucket_bound_is_the_bound() -> None:
    assert bucket_quantile(0.95, [(2.5, 0.0), (5.0, 95.0), (7.5, 95.0), (INF, 100.0)]) == 5.0


def test_quantile_in_the_lowest_bucket_interpolates_from_zero() -> None:
    assert bucket_quantile(0.5, [(0.1, 10.0), (INF, 10.0)]) == pytest.approx(0.05)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert bucket_quantile(0.95, [(5.0, 1.0), (60.0, 2.0), (INF, 100.0)]) == 60.0


def test_quantile_forces_counts_monotonic_and_needs_observations() -> None:
    assert bucket_quantile(0.5, [(1.0, 10.0), (2.0, 8.0), (INF, 10.0)]) == pytest.approx(0.5)
    assert math.isnan(bucket_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]))
    assert math.isnan(bucket_quantile(0.5, [(1.0, 3.0)]))


def test_templates_render_like_prometheus() -> None:
    labels = {"provider": "sarvam", "operation": "tts"}
    text = '{{ $labels.provider }}.{{ $labels.operation }} {{ $value | humanizePercentage }} {{ $value }}'
    assert render(text, labels, 0.949) == "sarvam.tts 94.9% 0.949"
    assert render('{{ $value | printf "%.0f" }}', labels, 2.6) == "3"
    assert humanize_duration(5 + 2.5 / 6) == "5.417s"
    assert humanize_duration(0.25) == "250ms"
    assert humanize_duration(75) == "1m 15s"
    assert go_float(2.0) == "2" and go_float(1e-05) == "1e-05" and go_float(1e21) == "1e+21"
    with pytest.raises(ValueError):
        render("{{ $value | humanize }}", labels, 1.0)
