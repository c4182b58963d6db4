"""Seeds derived from a run's seed and a path, so that every random draw is fixed by (seed, table, what, block)."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed derived from the run seed and a path such as (table, "rows", block)."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)
