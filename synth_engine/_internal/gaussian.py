"""The Gaussian part of the copula: normal scores, a correlation with missing entries, conditioning.

All of it is dense numpy linear algebra over ``(rows, dims)`` matrices; there is no per-row Python.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from scipy import sparse
from scipy.special import ndtr, ndtri

try:  # optional: present wherever scipy's usual companions are; without it BLAS keeps its own threading
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

Z_CLIP = 5.0
"""Normal scores are clipped to [-Z_CLIP, Z_CLIP] so that uniforms at 0 or 1 stay finite."""


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread inside the block.

    The copula's products are skinny (``rows x dims`` with dims in the tens), where one thread is as fast as
    many, and a multi-threaded BLAS on a busy machine (several Ray tasks per node) spins and runs 50x slower.
    """
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def normal_scores(u: np.ndarray, clip: float = Z_CLIP) -> np.ndarray:
    """Standard normal quantiles of uniforms, NaN kept."""
    z = ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))
    return np.asarray(np.clip(z, -clip, clip))


def uniforms(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF, elementwise."""
    return np.asarray(ndtr(z))


def pairwise_correlation(z: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``z`` where NaN marks a missing entry (pairwise deletion).

    Each pair uses the rows where both entries are present, computed for all pairs at once with matrix products.
    Pairs with fewer than three shared rows, or a constant column, get correlation 0.
    """
    d = z.shape[1]
    if d == 0:
        return np.empty((0, 0))
    m = (~np.isnan(z)).astype(np.float64)
    zf = np.where(m > 0, z, 0.0)
    n = m.T @ m
    sx = zf.T @ m  # sx[i, j]: sum of column i over rows where i and j are both present
    sxx = (zf * zf).T @ m
    sxy = zf.T @ zf
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_i = sx / n
        mean_j = mean_i.T
        cov = sxy / n - mean_i * mean_j
        var_i = sxx / n - mean_i**2
        var_j = var_i.T
        corr = cov / np.sqrt(var_i * var_j)
    corr = np.where((n >= 3) & np.isfinite(corr), corr, 0.0)
    corr = np.clip((corr + corr.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def nearest_correlation(corr: np.ndarray, floor: float = 1e-4, shrink: float = 1e-3) -> np.ndarray:
    """A positive definite correlation matrix close to ``corr``: shrink, clip eigenvalues, rescale the diagonal."""
    d = corr.shape[0]
    if d == 0:
        return corr
    c = (1.0 - shrink) * corr + shrink * np.eye(d)
    w, v = np.linalg.eigh((c + c.T) / 2.0)
    c = (v * np.maximum(w, floor)) @ v.T
    s = np.sqrt(np.diag(c))
    c = c / s[:, None] / s[None, :]
    np.fill_diagonal(c, 1.0)
    return np.asarray((c + c.T) / 2.0)


def matrix_sqrt(cov: np.ndarray) -> np.ndarray:
    """A factor ``L`` with ``L @ L.T == cov``, robust to a nearly singular ``cov`` (symmetric eigen-decomposition)."""
    if cov.size == 0:
        return cov
    w, v = np.linalg.eigh((cov + cov.T) / 2.0)
    return np.asarray(v * np.sqrt(np.maximum(w, 0.0)))


def conditional(corr: np.ndarray, n_context: int) -> tuple[np.ndarray, np.ndarray]:
    """The regression and the residual factor of target scores given context scores.

    For ``corr`` ordered ``[context, target]``: ``z_t | z_c ~ N(z_c @ A.T, L @ L.T)`` with
    ``A = S_tc S_cc^-1`` and ``L L^T = S_tt - A S_ct``.

    Returns:
        ``(A, L)`` with shapes ``(dt, dc)`` and ``(dt, dt)``.
    """
    s_cc = corr[:n_context, :n_context]
    s_tc = corr[n_context:, :n_context]
    s_tt = corr[n_context:, n_context:]
    if n_context == 0:
        return np.zeros((s_tt.shape[0], 0)), matrix_sqrt(s_tt)
    # A ridge on the context block: parents often hold near-duplicate columns (weather's time_hour and its year,
    # month, day, hour), which make S_cc nearly singular; without it the regression amplifies the jitter of
    # discrete scores into extreme conditional means (every count at 0 or at its maximum).
    ridge = 0.05
    a = np.linalg.solve(s_cc + ridge * np.eye(n_context), s_tc.T).T
    resid = s_tt - a @ s_tc.T
    return a, matrix_sqrt(resid)


def dependence_order(bucket: np.ndarray, z: np.ndarray, n_buckets: int) -> np.ndarray | None:
    """Buckets ordered along the first principal direction of their mean scores ``z`` (NaN = missing).

    Args:
        bucket: each row's bucket id, ``-1`` for rows without one.
        z: ``(rows, anchors)`` normal scores of the other columns.
        n_buckets: number of buckets.

    Returns:
        A permutation of bucket ids, or None when the buckets' means do not differ (no dependence to follow).
    """
    has = bucket >= 0
    ids = bucket[has]
    scores = z[has]
    weight = np.bincount(ids, minlength=n_buckets).astype(np.float64)
    if (weight > 0).sum() < 3:
        return None
    present = ~np.isnan(scores)
    filled = np.where(present, scores, 0.0)
    # one sparse indicator matrix (a single 1 per row) sums the scores of every bucket at once
    member = sparse.csr_matrix(
        (np.ones(ids.size), (np.arange(ids.size), ids)), shape=(ids.size, n_buckets)
    ).T.tocsr()
    sums = np.asarray(member @ filled)
    counts = np.asarray(member @ present.astype(np.float64))
    means = np.where(counts > 0, sums / np.maximum(counts, 1.0), 0.0)
    total = weight.sum()
    centred = means - (weight @ means) / total
    scatter = (centred * weight[:, None]).T @ centred / total
    w, v = np.linalg.eigh(scatter)
    if w[-1] < 1e-4:  # bucket means within noise of each other
        return None
    projection = centred @ v[:, -1]
    return np.argsort(projection, kind="stable")
