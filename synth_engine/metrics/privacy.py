"""Privacy: does the synthetic data give away the real rows it was trained on?

Each measure is read against a baseline of real rows the generator never saw (the *holdout*): synthetic rows
should be no closer to the training rows than fresh real rows are.

- **exact copies**: the share of synthetic rows equal to some training row on every learned, non-key column,
  beside the same share for holdout rows (the share a perfect, non-copying generator would still show).
- **distance to closest record (DCR)**: rows encoded as numbers (robust-scaled numbers and dates, one-hot
  categories); the share of synthetic rows closer to the training sample than to an equally large holdout sample
  (ideal 0.5; near 1 means the generator copies or overfits), and low percentiles of the distances from synthetic
  rows and from holdout rows to the training sample. With a holdout smaller than the training data, the training
  sample covers only part of it and the share is diluted (``dcr_train_coverage`` says by how much).
- **membership inference**: an attacker scores each candidate (training and holdout rows, equally many) by its
  distance to the closest synthetic row, closer meaning "was in the training data"; the attack's ROC AUC (ideal
  0.5, 1 = every member is recognised).

Keys and PII are never compared: keys are generated and PII is faked, so they cannot leak the real values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from schemas.model import DatabaseSchema, Table
from synth_engine.metrics._encode import (
    MetricsError,
    check_columns,
    distance_features,
    json_safe,
    row_codes,
    sample_indices,
    single_threaded,
    table_rng,
    value_columns,
)

log = logging.getLogger(__name__)

__all__ = ["PrivacyResult", "TablePrivacy", "evaluate_privacy"]

# Distances are rounded to this many decimals so that equal rows are exactly 0 apart (the BLAS distance formula
# leaves ~1e-8 noise) and ties between "closest to train" and "closest to holdout" are seen as ties.
_DISTANCE_DECIMALS = 6


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
        dcr_sample_rows: rows in each of the training and holdout samples for distances (equal sizes).
        dcr_synthetic_rows: synthetic rows sampled for distances.
        dcr_train_coverage: ``dcr_sample_rows / train_rows``, the share of training rows in the training sample.
            Below 1 (a holdout smaller than the training data) the DCR share is diluted: a generator that only
            copies shows about ``coverage + (1 - coverage) / 2`` rather than 1, because copies of training rows
            outside the sample look like fresh rows. Exact copies and the DCR percentiles are read beside it.
        dcr_closer_to_train_share: share of synthetic rows closer to the training sample than to the holdout
            sample, ties counted half (ideal 0.5).
        dcr_synthetic: percentiles (``p1``, ``p5``, ``p50``) of synthetic -> training distances.
        dcr_holdout: the same percentiles of holdout -> training distances (the baseline).
        mia_auc: ROC AUC of the distance-based membership inference attack (ideal 0.5).
        mia_candidates: candidates scored (half training, half holdout rows).
    """

    table: str
    copy_columns: list[str]
    distance_columns: list[str]
    train_rows: int
    holdout_rows: int
    synthetic_rows: int
    exact_copy_share: float
    holdout_copy_share: float
    copy_synthetic_rows: int
    copy_holdout_rows: int
    dcr_sample_rows: int
    dcr_synthetic_rows: int
    dcr_train_coverage: float
    dcr_closer_to_train_share: float | None
    dcr_synthetic: dict[str, float]
    dcr_holdout: dict[str, float]
    mia_auc: float | None
    mia_candidates: int


