"""Traffic per tenant (pure parts): scenario keys, user shares, per-tenant SLA lines, rows and the report section."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.config_files import LoadTestInputError, load_yaml, parse_yaml
from loadtests.metrics import RequestSample
from loadtests.pricing import PriceTable, PriceTableFile
from loadtests.report_sections import NO_TENANTS, tenants_html
from loadtests.results import summary
from loadtests.scenario import ScenarioSpec, load_scenario
from loadtests.sla import SLASpec, check_tenant_scopes, downgrade_share, evaluate
from loadtests.tenant_results import tenant_load_rows, tenant_summary_lines
from loadtests.tenant_traffic import DOWNGRADE_HEADER, TenantAssigner, TenantTrafficSpec, tenant_keys
from loadtests.workload import Job, Workload

EXAMPLES = Path(__file__).resolve().parents[3] / "loadtests" / "examples"
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
TWO = "tenants:\n  - {name: alpha, api_key_env: KEY_A, share: 3}\n  - {name: beta, api_key_env: KEY_B}\n"
BASE = "duration_s: 10\nshape: {kind: constant, users: 4}\n"


def _scenario(text: str = TWO) -> ScenarioSpec:
    return parse_yaml(BASE + text, ScenarioSpec, "s.yaml", "scenario")


def _samples() -> list[RequestSample]:
    """alpha: 10 answers by `l`, TTFT 10..100 ms; beta: 8 downgraded answers by `s`, one 402, one 429."""
    out = [
        RequestSample(float(i), "auto", ok=True, ttft_s=(i + 1) / 100, e2e_s=0.5, output_tokens=10, model="l",
                      cost_usd=40e-6, tenant="alpha")
        for i in range(10)
    ]  # fmt: skip
    out += [
        RequestSample(float(i), "auto", ok=True, ttft_s=0.02, e2e_s=0.2, output_tokens=10, model="s", cost_usd=10e-6,
                      tenant="beta", downgrade="budget:day")
        for i in range(8)
    ]  # fmt: skip
    out += [RequestSample(9.0, "auto", ok=False, status=402, error_type="http_402", tenant="beta")]
    out += [RequestSample(9.5, "auto", ok=False, status=429, error_type="http_429", tenant="beta")]
    return out


def test_assigner_follows_the_shares_at_every_step():
    a = TenantAssigner(["alpha", "beta"], [3, 1])
    seq = [a.next() for _ in range(12)]
    assert seq[:4].count("alpha") == 3 and seq.count("alpha") == 9
    for n in range(1, 13):
        assert abs(seq[:n].count("alpha") - 0.75 * n) <= 1, seq
    b = TenantAssigner(["x", "y", "z"], [1, 1, 1])
    assert [b.next() for _ in range(6)] == ["x", "y", "z", "x", "y", "z"]
    with pytest.raises(ValueError):
        TenantAssigner(["x"], [0])


def test_keys_come_from_the_environment_and_missing_ones_are_named_not_shown():
    spec = _scenario()
    assert tenant_keys(spec.tenants, {"KEY_A": " sk-alpha ", "KEY_B": "sk-beta"}) == {
        "alpha": "sk-alpha",
        "beta": "sk-beta",
    }
    with pytest.raises(LoadTestInputError) as err:
        tenant_keys(spec.tenants, {"KEY_A": "sk-alpha-secret"})
    assert "set KEY_B (tenant beta)" in str(err.value) and "sk-alpha-secret" not in str(err.value)
    assert tenant_keys([], {}) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants:\n  - {name: a, api_key_env: K}\n  - {name: a, api_key_env: L}\n", "name 'a' appears twice"),
        ("tenants:\n  - {name: a, api_key_env: K}\n  - {name: b, api_key_env: K}\n", "api_key_env 'K' appears twice"),
        ("tenants:\n  - {name: a, api_key_env: not-a-var}\n", "tenants.0.api_key_env"),
        ("tenants:\n  - {name: a, api_key_env: K, share: 0}\n", "tenants.0.share"),
        ("tenants:\n  - {name: a, api_key: sk-123}\n", "tenants.0.api_key: unknown key"),
    ],
)
def test_bad_tenant_traffic(text, message):
    with pytest.raises(LoadTestInputError) as err:
        _scenario(text)
    assert message in str(err.value), str(err.value)


def test_workload_gives_each_user_a_tenant_key_and_records_the_downgrade():
    spec = _scenario()
    wl = Workload(spec, [], PRICES, tenant_keys=tenant_keys(spec.tenants, {"KEY_A": "ka", "KEY_B": "kb"}))
    assert [wl.next_tenant() for _ in range(4)].count("alpha") == 3
    assert wl.request_headers("beta") == {"authorization": "Bearer kb"} and wl.request_headers(None) == {}
    assert wl.probe_headers() == {"authorization": "Bearer ka"}
    sample = wl.new_sample(0.0, Job(0, None, 8), "beta")  # type: ignore[arg-type]
    wl.apply_headers(sample, {DOWNGRADE_HEADER: "budget:day", "x-petit-model": "s"}.get)
    assert (sample.tenant, sample.downgrade, sample.model) == ("beta", "budget:day", "s")
    plain = Workload(_scenario(""), [], PRICES)
    assert plain.next_tenant() is None and plain.probe_headers() == {}
    with pytest.raises(ValueError, match="no API key"):
        Workload(spec, [], PRICES, tenant_keys={"alpha": "ka"})


def test_rows_per_tenant_and_none_without_tenants():
    rows = {r.tenant: r for r in tenant_load_rows(_samples(), 10.0)}
    alpha, beta = rows["alpha"], rows["beta"]
    assert (alpha.requests, alpha.ok, alpha.error_rate, alpha.models) == (10, 10, 0.0, {"l": 10})
    assert alpha.ttft_p95_ms == pytest.approx(95.5) and alpha.downgrade_share == 0.0
    assert alpha.cost_usd == pytest.approx(400e-6) and alpha.cost_per_1m_output_tokens_usd == pytest.approx(4.0)
    assert (beta.requests, beta.ok, beta.error_rate) == (10, 8, pytest.approx(0.2))
    assert beta.downgrade_share == 1.0 and beta.downgrade_reasons == {"budget:day": 8}
    assert beta.errors_by_type == {"http_402": 1, "http_429": 1} and beta.requests_per_s == pytest.approx(0.8)
    assert tenant_load_rows([RequestSample(0.0, "auto", ok=True)], 1.0) == []
    lines = tenant_summary_lines(summary(_samples(), 10.0)["tenants"])
    assert lines[1].startswith("tenant beta: requests 10  errors 20.00%") and "downgraded 100.00%" in lines[1]
    assert "answered by: s 100.00%" in lines[1]


def test_report_section_lists_tenants_or_says_there_are_none():
    html = tenants_html(summary(_samples(), 10.0)["tenants"])
    assert "alpha" in html and "beta" in html and "budget:day x8" in html and "8 (100.00%)" in html
    assert "beta: http_402 x1, http_429 x1" in html
    assert tenants_html([]) == NO_TENANTS and "examples/tenants.yaml" in NO_TENANTS
    assert summary([RequestSample(0.0, "auto", ok=True)], 1.0)["tenants"] == []


def test_sla_per_tenant_lines():
    spec = parse_yaml(
        """
