"""DP versions of the statistics a table model learns: every one a Gaussian mechanism with explicit sensitivity.

Each function takes ``std``, the noise standard deviation for a sensitivity of 1 (the caller multiplies its noise
multiplier by the statistic's L2 sensitivity), and a numpy generator. Bins are always fixed in advance (a grid
that does not depend on the data, or one chosen by an earlier DP release), so keeping the bins whose noisy count
clears a threshold is post-processing; only a vocabulary, whose categories come from the data, needs a selection
threshold calibrated to a delta.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import norm

LOG_BINS = 64
"""Signed powers of two covered by the coarse range histogram: ``|x| < 2**64``."""

RANGE_BINS = 64
"""Bins of the histogram that narrows a numeric range."""

VALUE_BINS = 128
"""Bins of a continuous column's final histogram."""

MAX_EXACT = VALUE_BINS
"""An integer range of at most this many values gets one bin per value (kept exact, like the non-DP marginal)."""

KEEP_SIGMAS = 3.0
"""A range bin is kept when its noisy count exceeds this many noise standard deviations."""

VALUE_SIGMAS = 2.0
"""A value or children-per-parent bin below this many noise standard deviations is treated as empty."""

BIN_SIGMAS = 5.0
"""The values other than point masses get one histogram bin per this many noise deviations of their (noisy)
count, up to :data:`VALUE_BINS`: fewer, fuller bins when the noise is large for the rows (their edges at the
range histogram's quantiles)."""

TAIL_SIGMAS = 1.0
"""A numeric marginal's range grows through neighbouring range bins above this many noise deviations (the tails)."""

EXACT_MIN = 16
"""An integer range of at most this many values always gets one bin per value."""

COUNT_UNIT = 16
"""Children-per-parent counts below this get one bin each; above, one bin per power of two."""

COUNT_MAX_POW = 24
"""The largest children-per-parent count bin is ``[2**23, 2**24)``; larger counts are clipped into it."""

TOP_COUNTS = 16
"""The largest children-per-parent counts released one by one (sorted), beside the histogram of the others."""

HEAVY_SIGMAS = 2.5
"""A top count is kept when its isotonic fit clears this many noise deviations: 16 entries of padding alone put
one over it with probability about 0.6% (2 deviations: 2.3%)."""

PUBLIC_COUNTS = 256
"""Parents of a public parent table whose counts are released one by one (see :func:`count_histogram`)."""

TAIL_RUN = 8
"""Count bins past the kept ones merged at most into one wide bin (see :func:`count_histogram`)."""

TAIL_SIGMAS_MERGED = 2.5
"""A run of tail bins is kept when its noisy sum clears this many deviations of the sum (an empty run of eight
clears it with probability about 2.5%)."""


def noisy_count(n: float, std: float, rng: np.random.Generator) -> float:
    """A count with Gaussian noise, clipped at 0."""
    return max(0.0, float(n) + float(rng.normal(0.0, std)))


def null_share(nulls: int, n: int, std: float, rng: np.random.Generator) -> float:
    """The NULL share from noisy NULL and non-NULL counts (one row changes one of them: sensitivity 1)."""
    a = noisy_count(nulls, std, rng)
    b = noisy_count(n - nulls, std, rng)
    return a / (a + b) if a + b > 0 else 0.0


def selection_threshold(std: float, delta: float) -> float:
    """The count a category must clear so that one seen once is released with probability at most ``delta``."""
    return 1.0 + std * float(norm.isf(max(delta, 1e-300)))


def vocabulary(values: pa.Array, std: float, delta: float, rng: np.random.Generator) -> tuple[pa.Array, np.ndarray]:
    """Categories whose noisy count clears the selection threshold, with their noisy counts.

    Boolean columns have a public domain (False, True): their counts are noised and never thresholded.
    """
    vc = pc.value_counts(values)
    cats = vc.field("values")
    counts = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_boolean(values.type):
        domain = pa.array([False, True])
        idx = pc.index_in(domain, value_set=cats).fill_null(-1).to_numpy(zero_copy_only=False)
        full = np.array([counts[i] if i >= 0 else 0.0 for i in idx])
        noisy = np.maximum(full + rng.normal(0.0, std, size=2), 0.0)
        keep = noisy > 0
        if not keep.any():
            keep[:] = True
            noisy[:] = 1.0
        return domain.filter(pa.array(keep)), noisy[keep]
    noisy = counts + rng.normal(0.0, std, size=counts.size)
    keep = noisy > selection_threshold(std, delta)
    return cats.filter(pa.array(keep)), noisy[keep]


