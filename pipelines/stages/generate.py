"""generate: sample every table, generation by generation, on Ray; wire every key to generated rows.

Determinism: randomness is drawn per *block* (a fixed number of rows of a root table, or the children of a fixed
block of parent rows), with a seed derived from (seed, table, block). A Ray shard is a run of whole blocks, so the
output is the same however many shards or workers run. Each block is written as its own Parquet part.

For each table:
- a root table gets ``round(real_rows * scale)`` rows;
- a child gets, for each generated context-parent row, a count from the cardinality model (zero allowed), then that
  many rows sampled conditionally on the parent's columns; its context foreign key is the parent's key;
- its other foreign keys point at generated parents, drawn so that each parent's in-degree follows the real
  in-degree distribution; a key whose columns overlap the context key (flights' origin inside its weather key) is
  drawn among the parents that agree on the shared columns;
- primary keys are generated unique in the source's format; composite keys that mix parent keys with learned values
  are made unique per parent; PII is faked;
- foreign keys deferred to break a cycle or a self-reference are filled in a second pass, once every table exists.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.stages._roles import Role
from pipelines.stages.extract import table_dir
from pipelines.stages.train import CTX_PREFIX, NO_CONTEXT, TableArtifacts, load_artifacts
from schemas.config import RunConfig
from schemas.errors import ModelError
from schemas.kinds import Kind
from schemas.model import DatabaseSchema
from schemas.plan import FkRef, Plan
from synth_engine.keys import dedupe_composite
from synth_engine.pii import fake_column, fake_text

log = logging.getLogger(__name__)


_RANK_DRAWS = 8  # draws of the cardinality model averaged to rank parents


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed derived from the run seed and a path such as (table, "rows", block)."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def synth_dir(run_dir: Path, table: str) -> Path:
    return table_dir(run_dir, "synth", table)


def part_path(run_dir: Path, table: str, block: int) -> Path:
    return synth_dir(run_dir, table) / f"part-{block:07d}.parquet"


def list_parts(run_dir: Path, table: str) -> list[Path]:
    return sorted(synth_dir(run_dir, table).glob("part-*.parquet"))


def _write_part(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


@dataclass
class ParentKeys:
    """A generated parent's key columns (renamed to the child's FK columns) and its in-degree weights."""

    keys: pa.Table
    weights: np.ndarray


def _parent_keys(run_dir: Path, ref: FkRef, indegree: np.ndarray | None, seed: int) -> ParentKeys:
    parts = list_parts(run_dir, ref.ref_table)
    if parts:
        keys = pa.concat_tables([pq.read_table(p, columns=list(ref.ref_columns)) for p in parts])
    else:
        keys = pa.table({c: pa.array([], pa.null()) for c in ref.ref_columns})
    keys = keys.rename_columns(list(ref.columns))
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, ref.table, ref.label, "weights")))
    n = keys.num_rows
    if n == 0:
        return ParentKeys(keys, np.zeros(0))
    if indegree is not None and len(indegree) and indegree.sum() > 0:
        # stratified quantiles of the real in-degrees, in random order: keeps the share of parents without children
        w = rng.permutation(_stratified_quantiles(np.sort(indegree.astype(np.float64)), n, rng))
    else:
        w = np.ones(n)
    if w.sum() == 0:
        w = np.ones(n)
    return ParentKeys(keys, w / w.sum())


def _pick_parents(n: int, parents: ParentKeys, null_share: float, rng: np.random.Generator) -> pa.Table:
    """Draw one parent per child row (NULL with probability ``null_share``)."""
    is_null = rng.random(n) < null_share
    m = int((~is_null).sum())
    if m and parents.keys.num_rows == 0:
        raise ModelError("child rows need a parent key, but the parent table has no generated rows")
    idx = np.zeros(n, dtype=np.int64)
    if m:
        idx[~is_null] = rng.choice(parents.keys.num_rows, size=m, p=parents.weights)
    return parents.keys.take(pa.array(idx, mask=is_null if is_null.any() else None))


def _pick_matching(
    current: pa.Table, ref: FkRef, overlap: list[str], parents: ParentKeys, rng: np.random.Generator
) -> tuple[pa.Table, np.ndarray]:
    """For an FK sharing columns with keys already set, draw among parents that agree on those columns.

    Returns the chosen keys and a mask of rows for which no parent agrees.
    """
    n = current.num_rows
    cdf = pl.from_arrow(current.select(overlap))
    pdf = pl.from_arrow(parents.keys.select(overlap))
    assert isinstance(cdf, pl.DataFrame) and isinstance(pdf, pl.DataFrame)
    ch = cdf.select(pl.struct(overlap).hash(seed=7)).to_series().to_numpy()
    ph = pdf.select(pl.struct(overlap).hash(seed=7)).to_series().to_numpy()
    order = np.argsort(ph, kind="stable")
    sorted_h = ph[order]
    lo = np.searchsorted(sorted_h, ch, side="left")
    hi = np.searchsorted(sorted_h, ch, side="right")
    size = hi - lo
    missing = size == 0
    pick = lo + np.floor(rng.random(n) * np.maximum(size, 1)).astype(np.int64)
    pick = np.minimum(pick, max(len(order) - 1, 0))
    idx = order[pick] if len(order) else np.zeros(n, dtype=np.int64)
    chosen = parents.keys.take(pa.array(idx, mask=missing if missing.any() else None))
    return chosen, missing


def _set_columns(table: pa.Table, values: pa.Table) -> pa.Table:
    for name in values.column_names:
        col = values.column(name)
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    return table


def generate_block(
    art: TableArtifacts,
    *,
    n: int,
    start: int,
    seed: int,
    block: int,
    context: pa.Table | None,
    context_keys: pa.Table | None,
    sequence: np.ndarray | None,
    parents: dict[str, ParentKeys],
    locale: str,
) -> pa.Table:
    """Generate the rows of one block (see the module notes). ``context``/``context_keys`` hold one row per row."""
    roles = art.roles
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, art.table, "block", block)))
    assert art.arrow_schema is not None
    if n == 0:  # e.g. a block of airports none of which has weather rows
        return art.arrow_schema.empty_table()
    out = pa.table({"__row": pa.array(np.arange(n))})  # a table of n rows to add the generated columns to
    if art.model is not None:
        if context is not None and art.model.context_marginals_:
            out = art.model.sample(context=context, seed=derive_seed(seed, art.table, "rows", block))
        else:
            out = art.model.sample(n=n, seed=derive_seed(seed, art.table, "rows", block))
        if out.num_columns == 0:
            out = pa.table({"__row": pa.array(np.arange(n))})
    if context_keys is not None:
        out = _set_columns(out, context_keys)
    assigned = set(context_keys.column_names) if context_keys is not None else set()
    for col in roles.columns(Role.KEY):
        out = _set_columns(
            out,
            pa.table({col: art.key_formats[col].generate(start, n, seed=derive_seed(seed, art.table, col))}),
        )
    for col in roles.columns(Role.SEQUENCE):
        seq = sequence if sequence is not None else np.arange(1, n + 1)
        out = _set_columns(out, pa.table({col: pa.array(seq)}))
    for col in roles.columns(Role.PII):
        kind = Kind(art.pii_kinds[col])
        unique = col in roles.unique_single
        col_seed = derive_seed(seed, art.table, col, block)
        if kind is Kind.TEXT:
            vals = fake_text(n, seed=col_seed, locale=locale, like=art.pii_like.get(col))
        else:
            vals = fake_column(
                kind, n, seed=col_seed, locale=locale, like=art.pii_like.get(col), unique=unique
            )
        null_share = art.fake_null_share.get(col, 0.0)
        if null_share > 0 and not unique:  # NULLs never collide, but a unique column keeps its values
            vals = pc.if_else(pa.array(rng.random(n) < null_share), pa.nulls(n, vals.type), vals)
        out = _set_columns(out, pa.table({col: vals}))
    for ref in roles.secondary:
        stats = art.fk_stats[ref.label]
        overlap = [c for c in ref.columns if c in assigned]
        pk = parents[ref.label]
        if not overlap:
            chosen = _pick_parents(n, pk, stats.null_share, rng)
            out = _set_columns(out, chosen)
        else:
            chosen, missing = _pick_matching(out, ref, overlap, pk, rng)
            free = [c for c in ref.columns if c not in assigned]
            if free:
                out = _set_columns(out, chosen.select(free))
            if missing.any():
                nullable = [c for c in ref.columns if c in art.nullable_cols]
                for c in nullable:
                    col = out.column(c)
                    out = _set_columns(
                        out, pa.table({c: pc.if_else(pa.array(missing), pa.nulls(n, col.type), col)})
                    )
        assigned.update(ref.columns)
    for key in roles.dedupe_keys:
        groups = [c for c in key if c in (context_keys.column_names if context_keys is not None else [])]
        out = dedupe_composite(out, key, groups, seed=derive_seed(seed, art.table, "dedupe", block))
    cols = []
    for field in art.arrow_schema:
        if field.name in out.column_names:
            cols.append(out.column(field.name).cast(field.type))
        else:  # deferred foreign keys (second pass) and all-NULL columns
            cols.append(pa.nulls(out.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=art.arrow_schema)


def _blocks_for_root(art: TableArtifacts, scale: float, block_rows: int) -> list[tuple[int, int, int]]:
    """(block, start, n) for a root table."""
    total = int(round(art.real_rows * scale))
    return [
        (b, b * block_rows, min(block_rows, total - b * block_rows))
        for b in range((total + block_rows - 1) // block_rows)
    ]


def _context_block(run_dir: Path, art: TableArtifacts, block: int) -> tuple[pa.Table, pa.Table]:
    """One block of the context parent: its learned columns (prefixed) and its key (renamed to the FK columns)."""
    ctx = art.roles.context
    assert ctx is not None
    part = part_path(run_dir, ctx.parent, block)
    cols = list(dict.fromkeys([*ctx.ref_columns, *art.context_columns]))
    t = pq.read_table(part, columns=cols)
    keys = pa.table({c: t.column(r) for c, r in zip(ctx.columns, ctx.ref_columns, strict=True)})
    if art.context_columns:
        learned = pa.table({CTX_PREFIX + c: t.column(c) for c in art.context_columns})
    else:
        learned = pa.table({NO_CONTEXT: pa.array(np.zeros(t.num_rows, dtype=np.int32))})
    return learned, keys


def _counts(art: TableArtifacts, learned: pa.Table, seed: int, block: int) -> np.ndarray:
    assert art.cardinality is not None
    if learned.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    observed = art.count_quantiles
    draws = [
        np.asarray(
            art.cardinality.sample(learned, seed=derive_seed(seed, art.table, "count", block, k)).to_numpy(
                zero_copy_only=False
            ),
            dtype=np.float64,
        )
        for k in range(1 if observed is None or len(observed) == 0 else _RANK_DRAWS)
    ]
    if observed is None or len(observed) == 0:
        return draws[0].astype(np.int64)
    # the mean of several draws estimates each parent's expected count: far fewer ties than one draw, so parents
    # the model gives no children (weather hours at night, when no flight leaves) stay without children
    counts = np.mean(draws, axis=0)
    # Rank matching: the model's draws decide *which* parents get many children (their dependence on the parent's
    # columns); stratified quantiles of the real counts decide *how many*. Independent draws from a zero-inflated,
    # heavy-tailed count (3 of 1,458 airports have all the weather rows) would often give no children at all.
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, art.table, "rank", block)))
    n = len(counts)
    order = np.lexsort((rng.random(n), counts))
    matched = np.empty(n, dtype=np.int64)
    matched[order] = _stratified_quantiles(observed, n, rng)
    return matched


def _stratified_quantiles(sorted_values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from ``sorted_values``, one per stratum of [0, 1): the empirical distribution, ascending.

    Unlike independent draws, they keep rare values at their share: 3 parents in 1,458 get their children.
    """
    u = (np.arange(n) + rng.random(n)) / n
    return sorted_values[np.minimum((u * len(sorted_values)).astype(np.int64), len(sorted_values) - 1)]


