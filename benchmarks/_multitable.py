"""Multi-table scoring shared by the benchmarks: SDMetrics' QualityReport with its per-relationship details, a
parent-with-children-aggregates detector (the SyntheRela kind), and key violations counted by SQL.

SDMetrics' metadata and the table loading come from :mod:`benchmarks.zoo_quality` (single-column keys only;
PII and free-text columns left out), so every benchmark scores the same columns the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.zoo_quality import _frames, _metadata

__all__ = [
    "DetectorScore",
    "Quality",
    "aggregate_detector",
    "key_violations",
    "load_tables",
    "quality_report",
    "sdmetrics_metadata",
]

#: categories per categorical child column whose share per parent is a feature (the most frequent real ones)
TOP_CATEGORIES = 3
#: rows per side the detector trains on at most (a larger parent table is sampled)
DETECTOR_ROWS = 20_000
CV_FOLDS = 5


def sdmetrics_metadata(schema: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """SDMetrics metadata from synthdb's schema and the columns kept per table (see ``zoo_quality._metadata``)."""
    return _metadata(schema)


def load_tables(url: str, keep: Mapping[str, list[str]]) -> dict[str, pd.DataFrame]:
    """The kept columns of each table of the database at ``url``, read whole."""
    return {t: f[list(keep[t])] for t, f in _frames(url, list(keep)).items()}


# ------------------------------------------------------------------------------------------------ SDMetrics


@dataclass
class Quality:
    """SDMetrics' multi-table QualityReport: overall, its properties, and two properties per relationship."""

    overall: float
    properties: dict[str, float]
    intertable: dict[str, float] = field(default_factory=dict)  # "parent <- child.fk" -> mean pair score
    cardinality: dict[str, float] = field(default_factory=dict)  # "parent <- child.fk" -> score
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        def clean(d: Mapping[str, float]) -> dict[str, float | None]:  # NaN is not JSON: None, printed n/a
            return {k: None if np.isnan(v) else v for k, v in d.items()}

        return {
            "overall": self.overall,
            "properties": clean(self.properties),
            "intertable_by_relationship": clean(self.intertable),
            "cardinality_by_relationship": clean(self.cardinality),
            "seconds": round(self.seconds, 2),
        }


def _relationship(row: pd.Series) -> str:
    return f"{row['Parent Table']} <- {row['Child Table']}.{row['Foreign Key']}"


def quality_report(
    real: Mapping[str, pd.DataFrame], other: Mapping[str, pd.DataFrame], metadata: Mapping[str, Any]
) -> Quality:
    """Score ``other`` against ``real`` with ``sdmetrics.reports.multi_table.QualityReport``.

    The per-relationship inter-table trend is the mean of that relationship's pair scores over the pairs the
    property itself averages (those with ``Meets Threshold?``, as SDMetrics does), so the relationships' figures
    average back to the property.
    """
    import time

    from sdmetrics.reports.multi_table import QualityReport

    started = time.perf_counter()
    report = QualityReport()
    report.generate(dict(real), dict(other), dict(metadata), verbose=False)
    props = report.get_properties()
    out = Quality(
        overall=float(report.get_score()),
        properties={str(r["Property"]): float(r["Score"]) for _, r in props.iterrows()},
    )
    trends = report.get_details("Intertable Trends")
    if len(trends) and "Score" in trends.columns:
        if "Meets Threshold?" in trends.columns:
            trends = trends[trends["Meets Threshold?"].astype("boolean").fillna(False)]
        trends = trends.assign(rel=trends.apply(_relationship, axis=1))
        out.intertable = {str(k): float(v) for k, v in trends.groupby("rel", sort=False)["Score"].mean().items()}
    card = report.get_details("Cardinality")
    if len(card) and "Score" in card.columns:
        card = card.assign(rel=card.apply(_relationship, axis=1))
        out.cardinality = {str(k): float(v) for k, v in card.groupby("rel", sort=False)["Score"].mean().items()}
    for rel in metadata.get("relationships", []):  # every relationship listed: NaN where no pair contributes
        label = f"{rel['parent_table_name']} <- {rel['child_table_name']}.{rel['child_foreign_key']}"
        out.intertable.setdefault(label, float("nan"))
        out.cardinality.setdefault(label, float("nan"))
    out.seconds = time.perf_counter() - started
    return out


# ------------------------------------------------------------------------------------------------- detector


@dataclass
class DetectorScore:
    """Cross-validated accuracy of telling real parent rows (with their children's aggregates) from synthetic."""

    table: str
    accuracy: float | None
    rows_per_side: int
    features: int
    children: list[str]
    folds: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "accuracy": self.accuracy,
            "rows_per_side": self.rows_per_side,
            "features": self.features,
            "children": self.children,
            "folds": self.folds,
            "note": self.note,
        }


