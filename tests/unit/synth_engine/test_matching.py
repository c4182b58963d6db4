"""Foreign keys matched by content: the child's columns decide its parent, in-degrees follow the pool's weights."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.plan import build_plan
from schemas.policy import table_roles
from synth_engine.keys import (
    BlockKeys,
    ForeignKeyMatcher,
    KeyFormat,
    MatchCandidates,
    Matching,
    ParentPool,
    assign_keys,
    pick_matched,
    pick_parents,
)
from synth_engine.keys.matching import candidate_weights, popular_weights, select_candidates

CATS = np.array(list("ABCDE"))
CHILD_KINDS = {"v": Kind.NUMERIC, "noise": Kind.NUMERIC}
PARENT_KINDS = {"cat": Kind.CATEGORICAL, "x": Kind.NUMERIC}


def _parents(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 5, n)
    return pa.table({"id": np.arange(n), "cat": CATS[c], "x": rng.normal(size=n)}), c


def _children(category: np.ndarray, seed: int) -> pa.Table:
    """The child's ``v`` sits near its parent's category number: the column determines the category."""
    rng = np.random.default_rng(seed)
    return pa.table({"v": category + rng.normal(0, 0.3, len(category)), "noise": rng.normal(size=len(category))})


@pytest.fixture(scope="module")
def fitted() -> tuple[ForeignKeyMatcher, np.ndarray]:
    real, cat = _parents(200, 0)
    rng = np.random.default_rng(1)
    indegree = rng.poisson(20, 200) * (rng.random(200) < 0.7)
    which = np.repeat(np.arange(200), indegree)
    matcher = ForeignKeyMatcher(CHILD_KINDS, PARENT_KINDS).fit(
        _children(cat[which], 2),
        real.take(pa.array(which)).select(["cat", "x"]),
        parents=real.select(["cat", "x"]),
        indegree=indegree,
    )
    return matcher, indegree


def _pool(matcher: ForeignKeyMatcher, indegree: np.ndarray, n: int = 300, cap: int = 200_000) -> tuple[ParentPool, np.ndarray]:
    generated, cat = _parents(n, 3)
    pool = ParentPool.build(generated.select(["id"]), indegree, np.random.default_rng(4))
    weights = popular_weights(pool.weights, matcher.popularity(generated, seed=5), np.random.default_rng(6))
    index = select_candidates(weights, np.random.default_rng(7), cap=cap)
    candidates = MatchCandidates.build(
        index, matcher.encode_parents(generated.take(pa.array(index))), candidate_weights(weights, index)
    )
    return ParentPool(pool.keys, weights, Matching(matcher, candidates)), cat


def _child_block(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    wanted = np.random.default_rng(seed).integers(0, 5, n)
    return _children(wanted, seed + 1), wanted


def test_the_childs_column_decides_the_parents_category_well_above_chance(fitted) -> None:
    matcher, indegree = fitted
    pool, cat = _pool(matcher, indegree)
    rows, wanted = _child_block(20_000, 8)
    matched = pick_matched(rows, pool, 0.0, np.random.default_rng(9)).column("id").to_numpy()
    blind = pick_parents(rows.num_rows, pool, 0.0, np.random.default_rng(9)).column("id").to_numpy()
    assert (cat[blind] == wanted).mean() < 0.3  # chance: 1 in 5
    assert (cat[matched] == wanted).mean() > 0.6


def test_in_degrees_follow_the_capacities(fitted) -> None:
    matcher, indegree = fitted
    pool, _ = _pool(matcher, indegree)
    n = 20_000
    rows, _ = _child_block(n, 10)
    ids = pick_matched(rows, pool, 0.0, np.random.default_rng(11)).column("id").to_numpy()
    load = np.bincount(ids, minlength=pool.size)
    expected = pool.weights * n
    assert load[expected == 0].sum() == 0  # a parent without weight never gets a child
    heavy = expected > 50
    assert np.corrcoef(expected, load)[0, 1] > 0.9
    assert np.median(np.abs(load[heavy] - expected[heavy]) / expected[heavy]) < 0.2


def test_popular_parents_get_the_heavy_weights_and_the_distribution_is_kept() -> None:
    # a real in-degree that rises with x: the generated parents with a high x must get the heavy weights
    real, _cat = _parents(400, 12)
    x = np.asarray(real.column("x").to_numpy())
    indegree = np.round(np.exp(1.5 * x)).astype(np.int64)
    m = ForeignKeyMatcher(CHILD_KINDS, PARENT_KINDS).fit(
        _children(np.zeros(50, dtype=np.int64), 1), real.slice(0, 50).select(["cat", "x"]),
        parents=real.select(["cat", "x"]), indegree=indegree,
    )
    generated, _ = _parents(400, 13)
    weights = np.random.default_rng(0).permutation(np.sort(indegree / indegree.sum()))
    moved = popular_weights(weights, m.popularity(generated, seed=1), np.random.default_rng(2))
    assert np.array_equal(np.sort(moved), np.sort(weights))
    gx = np.asarray(generated.column("x").to_numpy())
    assert np.corrcoef(gx, moved)[0, 1] > 0.5 > abs(np.corrcoef(gx, weights)[0, 1])


def test_same_seed_same_keys_other_seed_other_keys(fitted) -> None:
    matcher, indegree = fitted
    pool, _ = _pool(matcher, indegree)
    rows, _ = _child_block(5_000, 14)
    first = pick_matched(rows, pool, 0.1, np.random.default_rng(15))
    assert first.equals(pick_matched(rows, pool, 0.1, np.random.default_rng(15)))
    assert not first.equals(pick_matched(rows, pool, 0.1, np.random.default_rng(16)))


def test_every_key_is_a_pool_candidate_and_nulls_keep_their_share(fitted) -> None:
    matcher, indegree = fitted
    pool, _ = _pool(matcher, indegree)
    assert pool.matching is not None
    rows, _ = _child_block(10_000, 17)
    keys = pick_matched(rows, pool, 0.2, np.random.default_rng(18)).column("id")
    assert abs(keys.null_count / len(keys) - 0.2) < 0.02
    picked = np.asarray(keys.drop_null().to_numpy())
    assert np.isin(picked, np.asarray(pool.keys.column("id").to_numpy())[pool.matching.candidates.index]).all()


def test_candidates_are_bounded_weighted_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    weights = rng.pareto(1.5, 50_000)
    weights[rng.random(50_000) < 0.3] = 0.0
    weights /= weights.sum()
    index = select_candidates(weights, np.random.default_rng(1), cap=1_000)
    assert len(index) == 1_000 and len(np.unique(index)) == 1_000 and (np.diff(index) > 0).all()
    assert (weights[index] > 0).all()
    heaviest = np.argsort(-weights)[:50]
    assert np.isin(heaviest, index).all()  # the heavy parents are never left out
    assert np.array_equal(index, select_candidates(weights, np.random.default_rng(1), cap=1_000))
    assert len(select_candidates(weights, np.random.default_rng(1), cap=10**6)) == int((weights > 0).sum())


def test_a_large_candidate_set_goes_through_the_tree_and_follows_a_number(fitted) -> None:
    rng = np.random.default_rng(20)
    px = rng.normal(size=2_000)
    which = rng.integers(0, 2_000, 20_000)
    parent = pa.table({"x": px[which]})
    child = pa.table({"y": px[which] + rng.normal(0, 0.2, 20_000)})
    m = ForeignKeyMatcher({"y": Kind.NUMERIC}, {"x": Kind.NUMERIC}).fit(child, parent)
    gx = rng.normal(size=5_000)
    index = np.arange(5_000)
    candidates = MatchCandidates.build(index, m.encode_parents(pa.table({"x": gx})), np.full(5_000, 1 / 5_000))
    assert len(candidates.positions) > 64  # beyond the dense case: nearest neighbours from a tree
    pool = ParentPool(pa.table({"id": index}), np.full(5_000, 1 / 5_000), Matching(m, candidates))
    y = rng.normal(size=10_000)
    ids = pick_matched(pa.table({"y": y}), pool, 0.0, np.random.default_rng(21)).column("id").to_numpy()
    assert np.corrcoef(y, gx[ids])[0, 1] > 0.8


def test_fallbacks_and_errors(fitted) -> None:
    matcher, _ = fitted
    with pytest.raises(NotFittedError):
        ForeignKeyMatcher(CHILD_KINDS, PARENT_KINDS).encode_parents(pa.table({"cat": ["A"], "x": [0.0]}))
    with pytest.raises(ModelError, match="both the parent and the child"):
        ForeignKeyMatcher({"v": Kind.ID}, PARENT_KINDS).fit(
            pa.table({"v": [1.0, 2.0]}), pa.table({"cat": ["A", "B"], "x": [0.0, 1.0]})
        )
    with pytest.raises(ModelError, match="rows"):
        ForeignKeyMatcher(CHILD_KINDS, PARENT_KINDS).fit(_children(np.zeros(3, np.int64), 0), _parents(2, 0)[0])
    empty = ParentPool(pa.table({"id": pa.array([], pa.int64())}), np.zeros(0))
    empty_matched = ParentPool(
        empty.keys, empty.weights, Matching(matcher, MatchCandidates.build(np.zeros(0, np.int64), np.zeros((0, 1), np.float32), np.zeros(0)))
    )
    with pytest.raises(ModelError, match="no generated rows"):
        pick_matched(_child_block(3, 0)[0], empty_matched, 0.0, np.random.default_rng(0))
    with pytest.raises(ModelError, match="pick_parents"):
        pick_matched(_child_block(3, 0)[0], empty, 0.0, np.random.default_rng(0))


def _flight_schema() -> DatabaseSchema:
    def col(name: str, kind: Kind = Kind.ID, sql: str = "INTEGER") -> Column:
        return Column(name=name, type=sql, nullable=False, kind=kind)

    return DatabaseSchema(
        tables=[
            Table(
                name="day",
                columns=[col("id"), *(col(c, Kind.NUMERIC, "DOUBLE") for c in ("temp", "wind", "rain", "fog"))],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="airport",
                columns=[col("id"), col("cat", Kind.CATEGORICAL, "VARCHAR(1)"), col("x", Kind.NUMERIC, "DOUBLE")],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="flight",
                columns=[col("id"), col("day_id"), col("dest"), col("v", Kind.NUMERIC, "DOUBLE"), col("noise", Kind.NUMERIC, "DOUBLE")],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[
                    ForeignKey(columns=["day_id"], ref_table="day", ref_columns=["id"]),
                    ForeignKey(columns=["dest"], ref_table="airport", ref_columns=["id"]),
                ],
            ),
        ]
    )


def test_the_key_mechanism_matches_where_the_pool_has_a_matching_and_draws_otherwise(fitted) -> None:
    matcher, indegree = fitted
    schema = _flight_schema()
    roles = table_roles(schema.table("flight"), build_plan(schema))
    (ref,) = [r for r in roles.secondary if r.ref_table == "airport"] or [
        r for r in [*roles.secondary] if r.ref_table == "day"
    ]
    if ref.ref_table != "airport":
        pytest.skip("the plan chose the airport as the context")
    matched_pool, cat = _pool(matcher, indegree)
    pool = ParentPool(matched_pool.keys.rename_columns(["dest"]), matched_pool.weights, matched_pool.matching)
    blind_pool = ParentPool(pool.keys, pool.weights)
    rows, wanted = _child_block(10_000, 30)
    ctx = roles.context
    assert ctx is not None
    ctx_keys = pa.table({ctx.columns[0]: np.zeros(rows.num_rows, dtype=np.int64)})
    shares = {"v": 0.0}
    matched, _ = assign_keys(rows, roles, {"id": _format()}, {}, BlockKeys(0, ctx_keys, None, {ref.label: pool}, shares), seed=1)
    blind, _ = assign_keys(rows, roles, {"id": _format()}, {}, BlockKeys(0, ctx_keys, None, {ref.label: blind_pool}, shares), seed=1)
    assert (cat[matched.column("dest").to_numpy()] == wanted).mean() > 0.6
    assert (cat[blind.column("dest").to_numpy()] == wanted).mean() < 0.3
    # the child's columns missing (a model that sampled none): the in-degree draw, never an error
    bare, _ = assign_keys(
        pa.table({"other": np.zeros(100)}), roles, {"id": _format()}, {},
        BlockKeys(0, ctx_keys.slice(0, 100), None, {ref.label: pool}, shares), seed=1,
    )
    assert bare.column("dest").null_count == 0


def _format() -> KeyFormat:
    """A key format learned from integers."""
    return KeyFormat.learn(pa.chunked_array([pa.array(np.arange(10))]))
