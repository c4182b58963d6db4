"""Sampling under conditions: rebalanced shares of a column's values, or rows under fixed values.

Works with any :class:`~synth_engine.protocol.TableModel`, copula or neural, by selection: each output row gets a
wanted value (drawn from the wanted shares), the model draws candidate rows, and a candidate that holds the wanted value is kept: from one pool of
``k * rows`` candidates without a context, from ``k`` candidates under the row's own context row with one. A row kept this way follows
the model's conditional distribution given that value exactly (rejection sampling), so the rest of the row, and
the children generated under it, follow the model. ``k`` is chosen from the model's own shares, measured on a
pilot draw, and capped at ``max_factor``; a row none of whose candidates holds its value keeps the first one, and
the shares reached are returned next to the wanted ones, so a shortfall is reported, never hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import ModelError
from synth_engine.protocol import TableModel

MAX_FACTOR = 64
"""At most this many candidate rows are drawn per output row."""

_PILOT_ROWS = 4_096
_ROUNDS = 16
"""``sample_where`` draws at most this many rounds of ``n * max_factor`` candidates."""


@dataclass
class Reached:
    """What one conditioned draw reached: wanted and reached shares per value, and rows left unconditioned."""

    column: str
    wanted: dict[str, float]
    reached: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    missed: int = 0  # rows none of whose candidates held the wanted value (they keep the model's draw)


def sample_with_shares(
    model: TableModel,
    column: str,
    shares: Mapping[str, float],
    *,
    n: int | None = None,
    context: pa.Table | None = None,
    seed: int,
    max_factor: int = MAX_FACTOR,
) -> tuple[pa.Table, Reached]:
    """Sample like ``model.sample`` with ``column``'s values in ``shares`` (values as text; shares sum to 1).

    Values not named keep no share. The output has one row per context row (or ``n`` rows), in the same order.

    Raises:
        ModelError: the column is not one the model samples, or the shares are not a distribution.
    """
    if not shares or any(v < 0 for v in shares.values()) or not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6):
        raise ModelError(f"the shares of {column!r} must be >= 0 and sum to 1, got {dict(shares)}")
    rows = context.num_rows if context is not None else int(n or 0)
    rng = np.random.Generator(np.random.PCG64(seed))
    values = list(shares)
    wanted_idx = rng.choice(len(values), size=rows, p=np.asarray([shares[v] for v in values], dtype=np.float64))
    if rows == 0:
        out = _draw(model, 0, None, seed)
        return out, Reached(column, dict(shares))
    pilot = _draw(model, min(_PILOT_ROWS, max(rows, 256)), _take(context, _PILOT_ROWS), seed + 1)
    if column not in pilot.column_names:
        raise ModelError(f"column {column!r} is not sampled by the model (it samples {', '.join(pilot.column_names)})")
    model_share = _shares(pilot.column(column), values)
    floor = 0.5 / pilot.num_rows
    if context is None:
        # one pool of candidates: value v needs rows * share_v of them, and the model gives rows * k * p_v
        k = int(min(max_factor, max(1, math.ceil(1.2 * max(shares[v] / max(model_share[v], floor) for v in values)))))
        candidates = _draw(model, rows * k, None, seed + 2)
        got = _value_index(candidates.column(column), values)
        take = np.zeros(rows, dtype=np.int64)
        spare = np.ones(len(got), dtype=bool)
        missed = 0
        for i in range(len(values)):  # a loop over the few wanted values, vectorised over rows
            slots = np.flatnonzero(wanted_idx == i)
            pool = np.flatnonzero(got == i)[: len(slots)]
            take[slots[: len(pool)]] = pool
            spare[pool] = False
            short = slots[len(pool) :]
            if len(short):  # too few candidates hold the value: the model's own draw, counted as missed
                fill = np.flatnonzero(spare)[: len(short)]
                take[short] = fill
                spare[fill] = False
                missed += len(short)
        chosen = candidates.take(pa.array(take))
    else:
        # under a context, each row's candidates share its context row: k draws so that the rarest wanted value
        # is missed by a row with probability at most 1 in 1,000
        p_min = min(max(model_share[v], floor) for v in values if shares[v] > 0)
        k = int(min(max_factor, max(1, math.ceil(math.log(1e-3) / math.log1p(-min(p_min, 0.999))))))
        repeated = context.take(pa.array(np.repeat(np.arange(rows), k)))
        candidates = _draw(model, rows * k, repeated, seed + 2)
        hit = _value_index(candidates.column(column), values).reshape(rows, k) == wanted_idx[:, None]
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), 0)
        chosen = candidates.take(pa.array(np.arange(rows) * k + first))
        missed = int((~hit.any(axis=1)).sum())
    reached = _shares(chosen.column(column), values)
    return chosen, Reached(column, dict(shares), reached, rows, missed)


def _draw(model: TableModel, n: int, context: pa.Table | None, seed: int) -> pa.Table:
    if context is not None:
        return model.sample(context=context, seed=seed)
    return model.sample(n=n, seed=seed)


def _take(context: pa.Table | None, n: int) -> pa.Table | None:
    return None if context is None else context.slice(0, min(n, context.num_rows))


def _value_index(values: pa.ChunkedArray | pa.Array, names: list[str]) -> np.ndarray:
    """Each value's position in ``names`` (compared as text), -1 for NULL and for values not named."""
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    idx = pc.index_in(text, value_set=pa.array(names, pa.string()))
    return np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _shares(values: pa.ChunkedArray | pa.Array, names: list[str]) -> dict[str, float]:
    idx = _value_index(values, names)
    counts = np.bincount(idx[idx >= 0], minlength=len(names))
    total = max(len(idx), 1)
    return {v: float(counts[i]) / total for i, v in enumerate(names)}


