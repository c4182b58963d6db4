"""The key mechanism on its own: learned members unique on their grid, link-table draws, counts, the whole block."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from schemas.errors import ModelError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.plan import build_plan
from schemas.policy import table_roles
from synth_engine.keys import (
    BlockKeys,
    KeyFormat,
    MemberGrid,
    ParentPool,
    assign_keys,
    duplicated,
    group_capacity,
    pick_distinct,
    repair_table_keys,
    stratified_counts,
    unique_members,
)

HOUR = 3_600_000_000


def test_learned_timestamp_member_is_unique_on_its_hourly_grid_and_no_row_is_lost() -> None:
    rng = np.random.default_rng(0)
    real_hours = np.arange(24 * 365)
    real = pa.table({"time_hour": pa.array(real_hours * HOUR, pa.int64()).cast(pa.timestamp("us"))})
    grid = MemberGrid.learn(real, ["time_hour"])
    assert grid.step == HOUR and grid.top == 24 * 365 - 1 and grid.slots is None
    # 3 airports, each with nearly as many rows as the year has hours: independent samples collide a lot
    n = 3 * 8_700
    sampled = rng.normal(4_000, 2_000, size=n).clip(0, 8_759) * HOUR + rng.integers(0, HOUR, size=n)
    table = pa.table(
        {
            "origin": np.repeat(["EWR", "JFK", "LGA"], n // 3),
            "time_hour": pa.array(sampled.astype(np.int64)).cast(pa.timestamp("us")),
            "temp": rng.normal(size=n),
        }
    )
    out, dropped = unique_members(table, ["origin", "time_hour"], grid, seed=1)
    assert dropped == 0 and out.num_rows == n
    assert not duplicated(out, ("origin", "time_hour")).any()
    values = np.asarray(out["time_hour"].cast(pa.int64()).to_numpy())
    assert (values % HOUR == 0).all()
    assert out["temp"].equals(table["temp"])  # rows keep their other columns and their order
    assert unique_members(table, ["origin", "time_hour"], grid, seed=1)[0].equals(out)


def test_a_group_larger_than_the_real_range_extends_the_grid_instead_of_dropping() -> None:
    real = pa.table({"day": pa.array([0, 1, 2], pa.int32()).cast(pa.date32())})
    grid = MemberGrid.learn(real, ["day"])
    table = pa.table({"p": [1] * 10, "day": pa.array([1] * 10, pa.int32()).cast(pa.date32())})
    out, dropped = unique_members(table, ["p", "day"], grid, seed=0)
    assert dropped == 0 and len(set(out["day"].to_pylist())) == 10


def test_several_learned_members_take_only_real_combinations() -> None:
    # (year, month, day, hour): a pool of the real tuples, so no 30 February appears
    rng = np.random.default_rng(2)
    days = pl.date_range(pl.date(2013, 1, 1), pl.date(2013, 12, 31), eager=True)
    real = pl.DataFrame({"d": days}).join(pl.DataFrame({"hour": np.arange(24, dtype=np.int32)}), how="cross")
    real = real.select(
        pl.col("d").dt.year().cast(pl.Int32).alias("year"),
        pl.col("d").dt.month().cast(pl.Int32).alias("month"),
        pl.col("d").dt.day().cast(pl.Int32).alias("day"),
        "hour",
    ).to_arrow()
    grid = MemberGrid.learn(real, ["year", "month", "day", "hour"])
    assert grid.slots == 365 * 24
    n = 8_000
    table = pa.table(
        {
            "origin": ["JFK"] * n,
            "year": np.full(n, 2013, np.int32),
            "month": rng.integers(1, 13, n).astype(np.int32),
            "day": rng.integers(1, 32, n).astype(np.int32),
            "hour": rng.integers(0, 24, n).astype(np.int32),
        }
    )
    key = ["origin", "year", "month", "day", "hour"]
    out, dropped = unique_members(table, key, grid, seed=0)
    assert dropped == 0 and out.num_rows == n and not duplicated(out, tuple(key)).any()
    real_set = set(map(tuple, pl.from_arrow(real).rows()))
    assert set(pl.from_arrow(out.select(key[1:])).rows()) <= real_set


def test_pick_distinct_gives_distinct_partners_per_group_weighted_by_indegree() -> None:
    rng = np.random.default_rng(3)
    tracks = ParentPool(pa.table({"track_id": np.arange(50)}), np.r_[np.full(10, 5.0), np.ones(40)] / 90)
    groups = np.repeat(np.arange(200), rng.integers(1, 40, 200))
    (idx,), placed = pick_distinct(groups, [tracks], np.random.default_rng(0))
    assert placed.all()
    df = pl.DataFrame({"g": groups, "t": idx})
    assert not df.is_duplicated().any()
    heavy = (idx < 10).mean()
    assert heavy > 10 / 50 + 0.1  # the heavy parents are chosen more often than uniformly


def test_pick_distinct_fills_a_group_that_wants_every_parent() -> None:
    pool = ParentPool(pa.table({"p": np.arange(20)}), np.r_[[0.9], np.full(19, 0.1 / 19)])
    (idx,), placed = pick_distinct(np.zeros(20, dtype=np.int64), [pool], np.random.default_rng(0))
    assert placed.all() and sorted(idx.tolist()) == list(range(20))


def test_two_pools_are_distinct_as_a_combination() -> None:
    a = ParentPool(pa.table({"a": np.arange(3)}), np.full(3, 1 / 3))
    b = ParentPool(pa.table({"b": np.arange(4)}), np.full(4, 1 / 4))
    (ia, ib), placed = pick_distinct(np.zeros(12, dtype=np.int64), [a, b], np.random.default_rng(1))
    assert placed.all() and len(set(zip(ia.tolist(), ib.tolist(), strict=True))) == 12


def test_stratified_counts_keep_the_total_whatever_the_seed_and_blocks() -> None:
    observed = np.sort(np.r_[np.zeros(1_455, dtype=np.int64), [8_700, 8_700, 8_700]])
    totals = []
    for seed in range(20):
        blocks = [np.arange(0, 1_000), np.arange(1_000, 1_458)]
        totals.append(
            sum(
                int(stratified_counts(observed, b, 1_458, np.zeros(len(b)), seed=seed).sum())
                for b in blocks
            )
        )
    assert set(totals) == {26_100}


def _link_schema() -> DatabaseSchema:
    def col(name: str, kind: Kind = Kind.ID, nullable: bool = False) -> Column:
        return Column(name=name, type="INTEGER", nullable=nullable, kind=kind)

    return DatabaseSchema(
        tables=[
            Table(name="playlist", columns=[col("id"), col("mood", Kind.NUMERIC)], primary_key=PrimaryKey(columns=["id"])),
            Table(name="track", columns=[col("id"), col("secs", Kind.NUMERIC)], primary_key=PrimaryKey(columns=["id"])),
            Table(
                name="playlist_track",
                columns=[col("playlist_id"), col("track_id"), col("position", Kind.NUMERIC)],
                primary_key=PrimaryKey(columns=["playlist_id", "track_id"]),
                foreign_keys=[
                    ForeignKey(columns=["playlist_id"], ref_table="playlist", ref_columns=["id"]),
                    ForeignKey(columns=["track_id"], ref_table="track", ref_columns=["id"]),
                ],
            ),
        ]
    )


def test_a_link_table_block_gets_unique_keys_and_its_capacity_is_the_partner_count() -> None:
    schema = _link_schema()
    plan = build_plan(schema)
    roles = table_roles(schema.table("playlist_track"), plan)
    (rule,) = roles.key_rules
    assert rule.scope == "group" and len(rule.drawn) == 1 and not rule.learned
    ctx = roles.context
    assert ctx is not None
    other = "playlist_id" if ctx.columns == ("track_id",) else "track_id"
    ref = roles.secondary[0]
    pool = ParentPool(pa.table({other: np.arange(30)}), np.full(30, 1 / 30))
    assert group_capacity(rule, {ref.label: pool}, {}) == 30
    counts = np.random.default_rng(0).integers(0, 30, 100)
    ctx_keys = pa.table({ctx.columns[0]: np.repeat(np.arange(100), counts)})
    rows = pa.table({"position": np.zeros(ctx_keys.num_rows)})
    block = BlockKeys(start=0, context_keys=ctx_keys, sequence=None, pools={ref.label: pool}, null_shares={})
    out, stats = assign_keys(rows, roles, {}, {}, block, seed=4)
    assert out.num_rows == ctx_keys.num_rows and stats.dropped == 0
    assert not duplicated(out, ("playlist_id", "track_id")).any()


def test_a_table_wide_key_is_repaired_across_blocks() -> None:
    pool = ParentPool(pa.table({"b": np.arange(100)}), np.full(100, 0.01))
    from schemas.plan import FkRef
    from schemas.policy import KeyRule

    ref = FkRef("t", ("b",), "p", ("id",), False)
    rule = KeyRule(("b",), (), (ref.label,), (), "table")
    keys = pa.table({"b": np.random.default_rng(0).integers(0, 100, 80)})
    fixed, keep = repair_table_keys(keys, rule, [ref], {ref.label: pool}, None, seed=0)
    assert keep.all() and fixed.num_rows == 80 and len(set(fixed["b"].to_pylist())) == 80


def test_key_format_still_exported() -> None:
    assert KeyFormat.learn(pa.array([1, 2, 3])).style == "integer"
    with pytest.raises(ModelError):
        MemberGrid.learn(pa.table({"a": [1]}), [])


def test_text_members_are_never_stored_and_stay_unique() -> None:
    import pickle

    codes = [f"ST{i:04d}X" for i in range(40)]
    real = pa.table(
        {"code": codes * 3, "ts": pa.array(np.arange(120, dtype=np.int64) * HOUR).cast(pa.timestamp("us"))}
    )
    mixed = MemberGrid.learn(real, ["code", "ts"])
    alone = MemberGrid.learn(real.select(["code"]), ["code"])
    stored = pickle.dumps([mixed, alone])
    assert not any(c.encode() in stored for c in codes)
    # text + timestamp: the text joins the group (the model's codes are kept), the timestamp moves on its grid
    assert mixed.text == ("code",) and mixed.slots is None and mixed.variety == 40
    n = 60
    table = pa.table(
        {
            "p": [1] * n,
            "code": ["ST0001X", "ST0002X"] * (n // 2),
            "ts": pa.array(np.zeros(n, dtype=np.int64)).cast(pa.timestamp("us")),
        }
    )
    out, dropped = unique_members(table, ["p", "code", "ts"], mixed, seed=0)
    assert dropped == 0 and out["code"].equals(table["code"]) and not duplicated(out, ("p", "code", "ts")).any()
    # text only: repeating rows get new values in the learned format
    only = pa.table({"p": [1] * n, "code": ["ST0001X"] * n})
    out, dropped = unique_members(only, ["p", "code"], alone, seed=0)
    values = out["code"].to_pylist()
    assert dropped == 0 and len(set(values)) == n and all(re.fullmatch(r"ST[0-9]{4}X", v) for v in values)


def test_a_foreign_key_overlapping_the_context_key_is_matched_not_drawn() -> None:
    # key (a, b, c): the context (a, b) -> p1, and (a, c) -> p2 shares column a with it. Drawing (a, c) freely would
    # overwrite the context's a and orphan (a, b); it is matched on a instead, and repeats are removed.
    def col(name: str) -> Column:
        return Column(name=name, type="INTEGER", nullable=False, kind=Kind.ID)

    schema = DatabaseSchema(
        tables=[
            Table(name="p1", columns=[col("a"), col("b")], primary_key=PrimaryKey(columns=["a", "b"])),
            Table(name="p2", columns=[col("a"), col("c")], primary_key=PrimaryKey(columns=["a", "c"])),
            Table(
                name="t",
                columns=[col("a"), col("b"), col("c")],
                primary_key=PrimaryKey(columns=["a", "b", "c"]),
                foreign_keys=[
                    ForeignKey(columns=["a", "b"], ref_table="p1", ref_columns=["a", "b"]),
                    ForeignKey(columns=["a", "c"], ref_table="p2", ref_columns=["a", "c"]),
                ],
            ),
        ]
    )
    plan = build_plan(schema)
    roles = table_roles(schema.table("t"), plan)
    assert roles.context is not None and roles.context.parent == "p1"
    (rule,) = roles.key_rules
    assert rule.drawn == () and rule.wired == ("c",)
    ref = roles.secondary[0]
    p2 = pa.table({"a": np.repeat(np.arange(5), 4), "c": np.tile(np.arange(4), 5)})
    pool = ParentPool(p2, np.full(20, 1 / 20))
    assert group_capacity(rule, {ref.label: pool}, {}) is None
    ctx = pa.table({"a": np.repeat(np.arange(5), 6), "b": np.zeros(30, dtype=np.int64)})
    block = BlockKeys(start=0, context_keys=ctx, sequence=None, pools={ref.label: pool}, null_shares={})
    out, stats = assign_keys(pa.table({"x": np.zeros(30)}), roles, {}, {}, block, seed=1)
    assert not duplicated(out, ("a", "b", "c")).any() and out.num_rows + stats.dropped == 30
    pairs = set(zip(p2["a"].to_pylist(), p2["c"].to_pylist(), strict=True))
    assert set(zip(out["a"].to_pylist(), out["c"].to_pylist(), strict=True)) <= pairs  # (a, c) -> p2 holds
    assert set(out["b"].to_pylist()) == {0}  # the context key is untouched
