"""ModelStore: atomic save, load, exists, metadata, safe names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from schemas.errors import ModelError
from schemas.kinds import Kind
from synth_engine import GaussianCopulaModel, ModelStore


def test_save_load_round_trip(tmp_path: Path) -> None:
    table = pa.table({"v": np.random.default_rng(0).normal(size=500), "c": ["a", "b"] * 250})
    model = GaussianCopulaModel({"v": Kind.NUMERIC, "c": Kind.CATEGORICAL}).fit(table)
    store = ModelStore(tmp_path / "models")
    assert not store.exists("orders")
    path = store.save("orders", model, {"rows": 500})
    assert path.is_file() and store.exists("orders")
    loaded = store.load("orders")
    assert isinstance(loaded, GaussianCopulaModel)
    assert loaded.sample(n=50, seed=3).equals(model.sample(n=50, seed=3))
    assert store.meta("orders") == {"rows": 500}
    assert store.names() == ["orders"]
    # no temporary files left behind
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["orders.pkl"]
    store.save("orders", {"replaced": True}, {})
    assert store.load("orders") == {"replaced": True}


def test_errors(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(ModelError, match="no model"):
        store.load("missing")
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ModelError, match="not allowed"):
            store.save(bad, object(), {})
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="cannot be read|not a synthdb"):
        store.load("junk")
