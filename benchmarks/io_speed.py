"""Benchmark: how close the extract stage comes to a plain Arrow copy of the source.

What one invocation does, on the nycflights13 demo database (``synthdb demo``; built in the work directory when
``--db`` is not given):

1. with ``--scale-copies N``, builds a database N times as large: every table's rows N times over, copy ``k``
   with its keys shifted (an integer key column plus ``k`` times its parent's span ``max - min + 1``, a text key
   column suffixed ``~k``), so every primary key stays unique and every foreign key still points at a row;
2. **plain copy**: ADBC reads every table (``fetch_record_batch``) and ingests it into a fresh SQLite file
   (``adbc_ingest``): the floor any reader pays;
3. **extract**: the extract stage's own code (``pipelines.stages.extract.extract_table``: ``SqlSource.read_table``
   into Parquet, zstd) for every table, once through the Arrow driver (``reader="auto"``) and once through
   SQLAlchemy's row cursor (``reader="sqlalchemy"``, the read before the Arrow path);
4. prints each time (the best of ``--repeat`` runs, the machine being shared), rows, and the ratios.

Usage (from the repository root)::

    python -m benchmarks.io_speed                       # the demo, 1x
    python -m benchmarks.io_speed --scale-copies 10     # 10x (3.7 million rows)
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scale_copies(source: Path, target: Path, copies: int) -> None:
    """``target``: ``source``'s schema with every table's rows ``copies`` times, keys shifted per copy."""
    from connectors.sql.reflect import reflect_schema
    from schemas.types import Family

    engine = sa.create_engine(f"sqlite:///{source}")
    schema = reflect_schema(engine)
    engine.dispose()
    target.unlink(missing_ok=True)
    db = sqlite3.connect(target)
    src = sqlite3.connect(source)
    for (sql,) in src.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"):
        db.execute(sql)
    # the column a key column takes its values from: its own, or the parent's for a foreign key
    parent_of: dict[tuple[str, str], tuple[str, str]] = {}
    for table in schema.tables:
        for fk in table.foreign_keys:
            for col, ref in zip(fk.columns, fk.ref_columns, strict=True):
                parent_of[(table.name, col)] = (fk.ref_table, ref)
    key_columns = {
        (t.name, c)
        for t in schema.tables
        for c in [*(t.primary_key.columns if t.primary_key else []), *(c for fk in t.foreign_keys for c in fk.columns)]
    }
    spans: dict[tuple[str, str], int] = {}

    def span(table: str, column: str) -> int:
        while (table, column) in parent_of and parent_of[(table, column)] != (table, column):
            table, column = parent_of[(table, column)]
        if (table, column) not in spans:
            bounds = f"SELECT min({_quote(column)}), max({_quote(column)}) FROM {_quote(table)}"
            low, high = src.execute(bounds).fetchone()
            spans[(table, column)] = int(high - low + 1) if low is not None else 1
        return spans[(table, column)]

    db.execute("ATTACH DATABASE ? AS src", (str(source),))
    for table in schema.tables:
        for k in range(copies):
            exprs = []
            for col in table.columns:
                ref = _quote(col.name)
                if k and (table.name, col.name) in key_columns:
                    if col.family is Family.INTEGER:
                        ref = f"{ref} + {k * span(table.name, col.name)}"
                    else:
                        ref = f"{ref} || '~{k}'"
                exprs.append(ref)
            name = _quote(table.name)
            db.execute(f"INSERT INTO main.{name} SELECT {', '.join(exprs)} FROM src.{name}")
        db.commit()
    db.execute("DETACH DATABASE src")
    db.close()
    src.close()


def plain_copy(db: Path, out: Path) -> int:
    """ADBC read of every table, ingested into a fresh SQLite file; returns the rows copied."""
    import adbc_driver_sqlite.dbapi

    out.unlink(missing_ok=True)
    rows = 0
    with adbc_driver_sqlite.dbapi.connect(str(db)) as src, adbc_driver_sqlite.dbapi.connect(str(out)) as dst:
        names = [r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            with src.cursor() as read, dst.cursor() as write:
                read.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
                read.execute(f"SELECT * FROM {_quote(name)}")
                reader = read.fetch_record_batch()
                rows += write.adbc_ingest(name, reader, mode="create")
                reader.close()
        dst.commit()
    return rows


def extract(db: Path, out: Path, reader: str, batch_rows: int) -> int:
    """The extract stage's table writer over every table; returns the rows written."""
    from connectors.sql import SqlSource
    from pipelines.stages.extract import extract_table

    shutil.rmtree(out, ignore_errors=True)
    source = SqlSource(f"sqlite:///{db}", reader=reader)  # type: ignore[arg-type]
    try:
        return sum(
            extract_table(source, t, out / f"table-{i:03d}", batch_rows=batch_rows)
            for i, t in enumerate(source.read_schema().active_tables)
        )
    finally:
        source.close()


def _best(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = run()
        times.append(time.perf_counter() - start)
    return min(times), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a demo database (default: built in the work directory)")
    parser.add_argument("--scale-copies", type=int, default=1, help="rows of every table this many times over")
    parser.add_argument("--work-dir", type=Path, help="where the databases and Parquet go (default: a temp dir)")
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is printed")
    parser.add_argument("--skip-sqlalchemy", action="store_true", help="do not time the SQLAlchemy read")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="synthdb-io-"))
    work.mkdir(parents=True, exist_ok=True)
    db = args.db
    if db is None:
        from connectors.demo import build_demo

        db = work / "nycflights13.sqlite"
        if not db.exists():
            build_demo(db)
    if args.scale_copies > 1:
        scaled = work / f"nycflights13-x{args.scale_copies}.sqlite"
        scale_copies(db, scaled, args.scale_copies)
        db = scaled

    plain_s, plain_rows = _best(args.repeat, lambda: plain_copy(db, work / "plain-copy.sqlite"))
    arrow_s, arrow_rows = _best(args.repeat, lambda: extract(db, work / "extract-arrow", "auto", args.batch_rows))
    print(f"database           {db} ({args.scale_copies}x, {plain_rows:,} rows)")
    print(f"plain ADBC copy    {plain_s:8.2f} s")
    print(f"extract (Arrow)    {arrow_s:8.2f} s   {arrow_s / plain_s:5.2f}x the plain copy  ({arrow_rows:,} rows)")
    if not args.skip_sqlalchemy:
        slow_s, slow_rows = _best(
            args.repeat, lambda: extract(db, work / "extract-sqlalchemy", "sqlalchemy", args.batch_rows)
        )
        print(
            f"extract (SQLAlchemy){slow_s:7.2f} s   {slow_s / plain_s:5.2f}x the plain copy  ({slow_rows:,} rows); "
            f"the Arrow path is {slow_s / arrow_s:.1f}x faster"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
