"""report: score synthetic tables against real ones and write ``report.json`` and ``report.html``.

The last stage of ``synthdb run`` (:func:`build_report`, on the run's Parquet) and the body of ``synthdb report``
(:func:`report_databases`, on any two databases with the same tables and keys). Every metric works on bounded
samples (``report.sample_rows`` rows per table and side; privacy on half as many), so the cost does not grow with
the table sizes beyond reading the key columns.

``report.json`` (``version`` 1). Keys are always present; a value that could not be computed is ``null``::

    {
      "version": 1,
      "generated_at": "2026-01-31T12:00:00+00:00",       # UTC, ISO 8601
      "title": "synthdb report",
      "sources": {"real": "...", "synthetic": "..."},    # passwords redacted; {} when the caller gave none
      "headline": {                                      # always these keys, in this order
        "<name>": {
          "score": 0.93 | null,                          # null: not computed (e.g. no foreign key, no holdout)
          "threshold": 0.7,                              # from report.thresholds in the run configuration
          "direction": "higher_is_better" | "lower_is_better",
          "status": "pass" | "warn" | "n/a",             # n/a exactly when score is null
          "table": "flights" | null,                     # privacy: the worst table, which sets the score
          "column": "plate" | null,                      # column_copies: the worst column of that table
          "ci": [0.49, 0.53] | null,                     # dcr_share, mia_auc: the 95% interval of that table's score
          "warn_means": "...",                           # what a value past the threshold means, one line
          "reason": "..." | null                         # n/a: why it could not be computed
        }, ...
      },
      "holdout": {"kind": "holdout" | "pseudo" | "none", "share": 0.1 | null, "note": "..."},
      "kept": ["airlines"],                              # tables copied (mode: keep or subset): real, not scored
      "kept_columns": {"planes": ["year"]},              # kept columns of synthesized tables: shapes not scored
      "fidelity": {...},                                 # synth_engine.metrics.FidelityResult.to_dict()
      "privacy": {...} | null,                           # PrivacyResult.to_dict(); null without holdout rows
      "utility": {...} | null,                           # UtilityResult.to_dict(); null without target_column
      "samples": {
        "sample_rows": 20000, "privacy_sample_rows": 10000, "attack_rows": 2500, "index_rows": 200000,
        "plot_rows": 20000,
        "tables": {"<table>": {"real_rows": n, "synthetic_rows": n, "train_rows": n | null,
                               "holdout_rows": n | null, "read": "given" | "whole" | "sampled"}}
      },
      "not_computed": [{"metric", "scope", "reason"}],   # every metric left n/a on a column/table, and why
      "notes": ["what was capped, skipped or approximated, one line each"],
      "timings": {"fidelity": s, "privacy": s, "utility": s, "html": s},
      "seconds": 12.3                                    # the whole report, reading excluded
    }

Headline scores, in order: ``overall``, ``column_shapes``, ``column_pair_trends``, ``cardinality``,
``intertable_trends``, ``detection`` (fidelity, in [0, 1], higher is better), ``utility_ratio`` (synthetic-trained
score / real-trained score), then the privacy measures, lower is better (see :mod:`synth_engine.metrics.privacy`): ``dcr_share`` (the largest
over the tables of the share of synthetic rows whose nearest real row is a training row rather than a holdout row,
every training and holdout row indexed and chance rescaled to 0.5: ideal 0.5, a copier 1), ``mia_auc`` (the largest
AUC of a membership-inference attack that calls a real row a member when a synthetic row lies close to it, on
training rows against holdout rows: ideal 0.5, with DeLong's 95% interval), ``exact_copies`` (the largest, over the
tables, of the share of synthetic rows equal to a training row *minus* the same share for holdout rows, floored at 0:
rows that fresh real data repeats as well, such as a small table of categories, are no leak) and ``column_copies``
(the largest, over the key-like columns, of the share of synthetic values that are real training values beyond the
holdout's share and chance: a copied licence plate in an otherwise new row; generated integer keys are equal to
real ones by construction and are listed, not scored). Each headline item says in ``warn_means`` what a value past
its threshold means.

Privacy runs on ``privacy_sample_rows`` synthetic rows per table (half of ``sample_rows``), ``attack_rows`` members
(a quarter of those) and as many non-members, and nearest-neighbour indexes of at most ``index_rows`` rows: ten
times ``sample_rows``, the most rows the run reads per table, so every training row read is indexed.

The report is total: a metric that cannot be computed on a column, pair, key or table is ``n/a`` with its reason
(``not_computed``, and the headline's ``reason``); a whole category that fails (fidelity, privacy, utility, the
page) is ``n/a`` the same way. Only bad input raises: a ``report.target_column`` that names no column, a table
that lacks a declared column.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.config import REPORT_THRESHOLDS, ReportConfig
from schemas.errors import ConfigError, SourceInputError
from schemas.model import DatabaseSchema

log = logging.getLogger(__name__)

__all__ = [
    "REPORT_VERSION",
    "ReportResult",
    "build_report",
    "headline_lines",
    "read_tables",
    "report_databases",
]

REPORT_VERSION = 1
LOWER_IS_BETTER = frozenset({"dcr_share", "mia_auc", "exact_copies", "column_copies"})
_FIDELITY_METRICS = {  # headline score -> the not_computed metrics that feed it
    "overall": ("column_shape", "pair_trend", "cardinality", "intertable", "foreign_key"),
    "column_shapes": ("column_shape",),
    "column_pair_trends": ("pair_trend",),
    "cardinality": ("cardinality", "foreign_key"),
    "intertable_trends": ("intertable", "foreign_key"),
    "detection": ("detection",),
}
_PRIVACY_METRICS = {
    "dcr_share": ("privacy", "distances"),
    "mia_auc": ("privacy", "distances"),
    "exact_copies": ("privacy", "exact_copies"),
    "column_copies": ("privacy", "column_copies"),
}
# What a value past its threshold means, in one line, for report.json and the page.
WARN_MEANS = {
    "overall": "the synthetic data misses much of the real data's shape; the categories below say where",
    "column_shapes": "some columns' distributions differ from the real ones (the distribution plots show which)",
    "column_pair_trends": "correlations or co-occurrences between columns of one table are lost",
    "cardinality": "parents get a different number of children than in the real data",
    "intertable_trends": "the relationships between a parent's columns and its children's are lost",
    "detection": "a classifier tells synthetic rows from real ones easily",
    "utility_ratio": "a model trained on the synthetic data predicts the holdout much worse than one trained on "
    "real data",
    "dcr_share": "synthetic rows lie nearer to training rows than fresh real rows do: the generator copies or "
    "memorises training rows",
    "mia_auc": "an attacker holding a real record can tell better than chance whether it was in the training "
    "data",
    "exact_copies": "synthetic rows repeat whole training rows more often than fresh real data does",
    "column_copies": "a key-like column (identifier, code, PII) gives back real training values",
}

ContextSpec = tuple[str, list[str], list[str]]


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it says at a glance.

    Attributes:
        json_path: ``out_dir/report.json``.
        html_path: ``out_dir/report.html``.
        headline: the ``headline`` mapping of ``report.json`` (name -> score, threshold, direction, status).
        seconds: wall time of the report (reading the databases excluded).
    """

    json_path: Path
    html_path: Path
    headline: dict[str, dict[str, Any]]
    seconds: float

    @property
    def warnings(self) -> list[str]:
        """The headline scores whose status is ``warn``."""
        return [name for name, item in self.headline.items() if item["status"] == "warn"]


