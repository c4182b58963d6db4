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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines._internal.progress import NO_TRACKER, Tracker, gather
from pipelines.stages._models import ModelChoice, choose_model
from pipelines.stages.budget import text_keys
from pipelines.workspace import Workspace
from schemas.config import RunConfig
from schemas.errors import ModelError
from schemas.kinds import Kind
from schemas.model import DatabaseSchema, Table
from schemas.plan import FkRef, Plan
from schemas.policy import Role, TableRoles, learned_kind, table_roles
from synth_engine._internal.arrow_numbers import from_float, plain, to_float
from synth_engine._internal.encoding import CategoricalMarginal, NumericMarginal
from synth_engine.cardinality import CopulaCardinalityModel
from synth_engine.copula import GaussianCopulaModel
from synth_engine.keys import ForeignKeyMatcher, KeyFormat, MemberGrid
from synth_engine.pii import PiiFormat, learn_private_format, private_releases
from synth_engine.privacy import Budget, CopulaPrivacy, NetworkPrivacy, Spend, TableAllocation
from synth_engine.privacy import mechanisms as dpm
from synth_engine.protocol import TableModel
from synth_engine.store import ModelStore

log = logging.getLogger(__name__)

CTX_PREFIX = (
    "ctx\x1f"  # context columns travel beside the target's; the unit separator cannot clash with a name
)
_INDEGREE_CAP = 100_000
NO_CONTEXT = CTX_PREFIX + "__rows"  # stands in for a parent without learned columns, so row counts survive
KEPT_PREFIX = "kept\x1f"  # a table's own kept columns (mode: keep), conditioned on beside its parent's columns


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
    model: TableModel | None = None  # a GaussianCopulaModel or a NeuralTableModel (see ``model_choice``)
    model_choice: ModelChoice | None = None  # which model, and why
    context_columns: list[str] = field(default_factory=list)  # parent's learned columns, unprefixed
    cardinality: CopulaCardinalityModel | None = None
    context_null_share: float = 0.0
    key_formats: dict[str, KeyFormat] = field(default_factory=dict)
    fk_stats: dict[str, FkStats] = field(default_factory=dict)
    pii_formats: dict[str, PiiFormat] = field(default_factory=dict)  # formats of PII and free text, never values
    pii_kinds: dict[str, str] = field(default_factory=dict)
    fake_null_share: dict[str, float] = field(default_factory=dict)
    count_quantiles: np.ndarray | None = None  # sorted children-per-parent counts of the real data (zeros in)
    train_rows: int = 0  # rows trained on (the holdout excluded)
    context_kinds: dict[str, Kind] | None = None  # how the context parent's columns are conditioned on
    nullable_cols: set[str] = field(default_factory=set)
    arrow_schema: pa.Schema | None = None
    member_grids: dict[tuple[str, ...], MemberGrid] = field(default_factory=dict)  # learned key members' grids
    privacy_spent: list[Spend] = field(default_factory=list)  # the DP mechanisms released (empty without DP)
    matchers: dict[str, ForeignKeyMatcher] = field(default_factory=dict)  # secondary FKs matched by content
    kept: bool = False  # mode: keep or subset: the real rows are copied as they are, nothing is learned
    kept_columns: list[str] = field(default_factory=list)  # columns with mode: keep: real values, conditioned on
    rebalance: tuple[str, dict[str, float]] | None = None  # set by generation: a column's wanted value shares


def real_path(run_dir: Path, table: str) -> Path:
    return Workspace(run_dir).real(table)


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


