"""Privacy: does the synthetic data give away the real rows it was trained on?

Each measure is read against a baseline of real rows the generator never saw (the *holdout*): synthetic rows
should be no closer to the training rows than fresh real rows are. Each must flag a generator that returns its
training rows (``tests/unit/synth_engine/test_privacy.py`` pins it: DCR share >= 0.95, attack AUC >= 0.9).

- **exact copies**: the share of synthetic rows equal to some training row on every learned, non-key column,
  beside the same share for holdout rows (the share a perfect, non-copying generator would still show).
- **distance to closest record (DCR)**: rows encoded as numbers (robust-scaled numbers and dates, one-hot
  categories, :func:`distance_features`). Two nearest-neighbour indexes, one over **all** training rows and one
  over **all** holdout rows (each a uniform sample of ``index_rows`` when larger), and for each sampled synthetic
  row the question: is its nearest real row a training row? A copy's nearest real row is its source, wherever it
  sits among the training rows, so a copier is caught whatever the table sizes (comparing with a training *sample*
  as large as the holdout missed every copy of a row outside the sample: a copier scored 0.52-0.56).
  Sizes differ, so chance is not 0.5: a synthetic row that does not depend on the training rows is a fresh draw
  beside the ``N`` training and ``m`` holdout rows, which are exchangeable (the holdout is a random split), so its
  nearest real row is a training row with probability exactly ``p0 = N / (N + m)``, whatever the generator's
  fidelity (a tie counts the training rows' share of the equal rows, whose expectation is ``p0``). The measured
  share ``r`` is put on the usual scale, where 0.5 is "no closer than fresh data" and 1 is "every row is a copy",
  by one affine map::

      dcr_share = 0.5 + 0.5 * (r - p0) / (1 - p0)        (clipped to [0, 1])

  so a generator copying a share ``f`` of its rows (the rest fresh) scores ``0.5 + f / 2`` at any ``N / m``; with
  equal sizes it is the classic share (Platzer & Reutterer 2021; synthcity's and mostlyai-qa's DCR share). The
  map is affine on both sides of ``p0`` because ``E[r] = p0`` for a fresh generator: the share is then unbiased
  (0.5 in expectation). A map with a kink at ``p0`` (``0.5 r / p0`` below it, as before) is not: its steep side
  (slope ``0.5 / (1 - p0)``, 5 at 1,320 training and 138 holdout rows, against ``0.5 / p0`` = 0.55 below it)
  turns the noise of ``r`` into an upward bias that grows as the holdout shrinks (a fresh generator beside 300
  training and 30 holdout rows scored 0.54 on average instead of 0.5).
  Equal-size training and holdout reference sets (a training sample as large as the holdout) would need no
  map, but miss copies of the training rows left out of the sample (a copier scored 0.52-0.56): every training
  row is indexed instead, and the sizes are corrected by the map.
  Its 95% interval is the normal one of the mean over the synthetic rows, cluster-robust (synthetic rows with the
  same nearest real row are scored by that one row's side of the split, so they count once: 1,458 synthetic
  airports nearest to 548 real ones, 180 of them in effect, widened the interval from +-0.04 to +-0.19), mapped
  the same way. Percentiles (``p1``, ``p5``, ``p50``) of synthetic -> training distances sit beside those of
  holdout -> training distances.

  **Not estimable**: under the null, ``r`` has a standard deviation of about ``sqrt(p0 (1 - p0) / n)`` over the
  ``n = min(synthetic rows scored, N + m)`` distinct nearest real rows, so the share's is about
  ``0.5 sqrt(N / (m n))``, near ``0.5 / sqrt(m)``: with fewer than about 25 holdout rows (a lookup table of 16 rows
  holds out 2) it exceeds :data:`MAX_NULL_SE` and the share cannot tell a copier from chance. Such a table's share
  is None, with the reason in ``dcr_not_estimable`` (and ``not_computed``), not a number that fails a threshold.
  The attack's AUC likewise, when its null standard deviation ``sqrt((a + b + 1) / (12 a b))`` over ``a``
  members and ``b`` non-members exceeds the same bound (``mia_not_estimable``).
- **database-level DCR share**: the tables' shares weighted by their training rows (``dcr_share`` of the
  result, estimable tables only), beside the worst table (``max_dcr_closer_to_train_share``, the report's
  headline).
- **membership inference attack**: the distance attacker of the literature (Chen et al. 2020, "GAN-Leaks",
  full black-box; Hilprecht et al. 2019): holding a real row, it scores it by minus its distance to the closest
  synthetic row (index over **all** synthetic rows, or ``index_rows`` of them) and calls close rows members. It is
  run on training rows (members) and holdout rows (non-members), uniform samples of ``attack_rows`` each; the ROC
  AUC is a rank statistic, unbiased whatever the two sample sizes, and its 95% interval is DeLong's (the fast
  midrank algorithm of Sun & Xu 2014). Ideal 0.5; 1 = every member is recognised. Rows of one parent are not
  independent, so the interval is somewhat narrow on child tables.

- **column copies**: whole-row copies miss a leak through one column: a unique licence plate learned as a
  category gives back real plates in rows that are otherwise new (400 of 400 plates real, exact copies 0). So for
  every *key-like* column (mostly distinct values in the training rows: identifiers, codes, PII, free text, keys)
  the share of synthetic values that are real training values is measured by a set lookup, beside two baselines:
  the same share for holdout values, and the share that random values of the same format (letters, digits and
  fixed characters, position by position) would hit by chance. What exceeds both is the column's leak.
  Integer keys that the key mechanism generates (``1..n``) equal real keys by construction and say nothing of
  any real row: they are scored, marked ``by_construction`` and left out of the warning.

Cost: the nearest-neighbour searches are exact (:func:`nearest_distances`) and bounded by ``index_rows`` per index
and ``sample_rows`` / ``attack_rows`` queries per table, so memory and time stop growing with the tables beyond
that (a copy of a training row left out of a capped index then looks fresh: ``dcr_train_coverage`` says how many
were kept).

Row-level measures leave keys and PII out: keys are generated and PII is faked. Every measure is total: one that
cannot be computed on a table or column is listed in ``not_computed`` with its reason and never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from schemas.kinds import Kind
from schemas.model import DatabaseSchema, Table
from synth_engine.metrics._encode import (
    Guard,
    MetricsError,
    NeighbourIndex,
    NotComputed,
    check_columns,
    distance_features,
    json_safe,
    row_codes,
    sample_indices,
    table_rng,
    value_columns,
)

log = logging.getLogger(__name__)

__all__ = [
    "ColumnCopies",
    "PrivacyResult",
    "TablePrivacy",
    "auc_with_ci",
    "column_copies",
    "dcr_not_estimable",
    "dcr_share",
    "evaluate_privacy",
    "mia_not_estimable",
]

# Distances are rounded to this many decimals so that equal rows are exactly 0 apart (the BLAS distance formula
# leaves ~1e-8 noise) and ties between "closest to train" and "closest to holdout" are seen as ties.
_DISTANCE_DECIMALS = 6

MAX_NULL_SE = 0.1
"""A DCR share (or attack AUC) whose standard deviation under the null (a generator that copies nothing) exceeds
this is not estimable: the table is too small to tell a copier from chance (see the module docstring)."""

# A column is key-like when at least this share of its non-null training values is distinct, over at least
# _KEY_LIKE_MIN_VALUES values: identifiers and codes, not categories (which repeat by nature).
_KEY_LIKE_DISTINCT_RATIO = 0.5
_KEY_LIKE_MIN_VALUES = 10
# Numbers and times are measurements: a copula draws them on the real grid, so equal values are expected and
# identify nobody. They are key-like only as keys or when their kind says identifier, category or text.
_MEASUREMENT_KINDS = frozenset({Kind.NUMERIC, Kind.DATETIME, Kind.DATE, Kind.TIME, Kind.BOOLEAN})


@dataclass(frozen=True)
class ColumnCopies:
    """How many synthetic values of one key-like column are real training values.

    Attributes:
        table: the table.
        column: the column.
        role: ``generated key`` (primary, foreign or unique key, or kind ``id``), ``faked PII``, ``learned`` or
            ``not learned`` (free text and other kinds that are kept out of the models).
        by_construction: an integer key generated by the key mechanism: its values (``1..n``) equal real keys
            by construction and identify no real row, so it is left out of the warning.
        distinct_ratio: distinct / non-null training values (what makes the column key-like).
        synthetic_values: non-null synthetic values looked up (a bounded sample).
        copy_share: share of them that are training values.
        holdout_share: the same share for holdout values (None without holdout rows): real fresh data's overlap.
        chance_share: the share random values of the same formats would hit by chance (None when not text-like).
        excess: ``copy_share`` beyond both baselines, floored at 0: the column's leak.
    """

    table: str
    column: str
    role: str
    by_construction: bool
    distinct_ratio: float
    synthetic_values: int
    copy_share: float
    holdout_share: float | None
    chance_share: float | None
    excess: float


@dataclass(frozen=True)
class TablePrivacy:
    """One table's privacy measures.

    Attributes:
        table: the table.
        copy_columns: the columns compared for exact copies (learned, non-key, non-PII).
        distance_columns: the columns encoded for distances (numbers, dates, categories, booleans).
        train_rows: rows in the training table (exact copies are looked up among all of them).
        holdout_rows: rows in the holdout table.
        synthetic_rows: rows in the synthetic table.
        exact_copy_share: share of sampled synthetic rows equal to a training row.
        holdout_copy_share: share of sampled holdout rows equal to a training row (the baseline).
        copy_synthetic_rows: synthetic rows sampled for exact copies.
        copy_holdout_rows: holdout rows sampled for exact copies.
        dcr_train_rows: training rows in the nearest-neighbour index (all, or a uniform sample of ``index_rows``).
        dcr_holdout_rows: holdout rows in the other index.
        dcr_synthetic_rows: synthetic rows whose nearest training and holdout rows were found (the copy sample).
        dcr_train_coverage: ``dcr_train_rows / train_rows``: 1 unless the index was capped; below 1, a copy of a
            training row outside the index looks fresh, and a copier scores about ``0.5 + coverage / 2``.
        dcr_chance_share: ``p0``, the share of synthetic rows whose nearest real row is a training row that chance
            alone gives (``dcr_train_rows / (dcr_train_rows + dcr_holdout_rows)``).
        dcr_raw_share: the measured share, ties counted ``p0``.
        dcr_closer_to_train_share: the DCR share: ``dcr_raw_share`` rescaled so that chance is 0.5 and "every row
            is a copy" is 1 (ideal 0.5; see the module docstring).
        dcr_share_ci: its 95% confidence interval ``[low, high]``.
        dcr_not_estimable: why the DCR share is None on a table too small to estimate it (see the module
            docstring); None when it was estimated.
        dcr_synthetic: percentiles (``p1``, ``p5``, ``p50``) of synthetic -> training distances.
        dcr_holdout: the same percentiles of holdout -> training distances (the baseline).
        dcr_histogram: ``{"edges": [...], "synthetic": [...], "holdout": [...]}``: the two distance distributions
            as shares of rows in 30 bins up to their 99th percentile (the report's plot).
        mia_auc: ROC AUC of the distance-based membership inference attack (ideal 0.5).
        mia_auc_ci: its 95% DeLong confidence interval ``[low, high]``.
        mia_not_estimable: why the AUC is None on a table with too few members or non-members to attack.
        mia_members: training rows attacked (members).
        mia_non_members: holdout rows attacked (non-members).
        mia_synthetic_rows: synthetic rows the attacker searches (all, or a uniform sample of ``index_rows``).
        mia_candidates: ``mia_members + mia_non_members``.
        column_copies: per key-like column, the share of synthetic values that are real (see
            :class:`ColumnCopies`).
        max_column_copy_excess: the largest ``excess`` over the columns not ``by_construction``; None when the
            table has no such column.
    """

    table: str
    copy_columns: list[str]
    distance_columns: list[str]
    train_rows: int
    holdout_rows: int
    synthetic_rows: int
    exact_copy_share: float | None
    holdout_copy_share: float | None
    copy_synthetic_rows: int
    copy_holdout_rows: int
    dcr_train_rows: int = 0
    dcr_holdout_rows: int = 0
    dcr_synthetic_rows: int = 0
    dcr_train_coverage: float | None = None
    dcr_chance_share: float | None = None
    dcr_raw_share: float | None = None
    dcr_closer_to_train_share: float | None = None
    dcr_share_ci: list[float] | None = None
    dcr_not_estimable: str | None = None
    dcr_synthetic: dict[str, float] = field(default_factory=dict)
    dcr_holdout: dict[str, float] = field(default_factory=dict)
    dcr_histogram: dict[str, list[float]] | None = None
    mia_auc: float | None = None
    mia_auc_ci: list[float] | None = None
    mia_not_estimable: str | None = None
    mia_members: int = 0
    mia_non_members: int = 0
    mia_synthetic_rows: int = 0
    mia_candidates: int = 0
    column_copies: list[ColumnCopies] = field(default_factory=list)
    max_column_copy_excess: float | None = None


@dataclass(frozen=True)
class PrivacyResult:
    """Everything :func:`evaluate_privacy` measured; ``to_dict()`` gives plain JSON-able data.

    Attributes:
        tables: per-table measures.
        max_exact_copy_share: the largest synthetic exact-copy share over the tables (the worst table).
        max_holdout_copy_share: the largest holdout exact-copy share (its baseline).
        max_dcr_closer_to_train_share: the largest DCR share over the tables (the estimable ones).
        dcr_share: the database's DCR share: the estimable tables' shares weighted by their training rows.
        dcr_share_ci: its 95% interval (the tables' intervals combined as independent, with the same weights).
        max_mia_auc: the largest membership inference AUC over the tables.
        max_column_copy_excess: the largest per-column copy excess over every table (generated integer keys
            aside): the worst key-like column.
        worst_copy_column: that column, as ``table.column``.
        sample_rows: per table, the synthetic (and holdout) rows sampled for exact copies and distances.
        attack_rows: per table, the members and the non-members attacked (at most this many each).
        index_rows: per table, at most this many rows in each nearest-neighbour index (uniform samples beyond).
        seed: the seed of every sample.
        seconds: wall time.
        notes: what was skipped, one line each.
        not_computed: every measure that could not be computed, with its scope and reason.
    """

    tables: dict[str, TablePrivacy]
    max_exact_copy_share: float | None
    max_holdout_copy_share: float | None
    max_dcr_closer_to_train_share: float | None
    max_mia_auc: float | None
    sample_rows: int
    seed: int
    seconds: float
    notes: list[str]
    max_column_copy_excess: float | None = None
    worst_copy_column: str | None = None
    not_computed: list[NotComputed] = field(default_factory=list)
    dcr_share: float | None = None
    dcr_share_ci: list[float] | None = None
    attack_rows: int = 0
    index_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, NaN as None: ready for ``json.dumps``."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Bounds:
    sample_rows: int
    attack_rows: int
    index_rows: int


def _max(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return max(kept) if kept else None


def evaluate_privacy(
    train: Mapping[str, pa.Table],
    holdout: Mapping[str, pa.Table],
    synth: Mapping[str, pa.Table],
    schema: DatabaseSchema,
    *,
    sample_rows: int = 10_000,
    attack_rows: int | None = None,
    index_rows: int = 200_000,
    seed: int = 0,
) -> PrivacyResult:
    """Measure exact copies, distances to closest records and membership inference, per table.

    Args:
        train: the real rows the generator was trained on, by table.
        holdout: real rows it never saw, by table (the baseline).
        synth: the synthetic rows, by table.
        schema: the schema; active tables present in all three mappings are measured, others are noted.
        sample_rows: at most this many synthetic rows (and holdout rows, for the exact-copy baseline) are sampled
            per table; their nearest training and holdout rows are searched among every indexed row.
        attack_rows: the attack targets at most this many training rows and as many holdout rows per table;
            default ``sample_rows // 4`` (its holdout rows are also the baseline of the DCR percentiles). Each
            attacked row is one more nearest-neighbour search: 2,500 and 2,500 give the AUC within about +-0.02.
        index_rows: each nearest-neighbour index (training, holdout, synthetic rows) holds at most this many rows,
            a uniform sample beyond (memory and time stay bounded; ``dcr_train_coverage`` says what was kept).
        seed: seeds every sample.

    Raises:
        MetricsError: a table lacks a column that the schema declares, or a bound is below 10.
    """
    attack_rows = max(10, sample_rows // 4) if attack_rows is None else attack_rows
    for label, bound in (
        ("sample_rows", sample_rows),
        ("attack_rows", attack_rows),
        ("index_rows", index_rows),
    ):
        if bound < 10:
            raise MetricsError(f"{label} must be at least 10, got {bound}")
    bounds = _Bounds(sample_rows, attack_rows, index_rows)
    started = time.perf_counter()
    notes: list[str] = []
    out: dict[str, TablePrivacy] = {}
    guard = Guard()
    present = []
    for t in schema.active_tables:
        absent = [
            w for w, m in (("training", train), ("holdout", holdout), ("synthetic", synth)) if t.name not in m
        ]
        if absent:
            notes.append(f"table {t.name!r}: no {', '.join(absent)} data given; skipped")
            continue
        for label, data in (("training", train), ("holdout", holdout), ("synthetic", synth)):
            check_columns(data[t.name], _copy_columns(t), t.name, label)
        present.append(t)
    for t in present:
        result = guard.run(
            "privacy",
            t.name,
            _table_privacy,
            t,
            train[t.name],
            holdout[t.name],
            synth[t.name],
            bounds,
            seed,
            notes,
            guard,
        )
        if result is not None:
            out[t.name] = result
    for r in out.values():  # too small to estimate: n/a with the reason, like a measure that failed
        for metric, why in (("dcr_share", r.dcr_not_estimable), ("mia_auc", r.mia_not_estimable)):
            if why is not None:
                guard.failures.append(NotComputed(metric, r.table, f"not estimable: {why}"))
    notes.extend(f"{f.metric} on {f.scope}: n/a ({f.reason})" for f in guard.failures)
    db_share, db_ci = _weighted_share(list(out.values()))
    worst = [
        (c.excess, f"{c.table}.{c.column}")
        for r in out.values()
        for c in r.column_copies
        if not c.by_construction
    ]
    worst_excess, worst_column = max(worst) if worst else (None, None)
    seconds = time.perf_counter() - started
    log.info("privacy of %d table(s) in %.1f s", len(out), seconds)
    return PrivacyResult(
        tables=out,
        max_exact_copy_share=_max([r.exact_copy_share for r in out.values()]),
        max_holdout_copy_share=_max([r.holdout_copy_share for r in out.values()]),
        max_dcr_closer_to_train_share=_max([r.dcr_closer_to_train_share for r in out.values()]),
        max_mia_auc=_max([r.mia_auc for r in out.values()]),
        sample_rows=sample_rows,
        seed=seed,
        seconds=seconds,
        notes=notes,
        max_column_copy_excess=worst_excess,
        worst_copy_column=worst_column,
        not_computed=guard.failures,
        attack_rows=attack_rows,
        index_rows=index_rows,
        dcr_share=db_share,
        dcr_share_ci=db_ci,
    )


def _weighted_share(tables: list[TablePrivacy]) -> tuple[float | None, list[float] | None]:
    """The estimable tables' DCR shares weighted by their training rows, and a 95% interval from theirs."""
    scored = [t for t in tables if t.dcr_closer_to_train_share is not None and t.train_rows > 0]
    if not scored:
        return None, None
    w = np.array([t.train_rows for t in scored], dtype=np.float64)
    w /= w.sum()
    share = float(np.dot(w, [float(t.dcr_closer_to_train_share or 0.0) for t in scored]))
    # each table's standard error from its interval's half-width (1.96 of them)
    se = np.array([(t.dcr_share_ci[1] - t.dcr_share_ci[0]) / (2 * 1.96) if t.dcr_share_ci else 0.0 for t in scored])
    half = 1.96 * float(np.sqrt(np.dot(w**2, se**2)))
    return share, [max(0.0, share - half), min(1.0, share + half)]


def _copy_columns(table: Table) -> list[str]:
    keys = table.key_columns
    return [c.name for c in table.active_columns if c.kind.is_learned and c.name not in keys]


def _sample(t: pa.Table, n: int, seed: int, *parts: str) -> pa.Table:
    idx = sample_indices(t.num_rows, n, table_rng(seed, *parts))
    return t if len(idx) == t.num_rows else t.take(idx)


def _table_privacy(
    table: Table,
    train: pa.Table,
    holdout: pa.Table,
    synth: pa.Table,
    bounds: _Bounds,
    seed: int,
    notes: list[str],
    guard: Guard,
) -> TablePrivacy | None:
    name = table.name
    copy_cols = _copy_columns(table)
    synth_s = _sample(synth, bounds.sample_rows, seed, "privacy-synth", name)
    hold_copy = _sample(holdout, bounds.sample_rows, seed, "privacy-holdout", name)
    per_column = column_copies(table, train, synth_s, hold_copy, guard=guard)
    scored = [c.excess for c in per_column if not c.by_construction]
    max_excess = max(scored) if scored else None
    common: dict[str, Any] = {
        "table": name,
        "copy_columns": copy_cols,
        "train_rows": train.num_rows,
        "holdout_rows": holdout.num_rows,
        "synthetic_rows": synth.num_rows,
        "copy_synthetic_rows": synth_s.num_rows,
        "copy_holdout_rows": hold_copy.num_rows,
        "column_copies": per_column,
        "max_column_copy_excess": max_excess,
    }
    if min(train.num_rows, holdout.num_rows, synth.num_rows) == 0 or not copy_cols:
        why = (
            "no learned non-key column, nothing can leak through whole rows"
            if not copy_cols
            else "an empty training, holdout or synthetic table"
        )
        if not per_column:
            notes.append(f"table {name!r}: {why}; skipped")
            return None
        notes.append(f"table {name!r}: {why}; only per-column copies measured")
        return TablePrivacy(**common, distance_columns=[], exact_copy_share=None, holdout_copy_share=None)

    # Exact copies: against every training row (hashing whole rows is cheap), from bounded samples.
    copies = guard.run("exact_copies", name, _exact_copies, train, synth_s, hold_copy, copy_cols)
    exact, baseline = copies if copies is not None else (None, None)
    dist_cols = value_columns(table)[0]
    measured: dict[str, Any] = {}
    if dist_cols:
        measured = (
            guard.run("distances", name, _distances, table, train, holdout, synth, synth_s, bounds, seed)
            or {}
        )
    else:
        notes.append(
            f"table {name!r}: no numeric or categorical column; distances and membership inference skipped"
        )
    return TablePrivacy(
        **common,
        distance_columns=[c.name for c in dist_cols],
        exact_copy_share=exact,
        holdout_copy_share=baseline,
        **measured,
    )


def _exact_copies(
    train: pa.Table, synth_s: pa.Table, hold_copy: pa.Table, copy_cols: list[str]
) -> tuple[float, float]:
    train_codes, synth_codes, hold_codes = row_codes([train, synth_s, hold_copy], copy_cols)
    return float(np.isin(synth_codes, train_codes).mean()), float(np.isin(hold_codes, train_codes).mean())


def _distances(
    table: Table,
    train: pa.Table,
    holdout: pa.Table,
    synth: pa.Table,
    synth_s: pa.Table,
    bounds: _Bounds,
    seed: int,
) -> dict[str, Any]:
    """The DCR share and percentiles and the attack, as :class:`TablePrivacy` fields."""
    name = table.name
    dist_cols = value_columns(table)[0]
    train_i = _sample(train, bounds.index_rows, seed, "privacy-train-index", name)
    hold_i = _sample(holdout, bounds.index_rows, seed, "privacy-holdout-index", name)
    synth_i = _sample(synth, bounds.index_rows, seed, "privacy-synth-index", name)
    # The attack's targets: members drawn from the indexed training rows, non-members from the holdout.
    members_at = sample_indices(
        train_i.num_rows, bounds.attack_rows, table_rng(seed, "privacy-members", name)
    )
    others_at = sample_indices(hold_i.num_rows, bounds.attack_rows, table_rng(seed, "privacy-others", name))
    x_train, x_hold, x_synth_i, x_synth = distance_features(
        train_i, [hold_i, synth_i, synth_s], dist_cols, where=f"table {name!r}"
    )
    x_others = x_hold[others_at]
    train_index, hold_index = NeighbourIndex(x_train), NeighbourIndex(x_hold)
    d_synth_train, at_train = train_index.query(x_synth)
    d_synth_train = _rounded(d_synth_train)
    d_hold_train = _rounded(train_index.query(x_others)[0])
    d_synth_hold, at_hold = hold_index.query(x_synth)
    # A tie is (nearly always) an equal row on both sides: the training rows' share of the equal rows is its score.
    k_train = train_index.counts[at_train]
    k_hold = hold_index.counts[at_hold]
    n_train, n_hold = len(x_train), len(x_hold)
    share_or_none: float | None
    d_synth_hold = _rounded(d_synth_hold)
    # each synthetic row's nearest real row (a tie: the training side's group of equal rows stands for both)
    nearest = np.where(d_synth_train <= d_synth_hold, at_train, n_train + at_hold).astype(np.int64)
    share, raw, chance, share_ci = dcr_share(
        d_synth_train, d_synth_hold, n_train, n_hold, ties=k_train / (k_train + k_hold), clusters=nearest
    )
    dcr_why = dcr_not_estimable(n_train, n_hold, len(x_synth))
    share_or_none, ci_or_none = (None, None) if dcr_why else (share, share_ci)
    # The attacker: the closer a real row is to some synthetic row, the likelier it was trained on.
    synth_index = NeighbourIndex(x_synth_i)
    d_members = _rounded(synth_index.query(x_train[members_at])[0])
    d_others = _rounded(synth_index.query(x_others)[0])
    mia_why = mia_not_estimable(len(members_at), len(others_at))
    auc_or_none: float | None = None
    auc_low: float | None = None
    auc_high: float | None = None
    if mia_why is None:
        auc_or_none, auc_low, auc_high = auc_with_ci(-d_members, -d_others)
    return {
        "dcr_train_rows": n_train,
        "dcr_holdout_rows": n_hold,
        "dcr_synthetic_rows": len(x_synth),
        "dcr_train_coverage": n_train / train.num_rows,
        "dcr_chance_share": chance,
        "dcr_raw_share": raw,
        "dcr_closer_to_train_share": share_or_none,
        "dcr_share_ci": ci_or_none,
        "dcr_not_estimable": dcr_why,
        "dcr_synthetic": _percentiles(d_synth_train),
        "dcr_holdout": _percentiles(d_hold_train),
        "dcr_histogram": _histogram(d_synth_train, d_hold_train),
        "mia_auc": auc_or_none,
        "mia_auc_ci": None if auc_low is None or auc_high is None else [auc_low, auc_high],
        "mia_not_estimable": mia_why,
        "mia_members": len(members_at),
        "mia_non_members": len(others_at),
        "mia_synthetic_rows": len(x_synth_i),
        "mia_candidates": len(members_at) + len(others_at),
    }


def _rounded(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.round(d, _DISTANCE_DECIMALS)
    return out


def dcr_share(
    d_train: npt.NDArray[np.float64],
    d_holdout: npt.NDArray[np.float64],
    n_train: int,
    n_holdout: int,
    *,
    ties: npt.NDArray[np.float64] | None = None,
    clusters: npt.NDArray[np.int64] | None = None,
) -> tuple[float, float, float, list[float]]:
    """The DCR share from each synthetic row's distance to its nearest training and nearest holdout row.

    Args:
        d_train: per synthetic row, the distance to the nearest of ``n_train`` training rows.
        d_holdout: the distance to the nearest of ``n_holdout`` holdout rows.
        n_train: training rows searched.
        n_holdout: holdout rows searched.
        ties: per synthetic row, the training rows' share of the real rows at its nearest distance, which scores
            a tie (a row that fresh data repeats, on both sides): its expectation is ``chance`` for a fresh row.
            Counting ``chance`` for every tie instead is biased when real rows repeat: a repeated row is all
            training more often than all holdout. None counts ``chance``.
        clusters: per synthetic row, which real row (or group of equal real rows) is its nearest. Rows with the
            same nearest real row are scored by that one row's side of the split, so they are not independent:
            the interval is then the cluster-robust one (the per-cluster sums' variance), which is as wide as the
            number of distinct nearest rows allows (300 synthetic airports nearest to 60 real ones vary as 60
            draws, not 300). None treats every synthetic row as independent.

    Returns:
        ``(share, raw, chance, [low, high])``: the share mapped so that chance is 0.5 and all copies 1 (one affine
        map, so that it is unbiased: see the module docstring; clipped to ``[0, 1]``), the raw share of rows
        nearer a training row (ties scored as above), ``chance = n_train / (n_train + n_holdout)`` and the 95%
        interval of ``share``.
    """
    chance = n_train / (n_train + n_holdout)
    tie = np.full(len(d_train), chance) if ties is None else np.asarray(ties, dtype=np.float64)
    closer = np.where(d_train < d_holdout, 1.0, np.where(d_train > d_holdout, 0.0, tie))
    raw = float(closer.mean())
    n = len(closer)
    if clusters is not None and n > 1:
        _, group = np.unique(np.asarray(clusters), return_inverse=True)
        sums = np.bincount(group, weights=closer - raw)
        k = int(sums.size)
        se = float(np.sqrt(np.sum(sums**2) * k / max(k - 1, 1))) / n if k > 1 else 0.0
        half = 1.96 * se
    else:
        half = 1.96 * float(closer.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0

    def scaled(r: float) -> float:
        return min(1.0, max(0.0, 0.5 + 0.5 * (r - chance) / (1.0 - chance)))

    return scaled(raw), raw, chance, [scaled(raw - float(half)), scaled(raw + float(half))]


def dcr_not_estimable(n_train: int, n_holdout: int, n_synthetic: int) -> str | None:
    """Why a DCR share cannot be estimated at these sizes (its null standard deviation exceeds
    :data:`MAX_NULL_SE`, see the module docstring), or None when it can."""
    if n_train == 0 or n_holdout == 0 or n_synthetic == 0:
        return f"{n_train} training, {n_holdout} holdout and {n_synthetic} synthetic rows: a side is empty"
    n = min(n_synthetic, n_train + n_holdout)
    se = 0.5 * float(np.sqrt(n_train / (n_holdout * n)))
    if se <= MAX_NULL_SE:
        return None
    return (
        f"{n_holdout} holdout row(s) beside {n_train} training rows: the share would vary by {se:.2f} (one "
        f"standard deviation) for a generator that copies nothing, over {MAX_NULL_SE:g}; about "
        f"{int(np.ceil(0.25 / MAX_NULL_SE**2))} holdout rows are needed to tell a copier from chance"
    )


def mia_not_estimable(members: int, non_members: int) -> str | None:
    """Why the attack's AUC cannot be estimated with these many members and non-members (its null standard
    deviation ``sqrt((a + b + 1) / (12 a b))`` exceeds :data:`MAX_NULL_SE`), or None when it can."""
    if members == 0 or non_members == 0:
        return f"{members} member(s) and {non_members} non-member(s) to attack: a side is empty"
    se = float(np.sqrt((members + non_members + 1) / (12.0 * members * non_members)))
    if se <= MAX_NULL_SE:
        return None
    return (
        f"{members} member(s) and {non_members} non-member(s): the AUC would vary by {se:.2f} (one standard "
        f"deviation) for a generator that copies nothing, over {MAX_NULL_SE:g}"
    )


def auc_with_ci(
    positives: npt.NDArray[np.float64], negatives: npt.NDArray[np.float64], *, level: float = 0.95
) -> tuple[float, float | None, float | None]:
    """ROC AUC of scores that should rank ``positives`` above ``negatives`` (ties half), with DeLong's interval.

    The midrank form (Sun & Xu 2014): each positive's share of negatives below it and each negative's share of
    positives above it; the AUC's variance is the sum of their variances over their counts.

    Returns:
        ``(auc, low, high)``; the bounds are None with fewer than two scores on a side.
    """
    from scipy.stats import norm, rankdata

    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        raise MetricsError(f"an AUC needs scores on both sides, got {m} positive(s) and {n} negative(s)")
    ranks = rankdata(np.concatenate([positives, negatives]))
    v10 = (ranks[:m] - rankdata(positives)) / n  # per positive: negatives scored below it
    v01 = 1.0 - (ranks[m:] - rankdata(negatives)) / m  # per negative: positives scored above it
    auc = float(v10.mean())
    if m < 2 or n < 2:
        return auc, None, None
    se = float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))
    z = float(norm.ppf(0.5 + level / 2))
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def _histogram(d_synth: npt.NDArray[np.float64], d_hold: npt.NDArray[np.float64]) -> dict[str, list[float]]:
    both = np.concatenate([d_synth, d_hold])
    top = float(np.percentile(both, 99)) if both.size else 1.0
    top = top if top > 0 else 1.0
    edges = np.linspace(0.0, top, 31)

    def shares(d: npt.NDArray[np.float64]) -> list[float]:
        counts = np.histogram(np.minimum(d, top), bins=edges)[0]
        return [float(c) / max(1, d.size) for c in counts]

    return {"edges": [float(e) for e in edges], "synthetic": shares(d_synth), "holdout": shares(d_hold)}


def _percentiles(d: npt.NDArray[np.float64]) -> dict[str, float]:
    p1, p5, p50 = np.percentile(d, [1, 5, 50])
    return {"p1": float(p1), "p5": float(p5), "p50": float(p50)}


def column_copies(
    table: Table,
    train: pa.Table,
    synth: pa.Table,
    holdout: pa.Table | None = None,
    *,
    guard: Guard | None = None,
) -> list[ColumnCopies]:
    """Per key-like column of ``table``: the share of synthetic values that are real training values.

    Vectorised: one Arrow set lookup (``is_in``) per column against the distinct training values. Pass bounded
    samples of ``synth`` and ``holdout``; the training side is looked up whole.

    Args:
        table: the table's schema (roles and kinds).
        train: the training rows.
        synth: the synthetic rows (a sample).
        holdout: holdout rows (a sample), for the fresh-data baseline; None leaves it out.
        guard: records a column that cannot be scored (it is left out); without one, the error is raised.
    """
    guard = guard or Guard()
    out = []
    for col in table.active_columns:
        if col.name not in train.column_names or col.name not in synth.column_names:
            continue
        scored = guard.run(
            "column_copies", f"{table.name}.{col.name}", _column_copy, table, col.name, train, synth, holdout
        )
        if scored is not None:
            out.append(scored)
    return out


def _plain(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr


def _column_copy(
    table: Table, name: str, train: pa.Table, synth: pa.Table, holdout: pa.Table | None
) -> ColumnCopies | None:
    col = table.column(name)
    is_key = name in table.key_columns or col.kind is Kind.ID or any(name in u.columns for u in table.unique)
    real = _plain(train.column(name)).drop_null()
    typ = real.type
    textual = pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ)
    integer = pa.types.is_integer(typ)
    if not (textual or integer or is_key) or (col.kind in _MEASUREMENT_KINDS and not is_key and not textual):
        return None
    if len(real) < _KEY_LIKE_MIN_VALUES:
        return None
    values = pc.unique(real)
    ratio = len(values) / len(real)
    if ratio < _KEY_LIKE_DISTINCT_RATIO:
        return None
    role = (
        "generated key"
        if is_key
        else "faked PII"
        if col.kind.is_pii
        else "learned"
        if col.kind.is_learned and col.kind not in (Kind.TEXT, Kind.JSON, Kind.BINARY)
        else "not learned"
    )
    synth_values = _aligned(_plain(synth.column(name)).drop_null(), values)
    share = _share_in(synth_values, values)
    hold_share = None
    if holdout is not None and name in holdout.column_names:
        hold_values = _aligned(_plain(holdout.column(name)).drop_null(), values)
        hold_share = _share_in(hold_values, values) if len(hold_values) else None
    chance = _chance_share(values, synth_values) if len(synth_values) else None
    excess = max(0.0, share - max(hold_share or 0.0, chance or 0.0)) if len(synth_values) else 0.0
    return ColumnCopies(
        table=table.name,
        column=name,
        role=role,
        by_construction=is_key and integer,
        distinct_ratio=round(ratio, 6),
        synthetic_values=len(synth_values),
        copy_share=share,
        holdout_share=hold_share,
        chance_share=chance,
        excess=excess,
    )


def _aligned(arr: pa.ChunkedArray, values: pa.Array) -> pa.ChunkedArray:
    """``arr`` in the type of the training values, or as text when it cannot be cast (int vs string keys)."""
    if arr.type == values.type:
        return arr
    try:
        return arr.cast(values.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return arr.cast(pa.string())


def _share_in(arr: pa.ChunkedArray, values: pa.Array) -> float:
    if len(arr) == 0:
        return 0.0
    if arr.type != values.type:
        values = values.cast(pa.string())
    return float(pc.mean(pc.cast(pc.is_in(arr, value_set=values), pa.int8())).as_py())


def _shapes(arr: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Each value's format: upper-case letters as ``A``, lower-case as ``a``, digits as ``9``, the rest kept."""
    text = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
    text = pc.replace_substring_regex(text, pattern="[A-Z]", replacement="A")
    text = pc.replace_substring_regex(text, pattern="[a-z]", replacement="a")
    return pc.replace_substring_regex(text, pattern="[0-9]", replacement="9")


def _chance_share(values: pa.Array, synth: pa.ChunkedArray) -> float | None:
    """The share of synthetic values that random values of their own format would make equal to a real value.

    A format ``AA-9999`` holds 26**2 * 10**4 values; with 400 real plates, a random plate of that format is real
    with probability 400 / 6.76e6. Each synthetic value's format gives its chance; their mean is the baseline
    that a generator drawing fresh values would show (three-letter airport codes: 1,458 of 17,576, 8%).
    """
    if pa.types.is_binary(values.type):
        return None
    real_shapes = _shapes(values)
    counts = pa.table({"shape": real_shapes}).group_by("shape").aggregate([("shape", "count")])
    shape_arr = counts.column("shape")
    letters = pc.add(pc.count_substring(shape_arr, "A"), pc.count_substring(shape_arr, "a"))
    digits = pc.count_substring(shape_arr, "9")
    log_space = np.asarray(letters.to_numpy(), dtype=np.float64) * np.log(26.0) + np.asarray(
        digits.to_numpy(), dtype=np.float64
    ) * np.log(10.0)
    n_real = np.asarray(counts.column("shape_count").to_numpy(), dtype=np.float64)
    chance = np.minimum(1.0, n_real * np.exp(-np.minimum(log_space, 700.0)))
    idx = pc.index_in(_shapes(synth), value_set=shape_arr).fill_null(-1).to_numpy()
    idx = np.asarray(idx, dtype=np.int64)
    # A synthetic value of a format no real value has cannot equal a real one by chance.
    per_value = np.where(idx >= 0, chance[np.maximum(idx, 0)], 0.0)
    return float(per_value.mean()) if per_value.size else None