def build_report(
    real: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    schema: DatabaseSchema,
    out_dir: Path,
    *,
    holdout: Mapping[str, pa.Table] | None = None,
    config: ReportConfig | None = None,
    context: Mapping[str, ContextSpec] | None = None,
    title: str = "synthdb report",
    seed: int = 0,
    sources: Mapping[str, str] | None = None,
) -> ReportResult:
    """Score ``synth`` against ``real`` and write ``out_dir/report.json`` and ``out_dir/report.html`` atomically.

    Args:
        real: the real rows the generator was trained on, by table (keys intact: cardinality and joins need them).
        synth: the synthetic tables, by table.
        schema: the schema; its active tables present in both mappings are scored.
        out_dir: the folder to write into (created when missing).
        holdout: real rows the generator never saw, by table. With rows, privacy compares synthetic rows with them
            (training rows = ``real``) and the utility metric tests on them; without, both are left out.
        config: sample bounds, thresholds and the utility target; defaults to ``ReportConfig()``.
        context: per child table, ``(parent, child FK columns, parent columns)`` to condition detection on; by
            default each table's ``context`` setting, else its first foreign key.
        title: the page title.
        seed: seeds every sample and classifier: the same inputs and seed give the same scores.
        sources: labels for the page header and ``report.json`` (e.g. redacted URLs).

    Returns:
        The paths, the headline and the time taken.

    Raises:
        ConfigError: ``report.target_column`` does not name a column of a scored table.
        MetricsError: a table lacks a column that the schema declares.
    """
    has_holdout = holdout is not None and any(t.num_rows for t in holdout.values())
    info = (
        {"kind": "holdout", "share": _share(real, holdout), "note": "real rows held out of training"}
        if has_holdout
        else {"kind": "none", "share": None, "note": "no holdout rows were given: privacy was not measured"}
    )
    samples = {
        name: {
            "real_rows": real[name].num_rows,
            "synthetic_rows": synth[name].num_rows if name in synth else None,
            "train_rows": real[name].num_rows if has_holdout else None,
            "holdout_rows": holdout[name].num_rows if has_holdout and holdout and name in holdout else None,
            "read": "given",
        }
        for name in real
    }
    return _report(
        real,
        synth,
        schema,
        out_dir,
        train=real if has_holdout else None,
        holdout=holdout if has_holdout else None,
        holdout_info=info,
        config=config or ReportConfig(),
        context=context,
        title=title,
        seed=seed,
        sources=dict(sources or {}),
        samples=samples,
        notes=[],
    )


