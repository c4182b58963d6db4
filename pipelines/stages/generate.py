"""generate: sample every table, generation by generation, on Ray; wire every key to generated rows.

Determinism: randomness is drawn per *block* (a fixed number of rows of a root table, or the children of a fixed
block of parent rows), with a seed derived from (seed, table, block). A Ray shard is a run of whole blocks, so the
output is the same however many shards or workers run. Each block is written as its own Parquet part.

For each table:
- a root table gets ``round(real_rows * scale)`` rows;
- a child gets, for each generated context-parent row, a count: the real children-per-parent distribution,
  stratified over every parent of the table (so totals do not swing with the seed) and matched by rank to the
  cardinality model's expected counts (which parents get many); then that many rows sampled conditionally on the
  parent's columns; its context foreign key is the parent's key;
- every key is set by the key mechanism of ``synth_engine.keys``: generated keys, sequences, other foreign keys
  wired to generated parents (without replacement within the context group for a link table's key), learned key
  members moved to free slots of their real grid. Counts are capped where a group's key has fewer distinct
  values than it asks for, and the run says how many rows that cost; keys spanning the whole table are repaired
  once the table's blocks exist, before any child reads them;
- PII is faked;
- foreign keys deferred to break a cycle or a self-reference are filled in a second pass, once every table exists.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines._internal.progress import NO_TRACKER, Tracker, gather
from pipelines.workspace import Workspace
from pipelines.stages.train import CTX_PREFIX, KEPT_PREFIX, NO_CONTEXT, TableArtifacts, load_artifacts
from schemas.config import GenerationConfig, RunConfig
from schemas.kinds import Kind
from schemas.model import DatabaseSchema
from schemas.plan import FkRef, Plan
from schemas.policy import Role
from synth_engine import derive_seed
from synth_engine.conditions import sample_with_shares
from synth_engine.keys import (
    BlockKeys,
    KeyStats,
    ParentPool,
    assign_keys,
    group_capacity,
    pick_parents,
    repair_table_keys,
    set_columns,
    strata_total,
    stratified_counts,
)
from synth_engine.keys.matching import (
    ForeignKeyMatcher,
    MatchCandidates,
    Matching,
    candidate_weights,
    popular_weights,
    select_candidates,
)
from synth_engine.pii import fake_column, fake_text

log = logging.getLogger(__name__)


_RANK_DRAWS = 8  # draws of the cardinality model averaged to rank parents


def _write_part(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _parent_pool(
    run_dir: Path, ref: FkRef, indegree: np.ndarray | None, seed: int, matcher: ForeignKeyMatcher | None = None
) -> ParentPool:
    """The generated parents of ``ref`` (key columns named as the child's) with in-degree weights.

    With a ``matcher`` (trained for ``ref``), children pick among the pool's candidates by content
    (:mod:`synth_engine.keys.matching`); without one, by weight alone.
    """
    parts = Workspace(run_dir).parts(ref.ref_table)
    if parts:
        keys = pa.concat_tables([pq.read_table(p, columns=list(ref.ref_columns)) for p in parts])
    else:
        keys = pa.table({c: pa.array([], pa.null()) for c in ref.ref_columns})
    keys = keys.rename_columns(list(ref.columns))
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, ref.table, ref.label, "weights")))
    pool = ParentPool.build(keys, indegree, rng)
    if matcher is not None and pool.size:
        pool = _matched_pool(parts, ref, pool, matcher, seed)
    return pool


def _matched_pool(
    parts: list[Path], ref: FkRef, pool: ParentPool, matcher: ForeignKeyMatcher, seed: int
) -> ParentPool:
    """``pool`` with its weights laid on the parents that look popular, and the candidates children match among.

    The generated parents' learned columns are read part by part, so memory holds one part plus one score per
    parent and at most ``MAX_CANDIDATES`` candidates' positions, whatever the parent's size.
    """
    cols = matcher.parent_columns_
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    scores = [
        matcher.popularity(pq.read_table(p, columns=cols), seed=derive_seed(seed, ref.table, ref.label, "popular", i))
        for i, p in enumerate(parts)
    ]
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, ref.table, ref.label, "matching")))
    weights = pool.weights
    if all(sc is not None for sc in scores):
        weights = popular_weights(weights, np.concatenate(scores), rng)  # type: ignore[arg-type]
    index = select_candidates(weights, rng)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    features = []
    for i, p in enumerate(parts):
        lo, hi = np.searchsorted(index, [bounds[i], bounds[i + 1]])
        if hi > lo:
            rows = pq.read_table(p, columns=cols).take(pa.array(index[lo:hi] - bounds[i]))
            features.append(matcher.encode_parents(rows))
    positions = np.vstack(features) if features else np.zeros((0, 1), np.float32)
    candidates = MatchCandidates.build(index, positions, candidate_weights(weights, index))
    return replace(pool, weights=weights, matching=Matching(matcher, candidates))


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
    parents: dict[str, ParentPool],
    locale: str,
    kept: pa.Table | None = None,
) -> tuple[pa.Table, KeyStats]:
    """Generate the rows of one block (see the module notes). ``context``/``context_keys`` hold one row per row.

    The model samples the learned columns, conditioned on the context parent's row and on the row's ``kept``
    values (real values of the table's kept columns, one row per row: see :func:`kept_rows`); the key mechanism
    (:func:`synth_engine.keys.assign_keys`) sets every key; PII is faked.
    """
    roles = art.roles
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, art.table, "block", block)))
    assert art.arrow_schema is not None
    if n == 0:  # e.g. a block of airports none of which has weather rows
        return art.arrow_schema.empty_table(), KeyStats()
    out = pa.table({"__row": pa.array(np.arange(n))})  # a table of n rows to add the generated columns to
    if art.model is not None:
        rows_seed = derive_seed(seed, art.table, "rows", block)
        ctx = model_context(context, kept) if art.model.context_marginals_ else None
        if art.rebalance is not None:
            column, shares = art.rebalance
            out, _ = sample_with_shares(art.model, column, shares, n=n, context=ctx, seed=rows_seed)
        elif ctx is not None:
            out = art.model.sample(context=ctx, seed=rows_seed)
        else:
            out = art.model.sample(n=n, seed=rows_seed)
        if out.num_columns == 0:
            out = pa.table({"__row": pa.array(np.arange(n))})
    if kept is not None:
        out = set_columns(out, kept)
    for col in roles.columns(Role.PII):
        kind = Kind(art.pii_kinds[col])
        unique = col in roles.unique_single
        col_seed = derive_seed(seed, art.table, col, block)
        if kind is Kind.TEXT:
            vals = fake_text(n, seed=col_seed, locale=locale, fmt=art.pii_formats.get(col))
        else:
            vals = fake_column(
                kind, n, seed=col_seed, locale=locale, fmt=art.pii_formats.get(col), unique=unique
            )
        null_share = art.fake_null_share.get(col, 0.0)
        if null_share > 0 and not unique:  # NULLs never collide, but a unique column keeps its values
            vals = pc.if_else(pa.array(rng.random(n) < null_share), pa.nulls(n, vals.type), vals)
        out = set_columns(out, pa.table({col: vals}))
    keys = BlockKeys(
        start=start,
        context_keys=context_keys,
        sequence=sequence,
        pools=parents,
        null_shares={label: st.null_share for label, st in art.fk_stats.items()},
        nullable=art.nullable_cols,
        key_seed=derive_seed(seed, art.table, "keys"),
    )
    out, stats = assign_keys(
        out, roles, art.key_formats, art.member_grids, keys, seed=derive_seed(seed, art.table, "keys", block)
    )
    cols = []
    for field in art.arrow_schema:
        if field.name in out.column_names:
            cols.append(out.column(field.name).cast(field.type))
        else:  # deferred foreign keys (second pass) and all-NULL columns
            cols.append(pa.nulls(out.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=art.arrow_schema), stats


def model_context(context: pa.Table | None, kept: pa.Table | None) -> pa.Table | None:
    """What a table model is conditioned on: its context parent's columns (prefixed) and its kept columns
    (prefixed with ``KEPT_PREFIX``), one row per row to sample; None when there is neither."""
    columns: dict[str, pa.ChunkedArray] = {}
    if context is not None:
        columns.update({c: context.column(c) for c in context.column_names})
    if kept is not None:
        columns.update({KEPT_PREFIX + c: kept.column(c) for c in kept.column_names})
    return pa.table(columns) if columns else None


def real_files(run_dir: Path, table: str) -> list[Path]:
    """A table's real rows as extracted: its training part, then its holdout part (where there is one)."""
    ws = Workspace(run_dir)
    return [p for p in (ws.real(table), ws.holdout(table)) if p.exists()]


def kept_rows(run_dir: Path, art: TableArtifacts, start: int, n: int, total: int, seed: int) -> pa.Table | None:
    """The real values of ``art``'s kept columns for rows ``start .. start + n`` of the ``total`` it generates.

    Row ``i`` takes real row ``i * real / total``: at the real size each real row once, a subset evenly spread over
    the real rows when smaller, each real row repeated when larger. A block reads only its slice of the real rows,
    and its rows are shuffled (seeded), so that a parent's children do not get neighbouring real rows.
    """
    if not art.kept_columns or n == 0:
        return None
    files = real_files(run_dir, art.table)
    real = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if real == 0 or total == 0:
        return None
    positions = (np.arange(start, start + n, dtype=np.int64) * real) // total
    lo = int(positions[0])
    window = pl.scan_parquet(files).select(art.kept_columns).slice(lo, int(positions[-1]) - lo + 1).collect()
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, art.table, "kept", start)))
    rows = window.to_arrow().take(pa.array(rng.permutation(positions - lo)))
    assert art.arrow_schema is not None
    return pa.table({c: rows.column(c).cast(art.arrow_schema.field(c).type) for c in art.kept_columns})


