"""A Gaussian copula model of one table, optionally conditioned on its context parent's row.

Each column gets an empirical marginal (see :mod:`synth_engine._internal.encoding`); the dependence between columns
(and NULL indicators) is a Gaussian copula, i.e. the correlation of their normal scores. With a context, the copula
is fitted over ``[context, target]`` and sampling draws the target's scores from the conditional Gaussian given the
context's scores, one target row per context row.

Differential privacy (``privacy``, or ``epsilon`` for a model on its own): every statistic that reaches a sample
is a Gaussian mechanism (:mod:`synth_engine.privacy`). The marginals' NULL shares, vocabularies (noisy counts,
thresholded so that a category seen once is never released) and numeric ranges and histograms share the
``marginals`` noise multiplier, split over their releases; the correlation is the Gaussian mechanism on the second
moment of the normal scores, clipped to ``|z| <= 4`` per score and to an L2 norm of ``1.2 sqrt(d)`` per row. Under
DP the categories keep their (noisy) frequency order, context categories get one dimension (fewer dimensions, less
noise), each entry of the noisy correlation is shrunk by its own noise (a non-negative garrote) and its eigenvalues
are floored, and conditional
draws are not recalibrated on the real contexts (that would read the data again): a batch of at least 1000 rows
whose contexts are not all alike (the generated parents' rows; not a hand-made context of one parent) is
calibrated on its own contexts instead, by the ranks of its draws. What was spent is in ``privacy_spent_``.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from typing import Self

import numpy as np
import pyarrow as pa

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine._internal.arrow_numbers import plain
from synth_engine._internal.columns import model_columns, privacy_columns
from synth_engine._internal.encoding import (
    CategoricalMarginal,
    ColumnPrivacy,
    Marginal,
    column_privacy,
    fit_marginal,
)
from synth_engine._internal.gaussian import (
    conditional,
    dependence_order,
    matrix_sqrt,
    nearest_correlation,
    normal_scores,
    pairwise_correlation,
    single_threaded_blas,
    uniforms,
)
from synth_engine.privacy import CopulaPrivacy, Spend
from synth_engine.privacy import mechanisms as dpm
from synth_engine.protocol import sample_rows

log = logging.getLogger(__name__)

_SAMPLE_BATCH = 262_144
"""Rows sampled at a time, so that memory is bounded by the batch, not by ``n``."""

_DP_CLIP = 4.0
_DP_EIGEN_FLOOR = 0.1  # without recalibration, a near-singular context block must not be inverted as is
_DP_ROW_NORM = 1.2  # rows of scores are clipped to this times sqrt(dims) in L2 norm (their typical norm is sqrt(d))
_CALIBRATION_P = np.linspace(0.0, 1.0, 1001)
_RANK_MIN_ROWS = 1000  # under DP, conditional draws of at least this many rows are calibrated by their ranks,
_RANK_MIN_SPREAD = 0.05  # when the contexts' scores are not all alike (one deviation at least this)
_FIT_SEED = 0x5EED_C0B1A  # fitting is deterministic: the same data always gives the same model


class GaussianCopulaModel:
    """A Gaussian copula over a table's learned columns, optionally conditioned on a context.

    Implements :class:`synth_engine.protocol.TableModel`.

    Args:
        kinds: the target's columns to model and their kinds. Columns whose kind is not learned (keys, PII) are
            skipped: they are generated elsewhere and are absent from samples.
        context_kinds: kinds of the context's columns; when None and a context is given, kinds are inferred from
            the Arrow types.
        max_categories: categories kept per column; rarer ones are merged into one bucket.
        max_fit_rows: fit on a random subset of at most this many rows (None = all rows).
        epsilon: a differential-privacy budget for this model alone, at delta 1e-6 (see the module notes).
            None = off. Ignored when ``privacy`` is given.
        privacy: how the model learns under DP, as part of a run's budget (see the module notes). None = off.

    Attributes:
        marginals_: the target's marginals, in output order.
        context_marginals_: the context's marginals (empty without a context).
        correlation_: the copula correlation over ``[context dims, target dims]``.
        schema_: the Arrow schema of samples (the fitted target's columns and types).
        n_rows_: rows used for fitting.
        privacy_spent_: the Gaussian mechanisms the fit released (empty without DP).
    """

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        context_kinds: Mapping[str, Kind] | None = None,
        *,
        max_categories: int = 100,
        max_fit_rows: int | None = None,
        epsilon: float | None = None,
        privacy: CopulaPrivacy | None = None,
    ) -> None:
        self.kinds = kinds
        self.context_kinds = context_kinds
        self.max_categories = max_categories
        self.max_fit_rows = max_fit_rows
        self.epsilon = epsilon
        self.privacy = privacy

    # ------------------------------------------------------------------ fit
    def fit(self, target: pa.Table, *, context: pa.Table | None = None) -> Self:
        """Learn marginals and the copula from ``target`` (and ``context``: one parent row per target row).

        Raises:
            ModelError: on a bad parameter, a missing column, a kind that does not fit a column's type, or a
                context whose row count differs from the target's.
        """
        with single_threaded_blas():
            return self._fit(target, context)

    def _fit(self, target: pa.Table, context: pa.Table | None) -> Self:
        self._check_params()
        target_cols, context_cols = model_columns(self.kinds, self.context_kinds, target, context)
        rng = np.random.Generator(np.random.PCG64(_FIT_SEED))
        if self.max_fit_rows is not None and target.num_rows > self.max_fit_rows:
            keep = pa.array(np.sort(rng.choice(target.num_rows, size=self.max_fit_rows, replace=False)))
            target = target.take(keep)
            context = context.take(keep) if context is not None else None
        priv = self.privacy
        if priv is None and self.epsilon is not None:
            priv = CopulaPrivacy.from_epsilon(self.epsilon)
        self.privacy_spent_: list[Spend] = []
        dps = self._column_privacy(priv, privacy_columns(context_cols, target_cols))

        def learn(name: str, kind: Kind, column: pa.ChunkedArray, is_context: bool) -> Marginal:
            key = ("context" if is_context else "target", name)
            return fit_marginal(
                name, kind, column, max_categories=self.max_categories, rng=rng, context=is_context,
                dp=dps.get(key), table="context" if is_context else "target", one_hot=priv is None,
            )

        self.context_marginals_: list[Marginal] = (
            [learn(c, k, context[c], True) for c, k in context_cols.items()] if context is not None else []
        )
        self.marginals_: list[Marginal] = [learn(c, k, target[c], False) for c, k in target_cols.items()]
        parts = [m.encode(_col(context, m.name), rng) for m in self.context_marginals_ if context is not None]
        parts += [m.encode(_col(target, m.name), rng) for m in self.marginals_]
        u = np.hstack(parts) if parts else np.empty((target.num_rows, 0))
        z: np.ndarray | None = None
        if priv is None:
            self._order_categories(u, target, rng)
            z = normal_scores(u)
            corr = pairwise_correlation(z)
        else:
            corr = self._dp_correlation(u, priv, rng)
        self.correlation_ = nearest_correlation(corr)
        self.n_context_dims_ = sum(m.dims for m in self.context_marginals_)
        self.regression_, self.residual_factor_ = conditional(self.correlation_, self.n_context_dims_)
        self.marginal_factor_ = matrix_sqrt(self.correlation_[self.n_context_dims_ :, self.n_context_dims_ :])
        # under DP the real contexts' scores are not read again: no calibration (see the module notes)
        self.calibration_ = (
            None if z is None else self._calibrate(z, np.random.Generator(np.random.PCG64([_FIT_SEED, 1])))
        )
        # under DP, conditional draws are calibrated on the contexts they are given instead (generated rows)
        self.rank_calibrate_ = priv is not None and 0 < self.n_context_dims_ < self.correlation_.shape[0]
        self.schema_ = pa.schema([target.schema.field(m.name) for m in self.marginals_])
        self.n_rows_ = target.num_rows
        log.debug(
            "fitted a copula on %d rows: %d target columns, %d context columns, %d dims",
            target.num_rows, len(self.marginals_), len(self.context_marginals_), self.correlation_.shape[0],
        )
        return self

    def _calibrate(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """Quantiles of each target score when sampled given the training contexts, shape ``(knots, dims)``.

        Real data are rarely jointly Gaussian in score space (a parent category can make a child's score narrow
        or wide), so conditional draws mapped with the standard normal CDF drift from the target's marginal (for
        child counts, that changes the number of rows). Mapping each conditional score through the distribution
        of scores drawn for the training contexts instead keeps the marginal exact over contexts like the training
        ones, and keeps the order, hence the dependence on the context.
        """
        nc = self.n_context_dims_
        if nc == 0 or z.shape[1] == nc:
            return None
        zc = z[:, :nc].copy()
        gaps = np.isnan(zc)
        zc[gaps] = rng.standard_normal(int(gaps.sum()))
        sim = zc @ self.regression_.T + rng.standard_normal((z.shape[0], z.shape[1] - nc)) @ self.residual_factor_.T
        return np.asarray(np.quantile(sim, _CALIBRATION_P, axis=0))

    def _order_categories(self, u: np.ndarray, target: pa.Table, rng: np.random.Generator) -> None:
        """Lay each target categorical's buckets out in the order that moves with the other columns.

        Frequency order (SDV's) makes a categorical that depends on a number non-monotone in its normal score
        whenever the frequent category sits in the middle (e.g. ``low/mid/high``), and a Gaussian copula then loses
        most of that dependence. Ordering the buckets along the first principal direction of their per-bucket means
        of the other columns' scores restores it. Columns that carry no dependence keep the frequency order.
        ``u`` is updated in place.
        """
        starts = np.cumsum([0] + [m.dims for m in [*self.context_marginals_, *self.marginals_]])[:-1]
        offset = dict(zip(
            [id(m) for m in [*self.context_marginals_, *self.marginals_]], starts.tolist(), strict=True
        ))
        movable = [
            m for m in self.marginals_
            if isinstance(m, CategoricalMarginal) and not m.empty and not m.one_hot and m.n_buckets >= 3
        ]
        if not movable:
            return
        value_col = {id(m): offset[id(m)] + int(m.has_null_dim) for m in movable}
        anchors = [j for j in range(u.shape[1]) if j not in set(value_col.values())]
        if not anchors:
            return
        z = normal_scores(u[:, anchors])
        for m in movable:
            arr = _col(target, m.name)
            order = dependence_order(m.bucket_index(arr), z, m.n_buckets)
            if order is not None:
                m.reorder(order)
                u[:, value_col[id(m)]] = m.encode(arr, rng)[:, -1]

    def _column_privacy(
        self, priv: CopulaPrivacy | None, columns: list[tuple[str, str, Kind]]
    ) -> dict[tuple[str, str], ColumnPrivacy]:
        """Each non-public column's DP settings (see :func:`synth_engine._internal.encoding.column_privacy`)."""
        dps, spend = column_privacy(priv, columns)
        if spend is not None:
            self.privacy_spent_.append(spend)
        return dps

    def _dp_correlation(self, u: np.ndarray, priv: CopulaPrivacy, rng: np.random.Generator) -> np.ndarray:
        d = u.shape[1]
        if d < 2 or priv.correlation is None:
            return pairwise_correlation(normal_scores(u)) if d >= 2 else np.eye(d)
        self.privacy_spent_.append(Spend(priv.table, f"{priv.prefix}.correlation", float(priv.correlation)))
        z = normal_scores(u, _DP_CLIP)
        clip = _DP_ROW_NORM * np.sqrt(d)
        corr, sd = dpm.noisy_correlation(z, priv.correlation * priv.sensitivity, clip, rng)
        # Post-processing: shrink each entry by its own noise (see dpm.denoise_correlation) and floor the spectrum,
        # so that a noisy context block, inverted by the conditional Gaussian, does not blow the target's variance up.
        return dpm.denoise_correlation(corr, sd, _DP_EIGEN_FLOOR)

    def _check_params(self) -> None:
        if not isinstance(self.max_categories, int) or self.max_categories < 2:
            raise ModelError(f"max_categories must be an integer >= 2, got {self.max_categories!r}")
        if self.max_fit_rows is not None and (not isinstance(self.max_fit_rows, int) or self.max_fit_rows < 1):
            raise ModelError(f"max_fit_rows must be None or an integer >= 1, got {self.max_fit_rows!r}")
        if self.epsilon is not None and not self.epsilon > 0:
            raise ModelError(f"epsilon must be None or a number > 0, got {self.epsilon!r}")

    # --------------------------------------------------------------- sample
    def sample(self, *, n: int | None = None, context: pa.Table | None = None, seed: int) -> pa.Table:
        """Sample synthetic target rows.

        Args:
            n: rows to sample without a context (ignored when equal to the context's row count).
            context: the parents' rows, one per row to sample; output row ``i`` is conditioned on context row ``i``.
            seed: the random seed; the same seed gives the same output.

        Returns:
            A table with the fitted target's columns and exact Arrow types.

        Raises:
            NotFittedError: when called before :meth:`fit`.
            ModelError: when neither ``n`` nor ``context`` is given, when they disagree, or when the context lacks
                a column the model was fitted on. A model fitted without context columns samples its marginal,
                one row per context row.
        """
        if not hasattr(self, "correlation_"):
            raise NotFittedError("GaussianCopulaModel.sample was called before fit; call fit(target) first")
        rows = sample_rows(n, context)
        rng = np.random.Generator(np.random.PCG64(seed))
        with single_threaded_blas():
            return self._sample(rows, context, rng)

    def _sample(self, rows: int, context: pa.Table | None, rng: np.random.Generator) -> pa.Table:
        batches = []
        for start in range(0, max(rows, 1), _SAMPLE_BATCH):
            stop = min(start + _SAMPLE_BATCH, rows)
            ctx = context.slice(start, stop - start) if context is not None else None
            batches.append(self._sample_batch(stop - start, ctx, rng))
        return pa.concat_tables(batches) if len(batches) > 1 else batches[0]

    def latent_mean(self, context: pa.Table) -> np.ndarray:
        """The conditional mean of the target's normal scores given each context row: ``(rows, target dims)``.

        It is what the context predicts, without sampling noise: a ranking of context rows by how much of a target
        column each one is expected to have (which parents are expected to have the most children). A missing or
        unseen context value contributes its mean (0).

        Raises:
            NotFittedError: when called before :meth:`fit`.
        """
        if not hasattr(self, "correlation_"):
            raise NotFittedError("GaussianCopulaModel.latent_mean was called before fit; call fit(target, context)")
        dt = self.correlation_.shape[0] - self.n_context_dims_
        if self.n_context_dims_ == 0:
            return np.zeros((context.num_rows, dt))
        zc = self._context_scores(context, np.random.Generator(np.random.PCG64(0)))
        return np.asarray(np.nan_to_num(zc) @ self.regression_.T)

    def _context_scores(self, context: pa.Table, rng: np.random.Generator) -> np.ndarray:
        missing = [m.name for m in self.context_marginals_ if m.name not in context.column_names]
        if missing:
            raise ModelError(
                f"the context lacks column(s) {', '.join(map(repr, missing))} that the model was fitted on "
                f"(context columns: {', '.join(context.column_names)}); pass the parent's generated columns"
            )
        u = np.hstack([m.encode(_col(context, m.name), rng) for m in self.context_marginals_])
        return np.asarray(normal_scores(u))

    def _sample_batch(self, rows: int, context: pa.Table | None, rng: np.random.Generator) -> pa.Table:
        dt = self.correlation_.shape[0] - self.n_context_dims_
        noise = rng.standard_normal((rows, dt))
        if context is not None and self.n_context_dims_ > 0:
            zc = self._context_scores(context, rng)
            gaps = np.isnan(zc)
            if gaps.any():
                # An unseen or missing context value carries no information: draw it from its marginal.
                zc[gaps] = rng.standard_normal(int(gaps.sum()))
            z = zc @ self.regression_.T + noise @ self.residual_factor_.T
            if self.calibration_ is not None:
                u_t = _calibrated(z, self.calibration_)
            elif getattr(self, "rank_calibrate_", False) and _like_training(zc):
                u_t = _ranks(z)
            else:
                u_t = uniforms(z)
        else:
            u_t = uniforms(noise @ self.marginal_factor_.T)
        arrays = []
        col = 0
        for m in self.marginals_:
            arrays.append(m.decode(u_t[:, col : col + m.dims], rng))
            col += m.dims
        return pa.Table.from_arrays(arrays, schema=self.schema_)

    # ---------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """The fitted model as bytes (pickle), for the model store."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> GaussianCopulaModel:
        """A model from :meth:`to_bytes` output. Only load bytes you wrote: this is pickle."""
        model = pickle.loads(data)
        if not isinstance(model, cls):
            raise ModelError(f"the bytes hold a {type(model).__name__}, expected a {cls.__name__}")
        return model


def _calibrated(z: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Uniforms of conditional scores through the calibration quantiles (see ``_calibrate``)."""
    u = np.empty_like(z)
    for j in range(z.shape[1]):
        u[:, j] = np.interp(z[:, j], knots[:, j], _CALIBRATION_P)
    return u


def _like_training(zc: np.ndarray) -> bool:
    """Whether a batch of context scores may be a sample of the contexts' distribution: enough rows, not all alike
    (a hand-made context of one parent repeated is not: its rows keep their plain conditional draws). A rare NULL
    indicator or a skewed category has a small spread even in a sample, so any spread at all is enough."""
    if zc.shape[0] < _RANK_MIN_ROWS:
        return False
    return bool(np.any(zc.std(axis=0) >= _RANK_MIN_SPREAD))


def _ranks(z: np.ndarray) -> np.ndarray:
    """Uniforms of conditional scores by their ranks within the batch: under DP, the calibration on the given
    contexts (generated rows, no real data), so that the target's marginal stays its DP marginal whatever the
    contexts' scores look like, and the order (the dependence on the context) is kept."""
    order = np.argsort(z, axis=0, kind="stable")
    u = np.empty_like(z)
    np.put_along_axis(u, order, ((np.arange(z.shape[0]) + 0.5) / z.shape[0])[:, None], axis=0)
    return u


def _col(table: pa.Table, name: str) -> pa.Array:
    return plain(table.column(name))
