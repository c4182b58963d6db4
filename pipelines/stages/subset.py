"""subset: which real rows of the ``mode: subset`` tables are kept, closed under their foreign keys.

A subset table's real rows are copied as they are, but only a subset of them: one that every foreign key between
subset tables can point into. :func:`subset_positions` decides which rows, by position (rows are numbered from 0
across a table's Parquet files, in the order given), in four steps:

1. **Seeds.** A subset table with ``generation.tables.<t>.share`` or ``rows`` is a *seed*: a uniform random sample
   of ``share`` of its rows (rounded half up, at least one row when the table has any), then at most ``rows`` rows
   (``rows`` alone: that many rows, or all of them when the table is smaller). The sample is deterministic given the
   run seed (PCG64 seeded with ``derive_seed(seed, table, "subset")``).
2. **Downward.** A subset table is *driven* when it is a seed or has a non-deferred, non-self foreign key into a
   driven subset table. In plan order (parents first), a driven table that is not a seed keeps a row when each of
   its non-deferred, non-self foreign keys into a driven table is NULL (any of its columns NULL, as SQL's
   ``MATCH SIMPLE``) or points at a kept row of that table: the children of kept parents follow them.
3. **Undriven** subset tables start empty.
4. **Upward**, to a fixpoint: for every foreign key from a subset table A into a subset table B (deferred keys,
   self-references and composite keys included), every B row that a kept A row references is kept too. Rows added
   to B are followed in turn (a manager's manager, two tables that reference each other), until nothing changes.

The result is closed: every non-NULL foreign key of a kept row, between subset tables, points at a kept row.
Foreign keys from subset tables into other tables are not touched (the pipeline handles those as for any table).

Only key columns are read: each step is a polars lazy scan of the Parquet files selecting the key columns and a row
index, joined to the kept keys of the other side. A child's key columns are cast to the parent's types where they
differ, so an ``INT32`` key matches an ``INT64`` one; a value that cannot be cast matches nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from schemas.config import TableGeneration
from schemas.errors import ConfigError
from schemas.model import DatabaseSchema
from schemas.plan import FkRef, Plan
from synth_engine import derive_seed

log = logging.getLogger(__name__)

# Names of the helper columns; chosen so they do not collide with a real column.
_POS = "__synthdb_pos"
_HIT = "__synthdb_hit"
_EMPTY = np.empty(0, dtype=np.int64)


def subset_positions(
    schema: DatabaseSchema,
    plan: Plan,
    subset_tables: Collection[str],
    sources: Mapping[str, Sequence[Path]],
    seeds: Mapping[str, TableGeneration],
    *,
    seed: int,
) -> dict[str, np.ndarray]:
    """The positions of the rows each subset table keeps, closed under the foreign keys between subset tables.

    Args:
        schema: the database schema.
        plan: the plan built from ``schema`` (its order and deferred foreign keys).
        subset_tables: the tables in ``mode: subset``.
        sources: per subset table (tables it references may be present; only subset tables are read): its real
            Parquet files, in order; rows are numbered across them in this order.
        seeds: per seed table, its generation settings; ``share`` and/or ``rows`` make it a seed.
        seed: the run seed.

    Returns:
        Per subset table, the sorted ``int64`` positions of its kept rows.

    Raises:
        ConfigError: when ``seeds`` names a table that is not a subset table, ``subset_tables`` names a table that is
            not an active table of the schema, or no subset table is a seed.
    """
    subset = sorted(set(subset_tables))
    if not subset:
        return {}
    _check(schema, subset, sources, seeds)
    seed_tables = {t for t in subset if seeds.get(t) is not None and _is_seed(seeds[t])}
    if not seed_tables:
        raise ConfigError(
            f"mode: subset needs generation.tables.<t>.share or rows on at least one subset table "
            f"(subset tables: {', '.join(subset)})"
        )

    data = {t: _Data(sources[t]) for t in subset}
    in_subset = set(subset)
    refs = [
        FkRef.of(t, fk)
        for t, fk in schema.iter_foreign_keys()
        if t.name in in_subset and fk.ref_table in in_subset
    ]
    deferred = {r.sort_key() for r in plan.deferred}
    ordered = [t for t in plan.order if t in in_subset]

    kept: dict[str, np.ndarray] = {}
    driven: set[str] = set()
    for name in ordered:
        downward = [
            r
            for r in refs
            if r.table == name
            and not r.is_self_reference
            and r.sort_key() not in deferred
            and r.ref_table in driven
        ]
        if name in seed_tables:
            kept[name] = _sample(name, data[name], seeds[name], seed)
            driven.add(name)
        elif downward:
            kept[name] = _follow_parents(data[name], downward, data, kept)
            driven.add(name)
        else:
            kept[name] = _EMPTY
    for name in subset:  # a subset table the plan does not order (it should not happen): it starts empty
        kept.setdefault(name, _EMPTY)
    log.debug(
        "subset: driven tables %s; before closure %s", sorted(driven), {t: len(p) for t, p in kept.items()}
    )

    _close_upward(refs, data, kept)
    log.debug("subset: kept rows %s", {t: len(p) for t, p in kept.items()})
    return {t: kept[t] for t in subset}


def _is_seed(settings: TableGeneration) -> bool:
    return settings.share is not None or settings.rows is not None


def _check(
    schema: DatabaseSchema,
    subset: list[str],
    sources: Mapping[str, Sequence[Path]],
    seeds: Mapping[str, TableGeneration],
) -> None:
    problems: list[str] = []
    active = {t.name for t in schema.active_tables}
    for name in subset:
        if name not in active:
            problems.append(f"subset table {name!r} is not an active table of the schema")
    for name in sorted(seeds):
        if name not in subset and _is_seed(seeds[name]):
            problems.append(
                f"generation.tables.{name}: share or rows sets a subset, but table {name!r} is not in mode: subset "
                f"(subset tables: {', '.join(subset)}); set its mode to subset, or remove share and rows"
            )
    if problems:
        raise ConfigError("; ".join(problems))
    missing = [t for t in subset if t not in sources]
    if missing:
        raise ValueError(f"subset: no Parquet sources given for subset table(s) {', '.join(missing)}")


class _Data:
    """One table's Parquet files, scanned lazily (only the columns asked for)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [str(p) for p in paths]
        self._schema: pl.Schema | None = None
        self._rows: int | None = None

    @property
    def empty(self) -> bool:
        return not self.paths

    def scan(self, columns: Sequence[str]) -> pl.LazyFrame:
        """``columns`` plus the row position (``int64``) of each row."""
        return (
            pl.scan_parquet(self.paths)
            .select([pl.col(c) for c in columns])
            .with_row_index(_POS)
            .with_columns(pl.col(_POS).cast(pl.Int64))
        )

    def dtype(self, column: str) -> pl.DataType:
        if self._schema is None:
            self._schema = pl.scan_parquet(self.paths).collect_schema()
        return self._schema[column]

    def rows(self) -> int:
        if self._rows is None:
            self._rows = (
                0 if self.empty else int(pl.scan_parquet(self.paths).select(pl.len()).collect().item())
            )
        return self._rows


