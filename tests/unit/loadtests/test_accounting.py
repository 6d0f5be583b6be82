"""Request accounting, offered vs achieved rate, the saturation note, tables and the number vocabulary (pure)."""

from __future__ import annotations

import pytest

from loadtests.accounting import account, rate_series, saturation_note
from loadtests.metrics import UNFINISHED, RequestSample, measured
from loadtests.tables import OVERALL, latency_tables, token_tables
from loadtests.units import fmt_count, fmt_holds, fmt_ms, fmt_pct, fmt_rate, fmt_usd, fmt_value


def _s(start: float, ok: bool = True, ttft: float = 0.05, error_type: str | None = None, **kw) -> RequestSample:
    s = RequestSample(start_s=start, requested_model="auto", ok=ok, error_type=error_type, **kw)
    if ok:
        s.ttft_s, s.e2e_s, s.itl_s, s.output_tokens, s.prompt_tokens = ttft, ttft + 0.1, [0.05, 0.05], 3, 10
    return s


def test_books_balance_and_unfinished_are_neither_ok_nor_errors():
    samples = [_s(i * 0.1) for i in range(6)] + [_s(1.0, ok=False, error_type="http_503")]
    samples.append(_s(1.1, ok=False, error_type=UNFINISHED))
    samples[0].warmup = True
    acc = account(samples, planned=10, late=2)
    assert (acc.sent, acc.completed, acc.failed, acc.unfinished, acc.not_sent) == (8, 6, 1, 1, 2)
    assert acc.balanced and acc.warmup_sent == 1 and acc.to_dict()["balanced"]
    assert all(s.error_type != UNFINISHED for s in measured(samples)) and len(measured(samples)) == 6


def test_rate_series_offered_from_arrivals_else_sends():
    samples = [_s(0.2), _s(0.4), _s(1.5)]
    xs, offered, achieved = rate_series(samples, [0.0, 0.5, 1.0, 1.2, 5.0], elapsed_s=2.0, width_s=1.0)
    assert xs == [0.0, 1.0] and offered == [2.0, 2.0] and achieved == [2.0, 1.0]
    _, offered, _ = rate_series(samples, [], elapsed_s=2.0, width_s=1.0)
    assert offered == [2.0, 1.0]
    _, offered, _ = rate_series(samples, [], elapsed_s=1.5, width_s=1.0)  # a half bin: per second of its span
    assert offered == [2.0, 2.0]


def test_saturation_note_reads_the_evidence():
    flat = [_s(i * 0.1) for i in range(30)]
    rising = [_s(i * 0.1, ttft=0.05 + i * 0.02) for i in range(30)]
    late = account(flat, planned=40, late=5)
    assert saturation_note(account(flat, None, 0), flat, 0.1) is None
    assert saturation_note(late, flat, 0.95).startswith("Load generator limited")
    note = saturation_note(late, rising, 0.1)
    assert note.startswith("Server saturated") and "TTFT p50 went from" in note
    assert saturation_note(late, flat, 0.1).startswith("User pool too small")
    unfinished = flat + [_s(3.0, ok=False, error_type=UNFINISHED)]
    assert "raise stop_grace_s" in saturation_note(account(unfinished, None, 0), flat, 0.1)


def test_tables_overall_and_per_model():
    a, b = _s(0, model="small"), _s(1, ttft=0.15, model="large")
    lat = latency_tables([a, b, _s(2, ok=False, error_type="timeout")])
    assert list(lat) == [OVERALL, "small", "large"]
    t = lat[OVERALL]["ttft"]
    assert t["n"] == 2 and t["mean"] == pytest.approx(100) and t["min"] == pytest.approx(50)
    assert t["max"] == pytest.approx(150) and t["p50"] == pytest.approx(100) and lat[OVERALL]["itl"]["n"] == 4
    tok = token_tables([a, b], window_s=2.0)
    assert tok[OVERALL]["input"] == 20 and tok[OVERALL]["total"] == 26 and tok["small"]["output_per_s"] == 1.5


def test_one_vocabulary_no_scientific_notation():
    assert fmt_count(2757) == "2,757" and fmt_pct(1.0) == "100.00%" and fmt_holds(4, 9) == "4 of 9 SLA lines hold"
    assert fmt_ms(32408.5) == "32.4 s" and fmt_ms(1234.5) == "1,234 ms" and fmt_ms(51.23) == "51.2 ms"
    assert fmt_rate(0.004, "req/s") == "0.004 req/s" and fmt_usd(0.00012) == "0.00012 USD"
    assert fmt_value(0.02, "share") == "2.00%" and fmt_value(None, "ms") == "n/a"
    for x in (1e-7, 3.241e4, 1e9):
        assert "e" not in fmt_rate(x, "tok/s").split()[0] and "e" not in fmt_ms(x).split()[0]
