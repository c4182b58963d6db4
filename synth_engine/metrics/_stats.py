"""The metric formulas, on plain numpy arrays (no Arrow, no pandas): one place that matches SDMetrics' definitions.

Every function returns a score in [0, 1] (1 = indistinguishable), or ``nan`` when the metric cannot be computed
(an empty or constant column); callers leave ``nan`` out of their means and say so.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Above this many cells, a 2D contingency table is counted sparsely (np.unique) instead of with a dense bincount,
# so two high-cardinality columns cannot allocate a huge array.
_DENSE_CELLS = 2_000_000


def ks_complement(real: FloatArray, synth: FloatArray) -> float:
    """1 - the two-sample Kolmogorov-Smirnov D statistic, on non-NaN values (SDMetrics ``KSComplement``)."""
    a = np.sort(real[~np.isnan(real)])
    b = np.sort(synth[~np.isnan(synth)])
    if a.size == 0 or b.size == 0:
        return float("nan")
    both = np.concatenate([a, b])
    # The empirical CDFs of both samples evaluated at every observed value; D is their largest gap (as scipy does).
    cdf_a = np.searchsorted(a, both, side="right") / a.size
    cdf_b = np.searchsorted(b, both, side="right") / b.size
    return float(1.0 - np.max(np.abs(cdf_a - cdf_b)))


def tv_complement(real_codes: IntArray, synth_codes: IntArray, n_codes: int) -> float:
    """1 - total variation distance of category frequencies, nulls (code -1) left out (SDMetrics ``TVComplement``)."""
    r = real_codes[real_codes >= 0]
    s = synth_codes[synth_codes >= 0]
    if r.size == 0 or s.size == 0:
        return float("nan")
    pr = np.bincount(r, minlength=n_codes) / r.size
    ps = np.bincount(s, minlength=n_codes) / s.size
    return float(1.0 - 0.5 * np.abs(pr - ps).sum())


def null_similarity(real_null_share: float, synth_null_share: float) -> float:
    """1 - |difference of null shares| (SDMetrics ``MissingValueSimilarity``)."""
    return float(1.0 - abs(real_null_share - synth_null_share))


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson's r over rows where both values are present; ``nan`` when fewer than 2 rows or a column is constant."""
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 2:
        return float("nan")
    xs, ys = x[keep], y[keep]
    xs = xs - xs.mean()
    ys = ys - ys.mean()
    denom = np.sqrt((xs * xs).sum() * (ys * ys).sum())
    if denom == 0 or not np.isfinite(denom):
        return float("nan")
    return float(np.clip((xs * ys).sum() / denom, -1.0, 1.0))


def correlation_similarity(
    real_x: FloatArray, real_y: FloatArray, synth_x: FloatArray, synth_y: FloatArray
) -> tuple[float, float, float]:
    """``1 - |r_real - r_synth| / 2`` with Pearson's r (SDMetrics ``CorrelationSimilarity``).

    Returns:
        (score, r_real, r_synth); the score is ``nan`` when either correlation is undefined.
    """
    r_real = pearson(real_x, real_y)
    r_synth = pearson(synth_x, synth_y)
    if np.isnan(r_real) or np.isnan(r_synth):
        return float("nan"), r_real, r_synth
    return float(1.0 - abs(r_real - r_synth) / 2.0), r_real, r_synth


def contingency_similarity(
    real_a: IntArray, real_b: IntArray, synth_a: IntArray, synth_b: IntArray, n_a: int, n_b: int
) -> float:
    """1 - total variation distance of the 2D contingency tables (SDMetrics ``ContingencySimilarity``).

    Codes are in ``[0, n_a)`` and ``[0, n_b)``; a null must already have its own code, because SDMetrics counts
    nulls as a category here (``groupby(dropna=False)``).
    """
    if real_a.size == 0 or synth_a.size == 0:
        return float("nan")
    cells = n_a * n_b
    real_cell = real_a * n_b + real_b
    synth_cell = synth_a * n_b + synth_b
    if cells <= _DENSE_CELLS:
        pr = np.bincount(real_cell, minlength=cells) / real_cell.size
        ps = np.bincount(synth_cell, minlength=cells) / synth_cell.size
    else:
        _, inverse = np.unique(np.concatenate([real_cell, synth_cell]), return_inverse=True)
        size = int(inverse.max()) + 1
        pr = np.bincount(inverse[: real_cell.size], minlength=size) / real_cell.size
        ps = np.bincount(inverse[real_cell.size :], minlength=size) / synth_cell.size
    return float(1.0 - 0.5 * np.abs(pr - ps).sum())


def quantile_bins(real: FloatArray, synth: FloatArray, bins: int) -> tuple[IntArray, IntArray, int]:
    """Bin two numeric arrays by the real data's quantiles; NaN gets a bin of its own (the last code).

    Quantile bins (rather than SDMetrics' equal-width ones) keep every bin populated on skewed data, where
    equal-width bins put nearly all rows in one bin and the contingency score says nothing.

    Returns:
        (real codes, synthetic codes, number of codes).
    """
    present = real[~np.isnan(real)]
    if present.size:
        edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    else:
        edges = np.empty(0)
    null_code = edges.size + 1

    def codes(x: FloatArray) -> IntArray:
        out = np.searchsorted(edges, x, side="right").astype(np.int64)
        out[np.isnan(x)] = null_code
        return out

    return codes(real), codes(synth), null_code + 1


def detection_score(auc: float) -> float:
    """``1 - 2 |AUC - 0.5|``, clipped to [0, 1]: 1 when a classifier cannot tell real from synthetic rows."""
    return float(np.clip(1.0 - 2.0 * abs(auc - 0.5), 0.0, 1.0))


def nanmean(values: list[float]) -> float | None:
    """Mean of the defined values, or None when there is none (so JSON says null, not NaN)."""
    kept = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(kept)) if kept else None
