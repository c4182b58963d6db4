"""Foreign keys matched by content: which generated parent a child row points at follows the child's own columns.

A child table is conditioned on one *context* parent; its other foreign keys used to be wired by in-degree alone,
blind to the child row (a flight's destination independent of its distance). A :class:`ForeignKeyMatcher`,
fitted on the real child rows joined to their real parents, scores generated parents for generated children:

- **wanted parent**: a Gaussian copula of the parent's learned columns given the child's learned columns
  (:class:`~synth_engine.copula.GaussianCopulaModel`) gives, per child row, the conditional mean of the parent's
  normal scores and the residual covariance. Candidates live in the same space (the copula's own marginals encode
  the generated parent rows, discrete values at their interval's middle), whitened by the residual covariance,
  so the squared distance is the Mahalanobis distance of the conditional Gaussian and ``exp(-d^2 / 2)`` its
  density: a parent column the child predicts well counts more than one it does not predict at all;
- **in-degrees kept**: a child picks among its ``k`` nearest candidates (a :class:`scipy.spatial.cKDTree` query)
  with probability ``density x lambda_p``, where the multipliers ``lambda_p`` are balanced (Sinkhorn iterations
  on the sparse kNN kernel) so that each candidate's expected children in the block equal its capacity (its pool
  weight times the block's children). That is the entropic optimal-transport coupling between the block's
  children and the parents' in-degrees, computed without any per-row Python;
- **which parents are popular**: a cardinality copula (in-degree given the parent's columns, zeros included)
  decides which generated parents receive the heavy in-degree weights (:func:`popular_weights`), the way the
  context parent's counts are matched by rank (a hub airport gets many flights, not a random one).

Integrity holds by construction: only candidate rows (generated parents of the pool) are ever picked. Memory is
bounded: at most :data:`MAX_CANDIDATES` parents per foreign key, a deterministic weighted sample of the pool
(:func:`select_candidates`). Everything depends on the seed and the block only, never on the number of workers.
The matcher reads Arrow columns, so it works whatever model generated the rows.

Not matched (the in-degree draw of :mod:`synth_engine.keys.wiring` instead): a parent or child without learned
columns, a key drawn without replacement (a link table), a foreign key inside a primary or unique key, a foreign
key sharing columns with keys already set, deferred (cycle-breaking) keys, and any run under differential privacy
(the budget does not account for the matcher's statistics).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

import numpy as np
import pyarrow as pa
from scipy.spatial import cKDTree

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine._internal.arrow_numbers import plain
from synth_engine._internal.encoding import RESAMPLE_KINDS, Marginal, fit_marginal
from synth_engine._internal.gaussian import normal_scores
from synth_engine.cardinality import CopulaCardinalityModel
from synth_engine.keys.wiring import ParentPool

log = logging.getLogger(__name__)

MAX_CANDIDATES = 200_000
"""Generated parents a foreign key is matched among at most (a weighted sample of a larger pool)."""

_DENSE = 64  # up to this many candidates, every child scores every candidate (no tree)
_NEIGHBOURS = 16
_TREE_EPS = 1.0  # approximate nearest neighbours (within 2x the true distance): a kernel needs no exact ones
_SINKHORN_ROUNDS = 30
_BALANCE_ROWS = 32_768  # rows of a block the multipliers are balanced on at most
_SINKHORN_TOL = 0.02  # stop once every reachable candidate's load is within 2% of its capacity
_VARIANCE_FLOOR = 0.005  # residual variance floor: a child column predicted "exactly" must not dominate the distance
_MAX_DIMS = 12
_WEAK = 0.05  # directions of the matching space weaker than this share of the strongest one are dropped
_RIDGE = 1e-3  # the regression's ridge, relative to the design's mean variance
_FIT_SEED = 0x4D41_5443  # fitting is deterministic: the same rows always give the same matcher
_LOG_LAMBDA_CAP = 30.0
_DRAWN_VARIANCE = 0.5  # share of the conditional variance drawn as the wanted parent (the rest is the kernel's)


@dataclass
class MatchCandidates:
    """The generated parents one foreign key is matched among.

    Candidates at one position (parents that the matcher cannot tell apart, e.g. of one category) form a *group*:
    children are matched to groups, then spread over a group's members by weight, so ties never hide a parent.

    Attributes:
        index: each candidate's row in its :class:`~synth_engine.keys.wiring.ParentPool`.
        weights: each candidate's share of the children (the pool's in-degree weights, renormalised).
        group: each candidate's group.
        positions: ``(groups, dims)``: each group's position in the matcher's space.
    """

    index: np.ndarray
    weights: np.ndarray
    group: np.ndarray
    positions: np.ndarray

    @classmethod
    def build(cls, index: np.ndarray, features: np.ndarray, weights: np.ndarray) -> MatchCandidates:
        """Candidates from pool rows, their positions (:meth:`ForeignKeyMatcher.encode_parents`) and weights."""
        if len(index) == 0:
            return cls(index, weights, np.zeros(0, dtype=np.int64), np.zeros((0, features.shape[1]), np.float32))
        rounded = np.round(features.astype(np.float64), 4)
        positions, group = np.unique(rounded, axis=0, return_inverse=True)
        return cls(index, weights, group.reshape(-1).astype(np.int64), positions.astype(np.float32))

    @property
    def size(self) -> int:
        return len(self.index)

    def group_weights(self) -> np.ndarray:
        return np.bincount(self.group, weights=self.weights, minlength=len(self.positions))

    def member(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A candidate of each chosen group, by weight (``u``: one uniform per row)."""
        order = np.argsort(self.group, kind="stable")
        cum = np.cumsum(self.weights[order])
        gw = self.group_weights()
        start = np.concatenate([[0.0], np.cumsum(gw)[:-1]])
        first = np.searchsorted(self.group[order], np.arange(len(gw)), side="left")
        last = np.searchsorted(self.group[order], np.arange(len(gw)), side="right") - 1
        pos = np.searchsorted(cum, start[groups] + u * gw[groups], side="right")
        return np.asarray(order[np.clip(pos, first[groups], last[groups])], dtype=np.int64)