def _log_edges() -> np.ndarray:
    """Edges of the signed log-2 bins: ..., -4, -2, -1, 1, 2, 4, ... (one bin ``(-1, 1)`` in the middle)."""
    pos = 2.0 ** np.arange(0, LOG_BINS + 1)
    return np.concatenate([-pos[::-1], pos])


def _histogram(x: np.ndarray, edges: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    counts, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
    return np.asarray(counts + rng.normal(0.0, std, size=counts.size))


def _range_threshold(bins: int, std: float) -> float:
    return max(KEEP_SIGMAS, float(norm.isf(1e-4 / bins))) * std


def _occupied(noisy: np.ndarray, edges: np.ndarray, std: float, grow_sigmas: float = VALUE_SIGMAS) -> tuple[float, float]:
    """The outermost bins whose noisy count clears a threshold that an empty bin, among all of them, passes
    with probability about 1e-4 (a far-off empty bin must not stretch the range)."""
    keep = np.flatnonzero(noisy > _range_threshold(noisy.size, std))
    if keep.size == 0:
        keep = np.array([int(np.argmax(noisy))])
    lo, hi = int(keep[0]), int(keep[-1])
    # then grow the span through neighbouring bins that clear a lower bar (VALUE_SIGMAS): values spread thin over
    # many bins (an altitude over several powers of two) are not cut to the densest one, and a far-off empty bin
    # that happens to clear it cannot stretch the span, since only contiguous bins are taken
    grow = grow_sigmas * std
    while lo > 0 and noisy[lo - 1] > grow:
        lo -= 1
    while hi < noisy.size - 1 and noisy[hi + 1] > grow:
        hi += 1
    return float(edges[lo]), float(edges[hi + 1])


def numeric_range(x: np.ndarray, std: float, rng: np.random.Generator) -> tuple[float, float]:
    """A DP range ``[lo, hi]`` of ``x``: a signed log-2 histogram, then a linear one over its occupied bins.

    Two releases, each of sensitivity 1.
    """
    span = _range(x, std, std, rng, allow_empty=False)
    assert span is not None
    return span[0], span[1]


def _range(
    x: np.ndarray,
    std: float,
    linear_std: float,
    rng: np.random.Generator,
    *,
    allow_empty: bool,
    grow_sigmas: float = VALUE_SIGMAS,
) -> tuple[float, float, np.ndarray, np.ndarray, float] | None:
    """:func:`numeric_range` (the coarse histogram's noise ``std``, the linear one's ``linear_std``), with the second
    histogram's edges and noisy counts and the noisy count of the values inside the first's occupied bins (few
    bins: little noise); with ``allow_empty``, None when no coarse bin clears its threshold (the second histogram
    is then not released)."""
    coarse = _histogram(x, _log_edges(), std, rng)
    if allow_empty and not np.any(coarse > _range_threshold(coarse.size, std)):
        return None
    lo, hi = _occupied(coarse, _log_edges(), std, grow_sigmas)
    log_edges = _log_edges()
    coarse_n = float(coarse[(log_edges[:-1] >= lo) & (log_edges[1:] <= hi)].sum())
    edges = np.linspace(lo, hi, RANGE_BINS + 1)
    fine = _histogram(x, edges, linear_std, rng)
    narrow_lo, narrow_hi = _occupied(fine, edges, linear_std, grow_sigmas)
    # post-processing: when the values spread so thin over the linear bins that the bins clearing the threshold
    # hold under half of the noisy mass (few rows for the noise), narrowing would cut most values: keep the
    # coarse range instead
    inside = (edges[:-1] >= narrow_lo) & (edges[1:] <= narrow_hi)
    mass = np.maximum(fine, 0.0)
    if mass.sum() > 0 and mass[inside].sum() < 0.5 * mass.sum():
        return lo, hi, edges, fine, coarse_n
    return narrow_lo, narrow_hi, edges, fine, coarse_n


def numeric_values(
    x: np.ndarray, lo: float, hi: float, integral: bool, std: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | tuple[None, tuple[np.ndarray, np.ndarray]]:
    """One DP histogram of ``x`` over ``[lo, hi]`` (sensitivity 1).

    Returns:
        ``(values, weights)`` for an integer range of at most :data:`MAX_EXACT` values (one bin per value), else
        ``(None, (p, q))``: quantile knots (probabilities, values) of the noisy histogram.
    """
    if integral:
        a, b = math.floor(lo), math.ceil(hi)
        if b - a + 1 <= MAX_EXACT:
            grid = np.arange(a, b + 1, dtype=np.float64)
            counts = np.bincount((np.clip(np.rint(x), a, b) - a).astype(np.int64), minlength=grid.size)
            noisy = counts + rng.normal(0.0, std, size=grid.size)
            # post-processing: a bin under VALUE_SIGMAS noise deviations is taken for empty, so that the noise of
            # the empty values (a positive half-normal each) does not spread a uniform floor over the range
            keep = noisy > VALUE_SIGMAS * std
            if not keep.any():
                keep[int(np.argmax(noisy))] = True
            return grid[keep], np.maximum(noisy[keep], 1e-9)
    if hi <= lo:
        return None, (np.array([0.0, 1.0]), np.array([lo, lo]))
    edges = np.linspace(lo, hi, VALUE_BINS + 1)
    noisy = _histogram(x, edges, std, rng)
    noisy = np.where(noisy > VALUE_SIGMAS * std, noisy, 0.0)  # post-processing: no noise floor (see above)
    if noisy.sum() <= 0:
        noisy = np.ones_like(noisy)
    keep = noisy > 0
    cum = np.concatenate([[0.0], np.cumsum(noisy[keep]) / noisy.sum()])
    cum[-1] = 1.0
    q = np.concatenate([[edges[:-1][keep][0]], edges[1:][keep]])
    return None, (cum, q)


def numeric_atoms(x: np.ndarray, std: float, delta: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The point masses of ``x``: the exact values whose noisy count clears the selection threshold, with their
    noisy counts (sorted by value).

    One release of sensitivity 1 (a row changes the count of its own value only), thresholded like a
    :func:`vocabulary`: a value held by a single row is released with probability at most ``delta``.
    """
    if x.size == 0:
        return np.empty(0), np.empty(0)
    distinct, counts = np.unique(x, return_counts=True)
    noisy = counts + rng.normal(0.0, std, size=counts.size)
    keep = noisy > selection_threshold(std, delta)
    return distinct[keep], noisy[keep]


def numeric_mixture(
    x: np.ndarray,
    integral: bool,
    noise: float | tuple[float, float, float, float],
    delta: float,
    rng: np.random.Generator,
    *,
    may_be_empty: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[None, tuple[np.ndarray, np.ndarray]]:
    """A DP marginal of sorted ``x`` as point masses plus a histogram of the other values.

    ``noise`` is the standard deviation of every release, or of each: ``(point masses, coarse range, linear range, final)``.
    Four releases, each of sensitivity 1: the point masses (:func:`numeric_atoms`, thresholded), then the range
    of the other values (two histograms, :func:`numeric_range`; not released when none clears the coarse
    threshold and there are point masses), then their histogram (:func:`numeric_values`' bins). Which rows are
    "other" depends only on the released point masses, so each later histogram still has sensitivity 1.

    With ``may_be_empty`` (a nullable column), values that no release locates (no point mass, and no coarse range
    bin over its threshold: too few values for the noise) give no marginal at all, two empty arrays, rather than a
    range at the noisiest bin, which would put every generated value at a place the data never said (23 speeds
    out of 3,322 planes came back as -255 .. -132); the caller then generates NULLs, as for a vocabulary that no
    category clears.

    Returns:
        ``(values, weights)`` when every value is a point mass or an integer of a range of at most
        :data:`MAX_EXACT` values (both empty when nothing was located, see above), else ``(None, (p, q))``: knots
        of a piecewise-linear quantile function in which a point mass is a flat segment (tied values).
    """
    if isinstance(noise, tuple):
        std_atoms, std_coarse, std_linear, std = noise
    else:
        std_atoms = std_coarse = std_linear = std = float(noise)
    atoms, atom_w = numeric_atoms(x, std_atoms, delta, rng)
    rest = x[~np.isin(x, atoms)] if atoms.size else x
    span = _range(
        rest, std_coarse, std_linear, rng, allow_empty=atoms.size > 0 or may_be_empty, grow_sigmas=TAIL_SIGMAS
    )
    if span is None:
        return atoms, atom_w
    lo, hi, fine_edges, fine, n_rest = span
    # post-processing of the range's histograms: how many other values there are (the coarse one's occupied bins),
    # and where their mass lies (the linear one)
    if atoms.size and n_rest <= VALUE_SIGMAS * std_coarse:
        return atoms, atom_w  # too few other values to place: the final histogram is not released
    bins = int(np.clip(round(n_rest / (BIN_SIGMAS * std)), 1, VALUE_BINS))
    if integral:
        a, b = math.floor(lo), math.ceil(hi)
        if b - a + 1 <= max(bins, min(MAX_EXACT, EXACT_MIN)):
            grid = np.arange(a, b + 1, dtype=np.float64)
            counts = np.bincount((np.clip(np.rint(rest), a, b) - a).astype(np.int64), minlength=grid.size)
            noisy = counts + rng.normal(0.0, std, size=grid.size)
            # a point mass is not among the other values: its bin is noise alone (post-processing)
            keep = (noisy > VALUE_SIGMAS * std) & ~np.isin(grid, atoms)
            if not keep.any() and atoms.size == 0:
                keep[int(np.argmax(noisy))] = True
            values = np.concatenate([atoms, grid[keep]])
            weights = np.concatenate([atom_w, np.maximum(noisy[keep], 1e-9)])
            order = np.argsort(values, kind="stable")
            return values[order], weights[order]
    if hi <= lo:
        # one point: a single count (a histogram of one bin)
        n = float(rest.size + rng.normal(0.0, std))
        if n <= VALUE_SIGMAS * std and atoms.size:
            return atoms, atom_w
        return _merge_points(atoms, atom_w, np.array([lo]), np.array([max(n, 1e-9)]))
    inside = (fine_edges[:-1] >= lo) & (fine_edges[1:] <= hi)
    mass = np.where(inside & (fine > TAIL_SIGMAS * std_linear), fine, 0.0)
    edges = _mass_edges(fine_edges, mass, lo, hi, bins)
    noisy = np.maximum(_histogram(rest, edges, std, rng), 0.0)
    if noisy.sum() <= 0:
        if atoms.size:
            return atoms, atom_w
        noisy = np.ones_like(noisy)
    return None, mixture_knots(atoms, atom_w, edges[:-1], edges[1:], noisy)


def _mass_edges(fine_edges: np.ndarray, mass: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Edges of ``bins`` bins over ``[lo, hi]`` holding about equal shares of ``mass`` (counts over the bins
    ``fine_edges``, spread evenly inside each), so that every final bin gets about as many values."""
    if bins <= 1 or mass.sum() <= 0:
        return np.linspace(lo, hi, bins + 1)
    cum = np.concatenate([[0.0], np.cumsum(mass)]) / mass.sum()
    at = np.interp(np.linspace(0.0, 1.0, bins + 1), cum, fine_edges)
    held = np.flatnonzero(mass > 0)  # the outer edges where the mass starts and ends (values beyond go in the end bins)
    at[0], at[-1] = fine_edges[held[0]], fine_edges[held[-1] + 1]
    edges = np.unique(np.clip(at, lo, hi))
    return edges if edges.size >= 2 else np.array([lo, hi])


def _merge_points(
    a: np.ndarray, aw: np.ndarray, b: np.ndarray, bw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    values, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    weights = np.bincount(inverse, weights=np.concatenate([aw, bw]), minlength=values.size)
    return values, weights


def mixture_knots(
    atoms: np.ndarray, atom_w: np.ndarray, lows: np.ndarray, highs: np.ndarray, bin_w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(p, q)`` of the quantile function of point masses ``atoms`` (weights ``atom_w``) plus bins
    ``[lows, highs)`` of uniform density (weights ``bin_w``; empty bins are skipped, so the function jumps over a
    gap: two knots share a probability). A point mass is a flat segment; a bin that holds one is split at it.
    """
    occupied = bin_w > 0
    lows, highs, bin_w = lows[occupied], highs[occupied], bin_w[occupied]
    pieces: list[tuple[float, float, float]] = []
    cuts = np.sort(atoms)
    for lo_, hi_, w in zip(lows.tolist(), highs.tolist(), bin_w.tolist(), strict=True):
        inner = cuts[(cuts > lo_) & (cuts < hi_)]
        bounds = [lo_, *inner.tolist(), hi_]
        width = hi_ - lo_
        for left, right in zip(bounds[:-1], bounds[1:], strict=False):
            pieces.append((left, right, w * (right - left) / width))
    pieces += [(float(a), float(a), float(w)) for a, w in zip(atoms.tolist(), atom_w.tolist(), strict=True)]
    pieces.sort(key=lambda piece: (piece[0], piece[1]))
    total = sum(w for _, _, w in pieces)
    p, q = [0.0], [pieces[0][0]]
    for left, right, w in pieces:
        if left != q[-1]:
            p.append(p[-1])  # a gap: jump to the piece's start
            q.append(left)
        p.append(p[-1] + w / total)
        q.append(right)
    p_arr, q_arr = np.asarray(p), np.asarray(q)
    p_arr[-1] = 1.0
    return np.minimum(p_arr, 1.0), q_arr


def count_bins() -> tuple[np.ndarray, np.ndarray]:
    """Children-per-parent bins ``[low, high]``: 0 .. 15 one each, then ``[2**k, 2**(k+1) - 1]``."""
    lows = [*range(COUNT_UNIT), *(2**k for k in range(int(math.log2(COUNT_UNIT)), COUNT_MAX_POW))]
    highs = [*range(COUNT_UNIT), *(2 ** (k + 1) - 1 for k in range(int(math.log2(COUNT_UNIT)), COUNT_MAX_POW))]
    return np.array(lows, dtype=np.int64), np.array(highs, dtype=np.int64)


def count_histogram(
    counts: np.ndarray, std: float, rng: np.random.Generator, *, public_parents: bool = False
) -> np.ndarray:
    """Sorted children-per-parent counts rebuilt from one DP release about ``counts`` (zeros included).

    The release has two parts, each parent in exactly one of them:

    - the :data:`TOP_COUNTS` largest positive counts, sorted (padded with zeros), each with Gaussian noise: the
      heavy parents (3 airports with every flight, 16 airlines) keep their counts, which no histogram of parents
      can show at this noise (a bin of 3 parents is under the noise);
    - a histogram of the other parents' counts on :func:`count_bins` (zeros included), each bin with noise.

    Sensitivity: a child row added or removed changes one parent's count by one. A parent of the top part stays
    there and changes one entry by 1, or trades places with the first parent of the rest, whose count equals
    the new one (the sorted top part is then unchanged, the rest moves one parent between two bins); a parent
    of the rest moves between two bins, or enters the top part (one entry up by 1, one parent out of a bin). A
    childless parent row added or removed changes the zero bin by 1. The L2 sensitivity of the whole release is
    ``sqrt(2)`` in every case, as for a histogram alone: the caller gives ``std`` for it.

    Post-processing: the top part is made non-increasing (isotonic regression, the constrained inference of Hay
    et al. 2009 for degree sequences) and its entries under :data:`HEAVY_SIGMAS` deviations are dropped (padding,
    or a count the noise hides). A histogram bin is kept when it clears a threshold that an empty bin, among all
    of them, passes with probability about 1%; bins between two kept ones keep their (positive) noisy count, and
    the span grows through neighbours over :data:`VALUE_SIGMAS` deviations; past its end, runs of up to
    :data:`TAIL_RUN` bins are merged while their sum clears :data:`TAIL_SIGMAS_MERGED` deviations of the sum (a
    thin tail of many counts, each bin under the noise, is kept as one wide bin instead of cut). When no parent
    with children is left, the noisiest bin is kept, so a table with rows never loses them all. Each bin's parents
    are spread evenly over the bin's counts.

    ``public_parents``: the parent table is public (declared so, or copied), so its rows, hence how many parents
    there are, are no secret, and no parent row is added or removed. Up to :data:`PUBLIC_COUNTS` parents, every
    parent's count is then released, sorted, in one vector: a child row changes one entry by 1 (sensitivity 1, so
    the noise is ``std / sqrt(2)`` for the same cost), and the isotonic fit keeps exactly that many parents, the
    ones with few children included (16 airlines: the small ones are no longer dropped as padding).
    """
    ordered = np.sort(np.asarray(counts, dtype=np.int64))[::-1]
    if public_parents and 0 < ordered.size <= PUBLIC_COUNTS:
        fitted = _non_increasing(ordered + rng.normal(0.0, std / math.sqrt(2.0), size=ordered.size))
        out = np.maximum(np.rint(fitted), 0).astype(np.int64)
        if out.sum() == 0 and ordered.sum() > 0:
            out[0] = 1  # a table with rows never loses them all
        return np.sort(out)
    lows, highs = count_bins()
    positive = ordered[ordered > 0]
    top = np.zeros(TOP_COUNTS, dtype=np.float64)
    n_top = min(TOP_COUNTS, positive.size)
    top[:n_top] = positive[:n_top]
    rest = np.concatenate([positive[n_top:], ordered[ordered <= 0]])
    fitted = _non_increasing(top + rng.normal(0.0, std, size=TOP_COUNTS))
    heavy = np.rint(fitted[fitted > HEAVY_SIGMAS * std]).astype(np.int64)

    idx = np.searchsorted(lows, np.minimum(rest, highs[-1]), side="right") - 1
    hist = np.bincount(idx, minlength=lows.size).astype(np.float64)
    noisy = hist + rng.normal(0.0, std, size=lows.size)
    parents, tail = _count_bins_kept(noisy, std)
    if heavy.size == 0 and parents[1:].sum() == 0 and not tail and counts.sum() > 0:
        parents[1 + int(np.argmax(noisy[1:]))] = max(1, int(round(noisy[1:].max())))
    spans = [(int(lo), int(hi), int(m)) for lo, hi, m in zip(lows, highs, parents, strict=True) if m > 0] + tail
    out = [np.rint(lo + (hi - lo) * (np.arange(m) + 0.5) / m).astype(np.int64) for lo, hi, m in spans]
    out.append(heavy)
    merged = np.concatenate(out)
    return np.sort(merged) if merged.size else np.zeros(1, dtype=np.int64)


def _count_bins_kept(noisy: np.ndarray, std: float) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Parents per count bin from a noisy histogram (see :func:`count_histogram`), and the merged tail bins as
    ``(low, high, parents)``. Post-processing only."""
    lows, highs = count_bins()
    # an empty bin, among all of them, clears the threshold with probability about 1%: no spurious heavy parents
    threshold = max(VALUE_SIGMAS, float(norm.isf(0.01 / lows.size))) * std
    keep = noisy > threshold
    strong = np.flatnonzero(keep)
    tail: list[tuple[int, int, int]] = []
    if strong.size:
        lo, hi = int(strong[0]), int(strong[-1])
        keep[lo : hi + 1] |= noisy[lo : hi + 1] > 0  # between two kept bins: most likely not empty
        grow = VALUE_SIGMAS * std
        while lo > 0 and noisy[lo - 1] > grow:
            lo -= 1
            keep[lo] = True
        while hi < lows.size - 1 and noisy[hi + 1] > grow:
            hi += 1
            keep[hi] = True
        start, total = hi + 1, 0.0
        for j in range(hi + 1, lows.size):
            if j - start >= TAIL_RUN:
                break
            total += float(noisy[j])
            if total > TAIL_SIGMAS_MERGED * std * math.sqrt(j - start + 1):
                tail.append((int(lows[start]), int(highs[j]), round(total)))
                start, total = j + 1, 0.0
    return np.where(keep, np.rint(noisy), 0).astype(np.int64), tail


def _non_increasing(y: np.ndarray) -> np.ndarray:
    """The least-squares non-increasing fit of ``y`` (pool adjacent violators)."""
    values: list[float] = []
    sizes: list[int] = []
    for v in y.tolist():
        values.append(v)
        sizes.append(1)
        while len(values) > 1 and values[-2] < values[-1]:
            w = sizes[-2] + sizes[-1]
            values[-2] = (values[-2] * sizes[-2] + values[-1] * sizes[-1]) / w
            sizes[-2] = w
            values.pop()
            sizes.pop()
    return np.repeat(np.asarray(values, dtype=np.float64), sizes)


STEP_CANDIDATES = np.array(
    [1, 2, 5, 10, 15, 30, 60, 100, 300, 600, 900, 1_000, 1_800, 3_600, 86_400]
    + [10**k for k in range(4, 13)]
    + [60 * 10**6, 900 * 10**6, 1_800 * 10**6, 3_600 * 10**6, 86_400 * 10**6],
    dtype=np.int64,
)
"""Grid steps a learned key member may have (integers, seconds, milliseconds, microseconds: minutes to days)."""


def grid_step(values: np.ndarray, lo: int, std: float, rng: np.random.Generator) -> int:
    """The largest candidate step that (nearly) every value sits on, from noisy counts of values off each grid.

    One release per candidate, each of sensitivity 1: the caller records ``len(STEP_CANDIDATES)`` releases.
    """
    off = np.array([np.count_nonzero((values - lo) % s) for s in STEP_CANDIDATES], dtype=np.float64)
    noisy = off + rng.normal(0.0, std, size=off.size)
    fits = STEP_CANDIDATES[noisy < KEEP_SIGMAS * std]
    return int(fits.max()) if fits.size else 1


def covariance(z: np.ndarray, std: float, clip: float, rng: np.random.Generator) -> np.ndarray:
    """A correlation matrix from the noisy second moment of rows of ``z`` clipped to L2 norm ``clip``.

    One row changes ``sum z z^T`` by ``z z^T``, of Frobenius norm ``|z|^2 <= clip^2``: ``std`` is for a
    sensitivity of 1 and is multiplied by ``clip**2`` here. NaN scores count as 0.
    """
    return noisy_correlation(z, std, clip, rng)[0]


def noisy_correlation(
    z: np.ndarray, std: float, clip: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`covariance` (one release), with the standard deviation of the noise in each of its entries.

    The deviations are post-processing: the noise's scale over the noisy second moment's own diagonal (no real
    count is read).
    """
    z = np.nan_to_num(z, nan=0.0)
    norms = np.linalg.norm(z, axis=1)
    z = z * np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
    d = z.shape[1]
    noise = rng.normal(0.0, std * clip**2, size=(d, d))
    noise = np.triu(noise) + np.triu(noise, 1).T
    s = z.T @ z + noise
    diag = np.maximum(np.diag(s), max(1e-6 * max(z.shape[0], 1), std * clip**2))
    scale = np.sqrt(np.outer(diag, diag))
    corr = np.clip(s / scale, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    sd = std * clip**2 / scale
    np.fill_diagonal(sd, 0.0)
    return np.asarray(corr), np.asarray(sd)


def denoise_correlation(corr: np.ndarray, sd: np.ndarray, floor: float) -> np.ndarray:
    """A correlation matrix estimated from a noisy one whose entries carry Gaussian noise of deviations ``sd``
    (post-processing).

    Each entry is shrunk on its own by the non-negative garrote ``r (1 - sd^2 / r^2)^+``: an entry within one noise
    deviation of 0 (most likely noise) becomes 0, a strong one keeps nearly all of its value, where a common
    factor towards the identity would halve every correlation when the noise is large. Then the eigenvalues are
    floored at ``floor`` and the diagonal rescaled to 1, so that a block the conditional Gaussian inverts is not
    near-singular.
    """
    d = corr.shape[0]
    if d == 0:
        return corr
    from synth_engine._internal.gaussian import nearest_correlation

    r2 = np.maximum(corr**2, 1e-300)
    out = corr * np.maximum(0.0, 1.0 - sd**2 / r2)
    np.fill_diagonal(out, 1.0)
    return nearest_correlation(out, floor=floor, shrink=0.0)  # the garrote is the shrink: none on top
