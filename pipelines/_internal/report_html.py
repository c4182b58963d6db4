"""``report.html``: one self-contained page (plotly.js, CSS and data inline) that opens offline in any browser.

The page is rendered from :mod:`pipelines._internal.report_template` with Jinja2 (autoescaped); each plot is a
plotly figure placed as a ``<div>`` plus the small script that draws it. plotly.js is inlined once, in the head.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipelines._internal import report_plots as plots
from pipelines._internal.report_template import PAGE
from schemas.model import DatabaseSchema
from synth_engine.metrics import FidelityResult, PrivacyResult, TablePrivacy, UtilityResult

log = logging.getLogger(__name__)

# What each headline score means, in the words a reader of the page needs.
HELP = {
    "overall": "mean of the four fidelity categories below (1 = indistinguishable)",
    "column_shapes": "per-column distributions (KS / total-variation complement)",
    "column_pair_trends": "correlations and contingency tables of column pairs within a table",
    "cardinality": "number of children per parent, per foreign key",
    "intertable_trends": "column pairs across a foreign key (parent-child) and two hops",
    "detection": "1 - 2|AUC - 0.5| of a classifier telling real from synthetic rows",
    "utility_ratio": "score of a model trained on synthetic data / trained on real data, tested on the holdout",
    "dcr_share": "worst table: share of synthetic rows whose nearest real row is a training row rather than a "
    "holdout row, every row indexed, chance rescaled to 0.5 (ideal 0.5, a copier 1)",
    "mia_auc": "worst table: AUC of an attacker calling a real row trained-on when a synthetic row lies close to "
    "it, training rows against holdout rows (ideal 0.5, 1 = every member recognised)",
    "exact_copies": "worst table: share of synthetic rows copying a training row, beyond the holdout's share",
    "column_copies": "worst key-like column: share of synthetic values that are real training values, beyond the "
    "holdout's share and chance",
}


@dataclass(frozen=True)
class PlotOptions:
    """Bounds on the plots.

    Attributes:
        max_columns: per table, at most this many column distributions (the worst-scored ones).
        sample_rows: rows sampled per table and side for distributions and correlations.
        max_corr_columns: per table, at most this many columns in a correlation matrix.
        seed: seeds every sample.
    """

    max_columns: int = 12
    sample_rows: int = 20_000
    max_corr_columns: int = 15
    seed: int = 0


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _figure_html(fig: Any) -> Any:
    import plotly.io as pio
    from markupsafe import Markup

    html = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,  # inlined once in the page head
        config={"displaylogo": False, "responsive": True},
        default_height=f"{fig.layout.height}px",
    )
    return Markup(html)


def render_html(
    *,
    title: str,
    generated_at: str,
    seconds: float,
    sources: list[tuple[str, str]],
    headline: Mapping[str, Mapping[str, Any]],
    holdout_note: str,
    notes: list[str],
    schema: DatabaseSchema,
    fidelity: FidelityResult,
    privacy: PrivacyResult | None,
    utility: UtilityResult | None,
    real: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    options: PlotOptions,
    version: int,
) -> str:
    """The whole page as one string. ``notes`` gains a line for every plot that was capped or left out.

    A plot that cannot be drawn (one degenerate table) is left out with a note; the rest of the page is drawn.
    """
    import jinja2
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    compared = [t for t in schema.active_tables if t.name in fidelity.tables]
    distributions: list[dict[str, Any]] = []
    correlations: list[dict[str, Any]] = []
    for t in compared:
        block = _guarded(
            notes, f"distribution plots of {t.name!r}", _distributions, t, real, synth, fidelity, options
        )
        if block is not None:
            distributions.append(block)
        block = _guarded(
            notes, f"correlation plot of {t.name!r}", _correlations, t, real, synth, fidelity, options
        )
        if block is not None:
            correlations.append(block)

    card_panels = []
    for child, fk in plots.foreign_keys_between(schema, {t.name for t in compared}):
        bars = _guarded(
            notes,
            f"children-per-parent plot of {child.name}{fk.label}",
            plots.children_per_parent,
            child,
            fk,
            real,
            synth,
        )
        if bars is not None:
            card_panels.append(bars)
    cardinality_html: Any = ""
    if card_panels:
        cardinality_html = (
            _guarded(
                notes,
                "children-per-parent plot",
                lambda: _figure_html(plots.bars_figure(card_panels, columns=2, y_title="share of parents")),
            )
            or ""
        )

    dcr_html: Any = ""
    privacy_missing = "Privacy was not measured: no holdout rows were given."
    if privacy is not None:
        # The metric's own distances (every training row indexed): no second nearest-neighbour search.
        hists = []
        for t in compared:
            if t.name in privacy.tables:
                h = _guarded(
                    notes, f"distance histogram of {t.name!r}", plots.dcr_histogram, privacy.tables[t.name]
                )
                if h is not None:
                    hists.append(h)
        if hists:
            dcr_html = (
                _guarded(notes, "distance histograms", lambda: _figure_html(plots.dcr_figure(hists))) or ""
            )
        if not dcr_html:
            privacy_missing = "No table has a learned numeric or categorical column to measure distances on."

    not_computed = [
        {"metric": f.metric, "scope": f.scope, "reason": f.reason}
        for result in (fidelity, privacy)
        if result is not None
        for f in result.not_computed
    ]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(PAGE)
    return page.render(
        version=version,
        title=title,
        generated_at=generated_at,
        seconds=f"{seconds:.1f}",
        sources=sources,
        plotly_js=Markup(get_plotlyjs()),
        headline=_headline_rows(headline),
        not_computed=not_computed,
        column_copies=_copy_rows(privacy, headline.get("column_copies", {}).get("threshold")),
        privacy_tables=_privacy_rows(privacy, headline),
        holdout_note=holdout_note,
        tables=_table_rows(fidelity, privacy),
        cardinalities=[
            {
                "child": c.child,
                "foreign_key": c.foreign_key,
                "score": _fmt(c.score),
                "real": _fmt(c.real_mean_children, 2),
                "synthetic": _fmt(c.synthetic_mean_children, 2),
            }
            for c in fidelity.cardinalities
        ],
        intertable=[
            {
                "path": " → ".join(p.path),
                "score": _fmt(p.score),
                "rows": f"{p.real_rows:,} / {p.synthetic_rows:,}",
            }
            for p in fidelity.intertable
        ],
        utility=None
        if utility is None
        else {
            "target": utility.target,
            "task": utility.task,
            "metric": utility.metric,
            "real": _fmt(utility.real_score),
            "synthetic": _fmt(utility.synthetic_score),
            "ratio": _fmt(utility.ratio),
        },
        distributions=distributions,
        correlations=correlations,
        cardinality_html=cardinality_html,
        dcr_html=dcr_html,
        privacy_missing=privacy_missing,
        notes=notes,
    )


def _guarded(notes: list[str], what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``, or None with a note when it raises: one plot that cannot be drawn costs only itself."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the page must be written whatever one plot does
        log.warning("report: %s could not be drawn: %s: %s", what, type(exc).__name__, exc)
        notes.append(f"html: {what} n/a ({type(exc).__name__}: {exc})")
        return None


def _distributions(
    t: Any,
    real: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    fidelity: FidelityResult,
    options: PlotOptions,
) -> dict[str, Any] | None:
    panels, total = plots.distribution_panels(
        t,
        real[t.name],
        synth[t.name],
        fidelity,
        max_columns=options.max_columns,
        sample_rows=options.sample_rows,
        seed=options.seed,
    )
    if not panels:
        return None
    note = f"the {len(panels)} lowest-scoring of {total} value columns" if total > len(panels) else ""
    return {"table": t.name, "note": note, "html": _figure_html(plots.bars_figure(panels))}


def _correlations(
    t: Any,
    real: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    fidelity: FidelityResult,
    options: PlotOptions,
) -> dict[str, Any] | None:
    corr = plots.correlations(
        t,
        real[t.name],
        synth[t.name],
        max_columns=options.max_corr_columns,
        sample_rows=options.sample_rows,
        seed=options.seed,
    )
    fig = plots.correlation_figure(corr, plots.pair_score_matrix(t.name, fidelity))
    return None if fig is None else {"table": t.name, "html": _figure_html(fig)}


def _copy_rows(privacy: PrivacyResult | None, threshold: float | None) -> list[dict[str, str]]:
    if privacy is None:
        return []
    rows = []
    for p in privacy.tables.values():
        for c in p.column_copies:
            if c.by_construction:
                status, css = "by construction", "na"
            elif threshold is None:
                status, css = "–", "na"
            else:
                status, css = ("pass", "pass") if c.excess <= threshold else ("warn", "warn")
            rows.append(
                {
                    "column": f"{c.table}.{c.column}",
                    "role": c.role,
                    "ratio": _fmt(c.distinct_ratio, 2),
                    "share": f"{_fmt(c.copy_share)} of {c.synthetic_values:,}",
                    "holdout": _fmt(c.holdout_share),
                    "chance": _fmt(c.chance_share, 4),
                    "excess": _fmt(c.excess),
                    "status": status,
                    "css": css,
                }
            )
    return rows


def fallback_html(
    title: str, generated_at: str, error: str, headline: Mapping[str, Mapping[str, Any]]
) -> str:
    """A plain page for when the full page cannot be rendered: the headline and why, and nothing that can fail."""
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(str(name))}</td><td>{escape(_fmt(item.get('score')))}</td>"
        f"<td>{escape(str(item.get('status')))}</td><td>{escape(str(item.get('reason') or ''))}</td></tr>"
        for name, item in headline.items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(generated_at)}</p>"
        f"<p><strong>The full report page could not be rendered:</strong> {escape(error)}. "
        "report.json holds every score.</p>"
        f"<table><tr><th>score</th><th>value</th><th>status</th><th>n/a reason</th></tr>{rows}</table>"
        "</body></html>"
    )


def _interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _indexed(p: TablePrivacy) -> str:
    if not p.dcr_train_rows:
        return "–"
    capped = f" ({p.dcr_train_coverage:.0%} of training)" if (p.dcr_train_coverage or 1.0) < 1.0 else ""
    return f"{p.dcr_train_rows:,} / {p.dcr_holdout_rows:,}{capped}"


def _privacy_rows(
    privacy: PrivacyResult | None, headline: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per table: each privacy measure with its interval, its threshold and pass/warn."""
    if privacy is None:
        return []

    def judged(name: str, value: float | None) -> dict[str, str]:
        limit = headline.get(name, {}).get("threshold")
        if value is None or limit is None:
            return {"value": _fmt(value), "css": "na", "status": "n/a"}
        ok = value <= limit
        return {"value": _fmt(value), "css": "pass" if ok else "warn", "status": "pass" if ok else "warn"}

    rows = []
    for p in privacy.tables.values():
        excess = (
            max(0.0, p.exact_copy_share - p.holdout_copy_share)
            if p.exact_copy_share is not None and p.holdout_copy_share is not None
            else None
        )
        rows.append(
            {
                "table": p.table,
                "dcr": judged("dcr_share", p.dcr_closer_to_train_share),
                "dcr_ci": _interval(p.dcr_share_ci),
                "dcr_raw": f"{_fmt(p.dcr_raw_share)} / {_fmt(p.dcr_chance_share)}",
                "indexed": _indexed(p),
                "mia": judged("mia_auc", p.mia_auc),
                "mia_ci": _interval(p.mia_auc_ci),
                "attacked": f"{p.mia_members:,} / {p.mia_non_members:,}" if p.mia_candidates else "–",
                "copies": judged("exact_copies", excess),
                "copies_detail": f"{_fmt(p.exact_copy_share)} vs {_fmt(p.holdout_copy_share)}",
            }
        )
    return rows


