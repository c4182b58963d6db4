"""Keys: format-preserving unique primary keys across shards, composite-key dedupe, foreign-key assignment."""

from __future__ import annotations

import re
import uuid

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from schemas.errors import ModelError
from synth_engine import KeyFormat, assign_foreign_keys, dedupe_composite


def _shards(fmt: KeyFormat, sizes: list[int], seed: int = 7) -> list[str | int]:
    out: list[str | int] = []
    start = 0
    for size in sizes:
        out += fmt.generate(start, size, seed=seed).to_pylist()
        start += size
    return out


@pytest.mark.parametrize("arrow_type", [pa.int16(), pa.int32(), pa.int64(), pa.decimal128(10, 0)])
def test_integer_keys_are_sequential_from_the_source_min(arrow_type: pa.DataType) -> None:
    source = pa.array([105, 101, 230])
    if pa.types.is_decimal(arrow_type):
        source = source.cast(pa.decimal128(38, 0))
    fmt = KeyFormat.learn(source.cast(arrow_type))
    keys = fmt.generate(0, 5, seed=0)
    assert keys.type == arrow_type
    assert [int(k) for k in keys.to_pylist()] == [101, 102, 103, 104, 105]
    assert [int(k) for k in fmt.generate(5, 2, seed=0).to_pylist()] == [106, 107]


def test_integer_overflow_is_an_error() -> None:
    fmt = KeyFormat.learn(pa.array([32_000], pa.int16()))
    with pytest.raises(ModelError, match="do not fit"):
        fmt.generate(0, 1000, seed=0)


def test_uuid_keys_are_valid_unique_and_shard_independent() -> None:
    fmt = KeyFormat.learn(pa.array([str(uuid.uuid4()) for _ in range(20)]))
    assert fmt.style == "uuid"
    keys = _shards(fmt, [3000, 5000, 2000])
    assert len(set(keys)) == 10_000
    for k in keys[:200]:
        parsed = uuid.UUID(str(k))
        assert parsed.version == 4 and str(parsed) == k
    # the same global rows give the same keys, however the rows are sharded
    assert _shards(fmt, [10_000]) == keys
    upper = KeyFormat.learn(pa.array([str(uuid.uuid4()).upper()]))
    assert re.fullmatch(r"[0-9A-F-]{36}", upper.generate(0, 1, seed=0)[0].as_py())
    binary = KeyFormat.learn(pa.array([uuid.uuid4().bytes], pa.binary(16)))
    assert binary.generate(0, 4, seed=0).type == pa.binary(16)


def test_pattern_keys_keep_the_format_and_are_unique_across_shards() -> None:
    tails = ["N123AB", "N456CD", "N789ZZ", "N001QA", "N555XY"]
    fmt = KeyFormat.learn(pa.array(tails))
    assert fmt.style == "pattern" and fmt.describe() == "N999AA"
    keys = _shards(fmt, [40_000, 25_000, 35_000])
    assert len(set(keys)) == 100_000
    assert all(re.fullmatch(r"N[0-9]{3}[A-Z]{2}", k) for k in keys)  # type: ignore[arg-type]
    assert _shards(fmt, [100_000]) == keys
    assert _shards(fmt, [100], seed=8) != keys[:100]


def test_prefixed_zero_padded_keys_and_widening() -> None:
    real = [f"P-{i:04d}" for i in range(1, 421)]
    fmt = KeyFormat.learn(pa.array(real))
    small = fmt.generate(0, 500, seed=1).to_pylist()
    assert all(re.fullmatch(r"P-0[0-9]{3}", k) for k in small) and len(set(small)) == 500
    wide = fmt.with_capacity(5000)
    assert wide.capacity is not None and wide.capacity >= 5000
    keys = _shards(wide, [2000, 3000])
    assert len(set(keys)) == 5000 and all(re.fullmatch(r"P-[0-9]{4}", k) for k in keys)  # type: ignore[arg-type]


def test_counter_keys_for_unpadded_numbers() -> None:
    fmt = KeyFormat.learn(pa.array(["ORD7", "ORD12", "ORD130"]))
    assert fmt.generate(0, 3, seed=0).to_pylist() == ["ORD7", "ORD8", "ORD9"]
    plain = KeyFormat.learn(pa.array(["5", "17", "230"], pa.large_string()))
    keys = plain.generate(10, 2, seed=0)
    assert keys.type == pa.large_string() and keys.to_pylist() == ["15", "16"]


