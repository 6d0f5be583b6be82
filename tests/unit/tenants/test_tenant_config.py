"""Tenants in the fleet config: strict, with clear errors at load."""

from __future__ import annotations

import pytest

from serving.fleet.schema import FleetConfigError, load_fleet, parse_fleet
from tests.unit.conftest import ROOT, fleet_dict
from tests.unit.tenants.helpers import sha, tenant, tenants_fleet


def test_without_tenants_nothing_changes():
    fleet = parse_fleet(fleet_dict())
    assert fleet.tenants == [] and fleet.tenant_store.kind == "memory"


def test_a_tenant_with_every_field():
    t = tenant(
        "alpha",
        priority="high",
        limits={"requests_per_min": 10, "tokens_per_min": 1000, "concurrent": 2},
        budget={"usd_per_day": 1.0, "usd_per_month": 20.0},
        allowed_models=["small"],
        max_tier="small",
        over_budget="downgrade",
        soft_threshold=0.8,
    )
    t["key_sha256"] = [t["key_sha256"][0].upper()]  # hashes are normalised to lower case
    fleet = parse_fleet(tenants_fleet(t))
    (a,) = fleet.tenants
    assert a.key_sha256 == [sha("key-alpha-1")] and a.limits.concurrent == 2 and a.over_budget == "downgrade"


def test_a_key_in_two_tenants_is_refused_naming_both():
    shared = tenant("alpha")
    other = {**tenant("beta"), "key_sha256": shared["key_sha256"] + [sha("x")]}
    with pytest.raises(FleetConfigError, match="belongs to two tenants, 'alpha' and 'beta'"):
        parse_fleet(tenants_fleet(shared, other), "f.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget": {"usd_per_dya": 1}}, r"tenants\[0\]\.budget\.usd_per_dya: unknown key"),
        ({"limit": {}}, r"tenants\[0\]\.limit: unknown key"),
        ({"key_sha256": ["abc"]}, "64 hex digits"),
        ({"key_sha256": []}, "at least 1 item"),
        ({"over_budget": "refuse"}, "'reject' or 'downgrade'"),
        ({"soft_threshold": 1.5}, "less than or equal to 1"),
        ({"max_tier": "huge"}, "'small', 'medium' or 'large'"),
        ({"allowed_models": ["nope"]}, r"allowed_models \['nope'\] are not fleet models"),
        ({"limits": {"requests_per_min": 0}}, "greater than or equal to 1"),
        ({"budget": {"usd_per_day": -1}}, "greater than 0"),
    ],
)
def test_bad_tenants_are_refused_with_the_key_path(change, message):
    with pytest.raises(FleetConfigError, match=message):
        parse_fleet(tenants_fleet({**tenant("alpha"), **change}), "f.yaml")


def test_duplicate_names_and_store_keys():
    with pytest.raises(FleetConfigError, match="tenant name 'alpha' appears twice"):
        parse_fleet(tenants_fleet(tenant("alpha"), {**tenant("alpha"), "key_sha256": [sha("other")]}))
    with pytest.raises(FleetConfigError, match=r"tenant_store\.url: unknown key"):
        parse_fleet(fleet_dict(tenant_store={"kind": "redis", "url": "redis://secret@host"}))
    with pytest.raises(FleetConfigError, match="tenant_store.kind"):
        parse_fleet(fleet_dict(tenant_store={"kind": "postgres"}))


def test_the_shipped_example_loads():
    fleet = load_fleet(ROOT / "deploy" / "fleet.tenants.example.yaml")
    names = {t.name: t for t in fleet.tenants}
    assert set(names) == {"alpha", "beta"}
    assert names["alpha"].over_budget == "downgrade" and names["beta"].max_tier == "small"
    assert names["alpha"].key_sha256 == [sha("demo-key-alpha")]  # the comment's demo keys are the hashes' keys
