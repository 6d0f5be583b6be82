"""Per-hop percentiles from Petit's hop histogram (benchmarks/hops.py)."""

from __future__ import annotations

import pytest

from benchmarks.hops import hop_summary, quantile

INF = float("inf")


def test_quantiles_interpolate_within_a_bucket_and_ignore_empty_histograms():
    b = {0.001: 0.0, 0.002: 50.0, 0.005: 100.0, INF: 100.0}
    assert quantile(b, 0.5) == pytest.approx(0.002)
    assert quantile(b, 0.75) == pytest.approx(0.0035)
    assert quantile({0.001: 0.0, INF: 0.0}, 0.5) is None


def test_a_level_is_the_difference_between_two_scrapes():
    before = {"route": {0.001: 10.0, 0.002: 10.0, INF: 10.0}}
    after = {"route": {0.001: 10.0, 0.002: 110.0, INF: 110.0}, "first_token": {0.05: 100.0, INF: 100.0}}
    s = hop_summary(before, after)
    assert s["route"]["n"] == 100 and 1.0 <= s["route"]["p50_ms"] <= 2.0
    assert s["first_token"]["n"] == 100
