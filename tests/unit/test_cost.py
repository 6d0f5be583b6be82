import pytest

from serving.fleet.cost import estimate_cost_usd, format_cost


def test_full_replica_hour_costs_the_price():
    # one hour of generation at capacity = exactly one replica-hour
    assert estimate_cost_usd(0, 3600 * 100, 2.0, 100, 0.1) == pytest.approx(2.0)


def test_prompt_tokens_weighted():
    assert estimate_cost_usd(1000, 0, 3.6, 1, 0.1) == pytest.approx(0.1)
    assert estimate_cost_usd(10, 20, 3.6, 10, 0.5) == pytest.approx((20 + 5) / 10 / 1000)


@pytest.mark.parametrize("args", [(-1, 0, 1, 1, 0), (0, -1, 1, 1, 0), (1, 1, 1, 0, 0)])
def test_bad_inputs(args):
    with pytest.raises(ValueError):
        estimate_cost_usd(*args)


def test_format():
    assert format_cost(0.0) == "0"
    assert format_cost(0.000001234) == "0.000001234"
    assert format_cost(2.611111111111e-07) == "0.0000002611111111"
    assert "e" not in format_cost(1e-9).lower()
