"""Rebalanced and conditioned sampling: wanted shares are reached, and the rest of each row follows the model."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.errors import ModelError
from schemas.kinds import Kind
from synth_engine.conditions import sample_with_shares
from synth_engine.copula import GaussianCopulaModel


def _fitted() -> GaussianCopulaModel:
    rng = np.random.default_rng(0)
    n = 20_000
    rare = rng.random(n) < 0.05
    cls = np.where(rare, "rare", "common")
    x = np.where(rare, rng.normal(10, 1, n), rng.normal(0, 1, n))
    return GaussianCopulaModel({"cls": Kind.CATEGORICAL, "x": Kind.NUMERIC}).fit(pa.table({"cls": cls, "x": x}))


def test_a_rare_class_rebalanced_to_half_keeps_its_own_distribution() -> None:
    model = _fitted()
    out, reached = sample_with_shares(model, "cls", {"rare": 0.5, "common": 0.5}, n=4_000, seed=1)
    assert out.num_rows == 4_000 and reached.missed == 0
    assert abs(reached.reached["rare"] - 0.5) < 0.03
    # the rest of each row follows the model's own conditional distribution given the value
    rebalanced, own = _means(out), _means(model.sample(n=100_000, seed=3))
    assert abs(rebalanced["rare"] - own["rare"]) < 0.3 and abs(rebalanced["common"] - own["common"]) < 0.1


def _means(table: pa.Table) -> dict[str, float]:
    cls, x = np.asarray(table.column("cls").to_pylist()), table.column("x").to_numpy()
    return {v: float(x[cls == v].mean()) for v in ("rare", "common")}


def test_fixed_value_and_same_seed_same_output() -> None:
    model = _fitted()
    a, reached = sample_with_shares(model, "cls", {"rare": 1.0}, n=500, seed=7)
    b, _ = sample_with_shares(model, "cls", {"rare": 1.0}, n=500, seed=7)
    assert a.equals(b) and reached.reached["rare"] == 1.0


def test_bad_shares_and_unknown_column_are_refused() -> None:
    model = _fitted()
    with pytest.raises(ModelError, match="sum to 1"):
        sample_with_shares(model, "cls", {"rare": 0.7}, n=10, seed=0)
    with pytest.raises(ModelError, match="not sampled by the model"):
        sample_with_shares(model, "nope", {"a": 1.0}, n=10, seed=0)
