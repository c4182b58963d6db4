"""The privacy budget: allocation, one RDP accountant, and the refusal of an allocation the budget cannot cover."""

from __future__ import annotations

import math

import pytest

from synth_engine.privacy import Accountant, Budget, PrivacyBudgetError, Spend, calibrate_multiplier

NEEDS = {
    "users": ["row_count", "model.marginals", "model.correlation"],
    "orders": ["row_count", "model.marginals", "model.correlation", "children_per_parent"],
    "countries": [],  # declared public
}


def _spend_all(budget: Budget) -> Accountant:
    acc = Accountant(budget.delta)
    for t in budget.tables.values():
        for stat in t.shares:
            m = t.statistic_multiplier(stat)
            assert m is not None
            # a statistic split over 7 releases of multiplier m * sqrt(7) spends exactly its share
            acc.record([Spend(t.table, stat, m * math.sqrt(7), 7)])
    return acc


def test_allocation_spent_in_full_composes_to_the_budget() -> None:
    budget = Budget.allocate(1.0, 1e-6, NEEDS)
    acc = _spend_all(budget)
    assert acc.epsilon() == pytest.approx(1.0, abs=0.01)
    assert acc.epsilon() <= 1.0 + 1e-6
    summary = acc.summary(budget)
    assert summary["within_budget"]
    assert set(summary["tables"]) == {"users", "orders"}
    assert set(summary["tables"]["orders"]["statistics"]) == set(NEEDS["orders"])
    # composed alone, each table is below the total, and the tables together are above what any one spends
    assert all(0 < t["epsilon"] < 1.0 for t in summary["tables"].values())
    assert budget.tables["countries"].epsilon == 0.0


def test_explicit_request_and_weights() -> None:
    budget = Budget.allocate(1.0, 1e-6, NEEDS, requests={"orders": 0.8})
    assert budget.tables["orders"].epsilon == pytest.approx(0.8, abs=0.01)
    assert budget.tables["users"].epsilon < budget.tables["orders"].epsilon
    assert _spend_all(budget).epsilon() <= 1.0 + 1e-6


def test_a_request_over_the_budget_stops_with_what_each_table_asks() -> None:
    with pytest.raises(PrivacyBudgetError) as err:
        Budget.allocate(1.0, 1e-6, NEEDS, requests={"orders": 1.0})
    message = str(err.value)
    assert "orders: epsilon 1" in message and "users: a share of what the requests leave" in message
    assert "privacy.public" in message and "users.row_count" in message
    assert err.value.exit_code == 2


def test_calibration_uses_the_library() -> None:
    m = calibrate_multiplier(1.0, 1e-6)
    acc = Accountant(2e-6)
    acc.record([Spend("t", "row_count", m)])
    assert acc.epsilon() == pytest.approx(1.0, abs=1e-3)


def test_dp_sgd_noise_calibrated_at_the_budgets_order_keeps_the_run_within_its_budget() -> None:
    """A table's network share, spent as DP-SGD steps instead of one Gaussian mechanism, leaves the run's
    accountant within the budget, and larger or more frequent batches need more noise."""
    import math

    from synth_engine.privacy import Accountant, Spend, calibrate_multiplier, calibrate_sgd_noise, optimal_order

    delta = 5e-7
    total = calibrate_multiplier(1.0, delta)
    order = optimal_order(total, delta)
    share = total / math.sqrt(0.3)  # 30% of the budget goes to the network
    rest = 1.0 / math.sqrt(1.0 / total**2 - 1.0 / share**2)
    for rate, steps in [(0.05, 200), (0.01, 3000), (0.2, 50)]:
        sigma = calibrate_sgd_noise(share, rate, steps, order)
        accountant = Accountant(2 * delta)
        accountant.record([Spend("t", "model.marginals", rest), Spend("t", "model.network", sigma, steps, sampling_rate=rate)])
        assert accountant.epsilon() <= 1.0 + 1e-6, (rate, steps, sigma)
        assert accountant.epsilon() > 0.95, "the calibration uses the share, not much less"
    assert calibrate_sgd_noise(share, 0.1, 100, order) > calibrate_sgd_noise(share, 0.05, 100, order)
    assert calibrate_sgd_noise(share, 0.05, 400, order) > calibrate_sgd_noise(share, 0.05, 100, order)
