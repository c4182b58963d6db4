"""Stream SQL tables as typed Arrow record batches.

Every column's Arrow type is ``Column.sql_type.to_arrow()``: decimals are ``decimal128(p, s)``, dates
``date32``, timestamps microseconds (UTC for ``TIMESTAMP WITH TIME ZONE``), intervals ``duration[us]``, UUIDs
their canonical text, JSON compact JSON text, and ranges, arrays, network addresses, geometric values, bit
strings, XML and text-search vectors the database's own text literal (which it parses back on write). Drivers hand out different Python values for the same SQL type (SQLite keeps dates as text
and decimals as floats, PyMySQL gives ``TIME`` as a ``timedelta`` and booleans as 0/1), so each column goes
through one family-specific converter that works on a whole column of a chunk at once: a single ``pa.array``
call when the values already fit, a vectorised Arrow cast when they are text or numbers of another kind.

Where the engine has an Arrow driver (ADBC for SQLite and PostgreSQL, connectorx for MariaDB/MySQL, see
:mod:`.arrow_read`), the driver's record batches are streamed and cast column by column with Arrow kernels
(:func:`convert_array`): no Python object per value. Otherwise rows come through SQLAlchemy's server-side cursor
(``stream_results``/``yield_per``). Either way ``batch_rows`` rows at a time, so memory is bounded by the batch,
not the table, and the batches are the same, types and values. All identifiers are quoted by the dialect's preparer (SQLAlchemy Core
constructs), so reserved words (``order``), spaces (``full name``) and non-ASCII names (``café``) work.
"""

from __future__ import annotations

import decimal
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from schemas.errors import ConnectorError
from schemas.model import Column, Table
from schemas.types import NATIVE_TEXT_FAMILIES, Family, UnknownTypeError, parse_type

__all__ = [
    "Reader",
    "arrow_schema_of",
    "convert_array",
    "convert_batch",
    "convert_column",
    "sample_statement",
    "select_statement",
    "stream_batches",
]

logger = logging.getLogger(__name__)

Reader = Literal["auto", "arrow", "sqlalchemy"]

# BERNOULLI reads every block; above this many rows SYSTEM (whole random blocks) keeps sampling fast.
_PG_SYSTEM_SAMPLE_ROWS = 10_000_000
# TABLESAMPLE keeps each row with a probability; asking for a margin more makes a short sample unlikely.
_SAMPLE_MARGIN = 1.5


