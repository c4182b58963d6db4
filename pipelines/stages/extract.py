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
