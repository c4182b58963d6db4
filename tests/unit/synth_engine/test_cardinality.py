"""CopulaCardinalityModel: zero-children share, dependence on a parent column, one-to-one, clipping."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine import CardinalityModel, CopulaCardinalityModel


def _parents(n: int = 6000, seed: int = 0) -> tuple[pa.Table, pa.Array]:
    rng = np.random.default_rng(seed)
    tier = rng.choice(["free", "pro"], size=n, p=[0.7, 0.3])
    size = rng.normal(size=n)
    # free parents: 40 % have no children, else few; pro parents: many children
    lam = np.where(tier == "pro", 8.0, 1.0) * np.exp(0.3 * size)
    counts = rng.poisson(lam)
    counts = np.where((tier == "free") & (rng.random(n) < 0.4), 0, counts)
    return pa.table({"tier": tier, "size": size}), pa.array(counts, pa.int64())


def test_implements_the_protocol() -> None:
    assert isinstance(CopulaCardinalityModel(), CardinalityModel)


def test_zero_share_and_dependence_on_parent_columns() -> None:
    parents, counts = _parents()
    model = CopulaCardinalityModel({"tier": Kind.CATEGORICAL, "size": Kind.NUMERIC}).fit(parents, counts)
    out = model.sample(parents, seed=1)
    assert out.type == pa.int64() and len(out) == parents.num_rows and out.null_count == 0
    real, synth = counts.to_numpy(), out.to_numpy()
    assert abs(np.mean(real == 0) - np.mean(synth == 0)) < 0.03
    assert abs(real.mean() - synth.mean()) < 0.3
    pro = np.array(parents["tier"].to_pylist()) == "pro"
    # pro parents have many more children, as in the data; a model ignoring the parent would give equal means
    assert synth[pro].mean() > 3 * synth[~pro].mean()
    assert np.mean(synth[~pro] == 0) > 0.4
    # deterministic per seed
    assert model.sample(parents, seed=1).equals(out)


def test_one_to_one_and_max_count() -> None:
    parents, counts = _parents(2000)
    one = CopulaCardinalityModel(one_to_one=True).fit(parents, counts).sample(parents, seed=0).to_numpy()
    assert set(np.unique(one)) <= {0, 1}
    assert 0 < one.mean() < 1
    capped = CopulaCardinalityModel(max_count=3).fit(parents, counts).sample(parents, seed=0).to_numpy()
    assert capped.max() <= 3 and capped.min() >= 0


def test_parents_without_learned_columns() -> None:
    _, counts = _parents(1000)
    keys_only = pa.table({"id": np.arange(1000)})
    model = CopulaCardinalityModel({"id": Kind.ID}).fit(keys_only, counts)
    out = model.sample(pa.table({"id": np.arange(500)}), seed=0)
    assert len(out) == 500
    assert abs(out.to_numpy().mean() - counts.to_numpy().mean()) < 1.0


def test_errors() -> None:
    parents, counts = _parents(100)
    with pytest.raises(NotFittedError):
        CopulaCardinalityModel().sample(parents, seed=0)
    with pytest.raises(ModelError, match="one count per parent"):
        CopulaCardinalityModel().fit(parents, counts.slice(1))
    with pytest.raises(ModelError, match="negative"):
        CopulaCardinalityModel().fit(parents.slice(0, 2), pa.array([1, -1]))


def test_expected_rank_orders_parents_by_what_their_columns_predict() -> None:
    parents, counts = _parents()
    model = CopulaCardinalityModel({"tier": Kind.CATEGORICAL, "size": Kind.NUMERIC}).fit(parents, counts)
    rank = model.expected_rank(parents)
    assert rank.shape == (parents.num_rows,) and np.isfinite(rank).all()
    real = counts.to_numpy()
    # parents ranked in the top half by prediction have more children on average than the bottom half
    top = rank >= np.median(rank)
    assert real[top].mean() > real[~top].mean()
    no_columns = CopulaCardinalityModel().fit(pa.table({"k": np.arange(10)}).select([]), pa.array(np.ones(10)))
    assert not no_columns.expected_rank(pa.table({"k": np.arange(10)})).any()