slas:
  all: {max_error_rate: 0.5}
tenants:
  alpha:
    ttft_ms: {p95: 90}
    downgrade_share: {max: 0}
    quality: {min_tier_share: {tier: large, share: 1}}
  beta:
    max_error_rate: 0.1
    downgrade_share: {min: 0.9}
    max_cost_usd: 0.0001
    max_cost_per_1m_output_tokens_usd: 1.5
""",
        SLASpec,
        "sla.yaml",
        "SLA",
    )
    lines = {(v.scope, v.name, v.op): v for v in evaluate(spec, _samples(), 10.0, PRICES)}
    assert lines[("all", "error rate", "<=")].passed
    assert not lines[("tenant:alpha", "TTFT p95", "<=")].passed  # 95.5 ms
    assert lines[("tenant:alpha", "downgrade share", "<=")].passed
    assert lines[("tenant:alpha", "share answered by large+", ">=")].passed
    assert not lines[("tenant:beta", "error rate", "<=")].passed  # 20% refused
    assert lines[("tenant:beta", "downgrade share", ">=")].measured == 1.0
    assert lines[("tenant:beta", "spend", "<=")].measured == pytest.approx(80e-6)
    assert lines[("tenant:beta", "cost per 1M output tokens", "<=")].passed
    assert (
        "FAIL  [tenant:beta] error rate: 20.00% (limit <= 10.00%)" in lines[("tenant:beta", "error rate", "<=")].text()
    )
    assert downgrade_share([]) is None
    missing = evaluate(spec, [s for s in _samples() if s.tenant == "alpha"], 10.0, PRICES)
    assert [v.note for v in missing if v.scope == "tenant:beta"] == ["no request in this scope"]


def test_sla_tenants_must_be_the_scenarios():
    spec = parse_yaml("slas: {all: {}}\ntenants: {gamma: {}}\n", SLASpec, "sla.yaml", "SLA")
    with pytest.raises(LoadTestInputError, match=r"sla.yaml: tenants \['gamma'\] are not in the scenario's tenants"):
        check_tenant_scopes(spec, ["alpha", "beta"], "sla.yaml")
    check_tenant_scopes(spec, ["gamma"], "sla.yaml")


def test_shipped_tenant_example_validates():
    scenario = load_scenario(EXAMPLES / "tenants.yaml")
    sla = load_yaml(EXAMPLES / "sla-tenants.yaml", SLASpec, "SLA")
    assert [t.name for t in scenario.tenants] == ["alpha", "beta"]
    assert all(isinstance(t, TenantTrafficSpec) and t.api_key_env.startswith("PETIT_KEY_") for t in scenario.tenants)
    check_tenant_scopes(sla, [t.name for t in scenario.tenants], "sla-tenants.yaml")
    assert scenario.pricing.fleet is not None and Path(scenario.pricing.fleet).name == "fleet.tenants.fast.yaml"