def _null_context_rows(art: TableArtifacts, non_null_total: int) -> int:
    share = art.context_null_share
    if share <= 0 or share >= 1:
        return 0
    return int(round(non_null_total * share / (1 - share)))


def _child_block(
    run_dir: Path,
    art: TableArtifacts,
    block: int,
    start: int,
    seed: int,
    parents: dict[str, ParentKeys],
    locale: str,
    null_rows: int,
    n_parent_blocks: int,
) -> int:
    if block < n_parent_blocks:
        learned, keys = _context_block(run_dir, art, block)
        counts = np.load(_counts_path(run_dir, art.table, block))
        rep = np.repeat(np.arange(len(counts)), counts)
        n = int(counts.sum())
        ends = np.cumsum(counts)
        sequence = np.arange(n) - np.repeat(ends - counts, counts) + 1
        ctx = learned.take(pa.array(rep)) if art.context_columns else None
        ctx_keys = keys.take(pa.array(rep))
    else:
        # rows whose context foreign key is NULL in the real data: conditioned on random parents, key left NULL
        rng = np.random.Generator(np.random.PCG64(derive_seed(seed, art.table, "nullctx", block)))
        n = null_rows
        learned, keys = _random_parent_rows(run_dir, art, n_parent_blocks, n, rng)
        ctx = learned if art.context_columns and learned.num_rows else None
        nullable = [c for c in keys.column_names if c in art.nullable_cols]
        ctx_keys = pa.table(
            {
                c: (pa.nulls(n, keys.column(c).type) if c in nullable else keys.column(c))
                for c in keys.column_names
            }
        )
        sequence = None
    out = generate_block(
        art,
        n=n,
        start=start,
        seed=seed,
        block=block,
        context=ctx,
        context_keys=ctx_keys,
        sequence=sequence,
        parents=parents,
        locale=locale,
    )
    _write_part(part_path(run_dir, art.table, block), out)
    return out.num_rows


