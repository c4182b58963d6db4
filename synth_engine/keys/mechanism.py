"""The key mechanism: every primary key, unique key and foreign key of generated rows, decided in one place.

The policy (:func:`schemas.policy.table_roles`) says what each column is; this module makes the values:

1. generated keys (:class:`~synth_engine.keys.formats.KeyFormat`) from each row's global index, and sequences
   ``1..k`` within each context parent;
2. secondary foreign keys wired to generated parents (:mod:`synth_engine.keys.wiring`), drawn without replacement
   within each context group where they belong to a key (a link table), with replacement otherwise: matched by
   content (:mod:`synth_engine.keys.matching`) where the pool carries a matcher, by in-degree weight alone if not;
3. learned key members moved to free slots of their real grid within their group (:mod:`.members`);
4. a last check that every key of the block is unique, so a bug can never reach the database as a duplicate.

Keys whose uniqueness spans the whole table (their columns hold no context foreign key) are made unique by
:func:`repair_table_keys` once every block of the table exists. Child counts are capped beforehand
(:func:`group_capacity`) so that no group asks for more distinct values than exist.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas.plan import FkRef
from schemas.policy import KeyRule, Role, TableRoles
from synth_engine._internal.seeds import derive_seed
from synth_engine.keys.formats import KeyFormat
from synth_engine.keys.matching import pick_matched
from synth_engine.keys.members import MemberGrid, duplicated, place_members, unique_members
from synth_engine.keys.wiring import ParentPool, capacity, pick_distinct, pick_matching, pick_parents

log = logging.getLogger(__name__)


@dataclass
class KeyStats:
    """What the key mechanism had to do to one block (added up per table for the run's summary)."""

    dropped: int = 0  # rows that could not get a unique key (0 when counts were capped)
    nulled: int = 0  # rows whose composite foreign key found no matching parent and was set to NULL

    def add(self, other: KeyStats) -> None:
        self.dropped += other.dropped
        self.nulled += other.nulled


@dataclass
class BlockKeys:
    """The inputs of :func:`assign_keys` for one block of generated rows.

    Attributes:
        start: the global index of the block's first row (generated keys depend on it, not on sharding).
        context_keys: the context parent's key per row (named as the child's foreign-key columns), or None.
        sequence: the 1..k position of each row within its context parent, or None.
        pools: generated parents per secondary foreign key label.
        null_shares: the real NULL share per secondary foreign key label.
        key_seed: the table's seed for generated keys (the same for every block of the table).
    """

    start: int
    context_keys: pa.Table | None
    sequence: np.ndarray | None
    pools: Mapping[str, ParentPool]
    null_shares: Mapping[str, float]
    nullable: set[str] = field(default_factory=set)
    # the table's seed for its generated keys, the same in every block: a key format's permutation must not change
    # from block to block, or keys of disjoint index ranges collide (None: the block's seed, for one block alone)
    key_seed: int | None = None


def assign_keys(
    rows: pa.Table,
    roles: TableRoles,
    formats: Mapping[str, KeyFormat],
    grids: Mapping[tuple[str, ...], MemberGrid],
    block: BlockKeys,
    *,
    seed: int,
) -> tuple[pa.Table, KeyStats]:
    """Set every key column of one block of sampled rows.

    Args:
        rows: the model's sampled columns (one row per generated row).
        roles: the table's roles and key rules.
        formats: the format of each generated key column.
        grids: the learned grid of each key rule with learned members, by the rule's columns.
        block: the block's position, context keys, parents and NULL shares.
        seed: the table's seed for this block.

    Returns:
        The rows with their keys, and what had to be dropped or NULLed.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    n = rows.num_rows
    stats = KeyStats()
    out = rows
    if block.context_keys is not None:
        out = set_columns(out, block.context_keys)
    assigned = set(block.context_keys.column_names) if block.context_keys is not None else set()
    for col in roles.columns(Role.KEY):
        key_seed = block.key_seed if block.key_seed is not None else seed
        out = set_columns(out, pa.table({col: formats[col].generate(block.start, n, seed=derive_seed(key_seed, col))}))
    for col in roles.columns(Role.SEQUENCE):
        seq = block.sequence if block.sequence is not None else np.arange(1, n + 1)
        out = set_columns(out, pa.table({col: pa.array(seq)}))
    by_label = {ref.label: ref for ref in roles.secondary}
    jointly = {label for rule in roles.key_rules if rule.scope == "group" for label in rule.drawn}
    for ref in roles.secondary:
        if ref.label in jointly:
            continue
        out, nulled = _wire(out, ref, assigned, block, rng)
        stats.nulled += nulled
        assigned.update(ref.columns)
    for rule in roles.key_rules:
        if rule.scope != "group" or not rule.drawn:
            continue
        refs = [by_label[label] for label in rule.drawn]
        out = _wire_distinct(out, rule, refs, block, rng)
        for ref in refs:
            assigned.update(ref.columns)
    for rule in roles.key_rules:
        if rule.scope == "group" and rule.learned:
            out, dropped = unique_members(out, rule.columns, grids[rule.columns], seed=derive_seed(seed, *rule.columns))
            stats.dropped += dropped
    for rule in roles.key_rules:
        if rule.scope == "group":
            keep = ~duplicated(out, rule.columns)
            if not keep.all():  # never expected: the steps above make these keys unique by construction
                log.warning("key (%s) of %s: %d duplicate rows removed", ", ".join(rule.columns), roles.table, int((~keep).sum()))
                stats.dropped += int((~keep).sum())
                out = out.filter(pa.array(keep))
    return out, stats


def group_capacity(
    rule: KeyRule, pools: Mapping[str, ParentPool], grids: Mapping[tuple[str, ...], MemberGrid]
) -> int | None:
    """The most rows one context group can hold under ``rule`` (None: no limit)."""
    if rule.scope != "group" or rule.wired:
        return None  # a key with a member wired by matching: repeats are removed afterwards and counted
    if rule.learned:
        return grids[rule.columns].slots
    if rule.drawn:
        return capacity([pools[label] for label in rule.drawn])
    return 1  # the key is the context key itself (a 1:1 extension table): one row per parent


def repair_table_keys(
    keys: pa.Table,
    rule: KeyRule,
    refs: list[FkRef],
    pools: Mapping[str, ParentPool],
    grid: MemberGrid | None,
    *,
    seed: int,
) -> tuple[pa.Table, np.ndarray]:
    """Make a table-wide key unique over all of a table's rows (its key columns, in row order).

    Learned members move to free grid slots; foreign keys inside the key are redrawn for the repeating rows,
    avoiding every combination already taken. Rows with a NULL member are left alone.

    Returns:
        The key columns, and a mask of the rows to keep (False only where no distinct value exists: more rows than
        parent combinations).
    """
    keep = np.ones(keys.num_rows, dtype=bool)
    if rule.learned and grid is not None:
        return place_members(keys, rule.columns, grid, seed=seed)
    if not rule.drawn:
        return keys, ~duplicated(keys, rule.columns)
    dup = duplicated(keys, rule.columns)
    if not dup.any():
        return keys, keep
    ref_pools = [pools[r.label] for r in refs]
    idx = [_index_in_pool(keys.select(list(r.columns)), pools[r.label]) for r in refs]
    other = [c for c in rule.columns if not any(c in r.columns for r in refs)]
    groups = _group_ids(keys, other)
    valid = np.ones(keys.num_rows, dtype=bool)
    for c in rule.columns:
        valid &= np.asarray(keys.column(c).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    rng = np.random.Generator(np.random.PCG64(seed))
    free_rows = np.flatnonzero(valid)
    new_idx, placed = pick_distinct(
        groups[free_rows], ref_pools, rng, initial=[i[free_rows] for i in idx], fixed=~dup[free_rows]
    )
    out = keys
    for r, pool, ni in zip(refs, ref_pools, new_idx, strict=True):
        full = idx[refs.index(r)].copy()
        full[free_rows] = ni
        chosen = pool.keys.take(pa.array(full))
        for c in r.columns:
            merged = pc.if_else(pa.array(valid), chosen.column(c).cast(keys.schema.field(c).type), keys.column(c))
            out = out.set_column(out.schema.get_field_index(c), out.schema.field(c), merged)
    keep[free_rows[~placed]] = False
    return out, keep


def set_columns(table: pa.Table, values: pa.Table) -> pa.Table:
    """``table`` with ``values``'s columns replaced or appended."""
    for name in values.column_names:
        col = values.column(name)
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    return table


def _wire(
    out: pa.Table, ref: FkRef, assigned: set[str], block: BlockKeys, rng: np.random.Generator
) -> tuple[pa.Table, int]:
    n = out.num_rows
    pool = block.pools[ref.label]
    overlap = [c for c in ref.columns if c in assigned]
    if not overlap:
        share = block.null_shares.get(ref.label, 0.0)
        if pool.matching is not None and set(pool.matching.matcher.child_columns_) <= set(out.column_names):
            return set_columns(out, pick_matched(out, pool, share, rng)), 0
        return set_columns(out, pick_parents(n, pool, share, rng)), 0
    chosen, missing = pick_matching(out, overlap, pool, rng)
    free = [c for c in ref.columns if c not in assigned]
    if free:
        out = set_columns(out, chosen.select(free))
    if missing.any():
        for c in (c for c in ref.columns if c in block.nullable):
            col = out.column(c)
            out = set_columns(out, pa.table({c: pc.if_else(pa.array(missing), pa.nulls(n, col.type), col)}))
    return out, int(missing.sum())


def _wire_distinct(
    out: pa.Table, rule: KeyRule, refs: list[FkRef], block: BlockKeys, rng: np.random.Generator
) -> pa.Table:
    """The foreign keys of a link-table key: distinct parent combinations within each context group."""
    pools = [block.pools[r.label] for r in refs]
    groups = _group_ids(out, list(rule.group))
    idx, _placed = pick_distinct(groups, pools, rng)  # counts were capped, so every row is placed
    for r, pool, i in zip(refs, pools, idx, strict=True):
        share = block.null_shares.get(r.label, 0.0)
        is_null = rng.random(len(i)) < share if share > 0 and set(r.columns) & block.nullable else None
        out = set_columns(out, pool.keys.take(pa.array(i, mask=is_null)))
    return out


def _index_in_pool(values: pa.Table, pool: ParentPool) -> np.ndarray:
    """Each row's parent index in ``pool`` (by its key values); 0 for rows whose key is NULL."""
    cols = values.column_names
    left = pl.from_arrow(values)
    right = pl.from_arrow(pool.keys.select(cols))
    assert isinstance(left, pl.DataFrame) and isinstance(right, pl.DataFrame)
    right = right.with_row_index("__pi").unique(subset=cols, keep="first")
    joined = left.with_row_index("__r").join(right, on=cols, how="left").sort("__r")
    return joined["__pi"].fill_null(0).to_numpy().astype(np.int64)


def _group_ids(table: pa.Table, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.zeros(table.num_rows, dtype=np.int64)
    df = pl.from_arrow(table.select(columns))
    assert isinstance(df, pl.DataFrame)
    hashed = df.select(pl.struct(columns).hash(seed=11)).to_series().to_numpy()
    return np.unique(hashed, return_inverse=True)[1].astype(np.int64)