def detect_sequences(
    run_dir: Path, schema: DatabaseSchema, plan: Plan, budget: Budget | None = None, *, seed: int = 0
) -> tuple[dict[str, set[str]], dict[str, list[Spend]]]:
    """Composite-key integer columns that count 1..k within each parent (like ``order_line.line_no``), and what
    deciding that spent per table.

    Without DP: a column is a sequence when every parent's values are exactly 1..k. Under DP (``budget``): the
    number of parents where they are not, and the number of parents, are Gaussian counts (one row changes each by
    at most 1); a column is a sequence when the noisy exceptions are under two noise deviations or 1% of the noisy
    parents.
    """
    from pipelines.stages.budget import sequence_candidates
    from synth_engine import derive_seed

    found: dict[str, set[str]] = {}
    spent: dict[str, list[Spend]] = {}
    for table in schema.active_tables:
        ctx = plan.context.get(table.name)
        candidates = sequence_candidates(table, plan)
        if ctx is None or not candidates:
            continue
        member = candidates[0]
        lf = pl.scan_parquet(real_path(run_dir, table.name)).select([*ctx.columns, member])
        stats = (
            lf.group_by(list(ctx.columns))
            .agg(pl.col(member).min().alias("lo"), pl.col(member).max().alias("hi"), pl.len().alias("n"))
            .select(
                (~((pl.col("lo") == 1) & (pl.col("hi") == pl.col("n")))).sum().alias("bad"), pl.len().alias("g")
            )
            .collect()
        )
        bad, groups = (int(stats["bad"][0]), int(stats["g"][0])) if stats.height else (0, 0)
        allocation = budget.tables.get(table.name) if budget is not None else None
        multiplier = allocation.statistic_multiplier("sequences") if allocation is not None else None
        if budget is not None and multiplier is not None:
            m = multiplier * float(np.sqrt(2.0))  # two counts share the statistic
            rng = np.random.Generator(np.random.PCG64(derive_seed(seed, table.name, "sequences")))
            noisy_bad, noisy_groups = bad + rng.normal(0.0, m), groups + rng.normal(0.0, m)
            spent[table.name] = [Spend(table.name, "sequences", m, 2)]
            if noisy_groups > 0 and noisy_bad < max(2.0 * m, 0.01 * noisy_groups):
                found.setdefault(table.name, set()).add(member)
        elif groups > 0 and bad == 0:
            found.setdefault(table.name, set()).add(member)
    return found, spent


def _indegree(
    child: Path, ref: FkRef, parent: Path, *, seed: int, dp: _Private | None = None, public_parent: bool = False
) -> FkStats:
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
    if dp is not None:
        counts_dp = dp.counts("indegree", indegree, public_parents=public_parent)
        return FkStats(ref=ref, null_share=dp.null_share(cols, nulls, n), indegree=counts_dp)
    if len(indegree) > _INDEGREE_CAP:
        indegree = np.random.Generator(np.random.PCG64(seed)).choice(indegree, _INDEGREE_CAP, replace=False)
    return FkStats(ref=ref, null_share=nulls / n if n else 0.0, indegree=indegree)


_MATCH_ROWS = 50_000  # real child rows a foreign-key matcher is fitted on at most


def _matched_refs(roles: TableRoles) -> list[FkRef]:
    """Secondary foreign keys matched by content (see :mod:`synth_engine.keys.matching`).

    Not: deferred keys (filled in a second pass, by in-degree), keys inside a primary or unique key (drawn without
    replacement or repaired table-wide), keys sharing a column with the context key (drawn among agreeing parents),
    and any key when the child has no learned column.
    """
    if not roles.learned_kinds:
        return []
    in_rules = {c for rule in roles.key_rules for c in rule.columns}
    ctx = set(roles.context.columns) if roles.context else set()
    return [r for r in roles.secondary if not (set(r.columns) & (in_rules | ctx))]


