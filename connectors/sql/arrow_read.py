"""Arrow-native reads: the database's driver fills Arrow buffers itself, no Python object per value.

- SQLite and PostgreSQL: ADBC (``adbc-driver-sqlite``, ``adbc-driver-postgresql``; PostgreSQL's driver reads
  through ``COPY ... TO STDOUT (FORMAT binary)``).
- MariaDB/MySQL: connectorx (``return_type="arrow_stream"``), which reads the binary protocol in Rust.

:func:`open_arrow_reader` gives the driver's raw batches of a statement (the driver's own Arrow types: SQLite's
dates are text, PostgreSQL's NUMERIC opaque text, INTERVAL ``month_day_nano``...), or None when no such driver
serves the engine (not installed, an in-memory SQLite, a URL option the driver cannot take): the caller then reads
through SQLAlchemy. :mod:`connectors.sql.read` casts the batches to the schema's types and re-chunks them.

SQLite's driver infers each column's Arrow type from its first batch and refuses a later value of another kind
(``Type mismatch``). So when the first batch's types are not the kinds of value the columns should hold (an
all-NULL text column comes as int64, a DECIMAL column's first values all integers), the query runs again behind one
typed row (``0``, ``0.0``, ``''``, ``x''``), dropped on reading, which sets those types; integers in a REAL or
DECIMAL column then come as doubles. A value of another kind still stops the driver
(:class:`DriverTypeMismatch`), where the caller goes on through SQLAlchemy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL

from schemas.model import Column
from schemas.types import Family

__all__ = ["ArrowReader", "DriverTypeMismatch", "open_arrow_reader", "rechunk"]

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10
# Above 2**53 a double no longer holds every integer: a wider DECIMAL keeps SQLite's integers as integers.
_EXACT_DOUBLE_DIGITS = 15


class DriverTypeMismatch(Exception):
    """SQLite's driver met a value of another kind than the one it inferred for a column."""


class ArrowReader:
    """The driver's batches of one statement; a context manager that closes the cursor and the connection."""

    def __init__(
        self,
        batches: pa.RecordBatchReader,
        closers: Sequence[Any],
        *,
        skip_first_row: bool,
        first: pa.RecordBatch | None = None,
    ) -> None:
        self._reader = batches
        self._closers = list(closers)
        self._skip_first_row = skip_first_row
        self._first = first

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        skip = self._skip_first_row
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:
                if "type mismatch" in str(exc).lower():
                    raise DriverTypeMismatch(str(exc)) from None
                raise
            if skip and batch.num_rows:
                batch, skip = batch.slice(1), False
            if batch.num_rows:
                yield batch

    def close(self) -> None:
        for closer in self._closers:  # reader, cursor, then connection: ADBC refuses another order
            try:
                closer.close()
            except Exception:
                logger.debug("closing an Arrow reader failed", exc_info=True)
        self._closers = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_arrow_reader(
    engine: sa.Engine, statement: sa.Select[Any], columns: Sequence[Column], *, batch_rows: int
) -> ArrowReader | None:
    """Run ``statement`` through the engine's Arrow driver; None when there is none for this engine."""
    backend = engine.dialect.name
    try:
        if backend == "sqlite":
            return _open_sqlite(engine, statement, columns, batch_rows)
        if backend == "postgresql":
            return _open_postgres(engine, statement, batch_rows)
        if backend in ("mysql", "mariadb"):
            return _open_mysql(engine, statement, batch_rows)
    except ImportError:
        logger.debug("no Arrow driver installed for %s: reading through SQLAlchemy", backend)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy reads what the driver cannot; a bad query fails there
        logger.warning(
            "the Arrow driver for %s could not run the query (%s: %s): reading through SQLAlchemy",
            backend,
            type(exc).__name__,
            _scrub(str(exc), engine.url),
        )
    return None


def _scrub(text: str, url: URL) -> str:
    text = " ".join(text.split())[:300]
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


def rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last one shorter), from batches of any size."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == rows:
                yield _concat(pending)
                pending, held = [], 0
    if held:
        yield _concat(pending)


