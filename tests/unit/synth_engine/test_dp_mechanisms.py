"""DP mechanisms: thresholded vocabularies drop rare categories, ranges and histograms stay useful, count
histograms keep a table's children, the DP copula records what it spent."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.kinds import Kind
from synth_engine.cardinality import CopulaCardinalityModel
from synth_engine.copula import GaussianCopulaModel
from synth_engine.privacy import CopulaPrivacy
from synth_engine.privacy import mechanisms as dpm


def test_vocabulary_never_releases_a_category_seen_once() -> None:
    rng = np.random.default_rng(0)
    values = pa.array(["common"] * 5000 + [f"person-{i}" for i in range(2000)])
    cats, counts = dpm.vocabulary(values, 5.0, 1e-7, rng)
    assert cats.to_pylist() == ["common"]
    assert abs(counts[0] - 5000) < 30


def test_numeric_range_and_values() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(50.0, 10.0, 20_000)
    lo, hi = dpm.numeric_range(x, 10.0, rng)
    assert 0 < lo < 35 and 65 < hi < 110
    values, weights = dpm.numeric_values(np.rint(x), lo, hi, True, 10.0, rng)
    assert values is not None
    mean = float(np.sum(values * weights) / np.sum(weights))
    assert abs(mean - 50.0) < 1.0


def test_count_histogram_keeps_children_and_zeros() -> None:
    rng = np.random.default_rng(2)
    counts = np.concatenate([np.zeros(900, dtype=np.int64), rng.integers(1, 40, 600)])
    out = dpm.count_histogram(counts, 5.0, rng)
    assert np.all(np.diff(out) >= 0)
    assert abs(np.mean(out == 0) - 0.6) < 0.05
    assert abs(out.mean() - counts.mean()) / counts.mean() < 0.25  # log bins spread evenly; totals are rescaled
    # all children under three parents: a table with rows never loses them all
    heavy = np.concatenate([np.zeros(1000, dtype=np.int64), np.full(3, 9000)])
    assert dpm.count_histogram(heavy, 20.0, rng).sum() > 0


def test_count_histogram_keeps_heavy_parents_by_count() -> None:
    # 3 airports hold every flight: a histogram bin of 3 parents is under the noise, the top counts are not
    rng = np.random.default_rng(5)
    heavy = np.concatenate([np.zeros(1455, dtype=np.int64), [5966, 5600, 5200]])
    out = dpm.count_histogram(heavy, 81.0, rng)
    assert np.count_nonzero(out > 1000) == 3
    assert np.allclose(np.sort(out[out > 1000]), [5200, 5600, 5966], atol=300)
    assert abs(np.count_nonzero(out == 0) - 1455) < 300


def test_count_histogram_keeps_a_thin_tail_as_wider_bins() -> None:
    # planes per tail number: counts 8..31 hold a fifth of the parents, each count bin under the threshold
    rng = np.random.default_rng(6)
    counts = np.concatenate([np.repeat(np.arange(8), [737, 490, 390, 294, 243, 210, 171, 140]),
                             rng.integers(8, 32, 600)])
    out = dpm.count_histogram(counts, 81.0, rng)
    assert np.mean(out >= 8) == pytest.approx(np.mean(counts >= 8), abs=0.08)
    assert out.max() < 64  # no spurious heavy parents far out


def test_count_histogram_of_public_parents_keeps_every_parent() -> None:
    # 16 airlines, declared public: every airline's count is released, the small ones too
    counts = np.array([3, 17, 26, 37, 37, 153, 261, 619, 919, 1056, 1370, 1676, 2403, 2686, 2700, 2876])
    out = dpm.count_histogram(counts, 81.0, np.random.default_rng(7), public_parents=True)
    assert out.size == 16 and np.all(np.diff(out) >= 0) and out.min() >= 0
    assert np.abs(out - counts).max() < 250
    hidden = dpm.count_histogram(counts, 81.0, np.random.default_rng(7))
    assert hidden.size < 16  # unknown parents: counts under the noise cannot be told from padding


def test_a_numeric_column_too_thin_for_the_noise_becomes_null() -> None:
    # 23 speeds over 3,322 planes: no range bin clears its threshold; they used to come back at the noisiest
    # bin (negative speeds). Nullable: NULL, as a vocabulary no category clears; NOT NULL: still values.
    rng = np.random.default_rng(8)
    speed = np.full(3322, np.nan)
    speed[:23] = rng.uniform(90, 432, 23)
    table = pa.table({"speed": pa.array(speed, from_pandas=True), "seats": rng.integers(2, 450, 3322)})
    kinds = {"speed": Kind.NUMERIC, "seats": Kind.NUMERIC}
    model = GaussianCopulaModel(kinds, privacy=CopulaPrivacy("t", 12.0, 12.0, selection_delta=1e-8)).fit(table)
    out = model.sample(n=2000, seed=0)
    assert out["speed"].null_count == 2000
    assert out["seats"].null_count < 200
    values, _ = dpm.numeric_mixture(np.sort(speed[:23]), False, 60.0, 1e-8, rng, may_be_empty=True)
    assert values is not None and values.size == 0
    values, _ = dpm.numeric_mixture(np.sort(speed[:23]), False, 60.0, 1e-8, rng)
    assert values is None or values.size > 0  # NOT NULL: a marginal all the same


def test_grid_step_finds_hours() -> None:
    rng = np.random.default_rng(3)
    hours = (1_356_998_400 + 3600 * rng.integers(0, 8760, 5000)) * 10**6
    assert dpm.grid_step(hours, 0, 5.0, rng) == 3_600 * 10**6


def _table(n: int) -> pa.Table:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, n)
    return pa.table(
        {
            "x": x,
            "y": 2 * x + rng.normal(0, 0.5, n),
            "c": pa.array(np.where(x > 0, "hi", "lo")),
            "rare": pa.array([f"id{i}" for i in range(n)]),
        }
    )


def test_dp_copula_spends_what_it_reports_and_keeps_dependence() -> None:
    table = _table(20_000)
    kinds = {"x": Kind.NUMERIC, "y": Kind.NUMERIC, "c": Kind.CATEGORICAL, "rare": Kind.CATEGORICAL}
    priv = CopulaPrivacy("t", 2.0, 2.0, selection_delta=1e-7, nullable=frozenset())
    model = GaussianCopulaModel(kinds, privacy=priv).fit(table)
    spent = {s.statistic: s for s in model.privacy_spent_}
    assert set(spent) == {"model.marginals", "model.correlation"}
    # NOT NULL columns: no NULL release; 2 numeric columns x 4 releases (point masses, two ranges, one
    # histogram) + 2 vocabularies of weight 2 each (releases are counted by weight)
    assert spent["model.marginals"].count == 12
    out = model.sample(n=5000, seed=0)
    assert out.schema == table.schema
    assert out["x"].null_count == 0
    # a category seen by one row never appears: the unique ids are suppressed (a NOT NULL placeholder)
    assert set(out["rare"].to_pylist()) <= {"(suppressed)"}
    x, y = np.asarray(out["x"]), np.asarray(out["y"])
    assert np.corrcoef(x, y)[0, 1] > 0.6


def test_dp_cardinality_records_sensitivity_two() -> None:
    rng = np.random.default_rng(5)
    parents = pa.table({"size": rng.normal(0, 1, 3000)})
    counts = pa.array(rng.poisson(2, 3000))
    priv = CopulaPrivacy("t", 3.0, 3.0, prefix="cardinality", sensitivity=2.0)
    model = CopulaCardinalityModel({"size": Kind.NUMERIC}, privacy=priv).fit(parents, counts)
    assert {s.statistic for s in model.privacy_spent_} == {"cardinality.marginals", "cardinality.correlation"}
    sampled = np.asarray(model.sample(parents, seed=0))
    assert abs(sampled.mean() - 2.0) < 0.5
