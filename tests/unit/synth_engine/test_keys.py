"""Keys: format-preserving unique primary keys across shards, composite-key dedupe, foreign-key assignment."""

from __future__ import annotations

import re
import uuid

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from schemas.errors import ModelError
from synth_engine import KeyFormat


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




def test_a_pattern_from_few_keys_does_not_spell_them_out() -> None:
    two = KeyFormat.learn(pa.array(["N123AB", "N124AB"]))
    assert two.style == "pattern" and two.describe() == "A999AA"  # literals need 5 distinct keys sharing them
    one = KeyFormat.learn(pa.array(["CUST-42"]))
    assert one.generate(0, 1, seed=0).to_pylist() != ["CUST-42"]


def test_key_formats_under_dp_release_only_shapes_many_keys_share() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    codes = [f"N{i:04d}{a}{b}" for i, (a, b) in enumerate(zip("ABCDEFGHIJ" * 400, "KLMNOPQRST" * 400, strict=True))]
    fmt = KeyFormat.learn_private(pa.array(codes[:4000]), std=20.0, delta=1e-7, rng=rng)
    assert fmt.style == "pattern" and fmt.alphabets[0] == "N"  # every key's N clears the threshold: a literal
    assert all(len(a) > 1 for a in fmt.alphabets[1:])  # no other key's character is released
    counter = KeyFormat.learn_private(pa.array([f"INV-{i}" for i in range(1, 3000)]), std=20.0, delta=1e-7, rng=rng)
    assert (counter.style, counter.prefix, counter.first) == ("counter", "INV-", 1)
    few = KeyFormat.learn_private(pa.array(codes[:50]), std=20.0, delta=1e-7, rng=rng)
    assert (few.style, few.prefix, few.alphabets) == ("counter", "", ())  # too few keys: plain numbers
    assert KeyFormat.learn_private(pa.array([17, 23, 99]), std=20.0, delta=1e-7, rng=rng).first == 1
