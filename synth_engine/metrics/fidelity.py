"""Fidelity: how closely synthetic tables follow the real ones, computed on Arrow tables and bounded samples.

Four categories make the overall score, as in SDMetrics' multi-table ``QualityReport`` (the mean of the category
means, each category mean taken over all its items in all tables):

- **column shapes**: ``KSComplement`` for numbers, dates and times (as numbers), ``TVComplement`` for categories
  and booleans. The null-share similarity of each column is reported beside it (and averaged), not mixed in, so
  the shape score stays comparable with SDMetrics.
- **column pair trends**: ``CorrelationSimilarity`` (Pearson) for two numeric columns, ``ContingencySimilarity``
  otherwise, with numbers put into quantile bins of the real data (SDMetrics uses equal-width bins; see
  :func:`synth_engine.metrics._stats.quantile_bins` for why).
- **cardinality**: per foreign key, ``KSComplement`` of the number of children of each parent (zero included).
- **inter-table trends**: pair trends between a parent's columns and its child's columns over child rows joined to
  their parent, and between a grandparent's and a grandchild's columns across two foreign keys.

Detection (a classifier telling real from synthetic rows, with the context parent's columns joined in) is reported
beside the overall score, not inside it, as SDMetrics keeps it out of its quality report too. Its cross-validation
keeps identical rows, and children of one parent, in one fold, so memorising a row cannot pass for telling apart.

Keys (primary/foreign key columns, ``Kind.ID``), PII, free text, JSON and binary columns are not compared by value.

Every metric is total: one that cannot be computed on a column, pair, foreign key, path or table (a constant,
single-valued or all-NULL column, a table of one row, an empty synthetic table, an unexpected library error) is
left out of the means and listed in ``not_computed`` with its reason; it never raises. Only input that contradicts
the schema (a declared column missing from a table) raises :class:`MetricsError`, before anything is computed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.model import DatabaseSchema, ForeignKey, Table
from synth_engine.metrics import _stats
from synth_engine.metrics._encode import (
    FloatArray,
    Guard,
    IntArray,
    MetricsError,
    NotComputed,
    ValueColumn,
    check_columns,
    context_fk,
    informative_columns,
    joint_codes,
    json_safe,
    key_codes,
    parent_rows,
    row_codes,
    sample_indices,
    single_threaded,
    table_rng,
    to_float,
    tree_features,
    value_columns,
)
from synth_engine.metrics._utility import UtilityResult, utility

log = logging.getLogger(__name__)

__all__ = [
    "Cardinality",
    "ColumnShape",
    "Detection",
    "FidelityResult",
    "InterTablePath",
    "NotComputed",
    "PairTrend",
    "TableFidelity",
    "UtilityResult",
    "evaluate_fidelity",
    "utility",
]

ContextSpec = tuple[str, list[str], list[str]]
"""``(parent table, child foreign-key columns, parent referenced columns)``."""


@dataclass(frozen=True)
class ColumnShape:
    """One column's shape score.

    Attributes:
        table: the table.
        column: the column.
        metric: ``KSComplement`` or ``TVComplement``.
        score: the metric's value in [0, 1]; None when a side has no non-null value.
        null_similarity: 1 - |real null share - synthetic null share|.
        real_null_share: share of nulls in the real sample.
        synthetic_null_share: share of nulls in the synthetic sample.
    """

    table: str
    column: str
    metric: str
    score: float | None
    null_similarity: float
    real_null_share: float
    synthetic_null_share: float


@dataclass(frozen=True)
class PairTrend:
    """One column pair's trend score.

    Attributes:
        scope: the table, or for inter-table pairs the path ``ancestor -> ... -> descendant``.
        column_a: the first column (``table.column`` for inter-table pairs: the ancestor's).
        column_b: the second column (the descendant's for inter-table pairs).
        metric: ``CorrelationSimilarity`` or ``ContingencySimilarity``.
        score: in [0, 1]; None when undefined (a constant column has no correlation).
        real_correlation: Pearson's r on the real rows (correlation pairs only).
        synthetic_correlation: Pearson's r on the synthetic rows (correlation pairs only).
    """

    scope: str
    column_a: str
    column_b: str
    metric: str
    score: float | None
    real_correlation: float | None = None
    synthetic_correlation: float | None = None


@dataclass(frozen=True)
class Cardinality:
    """How well the number of children per parent is reproduced for one foreign key.

    Attributes:
        child: the child table.
        parent: the parent table.
        foreign_key: the key, as ``(columns) -> parent(columns)``.
        score: ``KSComplement`` of the children-per-parent counts (zero included).
        real_mean_children: mean children per parent, real.
        synthetic_mean_children: mean children per parent, synthetic.
        real_parents: parent rows counted, real (whole tables, not samples: only key columns are read).
        synthetic_parents: parent rows counted, synthetic.
    """

    child: str
    parent: str
    foreign_key: str
    score: float | None
    real_mean_children: float
    synthetic_mean_children: float
    real_parents: int
    synthetic_parents: int


@dataclass(frozen=True)
class InterTablePath:
    """Pair trends between an ancestor's and a descendant's columns over rows joined along foreign keys.

    Attributes:
        path: the tables from ancestor to descendant (two for parent -> child, three for two hops).
        foreign_keys: the keys followed, descendant side first, as ``child(columns) -> parent(columns)``.
        score: mean of the pair scores; None when no pair is defined.
        real_rows: joined real rows (sampled descendant rows that reach an ancestor).
        synthetic_rows: joined synthetic rows.
        pairs: the pair scores.
    """

    path: list[str]
    foreign_keys: list[str]
    score: float | None
    real_rows: int
    synthetic_rows: int
    pairs: list[PairTrend] = field(default_factory=list)


@dataclass(frozen=True)
class Detection:
    """How well a classifier tells real from synthetic rows of one table.

    Attributes:
        table: the table.
        context: the parent whose columns were joined in, or None.
        auc: cross-validated ROC AUC (0.5 = cannot tell).
        score: ``1 - 2 |AUC - 0.5|`` in [0, 1].
        rows_per_class: rows of each class (real, synthetic) the classifier saw.
        features: number of feature columns.
        folds: cross-validation folds.
    """

    table: str
    context: str | None
    auc: float
    score: float
    rows_per_class: int
    features: int
    folds: int


@dataclass(frozen=True)
class TableFidelity:
    """One table's summary.

    Attributes:
        table: the table.
        real_rows: rows in the real table.
        synthetic_rows: rows in the synthetic table.
        real_sample_rows: real rows sampled for the value metrics.
        synthetic_sample_rows: synthetic rows sampled.
        column_shapes: mean column shape score.
        null_similarity: mean null-share similarity.
        column_pair_trends: mean pair trend score.
        detection: detection score.
        columns: the columns compared by value.
        pair_columns: the columns whose pairs were scored (a deterministic sample when there are many).
        skipped_columns: every other column and why it was left out.
    """

    table: str
    real_rows: int
    synthetic_rows: int
    real_sample_rows: int
    synthetic_sample_rows: int
    column_shapes: float | None
    null_similarity: float | None
    column_pair_trends: float | None
    detection: float | None
    columns: list[str]
    pair_columns: list[str]
    skipped_columns: dict[str, str]


@dataclass(frozen=True)
class FidelityResult:
    """Everything :func:`evaluate_fidelity` measured; ``to_dict()`` gives plain JSON-able data.

    Attributes:
        overall: mean of the four category means (column shapes, column pair trends, cardinality, inter-table
            trends) that could be computed; None when none could.
        column_shapes: mean over every compared column of every table.
        column_pair_trends: mean over every scored pair.
        cardinality: mean over every foreign key.
        intertable_trends: mean over every inter-table pair.
        null_similarity: mean null-share similarity (reported, not part of ``overall``).
        detection: mean detection score (reported, not part of ``overall``).
        tables: per-table summaries.
        columns: per-column shape scores.
        pairs: per-pair trend scores within tables.
        cardinalities: per-foreign-key cardinality scores.
        intertable: per-path inter-table trends.
        detections: per-table detection results.
        sample_rows: the per-table sample bound.
        seed: the seed of every sample and classifier.
        seconds: wall time.
        notes: what was capped, skipped or could not be computed, one line each.
        not_computed: every metric that could not be computed, with its scope and reason (shown as ``n/a``).
    """

    overall: float | None
    column_shapes: float | None
    column_pair_trends: float | None
    cardinality: float | None
    intertable_trends: float | None
    null_similarity: float | None
    detection: float | None
    tables: dict[str, TableFidelity]
    columns: list[ColumnShape]
    pairs: list[PairTrend]
    cardinalities: list[Cardinality]
    intertable: list[InterTablePath]
    detections: list[Detection]
    sample_rows: int
    seed: int
    seconds: float
    notes: list[str]
    not_computed: list[NotComputed] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, NaN as None: ready for ``json.dumps``."""
        result: dict[str, Any] = json_safe(asdict(self))
        return result


@dataclass
class _Col:
    """A value column of one sample, real and synthetic side by side."""

    name: str
    continuous: bool
    real_num: FloatArray | None  # continuous only
    synth_num: FloatArray | None
    real_codes: IntArray  # categories (null -1), or quantile bins (null has its own bin) for continuous
    synth_codes: IntArray
    n_codes: int

    def contingency_codes(self) -> tuple[IntArray, IntArray, int]:
        if self.continuous:
            return self.real_codes, self.synth_codes, self.n_codes
        n = self.n_codes
        return (
            np.where(self.real_codes < 0, n, self.real_codes),
            np.where(self.synth_codes < 0, n, self.synth_codes),
            n + 1,
        )


def _prepare(
    real: pa.Table,
    synth: pa.Table,
    cols: Sequence[ValueColumn],
    table: str,
    bins: int,
    guard: Guard,
    metric: str = "column_shape",
) -> list[_Col]:
    """Both sides of each column as numbers or shared codes; a column that cannot be read is recorded and left out."""
    out = []
    for col in cols:
        prepared = guard.run(metric, f"{table}.{col.name}", _prepare_one, real, synth, col, table, bins)
        if prepared is not None:
            out.append(prepared)
    return out


def _prepare_one(real: pa.Table, synth: pa.Table, col: ValueColumn, table: str, bins: int) -> _Col:
    label = f"table {table!r}, column {col.name!r}"
    if col.continuous:
        r = to_float(real.column(col.name), where=label)
        s = to_float(synth.column(col.name), where=label)
        rc, sc, n = _stats.quantile_bins(r, s, bins)
        return _Col(col.name, True, r, s, rc, sc, n)
    (rc, sc), n = joint_codes([real.column(col.name), synth.column(col.name)])
    return _Col(col.name, False, None, None, rc, sc, n)


def _shape(table: str, c: _Col) -> ColumnShape:
    if c.continuous:
        assert c.real_num is not None and c.synth_num is not None
        metric, score = "KSComplement", _stats.ks_complement(c.real_num, c.synth_num)
        r_null, s_null = np.isnan(c.real_num), np.isnan(c.synth_num)
    else:
        metric, score = "TVComplement", _stats.tv_complement(c.real_codes, c.synth_codes, c.n_codes)
        r_null, s_null = c.real_codes < 0, c.synth_codes < 0
    r_share = float(r_null.mean()) if r_null.size else 0.0
    s_share = float(s_null.mean()) if s_null.size else 0.0
    return ColumnShape(
        table, c.name, metric, _none_if_nan(score), _stats.null_similarity(r_share, s_share), r_share, s_share
    )


def _pair(scope: str, a: _Col, b: _Col, label_a: str, label_b: str) -> PairTrend:
    if a.continuous and b.continuous:
        assert a.real_num is not None and a.synth_num is not None
        assert b.real_num is not None and b.synth_num is not None
        score, rr, rs = _stats.correlation_similarity(a.real_num, b.real_num, a.synth_num, b.synth_num)
        return PairTrend(
            scope,
            label_a,
            label_b,
            "CorrelationSimilarity",
            _none_if_nan(score),
            _none_if_nan(rr),
            _none_if_nan(rs),
        )
    ra, sa, na = a.contingency_codes()
    rb, sb, nb = b.contingency_codes()
    score = _stats.contingency_similarity(ra, rb, sa, sb, na, nb)
    return PairTrend(scope, label_a, label_b, "ContingencySimilarity", _none_if_nan(score))


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _cap(names: list[str], limit: int, seed: int, *scope: str) -> list[str]:
    """At most ``limit`` names, a deterministic sample (in schema order) when there are more."""
    if len(names) <= limit:
        return names
    picked = set(table_rng(seed, "pairs", *scope).choice(len(names), size=limit, replace=False).tolist())
    return [n for i, n in enumerate(names) if i in picked]


@dataclass
class _Side:
    """One side (real or synthetic) of one table: the whole table, its sample positions and the sample."""

    full: pa.Table
    rows: IntArray
    sample: pa.Table


def evaluate_fidelity(
    real: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    schema: DatabaseSchema,
    *,
    context: Mapping[str, ContextSpec] | None = None,
    sample_rows: int = 20_000,
    seed: int = 0,
    bins: int = 10,
    max_pair_columns: int = 20,
    max_intertable_columns: int = 10,
    detection: bool = True,
    kept: Collection[str] = (),
    kept_columns: Mapping[str, Collection[str]] | None = None,
) -> FidelityResult:
    """Compare synthetic tables with real ones: column shapes, pair trends, cardinality, inter-table trends, detection.

    Args:
        real: the real tables by name (all rows, or a sample; keys must be intact for cardinality and joins).
        synth: the synthetic tables by name.
        schema: the schema; active tables present in both mappings are compared, the others are noted and skipped.
        context: per child table, ``(parent table, child FK columns, parent referenced columns)`` for detection;
            by default each table's ``context`` setting, else its first foreign key to another table.
        sample_rows: at most this many rows per table and side for value metrics (cardinality counts keys over
            whole tables, which is cheap).
        seed: seeds every sample and classifier; the same seed gives the same result.
        bins: quantile bins for numbers in contingency tables.
        max_pair_columns: per table, at most this many columns take part in pair trends (a deterministic sample).
        max_intertable_columns: per table and path, at most this many columns on each side.
        detection: False skips the classifier (the slowest part).
        kept: tables whose real rows were copied as they are (``mode: keep``): not scored themselves (their
            columns, pairs, detection, and the counts of their own foreign keys), while the relationships of
            synthesized children to them are.
        kept_columns: per synthesized table, its columns whose real values were copied (``mode: keep``): their
            shapes are not scored, nor pairs of two kept columns; pairs of a kept and a synthesized column are
            (they measure how well the synthesized columns follow the kept ones).

    Returns:
        The scores, per item, per table and overall.

    Raises:
        MetricsError: a table lacks a column that the schema declares, or a column cannot be read as its kind.
    """
    if sample_rows < 10:
        raise MetricsError(f"sample_rows must be at least 10, got {sample_rows}")
    started = time.perf_counter()
    notes: list[str] = []
    tables: dict[str, Table] = {}
    value_cols: dict[str, list[ValueColumn]] = {}
    skipped: dict[str, dict[str, str]] = {}
    sides: dict[tuple[str, str], _Side] = {}
    for t in schema.active_tables:
        if t.name not in real or t.name not in synth:
            where = "real" if t.name not in real else "synthetic"
            notes.append(f"table {t.name!r}: no {where} data given; skipped")
            continue
        tables[t.name] = t
        value_cols[t.name], skipped[t.name] = value_columns(t)
        needed = [c.name for c in value_cols[t.name]] + sorted(t.key_columns)
        for side, data in (("real", real[t.name]), ("synthetic", synth[t.name])):
            check_columns(data, needed, t.name, side)
            # The same generator for both sides: a table compared with itself is sampled identically.
            idx = sample_indices(data.num_rows, sample_rows, table_rng(seed, "sample", t.name))
            sides[(t.name, side)] = _Side(data, idx, data if len(idx) == data.num_rows else data.take(idx))

    guard = Guard()
    fk_rows = _foreign_key_rows(schema, tables, sides, guard)

    columns: list[ColumnShape] = []
    pairs: list[PairTrend] = []
    prepared: dict[str, list[_Col]] = {}
    kept = set(kept)
    for name in sorted(kept & set(tables)):
        notes.append(f"table {name!r} is kept (its real rows copied as they are): not scored")
    real_cols = {t: set(cs) for t, cs in (kept_columns or {}).items()}
    for name, cols in sorted(real_cols.items()):
        if cols and name in tables:
            notes.append(f"table {name!r}: kept column(s) {', '.join(sorted(cols))} are real: shapes not scored")
    for name, t in tables.items():
        if name in kept:
            continue
        r, s = sides[(name, "real")].sample, sides[(name, "synthetic")].sample
        prepared[name] = _prepare(r, s, value_cols[name], name, bins, guard)
        real_here = real_cols.get(name, set())
        for c in prepared[name]:
            if c.name in real_here:
                continue
            shape = guard.run("column_shape", f"{name}.{c.name}", _shape, name, c)
            if shape is not None:
                columns.append(shape)
        pair_names = _cap([c.name for c in prepared[name]], max_pair_columns, seed, name)
        if len(pair_names) < len(prepared[name]):
            notes.append(
                f"table {name!r}: pair trends over {len(pair_names)} of {len(prepared[name])} columns "
                f"(a deterministic sample, seed {seed})"
            )
        chosen = [c for c in prepared[name] if c.name in set(pair_names)]
        for i, a in enumerate(chosen):
            for b in chosen[i + 1 :]:
                if a.name in real_here and b.name in real_here:
                    continue
                pair = guard.run("pair_trend", f"{name}.{a.name}+{b.name}", _pair, name, a, b, a.name, b.name)
                if pair is not None:
                    pairs.append(pair)

    cardinalities = []
    for child, i, side in fk_rows:
        if side == "real" and (child, i, "synthetic") in fk_rows and child not in kept:
            fk = tables[child].foreign_keys[i]
            card = guard.run(
                "cardinality",
                f"{child}{fk.label}",
                _cardinality,
                child,
                fk,
                fk_rows[(child, i, "real")],
                fk_rows[(child, i, "synthetic")],
                sides,
            )
            if card is not None:
                cardinalities.append(card)

    intertable = _intertable(
        schema, tables, value_cols, sides, fk_rows, bins, max_intertable_columns, seed, notes, guard
    )
    intertable = [p for p in intertable if not set(p.path) <= kept]  # real rows joined with real rows

    detections: list[Detection] = []
    if detection:
        for name, t in tables.items():
            if name in kept:
                continue
            spec = _context_spec(schema, t, context, tables, notes)
            det = guard.run("detection", name, _detection, name, spec, value_cols, sides, seed, notes, guard)
            if det is not None:
                detections.append(det)

    per_table = {}
    det_by_table = {d.table: d.score for d in detections}
    for name in tables:
        tcols = [c for c in columns if c.table == name]
        tpairs = [p for p in pairs if p.scope == name]
        pair_cols = sorted({p.column_a for p in tpairs} | {p.column_b for p in tpairs})
        per_table[name] = TableFidelity(
            table=name,
            real_rows=sides[(name, "real")].full.num_rows,
            synthetic_rows=sides[(name, "synthetic")].full.num_rows,
            real_sample_rows=sides[(name, "real")].sample.num_rows,
            synthetic_sample_rows=sides[(name, "synthetic")].sample.num_rows,
            column_shapes=_stats.nanmean([c.score for c in tcols if c.score is not None]),
            null_similarity=_stats.nanmean([c.null_similarity for c in tcols]),
            column_pair_trends=_stats.nanmean([p.score for p in tpairs if p.score is not None]),
            detection=det_by_table.get(name),
            columns=[c.name for c in value_cols[name]],
            pair_columns=pair_cols,
            skipped_columns=skipped[name],
        )

    undefined = [p for p in pairs if p.score is None]
    if undefined:
        notes.append(
            f"{len(undefined)} column pair(s) have no defined score (a constant column) and are left out"
        )
    categories = {
        "column_shapes": _stats.nanmean([c.score for c in columns if c.score is not None]),
        "column_pair_trends": _stats.nanmean([p.score for p in pairs if p.score is not None]),
        "cardinality": _stats.nanmean([c.score for c in cardinalities if c.score is not None]),
        "intertable_trends": _stats.nanmean(
            [p.score for path in intertable for p in path.pairs if p.score is not None]
        ),
    }
    overall = _stats.nanmean([v for v in categories.values() if v is not None])
    notes.extend(f"{f.metric} on {f.scope}: n/a ({f.reason})" for f in guard.failures)
    seconds = time.perf_counter() - started
    log.info("fidelity of %d table(s) in %.1f s: overall %s", len(tables), seconds, overall)
    return FidelityResult(
        overall=overall,
        null_similarity=_stats.nanmean([c.null_similarity for c in columns]),
        detection=_stats.nanmean([d.score for d in detections]),
        tables=per_table,
        columns=columns,
        pairs=pairs,
        cardinalities=cardinalities,
        intertable=intertable,
        detections=detections,
        sample_rows=sample_rows,
        seed=seed,
        seconds=seconds,
        notes=notes,
        not_computed=guard.failures,
        **categories,
    )


def _foreign_key_rows(
    schema: DatabaseSchema,
    tables: Mapping[str, Table],
    sides: Mapping[tuple[str, str], _Side],
    guard: Guard,
) -> dict[tuple[str, int, str], IntArray]:
    """For every foreign key between compared tables and each side: the parent row of every child row (or -1).

    A key that cannot be matched on either side is recorded and left out on both, so no metric sees one side only.
    """
    out: dict[tuple[str, int, str], IntArray] = {}
    for child, fk in schema.iter_foreign_keys():
        if child.name not in tables or fk.ref_table not in tables:
            continue
        i = child.foreign_keys.index(fk)
        for side in ("real", "synthetic"):
            check_columns(sides[(fk.ref_table, side)].full, fk.ref_columns, fk.ref_table, side)
        found = {}
        for side in ("real", "synthetic"):
            parent, kids = sides[(fk.ref_table, side)].full, sides[(child.name, side)].full
            rows = guard.run("foreign_key", f"{child.name}{fk.label} ({side})", _match, parent, fk, kids)
            if rows is None:
                break
            found[side] = rows
        else:
            for side, rows in found.items():
                out[(child.name, i, side)] = rows
    return out


def _match(parent: pa.Table, fk: ForeignKey, kids: pa.Table) -> IntArray:
    pkeys, ckeys = key_codes(parent, fk.ref_columns, kids, fk.columns)
    return parent_rows(pkeys, ckeys)


def _cardinality(
    child: str,
    fk: ForeignKey,
    real_rows: IntArray,
    synth_rows: IntArray,
    sides: Mapping[tuple[str, str], _Side],
) -> Cardinality:
    n_real = sides[(fk.ref_table, "real")].full.num_rows
    n_synth = sides[(fk.ref_table, "synthetic")].full.num_rows
    real_counts = np.bincount(real_rows[real_rows >= 0], minlength=n_real).astype(np.float64)
    synth_counts = np.bincount(synth_rows[synth_rows >= 0], minlength=n_synth).astype(np.float64)
    return Cardinality(
        child=child,
        parent=fk.ref_table,
        foreign_key=fk.label,
        score=_none_if_nan(_stats.ks_complement(real_counts, synth_counts)),
        real_mean_children=float(real_counts.mean()) if n_real else 0.0,
        synthetic_mean_children=float(synth_counts.mean()) if n_synth else 0.0,
        real_parents=n_real,
        synthetic_parents=n_synth,
    )


def _intertable(
    schema: DatabaseSchema,
    tables: Mapping[str, Table],
    value_cols: Mapping[str, list[ValueColumn]],
    sides: Mapping[tuple[str, str], _Side],
    fk_rows: Mapping[tuple[str, int, str], IntArray],
    bins: int,
    max_columns: int,
    seed: int,
    notes: list[str],
    guard: Guard,
) -> list[InterTablePath]:
    """Pair trends along every foreign key (one hop) and every chain of two foreign keys (two hops)."""
    # Each hop: (child, fk index, parent); self-references are left out (a row and its own parent are one table).
    hops = [
        (c, i, p) for (c, i, side) in fk_rows if side == "real" for p in [tables[c].foreign_keys[i].ref_table]
    ]
    hops = [h for h in hops if h[0] != h[2]]
    chains: list[list[tuple[str, int, str]]] = [[h] for h in hops]
    chains += [[h1, h2] for h1 in hops for h2 in hops if h1[2] == h2[0] and h2[2] not in (h1[0], h1[2])]
    out = []
    for chain in chains:
        descendant, ancestor = chain[0][0], chain[-1][2]
        if not value_cols[descendant] or not value_cols[ancestor]:
            continue
        scope = " -> ".join(reversed([descendant] + [h[2] for h in chain]))
        path = guard.run(
            "intertable",
            scope,
            _path,
            chain,
            tables,
            value_cols,
            sides,
            fk_rows,
            bins,
            max_columns,
            seed,
            notes,
            guard,
        )
        if path is not None:
            out.append(path)
    return out


def _path(
    chain: list[tuple[str, int, str]],
    tables: Mapping[str, Table],
    value_cols: Mapping[str, list[ValueColumn]],
    sides: Mapping[tuple[str, str], _Side],
    fk_rows: Mapping[tuple[str, int, str], IntArray],
    bins: int,
    max_columns: int,
    seed: int,
    notes: list[str],
    guard: Guard,
) -> InterTablePath | None:
    """One path's pair trends; a column or pair that fails costs only itself (recorded in ``guard``)."""
    descendant, ancestor = chain[0][0], chain[-1][2]
    names = [descendant] + [h[2] for h in chain]
    scope = " -> ".join(reversed(names))
    joined = {}
    for side in ("real", "synthetic"):
        own = sides[(descendant, side)]
        rows = own.rows
        for child, i, _parent in chain:
            rows = np.where(rows >= 0, fk_rows[(child, i, side)][np.maximum(rows, 0)], -1)
        keep = rows >= 0
        joined[side] = (own.sample.filter(pa.array(keep)), sides[(ancestor, side)].full.take(rows[keep]))
    (rd, ra), (sd, sa) = joined["real"], joined["synthetic"]
    if rd.num_rows == 0 or sd.num_rows == 0:
        notes.append(f"inter-table {scope}: no joined rows on one side; skipped")
        return None
    a_cols = _pick(value_cols[ancestor], max_columns, seed, scope, ancestor)
    d_cols = _pick(value_cols[descendant], max_columns, seed, scope, descendant)
    if len(a_cols) < len(value_cols[ancestor]) or len(d_cols) < len(value_cols[descendant]):
        notes.append(f"inter-table {scope}: at most {max_columns} columns per side (a deterministic sample)")
    a_prep = _prepare(ra, sa, a_cols, ancestor, bins, guard, "intertable")
    d_prep = _prepare(rd, sd, d_cols, descendant, bins, guard, "intertable")
    path_pairs = []
    for a in a_prep:
        for d in d_prep:
            la, ld = f"{ancestor}.{a.name}", f"{descendant}.{d.name}"
            pair = guard.run("intertable", f"{scope}: {la}+{ld}", _pair, scope, a, d, la, ld)
            if pair is not None:
                path_pairs.append(pair)
    labels = [f"{tables[c].name}{tables[c].foreign_keys[i].label}" for c, i, _ in chain]
    return InterTablePath(
        path=list(reversed(names)),
        foreign_keys=labels,
        score=_stats.nanmean([p.score for p in path_pairs if p.score is not None]),
        real_rows=rd.num_rows,
        synthetic_rows=sd.num_rows,
        pairs=path_pairs,
    )


def _pick(cols: list[ValueColumn], limit: int, seed: int, *scope: str) -> list[ValueColumn]:
    keep = set(_cap([c.name for c in cols], limit, seed, *scope))
    return [c for c in cols if c.name in keep]


def _context_spec(
    schema: DatabaseSchema,
    table: Table,
    context: Mapping[str, ContextSpec] | None,
    tables: Mapping[str, Table],
    notes: list[str],
) -> ContextSpec | None:
    if context is not None and table.name in context:
        spec = context[table.name]
        if spec[0] not in tables:
            notes.append(
                f"table {table.name!r}: context parent {spec[0]!r} is not compared; detection without it"
            )
            return None
        return spec
    fk = context_fk(schema, table)
    if fk is None or fk.ref_table not in tables:
        return None
    return fk.ref_table, list(fk.columns), list(fk.ref_columns)


def _detection(
    name: str,
    spec: ContextSpec | None,
    value_cols: Mapping[str, list[ValueColumn]],
    sides: Mapping[tuple[str, str], _Side],
    seed: int,
    notes: list[str],
    guard: Guard,
) -> Detection | None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    own_cols = value_cols[name]
    parent_cols = value_cols[spec[0]] if spec is not None else []
    # Equal class sizes, so an AUC of 0.5 means "cannot tell" and not "guesses the larger class".
    n = min(sides[(name, "real")].sample.num_rows, sides[(name, "synthetic")].sample.num_rows)
    if n < 30 or not (own_cols or parent_cols):
        guard.failures.append(
            NotComputed(
                "detection",
                name,
                f"too little to classify: {n} row(s) per class (at least 30 needed), "
                f"{len(own_cols) + len(parent_cols)} value column(s)",
            )
        )
        return None
    frames = []
    for side in ("real", "synthetic"):
        s = sides[(name, side)]
        pick = np.sort(table_rng(seed, "detect", name).choice(s.sample.num_rows, size=n, replace=False))
        own = s.sample.take(pick)
        arrays = {f"t.{c.name}": own.column(c.name) for c in own_cols}
        if spec is not None:
            parent = sides[(spec[0], side)].full
            check_columns(own, spec[1], name, side)
            check_columns(parent, spec[2], spec[0], side)
            pkeys, ckeys = key_codes(parent, spec[2], own, spec[1])
            rows = parent_rows(pkeys, ckeys)
            # Rows without a parent take nulls for the parent's columns (take with a null index gives null).
            idx = pa.array(np.maximum(rows, 0), mask=rows < 0)
            for c in parent_cols:
                arrays[f"p.{c.name}"] = parent.column(c.name).take(idx)
        frames.append(pa.table(arrays))
    cols = [ValueColumn(f"t.{c.name}", c.kind, c.continuous) for c in own_cols]
    cols += [ValueColumn(f"p.{c.name}", c.kind, c.continuous) for c in parent_cols]
    feats = tree_features(frames, cols, where=f"table {name!r}")
    x = np.vstack(feats.matrices)
    y = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)])
    # Identical rows (a copied row, or repeated category combinations) go to one fold together: split apart, the
    # classifier would memorise the twin's opposite label and score below 0.5 on data it cannot tell apart.
    folds = 3
    # With a context, rows of one parent share its columns (often unique to it), so the classifier could learn a
    # parent's label from its siblings: siblings go to one fold too, by grouping on the parent's columns.
    group_cols = [c.name for c in cols if c.name.startswith("p.")] or [c.name for c in cols]
    groups = np.concatenate(row_codes(frames, group_cols))
    if np.unique(groups).size < 10 * folds:  # a parent with few distinct rows: fall back to whole rows
        groups = np.concatenate(row_codes(frames, [c.name for c in cols]))
    if np.unique(groups).size < folds:
        guard.failures.append(
            NotComputed("detection", name, f"fewer distinct rows than {folds} cross-validation folds")
        )
        return None
    aucs = []
    is_cat = np.asarray(feats.categorical, dtype=bool)
    splitter = GroupKFold(folds, shuffle=True, random_state=seed)
    with single_threaded():
        for train_idx, test_idx in splitter.split(x, y, groups):
            if np.unique(y[test_idx]).size < 2 or np.unique(y[train_idx]).size < 2:
                continue
            # Columns with one value in this fold's training rows (constant, single-valued, all-NULL) carry no
            # signal, and histogram binning raises on an all-NaN one: fit without them.
            keep = informative_columns(x[train_idx])
            if not keep.any():  # nothing varies: the classifier can only guess
                aucs.append(0.5)
                continue
            clf = HistGradientBoostingClassifier(
                max_iter=60,
                learning_rate=0.15,
                categorical_features=is_cat[keep] if is_cat[keep].any() else None,
                random_state=seed,
                early_stopping=False,
            )
            clf.fit(x[train_idx][:, keep], y[train_idx])
            aucs.append(float(roc_auc_score(y[test_idx], clf.predict_proba(x[test_idx][:, keep])[:, 1])))
    if not aucs:
        guard.failures.append(
            NotComputed("detection", name, "every cross-validation fold held one class only")
        )
        return None
    auc = float(np.mean(aucs))
    return Detection(name, spec[0] if spec else None, auc, _stats.detection_score(auc), n, x.shape[1], folds)