def _blocks_for_root(art: TableArtifacts, scale: float, block_rows: int) -> list[tuple[int, int, int]]:
    """(block, start, n) for a root table: ``round(real rows * scale)`` rows, at least one (a tiny scale)."""
    total = max(int(round(art.real_rows * scale)), 1 if art.real_rows > 0 else 0)
    return [
        (b, b * block_rows, min(block_rows, total - b * block_rows))
        for b in range((total + block_rows - 1) // block_rows)
    ]


def _context_block(run_dir: Path, art: TableArtifacts, block: int) -> tuple[pa.Table, pa.Table]:
    """One block of the context parent: its learned columns (prefixed) and its key (renamed to the FK columns)."""
    ctx = art.roles.context
    assert ctx is not None
    part = Workspace(run_dir).part(ctx.parent, block)
    cols = list(dict.fromkeys([*ctx.ref_columns, *art.context_columns]))
    t = pq.read_table(part, columns=cols)
    keys = pa.table({c: t.column(r) for c, r in zip(ctx.columns, ctx.ref_columns, strict=True)})
    if art.context_columns:
        learned = pa.table({CTX_PREFIX + c: t.column(c) for c in art.context_columns})
    else:
        learned = pa.table({NO_CONTEXT: pa.array(np.zeros(t.num_rows, dtype=np.int32))})
    return learned, keys


def _counts(
    art: TableArtifacts, learned: pa.Table, seed: int, block: int, first: int, total: int, factor: float
) -> np.ndarray:
    """Children per parent of one block of ``learned.num_rows`` parents, rows ``first ..`` of ``total``."""
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
    # The mean of several draws estimates each parent's expected count: far fewer ties than one draw, so parents
    # the model gives no children (weather hours at night, when no flight leaves) stay without children.
    # Rank matching: the model decides *which* parents get many children (their dependence on the parent's
    # columns); the real counts, stratified over every parent of the table, decide *how many*, so the table's
    # total follows the real one whatever the seed and however the parents are split into blocks.
    index = np.arange(first, first + learned.num_rows, dtype=np.int64)
    # Ties in the mean draw (parents all drawn at the count's cap) are broken by what the parent's columns predict,
    # not at random: the copula's conditional mean, scaled to stay below one draw's step.
    predicted = art.cardinality.expected_rank(learned)
    spread = float(np.ptp(predicted)) if len(predicted) else 0.0
    scores = np.mean(draws, axis=0) + (0.5 / len(draws)) * (predicted - predicted.min()) / (spread or 1.0)
    return stratified_counts(
        observed, index, total, scores, seed=derive_seed(seed, art.table, "strata"), factor=factor
    )


def own_scale(generation: GenerationConfig, table: str, real_rows: int, *, root: bool) -> float:
    """A table's own factor on top of ``generation.scale`` (``generation.tables.<table>``): its ``scale``, and for
    a root table its subset (``share``, then at most ``rows`` rows). A child's factor multiplies its children per
    parent; its own children, and the rows that reference it, follow."""
    setting = generation.tables.get(table)
    if setting is None:
        return 1.0
    own = setting.scale or 1.0
    if root:
        own *= setting.share or 1.0
        planned = real_rows * generation.scale * own
        if setting.rows is not None and planned > setting.rows:
            own *= setting.rows / planned
    return own


def _strata_factor(art: TableArtifacts, parent_real_rows: int, total: int) -> float:
    """Rescales the stratified real counts so that the table's total is its real rows times the parents' scale.

    The strata of ``total`` generated parents over a count distribution learned on a different number of real
    parents would otherwise miss the total by a share of a heavy parent (3 airports of 1,320 hold every weather
    row: 1,458 generated airports would give them 3.3 strata).
    """
    observed = art.count_quantiles
    if observed is None or len(observed) == 0 or parent_real_rows == 0:
        return 1.0
    base = strata_total(observed, total)
    planned = art.real_rows * (1.0 - art.context_null_share) * total / parent_real_rows
    return planned / base if base > 0 else 1.0


def _cap(art: TableArtifacts, counts: np.ndarray, parents: dict[str, ParentPool]) -> tuple[np.ndarray, int]:
    """Cap each parent's children at what its keys allow (distinct partners, grid slots, one for a 1:1 table)."""
    caps = [group_capacity(rule, parents, art.member_grids) for rule in art.roles.key_rules]
    limits = [c for c in caps if c is not None]
    if not limits:
        return counts, 0
    capped = np.minimum(counts, min(limits))
    return capped, int(counts.sum() - capped.sum())


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
    parents: dict[str, ParentPool],
    locale: str,
    null_rows: int,
    n_parent_blocks: int,
    total: int,
    source: tuple[int, int, int] | None = None,
) -> tuple[int, int]:
    """Block ``block`` of a child table: the children of the parents ``source`` (parent block, first and end row
    in it; see :func:`split_children`), or with ``source`` None, ``null_rows`` rows without a context parent;
    ``start`` is its first row of the table's ``total``."""
    if source is not None:
        parent_block, lo, hi = source
        learned, keys = _context_block(run_dir, art, parent_block)
        learned, keys = learned.slice(lo, hi - lo), keys.slice(lo, hi - lo)
        counts = np.load(Workspace(run_dir).counts(art.table, parent_block))[lo:hi]
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
    out, stats = generate_block(
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
        kept=kept_rows(run_dir, art, start, n, total, seed),
    )
    _write_part(Workspace(run_dir).part(art.table, block), out)
    return out.num_rows, stats.dropped