def _fit_matcher(
    run_dir: Path,
    schema: DatabaseSchema,
    plan: Plan,
    roles: TableRoles,
    ref: FkRef,
    max_rows: int | None,
    *,
    seed: int,
) -> ForeignKeyMatcher | None:
    """The child's real rows joined to their real parents' learned columns, and every real parent's in-degree.

    None when the parent has no learned column or no child row finds its parent.
    """
    parent_kinds = table_roles(schema.table(ref.ref_table), plan).learned_kinds
    if not parent_kinds:
        return None
    cols = list(ref.columns)
    child_cols = [c for c in roles.learned_kinds if c not in cols]
    if not child_cols:
        return None
    cap = min(max_rows or _MATCH_ROWS, _MATCH_ROWS)
    child = pl.from_arrow(sample_parquet(real_path(run_dir, roles.table), [*cols, *child_cols], cap, seed=seed))
    assert isinstance(child, pl.DataFrame)
    child = child.drop_nulls(subset=cols).rename({c: f"__c\x1f{c}" for c in child_cols})
    pcols = list(parent_kinds)
    parent_path = real_path(run_dir, ref.ref_table)
    named = [  # the parent's key named (and typed) as the child's foreign key, so that they join
        *[pl.col(r).alias(c).cast(child.schema[c]) for r, c in zip(ref.ref_columns, cols, strict=True)],
        *[pl.col(c).alias(f"__p\x1f{c}") for c in pcols],
    ]
    # memory stays bounded: the parents of the sampled children, and a sample of every parent for the in-degree
    parents = (
        pl.scan_parquet(parent_path)
        .select(named)
        .join(child.lazy().select(cols).unique(), on=cols, how="semi")
        .unique(subset=cols, keep="first")
        .collect()
    )
    joined = child.join(parents, on=cols, how="inner")
    if joined.height < 2:
        return None
    sampled = pl.from_arrow(
        sample_parquet(parent_path, list(dict.fromkeys([*ref.ref_columns, *pcols])), _INDEGREE_CAP, seed=seed)
    )
    assert isinstance(sampled, pl.DataFrame)
    counts = pl.scan_parquet(real_path(run_dir, roles.table)).select(cols).drop_nulls().group_by(cols).len().collect()
    with_counts = (
        sampled.select(named).join(counts, on=cols, how="left").with_columns(pl.col("len").fill_null(0))
    )
    unprefix = {f"__p\x1f{c}": c for c in pcols}
    return ForeignKeyMatcher(roles.learned_kinds, parent_kinds, max_fit_rows=_MATCH_ROWS).fit(
        joined.select([f"__c\x1f{c}" for c in child_cols]).rename({f"__c\x1f{c}": c for c in child_cols}).to_arrow(),
        joined.select(list(unprefix)).rename(unprefix).to_arrow(),
        parents=with_counts.select(list(unprefix)).rename(unprefix).to_arrow(),
        indegree=with_counts["len"].to_numpy(),
    )


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

    summary = Workspace(run_dir).holdout_summary
    if not summary.exists():
        return 1.0
    return float(json.loads(summary.read_text()).get("count_factor", {}).get(table, 1.0))


