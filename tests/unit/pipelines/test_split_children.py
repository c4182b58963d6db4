"""Child blocks are cut so that a worker holds at most ``generation.block_rows`` rows, whatever the parents."""

from __future__ import annotations

import numpy as np

from pipelines.stages.generate import split_children


def test_a_small_parent_block_stays_one_block() -> None:
    counts = np.array([3, 0, 2, 5])
    assert split_children(counts, 10) == [(0, 4, 10)]
    assert split_children(np.zeros(0, np.int64), 10) == [(0, 0, 0)]


def test_cuts_cover_every_parent_once_and_hold_at_most_the_limit() -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(4, size=20_000)
    cuts = split_children(counts, 8192)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(counts)
    assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:], strict=False))  # contiguous, no parent twice
    assert all(n <= 8192 for _, _, n in cuts)
    assert [n for _, _, n in cuts] == [int(counts[lo:hi].sum()) for lo, hi, _ in cuts]
    assert sum(n for _, _, n in cuts) == counts.sum()
    assert len(cuts) <= int(np.ceil(counts.sum() / 8192)) * 2  # blocks are filled, not one per parent


def test_a_parent_with_more_children_than_the_limit_is_a_block_alone() -> None:
    counts = np.array([2, 50, 3, 3, 0, 40])
    assert split_children(counts, 10) == [(0, 1, 2), (1, 2, 50), (2, 5, 6), (5, 6, 40)]