def _headline_rows(headline: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for name, item in headline.items():
        lower = item["direction"] == "lower_is_better"
        status = item["status"]
        rows.append(
            {
                "name": name,
                "score": _fmt(item["score"]),
                "ci": _interval(item.get("ci")),
                "bound": ("≤ " if lower else "≥ ") + _fmt(item["threshold"], 2),
                "status": status,
                "css": {"pass": "pass", "warn": "warn"}.get(status, "na"),
                "help": HELP.get(name, "")
                + (f" — {item['table']}" if item.get("table") else "")
                + (f".{item['column']}" if item.get("column") else ""),
                "reason": item.get("reason") or "",
                "warn_means": item.get("warn_means") or "",
            }
        )
    return rows


def _table_rows(fidelity: FidelityResult, privacy: PrivacyResult | None) -> list[dict[str, str]]:
    rows = []
    for name, t in fidelity.tables.items():
        p = privacy.tables.get(name) if privacy is not None else None
        rows.append(
            {
                "name": name,
                "real_rows": f"{t.real_rows:,}",
                "synthetic_rows": f"{t.synthetic_rows:,}",
                "column_shapes": _fmt(t.column_shapes),
                "column_pair_trends": _fmt(t.column_pair_trends),
                "detection": _fmt(t.detection),
                "exact_copies": _fmt(p.exact_copy_share if p else None),
                "column_copies": _fmt(p.max_column_copy_excess if p else None),
                "holdout_copies": _fmt(p.holdout_copy_share if p else None),
                "dcr_share": _fmt(p.dcr_closer_to_train_share if p else None),
                "mia_auc": _fmt(p.mia_auc if p else None),
            }
        )
    return rows
