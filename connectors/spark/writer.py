"""Spark loads generated Parquet shards into a target: JDBC into a staging area, or a Parquet folder.

Each table is read from its Parquet shards, its columns are cast to what the JDBC driver and the target column need,
and it is appended (never overwritten: ``overwrite`` drops and recreates the table, losing its keys) into the
tables that :meth:`connectors.staging.Staging.prepare` created, parents before children.

Type care, per target:

* UUID and JSON travel as text. PostgreSQL gets ``stringtype=unspecified`` so the server casts that text into
  ``uuid``/``jsonb`` columns itself; the same holds for ranges, arrays, network addresses, geometric values, bit
  strings, XML and text-search vectors, whose values are the database's own literals (``[1,5)``, ``{1,2}``...).
* Intervals are microseconds in the shards. PostgreSQL gets ``'<n> microseconds'`` text, which it parses into its
  ``interval`` column; other targets hold the microseconds in a ``BIGINT``.
* BIT(n) values are ``'0101'`` text; MariaDB gets their number (it would store a string's bytes, not its bits).
* Timestamps are UTC instants: the session and the JVM run in UTC (:mod:`connectors.spark.session`), so
  ``TIMESTAMP WITH TIME ZONE`` keeps the instant and naive timestamps keep their wall-clock value.
* SQLite stores what the driver binds, and sqlite-jdbc binds dates and timestamps as epoch milliseconds. They are
  written as text in SQLAlchemy's SQLite format (``YYYY-MM-DD HH:MM:SS.ffffff``) instead, which every reader of the
  file (SQLAlchemy, the validation suite) understands and which keeps microseconds.
* Times (read with ``spark.sql.timeType.enabled``) are written as ``HH:MM:SS.ffffff`` text, which every target
  casts on insert.
* Decimals are cast to the column's ``DECIMAL(p, s)``, so a float in the shards cannot reach the target unrounded.

SQLite takes one writer at a time, so its data goes through one partition; PostgreSQL and MariaDB get up to
:data:`MAX_PARTITIONS` concurrent connections, each inserting in batches of ``batch_rows``.

Speed (measured in ``benchmarks/README.md``): on the demo the stage is dominated by the JVM's start and first-job
warm-up, not by the inserts (337k flights insert in 2.5-3.5 s once warm). What the writer does to keep the rest cheap:

* Row counts come from the Parquet footers; no Spark ``count()`` job runs per table.
* Each table is read once and cast in the same projection; the partition count comes from the number of Parquet
  files, not from ``df.rdd`` (which plans the query a second time through the RDD API).
* The SQLite staging file is opened with ``journal_mode=OFF`` and ``synchronous=OFF``: it is a scratch file that
  replaces the live one only after validation (and is fsynced then), so crash safety during the load buys nothing.
  Neither pragma is persistent, so the committed file is an ordinary rollback-journal database.
* Each partition is one transaction (Spark's default isolation level). ``isolationLevel=NONE`` would make every
  SQLite insert its own transaction: 2.6x slower, measured.
* PostgreSQL gets ``reWriteBatchedInserts`` (multi-row ``INSERT``), MariaDB ``rewriteBatchedStatements``.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from connectors.spark.session import jdbc_url
from connectors.staging import Staging
from schemas.errors import ConnectorError
from schemas.model import Column, DatabaseSchema, Table
from schemas.types import Family

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType as SparkDataType

__all__ = ["MAX_PARTITIONS", "write_parquet_folder", "write_tables"]

logger = logging.getLogger(__name__)

MAX_PARTITIONS = 4
_SQLITE_TS = "yyyy-MM-dd HH:mm:ss.SSSSSS"
# Pragmas for the SQLite *staging* file only (the xerial driver reads them from the JDBC URL; see the module notes).
_SQLITE_LOAD_PRAGMAS = "journal_mode=OFF&synchronous=OFF"


def write_tables(
    spark: SparkSession,
    parquet_dirs: Mapping[str, Path],
    schema: DatabaseSchema,
    order: list[str],
    staging: Staging,
    *,
    batch_rows: int = 10_000,
) -> dict[str, int]:
    """Append each table's Parquet shards into the staging area's (already created) tables, in ``order``.

    Args:
        spark: the session (see :func:`connectors.spark.session.get_spark`).
        parquet_dirs: per table, a folder of Parquet shards (or one Parquet file).
        schema: the database model; it decides the columns written and their target types.
        order: table names, parents before children. Excluded tables are skipped.
        staging: a prepared staging area; rows go to ``staging.staging_url``.
        batch_rows: rows per JDBC batch.

    Returns:
        Rows written, per table.

    Raises:
        ConnectorError: when a table has no shards folder, a NOT NULL column is missing from its shards, or the
            database refuses the rows (the message names the table).
    """
    if batch_rows < 1:
        raise ConnectorError(f"batch_rows must be at least 1, got {batch_rows}")
    url, props = jdbc_url(staging.staging_url)
    dialect = staging.dialect
    if dialect == "sqlite":
        url = f"{url}{'&' if '?' in url else '?'}{_SQLITE_LOAD_PRAGMAS}"
    elif dialect == "postgresql":
        props["stringtype"] = "unspecified"  # text into uuid/jsonb/time columns: the server casts
        props["reWriteBatchedInserts"] = "true"
    elif dialect == "mysql":
        props["rewriteBatchedStatements"] = "true"
    written: dict[str, int] = {}
    for name in order:
        table = schema.table(name)
        if table.excluded:
            continue
        if name not in parquet_dirs:
            raise ConnectorError(
                f"table {name!r}: no generated Parquet folder was given; generate the table or exclude it"
            )
        path = Path(parquet_dirs[name])
        files = _parquet_files(path)
        rows = _footer_rows(files)
        if rows == 0:
            logger.info("table %r: no rows to write", name)
            written[name] = 0
            continue
        df = _cast_for_target(spark.read.parquet(str(path)), table, dialect)
        # Spark reads at least one partition per file; more connections than files (or than MAX_PARTITIONS) would
        # only add connection set-up, and SQLite takes a single writer.
        partitions = 1 if dialect == "sqlite" else min(MAX_PARTITIONS, len(files))
        df = df.coalesce(partitions)
        writer = (
            df.write.format("jdbc")
            .mode("append")
            .option("url", url)
            .option("dbtable", _qualified(name, staging.staging_db_schema, dialect))
            .option("batchsize", str(batch_rows))
            .option("numPartitions", str(partitions))
            .options(**props)
        )
        try:
            writer.save()
        except Exception as exc:  # noqa: BLE001 - py4j wraps the driver's SQLException
            raise ConnectorError(
                f"table {name!r}: writing {rows} row(s) to the {dialect} staging area failed: {_java_message(exc)}"
            ) from None
        written[name] = rows
        logger.info("table %r: %d row(s) written", name, rows)
    return written


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


def _cast_for_target(df: DataFrame, table: Table, dialect: str) -> DataFrame:
    present = set(df.columns)
    selected: list[SparkColumn] = []
    for col in table.active_columns:
        if col.name not in present:
            if col.nullable or col.default is not None or col.autoincrement:
                continue  # the database fills it (NULL or its default)
            raise ConnectorError(
                f"table {table.name!r}, column {col.name!r}: NOT NULL in the target but missing from the generated "
                f"data (it has: {', '.join(sorted(present))}); regenerate, or make the column nullable"
            )
        selected.append(_cast(col, dialect, df.schema[col.name].dataType).alias(col.name))
    return df.select(*selected)


def _cast(col: Column, dialect: str, source: SparkDataType) -> SparkColumn:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    c = F.col(_bt(col.name))
    st = col.sql_type
    f = st.family
    if f is Family.INTEGER:
        target: T.DataType = {16: T.ShortType(), 32: T.IntegerType()}.get(st.int_bits, T.LongType())
        return c.cast(target)
    if f is Family.FLOAT:
        return c.cast(T.FloatType() if st.name == "REAL" else T.DoubleType())
    if f is Family.DECIMAL:
        if st.precision is not None and st.precision <= 38:
            return c.cast(T.DecimalType(st.precision, st.scale or 0))
        return c  # wider than Spark's decimals: leave as generated
    if f is Family.BOOLEAN:
        return c.cast(T.BooleanType())
    if f is Family.DATE:
        return F.date_format(c, "yyyy-MM-dd") if dialect == "sqlite" else c.cast(T.DateType())
    if f is Family.TIME:
        return _time_text(c, source)
    if f is Family.TIMESTAMP:
        if dialect == "sqlite":
            return F.date_format(c, _SQLITE_TS)
        return c.cast(T.TimestampNTZType())
    if f is Family.TIMESTAMP_TZ:
        if dialect == "sqlite":
            return F.date_format(c, _SQLITE_TS)  # in the session time zone: UTC
        return c.cast(T.TimestampType())
    if f is Family.BINARY:
        return c.cast(T.BinaryType())
    if f is Family.INTERVAL:
        micros = _interval_micros(c, source)
        if dialect == "postgresql":
            # '<n> microseconds' is interval input text; stringtype=unspecified lets the server parse it
            return F.when(micros.isNull(), F.lit(None).cast("string")).otherwise(
                F.concat(micros.cast("string"), F.lit(" microseconds"))
            )
        return micros  # BIGINT microseconds elsewhere (see connectors.sql.ddl)
    if f is Family.BIT and dialect == "mysql":
        # MariaDB reads a string into BIT(n) as its bytes; the bits' number is what it parses as bits
        return F.conv(c, 2, 10).cast(T.DecimalType(20, 0))
    # STRING, UUID, JSON, and the native-text families (ranges, arrays, addresses...): the server parses the text
    return c.cast(T.StringType())


def _interval_micros(c: SparkColumn, source: SparkDataType) -> SparkColumn:
    """Microseconds of a duration: Parquet's ``duration[us]`` reads as a long, or as a Spark day-time interval."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(source, T.DayTimeIntervalType):
        seconds = F.extract(F.lit("SECOND"), c)  # seconds with microseconds, within the minute
        whole = (
            F.extract(F.lit("DAY"), c).cast("long") * 86_400
            + F.extract(F.lit("HOUR"), c).cast("long") * 3_600
            + F.extract(F.lit("MINUTE"), c).cast("long") * 60
        )
        return whole * 1_000_000 + (seconds * 1_000_000).cast("long")
    return c.cast(T.LongType())


