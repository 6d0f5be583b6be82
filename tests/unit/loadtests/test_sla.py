"""SLA files are strict and the verdict uses exact percentiles after warm-up."""

from __future__ import annotations

import pytest

from loadtests.config_files import LoadTestInputError, load_yaml, parse_yaml
from loadtests.metrics import RequestSample
from loadtests.pricing import PriceTable, PriceTableFile
from loadtests.sla import SLASpec, evaluate

PRICES = PriceTable(
    PriceTableFile.model_validate(
        {
            "models": {
                "s": {"input_per_1m_usd": 0, "output_per_1m_usd": 1.0, "tier": "small"},
                "l": {"input_per_1m_usd": 0, "output_per_1m_usd": 4.0, "tier": "large"},
            }
        }
    )
)


def _samples() -> list[RequestSample]:
    out = []
    for i in range(100):
        out.append(
            RequestSample(
                float(i),
                "auto",
                ok=True,
                ttft_s=(i + 1) / 1000,
                e2e_s=0.5,
                itl_s=[0.01, 0.02],
                output_tokens=10,
                model="l" if i < 30 else "s",
                cost_usd=(4.0 if i < 30 else 1.0) * 10 / 1e6,
                correct=i % 2 == 0,
            )
        )
    out.append(RequestSample(100.0, "auto", ok=False, error_type="http_500"))
    return out


def _spec(text: str) -> SLASpec:
    return parse_yaml(text, SLASpec, "sla.yaml", "SLA")


def test_verdict_lines_and_values():
    spec = _spec("""
slas:
  auto:
    ttft_ms: {p50: 60, p99: 90}
    itl_ms: {p95: 25}
    e2e_ms: {p99: 400}
    max_error_rate: 0.02
    min_requests_per_s: 2
    max_cost_per_1m_output_tokens_usd: 2.0
    quality:
      min_tier_share: {tier: large, share: 0.25}
      min_accuracy: 0.6
""")
    lines = {v.name: v for v in evaluate(spec, _samples(), window_s=50, prices=PRICES)}
    assert lines["TTFT p50"].measured == pytest.approx(50.5) and lines["TTFT p50"].passed
    assert lines["TTFT p99"].measured == pytest.approx(99.01) and not lines["TTFT p99"].passed
    assert lines["ITL p95"].passed and not lines["E2E p99"].passed
    assert lines["error rate"].measured == pytest.approx(1 / 101) and lines["error rate"].passed
    assert lines["throughput"].measured == pytest.approx(2.0) and lines["throughput"].passed
    assert (
        lines["cost per 1M output tokens"].measured == pytest.approx(1.9) and lines["cost per 1M output tokens"].passed
    )
    assert lines["share answered by large+"].measured == pytest.approx(0.3)
    assert lines["accuracy"].measured == pytest.approx(0.5) and not lines["accuracy"].passed
    assert "FAIL  [auto] accuracy: 50.00% (limit >= 60.00%)" in lines["accuracy"].text()


def test_scope_without_requests_fails():
    lines = evaluate(_spec("slas: {smollm2-135m: {max_error_rate: 0.1}}"), _samples(), 10, PRICES)
    assert len(lines) == 1 and not lines[0].passed and "no request" in lines[0].note


def test_all_scope_and_missing_cost_data():
    lines = evaluate(
        _spec("slas: {all: {max_cost_per_1m_output_tokens_usd: 1}}"),
        [RequestSample(0, "x", ok=True, output_tokens=3)],
        1,
        PriceTable(),
    )
    assert not lines[0].passed and lines[0].measured is None and lines[0].note == "no data"


def test_bad_sla_names_file_line_and_key(tmp_path):
    p = tmp_path / "sla.yaml"
    p.write_text("slas:\n  auto:\n    ttft_ms: {p95: -1}\n    max_eror_rate: 0.1\n")
    with pytest.raises(LoadTestInputError) as e:
        load_yaml(p, SLASpec, "SLA")
    msg = str(e.value)
    assert f"{p}:3: slas.auto.ttft_ms.p95: Input should be greater than 0" in msg
    assert f"{p}:4: slas.auto.max_eror_rate: unknown key" in msg


@pytest.mark.parametrize(
    "text, expect",
    [
        ("", "file is empty"),
        ("- a\n- b\n", ":1: the SLA must be a mapping"),
        ("slas: {a: [\n", "not valid YAML"),
        ("slas: {}\n", "slas: Dictionary should have at least 1 item"),
    ],
)
def test_malformed_sla_files(tmp_path, text, expect):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(LoadTestInputError, match=expect):
        load_yaml(p, SLASpec, "SLA")


def test_missing_file(tmp_path):
    with pytest.raises(LoadTestInputError, match="SLA file not found"):
        load_yaml(tmp_path / "nope.yaml", SLASpec, "SLA")
