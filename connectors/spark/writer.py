"""Spark loads generated Parquet shards into a target: bulk, Arrow-native, into a staging area; or a Parquet folder.

:func:`write_tables` runs one Spark job per load. Its tasks are the shards' Parquet row groups, grouped per task;
each task (a Python worker, :mod:`connectors.spark._bulk`) reads its row groups with pyarrow, batch by batch,
converts each batch's columns to what the target column takes, and streams them into the tables that
:meth:`connectors.staging.Staging.prepare` created, with the database's own bulk path:

* PostgreSQL: ``COPY ... FROM STDIN (FORMAT csv)`` through psycopg 3, up to :data:`MAX_PARTITIONS` tasks at once.
* MariaDB / MySQL: ``LOAD DATA LOCAL INFILE`` from per-chunk CSV files when the server allows local files
  (``@@local_infile``), multi-row ``INSERT`` batches otherwise; up to :data:`MAX_PARTITIONS` tasks at once.
* SQLite: one task, one ADBC connection, ``adbc_ingest`` in append mode (SQLite takes one writer).

Why the rows do not pass through Spark's JVM (measured on 2 loaded cores): on 10x the demo's flights (3.37M
rows) Spark's own Parquet read handed to Python as Arrow (``mapInArrow``, nothing written) took 25-37 s, against
13.5-17 s for a whole plain ADBC ingest of the same file, so no sink behind Spark's rows could come within 2x of
it. Spark still plans, schedules and runs the load (one task per partition, on executors on a cluster); the rows
go Parquet -> Arrow -> the database's bulk protocol without a row-by-row step. ``benchmarks/write_stage.py``
measures the stage against a plain ADBC copy.

Each task writes in one connection and one transaction (committed when all its tables are in), so a failed task
leaves nothing of its own behind; other tasks' rows stay in the staging area, which the caller aborts. Spark may
retry a failed task on a cluster: its transaction was rolled back, so the retry writes the rows once.

Type care, per target (the conversions are :func:`connectors.spark._bulk.convert`'s):

* UUID and JSON travel as text; PostgreSQL's ``COPY`` parses every field with the column type's input function,
  so the same holds for ranges, arrays, network addresses, geometric values, bit strings, XML and text-search
  vectors, whose values are the database's own literals (``[1,5)``, ``{1,2}``...).
* Intervals are microseconds in the shards. PostgreSQL gets ``'<n> microseconds'`` text, which it parses into its
  ``interval`` column; other targets hold the microseconds in a ``BIGINT``.
* BIT(n) values are ``'0101'`` text; MariaDB gets their number (``CONV(.., 2, 10)``: it would store a string's
  bytes, not its bits).
* Timestamps are UTC instants: ``TIMESTAMP WITH TIME ZONE`` gets the instant (``...Z``) on PostgreSQL and its UTC
  wall clock elsewhere; naive timestamps keep their wall-clock value.
* SQLite stores what is bound: dates and timestamps are written as text in SQLAlchemy's SQLite format
  (``YYYY-MM-DD HH:MM:SS.ffffff``), which every reader of the file (SQLAlchemy, the validation suite) understands,
  decimals as their text (the ``NUMERIC`` column's affinity stores the number).
* Times are written as ``HH:MM:SS.ffffff`` text, which every target casts on insert.
* Decimals are rounded (half away from zero) and cast to the column's ``DECIMAL(p, s)``, so a float in the shards
  cannot reach the target unrounded, and a value too wide for it fails naming the table and column.
* Binary: bytes into SQLite, ``\\x<hex>`` text for PostgreSQL's ``bytea``, hex unpacked by ``UNHEX`` on MariaDB.

MariaDB's ``LOAD DATA LOCAL`` turns duplicate keys and conversion errors into warnings (the server cannot stop a
file in flight), so each chunk's loaded row count and warnings are checked, and any of them fails the table.

Other speed notes:

* Row counts come from the Parquet footers, and the NOT NULL check against the shards' columns runs on the
  driver before any task starts.
* The SQLite staging file is opened with ``journal_mode=OFF`` and ``synchronous=OFF``: it is a scratch file that
  replaces the live one only after validation (and is fsynced then), so crash safety during the load buys nothing.
  Neither pragma is persistent, so the committed file is an ordinary rollback-journal database.
* The task code is shipped by value, so an executor needs pyarrow and the target's client (psycopg, PyMySQL,
  adbc-driver-sqlite), not synthdb, and a worker does not import synthdb's configuration stack.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from sqlalchemy.engine import make_url

from connectors.spark import _bulk
from connectors.staging import Staging
from schemas.errors import ConnectorError
from schemas.model import Column, DatabaseSchema, Table
from schemas.types import Family

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["MAX_PARTITIONS", "write_parquet_folder", "write_tables"]

logger = logging.getLogger(__name__)

MAX_PARTITIONS = 4
# Pragmas for the SQLite *staging* file only (see the module notes).
_SQLITE_LOAD_PRAGMAS = ("journal_mode=OFF", "synchronous=OFF")
_ERROR = re.compile(re.escape(_bulk.ERROR_MARK) + r"(.*)")


def write_tables(
    spark: SparkSession,
    parquet_dirs: Mapping[str, Path],
    schema: DatabaseSchema,
    order: list[str],
    staging: Staging,
    *,
    batch_rows: int = 65_536,
) -> dict[str, int]:
    """Append each table's Parquet shards into the staging area's (already created) tables.

    Args:
        spark: the session (see :func:`connectors.spark.session.get_spark`).
        parquet_dirs: per table, a folder of Parquet shards (or one Parquet file).
        schema: the database model; it decides the columns written and their target types.
        order: table names, parents before children (SQLite's single task writes them in this order). Excluded
            tables are skipped.
        staging: a prepared staging area; rows go to ``staging.staging_url``.
        batch_rows: rows per Arrow batch read, converted and sent (what bounds a task's memory).

    Returns:
        Rows written, per table.

    Raises:
        ConnectorError: when a table has no shards folder, a NOT NULL column is missing from its shards, or the
            database refuses the rows (the message names the table).
    """
    if batch_rows < 1:
        raise ConnectorError(f"batch_rows must be at least 1, got {batch_rows}")
    dialect = staging.dialect
    written: dict[str, int] = {}
    expected: dict[str, int] = {}
    tables: list[tuple[str, str, tuple[tuple[str, str, Any], ...], list[tuple[str, int, int]]]] = []
    for name in order:
        table = schema.table(name)
        if table.excluded:
            continue
        if name not in parquet_dirs:
            raise ConnectorError(
                f"table {name!r}: no generated Parquet folder was given; generate the table or exclude it"
            )
        files = _parquet_files(Path(parquet_dirs[name]))
        metas = [pq.read_metadata(f) for f in files]
        rows = sum(int(m.num_rows) for m in metas)
        written[name], expected[name] = 0, rows
        if rows == 0:
            logger.info("table %r: no rows to write", name)
            continue
        present = set(metas[0].schema.to_arrow_schema().names)
        columns = _columns_for_target(table, dialect, present)
        pieces = [
            (str(f), g, int(m.row_group(g).num_rows))
            for f, m in zip(files, metas, strict=True)
            for g in range(m.num_row_groups)
            if m.row_group(g).num_rows
        ]
        # ADBC's SQLite ingest quotes the name itself
        target = name if dialect == "sqlite" else _qualified(name, staging.staging_db_schema, dialect)
        tables.append((name, target, columns, pieces))
    if not tables:
        return written
    tasks = _assign(tables, 1 if dialect == "sqlite" else MAX_PARTITIONS)
    conn = _connection(staging)
    for name, rows in _run(spark, tasks, conn, batch_rows, dialect).items():
        written[name] += rows
    for name, rows in written.items():
        if rows != expected[name]:  # every task checks its own count; this catches a task that never reported
            raise ConnectorError(
                f"table {name!r}: {expected[name]} row(s) in the generated Parquet but {rows} written to the "
                f"{dialect} staging area"
            )
        logger.info("table %r: %d row(s) written", name, rows)
    return written


def _assign(
    tables: list[tuple[str, str, tuple[tuple[str, str, Any], ...], list[tuple[str, int, int]]]], most: int
) -> list[list[_bulk.TableJob]]:
    """Row groups spread over at most ``most`` tasks, fewest rows first; each task's jobs stay in table order."""
    n = max(1, min(most, sum(len(p) for *_, p in tables)))
    load = [0] * n
    shares: list[dict[str, list[tuple[str, int, int]]]] = [{} for _ in range(n)]
    for name, _, _, pieces in tables:
        for piece in sorted(pieces, key=lambda p: -p[2]):
            i = load.index(min(load))
            load[i] += piece[2]
            shares[i].setdefault(name, []).append(piece)
    tasks: list[list[_bulk.TableJob]] = []
    for share in shares:
        jobs = []
        for name, target, columns, _ in tables:
            mine = sorted(share.get(name, []))
            if not mine:
                continue
            by_file: dict[str, list[int]] = {}
            for path, group, _ in mine:
                by_file.setdefault(path, []).append(group)
            jobs.append(
                _bulk.TableJob(
                    table=name,
                    target=target,
                    columns=columns,
                    pieces=tuple((path, tuple(groups)) for path, groups in by_file.items()),
                    rows=sum(p[2] for p in mine),
                )
            )
        if jobs:
            tasks.append(jobs)
    return tasks


def _run(
    spark: SparkSession, tasks: list[list[_bulk.TableJob]], conn: _bulk.Connection, batch_rows: int, dialect: str
) -> dict[str, int]:
    """One Spark job, one partition per task; returns rows written per table."""
    from pyspark import cloudpickle

    # the task code travels by value: executors need pyarrow and the client library, not synthdb
    cloudpickle.register_pickle_by_value(_bulk)  # type: ignore[no-untyped-call]
    run_task = _bulk.run_task

    def run(batches: Any) -> Any:
        for batch in batches:
            for i in batch.column(0).to_pylist():
                yield from run_task(tasks[i], conn, batch_rows)

    n = len(tasks)
    try:
        result = spark.range(0, n, 1, n).mapInArrow(run, "table string, rows long").collect()
    except Exception as exc:  # noqa: BLE001 - Spark wraps the worker's exception in its own types
        names = ", ".join(dict.fromkeys(repr(j.table) for jobs in tasks for j in jobs))
        raise ConnectorError(_task_message(exc, names, dialect)) from None
    rows: dict[str, int] = {}
    for row in result:
        rows[row["table"]] = rows.get(row["table"], 0) + int(row["rows"])
    return rows


def _task_message(exc: BaseException, names: str, dialect: str) -> str:
    """The worker's own message (it names the table and the database's reason), or Spark's first line."""
    text = str(exc)
    match = _ERROR.search(text)
    if match:
        return match.group(1).strip()[:1000]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = next((line for line in reversed(lines) if "Error" in line or "Exception" in line), None)
    return f"table(s) {names}: the bulk write to the {dialect} staging area failed: {(reason or text)[:500]}"


def _connection(staging: Staging) -> _bulk.Connection:
    """The client arguments for the staging area (a password included: never logged)."""
    url = make_url(staging.staging_url)
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    dialect = staging.dialect
    if dialect == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConnectorError("a SQLite target must be a file (sqlite:///path/to/db.sqlite)")
        return _bulk.Connection(
            "sqlite", {"path": str(Path(url.database).absolute()), "pragmas": _SQLITE_LOAD_PRAGMAS}
        )
    params: dict[str, Any] = {"host": url.host or "localhost"}
    if url.port:
        params["port"] = int(url.port)
    if url.username:
        params["user"] = url.username
    if url.password is not None:
        params["password"] = str(url.password)
    if dialect == "postgresql":
        params["dbname"] = url.database
        params.update(query)  # libpq options (sslmode...) keep their names
        return _bulk.Connection("postgresql", params)
    params["database"] = url.database
    params["charset"] = "utf8mb4"  # the CSV and the LOAD DATA statement are UTF-8
    if "unix_socket" in query:
        params["unix_socket"] = query["unix_socket"]
    return _bulk.Connection("mysql", params)


def _columns_for_target(table: Table, dialect: str, present: set[str]) -> tuple[tuple[str, str, Any], ...]:
    columns = []
    for col in table.active_columns:
        if col.name not in present:
            if col.nullable or col.default is not None or col.autoincrement:
                continue  # the database fills it (NULL or its default)
            raise ConnectorError(
                f"table {table.name!r}, column {col.name!r}: NOT NULL in the target but missing from the generated "
                f"data (it has: {', '.join(sorted(present))}); regenerate, or make the column nullable"
            )
        op, arg = _conversion(col, dialect)
        columns.append((col.name, op, arg))
    return tuple(columns)


def _conversion(col: Column, dialect: str) -> tuple[str, Any]:
    """The conversion of :func:`connectors.spark._bulk.convert` that the column's target type needs."""
    st = col.sql_type
    f = st.family
    sqlite, pg, my = dialect == "sqlite", dialect == "postgresql", dialect == "mysql"
    if f is Family.INTEGER:
        return "int", st.int_bits
    if f is Family.FLOAT:
        return "float", 32 if st.name == "REAL" else 64
    if f is Family.DECIMAL:
        if st.precision is not None and st.precision <= 38:
            return ("decimal_text" if sqlite else "decimal"), (st.precision, st.scale or 0)
        return "wide_decimal_text", None  # wider than Arrow's decimal128: the value's text, as generated
    if f is Family.BOOLEAN:
        return ("bool_int" if my else "bool"), None
    if f is Family.DATE:
        return ("date_text" if sqlite else "date"), None
    if f is Family.TIME:
        return "time_text", None
    if f is Family.TIMESTAMP:
        return ("ts_text" if sqlite else "ts"), None
    if f is Family.TIMESTAMP_TZ:
        return ("tstz" if pg else "ts_text" if sqlite else "ts"), None
    if f is Family.BINARY:
        return ("binary_pg" if pg else "binary_hex" if my else "binary"), None
    if f is Family.INTERVAL:
        return ("interval_pg" if pg else "interval_us"), None
    if f is Family.BIT and my:
        return "bit_number", None
    # STRING, UUID, JSON, and the native-text families (ranges, arrays, addresses...): the server parses the text
    return "text", None


def warm_up_load(spark: SparkSession, tmp: Path) -> None:
    """Run a two-row load into a SQLite file under ``tmp`` (see :func:`connectors.spark.session._warm_up`)."""
    import sqlite3

    import pyarrow as pa

    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "s": ["a", None]}), tmp / "w.parquet")
    with sqlite3.connect(tmp / "w.sqlite") as con:
        con.execute("CREATE TABLE w (id INTEGER, s TEXT)")
    con.close()
    columns = (("id", "int", 64), ("s", "text", None))
    tasks = _assign([("w", "w", columns, [(str(tmp / "w.parquet"), 0, 2)])], 1)
    conn = _bulk.Connection("sqlite", {"path": str(tmp / "w.sqlite"), "pragmas": _SQLITE_LOAD_PRAGMAS})
    _run(spark, tasks, conn, 1024, "sqlite")