@dataclass
class Matching:
    """A fitted matcher and its candidates: what a pool needs to wire children by content."""

    matcher: ForeignKeyMatcher
    candidates: MatchCandidates


class ForeignKeyMatcher:
    """Which parent a child row points at, learned from the real child rows joined to their real parents.

    Args:
        child_kinds: the child's learned columns and kinds.
        parent_kinds: the parent's learned columns and kinds (what describes a candidate).
        max_fit_rows: real rows fitted on at most (a fixed random subset).
        neighbours: candidate groups each child scores at most (its nearest ones).
        max_dims: directions of the matching space kept at most (the strongest ones).
        max_categories: categories kept per column (rarer ones share one bucket).

    Attributes:
        child_marginals_: the child columns' encoders (read from generated child rows).
        parent_marginals_: the parent columns' encoders (read from generated parent rows).
        coef_: ``(parent dims + 1, child dims)``: the child's standardised scores regressed on the parent's.
        projection_: ``(dims, child dims)``: standardised child scores to the matching space.
        popularity_: the in-degree given the parent's columns (None when no in-degree was given to ``fit``).
    """

    def __init__(
        self,
        child_kinds: Mapping[str, Kind],
        parent_kinds: Mapping[str, Kind],
        *,
        max_fit_rows: int = 50_000,
        neighbours: int = _NEIGHBOURS,
        max_dims: int = _MAX_DIMS,
        max_categories: int = 100,
    ) -> None:
        self.child_kinds = child_kinds
        self.parent_kinds = parent_kinds
        self.max_fit_rows = max_fit_rows
        self.neighbours = neighbours
        self.max_dims = max_dims
        self.max_categories = max_categories

    def fit(
        self,
        child: pa.Table,
        parent: pa.Table,
        *,
        parents: pa.Table | None = None,
        indegree: np.ndarray | None = None,
    ) -> Self:
        """Learn the child's columns given its parent's, and (optionally) in-degree given the parent's columns.

        Both sides are encoded as a copula context is (:func:`~synth_engine._internal.encoding.fit_marginal`:
        normal scores, one indicator per category, discrete values at their interval's middle), and the child's
        scores are regressed on the parent's (least squares with a small ridge). The regression is exact in the
        mean per parent category, where a copula's correlation of two-point indicators attenuates it.

        Args:
            child: the child's learned columns, one row per child row with a non-NULL foreign key.
            parent: the referenced parent's learned columns, one row per child row (the join of ``child``).
            parents: every real parent's learned columns (or a sample), one row per parent, for ``indegree``.
            indegree: the children of each row of ``parents`` (zeros included).

        Raises:
            ModelError: on a bad parameter, when ``parent`` and ``child`` differ in rows, when a side has no
                learned column, or when ``indegree`` does not match ``parents``.
        """
        for name in ("max_fit_rows", "neighbours", "max_dims", "max_categories"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (2 if name == "max_categories" else 1):
                raise ModelError(f"{name} must be an integer >= 1 (max_categories >= 2), got {value!r}")
        if parent.num_rows != child.num_rows:
            raise ModelError(
                f"the parent side has {parent.num_rows} rows but the child side {child.num_rows}; pass the child "
                "rows joined to their parents, one parent row per child row"
            )
        rng = np.random.Generator(np.random.PCG64(_FIT_SEED))
        if child.num_rows > self.max_fit_rows:
            keep = pa.array(np.sort(rng.choice(child.num_rows, size=self.max_fit_rows, replace=False)))
            child, parent = child.take(keep), parent.take(keep)
        self.child_marginals_ = self._marginals(self.child_kinds, child, rng)
        self.parent_marginals_ = self._marginals(self.parent_kinds, parent, rng)
        if not self.child_marginals_ or not self.parent_marginals_ or child.num_rows < 2:
            raise ModelError(
                "a foreign-key matcher needs learned columns with values on both the parent and the child side, "
                f"and real rows joined (got {child.num_rows})"
            )
        zc = _scores(self.child_marginals_, child)
        self.child_mean_, self.child_std_ = zc.mean(axis=0), zc.std(axis=0)
        self.child_std_[self.child_std_ < 1e-9] = 1.0
        zc = (zc - self.child_mean_) / self.child_std_
        xp = self._design(parent)
        gram = xp.T @ xp
        ridge = _RIDGE * max(float(np.trace(gram)) / gram.shape[0], 1e-9)
        self.coef_ = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), xp.T @ zc)
        resid = zc - xp @ self.coef_
        self.projection_ = _projection(self.coef_[1:].T, resid.T @ resid / len(resid), self.max_dims)
        self.popularity_: CopulaCardinalityModel | None = None
        if parents is not None and indegree is not None:
            if len(indegree) != parents.num_rows:
                raise ModelError(f"indegree has {len(indegree)} values but parents has {parents.num_rows} rows")
            if parents.num_rows and np.asarray(indegree).sum() > 0:
                kinds = {m.name: self.parent_kinds[m.name] for m in self.parent_marginals_}
                self.popularity_ = CopulaCardinalityModel(kinds, max_fit_rows=self.max_fit_rows).fit(
                    parents.select(list(kinds)), pa.array(np.asarray(indegree, dtype=np.int64))
                )
        return self

    def _marginals(self, kinds: Mapping[str, Kind], table: pa.Table, rng: np.random.Generator) -> list[Marginal]:
        out = []
        for name, raw in kinds.items():
            kind = Kind(raw)
            if not kind.is_learned or kind in RESAMPLE_KINDS or name not in table.column_names:
                continue
            m = fit_marginal(
                name, kind, table.column(name), max_categories=self.max_categories, rng=rng, context=True
            )
            if m.dims:
                out.append(m)
        return out

    def _design(self, parent_rows: pa.Table) -> np.ndarray:
        x = _scores(self.parent_marginals_, parent_rows)
        return np.hstack([np.ones((len(x), 1)), x])

    @property
    def parent_columns_(self) -> list[str]:
        """The parent columns read from generated parent rows."""
        return [m.name for m in self.parent_marginals_]

    @property
    def child_columns_(self) -> list[str]:
        """The child columns read from generated child rows."""
        return [m.name for m in self.child_marginals_]

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("ForeignKeyMatcher was used before fit; call fit(child, parent) first")

    def encode_parents(self, parent_rows: pa.Table) -> np.ndarray:
        """Generated parents' positions: the child scores each one predicts, projected, ``(rows, dims)`` float32."""
        self._check()
        return np.asarray(self._design(parent_rows) @ self.coef_ @ self.projection_.T, dtype=np.float32)

    def encode_children(self, child_rows: pa.Table) -> np.ndarray:
        """Generated children's positions: their own normal scores, projected, ``(rows, dims)`` float32."""
        self._check()
        z = (_scores(self.child_marginals_, child_rows) - self.child_mean_) / self.child_std_
        return np.asarray(z @ self.projection_.T, dtype=np.float32)

    def popularity(self, parent_rows: pa.Table, *, seed: int) -> np.ndarray | None:
        """A score per generated parent: higher where its columns predict more children (None: not learned).

        One draw of the in-degree model (its noise keeps popularity as loosely tied to the columns as in the real
        data), ties broken by the expected count.
        """
        self._check()
        if self.popularity_ is None:
            return None
        rows = parent_rows.select(self.parent_columns_)
        draw = np.asarray(self.popularity_.sample(rows, seed=seed).to_numpy(zero_copy_only=False), dtype=np.float64)
        expected = self.popularity_.expected_rank(rows)
        spread = float(np.ptp(expected)) if len(expected) else 0.0
        return draw + 0.5 * (expected - (expected.min() if len(expected) else 0.0)) / (spread or 1.0)

    def assign(self, child_rows: pa.Table, candidates: MatchCandidates, rng: np.random.Generator) -> np.ndarray:
        """One candidate per child row (its row in the pool): see the module notes.

        Raises:
            ModelError: when children need a parent and there is no candidate.
        """
        n = child_rows.num_rows
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if candidates.size == 0:
            raise ModelError(f"{n} child rows need a parent key, but the parent table has no generated rows")
        at = self.encode_children(child_rows)
        # Half the residual variance is drawn (the child's query point), half is the kernel's: the density is the
        # conditional Gaussian's all the same, and alike children query from spread-out points, so every group a
        # child plausibly belongs to is among somebody's nearest ones.
        at = at + np.sqrt(_DRAWN_VARIANCE) * rng.standard_normal(at.shape).astype(np.float32)
        groups = match_rows(
            at, candidates.positions, candidates.group_weights(), rng,
            neighbours=self.neighbours, bandwidth=1.0 - _DRAWN_VARIANCE,
        )
        return candidates.index[candidates.member(groups, rng.random(n))]


