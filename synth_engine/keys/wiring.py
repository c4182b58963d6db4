"""Foreign keys wired to generated parents: in-degree weights, draws with and without replacement, child counts.

Every draw is vectorised (numpy and Polars); nothing loops over rows in Python.

- :class:`ParentPool`: a generated parent table's key columns (renamed to the child's foreign-key columns) with a
  weight per parent, so that children spread over parents the way the real in-degrees do.
- :func:`pick_parents`: one parent per row, with replacement (an ordinary foreign key).
- :func:`pick_matching`: a foreign key that shares columns with keys already set: drawn among agreeing parents.
- :func:`pick_distinct`: the parents of a key made of foreign keys (a link table), drawn *without replacement*
  within each group, so that a playlist never holds one track twice. Several foreign keys drawn together (a key
  spanning three parents) are distinct as a combination.
- :func:`stratified_counts`: children per parent from the real count distribution, stratified over *all* parents
  of the table, so that totals do not swing with the seed or with how parents are split into blocks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from schemas.errors import ModelError

if TYPE_CHECKING:
    from synth_engine.keys.matching import Matching

log = logging.getLogger(__name__)

_REDRAW_ROUNDS = 48


@dataclass
class ParentPool:
    """A generated parent's key columns (named as the child's foreign-key columns) and a weight per parent.

    Attributes:
        keys: one row per generated parent.
        weights: the probability of each parent for one child draw (sums to 1; empty when there is no parent).
        matching: when set, children pick parents by content among these candidates (see :mod:`.matching`)
            instead of by weight alone.
    """

    keys: pa.Table
    weights: np.ndarray
    matching: Matching | None = None

    @classmethod
    def build(cls, keys: pa.Table, indegree: np.ndarray | None, rng: np.random.Generator) -> ParentPool:
        """Weights from the real in-degrees (children per real parent, zeros included), in random order.

        Stratified quantiles keep the share of parents without children and the weight of the heavy ones.
        """
        n = keys.num_rows
        if n == 0:
            return cls(keys, np.zeros(0))
        if indegree is not None and len(indegree) and indegree.sum() > 0:
            w = rng.permutation(stratified_quantiles(np.sort(indegree.astype(np.float64)), n, rng))
        else:
            w = np.ones(n)
        if w.sum() == 0:
            w = np.ones(n)
        return cls(keys, w / w.sum())

    @property
    def size(self) -> int:
        return int(self.keys.num_rows)


def pick_parents(n: int, pool: ParentPool, null_share: float, rng: np.random.Generator) -> pa.Table:
    """One parent per child row, with replacement; NULL with probability ``null_share``.

    Raises:
        ModelError: when non-NULL children need a parent and the parent table has no generated rows.
    """
    is_null = rng.random(n) < null_share
    m = int((~is_null).sum())
    if m and pool.size == 0:
        raise ModelError(f"{m} child rows need a parent key, but the parent table has no generated rows")
    idx = np.zeros(n, dtype=np.int64)
    if m:
        idx[~is_null] = rng.choice(pool.size, size=m, p=pool.weights)
    return pool.keys.take(pa.array(idx, mask=is_null if is_null.any() else None))


def pick_matching(
    current: pa.Table, overlap: list[str], pool: ParentPool, rng: np.random.Generator
) -> tuple[pa.Table, np.ndarray]:
    """For a foreign key sharing ``overlap`` columns with keys already set, draw among parents that agree on them.

    Returns:
        The chosen parents' keys, and a mask of the rows for which no parent agrees (their keys are NULL).
    """
    n = current.num_rows
    cdf = pl.from_arrow(current.select(overlap))
    pdf = pl.from_arrow(pool.keys.select(overlap))
    assert isinstance(cdf, pl.DataFrame) and isinstance(pdf, pl.DataFrame)
    ch = cdf.select(pl.struct(overlap).hash(seed=7)).to_series().to_numpy()
    ph = pdf.select(pl.struct(overlap).hash(seed=7)).to_series().to_numpy()
    order = np.argsort(ph, kind="stable")
    sorted_h = ph[order]
    lo = np.searchsorted(sorted_h, ch, side="left")
    hi = np.searchsorted(sorted_h, ch, side="right")
    size = hi - lo
    missing = size == 0
    pick = lo + np.floor(rng.random(n) * np.maximum(size, 1)).astype(np.int64)
    pick = np.minimum(pick, max(len(order) - 1, 0))
    idx = order[pick] if len(order) else np.zeros(n, dtype=np.int64)
    chosen = pool.keys.take(pa.array(idx, mask=missing if missing.any() else None))
    return chosen, missing


def capacity(pools: Sequence[ParentPool]) -> int:
    """Distinct parent combinations the pools offer one group (the most children a group can have)."""
    return math.prod(p.size for p in pools)


def pick_distinct(
    groups: np.ndarray,
    pools: Sequence[ParentPool],
    rng: np.random.Generator,
    *,
    initial: Sequence[np.ndarray] | None = None,
    fixed: np.ndarray | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Parents for each row, distinct (as a combination over ``pools``) within each group, weighted by in-degree.

    Draws are successive weighted sampling without replacement (what Efraimidis-Spirakis gives): every row draws
    by weight, and the rows that repeat a combination already taken in their group draw again, for a few rounds.
    Groups still left with repeats (a group that wants nearly every parent) then take the unused combinations in a
    random order, uniformly.

    Args:
        groups: a group id per row (rows of one context parent share one).
        pools: the foreign keys drawn together, each with its parents and weights.
        rng: the random generator.
        initial: current parent indexes per pool (a repair of existing rows); None draws them all.
        fixed: rows whose parents must not change (kept as they are; others avoid their combinations).

    Returns:
        Parent indexes per pool, and a mask of rows that got a distinct combination (False only where a group has
        more rows than :func:`capacity`; the caller caps group sizes so that this does not happen).

    Raises:
        ModelError: when rows need parents and a pool is empty.
    """
    n = len(groups)
    if n and any(p.size == 0 for p in pools):
        raise ModelError("child rows need distinct parents, but a parent table has no generated rows")
    idx = [
        (np.asarray(initial[i], dtype=np.int64).copy() if initial is not None else rng.choice(p.size, n, p=p.weights))
        for i, p in enumerate(pools)
    ]
    fixed = np.zeros(n, dtype=bool) if fixed is None else fixed
    sizes = [p.size for p in pools]
    for _ in range(_REDRAW_ROUNDS):
        dup = _repeats(groups, idx, sizes, fixed)
        if not dup.any():
            return idx, np.ones(n, dtype=bool)
        m = int(dup.sum())
        for i, p in enumerate(pools):
            idx[i][dup] = rng.choice(p.size, m, p=p.weights)
    dup = _repeats(groups, idx, sizes, fixed)
    if not dup.any():
        return idx, np.ones(n, dtype=bool)
    return _fill_unused(groups, idx, sizes, dup, rng)


