"""extract: stream each source table into the run directory as Parquet, memory bounded by the batch size."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.source import Source
from schemas.model import DatabaseSchema, Table
from schemas.plan import Plan

log = logging.getLogger(__name__)


def table_dir(run_dir: Path, area: str, table: str) -> Path:
    """The folder of one table's Parquet in an area of the run directory (``real``, ``synth``...).

    Table names may hold any character (``café``, ``order lines``); the folder name is made filesystem-safe but
    stays readable.
    """
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in table)
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
        counts[table.name] = extract_table(source, table, table_dir(run_dir, "real", table.name), batch_rows=batch_rows)
        log.info("extract: %s: %d rows", table.name, counts[table.name])
    return counts


def split_holdout(run_dir: Path, schema: DatabaseSchema, plan: Plan, *, share: float, seed: int) -> dict[str, int]:
    """Move a holdout out of the training data: a share of root entities with all their descendants.

    The unit is a *root entity*: a row of a table without a context parent. Its descendants are the rows that
    reach it through context foreign keys (each row has one context parent, so every row belongs to exactly one
    root entity). A held-out root entity goes to ``holdout/`` with all its descendants, so the training data in
    ``real/`` holds only whole entities and children-per-parent counts stay unbiased. The holdout is never trained
    on; the report compares the synthetic data with it. Everything streams through Polars' lazy engine, so memory
    holds the held-out parent keys, not the tables. Returns held-out rows per table.
    """
    import hashlib

    import polars as pl

    if share <= 0:
        return {t.name: 0 for t in schema.active_tables}
    held: dict[str, int] = {}
    threshold = int(share * 2**32)
    for name in plan.order:
        path = table_dir(run_dir, "real", name) / "data.parquet"
        lf = pl.scan_parquet(path)
        ctx = plan.context.get(name)
        if ctx is None:
            # a seeded hash of the row's position: reproducible, independent of any process state
            salt = int.from_bytes(hashlib.blake2b(f"{seed}/holdout/{name}".encode(), digest_size=4).digest(), "little")
            marked = lf.with_row_index("__i").with_columns(
                ((pl.col("__i").hash(salt) % (2**32)) < threshold).alias("__held")
            ).drop("__i")
        else:
            held_parent = table_dir(run_dir, "holdout", ctx.parent) / "data.parquet"
            keys = (
                pl.scan_parquet(held_parent)
                .select([pl.col(r).alias(c) for r, c in zip(ctx.ref_columns, ctx.columns, strict=True)])
                .unique()
                .with_columns(pl.lit(True).alias("__held"))
            )
            marked = lf.join(keys, on=list(ctx.columns), how="left", maintain_order="left").with_columns(
                pl.col("__held").fill_null(False)
            )
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
    return held