def _share(real: Mapping[str, pa.Table], holdout: Mapping[str, pa.Table] | None) -> float | None:
    if not holdout:
        return None
    kept = sum(t.num_rows for t in real.values())
    held = sum(t.num_rows for t in holdout.values())
    return round(held / (kept + held), 4) if kept + held else None


def _report(
    real: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    schema: DatabaseSchema,
    out_dir: Path,
    *,
    train: Mapping[str, pa.Table] | None,
    holdout: Mapping[str, pa.Table] | None,
    holdout_info: dict[str, Any],
    config: ReportConfig,
    context: Mapping[str, ContextSpec] | None,
    title: str,
    seed: int,
    sources: dict[str, str],
    samples: dict[str, dict[str, Any]],
    notes: list[str],
) -> ReportResult:
    """The shared core: ``real`` is scored for fidelity; ``train`` and ``holdout`` (when given) for privacy."""
    from pipelines._internal.report_html import PlotOptions, fallback_html, render_html
    from pipelines.manifest import atomic_write_text
    from synth_engine.metrics import evaluate_fidelity, evaluate_privacy

    started = time.perf_counter()
    target = _utility_target(config.target_column, schema, real, synth)
    timings: dict[str, float] = {}
    privacy_rows = max(100, config.sample_rows // 2)
    attack_rows = privacy_rows // 4
    index_rows = 10 * config.sample_rows  # what the run reads per table at most: every row read is indexed
    failed: dict[str, str] = {}  # a whole category not measured -> why (shown as the headline's n/a reason)
    errors: dict[str, str] = {}  # those of them that raised

    def attempt(category: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            errors[category] = failed[category] = f"{type(exc).__name__}: {exc}"
            log.warning("report: %s could not be computed: %s", category, errors[category], exc_info=True)
            notes.append(f"{category}: n/a ({errors[category]})")
            return None
        finally:
            timings[category] = round(time.perf_counter() - t0, 3)

    kept = [t.name for t in schema.active_tables if t.copied]
    kept_columns = {
        t.name: cols
        for t in schema.active_tables
        if not t.copied and (cols := [c.name for c in t.active_columns if c.mode == "keep"])
    }
    fidelity = attempt(
        "fidelity",
        evaluate_fidelity,
        real,
        synth,
        schema,
        context=context,
        sample_rows=config.sample_rows,
        seed=seed,
        kept=kept,
        kept_columns=kept_columns,
    )
    if fidelity is not None:
        notes.extend(f"fidelity: {n}" for n in fidelity.notes)
    else:
        fidelity = _empty_fidelity(config.sample_rows, seed)

    privacy = None
    if train is not None and holdout is not None:
        if kept:
            notes.append(f"privacy: kept tables ({', '.join(kept)}) are real by the user's choice: not measured")
        if kept_columns:
            listed = ", ".join(f"{t}.{c}" for t, cs in kept_columns.items() for c in cs)
            notes.append(f"privacy: kept columns ({listed}) are real by the user's choice: left out of every measure")
        privacy = attempt(
            "privacy",
            evaluate_privacy,
            {n: t for n, t in train.items() if n not in kept},
            {n: t for n, t in holdout.items() if n not in kept},
            synth,
            _without_kept_columns(schema, kept_columns),
            sample_rows=privacy_rows,
            attack_rows=attack_rows,
            index_rows=index_rows,
            seed=seed,
        )
        if privacy is not None:
            notes.extend(f"privacy: {n}" for n in privacy.notes)
    else:
        notes.append(f"privacy: {holdout_info['note']}")
        failed.setdefault("privacy", holdout_info["note"])

    utility_result = None
    if target is not None:
        table_name, column = target
        if train is None or holdout is None or table_name not in holdout or holdout[table_name].num_rows < 2:
            notes.append(f"utility: no holdout rows of {table_name!r} to test on; not measured")
            failed["utility"] = f"no holdout rows of {table_name!r} to test on"
        else:
            from synth_engine.metrics import utility

            utility_result = attempt(
                "utility",
                utility,
                train[table_name],
                holdout[table_name],
                synth[table_name],
                column,
                table=schema.table(table_name),
                sample_rows=config.sample_rows,
                seed=seed,
            )
    else:
        failed["utility"] = "no report.target_column is set"

    headline = _headline(fidelity, privacy, utility_result, config.thresholds, failed)
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")

    options = PlotOptions(sample_rows=config.sample_rows, seed=seed)
    html = attempt(
        "html",
        render_html,
        title=title,
        generated_at=generated_at,
        seconds=time.perf_counter() - started,
        sources=list(sources.items()),
        headline=headline,
        holdout_note=f"holdout: {holdout_info['kind']} — {holdout_info['note']}",
        notes=notes,
        schema=schema,
        fidelity=fidelity,
        privacy=privacy,
        utility=utility_result,
        real=real,
        synth=synth,
        options=options,
        version=REPORT_VERSION,
    )
    if html is None:
        html = fallback_html(title, generated_at, failed["html"], headline)
    seconds = round(time.perf_counter() - started, 3)

    payload = {
        "version": REPORT_VERSION,
        "generated_at": generated_at,
        "title": title,
        "sources": sources,
        "headline": headline,
        "holdout": holdout_info,
        "kept": kept,
        "kept_columns": kept_columns,
        "fidelity": fidelity.to_dict(),
        "privacy": privacy.to_dict() if privacy is not None else None,
        "utility": utility_result.to_dict() if utility_result is not None else None,
        "not_computed": [
            *(asdict(f) for r in (fidelity, privacy) if r is not None for f in r.not_computed),
            *({"metric": c, "scope": "(all tables)", "reason": why} for c, why in errors.items()),
        ],
        "samples": {
            "sample_rows": config.sample_rows,
            "privacy_sample_rows": privacy_rows,
            "attack_rows": attack_rows,
            "index_rows": index_rows,
            "plot_rows": options.sample_rows,
            "tables": samples,
        },
        "notes": notes,
        "timings": timings,
        "seconds": seconds,
    }
    out_dir = Path(out_dir)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    atomic_write_text(json_path, json.dumps(payload, indent=2, allow_nan=False))
    atomic_write_text(html_path, html)
    log.info("report written to %s in %.1f s (%s)", out_dir, seconds, _summary(headline))
    return ReportResult(json_path=json_path, html_path=html_path, headline=headline, seconds=seconds)


def _utility_target(
    target: str | None, schema: DatabaseSchema, real: Mapping[str, pa.Table], synth: Mapping[str, pa.Table]
) -> tuple[str, str] | None:
    if target is None:
        return None
    table_name, _, column = target.partition(".")
    if not column:
        raise ConfigError(f"report.target_column must be written 'table.column', got {target!r}")
    if not schema.has_table(table_name) or table_name not in real or table_name not in synth:
        raise ConfigError(
            f"report.target_column {target!r}: table {table_name!r} is not among the scored tables "
            f"({', '.join(sorted(set(real) & set(synth))) or 'none'}); fix the name"
        )
    if not schema.table(table_name).has_column(column):
        cols = ", ".join(c.name for c in schema.table(table_name).columns)
        raise ConfigError(
            f"report.target_column {target!r}: table {table_name!r} has no column {column!r} ({cols})"
        )
    return table_name, column


def _without_kept_columns(schema: DatabaseSchema, kept_columns: Mapping[str, list[str]]) -> DatabaseSchema:
    """``schema`` with the kept columns of synthesized tables excluded: real by choice, they measure no copying."""
    if not kept_columns:
        return schema
    out = schema.model_copy(deep=True)
    for table, cols in kept_columns.items():
        for c in cols:
            out.table(table).column(c).excluded = True
    return out


def _empty_fidelity(sample_rows: int, seed: int) -> Any:
    """The fidelity result when fidelity as a whole could not be computed: every score None."""
    from synth_engine.metrics import FidelityResult

    return FidelityResult(
        overall=None,
        column_shapes=None,
        column_pair_trends=None,
        cardinality=None,
        intertable_trends=None,
        null_similarity=None,
        detection=None,
        tables={},
        columns=[],
        pairs=[],
        cardinalities=[],
        intertable=[],
        detections=[],
        sample_rows=sample_rows,
        seed=seed,
        seconds=0.0,
        notes=[],
    )


def _headline(
    fidelity: Any,
    privacy: Any,
    utility_result: Any,
    thresholds: Mapping[str, float],
    failed: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    failed = failed or {}
    worst: dict[str, str | None] = {}
    worst_column: str | None = None
    ci: dict[str, list[float] | None] = {}
    privacy_scores: dict[str, float | None] = {
        "dcr_share": None,
        "mia_auc": None,
        "exact_copies": None,
        "column_copies": None,
    }
    if privacy is not None and privacy.tables:
        per_table = {
            "dcr_share": {n: t.dcr_closer_to_train_share for n, t in privacy.tables.items()},
            "mia_auc": {n: t.mia_auc for n, t in privacy.tables.items()},
            # Beyond the holdout's own share: rows that fresh real data repeats too are no leak.
            "exact_copies": {
                n: max(0.0, t.exact_copy_share - t.holdout_copy_share)
                for n, t in privacy.tables.items()
                if t.exact_copy_share is not None and t.holdout_copy_share is not None
            },
            "column_copies": {n: t.max_column_copy_excess for n, t in privacy.tables.items()},
        }
        for name, values in per_table.items():
            defined = {n: v for n, v in values.items() if v is not None}
            if defined:
                worst[name] = max(defined, key=lambda n: defined[n])
                privacy_scores[name] = defined[worst[name]]
        intervals = {"dcr_share": "dcr_share_ci", "mia_auc": "mia_auc_ci"}
        for name, attr in intervals.items():
            if worst.get(name) is not None:
                ci[name] = getattr(privacy.tables[worst[name]], attr)
        if worst.get("column_copies") is not None and privacy.worst_copy_column:
            worst_column = privacy.worst_copy_column.split(".", 1)[1]
    scores: dict[str, float | None] = {
        "overall": fidelity.overall,
        "column_shapes": fidelity.column_shapes,
        "column_pair_trends": fidelity.column_pair_trends,
        "cardinality": fidelity.cardinality,
        "intertable_trends": fidelity.intertable_trends,
        "detection": fidelity.detection,
        "utility_ratio": utility_result.ratio if utility_result is not None else None,
        **privacy_scores,
    }
    limits = {**REPORT_THRESHOLDS, **thresholds}
    out: dict[str, dict[str, Any]] = {}
    for name, score in scores.items():
        lower = name in LOWER_IS_BETTER
        if score is None or not np.isfinite(score):
            status, score = "n/a", None
        elif lower:
            status = "pass" if score <= limits[name] else "warn"
        else:
            status = "pass" if score >= limits[name] else "warn"
        out[name] = {
            "score": None if score is None else round(float(score), 6),
            "threshold": limits[name],
            "direction": "lower_is_better" if lower else "higher_is_better",
            "status": status,
            "table": worst.get(name) if score is not None else None,
            "column": worst_column if name == "column_copies" and score is not None else None,
            "ci": _interval(ci.get(name)) if score is not None else None,
            "warn_means": WARN_MEANS[name],
            "reason": _reason(name, fidelity, privacy, failed) if score is None else None,
        }
    return out


def _interval(ci: list[float] | None) -> list[float] | None:
    return None if ci is None else [round(float(v), 6) for v in ci]


def _reason(name: str, fidelity: Any, privacy: Any, failed: Mapping[str, str]) -> str:
    """Why a headline score is n/a, in one line: the failures that fed it, or what it needs and did not have."""
    if name in _FIDELITY_METRICS:
        if "fidelity" in failed:
            return f"fidelity could not be computed: {failed['fidelity']}"
        causes = [f for f in fidelity.not_computed if f.metric in _FIDELITY_METRICS[name]]
        default = {
            "overall": "no fidelity category could be computed",
            "column_shapes": "no value column to compare (keys, PII and text are not compared by value)",
            "column_pair_trends": "no table has two comparable value columns with a defined score",
            "cardinality": "no foreign key between the compared tables",
            "intertable_trends": "no foreign key joins two tables that both have value columns",
            "detection": "detection is switched off",
        }[name]
    elif name == "utility_ratio":
        return failed.get("utility", "not measured")
    else:
        if privacy is None:
            return failed.get("privacy", "privacy was not measured")
        causes = [f for f in privacy.not_computed if f.metric in _PRIVACY_METRICS[name]]
        default = {
            "dcr_share": "no table has a learned numeric or categorical column to measure distances on",
            "mia_auc": "no table has a learned numeric or categorical column to measure distances on",
            "exact_copies": "no table has a learned non-key column and rows on every side",
            "column_copies": "no key-like column (mostly distinct values) other than generated integer keys",
        }[name]
    if not causes:
        return default
    shown = "; ".join(f"{f.scope}: {f.reason}" for f in causes[:3])
    more = f" (and {len(causes) - 3} more, see not_computed)" if len(causes) > 3 else ""
    return f"not computed on {shown}{more}"


def _summary(headline: Mapping[str, Mapping[str, Any]]) -> str:
    warns = [n for n, h in headline.items() if h["status"] == "warn"]
    return f"{len(warns)} warning(s): {', '.join(warns)}" if warns else "every computed score passes"


def headline_lines(headline: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The headline as aligned plain-text lines, one per score, for a terminal summary."""
    lines = []
    for name, item in headline.items():
        score = "–" if item["score"] is None else f"{item['score']:.3f}"
        bound = ("<= " if item["direction"] == "lower_is_better" else ">= ") + f"{item['threshold']:.2f}"
        ci = item.get("ci")
        interval = f"  (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        lines.append(f"{name:<20} {score:>7}  {bound:<8} {item['status']}{interval}")
    return lines


def parquet_rows(folder: Path) -> int:
    """Rows in a table's Parquet folder (from the files' footers; nothing else is read)."""
    import pyarrow.parquet as pq

    files = [f for f in Path(folder).glob("*.parquet") if not f.name.startswith((".", "_"))]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def read_tables(
    dirs: Mapping[str, Path],
    *,
    max_rows: int | None = None,
    seed: int = 0,
    shares: Mapping[str, float] | None = None,
) -> dict[str, pa.Table]:
    """Read each table's Parquet folder (its ``*.parquet`` files, hidden ones aside) as one Arrow table.

    Missing or empty folders are left out of the result.

    Args:
        dirs: table name -> folder, e.g. ``{t.name: Workspace(run_dir).table("real", t.name) for t in ...}``.
        max_rows: a table with more rows is read as a uniform random sample of about this many rows, batch by
            batch, so memory stays bounded by it (children then miss some parents in cardinality and joins, on
            both sides alike when both are sampled). None reads whole tables.
        seed: seeds the sample.
        shares: per table, the share of rows to read instead of ``max_rows`` (1 reads it whole). Reading the real
            and the synthetic side of a table at the same share keeps children-per-parent counts comparable:
            two sides sampled to one row cap are thinned differently when their sizes differ.
    """
    import pyarrow.parquet as pq

    out = {}
    for name, folder in dirs.items():
        # Temporary files of an interrupted writer start with "." (pathlib's glob does not skip them).
        files = sorted(f for f in Path(folder).glob("*.parquet") if not f.name.startswith((".", "_")))
        if not files:
            continue
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if shares is not None and name in shares:
            share = shares[name]
        else:
            share = 1.0 if max_rows is None or total <= max_rows else max_rows / total
        if share >= 1.0:
            out[name] = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
            continue
        rng = np.random.default_rng([seed, *name.encode("utf-8")])
        parts = []
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=65_536):
                parts.append(
                    pa.Table.from_batches([batch]).filter(pa.array(rng.random(batch.num_rows) < share))
                )
        out[name] = pa.concat_tables(parts, promote_options="permissive")
        log.info("report: %s: a sample of %d of %d rows", name, out[name].num_rows, total)
    return out


def report_databases(
    real_url: str,
    synth_url: str,
    out_dir: Path,
    *,
    schema: DatabaseSchema | None = None,
    db_schema: str | None = None,
    synth_db_schema: str | None = None,
    holdout_share: float = 0.1,
    max_rows: int = 500_000,
    config: ReportConfig | None = None,
    seed: int = 0,
    title: str = "synthdb report",
) -> ReportResult:
    """Score any synthetic database against a real one with the same tables and keys (``synthdb report``).

    Tables of at most ``max_rows`` rows are read whole, so every foreign key finds its parent; a larger table is
    read as a random sample of ``max_rows`` rows (noted in ``report.json``), which leaves some of its children's
    keys without their parent row for cardinality and inter-table trends. No holdout exists for data synthdb did
    not make, so each real table's rows are split at random: ``holdout_share`` of them stand in as a
    *pseudo-holdout* for privacy (the generator may have seen them, so privacy measures read optimistic); fidelity
    uses every real row read.

    Args:
        real_url: the real database (SQLAlchemy URL or folder of Parquet/CSV files).
        synth_url: the synthetic one.
        out_dir: where ``report.json`` and ``report.html`` go.
        schema: the schema (an edited schema file, merged over the reflected one by the caller); None reflects the
            real database and infers the kinds from a sample.
        db_schema: the database schema (namespace) of the real database.
        synth_db_schema: the namespace of the synthetic one.
        holdout_share: share of each real table's rows used as the pseudo-holdout; 0 leaves privacy out.
        max_rows: per table, read at most this many rows.
        config: sample bounds, thresholds, utility target.
        seed: seeds the reading samples, the split and every metric.
        title: the page title.

    Raises:
        SourceInputError: the synthetic database lacks tables of the real one.
        ConnectorError: a database cannot be reached.
    """
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from connectors.sql.url import redact_url

    if not 0.0 <= holdout_share < 1.0:
        raise ConfigError(f"--holdout-share must be in [0, 1), got {holdout_share}")
    if max_rows < 10:
        raise ConfigError(f"--max-rows must be at least 10, got {max_rows}")
    started = time.perf_counter()
    notes: list[str] = []
    real_source = open_source(real_url, db_schema=db_schema, schema=schema)
    try:
        if schema is None:
            schema = inspect_source(real_source, seed=seed).schema
        schema = schema.validate_all()
        real, how = _read_all(real_source, schema, max_rows, seed, notes, "real")
    finally:
        real_source.close()
    synth_schema = _without_namespace(schema)
    probe = open_source(synth_url, db_schema=synth_db_schema)
    try:
        present = {t.name for t in probe.read_schema().tables}
    finally:
        probe.close()
    missing = [t.name for t in schema.active_tables if t.name not in present]
    if missing:
        raise SourceInputError(
            f"the synthetic database {redact_url(synth_url)} lacks table(s) {', '.join(missing)} of the real one "
            f"(it has: {', '.join(sorted(present)) or 'none'}); point --synth at a copy with the same tables, or "
            "exclude those tables in a --schema file"
        )
    synth_source = open_source(synth_url, db_schema=synth_db_schema, schema=synth_schema)
    try:
        synth, _ = _read_all(synth_source, synth_schema, max_rows, seed, notes, "synthetic")
    finally:
        synth_source.close()
    log.info("report: read both databases in %.1f s", time.perf_counter() - started)

    train: dict[str, pa.Table] | None = None
    holdout: dict[str, pa.Table] | None = None
    if holdout_share > 0:
        train, holdout = {}, {}
        for name, table in real.items():
            rng = np.random.default_rng([seed, len(name), *name.encode("utf-8")])
            held = rng.random(table.num_rows) < holdout_share
            holdout[name] = table.filter(pa.array(held))
            train[name] = table.filter(pa.array(~held))
        info = {
            "kind": "pseudo",
            "share": holdout_share,
            "note": (
                f"no true holdout: {holdout_share:.0%} of each real table's rows, picked at random, stand in for "
                "one. The generator may have seen them, so the privacy measures read optimistic"
            ),
        }
    else:
        info = {"kind": "none", "share": None, "note": "--holdout-share 0: privacy was not measured"}
    samples = {
        name: {
            "real_rows": real[name].num_rows,
            "synthetic_rows": synth[name].num_rows if name in synth else None,
            "train_rows": train[name].num_rows if train is not None else None,
            "holdout_rows": holdout[name].num_rows if holdout is not None else None,
            "read": how[name],
        }
        for name in real
    }
    return _report(
        real,
        synth,
        schema,
        out_dir,
        train=train,
        holdout=holdout,
        holdout_info=info,
        config=config or ReportConfig(),
        context=None,
        title=title,
        seed=seed,
        sources={"real": redact_url(real_url), "synthetic": redact_url(synth_url)},
        samples=samples,
        notes=notes,
    )


def _without_namespace(schema: DatabaseSchema) -> DatabaseSchema:
    """The schema with no database namespace, so it reads the synthetic database's default one (or the given)."""
    out = schema.model_copy(deep=True)
    out.db_schema = None
    for t in out.tables:
        t.db_schema = None
    return out


def _read_all(
    source: Any, schema: DatabaseSchema, max_rows: int, seed: int, notes: list[str], side: str
) -> tuple[dict[str, pa.Table], dict[str, str]]:
    tables: dict[str, pa.Table] = {}
    how: dict[str, str] = {}
    for t in schema.active_tables:
        rows = source.count_rows(t.name)
        if rows <= max_rows:
            batches = list(source.read_table(t.name, batch_rows=65_536))
            tables[t.name] = pa.Table.from_batches(batches, schema=source.arrow_schema(t.name))
            how[t.name] = "whole"
        else:
            tables[t.name] = source.sample_table(t.name, rows=max_rows, seed=seed)
            how[t.name] = "sampled"
            notes.append(
                f"{side} table {t.name!r}: {rows:,} rows, a random sample of {max_rows:,} read; some foreign keys "
                "into it lose their parent row (raise --max-rows to read it whole)"
            )
    return tables, how