def sample_where(
    model: TableModel,
    where: Mapping[str, str],
    *,
    n: int,
    context: pa.Table | None = None,
    seed: int,
    max_factor: int = MAX_FACTOR,
) -> tuple[pa.Table, int]:
    """``n`` rows whose columns hold the values in ``where`` (compared as text), the rest following the model.

    Candidates are drawn in rounds (``context``, when given, holds parent rows drawn from at random, one per
    candidate), and the first ``n`` that hold every value are kept. Each row carries the context row it was
    conditioned on (its columns appended after the model's). Returns the rows and how many were found:
    fewer than ``n`` when the model gives the combination too rarely even after ``16 * max_factor`` candidates
    per wanted row.

    Raises:
        ModelError: a column the model does not sample.
    """
    rng = np.random.Generator(np.random.PCG64(seed))

    def draw(rows: int, s: int) -> pa.Table:
        if context is None:
            return _draw(model, rows, None, s)
        ctx = context.take(pa.array(rng.integers(0, context.num_rows, rows)))
        out = _draw(model, rows, ctx, s)
        for name in ctx.column_names:
            out = out.append_column(name, ctx.column(name))
        return out

    def matches(table: pa.Table) -> np.ndarray:
        ok = np.ones(table.num_rows, dtype=bool)
        for column, value in where.items():
            if column not in table.column_names:
                raise ModelError(
                    f"column {column!r} is not sampled by the model (it samples {', '.join(table.column_names)})"
                )
            ok &= _value_index(table.column(column), [value]) == 0
        return ok

    pilot = draw(min(_PILOT_ROWS, max(n, 256)), seed + 1)
    rate = max(float(matches(pilot).mean()), 0.5 / pilot.num_rows)
    k = int(min(max_factor, max(1, math.ceil(1.2 / rate))))
    found: list[pa.Table] = []
    have = drawn = 0
    rounds = 0
    while have < n and drawn < n * max_factor * _ROUNDS:  # rounds of at most n * max_factor candidates
        candidates = draw(n * k, seed + 2 + rounds)
        hits = np.flatnonzero(matches(candidates))[: n - have]
        found.append(candidates.take(pa.array(hits)))
        have += len(hits)
        drawn += candidates.num_rows
        rounds += 1
    return pa.concat_tables(found), have
