"""Learned key members: values a model samples (a timestamp within its parent) made unique within their group.

A composite key such as ``weather(origin, time_hour)`` has a member that is *learned*, not generated: the model
samples ``time_hour`` conditioned on the airport. Independent samples collide, and dropping the collisions loses
rows and every child of those rows. Instead each member is placed on its *grid*, learned from the real column:

- one integer, date, time or timestamp member: the step grid ``lo + k * step`` (the step is the GCD of the real
  gaps, e.g. one hour), over the real range, and past its top only when a group needs more slots than it has;
- several non-text members: the pool of the real distinct tuples, in their sort order (so that
  ``(year, month, day, hour)`` only takes dates that exist);
- text members are never on a grid: a grid lives in the model store, which a user may share, and a text member's
  values are codes and names (key values), not points of a scale. They join the group instead (the model's value
  is kept and the other members move); when every learned member is text, a repeating row gets a new value in the
  first text member's format (:class:`~synth_engine.keys.formats.KeyFormat`: per-position alphabets, no value).

What a grid holds, then: numbers, dates and times of non-text members (a range and step, or their distinct
tuples: points of a calendar or scale that the table model learns anyway), the count of distinct text
combinations, and key formats. Never a text value.

Within each group (the key's other columns) the sampled values are ranked on the grid and colliding rows move to
the nearest free slots (upwards, then down from the top): a draw without replacement near the model's values, in
O(n log n), with no Python loop. Rows are dropped only when a pool-grid group asks for more slots than the pool has;
the caller caps child counts beforehand (:meth:`MemberGrid.slots`), so that does not happen in a run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import ModelError
from synth_engine._internal.arrow_numbers import plain
from synth_engine.keys.formats import KeyFormat

log = logging.getLogger(__name__)

_MAX_POOL = 500_000
_MAX_CODE = 2**62
_TEXT_ROUNDS = 8


@dataclass(frozen=True)
class MemberGrid:
    """The values a key's learned members may take.

    Attributes:
        columns: the learned members, in key order.
        lo: the step grid's first value (in the member's integer storage: days, microseconds...).
        step: the step grid's step.
        top: the last slot of the real range (``(hi - lo) // step``); slots past it are used only when needed.
        pool: the sorted distinct real tuples of the non-text members (pool grid), or None for a step grid.
        text: the text members (part of the group, never on the grid).
        text_formats: when every member is text, their key formats (a repeating row gets a new value of the first).
        variety: how many distinct combinations of the text members the real rows have (1 without text members).
    """

    columns: tuple[str, ...]
    lo: int = 0
    step: int = 1
    top: int = 0
    pool: pa.Table | None = None
    text: tuple[str, ...] = ()
    text_formats: tuple[KeyFormat, ...] = ()
    variety: int = 1

    @classmethod
    def learn(cls, real: pa.Table, columns: Sequence[str]) -> MemberGrid:
        """Learn the grid of ``columns`` from real rows (a sample is enough)."""
        cols = tuple(columns)
        if not cols:
            raise ModelError("a member grid needs at least one column")
        text = tuple(c for c in cols if _is_text_type(real.schema.field(c).type))
        ranked = [c for c in cols if c not in text]
        variety = 1
        if text:
            combos = pl.from_arrow(real.select(list(text)))
            assert isinstance(combos, pl.DataFrame)
            variety = max(1, combos.drop_nulls().unique().height)
        if not ranked:
            formats = tuple(KeyFormat.learn(real.column(c)) for c in text)
            return cls(cols, text=text, text_formats=formats, variety=variety)
        if len(ranked) == 1 and _is_grid_type(real.schema.field(ranked[0]).type):
            values = _grid_values(real.column(ranked[0]))
            valid = np.asarray(real.column(ranked[0]).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            values = values[valid]
            if len(values) == 0:
                return cls(cols, 0, 1, 0, text=text, variety=variety)
            lo, hi = int(values.min()), int(values.max())
            step = int(np.gcd.reduce(values - lo)) or 1
            return cls(cols, lo, step, (hi - lo) // step, text=text, variety=variety)
        df = pl.from_arrow(real.select(ranked))
        assert isinstance(df, pl.DataFrame)
        pool = df.drop_nulls().unique().sort(ranked)
        if pool.height > _MAX_POOL:  # evenly thinned: keeps the spread of the values
            pool = pool[np.linspace(0, pool.height - 1, _MAX_POOL).astype(np.int64)]
        return cls(cols, pool=pool.to_arrow().cast(real.select(ranked).schema), text=text, variety=variety)

    @property
    def ranked(self) -> tuple[str, ...]:
        """The members placed on the grid (every member that is not text)."""
        return tuple(c for c in self.columns if c not in self.text)

    @property
    def slots(self) -> int | None:
        """How many distinct values one group can take (None: as many as needed, past the real range).

        With text members, a pool grid's slots repeat for each real combination of them (the model spreads rows
        over those; a combination that gets more rows than the pool has loses the extra ones).
        """
        return None if self.pool is None else self.pool.num_rows * self.variety

    def describe(self) -> str:
        if not self.ranked:
            return f"({', '.join(self.text)}) in the format {self.text_formats[0].describe()}"
        if self.pool is None:
            return f"{self.ranked[0]} on a grid of step {self.step} over {self.top + 1} slots"
        return f"({', '.join(self.ranked)}) among {self.pool.num_rows} real value combinations"


def unique_members(table: pa.Table, key: Sequence[str], grid: MemberGrid, *, seed: int) -> tuple[pa.Table, int]:
    """Make ``key`` unique by moving its learned members (``grid.columns``) to free slots within each group.

    The group of a row is its values of the key's other columns. Rows with a NULL in a key column are left alone
    (NULLs never collide in SQL). Row order and the other columns are kept. Deterministic in ``seed``.

    Returns:
        The table, and how many rows were dropped for want of a free slot (pool grids only; 0 when the caller
        capped the group sizes at :attr:`MemberGrid.slots`).

    Raises:
        ModelError: when a named column is not in the table.
    """
    placed, keep = place_members(table, key, grid, seed=seed)
    dropped = int((~keep).sum())
    return (placed.filter(pa.array(keep)) if dropped else placed), dropped


def place_members(
    table: pa.Table, key: Sequence[str], grid: MemberGrid, *, seed: int
) -> tuple[pa.Table, np.ndarray]:
    """:func:`unique_members` without the filtering: every row, and a mask of the rows that found a free slot."""
    key = list(key)
    missing = [c for c in {*key, *grid.columns} if c not in table.column_names]
    if missing:
        raise ModelError(
            f"unique key ({', '.join(key)}): column(s) {', '.join(map(repr, sorted(missing)))} are not in the "
            f"generated rows (columns: {', '.join(table.column_names)})"
        )
    n = table.num_rows
    ok = np.ones(n, dtype=bool)
    for c in key:
        ok &= np.asarray(table.column(c).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not ok.any():
        return table, np.ones(n, dtype=bool)
    if not grid.ranked:
        return _unique_text(table, key, grid, seed)
    rank = _ranks(table, grid)
    group_cols = [c for c in key if c not in grid.ranked]
    rng = np.random.Generator(np.random.PCG64(seed))
    frame = pl.from_arrow(table.select(group_cols)) if group_cols else pl.DataFrame({"__one": np.zeros(n)})
    assert isinstance(frame, pl.DataFrame)
    groups = group_cols or ["__one"]
    top = grid.top if grid.pool is None else grid.pool.num_rows - 1
    frame = frame.with_columns(
        __w=pl.Series(rank), __row=pl.Series(np.arange(n)), __tie=pl.Series(rng.random(n)), __ok=pl.Series(ok)
    ).filter(pl.col("__ok"))
    k = pl.int_range(pl.len()).over(groups)
    size = pl.len().over(groups)
    # the highest usable slot: the real range, or (step grids) as far past it as a big group needs
    ceiling = pl.lit(top) if grid.pool is not None else pl.max_horizontal(pl.lit(top), pl.col("__n") - 1)
    solved = (
        frame.sort([*groups, "__w", "__tie"])
        .with_columns(__k=k, __n=size)
        .with_columns(__up=(pl.col("__w") - pl.col("__k")).cum_max().over(groups) + pl.col("__k"))
        .with_columns(__t=pl.min_horizontal("__up", ceiling - (pl.col("__n") - 1 - pl.col("__k"))))
        .select("__row", "__w", "__t")
    )
    rows = solved["__row"].to_numpy()
    new_rank = rank.copy()
    new_rank[rows] = np.asarray(solved["__t"].to_numpy(), dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    keep[rows[new_rank[rows] < 0]] = False
    moved = int((solved["__t"] != solved["__w"]).sum())
    if moved:
        log.debug("unique key (%s): moved %d rows to a free slot of %s", ", ".join(key), moved, grid.describe())
    return _set_ranks(table, grid, np.where(ok & keep, new_rank, -1), ok & keep), keep


def _ranks(table: pa.Table, grid: MemberGrid) -> np.ndarray:
    """Each row's slot on the grid: the step index, or the position of the first pool tuple >= the row's."""
    if grid.pool is None:
        values = _grid_values(table.column(grid.ranked[0]))
        return np.maximum(0, np.round((values - grid.lo) / grid.step)).astype(np.int64)
    pool_codes, row_codes = _lex_codes(grid.pool, table.select(list(grid.columns)))
    pos = np.searchsorted(pool_codes, row_codes, side="left")
    return np.minimum(pos, len(pool_codes) - 1).astype(np.int64)


def _lex_codes(pool: pa.Table, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Mixed-radix integer codes that sort like the tuples, for the pool and for rows (ranked on pool values)."""
    pool_code = np.zeros(pool.num_rows, dtype=np.int64)
    row_code = np.zeros(rows.num_rows, dtype=np.int64)
    radix_total = 1
    for name in pool.column_names:
        distinct = pl.Series(plain(pool.column(name))).unique().sort()
        radix = len(distinct) + 1
        radix_total *= radix
        if radix_total >= _MAX_CODE:
            raise ModelError(f"too many value combinations to rank ({', '.join(pool.column_names)})")
        p = distinct.search_sorted(pl.Series(plain(pool.column(name))), side="left").to_numpy()
        r = distinct.search_sorted(pl.Series(plain(rows.column(name)).cast(pool.schema.field(name).type)), side="left")
        pool_code = pool_code * radix + p.astype(np.int64)
        row_code = row_code * radix + r.fill_null(0).to_numpy().astype(np.int64)
    return pool_code, row_code


