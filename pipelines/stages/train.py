"""train: one Ray task per table fits its model on real rows, conditioned on its context parent's real rows.

Training jobs are independent of each other (each child trains on *real* parent rows), so they all run at once.
A task fits:
- the table model (a Gaussian copula over the learned columns, conditioned on the context parent's learned columns);
- the cardinality model (children per context parent, conditioned on the parent's columns; zeros included);
- key formats (unique, format-preserving keys), PII formats, and the in-degree and null share of every other
  foreign key, which generation uses to wire children to generated parents.
Artifacts go to the model store in the run directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.stages.extract import table_dir
from schemas.config import RunConfig
from schemas.kinds import Kind
from schemas.model import DatabaseSchema
from schemas.plan import FkRef, Plan
from schemas.policy import Role, TableRoles, table_roles
from synth_engine.cardinality import CopulaCardinalityModel
from synth_engine.copula import GaussianCopulaModel
from synth_engine.keys import KeyFormat, MemberGrid
from synth_engine.store import ModelStore

log = logging.getLogger(__name__)

CTX_PREFIX = (
    "ctx\x1f"  # context columns travel beside the target's; the unit separator cannot clash with a name
)
_INDEGREE_CAP = 100_000
NO_CONTEXT = CTX_PREFIX + "__rows"  # stands in for a parent without learned columns, so row counts survive


@dataclass
class FkStats:
    """How a foreign key is used in the real data: its NULL share and children per parent (zeros included)."""

    ref: FkRef
    null_share: float
    indegree: np.ndarray


@dataclass
class TableArtifacts:
    """Everything generation needs for one table."""

    table: str
    real_rows: int
    roles: TableRoles
    model: GaussianCopulaModel | None = None
    context_columns: list[str] = field(default_factory=list)  # parent's learned columns, unprefixed
    cardinality: CopulaCardinalityModel | None = None
    context_null_share: float = 0.0
    key_formats: dict[str, KeyFormat] = field(default_factory=dict)
    fk_stats: dict[str, FkStats] = field(default_factory=dict)
    pii_like: dict[str, pa.Array] = field(default_factory=dict)
    pii_kinds: dict[str, str] = field(default_factory=dict)
    fake_null_share: dict[str, float] = field(default_factory=dict)
    count_quantiles: np.ndarray | None = None  # sorted children-per-parent counts of the real data (zeros in)
    train_rows: int = 0  # rows trained on (the holdout excluded)
    context_kinds: dict[str, Kind] | None = None  # how the context parent's columns are conditioned on
    nullable_cols: set[str] = field(default_factory=set)
    arrow_schema: pa.Schema | None = None
    member_grids: dict[tuple[str, ...], MemberGrid] = field(default_factory=dict)  # learned key members' grids


def real_path(run_dir: Path, table: str) -> Path:
    return table_dir(run_dir, "real", table) / "data.parquet"


def sample_parquet(path: Path, columns: list[str], max_rows: int | None, *, seed: int) -> pa.Table:
    """A uniform sample of at most ``max_rows`` rows, read batch by batch so memory stays bounded."""
    pf = pq.ParquetFile(path)
    total = pf.metadata.num_rows
    if max_rows is None or total <= max_rows:
        return pf.read(columns=columns)
    rng = np.random.Generator(np.random.PCG64(seed))
    keep_share = max_rows / total
    parts = []
    for batch in pf.iter_batches(batch_size=65_536, columns=columns):
        mask = rng.random(batch.num_rows) < keep_share
        parts.append(pa.Table.from_batches([batch]).filter(pa.array(mask)))
    out = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table().select(columns)
    return out.slice(0, max_rows)


def detect_sequences(run_dir: Path, schema: DatabaseSchema, plan: Plan) -> dict[str, set[str]]:
    """Composite-key integer columns that count 1..k within each parent (like ``order_line.line_no``)."""
    found: dict[str, set[str]] = {}
    for table in schema.active_tables:
        ctx = plan.context.get(table.name)
        if not table.primary_key or ctx is None:
            continue
        pk = table.primary_key.columns
        rest = [c for c in pk if c not in ctx.columns]
        if len(rest) != 1 or not set(ctx.columns) <= set(pk):
            continue
        col = table.column(rest[0])
        if col.family.value != "integer":
            continue
        lf = pl.scan_parquet(real_path(run_dir, table.name)).select([*ctx.columns, rest[0]])
        stats = (
            lf.group_by(list(ctx.columns))
            .agg(pl.col(rest[0]).min().alias("lo"), pl.col(rest[0]).max().alias("hi"), pl.len().alias("n"))
            .select(
                ((pl.col("lo") == 1) & (pl.col("hi") == pl.col("n"))).all().alias("ok"), pl.len().alias("g")
            )
            .collect()
        )
        if stats.height and stats["g"][0] > 0 and bool(stats["ok"][0]):
            found.setdefault(table.name, set()).add(rest[0])
    return found


def _indegree(child: Path, ref: FkRef, parent: Path, *, seed: int) -> FkStats:
    cols = list(ref.columns)
    lf = pl.scan_parquet(child).select(cols)
    totals = lf.select(
        pl.len().alias("n"), pl.any_horizontal([pl.col(c).is_null() for c in cols]).sum().alias("nulls")
    )
    t = totals.collect()
    n, nulls = int(t["n"][0]), int(t["nulls"][0])
    counts = lf.drop_nulls().group_by(cols).len().select("len").collect()["len"].to_numpy()
    n_parents = pq.ParquetFile(parent).metadata.num_rows
    zeros = max(0, n_parents - len(counts))
    indegree = np.concatenate([counts.astype(np.int64), np.zeros(zeros, dtype=np.int64)])
    if len(indegree) > _INDEGREE_CAP:
        indegree = np.random.Generator(np.random.PCG64(seed)).choice(indegree, _INDEGREE_CAP, replace=False)
    return FkStats(ref=ref, null_share=nulls / n if n else 0.0, indegree=indegree)


_FEW_VALUES = 32


def _context_kinds(parents: pl.DataFrame, kinds: dict[str, Kind]) -> dict[str, Kind]:
    """Kinds to condition on: a number with few values (an hour, a month) becomes a category of the context.

    A Gaussian copula only learns monotone dependence on a numeric context, but children often depend on such a
    number in other ways: flights leave by day, not at night, so flights per weather hour rise and fall with the
    hour. As categories, each value gets its own effect.
    """
    out: dict[str, Kind] = {}
    for name, kind in kinds.items():
        col = CTX_PREFIX + name
        if kind is Kind.NUMERIC and col in parents.columns and parents[col].dtype.is_integer():
            if parents[col].n_unique() <= _FEW_VALUES:
                kind = Kind.CATEGORICAL
        out[col] = kind
    return out


def _count_factor(run_dir: Path, table: str) -> float:
    import json

    summary = run_dir / "holdout" / "summary.json"
    if not summary.exists():
        return 1.0
    return float(json.loads(summary.read_text()).get("count_factor", {}).get(table, 1.0))


def train_table(
    run_dir: Path, schema: DatabaseSchema, plan: Plan, table_name: str, config: RunConfig, sequences: set[str]
) -> TableArtifacts:
    """Fit everything generation needs for one table (runs inside a Ray task)."""
    table = schema.table(table_name)
    roles = table_roles(table, plan, sequence_columns=sequences)
    path = real_path(run_dir, table_name)
    arrow_schema = pa.schema([pa.field(c.name, c.sql_type.to_arrow()) for c in table.active_columns])
    real_rows = train_rows = pq.ParquetFile(path).metadata.num_rows
    held = table_dir(run_dir, "holdout", table_name) / "data.parquet"
    if held.exists():
        # root tables are generated at the size of the real table, not of its training part
        real_rows += pq.ParquetFile(held).metadata.num_rows
    art = TableArtifacts(table=table_name, real_rows=real_rows, roles=roles, arrow_schema=arrow_schema)
    art.train_rows = train_rows
    art.nullable_cols = {c.name for c in table.active_columns if c.nullable}
    art.pii_kinds = {c.name: str(c.kind) for c in table.active_columns if roles.roles.get(c.name) is Role.PII}
    seed = config.generation.seed
    max_rows = config.training.max_rows
    eps = config.privacy.epsilon
    learned = list(roles.learned_kinds)
    ctx = roles.context
    parent_roles = None
    if ctx is not None:
        parent = schema.table(ctx.parent)
        parent_roles = table_roles(parent, plan)
        art.context_columns = list(parent_roles.learned_kinds)

    sample_cols = sorted(
        set(learned)
        | set(ctx.columns if ctx else ())
        | set(roles.columns(Role.KEY))
        | set(roles.columns(Role.PII)),
        key=[c.name for c in table.active_columns].index,
    )
    target = sample_parquet(path, sample_cols, max_rows, seed=seed)

    for col in roles.columns(Role.KEY):
        art.key_formats[col] = KeyFormat.learn(target.column(col))
    for rule in roles.key_rules:
        if rule.learned:
            art.member_grids[rule.columns] = MemberGrid.learn(target, rule.learned)
    for col in roles.columns(Role.PII):
        values = target.column(col)
        art.pii_like[col] = values.drop_null().slice(0, 1000).combine_chunks()
        art.fake_null_share[col] = values.null_count / len(values) if len(values) else 0.0

    context_tbl = None
    if ctx is not None and parent_roles is not None:
        parent_path = real_path(run_dir, ctx.parent)
        fk_cols = list(ctx.columns)
        present = pl.from_arrow(target.select(fk_cols))
        assert isinstance(present, pl.DataFrame)
        non_null = present.select(pl.all_horizontal([pl.col(c).is_not_null() for c in fk_cols])).to_series()
        art.context_null_share = float(1.0 - non_null.mean()) if len(non_null) else 0.0
        rename = {r: c for r, c in zip(ctx.ref_columns, fk_cols, strict=True)}
        pcols = list(dict.fromkeys([*ctx.ref_columns, *art.context_columns]))
        parent_df = (
            pl.scan_parquet(parent_path)
            .select(pcols)
            .select(
                [pl.col(r).alias(rename[r]) for r in ctx.ref_columns]
                + [pl.col(c).alias(CTX_PREFIX + c) for c in art.context_columns]
            )
        )
        tdf = pl.from_arrow(target)
        assert isinstance(tdf, pl.DataFrame)
        tdf = tdf.with_row_index("__row")
        keys = tdf.select(fk_cols).drop_nulls().unique()
        joined = tdf.join(
            parent_df.join(keys.lazy(), on=fk_cols, how="semi").collect(), on=fk_cols, how="inner"
        )
        joined = joined.sort("__row")
        target = joined.select([c for c in sample_cols]).to_arrow()
        context_tbl = joined.select([CTX_PREFIX + c for c in art.context_columns]).to_arrow()
        # cardinality: children per parent over the whole child table, zeros included
        counts = pl.scan_parquet(path).select(fk_cols).drop_nulls().group_by(fk_cols).len()
        parents = sample_parquet(parent_path, pcols, max_rows, seed=seed + 1)
        pdf = pl.from_arrow(parents)
        assert isinstance(pdf, pl.DataFrame)
        pdf = pdf.select(
            [pl.col(r).alias(rename[r]) for r in ctx.ref_columns]
            + [pl.col(c).alias(CTX_PREFIX + c) for c in art.context_columns]
        )
        with_counts = pdf.join(counts.collect(), on=fk_cols, how="left").with_columns(
            pl.col("len").fill_null(0)
        )
        ctx_kinds = _context_kinds(pdf, parent_roles.learned_kinds)
        art.context_kinds = ctx_kinds
        if not ctx_kinds:  # a parent with keys only: the count distribution is learned alone
            with_counts = with_counts.with_columns(pl.lit(0).alias(NO_CONTEXT))
        max_count = int(with_counts["len"].max() or 0)
        observed = np.sort(with_counts["len"].to_numpy().astype(np.int64))
        if len(observed) > _INDEGREE_CAP:
            observed = observed[np.linspace(0, len(observed) - 1, _INDEGREE_CAP).astype(np.int64)]
        factor = _count_factor(run_dir, table_name)
        if factor != 1.0:
            # a share of this table's rows was held out under parents that stayed in training: correct their counts
            observed = np.round(observed * factor).astype(np.int64)
        art.count_quantiles = observed
        art.cardinality = CopulaCardinalityModel(
            ctx_kinds, max_count=max_count, one_to_one=roles.one_to_one, epsilon=eps
        ).fit(with_counts.select(list(ctx_kinds) or [NO_CONTEXT]).to_arrow(), with_counts["len"].to_arrow())

    if learned and target.num_rows:
        ctx_kinds = art.context_kinds if parent_roles is not None else None
        use_ctx = context_tbl if (context_tbl is not None and context_tbl.num_columns) else None
        art.model = GaussianCopulaModel(
            roles.learned_kinds, ctx_kinds if use_ctx is not None else None, epsilon=eps
        ).fit(target.select(learned), context=use_ctx)

    for ref in [*roles.secondary, *roles.deferred]:
        art.fk_stats[ref.label] = _indegree(path, ref, real_path(run_dir, ref.ref_table), seed=seed)
    return art


def _store(run_dir: Path, table: str) -> ModelStore:
    return ModelStore(table_dir(run_dir, "models", table))


def save_artifacts(run_dir: Path, art: TableArtifacts) -> Path:
    """Save a table's artifacts in the run's model store (atomically), so a later run can sample without training."""
    return _store(run_dir, art.table).save("artifacts", art, {"table": art.table, "real_rows": art.real_rows})


def load_artifacts(run_dir: Path, table: str) -> TableArtifacts:
    art = _store(run_dir, table).load("artifacts")
    assert isinstance(art, TableArtifacts)
    return art


def run_train(run_dir: Path, schema: DatabaseSchema, plan: Plan, config: RunConfig) -> dict[str, int]:
    """Train every table in parallel on Ray (a GPU per task only where the cluster has one)."""
    import ray

    from pipelines.ray_runtime import task_resources

    sequences = detect_sequences(run_dir, schema, plan)
    resources = task_resources(
        config.ray, wants_gpu=False
    )  # the copula runs on numpy; neural models ask for one

    @ray.remote(max_retries=1)
    def _task(table_name: str) -> tuple[str, int]:
        art = train_table(run_dir, schema, plan, table_name, config, sequences.get(table_name, set()))
        save_artifacts(run_dir, art)
        return table_name, art.train_rows

    refs = [_task.options(**resources).remote(t) for t in plan.training_jobs]  # type: ignore[arg-type]
    done: dict[str, int] = {}
    for name, rows in ray.get(refs):
        done[name] = rows
        log.info("train: %s fitted on %d real rows", name, rows)
    return done