def _sample(name: str, data: _Data, settings: TableGeneration, seed: int) -> np.ndarray:
    total = data.rows()
    n = total
    if settings.share is not None and total > 0:
        n = max(1, int(np.floor(settings.share * total + 0.5)))
    if settings.rows is not None:
        n = min(n, settings.rows)
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, name, "subset")))
    chosen = rng.choice(total, size=n, replace=False) if n < total else np.arange(total)
    log.debug("subset: seed table %r keeps %d of %d row(s)", name, n, total)
    return np.sort(chosen.astype(np.int64))


def _keys(n: int) -> list[str]:
    return [f"__synthdb_k{i}" for i in range(n)]


def _child_keys(ref: FkRef, data: dict[str, _Data]) -> list[pl.Expr]:
    """The child's key columns as join columns, cast to the parent's types (a value that cannot be cast: NULL)."""
    child, parent = data[ref.table], data[ref.ref_table]
    exprs = []
    for col, ref_col, key in zip(ref.columns, ref.ref_columns, _keys(len(ref.columns)), strict=True):
        target = parent.dtype(ref_col)
        expr = pl.col(col)
        if child.dtype(col) != target:
            expr = expr.cast(target, strict=False)
        exprs.append(expr.alias(key))
    return exprs


def _kept_rows(data: _Data, columns: Sequence[str], positions: np.ndarray) -> pl.LazyFrame:
    """``columns`` and positions of the rows at ``positions``."""
    wanted = pl.LazyFrame({_POS: positions}, schema={_POS: pl.Int64})
    return data.scan(columns).join(wanted, on=_POS, how="semi")