@dataclass(frozen=True)
class PrivacyResult:
    """Everything :func:`evaluate_privacy` measured; ``to_dict()`` gives plain JSON-able data.

    Attributes:
        tables: per-table measures.
        max_exact_copy_share: the largest synthetic exact-copy share over the tables (the worst table).
        max_holdout_copy_share: the largest holdout exact-copy share (its baseline).
        max_dcr_closer_to_train_share: the largest DCR share over the tables.
        max_mia_auc: the largest membership inference AUC over the tables.
        sample_rows: the per-table sample bound.
        seed: the seed of every sample.
        seconds: wall time.
        notes: what was skipped, one line each.
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

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, NaN as None: ready for ``json.dumps``."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]


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
    seed: int = 0,
) -> PrivacyResult:
    """Measure exact copies, distances to closest records and membership inference, per table.

    Args:
        train: the real rows the generator was trained on, by table.
        holdout: real rows it never saw, by table (the baseline).
        synth: the synthetic rows, by table.
        schema: the schema; active tables present in all three mappings are measured, others are noted.
        sample_rows: at most this many rows per sample (training and holdout samples for distances are equally
            large: the smaller of the two tables, up to this bound).
        seed: seeds every sample.

    Raises:
        MetricsError: a table lacks a column that the schema declares.
    """
    if sample_rows < 10:
        raise MetricsError(f"sample_rows must be at least 10, got {sample_rows}")
    started = time.perf_counter()
    notes: list[str] = []
    out: dict[str, TablePrivacy] = {}
    for t in schema.active_tables:
        absent = [
            w for w, m in (("training", train), ("holdout", holdout), ("synthetic", synth)) if t.name not in m
        ]
        if absent:
            notes.append(f"table {t.name!r}: no {', '.join(absent)} data given; skipped")
            continue
        result = _table_privacy(t, train[t.name], holdout[t.name], synth[t.name], sample_rows, seed, notes)
        if result is not None:
            out[t.name] = result
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
    )


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
    sample_rows: int,
    seed: int,
    notes: list[str],
) -> TablePrivacy | None:
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    name = table.name
    copy_cols = _copy_columns(table)
    dist_cols = value_columns(table)[0]
    for label, data in (("training", train), ("holdout", holdout), ("synthetic", synth)):
        check_columns(data, copy_cols, name, label)
    if not copy_cols:
        notes.append(f"table {name!r}: no learned non-key column; nothing can leak by value, skipped")
        return None
    if min(train.num_rows, holdout.num_rows, synth.num_rows) == 0:
        notes.append(f"table {name!r}: an empty training, holdout or synthetic table; skipped")
        return None

    # Exact copies: against every training row (hashing whole rows is cheap), from bounded samples.
    synth_s = _sample(synth, sample_rows, seed, "privacy-synth", name)
    hold_copy = _sample(holdout, sample_rows, seed, "privacy-holdout", name)
    train_codes, synth_codes, hold_codes = row_codes([train, synth_s, hold_copy], copy_cols)
    exact = float(np.isin(synth_codes, train_codes).mean())
    baseline = float(np.isin(hold_codes, train_codes).mean())

    n = min(train.num_rows, holdout.num_rows, sample_rows)
    train_d = _sample(train, n, seed, "privacy-train-dcr", name)
    hold_d = _sample(holdout, n, seed, "privacy-holdout-dcr", name)
    share: float | None = None
    auc: float | None = None
    dcr_s: dict[str, float] = {}
    dcr_h: dict[str, float] = {}
    if dist_cols:
        x_train, x_hold, x_synth = distance_features(
            train_d, [hold_d, synth_s], dist_cols, where=f"table {name!r}"
        )

        def nearest(fit: npt.NDArray[np.float32], query: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
            nn = NearestNeighbors(n_neighbors=1).fit(fit)
            dist = np.asarray(nn.kneighbors(query, return_distance=True)[0][:, 0], dtype=np.float64)
            rounded: npt.NDArray[np.float64] = np.round(dist, _DISTANCE_DECIMALS)
            return rounded

        with single_threaded():
            d_synth_train = nearest(x_train, x_synth)
            d_synth_hold = nearest(x_hold, x_synth)
            d_hold_train = nearest(x_train, x_hold)
            d_cand = nearest(x_synth, np.vstack([x_train, x_hold]))
        share = float((d_synth_train < d_synth_hold).mean() + 0.5 * (d_synth_train == d_synth_hold).mean())
        dcr_s = _percentiles(d_synth_train)
        dcr_h = _percentiles(d_hold_train)
        # Membership inference: the closer a candidate is to some synthetic row, the likelier it was trained on.
        members = np.concatenate([np.ones(len(x_train)), np.zeros(len(x_hold))])
        auc = float(roc_auc_score(members, -d_cand))
    else:
        notes.append(
            f"table {name!r}: no numeric or categorical column; distances and membership inference skipped"
        )

    return TablePrivacy(
        table=name,
        copy_columns=copy_cols,
        distance_columns=[c.name for c in dist_cols],
        train_rows=train.num_rows,
        holdout_rows=holdout.num_rows,
        synthetic_rows=synth.num_rows,
        exact_copy_share=exact,
        holdout_copy_share=baseline,
        copy_synthetic_rows=synth_s.num_rows,
        copy_holdout_rows=hold_copy.num_rows,
        dcr_sample_rows=n,
        dcr_synthetic_rows=synth_s.num_rows,
        dcr_train_coverage=n / train.num_rows,
        dcr_closer_to_train_share=share,
        dcr_synthetic=dcr_s,
        dcr_holdout=dcr_h,
        mia_auc=auc,
        mia_candidates=2 * n if dist_cols else 0,
    )


def _percentiles(d: npt.NDArray[np.float64]) -> dict[str, float]:
    p1, p5, p50 = np.percentile(d, [1, 5, 50])
    return {"p1": float(p1), "p5": float(p5), "p50": float(p50)}