def pick_matched(rows: pa.Table, pool: ParentPool, null_share: float, rng: np.random.Generator) -> pa.Table:
    """One parent per child row, matched by content (``pool.matching``); NULL with probability ``null_share``.

    The counterpart of :func:`~synth_engine.keys.wiring.pick_parents`, with the same NULL draw: ``rows`` holds
    the child's generated learned columns.

    Raises:
        ModelError: when non-NULL children need a parent and the parent table has no generated rows.
    """
    if pool.matching is None:
        raise ModelError("pick_matched needs a pool with a matching; use pick_parents for the in-degree draw")
    n = rows.num_rows
    is_null = rng.random(n) < null_share
    live = np.flatnonzero(~is_null)
    idx = np.zeros(n, dtype=np.int64)
    if len(live):
        if pool.size == 0 or pool.matching.candidates.size == 0:
            raise ModelError(f"{len(live)} child rows need a parent key, but the parent table has no generated rows")
        idx[live] = pool.matching.matcher.assign(rows.take(pa.array(live)), pool.matching.candidates, rng)
    return pool.keys.take(pa.array(idx, mask=is_null if is_null.any() else None))


def match_rows(
    at: np.ndarray,
    positions: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
    *,
    neighbours: int = _NEIGHBOURS,
    bandwidth: float = 1.0,
) -> np.ndarray:
    """A position for each query row, with each position's expected load balanced to its weight's share.

    Args:
        at: ``(rows, dims)`` query points.
        positions: ``(m, dims)`` candidate positions.
        weights: each position's share of the rows (sums to 1).
        rng: the random generator (one uniform per row).
        neighbours: positions scored per row (all of them when there are few).
        bandwidth: the kernel's variance: a position at squared distance ``d2`` scores ``exp(-d2 / 2 bandwidth)``.

    Returns:
        Each row's position (an index into ``positions``).
    """
    n, m = len(at), len(positions)
    if m <= max(_DENSE, neighbours):
        a, b = at.astype(np.float64), positions.astype(np.float64)
        d2 = np.maximum((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T), 0.0)
        cols = np.broadcast_to(np.arange(m, dtype=np.int64), (n, m))
    else:
        tree = cKDTree(positions.astype(np.float64))
        dist, found = tree.query(at.astype(np.float64), k=neighbours, eps=_TREE_EPS)
        # one more candidate per row, drawn by weight: every heavy parent is reachable from many rows, so its
        # capacity can be met even where few children are near it (the balancing raises its multiplier)
        extra = rng.choice(m, size=n, p=weights)
        gap = at.astype(np.float64) - positions[extra].astype(np.float64)
        d2 = np.hstack([dist * dist, np.einsum("ij,ij->i", gap, gap)[:, None]])
        cols = np.hstack([np.asarray(found, dtype=np.int64), extra[:, None]])
    log_kernel = (-0.5 / bandwidth * (d2 - d2.min(axis=1, keepdims=True))).astype(np.float32)
    capacity = np.asarray(weights, dtype=np.float64) * n
    if n > _BALANCE_ROWS:
        # the multipliers balance loads per row: a random share of the block estimates them as well, for less
        sub = np.sort(rng.choice(n, size=_BALANCE_ROWS, replace=False))
        log_lam = _balance(log_kernel[sub], cols[sub], capacity * (_BALANCE_ROWS / n))
    else:
        log_lam = _balance(log_kernel, cols, capacity)
    prob = _rows(log_kernel, cols, log_lam)
    cum = np.cumsum(prob, axis=1)
    u = rng.random(n)[:, None] * cum[:, -1:]
    slot = np.minimum((cum < u).sum(axis=1), cols.shape[1] - 1)
    return np.asarray(cols[np.arange(n), slot], dtype=np.int64)


