"""Columns <-> integer tokens for the autoregressive network, built on the copula's marginals.

A column becomes zero, one or two *sub-tokens*, each a small vocabulary the network predicts in turn:

- categories (also booleans and text): one token per bucket of the :class:`CategoricalMarginal` (the kept
  categories, plus its one merged bucket of rare categories, which decodes to an observed rare value drawn from
  the marginal's pool, exactly as the copula does);
- numbers, datetimes, dates and times: a numeric marginal with at most ``coarse`` distinct values gets one token
  per value. Otherwise the marginal's uniform score ``u`` is cut into ``coarse`` equal-probability bins and,
  optionally, each of those into ``fine`` sub-bins (a second token: ``coarse * fine`` levels in two small softmaxes;
  off by default, since 64 bins in one token measured better than 32 x 32 in two on the demo data). Decoding draws
  a uniform position inside the sampled bin and maps it back through the marginal's quantile function, so values
  are interpolated between quantile knots rather than copied;
- JSON and binary: a NULL / not-NULL token (the value is drawn from the marginal's pool);
- a NULL is token 0 of the column's first sub-token, when the column has NULLs.

A context column (the parent's row, only ever conditioned on) always reserves a NULL token and, for categories, an
*unknown* token, because a generated parent can hold values the training parents never did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synth_engine._internal.arrow_numbers import plain, to_float
from synth_engine._internal.encoding import CategoricalMarginal, Marginal, NumericMarginal


@dataclass
class ColumnCodec:
    """One column's tokens: the marginal it decodes through and the vocabulary size of each sub-token.

    Attributes:
        marginal: the column's fitted marginal (from :func:`synth_engine._internal.encoding.fit_marginal`).
        sizes: vocabulary size of each sub-token, in prediction order (empty: the column needs no token).
        context: True for a context column (NULL and unknown tokens always reserved).
        coarse: bins of the first numeric token (or 0 when the column is not binned).
        fine: sub-bins of the second numeric token (0: no second token).
    """

    marginal: Marginal
    sizes: list[int]
    context: bool = False
    coarse: int = 0
    fine: int = 0

    @property
    def null_token(self) -> bool:
        """True when token 0 of the first sub-token means NULL."""
        m = self.marginal
        return self.context or (not m.empty and m.has_null_dim)

    @property
    def offset(self) -> int:
        """Tokens before the first value token: NULL (when reserved) and, for context categories, unknown."""
        unknown = self.context and isinstance(self.marginal, CategoricalMarginal)
        return int(self.null_token) + int(unknown)

    # ---------------------------------------------------------------- encode
    def encode(self, column: pa.Array | pa.ChunkedArray, rng: np.random.Generator) -> np.ndarray:
        """Tokens of shape ``(rows, len(sizes))``, int64."""
        arr = plain(column)
        n = len(arr)
        out = np.zeros((n, len(self.sizes)), dtype=np.int64)
        if not self.sizes:
            return out
        m = self.marginal
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        off = self.offset
        if isinstance(m, CategoricalMarginal) and not m.empty:
            idx = m.bucket_index(arr)
            # unknown: token 1 in a context; in a target (a value below a DP vocabulary's threshold, without a
            # rare bucket) the most frequent category, so that every token is in the vocabulary
            unknown = 1 if self.context else off + int(np.argmax(m.probs))
            tok = np.where(idx >= 0, idx + off, unknown)
            out[:, 0] = np.where(valid, tok, 0)
        elif isinstance(m, NumericMarginal) and not m.empty:
            if self.coarse == 0:  # one token per distinct value
                x, _ = to_float(arr)
                idx = np.clip(np.searchsorted(m.values, x, side="right") - 1, 0, m.values.size - 1)
                out[:, 0] = np.where(valid, idx + off, 0)
            else:
                u = m.encode(arr, rng)[:, -1]
                level = np.clip(np.nan_to_num(u, nan=0.0), 0.0, 1.0) * self.coarse
                coarse = np.minimum(level.astype(np.int64), self.coarse - 1)
                out[:, 0] = np.where(valid, coarse + off, 0)
                if self.fine:
                    fine = np.minimum(((level - coarse) * self.fine).astype(np.int64), self.fine - 1)
                    out[:, 1] = np.where(valid, np.maximum(fine, 0), 0)
        else:  # NULL / not-NULL only
            out[:, 0] = valid.astype(np.int64)
        return out

    # ---------------------------------------------------------------- decode
    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """An Arrow array of the column's exact type from tokens of shape ``(rows, len(sizes))`` (targets only)."""
        m = self.marginal
        n = tokens.shape[0]
        if m.empty:
            return m.decode(np.empty((n, 0)), rng)
        first = tokens[:, 0] if self.sizes else np.ones(n, dtype=np.int64)
        is_null = (first == 0) if self.null_token else np.zeros(n, dtype=bool)
        parts: list[np.ndarray] = []
        if m.has_null_dim:
            # the marginal reads "NULL" below its null share: 0 for NULL rows, 1 for the others
            parts.append(np.where(is_null, 0.0, 1.0)[:, None])
        value = np.maximum(first - self.offset, 0)
        if isinstance(m, CategoricalMarginal):
            lo, hi = m.intervals()
            b = np.minimum(value, m.n_buckets - 1)
            parts.append((lo[b] + (hi[b] - lo[b]) * 0.5)[:, None])
        elif isinstance(m, NumericMarginal):
            draw = rng.random(n)
            if self.coarse == 0:
                cdf = m.cdf
                i = np.minimum(value, cdf.size - 1)
                lo = np.where(i > 0, cdf[np.maximum(i - 1, 0)], 0.0)
                u = lo + (cdf[i] - lo) * draw
            elif self.fine:
                u = (value + (tokens[:, 1] + draw) / self.fine) / self.coarse
            else:
                u = (value + draw) / self.coarse
            parts.append(np.clip(u, 0.0, 1.0)[:, None])
        u_all = np.hstack(parts) if parts else np.empty((n, 0))
        return m.decode(u_all, rng)


def make_codec(marginal: Marginal, *, context: bool, coarse: int, fine: int) -> ColumnCodec:
    """The tokens of one column (see the module notes); ``coarse``/``fine``: numeric bins and sub-bins."""
    m = marginal
    null = int(context or (not m.empty and m.has_null_dim))
    if m.empty:
        return ColumnCodec(m, [2] if context else [], context)
    if isinstance(m, CategoricalMarginal):
        return ColumnCodec(m, [null + int(context) + m.n_buckets], context)
    if isinstance(m, NumericMarginal):
        if m.exact and m.values.size <= coarse:
            return ColumnCodec(m, [null + m.values.size], context)
        sizes = [null + coarse] + ([fine] if fine > 1 else [])
        return ColumnCodec(m, sizes, context, coarse=coarse, fine=fine if fine > 1 else 0)
    return ColumnCodec(m, [2] if (context or m.has_null_dim) else [], context)