def _random_parent_rows(
    run_dir: Path, art: TableArtifacts, n_parent_blocks: int, n: int, rng: np.random.Generator
) -> tuple[pa.Table, pa.Table]:
    """``n`` parent rows drawn at random, read part by part so that memory holds ``n`` rows, not the parent."""
    ctx = art.roles.context
    assert ctx is not None
    sizes = np.array(
        [pq.ParquetFile(Workspace(run_dir).part(ctx.parent, b)).metadata.num_rows for b in range(n_parent_blocks)],
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


def _at_least_one_child(
    run_dir: Path, art: TableArtifacts, blocks: list[int], totals: list[int], parents: dict[str, ParentPool]
) -> list[int]:
    """Give the first generated parent one child when the scale gave the whole table none (see ``check_scale``),
    unless its keys cannot hold a row."""
    for b in blocks:
        path = Workspace(run_dir).counts(art.table, b)
        counts = np.load(path)
        if len(counts) == 0:
            continue
        counts[0] = 1
        counts, lost = _cap(art, counts, parents)
        if lost:
            return totals
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
        np.save(tmp, counts)
        os.replace(tmp, path)
        return [1 if i == blocks.index(b) else t for i, t in enumerate(totals)]
    return totals


def _child_totals(
    run_dir: Path,
    art: TableArtifacts,
    blocks: list[int],
    seed: int,
    firsts: list[int],
    total: int,
    parents: dict[str, ParentPool],
    factor: float,
    limit: int,
) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """Phase 1: sample each block's children-per-parent counts once and save them for phase 2.

    Returns, per block, the rows it will hold, the rows its keys could not hold (counts capped at the number
    of distinct partners, grid slots, or one child for a 1:1 table), and its cuts (:func:`split_children`).
    """
    out = []
    for b, first in zip(blocks, firsts, strict=True):
        learned, _ = _context_block(run_dir, art, b)
        counts, lost = _cap(art, _counts(art, learned, seed, b, first, total, factor), parents)
        path = Workspace(run_dir).counts(art.table, b)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
        np.save(tmp, counts)
        os.replace(tmp, path)
        out.append((int(counts.sum()), lost, split_children(counts, limit)))
    return out


def split_children(counts: np.ndarray, limit: int) -> list[tuple[int, int, int]]:
    """Where one parent block's children are cut into child blocks: ``(first parent, end parent, children)``.

    A child block holds at most ``limit`` rows (``generation.block_rows``), so that a worker's memory is bounded
    by the block, not by the table: without cuts, a table whose parents are few (TPC-H's 25 nations) would put
    all its children in one block, and their children too (6M lineitem rows in one task). A parent's children
    are never split (its sequence numbers and key groups are drawn together), so a parent with more than
    ``limit`` children is a block alone. A parent block with at most ``limit`` children stays one block.
    Cuts depend on the counts and ``limit`` only, never on the number of workers.
    """
    n = int(counts.sum())
    if n <= limit:
        return [(0, len(counts), n)]
    ends = np.cumsum(counts, dtype=np.int64)
    cuts = []
    lo = 0
    while lo < len(counts):
        base = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + limit, side="right")))
        cuts.append((lo, hi, int(ends[hi - 1]) - base))
        lo = hi
    return cuts