def arrow_schema_of(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of batches holding ``columns`` (types from ``Column.sql_type.to_arrow()``)."""
    return pa.schema([pa.field(c.name, c.sql_type.to_arrow(), nullable=c.nullable) for c in columns])


def _needs_text_cast(column: Column, dialect: str) -> bool:
    family = column.family
    if dialect == "postgresql" and family in (Family.UUID, Family.JSON):
        # psycopg would parse these into uuid.UUID / dict objects; the server's text form is cheaper and exact
        return True
    if family in NATIVE_TEXT_FAMILIES and not (family is Family.BIT and dialect in ("mysql", "mariadb")):
        # ranges, arrays, addresses, points...: the server's canonical literal, which it parses back on write
        return True
    if family is Family.STRING and column.native_type:
        # a type synthdb does not know (tsvector, int4range, inet...) is read as the database's text form
        try:
            return parse_type(column.native_type).family is not Family.STRING
        except UnknownTypeError:
            return True
    return False


def select_statement(table: Table, columns: Sequence[Column], dialect: str) -> sa.Select[Any]:
    """``SELECT`` of ``columns`` from ``table``, with the text casts some types need, identifiers quoted."""
    exprs: list[sa.ColumnElement[Any]] = []
    for col in columns:
        ref: sa.ColumnClause[Any] = sa.column(col.name)
        if dialect == "postgresql" and col.sql_type.name == "INET":
            # the type's output text ('10.0.0.1'); CAST(inet AS text) would add the netmask even to a host ('/32')
            exprs.append(sa.func.format("%s", ref).label(col.name))
        elif _needs_text_cast(col, dialect):
            exprs.append(sa.cast(ref, sa.Text()).label(col.name))
        elif col.family is Family.BIT and dialect in ("mysql", "mariadb"):
            # MariaDB hands BIT(n) out as bytes; '0101' text is the form PostgreSQL's bit(n) shares
            bits = col.sql_type.length or 1
            exprs.append(sa.func.lpad(sa.func.bin(ref), bits, "0").label(col.name))
        elif dialect == "postgresql" and (col.native_type or "").upper() == "MONEY":
            # psycopg gives money as locale text ('$12.50'); the server's numeric is exact
            exprs.append(sa.cast(ref, sa.Numeric()).label(col.name))
        else:
            exprs.append(ref)
    return sa.select(*exprs).select_from(sa.table(table.name, schema=table.db_schema))


def sample_statement(
    table: Table, columns: Sequence[Column], dialect: str, *, rows: int, seed: int, estimated_rows: int
) -> sa.Select[Any]:
    """A bounded random sample of about ``rows`` rows (never more), the same for a seed on unchanged data.

    - PostgreSQL: ``TABLESAMPLE BERNOULLI`` (``SYSTEM`` above 10 million rows) ``REPEATABLE (seed)``, asking
      for 50% more than needed, then ``LIMIT``: no sort, and ``SYSTEM`` reads only the sampled blocks.
    - MariaDB/MySQL: ``ORDER BY RAND(seed) LIMIT rows``: one scan with a top-k sort bounded by ``rows``.
    - SQLite: ``ORDER BY`` a seeded hash of ``rowid``, ``LIMIT rows`` (SQLite's ``random()`` takes no seed).

    The sample may be a little short of ``rows`` on PostgreSQL, by the chance of Bernoulli sampling.
    """
    base = select_statement(table, columns, dialect)
    if dialect == "postgresql":
        share = min(100.0, 100.0 * rows * _SAMPLE_MARGIN / max(estimated_rows, 1))
        method = sa.func.system if estimated_rows > _PG_SYSTEM_SAMPLE_ROWS else sa.func.bernoulli
        sampled = sa.tablesample(
            sa.table(table.name, schema=table.db_schema),
            method(share),
            name="synthdb_sample",
            seed=sa.literal(seed),
        )
        return sa.select(*base.selected_columns).select_from(sampled).limit(rows)
    if dialect in ("mysql", "mariadb"):
        return base.order_by(sa.func.rand(seed)).limit(rows)
    if dialect == "sqlite":
        # Park–Miller step then squaring modulo a prime: a cheap, seeded shuffle of the rowids
        mixed = f"((rowid * 48271 + {int(seed) % 2147483647} * 16807 + 12345) % 2147483647)"
        return base.order_by(sa.text(f"({mixed} * {mixed}) % 2147483647")).limit(rows)
    return base.order_by(sa.func.random()).limit(rows)


def stream_batches(
    engine: sa.Engine,
    statement: sa.Select[Any],
    table: Table,
    columns: Sequence[Column],
    *,
    batch_rows: int,
    reader: Reader = "auto",
) -> Iterator[pa.RecordBatch]:
    """Run ``statement`` and yield Arrow batches of ``batch_rows`` rows (the last one shorter), typed by ``columns``.

    Args:
        reader: ``auto`` reads through the engine's Arrow driver (ADBC for SQLite and PostgreSQL, connectorx for
            MariaDB/MySQL; see :mod:`.arrow_read`) where one is installed and takes the URL, else through
            SQLAlchemy's server-side cursor; ``arrow`` insists on the Arrow driver; ``sqlalchemy`` never uses it.

    Raises:
        ConnectorError: a value does not fit its column's type (the message names the table and column), or
            ``reader="arrow"`` and no Arrow driver serves the engine.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if reader not in ("auto", "arrow", "sqlalchemy"):
        raise ValueError(f"reader must be 'auto', 'arrow' or 'sqlalchemy', got {reader!r}")
    schema = arrow_schema_of(columns)
    dialect = engine.dialect.name
    done = 0
    if reader != "sqlalchemy":
        from connectors.sql.arrow_read import DriverTypeMismatch, open_arrow_reader, rechunk

        opened = open_arrow_reader(engine, statement, columns, batch_rows=batch_rows)
        if opened is None and reader == "arrow":
            raise ConnectorError(
                f"table {table.name!r}: no Arrow driver reads {dialect} here; install adbc-driver-sqlite, "
                "adbc-driver-postgresql or connectorx, or read through SQLAlchemy"
            )
        if opened is not None:
            try:
                with opened:
                    for raw in rechunk(iter(opened), batch_rows):
                        batch = convert_batch(raw, columns, schema, table=table.name, dialect=dialect)
                        yield batch
                        done += batch.num_rows
                return
            except DriverTypeMismatch as exc:
                # SQLite holds a value of another kind in a column (text in an INTEGER column...): SQLAlchemy's
                # per-value conversions decide on the rest, as they would have on the whole table
                logger.warning(
                    "table %r: the Arrow driver stopped after %d rows (%s); reading the rest through SQLAlchemy",
                    table.name,
                    done,
                    exc,
                )
            except (OSError, pa.ArrowException) as exc:
                message = f"table {table.name!r}: reading failed after {done:,} rows: {exc}"
                raise ConnectorError(message) from None
    yield from _sqlalchemy_batches(
        engine, statement, table, columns, schema, batch_rows=batch_rows, skip=done
    )


def _sqlalchemy_batches(
    engine: sa.Engine,
    statement: sa.Select[Any],
    table: Table,
    columns: Sequence[Column],
    schema: pa.Schema,
    *,
    batch_rows: int,
    skip: int = 0,
) -> Iterator[pa.RecordBatch]:
    """Rows through a server-side cursor, ``batch_rows`` at a time, after skipping the first ``skip`` rows.

    ``skip`` resumes a read the Arrow driver began: the same statement over an unchanged database returns its
    rows in the same order (SQLite's plan for a statement is fixed by the statement and the schema).
    """
    dialect = engine.dialect.name
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(statement)
        try:
            while True:
                chunk = result.fetchmany(batch_rows)
                if not chunk:
                    break
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                    if not chunk:
                        continue
                by_column = list(zip(*chunk, strict=True))
                arrays = [
                    convert_column(list(values), col, field.type, table=table.name, dialect=dialect)
                    for values, col, field in zip(by_column, columns, schema, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        finally:
            result.close()


def convert_batch(
    raw: pa.RecordBatch, columns: Sequence[Column], schema: pa.Schema, *, table: str, dialect: str = ""
) -> pa.RecordBatch:
    """A driver's Arrow batch (its columns in the order of ``columns``) cast to ``schema``."""
    arrays = [
        convert_array(raw.column(i), col, field.type, table=table, dialect=dialect)
        for i, (col, field) in enumerate(zip(columns, schema, strict=True))
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def convert_array(
    values: pa.Array, column: Column, target: pa.DataType, *, table: str, dialect: str = ""
) -> pa.Array:
    """Turn one column of a driver's Arrow batch into an Arrow array of type ``target``, vectorised.

    The casts are those :func:`convert_column` applies to Python values, on whole arrays. Where one does not fit
    (more decimal places than the column keeps, an offset-less ``TIMESTAMP WITH TIME ZONE``...), the column's
    values go through :func:`convert_column`, which converts them the same way as on the SQLAlchemy path or
    names the value that does not convert.

    Raises:
        ConnectorError: the values cannot be held by ``target``; names the table, column, type and a value.
    """
    if isinstance(values, pa.ExtensionArray):  # PostgreSQL's NUMERIC comes as an opaque type over its text
        values = values.storage
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        try:  # SQLite hands a BLOB in a text column over as text, whatever its bytes
            values.validate(full=True)
        except pa.ArrowInvalid:
            values = values.view(pa.large_binary() if pa.types.is_large_string(values.type) else pa.binary())
    family = column.family
    if family is not Family.JSON:  # JSON is re-serialised compactly value by value, as on the other path
        try:
            return _cast_array(values, family, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, OverflowError):
            pass
    return convert_column(values.to_pylist(), column, target, table=table, dialect=dialect)


def _cast_array(values: pa.Array, family: Family, target: pa.DataType) -> pa.Array:
    source = values.type
    if source == target:
        return values
    if family is Family.DECIMAL and pa.types.is_floating(source):
        # SQLite keeps NUMERIC as REAL: round to the declared scale before the exact decimal cast
        return pc.round(values.cast(pa.float64()), ndigits=target.scale).cast(target)
    if family is Family.FLOAT and source == pa.float32():
        # a float4 through the DB-API is its shortest text ('1.1'), not the widened binary (1.100000023841858)
        return values.cast(pa.string()).cast(target)
    if family is Family.INTERVAL and source == pa.month_day_nano_interval():
        return _interval_to_duration(values)
    if pa.types.is_string(source) or pa.types.is_large_string(source):
        if family is Family.TIMESTAMP_TZ:
            try:
                return values.cast(target)
            except pa.ArrowInvalid:  # no offset in the text: it is UTC wall time
                return values.cast(pa.timestamp("us")).cast(target)
        if family is Family.TIME:  # 'HH:MM:SS[.ffffff]': parse as a time on 1970-01-01
            text = pc.binary_join_element_wise("1970-01-01 ", values, "")
            return text.cast(pa.timestamp("us")).cast(pa.int64()).cast(target)
    return values.cast(target)


def _interval_to_duration(values: pa.Array) -> pa.Array:
    """PostgreSQL intervals as microseconds, a month counted as psycopg counts it (30 days, a year 365 days)."""
    import numpy as np

    layout = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])
    raw = np.frombuffer(values.buffers()[1], dtype=layout, count=values.offset + len(values))[values.offset :]
    months = raw["months"].astype(np.int64)
    whole = np.abs(months)
    days = np.sign(months) * ((whole // 12) * 365 + (whole % 12) * 30) + raw["days"]
    micros = days * 86_400_000_000 + raw["nanos"] // 1000
    mask = values.is_null().to_numpy(zero_copy_only=False)
    return pa.array(micros, type=pa.int64(), mask=mask).cast(pa.duration("us"))


def convert_column(
    values: list[Any], column: Column, target: pa.DataType, *, table: str, dialect: str = ""
) -> pa.Array:
    """Turn one column of driver values into an Arrow array of type ``target``.

    Raises:
        ConnectorError: the values cannot be held by ``target``; names the table, column, type and a value.
    """
    family = column.family
    try:
        if family is Family.JSON:
            return pa.array([_compact_json(v) for v in values], type=target)
        try:
            return pa.array(values, type=target, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return _convert_slow(values, family, target, column)
    except (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
        TypeError,
        ValueError,
        OverflowError,
        decimal.InvalidOperation,
    ) as exc:
        sample = next((v for v in values if v is not None), None)
        raise ConnectorError(
            f"table {table!r}, column {column.name!r}: expected values of type {column.type} "
            f"(Arrow {target}), found {type(sample).__name__} {sample!r:.80} that does not convert ({exc}). "
            "Fix the column's type in "
            "the schema file, or exclude the column"
        ) from None


def _convert_slow(values: list[Any], family: Family, target: pa.DataType, column: Column) -> pa.Array:
    """The conversions for values a driver gives in another form than the type (text, ints, timedelta...)."""
    first = next((v for v in values if v is not None), None)
    if family is Family.BOOLEAN:  # 0/1 integers (MariaDB TINYINT(1), SQLite), or 't'/'f' text
        if isinstance(first, str):
            return pa.array(values, type=pa.string()).cast(target)
        if isinstance(first, (bytes, bytearray)):  # MariaDB BIT(1) through PyMySQL: b'\x01'
            return pa.array([None if v is None else int.from_bytes(v, "big") != 0 for v in values], type=target)
        return pa.array([None if v is None else int(v) for v in values], type=pa.int64()).cast(target)
    if family is Family.DECIMAL:
        if isinstance(first, (float, int)) and not isinstance(first, bool):
            # SQLite keeps NUMERIC as REAL: round to the declared scale before the exact decimal cast
            floats = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
            return pc.round(floats, ndigits=target.scale).cast(target)
        quantum = decimal.Decimal(1).scaleb(-target.scale)
        return pa.array(
            [
                None
                if v is None
                else decimal.Decimal(str(v)).quantize(quantum, rounding=decimal.ROUND_HALF_EVEN)
                for v in values
            ],
            type=target,
        )
    if family in (Family.DATE, Family.TIMESTAMP, Family.TIMESTAMP_TZ):
        if isinstance(first, str):  # SQLite stores ISO-8601 text
            text = pa.array(values, type=pa.string())
            if family is Family.TIMESTAMP_TZ:
                try:
                    return text.cast(target)
                except pa.ArrowInvalid:  # no offset in the text: it is UTC wall time
                    return text.cast(pa.timestamp("us")).cast(target)
            return text.cast(target)
        if family is Family.DATE:  # datetimes in a DATE column (some drivers)
            return pa.array(values, type=pa.timestamp("us")).cast(target)
        return pa.array(values).cast(target)
    if family is Family.TIME:
        if isinstance(first, str):  # 'HH:MM:SS[.ffffff]': parse as a time on 1970-01-01
            text = pc.binary_join_element_wise("1970-01-01 ", pa.array(values, type=pa.string()), "")
            micros = text.cast(pa.timestamp("us")).cast(pa.int64())
            return micros.cast(target)
        # PyMySQL returns TIME as a timedelta since midnight
        return pa.array(values, type=pa.duration("us")).cast(pa.int64()).cast(target)
    if family is Family.BINARY:
        return pa.array(
            [None if v is None else (v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in values],
            type=target,
        )
    if family in (Family.STRING, Family.UUID):
        return pa.array(
            [
                None if v is None else (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                for v in values
            ],
            type=target,
        )
    if family is Family.FLOAT:
        return pa.array([None if v is None else float(v) for v in values], type=target)
    if family is Family.INTEGER:
        if isinstance(first, str):
            return pa.array(values, type=pa.string()).cast(target)
        return pa.array(values).cast(target)
    return pa.array(values).cast(target)


def _compact_json(value: Any) -> str | None:
    """JSON as compact text, whatever the database stored (text with spaces, JSONB, a parsed value)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        raw: str = value
        try:
            value = json.loads(raw)
        except ValueError:
            return raw  # not valid JSON (SQLite does not check): keep the text rather than lose the value
    text: str = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text