def _concat(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    return pa.Table.from_batches(parts).combine_chunks().to_batches()[0]


def _compiled(statement: sa.Select[Any], dialect: sa.Dialect) -> str:
    """The statement as one SQL string with its few bound values inlined (seeds, limits, format strings)."""
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# --- SQLite ---------------------------------------------------------------------------------------------------


def _sqlite_probe(column: Column) -> str | None:
    """A literal of the kind of value SQLite's driver should see for ``column`` (None: no kind fits)."""
    from connectors.sql.read import _needs_text_cast

    family = column.family
    if _needs_text_cast(column, "sqlite"):
        return "''"
    if family in (Family.INTEGER, Family.BOOLEAN):
        return "0"
    if family is Family.FLOAT:
        return "0.0"
    if family is Family.DECIMAL:
        precision = column.sql_type.precision or 38
        return "0.0" if precision <= _EXACT_DOUBLE_DIGITS else "0"
    if family in (
        Family.STRING,
        Family.UUID,
        Family.JSON,
        Family.DATE,
        Family.TIME,
        Family.TIMESTAMP,
        Family.TIMESTAMP_TZ,
    ):
        return "''"
    if family is Family.BINARY:
        return "x''"
    return None


_PROBE_TYPES = {"0": pa.int64(), "0.0": pa.float64(), "''": pa.string(), "x''": pa.binary()}


def _open_sqlite(
    engine: sa.Engine, statement: sa.Select[Any], columns: Sequence[Column], batch_rows: int
) -> ArrowReader | None:
    database = engine.url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or engine.url.query:
        return None  # an in-memory database is private to SQLAlchemy's connection; URI options stay with it
    probes = [_sqlite_probe(c) for c in columns]
    if any(p is None for p in probes):
        return None
    import adbc_driver_sqlite.dbapi

    sql = _compiled(statement, engine.dialect)
    conn = adbc_driver_sqlite.dbapi.connect(database)
    try:
        # Most tables hold one kind of value per column, which the first batch shows: read them as they are
        # (the batches then line up with batch_rows, no copy). Else read again behind the typed first row.
        reader, cursor = _sqlite_query(conn, sql, batch_rows)
        try:
            first: pa.RecordBatch | None = reader.read_next_batch()
        except StopIteration:
            first = None
        except (OSError, pa.ArrowException):
            first = None  # a mismatch inside the first batch: the typed row decides below
            reader.close()
            cursor.close()
            reader = None
        expected = [_PROBE_TYPES[p] for p in probes if p is not None]
        if reader is not None and (first is None or list(first.schema.types) == expected):
            return ArrowReader(reader, [reader, cursor, conn], skip_first_row=False, first=first)
        if reader is not None:
            reader.close()
            cursor.close()
        preparer = engine.dialect.identifier_preparer
        typed_row = ", ".join(f"{p} AS {preparer.quote(c.name)}" for p, c in zip(probes, columns, strict=True))
        typed_sql = f"SELECT {typed_row} UNION ALL SELECT * FROM ({sql})"
        reader, cursor = _sqlite_query(conn, typed_sql, batch_rows)
    except BaseException:
        conn.close()
        raise
    return ArrowReader(reader, [reader, cursor, conn], skip_first_row=True)


def _sqlite_query(conn: Any, sql: str, batch_rows: int) -> tuple[pa.RecordBatchReader, Any]:
    cursor = conn.cursor()
    try:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        cursor.execute(sql)
        return cursor.fetch_record_batch(), cursor
    except BaseException:
        cursor.close()
        raise


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def _libpq_uri(url: URL) -> str:
    query = dict(url.query)
    query.setdefault("connect_timeout", str(_CONNECT_TIMEOUT_S))
    plain = url.set(drivername="postgresql", query=query)
    return plain.render_as_string(hide_password=False)


def _open_postgres(engine: sa.Engine, statement: sa.Select[Any], batch_rows: int) -> ArrowReader | None:
    import adbc_driver_postgresql.dbapi
    from sqlalchemy.dialects import postgresql

    # a dialect without psycopg's %-placeholders, so '%s' in format() stays as written
    sql = _compiled(statement, postgresql.dialect(paramstyle="named"))  # type: ignore[no-untyped-call]
    conn = adbc_driver_postgresql.dbapi.connect(_libpq_uri(engine.url))
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        reader = cursor.fetch_record_batch()
    except BaseException:
        cursor.close()
        conn.close()
        raise
    return ArrowReader(reader, [reader, cursor, conn], skip_first_row=False)


# --- MariaDB / MySQL ------------------------------------------------------------------------------------------


def _open_mysql(engine: sa.Engine, statement: sa.Select[Any], batch_rows: int) -> ArrowReader | None:
    import connectorx
    from sqlalchemy.dialects import mysql

    url = engine.url
    if set(url.query) - {"charset"}:
        return None  # ssl and other options are PyMySQL's; connectorx's URL would refuse or ignore them
    if url.query.get("charset", "utf8mb4") not in ("utf8mb4", "utf8"):
        return None
    plain = url.set(drivername="mysql", query={}).render_as_string(hide_password=False)
    sql = _compiled(statement, mysql.dialect(paramstyle="named"))
    reader = connectorx.read_sql(plain, sql, return_type="arrow_stream", batch_size=batch_rows)
    return ArrowReader(reader, [reader], skip_first_row=False)