def write_parquet_folder(spark: SparkSession, parquet_dirs: Mapping[str, Path], out_dir: Path) -> dict[str, int]:
    """Write each table as a Parquet folder ``out_dir/<table>/``, replacing ``out_dir`` only when all succeeded.

    The tables are written into a hidden sibling folder first, which is then renamed into place; a previous
    ``out_dir`` is moved aside and deleted after the rename. A failure leaves ``out_dir`` as it was.

    Args:
        spark: the session.
        parquet_dirs: per table, a folder of Parquet shards (or one Parquet file).
        out_dir: the target folder.

    Returns:
        Rows written, per table.
    """
    out_dir = Path(out_dir).absolute()
    token = uuid.uuid4().hex[:8]
    tmp = out_dir.with_name(f".{out_dir.name}.synthdb-staging-{token}")
    old = out_dir.with_name(f".{out_dir.name}.synthdb-old-{token}")
    written: dict[str, int] = {}
    try:
        tmp.mkdir(parents=True)
        for name, src in parquet_dirs.items():
            if not name or os.sep in name or name in (".", ".."):
                raise ConnectorError(f"table {name!r} cannot be a folder name; rename the table for a folder target")
            rows = _parquet_rows(Path(src))
            if rows:
                spark.read.parquet(str(src)).write.mode("errorifexists").parquet(str(tmp / name))
            else:
                (tmp / name).mkdir()
            written[name] = rows
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    logger.info("wrote %d table(s) to %s", len(written), out_dir)
    return written


def _parquet_rows(path: Path) -> int:
    """Rows in a Parquet file or folder, from the footers only (no data is read)."""
    return _footer_rows(_parquet_files(path))


def _parquet_files(path: Path) -> list[Path]:
    """The data files of a Parquet file or folder (hidden and ``_``-prefixed files are not data, as for Spark)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConnectorError(f"Parquet folder {path} does not exist; run the generate stage first")
    return sorted(p for p in path.rglob("*.parquet") if not p.name.startswith((".", "_")))


def _footer_rows(files: list[Path]) -> int:
    return sum(int(pq.read_metadata(p).num_rows) for p in files)


def _qualified(table: str, db_schema: str | None, dialect: str) -> str:
    """The table as the ``COPY`` / ``LOAD DATA`` statement names it: quoted, per dialect, schema-qualified."""
    if dialect == "mysql":
        quoted = "`" + table.replace("`", "``") + "`"
        return f"`{db_schema.replace('`', '``')}`.{quoted}" if db_schema else quoted
    quoted = '"' + table.replace('"', '""') + '"'
    return f'"{db_schema.replace(chr(34), chr(34) * 2)}".{quoted}' if db_schema else quoted
