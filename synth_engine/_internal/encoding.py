"""Per-column marginals of the Gaussian copula: Arrow values <-> uniforms on [0, 1], vectorised.

Every marginal owns a fixed number of copula *dimensions*:

- a null indicator (when the column has some NULLs but not only NULLs): NULL rows map to ``[0, p_null)``, the
  others to ``[p_null, 1)``. It takes part in the copula, so that whether a value is missing can depend on other
  columns;
- the value dimension(s): an empirical quantile function (numbers, dates, times), frequency-ordered intervals
  (categories, as SDV does), or one indicator per category (context categoricals only, so that a child can depend
  on its parent's category in any order, not just monotonically).

Discrete values are encoded with the randomised probability integral transform (a uniform draw inside the value's
interval), which keeps the normal scores continuous. Missing entries (NULL values in a value dimension, unseen
categories) are encoded as NaN; the copula fit skips them pair by pair.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import ModelError
from schemas.kinds import Kind
from synth_engine._internal.arrow_numbers import from_float, is_integral, is_number_type, plain, to_float
from synth_engine.privacy import mechanisms as dpm

log = logging.getLogger(__name__)

MAX_KNOTS = 1000
"""Knots of a continuous quantile function; numbers with at most this many distinct values are kept exact (when
they repeat, see :data:`ROWS_PER_VALUE`)."""

ROWS_PER_KNOT = 5
"""A continuous quantile function has at most one knot per this many rows, so that each of its segments spans
several real values and no generated value sits on one real row's value: with 1,000 knots over 1,320 airports,
every generated latitude lay in the gap between two neighbouring training latitudes, half as far from a training
value as a holdout value was."""

ROWS_PER_VALUE = 5
"""Numbers are sampled exactly (each distinct value with its share) only when their distinct values hold at least
this many rows each on average (a time zone, a year, a seat count), not when most of them are one row's own value
(843 altitudes over 1,320 airports: every generated altitude was a training airport's)."""

RESAMPLE_POOL = 1000
"""Observed values kept for JSON/binary columns and for the merged bucket of rare categories."""

ONE_HOT_MAX = 32
"""Context categoricals with at most this many categories get one indicator dimension per category."""

NUMERIC_KINDS = frozenset({Kind.NUMERIC, Kind.DATETIME, Kind.DATE, Kind.TIME})
CATEGORY_KINDS = frozenset({Kind.CATEGORICAL, Kind.BOOLEAN, Kind.TEXT})
RESAMPLE_KINDS = frozenset({Kind.JSON, Kind.BINARY})

NUMERIC_WEIGHTS = (1, 1, 1, 1)
"""Weights of a numeric column's Gaussian releases under DP: point masses, the coarse and the linear range
histograms, the final histogram. A release of weight ``w`` has noise ``std / sqrt(w)``: it spends as much as ``w``
releases of ``std`` (Gaussian mechanisms compose exactly), so the accounting counts weights as releases. Equal: on
the demo's 5%, more weight on the point masses and the final histogram (2, 1, 1, 2) moved no score beyond run to
run noise (the ranges, which cut the tails, lost as much)."""

NUMERIC_RELEASES = sum(NUMERIC_WEIGHTS)
"""Unit releases (weights) of a numeric column's values under DP (see :data:`NUMERIC_WEIGHTS`)."""

VOCABULARY_WEIGHT = 2
"""Weight of a categorical column's vocabulary release: its counts are its whole marginal, and the selection
threshold (about 5.5 noise deviations) drops every category below it, so a lower noise keeps more categories. A NULL
share has weight 1."""


@dataclass
class Marginal:
    """The shared part of every marginal: the column, its exact Arrow type and its null share.

    Attributes:
        name: the column name.
        kind: the column's kind.
        arrow_type: the exact Arrow type samples are cast back to.
        null_share: share of NULL rows.
        empty: True when the column had no non-null value (it is sampled as all NULL).
    """

    name: str
    kind: Kind
    arrow_type: pa.DataType
    null_share: float
    empty: bool = False
    midpoint: bool = False

    def _draw(self, rng: np.random.Generator, shape: int | tuple[int, int]) -> np.ndarray:
        """Where inside its interval a discrete value lands: random for the target, the middle for a context.

        A context is only conditioned on, never sampled, so it needs no continuous scores; the middle of the
        interval makes its score an exact function of the value, so the regression on it is not attenuated.
        """
        if self.midpoint:
            return np.full(shape, 0.5)
        return rng.random(shape)

    @property
    def has_null_dim(self) -> bool:
        return 0.0 < self.null_share < 1.0

    @property
    def value_dims(self) -> int:
        return 0

    @property
    def dims(self) -> int:
        return int(self.has_null_dim) + (0 if self.empty else self.value_dims)

    def encode(self, arr: pa.Array, rng: np.random.Generator) -> np.ndarray:
        """Uniforms of shape ``(len(arr), dims)``; NaN where a value is missing."""
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        parts: list[np.ndarray] = []
        if self.has_null_dim:
            # NULL rows in [0, p), values in [p, 1): the randomised transform of a Bernoulli variable.
            p = self.null_share
            draw = self._draw(rng, len(arr))
            parts.append(np.where(valid, p + (1.0 - p) * draw, p * draw)[:, None])
        if not self.empty and self.value_dims:
            parts.append(self._encode_values(arr, valid, rng))
        if not parts:
            return np.empty((len(arr), 0))
        return np.hstack(parts)

    def decode(self, u: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """An Arrow array of exactly ``arrow_type`` from uniforms of shape ``(n, dims)``."""
        n = u.shape[0]
        if self.empty:
            return pa.nulls(n, type=self.arrow_type)
        col = 0
        valid: np.ndarray | None = None
        if self.has_null_dim:
            valid = u[:, 0] >= self.null_share
            col = 1
        return self._decode_values(u[:, col:], valid, rng)

    def _encode_values(self, arr: pa.Array, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _decode_values(self, u: np.ndarray, valid: np.ndarray | None, rng: np.random.Generator) -> pa.Array:
        raise NotImplementedError


@dataclass
class NumericMarginal(Marginal):
    """Numbers, datetimes, dates and times as float64 through an empirical quantile function.

    Exact mode (``values``/``cdf``): at most :data:`MAX_KNOTS` distinct values that repeat (see
    :data:`ROWS_PER_VALUE`), sampled with their exact shares.
    Continuous mode (``knots_p``/``knots_q``): a piecewise-linear quantile function through up to
    :data:`MAX_KNOTS` quantiles (one per :data:`ROWS_PER_KNOT` rows at most), bounded by the observed min and max;
    integers are rounded, decimals keep their scale.
    Where every value lies on a grid (``grid_step``, from ``grid_origin``: timestamps on the hour, prices in steps
    of 5), interpolated values are put back on it, so that a learned value looks like a real one.
    """

    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    cdf: np.ndarray = field(default_factory=lambda: np.empty(0))
    knots_p: np.ndarray = field(default_factory=lambda: np.empty(0))
    knots_q: np.ndarray = field(default_factory=lambda: np.empty(0))
    grid_step: float = 0.0  # 0: no grid
    grid_origin: float = 0.0

    @property
    def value_dims(self) -> int:
        return 1

    @property
    def exact(self) -> bool:
        return self.values.size > 0

    def _encode_values(self, arr: pa.Array, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x, _ = to_float(arr)
        draw = self._draw(rng, len(x))
        if self.exact:
            idx = np.clip(np.searchsorted(self.values, x, side="right") - 1, 0, self.values.size - 1)
            hi = self.cdf[idx]
            lo = np.where(idx > 0, self.cdf[np.maximum(idx - 1, 0)], 0.0)
            u = lo + (hi - lo) * draw
        else:
            u = _continuous_cdf(x, self.knots_p, self.knots_q, draw)
        return np.where(valid, u, np.nan)[:, None]

    def _decode_values(self, u: np.ndarray, valid: np.ndarray | None, rng: np.random.Generator) -> pa.Array:
        q = u[:, 0]
        if self.exact:
            idx = np.minimum(np.searchsorted(self.cdf, q, side="right"), self.values.size - 1)
            x = self.values[idx]
        else:
            x = _quantile(q, self.knots_p, self.knots_q)
            if self.grid_step > 0:
                x = self.grid_origin + np.rint((x - self.grid_origin) / self.grid_step) * self.grid_step
        return from_float(x, valid, self.arrow_type)


def _quantile(u: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The piecewise-linear quantile function through knots ``(p, q)``.

    Knots at evenly spaced probabilities (the usual case) are indexed directly instead of binary-searched.
    """
    k = p.size
    if k > 1 and p[0] == 0.0 and np.allclose(np.diff(p), 1.0 / (k - 1)):
        pos = np.clip(u, 0.0, 1.0) * (k - 1)
        i = np.minimum(pos.astype(np.int64), k - 2)
        return np.asarray(q[i] + (pos - i) * (q[i + 1] - q[i]))
    return np.asarray(np.interp(u, p, q))


def _continuous_cdf(x: np.ndarray, p: np.ndarray, q: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """The CDF behind knots ``(p, q)`` at ``x``; a mass point (tied knots) gets a uniform draw over its span."""
    uq, first = np.unique(q, return_index=True)
    last = np.append(first[1:] - 1, q.size - 1)
    p_lo, p_hi = p[first], p[last]
    idx = np.clip(np.searchsorted(uq, x, side="right") - 1, 0, uq.size - 1)
    at_knot = x <= uq[idx]  # x equals the knot (or lies below the minimum)
    nxt = np.minimum(idx + 1, uq.size - 1)
    span = uq[nxt] - uq[idx]
    frac = np.where(span > 0, (x - uq[idx]) / np.where(span > 0, span, 1.0), 0.0)
    between = p_hi[idx] + np.clip(frac, 0.0, 1.0) * (p_lo[nxt] - p_hi[idx])
    return np.asarray(np.where(at_knot, p_lo[idx] + (p_hi[idx] - p_lo[idx]) * draw, between))


@dataclass
class CategoricalMarginal(Marginal):
    """Categories (also booleans and frequent text values) as intervals of [0, 1], one per bucket.

    A *bucket* is a kept category (``0 .. len(categories) - 1``) or, when there were more than
    ``max_categories``, one last bucket for the merged rare ones; sampling it draws one of up to
    :data:`RESAMPLE_POOL` observed rare values. ``order`` lists the buckets in interval order: by frequency at
    first (as in SDV), then reordered by the copula so that the category moves monotonically with the columns it
    depends on (see :meth:`reorder`). In ``one_hot`` mode (context only) each bucket is its own indicator dimension.
    """

    categories: pa.Array = field(default_factory=lambda: pa.array([], pa.null()))
    probs: np.ndarray = field(default_factory=lambda: np.empty(0))
    order: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    rare_pool: pa.Array | None = None
    one_hot: bool = False

    @property
    def n_buckets(self) -> int:
        return self.probs.size

    @property
    def value_dims(self) -> int:
        return self.n_buckets if self.one_hot else 1

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """Each bucket's ``(lo, hi)`` on [0, 1], following ``order``."""
        hi_sorted = np.cumsum(self.probs[self.order])
        hi_sorted[-1] = 1.0
        lo_sorted = np.concatenate([[0.0], hi_sorted[:-1]])
        lo, hi = np.empty(self.n_buckets), np.empty(self.n_buckets)
        lo[self.order], hi[self.order] = lo_sorted, hi_sorted
        return lo, hi

    def reorder(self, order: np.ndarray) -> None:
        """Lay the buckets out on [0, 1] in ``order`` (a permutation of bucket ids)."""
        self.order = np.asarray(order, dtype=np.int64)

    def bucket_index(self, arr: pa.Array) -> np.ndarray:
        """Bucket of each row: a category, the rare bucket for unknown values, -1 for NULL (or unknown, no bucket)."""
        idx = pc.index_in(arr, value_set=self.categories)
        out = np.asarray(idx.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if self.rare_pool is not None:
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            out = np.where((out < 0) & valid, self.n_buckets - 1, out)
        return out

    def _encode_values(self, arr: pa.Array, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        idx = self.bucket_index(arr)
        known = idx >= 0
        safe = np.maximum(idx, 0)
        if self.one_hot:
            draw = self._draw(rng, (len(idx), self.n_buckets))
            hit = safe[:, None] == np.arange(self.n_buckets)[None, :]
            cut = 1.0 - self.probs[None, :]
            u = np.where(hit, cut + (1.0 - cut) * draw, cut * draw)
            return np.where(known[:, None], u, np.nan)
        lo, hi = self.intervals()
        u = lo[safe] + (hi[safe] - lo[safe]) * self._draw(rng, len(idx))
        return np.where(known, u, np.nan)[:, None]

    def _decode_values(self, u: np.ndarray, valid: np.ndarray | None, rng: np.random.Generator) -> pa.Array:
        if self.one_hot:
            raise ModelError(f"column {self.name!r}: a one-hot context marginal cannot be sampled")
        _, hi = self.intervals()
        slot = np.minimum(np.searchsorted(hi[self.order], u[:, 0], side="right"), self.n_buckets - 1)
        idx = self.order[slot]
        pool = self.categories
        if self.rare_pool is not None:
            # The merged bucket is the last id: draw an observed rare value for each of its rows.
            rare = idx == self.n_buckets - 1
            pick = rng.integers(0, len(self.rare_pool), size=len(idx))
            idx = np.where(rare, len(self.categories) + pick, idx)
            pool = pa.concat_arrays([self.categories, self.rare_pool.cast(self.categories.type)])
        if valid is not None:
            out = pc.take(pool, pa.array(idx, type=pa.int64(), mask=~valid))
        else:
            out = pc.take(pool, pa.array(idx, type=pa.int64()))
        return out if out.type == self.arrow_type else out.cast(self.arrow_type)


@dataclass
class ResampleMarginal(Marginal):
    """JSON and binary values, drawn from a pool of observed values; only their NULL indicator is in the copula."""

    pool: pa.Array | None = None

    def _decode_values(self, u: np.ndarray, valid: np.ndarray | None, rng: np.random.Generator) -> pa.Array:
        assert self.pool is not None
        idx = rng.integers(0, len(self.pool), size=u.shape[0])
        mask = None if valid is None else ~valid
        out = pc.take(self.pool, pa.array(idx, type=pa.int64(), mask=mask))
        return out if out.type == self.arrow_type else out.cast(self.arrow_type)


@dataclass(frozen=True)
class ColumnPrivacy:
    """A column's DP marginal: every release a Gaussian mechanism with noise ``std`` for sensitivity 1.

    Attributes:
        std: noise standard deviation of a release of weight 1 (the NULL counts); a release of weight ``w`` (see
            :data:`NUMERIC_WEIGHTS`, :data:`VOCABULARY_WEIGHT`) has ``std / sqrt(w)``.
        selection_delta: the delta of this column's thresholded release (a vocabulary, or a numeric column's
            point masses).
        nullable: False when the schema says NOT NULL: the NULL share is 0, without noise.
    """

    std: float
    selection_delta: float = 0.0
    nullable: bool = True

    @staticmethod
    def releases(kind: Kind, nullable: bool) -> int:
        """How many unit Gaussian releases (weights) a column of ``kind`` makes (the accounting counts them)."""
        values = NUMERIC_RELEASES if kind in NUMERIC_KINDS else VOCABULARY_WEIGHT if kind in CATEGORY_KINDS else 0
        return int(nullable) + values

    @property
    def vocabulary_std(self) -> float:
        return self.std / float(np.sqrt(VOCABULARY_WEIGHT))

    @property
    def numeric_stds(self) -> tuple[float, float, float, float]:
        """Noise of a numeric column's releases: point masses, coarse and linear range histograms, final one."""
        a, c, lin, f = (self.std / float(np.sqrt(w)) for w in NUMERIC_WEIGHTS)
        return a, c, lin, f

    @staticmethod
    def thresholded(kind: Kind) -> bool:
        """Whether a column of ``kind`` makes a thresholded release (it takes part of the selection delta)."""
        return kind in NUMERIC_KINDS or kind in CATEGORY_KINDS


def column_privacy(priv: Any, columns: list[tuple[str, str, Kind]]) -> tuple[dict[tuple[str, str], ColumnPrivacy], Any]:
    """Each non-public column's DP settings, the marginals' noise multiplier split over every release by weight, and
    what that spends (a :class:`synth_engine.privacy.Spend`, or None).

    ``priv`` is a model's DP settings (:class:`synth_engine.privacy.CopulaPrivacy` or ``NetworkPrivacy``: their
    ``marginals``, ``public_columns``, ``nullable``, ``sensitivity``, ``selection_delta``, ``table`` and
    ``prefix``); ``columns`` are ``(side, name, kind)`` with side ``context`` or ``target``.
    """
    from synth_engine.privacy import Spend

    if priv is None or priv.marginals is None:
        return {}, None
    cols = [(side, c, k) for side, c, k in columns if c not in priv.public_columns]
    nullable = {c: priv.nullable is None or c in priv.nullable for _, c, _ in cols}
    releases = sum(ColumnPrivacy.releases(k, nullable[c]) for _, c, k in cols)
    if releases == 0:
        return {}, None
    vocabularies = sum(1 for _, _, k in cols if ColumnPrivacy.thresholded(k))
    multiplier = priv.marginals * np.sqrt(releases)
    spend = Spend(priv.table, f"{priv.prefix}.marginals", float(multiplier), releases, priv.selection_delta)
    std = float(multiplier * priv.sensitivity)
    delta = priv.selection_delta / max(vocabularies, 1)
    return {(side, c): ColumnPrivacy(std, delta, nullable[c]) for side, c, _ in cols}, spend


class _Common(TypedDict):
    name: str
    kind: Kind
    arrow_type: pa.DataType
    null_share: float
    empty: bool
    midpoint: bool


def fit_marginal(
    name: str,
    kind: Kind,
    column: pa.Array | pa.ChunkedArray,
    *,
    max_categories: int,
    rng: np.random.Generator,
    context: bool = False,
    dp: ColumnPrivacy | None = None,
    table: str = "target",
    one_hot: bool = True,
) -> Marginal:
    """Learn the marginal of one column.

    Args:
        name: the column name (for messages).
        kind: a learned kind (numeric, datetime, date, time, categorical, boolean, text, json, binary).
        column: the column's values.
        max_categories: categories kept before the rare ones are merged into one bucket.
        rng: randomness for pools and DP noise.
        context: True for a context (parent) column: categoricals become one-hot.
        dp: when set, every statistic of the column is a Gaussian mechanism (see :class:`ColumnPrivacy`): the
            NULL share, the vocabulary (thresholded, so a category seen once is not released) and the value
            range and histogram. JSON and binary columns, which would copy real values, are then all NULL.
        table: ``"target"`` or ``"context"``, for messages.
        one_hot: False keeps a context categorical in one dimension (fewer dimensions for a DP correlation).

    Raises:
        ModelError: when the kind does not fit the column's Arrow type.
    """
    original_type = column.type
    arr = plain(column)
    n = len(arr)
    nulls = arr.null_count
    if dp is None:
        null_share = nulls / n if n else 1.0
        empty = nulls == n
    else:
        null_share = dpm.null_share(nulls, n, dp.std, rng) if dp.nullable else 0.0
        empty = null_share >= 1.0 or (dp.nullable and kind in RESAMPLE_KINDS)
        if empty:
            null_share = 1.0
    common = _Common(
        name=name, kind=kind, arrow_type=original_type, null_share=null_share, empty=empty, midpoint=context
    )
    values = arr.drop_null()
    if kind in NUMERIC_KINDS:
        if not is_number_type(arr.type):
            raise ModelError(
                f"{table} column {name!r} has kind {kind.value} but Arrow type {arr.type}; expected a number, "
                "date or time. Set its kind to categorical or text in the schema file"
            )
        if common["empty"]:
            return NumericMarginal(**common)
        return _fit_numeric(common, values, rng, dp)
    if kind in CATEGORY_KINDS:
        if common["empty"]:
            return CategoricalMarginal(**common)
        return _fit_categorical(common, values, max_categories, rng, dp, one_hot=context and one_hot)
    if kind in RESAMPLE_KINDS:
        pool = None
        if not common["empty"]:
            pick = rng.choice(len(values), size=min(RESAMPLE_POOL, len(values)), replace=False)
            pool = pc.take(values, pa.array(np.sort(pick)))
        return ResampleMarginal(**common, pool=pool)
    raise ModelError(
        f"{table} column {name!r} has kind {kind.value}, which is not learned (keys and PII are generated); "
        "leave it out of the model's kinds"
    )


def _fit_numeric(
    common: _Common, values: pa.Array, rng: np.random.Generator, dp: ColumnPrivacy | None
) -> NumericMarginal:
    x = np.sort(to_float(values)[0])
    if dp is not None:
        return _dp_numeric(common, x, rng, dp)
    lo_x, hi_x = float(x[0]), float(x[-1])
    distinct, counts = np.unique(x, return_counts=True)
    if distinct.size <= MAX_KNOTS and x.size >= ROWS_PER_VALUE * distinct.size:
        cdf = np.cumsum(counts.astype(np.float64)) / counts.sum()
        cdf[-1] = 1.0
        return NumericMarginal(**common, values=distinct, cdf=cdf)
    p = np.linspace(0.0, 1.0, int(min(MAX_KNOTS, max(2, x.size // ROWS_PER_KNOT))))
    q = np.quantile(x, p, method="linear")
    q[0], q[-1] = lo_x, hi_x
    if is_integral(common["arrow_type"]):
        q = np.rint(q)
    step = _grid_step(distinct)
    return NumericMarginal(
        **common, knots_p=p, knots_q=np.maximum.accumulate(q), grid_step=step, grid_origin=lo_x if step else 0.0
    )


def _grid_step(distinct: np.ndarray) -> float:
    """The step of the grid all values lie on (the gcd of their gaps, for whole numbers), or 0 when it is 1 or none.

    Datetimes arrive as whole numbers of their unit, so an hourly timestamp has a step of 3,600 seconds' worth.
    """
    if distinct.size < 3 or not np.all(np.isfinite(distinct)) or np.any(distinct != np.rint(distinct)):
        return 0.0
    if np.abs(distinct).max() >= 2**62:
        return 0.0
    step = int(np.gcd.reduce(np.diff(distinct.astype(np.int64))))
    return float(step) if step > 1 else 0.0


def _dp_numeric(common: _Common, x: np.ndarray, rng: np.random.Generator, dp: ColumnPrivacy) -> NumericMarginal:
    """Point masses from a thresholded DP count of exact values, then the other values' range from two DP
    histograms and their values (integers: one bin each) or quantile knots from a third; a point mass is a flat
    segment of the quantile function (see :func:`synth_engine.privacy.mechanisms.numeric_mixture`)."""
    integral = is_integral(common["arrow_type"])
    values, rest = dpm.numeric_mixture(
        x, integral, dp.numeric_stds, dp.selection_delta, rng, may_be_empty=dp.nullable
    )
    if values is not None and values.size == 0:
        # no release located any value (too few for the noise): NULL, as a vocabulary no category clears
        log.info("column %r: no value clears the DP thresholds", common["name"])
        common["null_share"], common["empty"] = 1.0, True
        return NumericMarginal(**common)
    if values is not None:
        assert isinstance(rest, np.ndarray)
        cdf = np.cumsum(rest) / rest.sum()
        cdf[-1] = 1.0
        return NumericMarginal(**common, values=values, cdf=cdf)
    assert isinstance(rest, tuple)
    p, q = rest
    if integral:
        q = np.rint(q)
    return NumericMarginal(**common, knots_p=p, knots_q=np.maximum.accumulate(q))


def _fit_categorical(
    common: _Common,
    values: pa.Array,
    max_categories: int,
    rng: np.random.Generator,
    dp: ColumnPrivacy | None,
    *,
    one_hot: bool,
) -> CategoricalMarginal:
    if dp is None:
        vc = pc.value_counts(values)
        cats = vc.field("values")
        counts = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        cats, counts = dpm.vocabulary(values, dp.vocabulary_std, dp.selection_delta, rng)
        if counts.size == 0:
            # nothing clears the threshold: no real category may appear. A nullable column becomes NULL, a NOT
            # NULL one gets one placeholder value of its type.
            log.info("column %r: no category clears the DP threshold", common["name"])
            if dp.nullable:
                common["null_share"], common["empty"] = 1.0, True
                return CategoricalMarginal(**common)
            cats = pa.array([_placeholder(values.type)], type=values.type)
            counts = np.ones(1)
    order = np.argsort(-counts, kind="stable")
    cats = pc.take(cats, pa.array(order))
    counts = counts[order]
    rare_pool = None
    limit = max(1, min(max_categories, ONE_HOT_MAX) if one_hot else max_categories)
    if counts.size > limit:
        rare_cats = cats.slice(limit - 1)
        rare_counts = counts[limit - 1 :]
        size = min(RESAMPLE_POOL, rare_counts.size)
        pick = rng.choice(rare_counts.size, size=size, replace=False, p=rare_counts / rare_counts.sum())
        rare_pool = pc.take(rare_cats, pa.array(np.sort(pick)))
        cats = cats.slice(0, limit - 1)
        counts = np.append(counts[: limit - 1], rare_counts.sum())
        log.debug("column %r: %d rare categories merged into one bucket", common["name"], rare_counts.size)
    return CategoricalMarginal(
        **common,
        categories=cats,
        probs=counts / counts.sum(),
        order=np.arange(counts.size),
        rare_pool=rare_pool,
        one_hot=one_hot,
    )


def _placeholder(t: pa.DataType) -> object:
    """A value of type ``t`` that says nothing about the data: the suppressed category of a NOT NULL column."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "(suppressed)"
    if pa.types.is_boolean(t):
        return False
    return pa.scalar(0).cast(t).as_py() if pa.types.is_integer(t) or pa.types.is_floating(t) else None