def _set_ranks(table: pa.Table, grid: MemberGrid, rank: np.ndarray, mask: np.ndarray) -> pa.Table:
    if grid.pool is None:
        name = grid.ranked[0]
        original = table.column(name)
        values = np.where(mask, grid.lo + rank * grid.step, _grid_values(original))
        column = _from_grid_values(values, original)
        return table.set_column(table.schema.get_field_index(name), table.schema.field(name), column)
    picked = grid.pool.take(pa.array(np.where(mask, rank, 0)))
    for name in grid.pool.column_names:
        field = table.schema.field(name)
        column = pc.if_else(pa.array(mask), picked.column(name).cast(field.type), table.column(name))
        table = table.set_column(table.schema.get_field_index(name), field, column)
    return table


def _unique_text(table: pa.Table, key: list[str], grid: MemberGrid, seed: int) -> tuple[pa.Table, np.ndarray]:
    """Every member is text: a row repeating an earlier row's key gets a new value in the first member's format.

    New values are unique among themselves (a key format makes distinct values for distinct indexes); one that
    meets a value the model sampled is redrawn, for a few rounds, and a row still repeating is dropped.
    """
    name = grid.text[0]
    fmt = grid.text_formats[0]
    field = table.schema.field(name)
    used = 0
    keep = np.ones(table.num_rows, dtype=bool)
    for _ in range(_TEXT_ROUNDS):
        dup = duplicated(table, key)
        if not dup.any():
            break
        rows = np.flatnonzero(dup)
        fresh = fmt.generate(used, rows.size, seed=seed).cast(field.type)
        used += rows.size
        where = np.full(table.num_rows, -1, dtype=np.int64)
        where[rows] = np.arange(rows.size)
        column = pc.if_else(pa.array(dup), fresh.take(pa.array(np.maximum(where, 0))), table.column(name))
        table = table.set_column(table.schema.get_field_index(name), field, column)
        log.debug("unique key (%s): %d rows got a new %s", ", ".join(key), rows.size, grid.describe())
    else:
        keep = ~duplicated(table, key)
    return table, keep


def duplicated(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """Rows repeating an earlier row's key (rows with a NULL member never repeat, as in SQL)."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=bool)
    df = pl.from_arrow(table.select(list(columns)))
    assert isinstance(df, pl.DataFrame)
    has_null = df.select(pl.any_horizontal(pl.all().is_null())).to_series().to_numpy()
    first = df.select(pl.struct(list(columns)).is_first_distinct()).to_series().to_numpy()
    return np.asarray(~(first | has_null), dtype=bool)


def _is_text_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_grid_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_temporal(t) or (pa.types.is_decimal(t) and t.scale == 0))


def _grid_values(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = plain(col)
    t = arr.type
    if pa.types.is_temporal(t):
        arr = arr.cast(pa.int32() if t.bit_width == 32 else pa.int64())
    return np.asarray(arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _from_grid_values(values: np.ndarray, original: pa.ChunkedArray) -> pa.Array:
    arr = plain(original)
    t = arr.type
    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = pa.array(values, type=pa.int64(), mask=mask if mask.any() else None)
    if pa.types.is_temporal(t):
        out = out.cast(pa.int32() if t.bit_width == 32 else pa.int64())
    return out.cast(t)
