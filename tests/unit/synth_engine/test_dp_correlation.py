"""The copula's DP correlation and the DP marginals' weighted releases: a strong correlation survives the noise
(each entry shrunk by its own noise, not all by a common factor), noise on an independent pair is mostly removed,
the result is a well-conditioned correlation matrix; releases weighted unequally spend exactly their weights; under
DP, conditional draws keep the target's marginal on whatever contexts they are given."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.kinds import Kind
from synth_engine._internal.encoding import NUMERIC_WEIGHTS, VOCABULARY_WEIGHT, ColumnPrivacy, column_privacy
from synth_engine.copula import GaussianCopulaModel
from synth_engine.privacy import Accountant, CopulaPrivacy, Spend
from synth_engine.privacy import mechanisms as dpm


def _scores(n: int, d: int, rho: float, seed: int = 0) -> np.ndarray:
    """Normal scores: columns 0 and 1 correlated at ``rho``, the others independent."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    z[:, 1] = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return z


def test_a_strong_correlation_keeps_most_of_its_value_and_noise_is_shrunk_to_zero() -> None:
    n, d, std = 5000, 12, 20.0
    z = _scores(n, d, 0.8)
    clip = 1.2 * np.sqrt(d)
    corr, sd = dpm.noisy_correlation(z, std, clip, np.random.default_rng(1))
    assert np.allclose(np.diag(sd), 0.0) and np.all(sd[~np.eye(d, dtype=bool)] > 0)
    # the deviation is the noise's scale over the (noisy) second moment: about std clip^2 / n
    assert np.median(sd[~np.eye(d, dtype=bool)]) == pytest.approx(std * clip**2 / n, rel=0.2)
    out = dpm.denoise_correlation(corr, sd, 0.1)
    assert np.allclose(out, out.T) and np.allclose(np.diag(out), 1.0)
    assert np.linalg.eigvalsh(out).min() > 0.05  # well-conditioned: a context block may be inverted
    assert out[0, 1] > 0.7  # a common shrinkage of ~0.45 towards the identity would leave ~0.45
    off = ~np.eye(d, dtype=bool)
    off[0, 1] = off[1, 0] = False
    assert np.mean(np.abs(out[off])) < np.mean(np.abs(corr[off]))  # the independent pairs' noise is reduced


def test_without_noise_the_correlation_is_kept() -> None:
    z = _scores(4000, 4, 0.6)
    corr, sd = dpm.noisy_correlation(z, 1e-9, 10.0, np.random.default_rng(0))  # no row is clipped
    out = dpm.denoise_correlation(corr, sd, 0.1)
    assert out[0, 1] == pytest.approx(np.corrcoef(z[:, 0], z[:, 1])[0, 1], abs=0.03)


def test_weighted_releases_spend_their_weights_exactly() -> None:
    priv = CopulaPrivacy("t", marginals=10.0, correlation=None, nullable=frozenset({"a"}))
    cols = [("target", "a", Kind.NUMERIC), ("target", "b", Kind.CATEGORICAL)]
    dps, spend = column_privacy(priv, cols)
    weights = [1, *NUMERIC_WEIGHTS, VOCABULARY_WEIGHT]  # a's NULL share, a's values, b's vocabulary
    assert spend is not None and spend.count == sum(weights)
    a: ColumnPrivacy = dps[("target", "a")]
    stds = [a.std, *a.numeric_stds, dps[("target", "b")].vocabulary_std]
    # as private as one Gaussian mechanism of the marginals' multiplier: sum of 1 / std_i^2 == 1 / multiplier^2
    assert sum(1.0 / s**2 for s in stds) == pytest.approx(1.0 / 10.0**2)
    unequal = [Spend("t", "model.marginals", s) for s in stds]
    assert Accountant(1e-6).epsilon(unequal) == pytest.approx(Accountant(1e-6).epsilon([spend]), rel=1e-6)
    # a vocabulary (a categorical's whole marginal) is more precise than a NULL share
    assert dps[("target", "b")].vocabulary_std < a.std


def test_numeric_mixture_takes_one_noise_or_one_per_release() -> None:
    x = np.sort(np.random.default_rng(0).normal(100.0, 10.0, 5000))
    _, (p, q) = dpm.numeric_mixture(x, False, 5.0, 1e-9, np.random.default_rng(1))
    _, (p2, q2) = dpm.numeric_mixture(x, False, (5.0, 5.0, 5.0, 5.0), 1e-9, np.random.default_rng(1))
    assert np.array_equal(p, p2) and np.array_equal(q, q2)


def test_dp_conditional_draws_keep_the_target_marginal_on_other_contexts() -> None:
    rng = np.random.default_rng(0)
    n = 6000
    size = rng.normal(size=n)
    amount = 3.0 * size + rng.normal(size=n)
    model = GaussianCopulaModel({"amount": Kind.NUMERIC}, {"size": Kind.NUMERIC}, epsilon=1.0).fit(
        pa.table({"amount": amount}), context=pa.table({"size": size})
    )
    assert model.rank_calibrate_
    # contexts drawn like the training ones (generated parents): over all rows, the target's DP marginal
    fresh = pa.table({"size": rng.normal(size=4000)})
    out = np.asarray(model.sample(context=fresh, seed=1)["amount"].to_numpy(zero_copy_only=False))
    marginal = np.asarray(model.sample(n=20_000, seed=2)["amount"].to_numpy(zero_copy_only=False))
    assert np.nanquantile(out, [0.1, 0.5, 0.9]) == pytest.approx(np.nanquantile(marginal, [0.1, 0.5, 0.9]), abs=0.5)
    ctx = np.asarray(fresh["size"].to_numpy(zero_copy_only=False))
    ok = ~np.isnan(out)
    assert np.corrcoef(ctx[ok], out[ok])[0, 1] > 0.5  # the order follows the context
    # a hand-made context of one large parent keeps its conditional draws (not spread over the marginal)
    large = pa.table({"size": np.full(4000, 1.5)})
    big = np.asarray(model.sample(context=large, seed=3)["amount"].to_numpy(zero_copy_only=False))
    assert np.nanmedian(big) > np.nanquantile(marginal, 0.75)
    # a non-DP model keeps its calibration on the training contexts
    plain = GaussianCopulaModel({"amount": Kind.NUMERIC}, {"size": Kind.NUMERIC}).fit(
        pa.table({"amount": amount}), context=pa.table({"size": size})
    )
    assert not plain.rank_calibrate_ and plain.calibration_ is not None