def _rows(log_kernel: np.ndarray, cols: np.ndarray, log_lam: np.ndarray) -> np.ndarray:
    """Row-stochastic ``P ~ kernel x lambda[cols]``."""
    logits = log_kernel + log_lam.astype(np.float32)[cols]
    logits -= logits.max(axis=1, keepdims=True)
    prob = np.exp(logits, out=logits)
    prob /= prob.sum(axis=1, keepdims=True)
    return prob


def _balance(log_kernel: np.ndarray, cols: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Log multipliers with each column's load ``sum P`` (see :func:`_rows`) close to its capacity.

    Sinkhorn iterations in log space: the rows are normalised exactly, the columns' multipliers are rescaled by
    capacity over load. A candidate no row can reach keeps its multiplier (its capacity goes to the others).
    """
    m = len(capacity)
    log_lam = np.log(np.maximum(capacity, 1e-300))
    reach = np.bincount(cols.ravel(), minlength=m) > 0
    for _ in range(_SINKHORN_ROUNDS):
        prob = _rows(log_kernel, cols, log_lam)
        load = np.bincount(cols.ravel(), weights=prob.ravel().astype(np.float64), minlength=m)
        ok = reach & (load > 0)
        ratio = np.log(np.maximum(capacity[ok], 1e-300)) - np.log(load[ok])
        if not len(ratio) or np.abs(ratio).max() < _SINKHORN_TOL:
            break
        log_lam[ok] = np.clip(log_lam[ok] + ratio, -_LOG_LAMBDA_CAP, _LOG_LAMBDA_CAP)
    return log_lam


def select_candidates(weights: np.ndarray, rng: np.random.Generator, *, cap: int = MAX_CANDIDATES) -> np.ndarray:
    """The pool rows to match among: every parent with a weight, or ``cap`` of them.

    Beyond ``cap``, every parent with at least ``1 / cap`` of the weight is kept (the heavy ones, which hold most
    children), and the other slots are a sample of the rest without replacement, by weight (Efraimidis-Spirakis
    keys), so memory is bounded whatever the parent's size. Sorted, so reads go part by part.
    """
    positive = np.flatnonzero(weights > 0)
    if len(positive) <= cap:
        return positive
    heavy = positive[weights[positive] * cap >= 1.0]
    rest = np.setdiff1d(positive, heavy, assume_unique=True)
    free = cap - len(heavy)
    keys = np.log(rng.random(len(rest))) / weights[rest]
    picked = rest[np.argpartition(-keys, free - 1)[:free]] if free > 0 else rest[:0]
    return np.sort(np.concatenate([heavy, picked]))


def popular_weights(weights: np.ndarray, scores: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """The same weights, laid on the parents in the order of ``scores`` (the heaviest to the most popular).

    The multiset of weights (the real in-degree distribution) is unchanged; only which parent gets which moves.
    Ties are broken at random. Without scores the weights are returned as they are.
    """
    if scores is None or len(weights) == 0:
        return weights
    order = np.lexsort((rng.random(len(scores)), scores))
    out = np.empty_like(weights)
    out[order] = np.sort(weights)
    return out


def candidate_weights(weights: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The pool weights of the candidates, renormalised to sum to 1."""
    w = np.asarray(weights[index], dtype=np.float64)
    total = w.sum()
    return w / total if total > 0 else np.full(len(w), 1.0 / max(len(w), 1))


def _scores(marginals: list[Marginal], table: pa.Table) -> np.ndarray:
    """Normal scores of ``table``'s columns under ``marginals`` (midpoint encoders); a missing value scores 0."""
    rng = np.random.Generator(np.random.PCG64(0))  # unused: context (midpoint) encoders draw nothing
    u = np.hstack([m.encode(plain(table.column(m.name)), rng) for m in marginals])
    return np.asarray(np.nan_to_num(normal_scores(u)), dtype=np.float64)


def _projection(regression: np.ndarray, cov: np.ndarray, max_dims: int) -> np.ndarray:
    """``(dims, child dims)``: child scores to the space where distance is the conditional Mahalanobis one.

    With ``W`` whitening the residual covariance (variances floored) and ``A`` the regression on the parent's
    scores, ``|W z - W A zc|^2`` splits into a part inside the span of ``W A`` and one orthogonal to it that is
    the same for every parent. Only the span matters to the choice: its strongest ``max_dims`` directions.
    """
    w, v = np.linalg.eigh((cov + cov.T) / 2.0)
    whiten = (v / np.sqrt(np.maximum(w, _VARIANCE_FLOOR))).T
    u, sing, _ = np.linalg.svd(whiten @ regression, full_matrices=False)
    keep = max(1, min(max_dims, int((sing > _WEAK * (sing[0] if len(sing) else 0.0)).sum())))
    return np.asarray(u[:, :keep].T @ whiten)