def test_key_of_unsupported_type_is_an_error() -> None:
    with pytest.raises(ModelError, match="cannot generate primary keys"):
        KeyFormat.learn(pa.array([True, False]))


def test_dedupe_composite_leaves_no_duplicate() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    table = pa.table(
        {
            "origin": rng.choice(["EWR", "JFK", "LGA"], size=n),
            "year": np.full(n, 2013, dtype=np.int16),
            "month": rng.integers(1, 13, size=n).astype(np.int32),
            "day": rng.integers(1, 29, size=n).astype(np.int32),
            "hour": rng.integers(0, 24, size=n).astype(np.int32),
            "temp": rng.normal(size=n),
        }
    )
    key = ["origin", "year", "month", "day", "hour"]
    before = pl.from_arrow(table)
    assert before.select(pl.struct(key).is_duplicated().any()).item()
    out = dedupe_composite(table, key, ["origin"], seed=0)
    after = pl.from_arrow(out)
    assert not after.select(pl.struct(key).is_duplicated().any()).item()
    assert out.schema == table.schema
    assert after["hour"].min() >= 0 and after["hour"].max() <= 23
    # 3 * 12 * 28 * 24 = 24,192 slots: only a few rows, if any, have to go; colliding rows moved, not dropped
    assert out.num_rows > 0.95 * n
    # the non-key columns travel with their rows
    kept = set(out["temp"].to_pylist())
    assert kept <= set(table["temp"].to_pylist())
    assert dedupe_composite(table, key, ["origin"], seed=0).equals(out)


def test_dedupe_composite_on_timestamps_uses_the_column_step() -> None:
    hour = 3_600_000_000
    ts = pa.array([0, 0, hour, 3 * hour], pa.int64()).cast(pa.timestamp("us"))
    table = pa.table({"station": ["a", "a", "a", "a"], "at": ts})
    out = dedupe_composite(table, ["station", "at"], ["station"], seed=0)
    values = sorted(out["at"].cast(pa.int64()).to_pylist())
    assert len(set(values)) == out.num_rows == 4
    assert all(v % hour == 0 for v in values)


def test_dedupe_composite_without_a_numeric_column_drops_duplicates() -> None:
    table = pa.table({"a": ["x", "x", "y"], "b": ["p", "p", "p"]})
    out = dedupe_composite(table, ["a", "b"], [], seed=0)
    assert out.to_pylist() == [{"a": "x", "b": "p"}, {"a": "y", "b": "p"}]


def test_assign_foreign_keys_null_share_and_indegree_shape() -> None:
    rng = np.random.default_rng(1)
    # real in-degree: 30 % of parents without children, the rest geometric
    real = np.where(rng.random(5000) < 0.3, 0, rng.geometric(0.25, size=5000))
    parents = pa.table({"id": np.arange(1000, 3000, dtype=np.int64), "region": pa.array(["n", "s"] * 1000)})
    n = int(real.sum() * 2000 / 5000)
    out = assign_foreign_keys(n, parents, indegree=real, null_share=0.1, seed=3)
    assert out.num_rows == n and out.schema == parents.schema
    assert abs(out["id"].null_count / n - 0.1) < 0.001
    # composite keys travel as whole rows
    valid = out.filter(out["id"].is_valid()).to_pylist()
    assert all(row["region"] == ("n" if (row["id"] - 1000) % 2 == 0 else "s") for row in valid[:500])
    degree = np.bincount(np.array([r["id"] for r in valid]) - 1000, minlength=2000)
    assert abs(np.mean(degree == 0) - np.mean(real == 0)) < 0.05
    real_scaled = real * (degree.sum() / (real.mean() * 2000))
    assert abs(np.quantile(degree, 0.9) - np.quantile(real_scaled, 0.9)) <= 3
    assert assign_foreign_keys(n, parents, indegree=real, null_share=0.1, seed=3).equals(out)


def test_assign_foreign_keys_uniform_and_errors() -> None:
    parents = pa.table({"id": np.arange(10)})
    out = assign_foreign_keys(1000, parents, indegree=None, null_share=0.0, seed=0)
    assert out["id"].null_count == 0
    assert set(out["id"].to_pylist()) == set(range(10))
    with pytest.raises(ModelError, match="no parent rows"):
        assign_foreign_keys(5, pa.table({"id": pa.array([], pa.int64())}), indegree=None, null_share=0.0, seed=0)
    nulls_only = assign_foreign_keys(5, pa.table({"id": pa.array([], pa.int64())}), indegree=None, null_share=1.0, seed=0)
    assert nulls_only["id"].null_count == 5
