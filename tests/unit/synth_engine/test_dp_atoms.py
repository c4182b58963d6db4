"""DP point masses of numeric columns: a value most rows share keeps its share, a value one row holds is never
released, integers stay integers, and the release is spent like the marginals' other releases."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from schemas.kinds import Kind
from synth_engine._internal.encoding import NUMERIC_RELEASES, VOCABULARY_WEIGHT, column_privacy
from synth_engine.copula import GaussianCopulaModel
from synth_engine.privacy import Accountant, CopulaPrivacy
from synth_engine.privacy import mechanisms as dpm


def _precip(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.95, 0.0, np.round(rng.exponential(0.2, n) + 0.01, 2))


def test_a_column_of_95_percent_zeros_keeps_its_zeros_at_epsilon_1() -> None:
    x = _precip(4000)
    rng = np.random.default_rng(1)
    target = pa.table({"precip": pa.array(x), "temp": pa.array(rng.normal(15.0, 8.0, x.size))})
    model = GaussianCopulaModel({"precip": Kind.NUMERIC, "temp": Kind.NUMERIC}, epsilon=1.0).fit(target)
    out = np.asarray(model.sample(n=20_000, seed=3).column("precip").to_numpy(zero_copy_only=False))
    assert abs(np.mean(out == 0.0) - np.mean(x == 0.0)) < 0.02
    # every release of the marginals is in the spend, and the whole fit stays within its epsilon
    marginals = [s for s in model.privacy_spent_ if s.statistic == "model.marginals"]
    assert len(marginals) == 1 and marginals[0].count == 2 * (1 + NUMERIC_RELEASES)  # NULL counts + values each
    assert Accountant(1e-6).epsilon(model.privacy_spent_) <= 1.0 + 1e-6


def test_the_atom_release_is_one_more_release_per_numeric_column_and_takes_a_selection_delta() -> None:
    priv = CopulaPrivacy("t", marginals=10.0, correlation=None, selection_delta=1e-7, nullable=frozenset())
    cols = [("target", "a", Kind.NUMERIC), ("target", "b", Kind.CATEGORICAL)]
    dps, spend = column_privacy(priv, cols)
    assert spend.count == NUMERIC_RELEASES + VOCABULARY_WEIGHT == 6  # releases counted by weight
    assert dps[("target", "a")].selection_delta == dps[("target", "b")].selection_delta == 1e-7 / 2
    assert np.isclose(dps[("target", "a")].std, 10.0 * np.sqrt(6))


def test_a_value_held_by_one_row_is_never_a_point_mass() -> None:
    rng = np.random.default_rng(2)
    x = np.sort(np.concatenate([np.zeros(3000), rng.normal(0.0, 1.0, 2000)]))
    values, counts = dpm.numeric_atoms(x, 20.0, 1e-9, rng)
    assert values.tolist() == [0.0]
    assert abs(counts[0] - 3000) < 100


def test_point_masses_and_the_rest_of_an_integer_column_stay_integers() -> None:
    rng = np.random.default_rng(4)
    x = np.where(rng.random(5000) < 0.4, 0, rng.integers(-30, 600, 5000)).astype(np.int64)
    model = GaussianCopulaModel({"delay": Kind.NUMERIC}, epsilon=1.0).fit(pa.table({"delay": pa.array(x)}))
    col = model.sample(n=5000, seed=0).column("delay")
    assert pa.types.is_integer(col.type)
    out = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    assert abs(np.mean(out == 0) - np.mean(x == 0)) < 0.03
    assert np.nanmin(out) >= -60 and np.nanmax(out) <= 1200


def test_mixture_knots_put_a_point_mass_inside_a_bin_as_a_flat_segment() -> None:
    p, q = dpm.mixture_knots(np.array([0.5]), np.array([2.0]), np.array([0.0]), np.array([1.0]), np.array([2.0]))
    assert np.all(np.diff(p) >= 0) and p[-1] == 1.0 and np.all(np.diff(q) >= 0)
    u = np.linspace(0.26, 0.74, 50)
    assert np.all(np.interp(u, p, q) == 0.5)  # half the mass sits exactly on 0.5