def _time_text(c: SparkColumn, source: SparkDataType) -> SparkColumn:
    """``HH:MM:SS.ffffff`` text from a Spark TIME, text, or microseconds since midnight."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(source, T.StringType):
        return c
    if isinstance(source, T.IntegralType):
        return F.when(c.isNull(), F.lit(None).cast("string")).otherwise(
            F.format_string(
                "%02d:%02d:%02d.%06d",
                (c / 3_600_000_000).cast("int"),
                ((c / 60_000_000) % 60).cast("int"),
                ((c / 1_000_000) % 60).cast("int"),
                (c % 1_000_000).cast("int"),
            )
        )
    return F.date_format(c, "HH:mm:ss.SSSSSS")


def _bt(name: str) -> str:
    """A column name as Spark SQL reads it: backticks, so spaces, dots and non-ASCII survive."""
    return "`" + name.replace("`", "``") + "`"


def _qualified(table: str, db_schema: str | None, dialect: str) -> str:
    """The ``dbtable`` option: Spark puts it into its SQL verbatim, so it is quoted here, per dialect."""
    if dialect == "mysql":
        quoted = "`" + table.replace("`", "``") + "`"
        return f"`{db_schema.replace('`', '``')}`.{quoted}" if db_schema else quoted
    quoted = '"' + table.replace('"', '""') + '"'
    return f'"{db_schema.replace(chr(34), chr(34) * 2)}".{quoted}' if db_schema else quoted


def _java_message(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if "Exception:" in line or "ERROR" in line:
            return line[:500]
    return (text.strip().splitlines() or [type(exc).__name__])[0][:500]