def _random_parent_rows(
    run_dir: Path, art: TableArtifacts, n_parent_blocks: int, n: int, rng: np.random.Generator
) -> tuple[pa.Table, pa.Table]:
    """``n`` parent rows drawn at random, read part by part so that memory holds ``n`` rows, not the parent."""
    ctx = art.roles.context
    assert ctx is not None
    sizes = np.array(
        [pq.ParquetFile(part_path(run_dir, ctx.parent, b)).metadata.num_rows for b in range(n_parent_blocks)],
        dtype=np.int64,
    )
    total = int(sizes.sum())
    if total == 0 or n == 0:
        learned, keys = _context_block(run_dir, art, 0) if n_parent_blocks else (pa.table({}), pa.table({}))
        return learned.slice(0, 0), keys.slice(0, 0)
    positions = np.sort(rng.integers(0, total, size=n))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    learned_parts, key_parts = [], []
    for b in range(n_parent_blocks):
        lo, hi = np.searchsorted(positions, [bounds[b], bounds[b + 1]])
        if hi > lo:
            lt, kt = _context_block(run_dir, art, b)
            idx = pa.array(positions[lo:hi] - bounds[b])
            learned_parts.append(lt.take(idx))
            key_parts.append(kt.take(idx))
    order = pa.array(rng.permutation(n))
    return pa.concat_tables(learned_parts).take(order), pa.concat_tables(key_parts).take(order)


