"""The executor side of the bulk writer: one Spark task streams its Parquet pieces into the target, Arrow-native.

This module runs inside Spark's Python workers. :mod:`connectors.spark.writer` ships it by value
(``cloudpickle.register_pickle_by_value``), so an executor needs pyarrow and the target's client library, not
synthdb; it must therefore import nothing from synthdb. Its inputs are plain data: :class:`TableJob` (the table's
target name, its column conversions, the Parquet pieces of this task) and a connection description.

Per target (see the writer's module docstring for why):

* PostgreSQL: one ``COPY ... FROM STDIN (FORMAT csv)`` per table and task through psycopg 3, fed with CSV that
  Arrow's C++ writer renders batch by batch; the server parses every field with the column type's input function.
* MariaDB: ``LOAD DATA LOCAL INFILE`` from a per-chunk CSV file; binary and BIT columns go through user variables
  and a ``SET`` expression. With ``LOCAL`` the server turns duplicate keys and bad values into warnings, so every
  chunk's row count and warnings are checked and any of them fails the task. A server that refuses local files
  gets multi-row ``INSERT`` batches instead.
* SQLite: ADBC's ``adbc_ingest`` (append) in one transaction, on one connection.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# Marks this module's errors in the text Spark hands back (a Python traceback), so the driver can find them.
ERROR_MARK = "synthdb-bulk-write-error: "
# LOAD DATA chunks: rows per temporary CSV file (on disk; the memory bound is still one Arrow batch).
_MARIADB_CHUNK_ROWS = 200_000
_HEX = [f"{i:02x}".encode() for i in range(256)]


class BulkWriteError(Exception):
    """A table's rows could not be written; the message names the table and carries the database's reason."""


@dataclass(frozen=True)
class TableJob:
    """One table's share of one task.

    Attributes:
        table: the table's name (for messages and SQLite's ingest).
        target: the target table as the dialect's SQL names it (quoted, schema-qualified where needed).
        columns: per written column ``(name, op, arg)``; ``op`` is one of the conversions of :func:`convert`.
        pieces: ``(parquet file, row groups)`` to read, in order.
        rows: rows in those pieces (from the footers).
    """

    table: str
    target: str
    columns: tuple[tuple[str, str, Any], ...]
    pieces: tuple[tuple[str, tuple[int, ...]], ...]
    rows: int


@dataclass(frozen=True)
class Connection:
    """Where a task writes: ``dialect`` plus the client's keyword arguments (a password included: never log it)."""

    dialect: str
    params: dict[str, Any] = field(default_factory=dict)