def _follow_parents(
    child: _Data, refs: list[FkRef], data: dict[str, _Data], kept: dict[str, np.ndarray]
) -> np.ndarray:
    """Rows of the child whose every key in ``refs`` is NULL or points at a kept parent row."""
    if child.empty:
        return _EMPTY
    columns = list(dict.fromkeys(c for r in refs for c in r.columns))
    frame = child.scan(columns)
    for ref in refs:
        is_null = pl.any_horizontal([pl.col(c).is_null() for c in ref.columns])
        parent = data[ref.ref_table]
        if parent.empty or len(kept[ref.ref_table]) == 0:
            frame = frame.filter(is_null)
            continue
        keys = _keys(len(ref.columns))
        parent_keys = (
            _kept_rows(parent, ref.ref_columns, kept[ref.ref_table])
            .select([pl.col(c).alias(k) for c, k in zip(ref.ref_columns, keys, strict=True)])
            .drop_nulls()
            .unique()
            .with_columns(pl.lit(True).alias(_HIT))
        )
        frame = (
            frame.with_columns(_child_keys(ref, data))
            .join(parent_keys, on=keys, how="left")
            .filter(is_null | pl.col(_HIT).is_not_null())
            .drop([*keys, _HIT])
        )
    positions = frame.select(_POS).collect()[_POS].to_numpy()
    return np.sort(positions.astype(np.int64))


def _referenced(ref: FkRef, rows: np.ndarray, data: dict[str, _Data]) -> np.ndarray:
    """Positions of the parent rows that the child rows at ``rows`` reference through ``ref``."""
    child, parent = data[ref.table], data[ref.ref_table]
    if child.empty or parent.empty or len(rows) == 0:
        return _EMPTY
    keys = _keys(len(ref.columns))
    wanted = _kept_rows(child, ref.columns, rows).select(_child_keys(ref, data)).drop_nulls().unique()
    found = (
        parent.scan(ref.ref_columns)
        .select([_POS, *(pl.col(c).alias(k) for c, k in zip(ref.ref_columns, keys, strict=True))])
        .join(wanted, on=keys, how="semi")
        .select(_POS)
        .collect()[_POS]
        .to_numpy()
    )
    return np.unique(found.astype(np.int64))


def _close_upward(refs: list[FkRef], data: dict[str, _Data], kept: dict[str, np.ndarray]) -> None:
    """Add every referenced row, to a fixpoint (semi-naive: each round follows only the rows the last one added)."""
    new = {t: p for t, p in kept.items() if len(p)}
    rounds = 0
    while new:
        rounds += 1
        added: dict[str, np.ndarray] = {}
        for ref in refs:
            rows = new.get(ref.table)
            if rows is None:
                continue
            found = _referenced(ref, rows, data)
            fresh = np.setdiff1d(found, kept[ref.ref_table], assume_unique=True)
            if ref.ref_table in added:
                fresh = np.setdiff1d(fresh, added[ref.ref_table], assume_unique=True)
            if len(fresh):
                added[ref.ref_table] = np.union1d(added.get(ref.ref_table, _EMPTY), fresh)
        for table, rows in added.items():
            kept[table] = np.union1d(kept[table], rows)
        new = added
    log.debug("subset: upward closure took %d round(s)", rounds)