def _counts_path(run_dir: Path, table: str, block: int) -> Path:
    return table_dir(run_dir, "counts", table) / f"block-{block:07d}.npy"


def _child_totals(run_dir: Path, art: TableArtifacts, blocks: list[int], seed: int) -> list[int]:
    """Phase 1: sample each block's children-per-parent counts once, save them for phase 2, return the totals."""
    out = []
    for b in blocks:
        learned, _ = _context_block(run_dir, art, b)
        counts = _counts(art, learned, seed, b)
        path = _counts_path(run_dir, art.table, b)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
        np.save(tmp, counts)
        os.replace(tmp, path)
        out.append(int(counts.sum()))
    return out


def run_generate(run_dir: Path, schema: DatabaseSchema, plan: Plan, config: RunConfig) -> dict[str, int]:
    """Generate every table in plan order on Ray; returns synthetic rows per table."""
    import shutil

    import ray

    seed = config.generation.seed
    scale = config.generation.scale
    locale = config.privacy.pii_locale
    block_rows = config.generation.block_rows
    blocks_per_shard = max(1, config.generation.shard_rows // block_rows)
    for area in (run_dir / "synth", run_dir / "counts"):
        if area.exists():
            shutil.rmtree(area)

    @ray.remote(num_cpus=1)
    def _root_shard(
        art_ref: TableArtifacts, parents: dict[str, ParentKeys], work: list[tuple[int, int, int]]
    ) -> int:
        total = 0
        for block, start, n in work:
            out = generate_block(
                art_ref,
                n=n,
                start=start,
                seed=seed,
                block=block,
                context=None,
                context_keys=None,
                sequence=None,
                parents=parents,
                locale=locale,
            )
            _write_part(part_path(run_dir, art_ref.table, block), out)
            total += out.num_rows
        return total

    @ray.remote(num_cpus=1)
    def _totals_shard(art_ref: TableArtifacts, blocks: list[int]) -> list[int]:
        return _child_totals(run_dir, art_ref, blocks, seed)

    @ray.remote(num_cpus=1)
    def _child_shard(
        art_ref: TableArtifacts,
        parents: dict[str, ParentKeys],
        work: list[tuple[int, int, int]],
        n_parent_blocks: int,
    ) -> int:
        return sum(
            _child_block(run_dir, art_ref, b, start, seed, parents, locale, n_null, n_parent_blocks)
            for b, start, n_null in work
        )

    rows: dict[str, int] = {}
    for generation in plan.generations:
        pending = []
        for name in generation:
            art = load_artifacts(run_dir, name)
            parents = {
                ref.label: _parent_keys(run_dir, ref, art.fk_stats[ref.label].indegree, seed)
                for ref in art.roles.secondary
            }
            art_ref = ray.put(art)
            parents_ref = ray.put(parents)
            synth_dir(run_dir, name).mkdir(parents=True, exist_ok=True)
            if art.roles.context is None:
                work = _blocks_for_root(art, scale, block_rows)
                shards = [work[i : i + blocks_per_shard] for i in range(0, len(work), blocks_per_shard)]
                pending.append((name, [_root_shard.remote(art_ref, parents_ref, s) for s in shards]))
                continue
            n_parent_blocks = len(list_parts(run_dir, art.roles.context.parent))
            blocks = list(range(n_parent_blocks))
            shards = [blocks[i : i + blocks_per_shard] for i in range(0, len(blocks), blocks_per_shard)]
            totals = [t for part in ray.get([_totals_shard.remote(art_ref, s) for s in shards]) for t in part]
            null_rows = _null_context_rows(art, sum(totals))
            null_blocks = [
                (n_parent_blocks + j, min(block_rows, null_rows - j * block_rows))
                for j in range((null_rows + block_rows - 1) // block_rows)
            ]
            starts = np.concatenate([[0], np.cumsum(totals)]).astype(np.int64)
            work2 = [(b, int(starts[b]), 0) for b in blocks]
            offset = int(starts[-1])
            for b, n_null in null_blocks:
                work2.append((b, offset, n_null))
                offset += n_null
            shards2 = [work2[i : i + blocks_per_shard] for i in range(0, len(work2), blocks_per_shard)]
            pending.append(
                (
                    name,
                    [_child_shard.remote(art_ref, parents_ref, s, n_parent_blocks) for s in shards2],
                )
            )
        for name, refs in pending:
            rows[name] = int(sum(ray.get(refs)))
            log.info("generate: %s: %d rows", name, rows[name])
    _fill_deferred(run_dir, schema, plan, seed)
    _unique_pii(run_dir, schema, plan)
    return rows


def _fill_deferred(run_dir: Path, schema: DatabaseSchema, plan: Plan, seed: int) -> None:
    """Second pass: foreign keys deferred to break cycles and self-references, now that every table exists."""
    for ref in plan.deferred:
        art = load_artifacts(run_dir, ref.table)
        stats = art.fk_stats[ref.label]
        parents = _parent_keys(run_dir, ref, stats.indegree, seed)
        for i, path in enumerate(list_parts(run_dir, ref.table)):
            t = pq.read_table(path)
            rng = np.random.Generator(np.random.PCG64(derive_seed(seed, ref.table, ref.label, "deferred", i)))
            chosen = _pick_parents(t.num_rows, parents, stats.null_share, rng)
            for c in ref.columns:
                idx = t.column_names.index(c)
                t = t.set_column(idx, t.schema.field(c), chosen.column(c).cast(t.schema.field(c).type))
            _write_part(path, t)


def _unique_pii(run_dir: Path, schema: DatabaseSchema, plan: Plan) -> None:
    """Faked values of a unique column are unique per block; make them unique across blocks too."""
    for table in schema.active_tables:
        art = load_artifacts(run_dir, table.name)
        cols = [c for c in art.roles.unique_single if art.roles.roles.get(c) is Role.PII]
        if not cols:
            continue
        parts = list_parts(run_dir, table.name)
        for col in cols:
            values = pl.concat([pl.read_parquet(p, columns=[col]) for p in parts]) if parts else None
            if values is None or not values[col].is_duplicated().any():
                continue
            offset = 0
            dup = values.with_row_index("i").with_columns(pl.col(col).is_first_distinct().not_().alias("d"))
            for p in parts:
                t = pq.read_table(p)
                n = t.num_rows
                d = dup.slice(offset, n)
                if d["d"].any():
                    fixed = d.select(
                        pl.when(pl.col("d"))
                        .then(pl.format("u{}.{}", pl.col("i"), pl.col(col)))
                        .otherwise(pl.col(col))
                        .alias(col)
                    )[col].to_arrow()
                    t = t.set_column(
                        t.column_names.index(col), t.schema.field(col), fixed.cast(t.schema.field(col).type)
                    )
                    _write_part(p, t)
                offset += n
