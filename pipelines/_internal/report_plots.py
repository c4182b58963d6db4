"""The report's plots: what to draw (binned, bounded data computed with numpy) and how (plotly figures).

Every figure carries pre-binned bars or small matrices, never raw rows, so the HTML stays small whatever the table
sizes; the one copy of plotly.js is what weighs. Each function returns a figure, or None with nothing to draw.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from schemas.kinds import Kind
from schemas.model import DatabaseSchema, ForeignKey, Table

# The metrics' own encoders: the plots must read values, keys and distances exactly as the scores did.
from synth_engine.metrics._encode import (
    joint_codes,
    key_codes,
    parent_rows,
    sample_indices,
    table_rng,
    to_float,
    value_columns,
)
from synth_engine.metrics.fidelity import FidelityResult
from synth_engine.metrics.privacy import TablePrivacy

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

REAL_COLOR = "#1f77b4"
SYNTH_COLOR = "#ff7f0e"
HOLDOUT_COLOR = "#2ca02c"

_TOP_CATEGORIES = 15
_HIST_BINS = 30
_LABEL_CHARS = 18


@dataclass(frozen=True)
class Bars:
    """One panel of real-vs-synthetic bars: shares of rows per bin or category."""

    title: str
    x: list[str] | list[float]
    real: list[float]
    synthetic: list[float]
    x_is_date: bool = False


def _label(value: object) -> str:
    text = str(value)
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _shares(counts: npt.NDArray[np.int64] | FloatArray, total: int) -> list[float]:
    return [float(c) / total if total else 0.0 for c in counts]


def _continuous_bars(title: str, kind: Kind, real: FloatArray, synth: FloatArray) -> Bars:
    r, s = real[~np.isnan(real)], synth[~np.isnan(synth)]
    ref = r if r.size else s
    if not ref.size:
        return Bars(title, [], [], [])
    integral = bool(np.all(ref == np.round(ref)))
    lo, hi = (float(v) for v in np.percentile(ref, [0.5, 99.5]))
    if integral and kind is Kind.NUMERIC and hi - lo <= 40:
        # Few integer values (seats, engines, a month): one bar per value reads better than bins.
        values = np.arange(math.floor(lo), math.floor(hi) + 1, dtype=np.float64)
        rc = np.bincount(
            np.clip(r, values[0], values[-1]).astype(np.int64) - int(values[0]), minlength=values.size
        )
        sc = np.bincount(
            np.clip(s, values[0], values[-1]).astype(np.int64) - int(values[0]), minlength=values.size
        )
        return Bars(title, [float(v) for v in values], _shares(rc, r.size), _shares(sc, s.size))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, _HIST_BINS + 1)
    # Values beyond the 0.5-99.5 percentiles fall into the end bins, so one outlier cannot squash the plot.
    rc = np.histogram(np.clip(r, lo, hi), bins=edges)[0]
    sc = np.histogram(np.clip(s, lo, hi), bins=edges)[0]
    centers = (edges[:-1] + edges[1:]) / 2
    x: list[str] | list[float]
    if kind in (Kind.DATE, Kind.DATETIME):
        x = [str(np.datetime64(int(c), "us")) for c in centers]
        return Bars(title, x, _shares(rc, r.size), _shares(sc, s.size), x_is_date=True)
    if kind is Kind.TIME:
        centers = centers / 3.6e9  # microseconds -> hours of the day
    return Bars(title, [float(c) for c in centers], _shares(rc, r.size), _shares(sc, s.size))


def _categorical_bars(title: str, real: pa.ChunkedArray, synth: pa.ChunkedArray) -> Bars:
    (rc, sc), n = joint_codes([real, synth])
    real_counts = np.bincount(rc[rc >= 0], minlength=n)
    synth_counts = np.bincount(sc[sc >= 0], minlength=n)
    # Most frequent real categories first; synthetic-only categories after them, by their own frequency.
    order = np.lexsort((-synth_counts, -real_counts))
    top = order[:_TOP_CATEGORIES]
    labels = _code_labels([rc, sc], [real, synth], n)
    x = [_label(labels[i]) for i in top]
    rv, sv = [int(real_counts[i]) for i in top], [int(synth_counts[i]) for i in top]
    rest_r, rest_s = int(real_counts.sum()) - sum(rv), int(synth_counts.sum()) - sum(sv)
    if rest_r or rest_s:
        x.append("(other)")
        rv.append(rest_r)
        sv.append(rest_s)
    null_r, null_s = int((rc < 0).sum()), int((sc < 0).sum())
    if null_r or null_s:
        x.append("(null)")
        rv.append(null_r)
        sv.append(null_s)
    return Bars(title, x, _shares(np.asarray(rv), rc.size), _shares(np.asarray(sv), sc.size))


def _code_labels(
    codes: Sequence[npt.NDArray[np.int64]], arrays: Sequence[pa.ChunkedArray], n: int
) -> list[object]:
    """The value behind each joint code, read from the first row that carries it."""
    labels: list[object] = ["?"] * n
    for c, arr in zip(codes, arrays, strict=True):
        present = np.flatnonzero(c >= 0)
        if not present.size:
            continue
        uniq, first = np.unique(c[present], return_index=True)
        values = arr.take(pa.array(present[first])).to_pylist()
        for code, value in zip(uniq.tolist(), values, strict=True):
            labels[code] = value
    return labels


def _score_or(score: float | None, default: float) -> float:
    return default if score is None else score


def _sample(t: pa.Table, rows: int, seed: int, *parts: str) -> pa.Table:
    idx = sample_indices(t.num_rows, rows, table_rng(seed, *parts))
    return t if len(idx) == t.num_rows else t.take(idx)


def distribution_panels(
    table: Table,
    real: pa.Table,
    synth: pa.Table,
    fidelity: FidelityResult,
    *,
    max_columns: int,
    sample_rows: int,
    seed: int,
) -> tuple[list[Bars], int]:
    """Real-vs-synthetic distributions of a table's value columns: the worst-scored ``max_columns`` of them.

    Returns:
        (the panels in schema order, the number of value columns there were to choose from).
    """
    shapes = {c.column: c for c in fidelity.columns if c.table == table.name}
    cols = [c for c in value_columns(table)[0] if c.name in shapes]
    # Worst first: when only some columns fit, show those that need a look.
    ranked = sorted(cols, key=lambda c: _score_or(shapes[c.name].score, 2.0))
    keep = {c.name for c in ranked[:max_columns]}
    r = _sample(real, sample_rows, seed, "report-plot", table.name)
    s = _sample(synth, sample_rows, seed, "report-plot", table.name)
    panels = []
    for c in cols:
        if c.name not in keep:
            continue
        shape = shapes[c.name]
        score = "n/a" if shape.score is None else f"{shape.score:.2f}"
        metric = "KS" if shape.metric == "KSComplement" else "TV"
        title = f"{_label(c.name)} ({metric} {score})"
        if c.continuous:
            where = f"table {table.name!r}, column {c.name!r}"
            panels.append(
                _continuous_bars(
                    title,
                    c.kind,
                    to_float(r.column(c.name), where=where),
                    to_float(s.column(c.name), where=where),
                )
            )
        else:
            panels.append(_categorical_bars(title, r.column(c.name), s.column(c.name)))
    return panels, len(cols)


def correlations(
    table: Table, real: pa.Table, synth: pa.Table, *, max_columns: int, sample_rows: int, seed: int
) -> tuple[list[str], FloatArray, FloatArray] | None:
    """Pearson correlation matrices (real, synthetic) over a table's numeric and temporal columns.

    Nulls are left out pair by pair. Returns None when fewer than two such columns exist.
    """
    names = [c.name for c in value_columns(table)[0] if c.continuous][:max_columns]
    if len(names) < 2:
        return None
    mats = []
    for side, data in (("real", real), ("synthetic", synth)):
        t = _sample(data, sample_rows, seed, "report-corr", table.name)
        x = np.stack(
            [to_float(t.column(n), where=f"table {table.name!r}, column {n!r}") for n in names], axis=1
        )
        mats.append(_pairwise_pearson(x))
        log.debug("report: %s correlations of %s over %d rows", side, table.name, t.num_rows)
    return names, mats[0], mats[1]


def _pairwise_pearson(x: FloatArray) -> FloatArray:
    k = x.shape[1]
    out = np.eye(k)
    present = ~np.isnan(x)
    for i in range(k):
        for j in range(i + 1, k):
            m = present[:, i] & present[:, j]
            a, b = x[m, i], x[m, j]
            if a.size < 3 or a.std() == 0 or b.std() == 0:
                out[i, j] = out[j, i] = np.nan
            else:
                out[i, j] = out[j, i] = float(np.corrcoef(a, b)[0, 1])
    return out


def pair_score_matrix(table: str, fidelity: FidelityResult) -> tuple[list[str], FloatArray] | None:
    """The fidelity pair-trend scores of one table as a symmetric matrix (1 on the diagonal)."""
    pairs = [p for p in fidelity.pairs if p.scope == table]
    if table not in fidelity.tables:
        return None
    # In the table's column order (as the correlation matrices), not the alphabetical order of pair_columns.
    summary = fidelity.tables[table]
    names = [c for c in summary.columns if c in set(summary.pair_columns)]
    if len(names) < 2 or not pairs:
        return None
    pos = {n: i for i, n in enumerate(names)}
    out = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(out, 1.0)
    for p in pairs:
        if p.column_a in pos and p.column_b in pos and p.score is not None:
            out[pos[p.column_a], pos[p.column_b]] = out[pos[p.column_b], pos[p.column_a]] = p.score
    return list(names), out


def children_per_parent(
    child: Table, fk: ForeignKey, real: Mapping[str, pa.Table], synth: Mapping[str, pa.Table]
) -> Bars | None:
    """Shares of parents by their number of children along one foreign key (zero included), whole tables."""
    counts = []
    for side in (real, synth):
        if child.name not in side or fk.ref_table not in side:
            return None
        parent, kids = side[fk.ref_table], side[child.name]
        pkeys, ckeys = key_codes(parent, fk.ref_columns, kids, fk.columns)
        rows = parent_rows(pkeys, ckeys)
        counts.append(np.bincount(rows[rows >= 0], minlength=parent.num_rows).astype(np.float64))
    rc, sc = counts
    title = f"{child.name}{fk.label}"
    if not rc.size and not sc.size:
        return None
    top = float(np.percentile(rc if rc.size else sc, 99))
    if top <= 40:
        cap = int(top) + 1
        x = [str(i) for i in range(cap)] + [f"≥{cap}"]
        rb = np.bincount(np.minimum(rc, cap).astype(np.int64), minlength=cap + 1)
        sb = np.bincount(np.minimum(sc, cap).astype(np.int64), minlength=cap + 1)
        return Bars(title, x, _shares(rb, rc.size), _shares(sb, sc.size))
    edges = np.linspace(0.0, top, 21)
    rb = np.histogram(np.minimum(rc, top), bins=edges)[0]
    sb = np.histogram(np.minimum(sc, top), bins=edges)[0]
    x = [f"{edges[i]:.0f}-{edges[i + 1]:.0f}" for i in range(len(edges) - 1)]
    x[-1] = f"≥{edges[-2]:.0f}"
    return Bars(title, x, _shares(rb, rc.size), _shares(sb, sc.size))


@dataclass(frozen=True)
class DcrHist:
    """Distances to the closest training row: from synthetic rows and from holdout rows (the baseline)."""

    table: str
    edges: list[float]
    synthetic: list[float]
    holdout: list[float]
    rows: int


def dcr_histogram(privacy: TablePrivacy) -> DcrHist | None:
    """Histograms of synthetic -> training and holdout -> training distances, as the privacy metric measured them.

    The metric's nearest-neighbour searches (every training row indexed) are the costly part, so the plot reads
    their result rather than searching again.
    """
    h = privacy.dcr_histogram
    if not h or len(h["edges"]) < 2:
        return None
    return DcrHist(
        privacy.table, list(h["edges"]), list(h["synthetic"]), list(h["holdout"]), privacy.dcr_train_rows
    )


# --- figures -------------------------------------------------------------------------------------------------------


def bars_figure(panels: Sequence[Bars], *, columns: int = 3, y_title: str = "share of rows") -> Figure:
    """A grid of grouped bar charts, real beside synthetic, one legend for all."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / cols)
    # Rows of fixed pixel height with a fixed pixel gap, room for slanted category labels and the next title.
    height = 200 * rows + 130 * (rows - 1) + 90
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[p.title for p in panels],
        horizontal_spacing=0.06,
        vertical_spacing=130 / height if rows > 1 else 0.0,
    )
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        for name, values, color in (("real", p.real, REAL_COLOR), ("synthetic", p.synthetic, SYNTH_COLOR)):
            fig.add_trace(
                go.Bar(
                    x=p.x,
                    y=values,
                    name=name,
                    marker_color=color,
                    legendgroup=name,
                    showlegend=i == 0,
                    hovertemplate="%{x}<br>%{y:.1%}<extra>" + name + "</extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
        if p.x_is_date:
            fig.update_xaxes(type="date", row=r + 1, col=c + 1)
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(tickangle=-35, tickfont={"size": 10})
    fig.update_layout(
        barmode="group",
        bargap=0.08,
        height=height,
        margin={"l": 40, "r": 130, "t": 40, "b": 80},
        legend={"x": 1.01, "xanchor": "left", "y": 1.0, "yanchor": "top"},
        template="plotly_white",
        font={"size": 11},
    )
    fig.update_annotations(font_size=12)
    fig.update_layout(yaxis_title=y_title)
    return fig


def correlation_figure(
    corr: tuple[list[str], FloatArray, FloatArray] | None, pairs: tuple[list[str], FloatArray] | None
) -> Figure | None:
    """Heatmaps side by side: real and synthetic correlations, then the pair-trend scores."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if corr is None and pairs is None:
        return None
    titles = (["real: Pearson r", "synthetic: Pearson r"] if corr is not None else []) + (
        ["pair trend score (1 = same)"] if pairs is not None else []
    )
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.12)
    col = 1
    size = 0
    if corr is not None:
        names, real, synth = corr
        labels = [_label(n) for n in names]
        size = max(size, len(names))
        for mat in (real, synth):
            fig.add_trace(
                go.Heatmap(
                    z=np.round(mat, 3).tolist(),
                    x=labels,
                    y=labels,
                    coloraxis="coloraxis",
                    hovertemplate="%{y} × %{x}: %{z:.2f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            fig.update_yaxes(autorange="reversed", row=1, col=col)
            col += 1
    if pairs is not None:
        names, mat = pairs
        labels = [_label(n) for n in names]
        size = max(size, len(names))
        fig.add_trace(
            go.Heatmap(
                z=np.round(mat, 3).tolist(),
                x=labels,
                y=labels,
                coloraxis="coloraxis2",
                hovertemplate="%{y} × %{x}: %{z:.2f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_layout(
        coloraxis={
            "colorscale": "RdBu",
            "cmin": -1,
            "cmax": 1,
            "reversescale": True,
            "colorbar": {"title": "r", "x": 1.0, "len": 0.45, "y": 0.75},
        },
        coloraxis2={
            "colorscale": "Viridis",
            "cmin": 0,
            "cmax": 1,
            "colorbar": {"title": "score", "x": 1.0, "len": 0.45, "y": 0.22},
        },
        height=max(360, 22 * size + 200),
        margin={"l": 40, "r": 40, "t": 50, "b": 40},
        template="plotly_white",
        font={"size": 10},
    )
    return fig


def dcr_figure(hists: Sequence[DcrHist], *, columns: int = 2) -> Figure:
    """Overlaid histograms per table: distance from synthetic rows and from holdout rows to the training rows."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = max(1, min(columns, len(hists)))
    rows = math.ceil(len(hists) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{h.table} ({h.rows:,} training rows)" for h in hists],
        vertical_spacing=min(0.15, 0.5 / max(rows, 1)),
    )
    for i, h in enumerate(hists):
        r, c = divmod(i, cols)
        centers = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
        width = h.edges[1] - h.edges[0] if len(h.edges) > 1 else 1.0
        for name, values, color in (
            ("synthetic → training", h.synthetic, SYNTH_COLOR),
            ("holdout → training", h.holdout, HOLDOUT_COLOR),
        ):
            fig.add_trace(
                go.Bar(
                    x=centers,
                    y=values,
                    width=width,
                    name=name,
                    marker_color=color,
                    opacity=0.6,
                    legendgroup=name,
                    showlegend=i == 0,
                    hovertemplate="distance %{x:.3g}<br>%{y:.1%}<extra>" + name + "</extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(title_text="distance to closest training row")
    fig.update_layout(
        barmode="overlay",
        height=max(320, 280 * rows + 60),
        margin={"l": 40, "r": 170, "t": 40, "b": 40},
        legend={"x": 1.01, "xanchor": "left", "y": 1.0, "yanchor": "top"},
        template="plotly_white",
        font={"size": 11},
    )
    return fig


def foreign_keys_between(schema: DatabaseSchema, names: set[str]) -> list[tuple[Table, ForeignKey]]:
    """Every active foreign key whose child and parent are both among ``names``."""
    return [(t, fk) for t, fk in schema.iter_foreign_keys() if t.name in names and fk.ref_table in names]