def train_table(
    run_dir: Path,
    schema: DatabaseSchema,
    plan: Plan,
    table_name: str,
    config: RunConfig,
    sequences: set[str],
    allocation: TableAllocation | None = None,
    choice: ModelChoice | None = None,
    spent: list[Spend] | None = None,
) -> TableArtifacts:
    """Fit everything generation needs for one table (runs inside a Ray task).

    With ``privacy.epsilon`` set, ``allocation`` is the table's part of the budget (computed from the config
    when not given) and every statistic below goes through a DP mechanism (see :class:`_Private`). ``choice``
    is the table model to train (see :mod:`pipelines.stages._models`; chosen here, without a GPU, when not given).
    ``spent``: what the driver already spent on this table under DP (deciding its sequences), added to its account.
    """
    table = schema.table(table_name)
    roles = table_roles(table, plan, sequence_columns=sequences)
    path = real_path(run_dir, table_name)
    arrow_schema = pa.schema([pa.field(c.name, c.sql_type.to_arrow()) for c in table.active_columns])
    real_rows = train_rows = pq.ParquetFile(path).metadata.num_rows
    held = Workspace(run_dir).holdout(table_name)
    if held.exists():
        # root tables are generated at the size of the real table, not of its training part
        real_rows += pq.ParquetFile(held).metadata.num_rows
    art = TableArtifacts(table=table_name, real_rows=real_rows, roles=roles, arrow_schema=arrow_schema)
    art.train_rows = train_rows
    art.nullable_cols = {c.name for c in table.active_columns if c.nullable}
    if table.copied:  # copied as it is by generation: its children still learn from its real rows
        art.kept = True
        return art
    art.pii_kinds = {c.name: str(c.kind) for c in table.active_columns if roles.roles.get(c.name) is Role.PII}
    seed = config.generation.fixed_seed
    max_rows = config.training.max_rows
    if allocation is None and config.privacy.epsilon is not None:
        from pipelines.stages.budget import plan_budget

        allocation = plan_budget(schema, plan, config).tables[table_name]
    dp = _Private(allocation, table, roles, seed) if allocation is not None else None
    if dp is not None:
        from pipelines.stages.budget import public_tables

        dp.spent += spent or []
        dp.public_tables = public_tables(schema, config)
    if dp is not None:
        art.real_rows = max(dp.row_count(real_rows), 1)  # post-processing: a table is never generated empty
    learned = list(roles.learned_kinds)
    ctx = roles.context
    parent_roles = None
    if ctx is not None:
        parent = schema.table(ctx.parent)
        parent_roles = table_roles(parent, plan)
        art.context_columns = list(parent_roles.learned_kinds)

    kept = roles.columns(Role.KEPT)
    art.kept_columns = kept
    # the model is conditioned on the kept columns like on a parent's: as context, prefixed apart from it
    kept_kinds = {KEPT_PREFIX + c: learned_kind(table.column(c)) for c in kept}
    sample_cols = sorted(
        set(learned)
        | set(ctx.columns if ctx else ())
        | set(roles.columns(Role.KEY))
        | set(roles.columns(Role.PII))
        | set(kept),
        key=[c.name for c in table.active_columns].index,
    )
    target = sample_parquet(path, sample_cols, max_rows, seed=seed)

    for col in roles.columns(Role.KEY):
        art.key_formats[col] = dp.key_format(col, target.column(col)) if dp else KeyFormat.learn(target.column(col))
    for rule in roles.key_rules:
        if rule.learned:
            art.member_grids[rule.columns] = MemberGrid.learn(target, rule.learned)
    for col in roles.columns(Role.PII):
        values = target.column(col)
        if dp is not None:
            art.pii_formats[col] = dp.pii_format(col, values, art.pii_kinds[col])
        else:
            art.pii_formats[col] = PiiFormat.learn(values, art.pii_kinds[col])
        art.fake_null_share[col] = values.null_count / len(values) if len(values) else 0.0
        if dp is not None:
            art.fake_null_share[col] = dp.null_share([col], values.null_count, len(values))

    context_tbl = None
    if ctx is not None and parent_roles is not None:
        parent_path = real_path(run_dir, ctx.parent)
        fk_cols = list(ctx.columns)
        present = pl.from_arrow(target.select(fk_cols))
        assert isinstance(present, pl.DataFrame)
        non_null = present.select(pl.all_horizontal([pl.col(c).is_not_null() for c in fk_cols])).to_series()
        art.context_null_share = float(1.0 - non_null.mean()) if len(non_null) else 0.0
        if dp is not None:
            art.context_null_share = dp.null_share(fk_cols, int((~non_null).sum()), len(non_null))
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
        context_tbl = joined.select(
            [CTX_PREFIX + c for c in art.context_columns] + [pl.col(c).alias(KEPT_PREFIX + c) for c in kept]
        ).to_arrow()
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
        # under DP a context number stays a number: counting its distinct values would read the data
        ctx_kinds = (
            _context_kinds(pdf, parent_roles.learned_kinds)
            if dp is None
            else {CTX_PREFIX + c: k for c, k in parent_roles.learned_kinds.items()}
        )
        art.context_kinds = ctx_kinds
        if not ctx_kinds:  # a parent with keys only: the count distribution is learned alone
            with_counts = with_counts.with_columns(pl.lit(0).alias(NO_CONTEXT))
        max_count = int(with_counts["len"].max() or 0)
        observed = np.sort(with_counts["len"].to_numpy().astype(np.int64))
        if dp is not None:
            # the generation's total follows the DP row counts: no holdout correction (it reads real counts)
            observed = dp.counts("children_per_parent", observed, public_parents=ctx.parent in dp.public_tables)
            max_count = int(observed.max())
        if len(observed) > _INDEGREE_CAP:
            observed = observed[np.linspace(0, len(observed) - 1, _INDEGREE_CAP).astype(np.int64)]
        factor = 1.0 if dp is not None else _count_factor(run_dir, table_name)
        if factor != 1.0:
            # a share of this table's rows was held out under parents that stayed in training: correct their counts
            observed = np.round(observed * factor).astype(np.int64)
        art.count_quantiles = observed
        art.cardinality = CopulaCardinalityModel(
            ctx_kinds,
            max_count=max_count,
            one_to_one=roles.one_to_one,
            privacy=None if dp is None else dp.copula("cardinality", parent, []),
        ).fit(with_counts.select(list(ctx_kinds) or [NO_CONTEXT]).to_arrow(), with_counts["len"].to_arrow())
        if dp is not None:
            dp.spent += art.cardinality.privacy_spent_

    if context_tbl is None and kept:
        context_tbl = pa.table({KEPT_PREFIX + c: target.column(c) for c in kept})
    for c in kept:  # as for a parent's columns: a number with few values gets an effect per value
        col = pl.from_arrow(target.select([c]))
        assert isinstance(col, pl.DataFrame)
        if kept_kinds[KEPT_PREFIX + c] is Kind.NUMERIC and col[c].dtype.is_integer() and col[c].n_unique() <= _FEW_VALUES:
            kept_kinds[KEPT_PREFIX + c] = Kind.CATEGORICAL

    if choice is None:
        choice = choose_model(table_name, target.num_rows, config, gpu=False)
    art.model_choice = choice
    if learned and target.num_rows:
        ctx_kinds = {**(art.context_kinds if parent_roles is not None else {}), **kept_kinds} or None
        use_ctx = context_tbl if (context_tbl is not None and context_tbl.num_columns) else None
        if choice.model == "neural":
            from synth_engine.neural import NeuralTableModel

            network = None
            if dp is not None:  # DP marginals, then DP-SGD (Opacus) for the network
                network = dp.network(schema.table(ctx.parent) if ctx else None, learned, set(kept_kinds))
            neural = NeuralTableModel(
                roles.learned_kinds,
                ctx_kinds if use_ctx is not None else None,
                device="cuda" if choice.gpu else "cpu",
                time_budget_s=choice.time_budget_s,
                privacy=network,
            ).fit(target.select(learned), context=use_ctx)
            art.model = neural
            if dp is not None:
                dp.spent += neural.privacy_spent_
        else:
            privacy = None
            if dp is not None:
                privacy = dp.copula("model", schema.table(ctx.parent) if ctx else None, learned)
                # kept columns are public by the user's choice: their marginals are released as they are
                privacy = replace(privacy, public_columns=privacy.public_columns | frozenset(kept_kinds))
            copula = GaussianCopulaModel(
                roles.learned_kinds, ctx_kinds if use_ctx is not None else None, privacy=privacy
            ).fit(target.select(learned), context=use_ctx)
            art.model = copula
            if dp is not None:
                dp.spent += copula.privacy_spent_

    for ref in [*roles.secondary, *roles.deferred]:
        art.fk_stats[ref.label] = _indegree(
            path, ref, real_path(run_dir, ref.ref_table), seed=seed, dp=dp,
            public_parent=dp is not None and ref.ref_table in dp.public_tables,
        )
    if dp is None:  # under DP no matcher: the budget does not account for it (in-degree wiring instead)
        for ref in _matched_refs(roles):
            try:
                matcher = _fit_matcher(run_dir, schema, plan, roles, ref, max_rows, seed=seed)
            except ModelError as exc:  # the in-degree draw still gives valid keys
                log.warning("train: %s: %s wired by in-degree alone: %s", table_name, ref.label, exc)
                matcher = None
            if matcher is not None:
                art.matchers[ref.label] = matcher
    if dp is not None:
        for rule in roles.key_rules:
            if rule.learned:
                grid = art.member_grids[rule.columns]
                art.member_grids[rule.columns] = dp.member_grid(target, rule.learned, grid, art.model)
        art.privacy_spent = dp.finish()
    return art