def run_generate(
    run_dir: Path, schema: DatabaseSchema, plan: Plan, config: RunConfig, *, tracker: Tracker = NO_TRACKER
) -> dict[str, int]:
    """Generate every table in plan order on Ray; returns synthetic rows per table.

    ``tracker`` hears of each table's planned rows, of the rows of each shard as it comes back, and of the table's
    final count.
    """
    import ray

    from pipelines.ray_runtime import stage_task

    seed = config.generation.fixed_seed
    scale = config.generation.scale
    locale = config.privacy.pii_locale
    block_rows = config.generation.block_rows
    blocks_per_shard = max(1, config.generation.shard_rows // block_rows)
    Workspace(run_dir).clear("synth", "counts")  # parts are never rewritten in place: a rerun starts empty

    @stage_task(config.ray, "generate", num_cpus=1)
    def _root_shard(
        art_ref: TableArtifacts, parents: dict[str, ParentPool], work: list[tuple[int, int, int]], planned: int
    ) -> tuple[int, int]:
        total = dropped = 0
        for block, start, n in work:
            out, stats = generate_block(
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
                kept=kept_rows(run_dir, art_ref, start, n, planned, seed),
            )
            _write_part(Workspace(run_dir).part(art_ref.table, block), out)
            total += out.num_rows
            dropped += stats.dropped
        return total, dropped

    @stage_task(config.ray, "generate", num_cpus=1)
    def _totals_shard(
        art_ref: TableArtifacts,
        blocks: list[int],
        firsts: list[int],
        total: int,
        parents: dict[str, ParentPool],
        factor: float,
    ) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
        return _child_totals(run_dir, art_ref, blocks, seed, firsts, total, parents, factor, block_rows)

    @stage_task(config.ray, "generate", num_cpus=1)
    def _child_shard(
        art_ref: TableArtifacts,
        parents: dict[str, ParentPool],
        work: list[tuple[int, int, int, tuple[int, int, int] | None]],
        n_parent_blocks: int,
        total: int,
    ) -> tuple[int, int]:
        done = [
            _child_block(run_dir, art_ref, b, start, seed, parents, locale, n_null, n_parent_blocks, total, source)
            for b, start, n_null, source in work
        ]
        return sum(r for r, _ in done), sum(d for _, d in done)

    subsets = _subsets(run_dir, schema, plan, config)
    rows: dict[str, int] = {}
    planned: dict[str, int] = {}
    capped: dict[str, int] = {}
    arts: dict[str, TableArtifacts] = {}
    pools: dict[str, dict[str, ParentPool]] = {}
    for generation in plan.generations:
        pending = []
        for name in generation:
            art = load_artifacts(run_dir, name)
            wanted = [(k.split(".", 1)[1], v) for k, v in config.generation.rebalance.items() if k.split(".", 1)[0] == name]
            art.rebalance = wanted[0] if wanted else None
            parents = {} if art.kept else {  # a kept table keeps its real keys: nothing to wire
                ref.label: _parent_pool(
                    run_dir, ref, art.fk_stats[ref.label].indegree, seed, getattr(art, "matchers", {}).get(ref.label)
                )
                for ref in art.roles.secondary
            }
            arts[name] = art
            pools[name] = parents
            art_ref = ray.put(art)
            parents_ref = ray.put(parents)
            Workspace(run_dir).synth(name).mkdir(parents=True, exist_ok=True)
            if art.kept:
                rows[name] = _copy_kept(run_dir, art, block_rows, subsets.get(name))
                tracker.table_done("generate", name, rows[name])
                if name in subsets:
                    log.info("generate: %s: %d real rows kept (mode: subset, closed)", name, rows[name])
                else:
                    log.info("generate: %s: %d real rows kept as they are (mode: keep)", name, rows[name])
                continue
            if art.roles.context is None:
                own = own_scale(config.generation, name, art.real_rows, root=True)
                work = _blocks_for_root(art, scale * own, block_rows)
                root_shards = [work[i : i + blocks_per_shard] for i in range(0, len(work), blocks_per_shard)]
                planned[name] = sum(n for _, _, n in work)
                tracker.table_total("generate", name, planned[name])
                pending.append(
                    (name, [_root_shard.remote(art_ref, parents_ref, s, planned[name]) for s in root_shards])
                )
                continue
            parent_parts = Workspace(run_dir).parts(art.roles.context.parent)
            n_parent_blocks = len(parent_parts)
            sizes = [pq.ParquetFile(p).metadata.num_rows for p in parent_parts]
            firsts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            blocks = list(range(n_parent_blocks))
            shards = [blocks[i : i + blocks_per_shard] for i in range(0, len(blocks), blocks_per_shard)]
            factor = _strata_factor(art, arts[art.roles.context.parent].real_rows, int(firsts[-1]))
            factor *= own_scale(config.generation, name, art.real_rows, root=False)
            phase1 = [
                t
                for part in ray.get(
                    [
                        _totals_shard.remote(
                            art_ref, s, [int(firsts[b]) for b in s], int(firsts[-1]), parents_ref, factor
                        )
                        for s in shards
                    ]
                )
                for t in part
            ]
            totals = [t for t, _, _ in phase1]
            cuts = [(b, lo, hi, n) for b, (_, _, parts) in zip(blocks, phase1, strict=True) for lo, hi, n in parts]
            if sum(totals) == 0 and art.real_rows > 0:  # a tiny scale: the table still gets a row
                totals = _at_least_one_child(run_dir, art, blocks, totals, parents)
                cuts = [(b, 0, sizes[b], totals[b]) for b in blocks]  # at most one row: no block is cut
            capped[name] = sum(lost for _, lost, _ in phase1)
            null_rows = _null_context_rows(art, sum(totals))
            null_blocks = [
                (len(cuts) + j, min(block_rows, null_rows - j * block_rows))
                for j in range((null_rows + block_rows - 1) // block_rows)
            ]
            # child block j holds the children of cut j (block j of the parent when no block is cut)
            work2: list[tuple[int, int, int, tuple[int, int, int] | None]] = []
            offset = 0
            for j, (b, lo, hi, n) in enumerate(cuts):
                work2.append((j, offset, 0, (b, lo, hi)))
                offset += n
            for b, n_null in null_blocks:
                work2.append((b, offset, n_null, None))
                offset += n_null
            shards2 = [work2[i : i + blocks_per_shard] for i in range(0, len(work2), blocks_per_shard)]
            pending.append(
                (
                    name,
                    [_child_shard.remote(art_ref, parents_ref, s, n_parent_blocks, offset) for s in shards2],
                )
            )
            planned[name] = offset + capped[name]
            tracker.table_total("generate", name, offset)
        owner = [name for name, refs in pending for _ in refs]  # the generation's shards, counted as they come back
        counted = functools.partial(_count_shard, tracker, owner)
        each = iter(gather([r for _, refs in pending for r in refs], counted))
        for name, refs in pending:
            done = [next(each) for _ in refs]
            rows[name] = int(sum(r for r, _ in done)) - _repair_table_keys(run_dir, arts[name], pools[name], seed)
            lost = capped.get(name, 0) + int(sum(d for _, d in done))
            if lost:
                log.warning(
                    "generate: %s: %d rows (%d planned): %d could not get a unique key (a key made of foreign "
                    "keys or of a learned value has fewer distinct values than its group asked for)",
                    name, rows[name], planned[name], lost,
                )
            else:
                log.info("generate: %s: %d rows", name, rows[name])
            tracker.table_done("generate", name, rows[name])
    _fill_deferred(run_dir, schema, plan, seed)
    _unique_pii(run_dir, schema, plan)
    return rows


def _count_shard(tracker: Tracker, owner: list[str], i: int, out: tuple[int, int]) -> None:
    tracker.advance("generate", owner[i], out[0])


def rebalance_summary(run_dir: Path, config: RunConfig) -> dict[str, dict[str, dict[str, float]]]:
    """Per rebalanced ``table.column`` and value: the share wanted, reached (synthetic) and real (all real rows)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, wanted in config.generation.rebalance.items():
        table, column = key.split(".", 1)
        real_files = [Workspace(run_dir).real(table), Workspace(run_dir).holdout(table)]
        sides = {
            "real": [str(p) for p in real_files if p.exists()],
            "reached": [str(p) for p in Workspace(run_dir).parts(table)],
        }
        shares: dict[str, dict[str, float]] = {}
        for side, files in sides.items():
            if not files:
                continue
            counts = (
                pl.scan_parquet(files).select(pl.col(column).cast(pl.String).alias("v")).group_by("v").len().collect()
            )
            total = max(int(counts["len"].sum()), 1)
            got = dict(zip(counts["v"].to_list(), counts["len"].to_list(), strict=True))
            for value in wanted:
                shares.setdefault(value, {"wanted": wanted[value]})[side] = got.get(value, 0) / total
        out[key] = shares
    return out


def _subsets(run_dir: Path, schema: DatabaseSchema, plan: Plan, config: RunConfig) -> dict[str, np.ndarray]:
    """The real rows each ``mode: subset`` table keeps, by position (see :mod:`pipelines.stages.subset`)."""
    from pipelines.stages.subset import subset_positions

    chosen = [t.name for t in schema.active_tables if t.mode == "subset"]
    if not chosen:
        return {}
    needed = set(chosen) | {fk.ref_table for t in chosen for fk in schema.table(t).foreign_keys}
    return subset_positions(
        schema,
        plan,
        chosen,
        {t: real_files(run_dir, t) for t in needed if schema.has_table(t) and not schema.table(t).excluded},
        {t: g for t, g in config.generation.tables.items() if t in chosen},
        seed=config.generation.fixed_seed,
    )


def _copy_kept(run_dir: Path, art: TableArtifacts, block_rows: int, positions: np.ndarray | None = None) -> int:
    """A kept table's real rows (training and holdout parts), copied as they are into blocks of its synthetic
    output, so that children are conditioned on them and wired to them like on generated parents. With
    ``positions`` (a subset: sorted row numbers across those parts), only those rows."""
    assert art.arrow_schema is not None
    block = total = offset = 0
    for path in real_files(run_dir, art.table):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=block_rows, columns=art.arrow_schema.names):
            part = pa.Table.from_batches([batch]).cast(art.arrow_schema)
            if positions is not None:
                lo, hi = np.searchsorted(positions, [offset, offset + batch.num_rows])
                part = part.take(pa.array(positions[lo:hi] - offset))
            offset += batch.num_rows
            if part.num_rows == 0 and block > 0:
                continue
            _write_part(Workspace(run_dir).part(art.table, block), part)
            block += 1
            total += part.num_rows
    return total


def _fill_deferred(run_dir: Path, schema: DatabaseSchema, plan: Plan, seed: int) -> None:
    """Second pass: foreign keys deferred to break cycles and self-references, now that every table exists."""
    for ref in plan.deferred:
        art = load_artifacts(run_dir, ref.table)
        if art.kept:  # its real keys stay: every table it references is kept too
            continue
        stats = art.fk_stats[ref.label]
        parents = _parent_pool(run_dir, ref, stats.indegree, seed)
        for i, path in enumerate(Workspace(run_dir).parts(ref.table)):
            t = pq.read_table(path)
            rng = np.random.Generator(np.random.PCG64(derive_seed(seed, ref.table, ref.label, "deferred", i)))
            chosen = pick_parents(t.num_rows, parents, stats.null_share, rng)
            for c in ref.columns:
                idx = t.column_names.index(c)
                t = t.set_column(idx, t.schema.field(c), chosen.column(c).cast(t.schema.field(c).type))
            _write_part(path, t)


def _repair_table_keys(run_dir: Path, art: TableArtifacts, parents: dict[str, ParentPool], seed: int) -> int:
    """Make the table's table-wide keys unique across all its blocks (see ``repair_table_keys``).

    Reads only the key columns of every part, and rewrites only the parts that change. Returns the rows dropped
    (only where a key has fewer distinct values than the table has rows).
    """
    rules = [r for r in art.roles.key_rules if r.scope == "table"]
    if not rules:
        return 0
    parts = Workspace(run_dir).parts(art.table)
    if not parts:
        return 0
    by_label = {ref.label: ref for ref in art.roles.secondary}
    dropped = 0
    for rule in rules:
        refs = [by_label[label] for label in rule.drawn if label in by_label]
        sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]  # a rule before may have dropped rows
        keys = pa.concat_tables([pq.read_table(p, columns=list(rule.columns)) for p in parts])
        fixed, keep = repair_table_keys(
            keys,
            rule,
            refs,
            parents,
            art.member_grids.get(rule.columns),
            seed=derive_seed(seed, art.table, "table-keys", *rule.columns),
        )
        if fixed.equals(keys) and keep.all():
            continue
        offset = 0
        for path, n in zip(parts, sizes, strict=True):
            piece, k = fixed.slice(offset, n), keep[offset : offset + n]
            if not (piece.equals(keys.slice(offset, n)) and k.all()):
                t = pq.read_table(path)
                for c in rule.columns:
                    t = t.set_column(t.schema.get_field_index(c), t.schema.field(c), piece.column(c))
                _write_part(path, t.filter(pa.array(k)))
            offset += n
        lost = int((~keep).sum())
        if lost:
            log.warning(
                "generate: %s: key (%s) has fewer distinct values than rows; %d rows dropped",
                art.table, ", ".join(rule.columns), lost,
            )
        dropped += lost
    return dropped


def _unique_pii(run_dir: Path, schema: DatabaseSchema, plan: Plan) -> None:
    """Faked values of a unique column are unique per block; make them unique across blocks too."""
    for table in schema.active_tables:
        art = load_artifacts(run_dir, table.name)
        cols = [c for c in art.roles.unique_single if art.roles.roles.get(c) is Role.PII]
        if not cols or art.kept:
            continue
        parts = Workspace(run_dir).parts(table.name)
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