def _numeric(series: pd.Series) -> pd.Series:
    """A feature column as floats: datetimes as epoch seconds, booleans as 0/1, anything else coerced."""
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.astype("int64").astype("float64") / 1e9
        return values.where(series.notna())
    if series.dtype == object and series.map(lambda v: isinstance(v, str)).any():
        parsed = pd.to_datetime(series, errors="coerce")
        if parsed.notna().sum() >= 0.9 * series.notna().sum():
            return _numeric(parsed)
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _key_frame(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Key columns in a form that joins across sides and dtypes (ints read as floats when NULLs are present)."""
    out = pd.DataFrame(index=frame.index)
    for i, c in enumerate(cols):
        s = frame[c]
        out[f"_k{i}"] = s.astype("float64") if pd.api.types.is_numeric_dtype(s) else s.astype("string")
    return out


@dataclass(frozen=True)
class _Link:
    child: str
    columns: list[str]  # in the child
    ref_columns: list[str]  # in the parent

    @property
    def label(self) -> str:
        cols = self.columns[0] if len(self.columns) == 1 else "(" + ", ".join(self.columns) + ")"
        return f"{self.child}.{cols}"


def _children_features(
    parent: pd.DataFrame,
    child: pd.DataFrame,
    link: _Link,
    numeric: list[str],
    categorical: dict[str, list[Any]],
) -> pd.DataFrame:
    """Per parent row: its children's count, mean and std of numeric columns, shares of the top categories."""
    keys = [f"_k{i}" for i in range(len(link.columns))]
    ck = _key_frame(child, link.columns)
    present = ck.notna().all(axis=1)
    body = pd.DataFrame(index=child.index)
    for c in numeric:
        body[f"{c}"] = _numeric(child[c])
    for c, tops in categorical.items():
        for j, v in enumerate(tops):
            body[f"{c}=top{j}"] = (child[c] == v).astype("float64")
    grouped = pd.concat([ck, body], axis=1)[present].groupby(keys, dropna=True, sort=False)
    agg = grouped.size().rename("count").to_frame()
    if numeric:
        agg = agg.join(grouped[numeric].mean().add_suffix(":mean")).join(grouped[numeric].std().add_suffix(":std"))
    share_cols = [c for c in body.columns if "=top" in c]
    if share_cols:
        agg = agg.join(grouped[share_cols].mean().add_suffix(":share"))
    agg = agg.add_prefix(f"{link.label}:")
    pk = _key_frame(parent, link.ref_columns)
    joined = pk.join(agg, on=keys)
    joined[f"{link.label}:count"] = joined[f"{link.label}:count"].fillna(0.0)
    return joined.drop(columns=keys)


def _parent_links(schema: Any) -> dict[str, list[_Link]]:
    links: dict[str, list[_Link]] = {}
    for t in schema.active_tables:
        for fk in t.foreign_keys:
            if fk.ref_table == t.name:
                continue  # a self-reference is a tree, not parent rows with their children
            links.setdefault(fk.ref_table, []).append(_Link(t.name, list(fk.columns), list(fk.ref_columns)))
    return links


def aggregate_detector(
    real: Mapping[str, pd.DataFrame],
    synth: Mapping[str, pd.DataFrame],
    schema: Any,
    metadata: Mapping[str, Any],
    *,
    seed: int = 0,
) -> dict[str, DetectorScore]:
    """For each parent table: can a classifier tell real from synthetic parent rows joined with child aggregates?

    Each parent row gets its own learned columns (SDMetrics' non-id columns: keys are generated, not learned)
    and, per foreign key pointing at it, its children's count, the mean and standard deviation of each numeric
    (and datetime) child column, and the share of each of the real data's ``TOP_CATEGORIES`` most frequent values
    of each categorical child column. A ``HistGradientBoostingClassifier`` (sklearn's XGBoost-like booster) is
    cross-validated (stratified ``CV_FOLDS`` folds) on real against synthetic rows, equal counts per side (at most
    ``DETECTOR_ROWS``). Accuracy 0.5: indistinguishable; 1.0: every row told apart.

    ``real`` and ``synth`` must hold every column the schema's keys name (read them with the key columns kept).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    sdtypes = {t: {c: spec["sdtype"] for c, spec in m["columns"].items()} for t, m in metadata["tables"].items()}
    out: dict[str, DetectorScore] = {}
    rng = np.random.default_rng(seed)
    for parent, links in _parent_links(schema).items():
        own = [c for c, s in sdtypes.get(parent, {}).items() if s != "id"]
        own_cat = [c for c in own if sdtypes[parent][c] in ("categorical", "boolean")]
        sides: list[pd.DataFrame] = []
        for data in (real, synth):
            p = data[parent]
            parts = [p[own].reset_index(drop=True)]
            for link in links:
                child_types = sdtypes.get(link.child, {})
                numeric = [c for c, s in child_types.items() if s in ("numerical", "datetime")]
                categorical = {
                    c: list(real[link.child][c].value_counts(dropna=True).index[:TOP_CATEGORIES])
                    for c, s in child_types.items()
                    if s in ("categorical", "boolean")
                }
                parts.append(
                    _children_features(p, data[link.child], link, numeric, categorical).reset_index(drop=True)
                )
            sides.append(pd.concat(parts, axis=1))
        n = min(len(sides[0]), len(sides[1]), DETECTOR_ROWS)
        children = [link.label for link in links]
        if n < 2 * 2:
            out[parent] = DetectorScore(parent, None, n, 0, children, note=f"only {n} row(s) per side")
            continue
        taken = [s.iloc[np.sort(rng.choice(len(s), size=n, replace=False))] for s in sides]
        both = pd.concat(taken, ignore_index=True)
        y = np.r_[np.zeros(n), np.ones(n)]
        columns: dict[str, np.ndarray] = {}
        categorical_mask: list[bool] = []
        for c in both.columns:
            if c in own_cat:
                codes = pd.Categorical(both[c].astype("string")).codes.astype("float64")
                codes[codes < 0] = np.nan
                columns[c] = codes
                # the booster's native categories need fewer than 255 values; more are split as ordinal codes
                categorical_mask.append(int(np.nanmax(codes, initial=0)) < 254)
            else:
                columns[c] = _numeric(both[c]).to_numpy()
                categorical_mask.append(False)
        x = np.column_stack(list(columns.values())) if columns else np.zeros((2 * n, 0))
        keep = ~np.all(np.isnan(x), axis=0)  # a column NULL everywhere carries nothing
        x, mask = x[:, keep], np.asarray(categorical_mask, dtype=bool)[keep]
        if x.shape[1] == 0:
            out[parent] = DetectorScore(parent, None, n, 0, children, note="no feature to compare")
            continue
        # Identical rows on both sides (a parent row with the same children in both) share one group, so they
        # fall in one fold: otherwise the twin in the training folds, labelled the other way, drives the accuracy
        # below 0.5. Real against synthetic rows rarely repeat; real against real (the ceiling) often do.
        groups = pd.util.hash_pandas_object(pd.DataFrame(x), index=False).to_numpy()
        twins = 2 * n - len(np.unique(groups))
        folds = min(CV_FOLDS, n)
        clf = HistGradientBoostingClassifier(
            categorical_features=mask if mask.any() else None, random_state=seed, max_iter=200
        )
        cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        accuracy = float(np.mean(cross_val_score(clf, x, y, groups=groups, cv=cv, scoring="accuracy")))
        notes = [f"{n} rows per side: noisy"] if n < 100 else []
        if twins:
            notes.append(f"{twins:,} rows repeat another row (kept in one fold)")
        note = "; ".join(notes) or None
        out[parent] = DetectorScore(parent, accuracy, n, x.shape[1], children, folds=folds, note=note)
    return out


# ---------------------------------------------------------------------------------------------------- keys


def key_violations(url: str, schema: Any) -> dict[str, int]:
    """Duplicate primary/unique key values and orphaned foreign keys, counted by SQL on the database at ``url``.

    The counting is ``tests/zoo/checks.py``'s (:func:`zoo.checks.integrity_violations`), with the keys of
    synthdb's schema: NULL members take no part in a key, and a reference with any NULL column is absent.
    """
    from zoo.checks import integrity_violations  # tests/ is on sys.path through benchmarks.zoo_quality

    tables = schema.active_tables
    found = integrity_violations(
        url,
        {t.name: list(t.primary_key.columns) for t in tables if t.primary_key},
        {t.name: [list(u.columns) for u in t.unique] for t in tables if t.unique},
        [(t.name, tuple(fk.columns), fk.ref_table, tuple(fk.ref_columns)) for t in tables for fk in t.foreign_keys],
    )
    out = {f"PK {k}": v for k, v in found.duplicate_primary_keys.items()}
    out.update({f"unique {k}": v for k, v in found.duplicate_unique_keys.items()})
    out.update({f"FK {k}": v for k, v in found.orphaned_foreign_keys.items()})
    return out