class _Private:
    """The DP statistics of one table: each release a Gaussian mechanism charged to its statistic's share.

    A group of releases (the NULL shares of several foreign keys, the in-degrees of several foreign keys) splits
    its statistic's share evenly: ``k`` releases get the multiplier ``m * sqrt(k)`` each. NOT NULL columns (the
    schema is public) get a NULL share of 0 without a release.
    """

    def __init__(self, allocation: TableAllocation, table: Table, roles: TableRoles, seed: int) -> None:
        from synth_engine import derive_seed

        self.allocation = allocation
        self.table = table
        self.roles = roles
        self.rng = np.random.Generator(np.random.PCG64(derive_seed(seed, table.name, "privacy")))
        self.spent: list[Spend] = []
        self.public_tables: frozenset[str] = frozenset()  # parents whose rows are public (see budget.public_tables)
        nullable = {c.name for c in table.active_columns if c.nullable}
        refs = [*roles.secondary, *roles.deferred]
        subjects = [[c] for c in roles.columns(Role.PII)]
        subjects += [list(r.columns) for r in refs]
        if roles.context is not None:
            subjects.append(list(roles.context.columns))
        self.nullable = nullable
        self.releases = {
            "null_shares": sum(1 for cols in subjects if set(cols) & nullable),
            "indegree": len(refs),
            "member_grid": sum(
                2 + len(dpm.STEP_CANDIDATES) for rule in roles.key_rules if len(rule.learned) == 1
            ),
            "key_formats": 3 * len(text_keys(table, roles)),
            "pii_formats": sum(private_releases(c.kind) for c in table.active_columns if c.name in set(roles.columns(Role.PII))),
        }
        self.n_vocabularies = {"key_formats": self.releases["key_formats"], "pii_formats": self.releases["pii_formats"]}

    def _std(self, statistic: str, sensitivity: float = 1.0) -> float | None:
        """Noise of one release of ``statistic`` (recorded), or None when it is public."""
        m = self.allocation.statistic_multiplier(statistic)
        if m is None:
            return None
        m *= float(np.sqrt(max(self.releases.get(statistic, 1), 1)))
        self.spent.append(Spend(self.table.name, statistic, m))
        return m * sensitivity

    def row_count(self, n: int) -> int:
        std = self._std("row_count")
        return n if std is None else int(round(dpm.noisy_count(n, std, self.rng)))

    def null_share(self, columns: list[str], nulls: int, n: int) -> float:
        if not set(columns) & self.nullable:
            return 0.0
        std = self._std("null_shares")
        if std is None:
            return nulls / n if n else 0.0
        return dpm.null_share(nulls, n, std, self.rng)

    def counts(self, statistic: str, counts: np.ndarray, *, public_parents: bool = False) -> np.ndarray:
        """Sorted children-per-parent counts from a DP histogram (sensitivity sqrt 2: a child moves one parent)."""
        std = self._std(statistic, float(np.sqrt(2.0)))
        if std is None:
            return np.sort(counts)
        return dpm.count_histogram(np.asarray(counts), std, self.rng, public_parents=public_parents)

    def copula(self, prefix: str, parent: Table | None, learned: list[str]) -> CopulaPrivacy:
        """A copula's DP settings: its parent's columns come in prefixed (see ``CTX_PREFIX``)."""
        # the parent's columns are learned here from this table's rows: the parent's declarations do not apply
        public = set(self.allocation.public)
        parent_nullable = set()
        if parent is not None:
            parent_nullable = {CTX_PREFIX + c.name for c in parent.active_columns if c.nullable}
        return CopulaPrivacy(
            table=self.table.name,
            marginals=self.allocation.statistic_multiplier(f"{prefix}.marginals"),
            correlation=self.allocation.statistic_multiplier(f"{prefix}.correlation"),
            prefix=prefix,
            sensitivity=2.0 if prefix == "cardinality" else 1.0,
            selection_delta=self.allocation.selection_delta * _SELECTION_SPLIT[prefix],
            public_columns=frozenset(c for c in learned if c in public),
            nullable=frozenset((self.nullable & set(learned)) | parent_nullable),
        )

    def _vocabulary(self, statistic: str) -> tuple[float, float] | None:
        """One thresholded vocabulary of ``statistic``: its noise and its selection delta (recorded); None when
        the statistic is public."""
        std = self._std(statistic)
        if std is None:
            return None
        delta = self.allocation.selection_delta * _SELECTION_SPLIT[statistic] / max(self.n_vocabularies[statistic], 1)
        self.spent.append(Spend(self.table.name, statistic, std, 0, delta))
        return std, delta

    def key_format(self, column: str, values: pa.ChunkedArray) -> KeyFormat:
        """A generated key's format: no release for integers and UUIDs, three vocabularies for text keys."""
        if column not in text_keys(self.table, self.roles):
            return KeyFormat.learn_private(values, std=float("inf"), delta=0.0, rng=self.rng)
        releases = [self._vocabulary("key_formats") for _ in range(3)]  # counters, layouts, literal characters
        if any(r is None for r in releases):
            return KeyFormat.learn(values)  # declared public
        std, delta = releases[0][0], min(r[1] for r in releases)  # type: ignore[index]
        return KeyFormat.learn_private(values, std=std, delta=delta, rng=self.rng)

    def pii_format(self, column: str, values: pa.ChunkedArray, kind: str) -> PiiFormat:
        """A faked column's format from thresholded vocabularies; its length from the declared type."""
        shares = [self._vocabulary("pii_formats") for _ in range(private_releases(kind))]
        if any(s is None for s in shares):
            return PiiFormat.learn(values, kind)  # declared public
        std = shares[0][0]  # type: ignore[index]
        delta = min(s[1] for s in shares)  # type: ignore[index]
        length = self.table.column(column).sql_type.length
        return learn_private_format(values, kind, std=std, delta=delta, rng=self.rng, max_length=length)

    def network(self, parent: Table | None, learned: list[str], public: set[str]) -> NetworkPrivacy:
        """The neural model's DP settings: the copula's marginals, and the network's share for DP-SGD at the
        budget's Renyi order; ``public`` columns (kept ones, prefixed) are released as they are."""
        marg = self.copula("model", parent, learned)
        network = self.allocation.statistic_multiplier("model.network")
        if network is not None and self.allocation.order is None:
            raise ModelError(f"{self.table.name}: the privacy allocation has no Renyi order to calibrate DP-SGD at")
        return NetworkPrivacy(
            table=self.table.name,
            marginals=marg.marginals,
            network=network,
            order=self.allocation.order or 0.0,
            selection_delta=marg.selection_delta,
            public_columns=marg.public_columns | frozenset(public),
            nullable=marg.nullable,
        )

    def member_grid(
        self, target: pa.Table, columns: tuple[str, ...], exact: MemberGrid, model: TableModel | None
    ) -> MemberGrid:
        """A step grid from a DP range and a DP step; a pool from the model's DP marginals (see below)."""
        if exact.pool is not None:
            return self._pool_from_marginals(exact, model)
        if len(exact.ranked) != 1 or exact.pool is not None or "member_grid" not in self.allocation.shares:
            return exact  # text members are never on a grid (see synth_engine.keys.members): only ranked ones
        col = target.column(exact.ranked[0])
        values = to_float(plain(col).drop_null())[0].astype(np.int64)
        std = self._std("member_grid")
        assert std is not None
        lo, hi = dpm.numeric_range(values.astype(np.float64), std, self.rng)
        # the step test and the range share the statistic's releases: 2 range histograms + one per candidate step
        step = dpm.grid_step(values, 0, std, self.rng)
        first = int(np.floor(lo / step) * step)
        return replace(exact, lo=first, step=step, top=max(0, int((np.ceil(hi) - first) // step)))

    def _pool_from_marginals(self, exact: MemberGrid, model: TableModel | None) -> MemberGrid:
        """Every combination of the members' values released by the model's DP marginals (post-processing: a
        category's released vocabulary, a number's exact values or its DP quantile knots), evenly thinned to the
        real pool's size. A member none of whose values was released (every category under the threshold) keeps
        the real pool (reported as not covered)."""
        assert exact.pool is not None
        marginals = {m.name: m for m in getattr(model, "marginals_", [])}
        axes: list[pa.Array] = []
        for col in exact.pool.column_names:
            m = marginals.get(col)
            t = exact.pool.schema.field(col).type
            if isinstance(m, NumericMarginal) and not m.empty:
                values = m.values if m.exact else np.unique(m.knots_q)
                axes.append(pa.array(values).cast(t) if m.exact else from_float(values, None, t).unique())
            elif isinstance(m, CategoricalMarginal) and not m.empty:
                axes.append(m.categories.cast(t))
            else:
                log.warning("train: %s: no DP value of key member %r was released; its real pool is kept", self.table.name, col)
                return exact
        shape = tuple(len(a) for a in axes)
        size = int(np.prod(shape, dtype=np.float64))
        picks = np.unique(np.linspace(0, size - 1, min(size, max(exact.pool.num_rows, 1))).astype(np.int64))
        index = np.unravel_index(picks, shape)  # the picked combinations, without enumerating the product
        cols = {c: axes[j].take(pa.array(index[j])) for j, c in enumerate(exact.pool.column_names)}
        return replace(exact, pool=pa.table(cols, schema=exact.pool.schema))

    def finish(self) -> list[Spend]:
        """What was released, merged per statistic and multiplier (the member grid's steps counted too)."""
        grouped: dict[tuple[str, float, float], tuple[int, float]] = {}
        for spend in self.spent:
            count = 2 + len(dpm.STEP_CANDIDATES) if spend.statistic == "member_grid" else spend.count
            key = (spend.statistic, spend.noise_multiplier, spend.sampling_rate)  # DP-SGD steps keep their rate
            n, sel = grouped.get(key, (0, 0.0))
            grouped[key] = (n + count, sel + spend.selection_delta)
        return [
            Spend(self.table.name, stat, m, n, sel, sampling_rate=rate)
            for (stat, m, rate), (n, sel) in grouped.items()
        ]


_SELECTION_SPLIT = {"model": 0.35, "cardinality": 0.35, "key_formats": 0.15, "pii_formats": 0.15}
"""How a table's selection delta (its thresholded vocabularies' delta) is split between what releases them."""


def _store(run_dir: Path, table: str) -> ModelStore:
    return ModelStore(Workspace(run_dir).models(table))


def save_artifacts(run_dir: Path, art: TableArtifacts) -> Path:
    """Save a table's artifacts in the run's model store (atomically), so a later run can sample without training."""
    return _store(run_dir, art.table).save("artifacts", art, {"table": art.table, "real_rows": art.real_rows})


def load_artifacts(run_dir: Path, table: str) -> TableArtifacts:
    art = _store(run_dir, table).load("artifacts")
    assert isinstance(art, TableArtifacts)
    return art


def model_summary(run_dir: Path, plan: Plan) -> dict[str, dict[str, object]]:
    """Per table: the model trained, why, and (neural) how its training went; for the manifest and the log."""
    out: dict[str, dict[str, object]] = {}
    for t in plan.training_jobs:
        art = load_artifacts(run_dir, t)
        if art.kept:
            out[t] = {"model": "kept", "reason": "mode: keep: its real rows are copied as they are"}
            continue
        choice = art.model_choice
        entry: dict[str, object] = {"model": choice.model if choice else "copula", "reason": choice.reason if choice else ""}
        if choice is not None and choice.model == "neural" and art.model is not None:
            entry["training"] = dict(getattr(art.model, "train_report_", {}))
        out[t] = entry
    return out


def run_train(
    run_dir: Path,
    schema: DatabaseSchema,
    plan: Plan,
    config: RunConfig,
    budget: Budget | None = None,
    *,
    tracker: Tracker = NO_TRACKER,
) -> dict[str, int]:
    """Train every table in parallel on Ray (a GPU per task only where the cluster has one).

    ``budget``: the run's privacy allocation (see :func:`pipelines.stages.budget.plan_budget`), None without DP.
    ``tracker`` hears of each table as its task comes back, with the rows it was fitted on.
    """
    from pipelines.ray_runtime import gpu_available, stage_task, task_resources

    sequences, sequence_spent = detect_sequences(run_dir, schema, plan, budget, seed=config.generation.fixed_seed)
    gpu = gpu_available(config.ray)
    choices = {}
    for t in plan.training_jobs:  # chosen here, so that only a neural task asks for a GPU
        rows = pq.ParquetFile(real_path(run_dir, t)).metadata.num_rows
        choices[t] = choose_model(t, min(rows, config.training.max_rows or rows), config, gpu=gpu)
        tracker.table_total("train", t, min(rows, config.training.max_rows or rows))
        log.info("train: %s uses the %s model (%s)", t, choices[t].model, choices[t].reason)

    @stage_task(config.ray, "train")
    def _task(table_name: str) -> tuple[str, int]:
        allocation = budget.tables.get(table_name) if budget is not None else None
        art = train_table(
            run_dir,
            schema,
            plan,
            table_name,
            config,
            sequences.get(table_name, set()),
            allocation=allocation,
            choice=choices[table_name],
            spent=sequence_spent.get(table_name, []),
        )
        save_artifacts(run_dir, art)
        return table_name, art.train_rows

    refs = [
        _task.options(**task_resources(config.ray, wants_gpu=choices[t].gpu)).remote(t)  # type: ignore[arg-type]
        for t in plan.training_jobs
    ]
    done: dict[str, int] = {}
    for name, rows in gather(refs, lambda _, out: tracker.table_done("train", *out)):
        done[name] = rows
        log.info("train: %s fitted on %d real rows", name, rows)
    return done