def run_task(jobs: list[TableJob], conn: Connection, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Write every job of one task in one connection and one transaction; yields ``(table, rows)`` per job."""
    try:
        sink = _SINKS[conn.dialect](conn.params)
    except Exception as exc:  # noqa: BLE001 - each client raises its own types
        names = ", ".join(repr(job.table) for job in jobs)
        raise BulkWriteError(
            f"{ERROR_MARK}table(s) {names}: connecting to the {conn.dialect} staging area failed: {_first_line(exc)}"
        ) from None
    done: list[tuple[str, int]] = []
    try:
        for job in jobs:
            try:
                n = sink.write(job, _batches(job, batch_rows))
            except BulkWriteError:
                raise
            except Exception as exc:  # noqa: BLE001 - each client raises its own types
                raise BulkWriteError(
                    f"{ERROR_MARK}table {job.table!r}: writing {job.rows} row(s) to the {conn.dialect} "
                    f"staging area failed: {_first_line(exc)}"
                ) from None
            if n != job.rows:
                raise BulkWriteError(
                    f"{ERROR_MARK}table {job.table!r}: {job.rows} row(s) were read but {n} written to the "
                    f"{conn.dialect} staging area"
                )
            done.append((job.table, n))
        sink.commit()
    finally:
        sink.close()
    if done:
        yield pa.RecordBatch.from_pydict(
            {"table": [t for t, _ in done], "rows": [n for _, n in done]},
            schema=pa.schema([("table", pa.string()), ("rows", pa.int64())]),
        )


def _batches(job: TableJob, batch_rows: int) -> Iterator[pa.RecordBatch]:
    names = [c[0] for c in job.columns]
    for path, groups in job.pieces:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=list(groups), columns=names):
            if batch.num_rows:
                yield convert(batch, job)


# ------------------------------------------------------------------------------------------------ conversions


def convert(batch: pa.RecordBatch, job: TableJob) -> pa.RecordBatch:
    """The batch's columns as the target takes them (the per-type rules of the writer's module docstring)."""
    arrays = []
    for name, op, arg in job.columns:
        try:
            arrays.append(_convert(batch.column(name), op, arg))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise BulkWriteError(
                f"{ERROR_MARK}table {job.table!r}, column {name!r}: the generated values do not convert to the "
                f"target column ({op}): {_first_line(exc)}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, names=[c[0] for c in job.columns])


def _convert(a: pa.Array, op: str, arg: Any) -> pa.Array:
    t = a.type
    if pa.types.is_dictionary(t):
        a = a.dictionary_decode()
        t = a.type
    if op == "int":
        if pa.types.is_floating(t):
            a = pc.trunc(a)
        return a.cast({16: pa.int16(), 32: pa.int32()}.get(arg, pa.int64()))
    if op == "float":
        return a.cast(pa.float32() if arg == 32 else pa.float64())
    if op in ("decimal", "decimal_text"):
        precision, scale = arg
        if pa.types.is_decimal(t) and t.scale > scale or pa.types.is_floating(t):
            a = pc.round(a, scale, round_mode="half_towards_infinity")
        a = a.cast(pa.decimal128(precision, scale))
        return a.cast(pa.string()) if op == "decimal_text" else a
    if op == "wide_decimal_text":
        return a.cast(pa.string())
    if op == "bool":
        return a.cast(pa.bool_())
    if op == "bool_int":
        return a.cast(pa.bool_()).cast(pa.int8())
    if op in ("date", "date_text"):
        a = a.cast(pa.date32(), safe=False)
        return a.cast(pa.string()) if op == "date_text" else a
    if op == "time_text":
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return a.cast(pa.string())
        if pa.types.is_integer(t):
            a = a.cast(pa.int64()).cast(pa.time64("us"))
        return a.cast(pa.time64("us"), safe=False).cast(pa.string())
    if op in ("ts", "ts_text", "tstz"):
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_date(t):
            a = a.cast(pa.timestamp("us"))
        # a zoned instant's UTC wall clock, or a naive value taken as UTC (the session time zone of the writer)
        a = a.cast(pa.timestamp("us", tz="UTC" if op == "tstz" else None), safe=False)
        return a.cast(pa.string()) if op == "ts_text" else a
    if op == "binary":
        return a.cast(pa.binary())
    if op == "binary_hex":
        return _hex(a.cast(pa.binary()))
    if op == "binary_pg":
        return pc.binary_join_element_wise("\\x", _hex(a.cast(pa.binary())), "")
    if op in ("interval_us", "interval_pg"):
        if pa.types.is_duration(t):
            a = a.cast(pa.duration("us"), safe=False)
        a = a.cast(pa.int64())
        if op == "interval_pg":
            # '<n> microseconds' is interval input text
            return pc.binary_join_element_wise(a.cast(pa.string()), " microseconds", " ")
        return a
    # text: STRING, UUID, JSON, BIT ('0101') and the native-text families; the server parses the literal
    return a.cast(pa.string())


def _hex(a: pa.Array) -> pa.Array:
    """Lower-case hex text of each binary value (vectorised over the value buffer, nulls kept)."""
    import numpy as np

    a = a.cast(pa.binary())
    if a.offset:
        a = pa.concat_arrays([a])  # a copy at offset 0, so its validity bitmap can be reused as it is
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int32)[: len(a) + 1]
    data = a.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data is not None else np.empty(0, np.uint8)
    lut = np.frombuffer(b"".join(_HEX), dtype=np.uint8).reshape(256, 2)
    text = lut[raw].reshape(-1)
    new_offsets = ((offsets - offsets[0]) * 2).astype(np.int32)
    return pa.StringArray.from_buffers(
        len(a), pa.py_buffer(new_offsets.tobytes()), pa.py_buffer(text.tobytes()), a.buffers()[0], a.null_count
    )


def _csv(batch: pa.RecordBatch, *, null: str = "") -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False, null_string=null))
    return bytes(sink.getvalue().to_pybytes())


# ------------------------------------------------------------------------------------------------------ sinks


class _PostgresSink:
    def __init__(self, params: dict[str, Any]) -> None:
        import psycopg

        self._con = psycopg.connect(**params)

    def write(self, job: TableJob, batches: Iterator[pa.RecordBatch]) -> int:
        names = ", ".join('"' + c[0].replace('"', '""') + '"' for c in job.columns)
        n = 0
        with self._con.cursor() as cur, cur.copy(f"COPY {job.target} ({names}) FROM STDIN (FORMAT csv)") as copy:
            # CSV: NULL is an unquoted empty field; Arrow quotes every string, so '' stays an empty string
            for batch in batches:
                copy.write(_csv(batch))
                n += batch.num_rows
        return n

    def commit(self) -> None:
        self._con.commit()

    def close(self) -> None:
        self._con.close()


class _MariaDbSink:
    def __init__(self, params: dict[str, Any]) -> None:
        import pymysql

        params = dict(params)
        wanted = bool(params.pop("local_infile", True))
        self._con = pymysql.connect(**params, local_infile=wanted, autocommit=False)
        with self._con.cursor() as cur:
            cur.execute("SELECT @@local_infile")
            row = cur.fetchone()
        # a server that refuses local files gets multi-row INSERTs instead
        self.local = wanted and bool(row and int(row[0]))
        self._tmp = tempfile.mkdtemp(prefix=f"synthdb-load-{os.getpid()}-")

    def write(self, job: TableJob, batches: Iterator[pa.RecordBatch]) -> int:
        if not self.local:
            return sum(self._insert(job, batch) for batch in batches)
        path = os.path.join(self._tmp, "chunk.csv")
        n = rows = 0
        f = None
        try:
            for batch in batches:  # one batch in memory at a time; the chunk grows on disk
                if f is None:
                    f = open(path, "wb")  # noqa: SIM115 - closed below or in finally
                f.write(_csv(batch, null="NULL"))  # unquoted NULL is NULL; Arrow quotes every string
                rows += batch.num_rows
                if rows >= _MARIADB_CHUNK_ROWS:
                    f.close()
                    f = None
                    n += self._load(job, path, rows)
                    rows = 0
            if f is not None:
                f.close()
                f = None
                n += self._load(job, path, rows)
        finally:
            if f is not None:
                f.close()
            if os.path.exists(path):
                os.unlink(path)
        return n

    def _load(self, job: TableJob, path: str, expected: int) -> int:
        columns = _mysql_columns(job)
        targets = [f"@v{i}" if expr else name for i, (name, expr) in enumerate(columns)]
        sets = [f"{name} = {expr.format(f'@v{i}')}" for i, (name, expr) in enumerate(columns) if expr]
        sql = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {job.target} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
            f"({', '.join(targets)})" + (f" SET {', '.join(sets)}" if sets else "")
        )
        with self._con.cursor() as cur:
            loaded = int(cur.execute(sql))
            cur.execute("SHOW WARNINGS LIMIT 3")
            warnings = [w for w in cur.fetchall() if str(w[0]).lower() != "note"]
        # LOCAL turns duplicate keys and bad values into warnings (the server cannot stop the file): fail on them
        if warnings or loaded != expected:
            reason = "; ".join(str(w[2]) for w in warnings) or f"{expected - loaded} row(s) skipped"
            raise BulkWriteError(
                f"{ERROR_MARK}table {job.table!r}: MariaDB refused row(s) of the load ({loaded} of {expected} "
                f"loaded): {reason}"
            )
        return loaded

    def _insert(self, job: TableJob, batch: pa.RecordBatch) -> int:
        names = ", ".join(name for name, _ in _mysql_columns(job))
        sql = f"INSERT INTO {job.target} ({names}) VALUES ({', '.join(['%s'] * len(job.columns))})"
        columns = []
        for (_, op, _), col in zip(job.columns, batch.columns, strict=True):
            values = col.to_pylist()
            # PyMySQL batches only plain %s lists into multi-row INSERTs, so the SET conversions happen here
            if op == "binary_hex":
                values = [None if v is None else bytes.fromhex(v) for v in values]
            elif op == "bit_number":
                values = [None if v is None else int(v, 2) for v in values]
            columns.append(values)
        with self._con.cursor() as cur:
            cur.executemany(sql, list(zip(*columns, strict=True)))  # multi-row INSERTs of up to 1 MB each
        return int(batch.num_rows)

    def commit(self) -> None:
        self._con.commit()

    def close(self) -> None:
        try:
            self._con.close()
        finally:
            for name in os.listdir(self._tmp):
                os.unlink(os.path.join(self._tmp, name))
            os.rmdir(self._tmp)


def _mysql_columns(job: TableJob) -> list[tuple[str, str | None]]:
    """Per column its quoted name and, for binary and BIT, the SQL that turns the text into the value."""
    out: list[tuple[str, str | None]] = []
    for name, op, _ in job.columns:
        quoted = "`" + name.replace("`", "``") + "`"
        # MariaDB reads a string into BIT(n) as its bytes; the bits' number is what it stores as bits
        expr = {"binary_hex": "UNHEX({})", "bit_number": "CAST(CONV({}, 2, 10) AS UNSIGNED)"}.get(op)
        out.append((quoted, expr))
    return out


class _SqliteSink:
    def __init__(self, params: dict[str, Any]) -> None:
        import adbc_driver_sqlite.dbapi as sqlite_adbc

        # autocommit on, so that the pragmas may run (not inside a transaction), then one explicit transaction
        self._con = sqlite_adbc.connect(params["path"], autocommit=True)
        self._cur = self._con.cursor()
        for pragma in params.get("pragmas", ()):
            self._cur.execute(f"PRAGMA {pragma}")
        self._cur.execute("BEGIN")

    def write(self, job: TableJob, batches: Iterator[pa.RecordBatch]) -> int:
        first = next(batches, None)
        if first is None:
            return 0
        n = 0

        def counted() -> Iterator[pa.RecordBatch]:
            nonlocal n
            for batch in _chain(first, batches):
                n += batch.num_rows
                yield batch

        reader = pa.RecordBatchReader.from_batches(first.schema, counted())
        self._cur.adbc_ingest(job.target, reader, mode="append")
        return n

    def commit(self) -> None:
        self._cur.execute("COMMIT")

    def close(self) -> None:
        try:
            self._cur.close()
        finally:
            self._con.close()


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


_SINKS: dict[str, Any] = {"postgresql": _PostgresSink, "mysql": _MariaDbSink, "sqlite": _SqliteSink}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:500]