def _combo(idx: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    code = np.zeros(len(idx[0]), dtype=np.int64)
    for i, s in zip(idx, sizes, strict=True):
        code = code * s + i
    return code


def _repeats(groups: np.ndarray, idx: Sequence[np.ndarray], sizes: Sequence[int], fixed: np.ndarray) -> np.ndarray:
    """Rows whose (group, combination) was taken by an earlier row (fixed rows are never the repeat)."""
    df = pl.DataFrame({"g": groups, "c": _combo(idx, sizes), "f": ~fixed, "r": np.arange(len(groups))})
    # fixed rows first, so that they keep their combination and the free rows move
    first = df.sort(["f", "r"]).with_columns(first=pl.struct("g", "c").is_first_distinct()).sort("r")
    return ~first["first"].to_numpy()


def _fill_unused(
    groups: np.ndarray, idx: list[np.ndarray], sizes: list[int], dup: np.ndarray, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Give each repeating row an unused combination of its group, uniformly; rows beyond capacity stay unplaced."""
    total = math.prod(sizes)
    code = _combo(idx, sizes)
    placed = ~dup
    for g in np.unique(groups[dup]):  # only the few groups that rejection could not finish
        rows = np.flatnonzero(groups == g)
        need = rows[dup[rows]]
        taken = np.unique(code[rows[~dup[rows]]])
        if total <= 4 * len(rows) + 1024:
            free = np.setdiff1d(np.arange(total, dtype=np.int64), taken)
            free = rng.permutation(free)[: len(need)]
        else:  # a large space: random codes, redrawn until distinct and unused
            free = np.zeros(0, dtype=np.int64)
            while len(free) < len(need):
                cand = rng.integers(0, total, size=2 * len(need))
                free = np.setdiff1d(np.unique(np.concatenate([free, cand])), taken)
            free = rng.permutation(free)[: len(need)]
        code[need[: len(free)]] = free
        placed[need[: len(free)]] = True
    out = []
    for s in reversed(sizes):
        out.append(code % s)
        code = code // s
    return list(reversed(out)), placed


def stratified_quantiles(sorted_values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from ``sorted_values``, one per stratum of [0, 1): the empirical distribution, ascending.

    Unlike independent draws, they keep rare values at their share: 3 parents in 1,458 get their children.
    """
    u = (np.arange(n) + rng.random(n)) / n
    return sorted_values[np.minimum((u * len(sorted_values)).astype(np.int64), len(sorted_values) - 1)]


def stratified_counts(
    observed: np.ndarray,
    global_index: np.ndarray,
    total: int,
    scores: np.ndarray,
    *,
    seed: int,
    factor: float = 1.0,
) -> np.ndarray:
    """Children per parent for one block of parents, stratified over all ``total`` parents of the table.

    Parent ``g`` (its global row index) owns stratum ``perm(g)`` of the real count distribution, where ``perm`` is
    a permutation of ``0 .. total - 1`` fixed by ``seed``, and takes the quantile at the stratum's middle: every
    stratum is used exactly once over the whole table, so the total is the same whatever the seed or the block
    size (a heavy tail of 3 airports with all the weather rows gives 3 such airports, never 2 or 4). ``factor``
    (see :func:`strata_total`) rescales the values so that the table's total is the planned one. Within the
    block, the values go to its parents in the order of ``scores`` (the model's expected counts), so the model
    still decides *which* parents get many children.

    Args:
        observed: the real children-per-parent counts, sorted ascending (zeros included).
        global_index: the block's parents' row indexes in the whole parent table.
        total: the parent table's row count.
        scores: the model's expected count per parent of the block.
        seed: fixes the permutation, the rounding and the tie-breaks.
        factor: multiplies every count before rounding (1 keeps the real distribution as it is).
    """
    n = len(global_index)
    if n == 0 or len(observed) == 0 or total == 0:
        return np.zeros(n, dtype=np.int64)
    mult, offset = _affine_permutation(total, seed)
    # exact in int64: mult * g < 2**62 (see _affine_permutation), then the offset is added modulo total
    stratum = ((global_index.astype(np.int64) * mult) % total + offset) % total
    rng = np.random.Generator(np.random.PCG64([seed, int(global_index[0])]))
    u = (stratum + 0.5) / total
    values = observed[np.minimum((u * len(observed)).astype(np.int64), len(observed) - 1)] * factor
    values = np.floor(values + rng.random(n))  # unbiased rounding of the rescaled counts
    values = np.sort(values.astype(np.int64))
    order = np.lexsort((rng.random(n), scores))
    out = np.empty(n, dtype=np.int64)
    out[order] = values
    return out


def strata_total(observed: np.ndarray, total: int) -> float:
    """The sum of :func:`stratified_counts` over all ``total`` parents with ``factor=1``, without enumerating them.

    Stratum ``j`` takes ``observed[floor((j + 0.5) / total * L)]``; observed value ``i`` is therefore taken by the
    strata ``j`` with ``i * total / L - 0.5 <= j < (i + 1) * total / L - 0.5``.
    """
    length = len(observed)
    if length == 0 or total == 0:
        return 0.0
    edges = np.ceil(np.arange(length + 1) * (total / length) - 0.5).clip(0, total)
    return float(np.sum(np.diff(edges) * observed))


def _affine_permutation(total: int, seed: int) -> tuple[int, int]:
    """``g -> (mult * g + offset) % total`` with ``gcd(mult, total) == 1``: a seeded permutation of the range.

    ``mult`` stays below ``2**62 / total``, so that ``mult * g`` is exact in int64 for every ``g < total`` (below
    ``2**31`` parents that is the whole range; billions of parents get a smaller multiplier, still a permutation).
    """
    rng = np.random.Generator(np.random.PCG64([seed, 0x73747261]))
    mult = int(rng.integers(1, max(min(total, 2**62 // max(total, 1)), 2)))
    while math.gcd(mult, total) != 1:
        mult += 1
    return mult, int(rng.integers(0, max(total, 1)))
