"""The bulk write path (COPY, LOAD DATA LOCAL, ADBC ingest) on real SQLite, PostgreSQL and MariaDB.

Awkward values survive each protocol's text or binary form; refused rows fail naming the table (MariaDB's
``LOAD DATA LOCAL`` would otherwise skip duplicates silently); MariaDB's fallback without local files writes the
same rows; a task reads in batches of the asked size.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from connectors.spark import _bulk
from connectors.spark.writer import _assign, _columns_for_target, _connection, _qualified, write_tables
from connectors.sql.ddl import build_metadata
from connectors.staging import staging_for
from schemas.errors import ConnectorError
from schemas.model import Column, DatabaseSchema, PrimaryKey, Table

UTC = dt.UTC
_AWKWARD = ['a "quoted", comma', "line\nbreak\r\nCRLF", "back\\slash \\N", "NULL", "", None, "\\.", "é ü 中"]
_BYTES = [b"\x00\xff", b'"', b"\n,\r", b"", None, b"\\N", b"NULL", bytes(range(256))]


def _schema(dialect: str) -> DatabaseSchema:
    cols = [
        Column(name="id", type="BIGINT", nullable=False),
        Column(name="s", type="TEXT"),
        Column(name="blob", type="BLOB"),
        Column(name="price", type="NUMERIC(8, 2)"),
        Column(name="x", type="DOUBLE PRECISION"),
        Column(name="ok", type="BOOLEAN"),
        Column(name="at", type="TIMESTAMP WITH TIME ZONE"),
        Column(name="day", type="DATE"),
        Column(name="dur", type="INTERVAL"),
        Column(name="not generated", type="INTEGER"),
    ]
    if dialect != "sqlite":
        cols.append(Column(name="b", type="BIT(4)"))
    return DatabaseSchema(
        tables=[Table(name="t", columns=cols, primary_key=PrimaryKey(columns=["id"]))]
    ).validate_all()


def _shards(tmp: Path, dialect: str, n_files: int = 3, *, duplicate: bool = False) -> Path:
    n = len(_AWKWARD)
    table = pa.table(
        {
            "id": pa.array([1 if duplicate and i == n - 1 else i + 1 for i in range(n)], pa.int64()),
            "s": pa.array(_AWKWARD, pa.string()),
            "blob": pa.array(_BYTES, pa.binary()),
            # floats into NUMERIC(8, 2): rounded half away from zero, as Spark's cast did
            "price": pa.array([1.125, -2.5, 0.0, None, 123456.789, 0.004, 99.995, 1.0], pa.float64()),
            "x": pa.array([0.1, -1e300, 5e-324, None, 2.0, 3.5, -0.0, 1.25], pa.float64()),
            "ok": pa.array([True, False, None, True, False, True, False, True]),
            "at": pa.array(
                [dt.datetime(2024, 3, 10, 1, 2, 3, 456789, tzinfo=UTC) + dt.timedelta(days=i) for i in range(n - 1)]
                + [None],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([dt.date(1970, 1, 1) + dt.timedelta(days=400 * i) for i in range(n)], pa.date32()),
            "dur": pa.array([dt.timedelta(days=i, microseconds=i) for i in range(n)], pa.duration("us")),
            **({"b": pa.array(["0101", "1111", None, "0000", "1000", "0001", "0010", "0100"])} if dialect != "sqlite"
               else {}),
        }
    )
    folder = tmp / "shards" / "t"
    folder.mkdir(parents=True)
    step = -(-n // n_files)
    for i in range(n_files):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i:05d}.parquet", row_group_size=2)
    return folder


def _write(spark: Any, url: str, tmp: Path, **shard_args: Any) -> tuple[Any, dict[str, int]]:
    dialect = make_url(url).get_backend_name()
    dialect = {"mariadb": "mysql"}.get(dialect, dialect)
    schema = _schema(dialect)
    folder = _shards(tmp, dialect, **shard_args)
    staging = staging_for(url, run_id="bulk")
    staging.prepare(schema)
    try:
        counts = write_tables(spark, {"t": folder}, schema, ["t"], staging, batch_rows=3)
    except BaseException:
        staging.abort()
        raise
    staging.commit()
    return schema, counts


def _rows(url: str, schema: DatabaseSchema) -> list[dict[str, Any]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    t = build_metadata(schema, dialect=engine.dialect.name).tables["t"]
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]
    finally:
        engine.dispose()


@pytest.mark.spark
def test_awkward_values_survive_every_bulk_protocol(spark: Any, db_url: str, tmp_path: Path) -> None:
    schema, counts = _write(spark, db_url, tmp_path)
    assert counts == {"t": len(_AWKWARD)}
    rows = _rows(db_url, schema)
    dialect = make_url(db_url).get_backend_name()

    assert [r["s"] for r in rows] == _AWKWARD  # NULL and '' apart, quotes, newlines, backslashes, "NULL"
    assert [None if r["blob"] is None else bytes(r["blob"]) for r in rows] == _BYTES
    assert [r["price"] for r in rows] == [
        Decimal("1.13"), Decimal("-2.50"), Decimal("0.00"), None, Decimal("123456.79"), Decimal("0.00"),
        Decimal("100.00"), Decimal("1.00"),
    ]  # fmt: skip
    assert [r["x"] for r in rows] == [0.1, -1e300, 5e-324, None, 2.0, 3.5, -0.0, 1.25]
    assert [None if r["ok"] is None else bool(r["ok"]) for r in rows] == [
        True, False, None, True, False, True, False, True,
    ]  # fmt: skip
    at = [r["at"] for r in rows]
    assert at[-1] is None
    want = [dt.datetime(2024, 3, 10, 1, 2, 3, 456789) + dt.timedelta(days=i) for i in range(len(rows) - 1)]
    assert [a.astimezone(UTC).replace(tzinfo=None) if a.tzinfo else a for a in at[:-1]] == want
    assert [r["day"] for r in rows] == [dt.date(1970, 1, 1) + dt.timedelta(days=400 * i) for i in range(len(rows))]
    durations = [r["dur"] for r in rows]
    if dialect == "postgresql":
        assert durations == [dt.timedelta(days=i, microseconds=i) for i in range(len(rows))]
    else:
        assert durations == [i * 86_400_000_000 + i for i in range(len(rows))]
    assert {r["not generated"] for r in rows} == {None}  # nullable and absent from the shards: NULL
    if dialect == "postgresql":
        assert [r["b"] for r in rows][:3] == ["0101", "1111", None]
    elif dialect in ("mysql", "mariadb"):
        assert [r["b"] for r in rows][:3] == [5, 15, None]  # the bits, not the text's bytes


@pytest.mark.spark
def test_a_refused_row_fails_naming_the_table_and_the_reason(spark: Any, db_url: str, tmp_path: Path) -> None:
    # a duplicate primary key in the last shard: MariaDB's LOAD DATA LOCAL would skip it with a warning
    with pytest.raises(ConnectorError, match=r"table 't'") as failure:
        _write(spark, db_url, tmp_path, duplicate=True)
    assert any(
        reason in str(failure.value) for reason in ("UNIQUE constraint failed", "duplicate key", "Duplicate entry")
    ), str(failure.value)


@pytest.mark.spark
def test_a_missing_not_null_column_fails_before_anything_is_written(spark: Any, sqlite_url: str, tmp_path: Path) -> None:
    schema = _schema("sqlite")
    folder = tmp_path / "t"
    folder.mkdir()
    pq.write_table(pa.table({"s": ["x"]}), folder / "part-0.parquet")
    staging = staging_for(sqlite_url, run_id="bulk")
    staging.prepare(schema)
    try:
        with pytest.raises(ConnectorError, match=r"table 't', column 'id': NOT NULL"):
            write_tables(spark, {"t": folder}, schema, ["t"], staging)
    finally:
        staging.abort()


def test_mariadb_without_local_files_writes_multi_row_inserts(mariadb_url: str, tmp_path: Path) -> None:
    """The task code runs here, in-process, with local files switched off on the client."""
    schema = _schema("mysql")
    folder = _shards(tmp_path, "mysql", n_files=1)
    staging = staging_for(mariadb_url, run_id="bulk")
    staging.prepare(schema)
    try:
        table = schema.table("t")
        files = sorted(folder.glob("*.parquet"))
        columns = _columns_for_target(table, "mysql", set(pq.read_schema(files[0]).names))
        pieces = [(str(files[0]), g, pq.read_metadata(files[0]).row_group(g).num_rows) for g in range(4)]
        (jobs,) = _assign([("t", _qualified("t", None, "mysql"), columns, pieces)], 1)
        conn = _connection(staging)
        conn.params["local_infile"] = False
        out = list(_bulk.run_task(jobs, conn, batch_rows=3))
        assert out[0].to_pydict() == {"table": ["t"], "rows": [len(_AWKWARD)]}
    except BaseException:
        staging.abort()
        raise
    staging.commit()
    rows = _rows(mariadb_url, schema)
    assert [r["s"] for r in rows] == _AWKWARD
    assert [None if r["blob"] is None else bytes(r["blob"]) for r in rows] == _BYTES
    assert [r["b"] for r in rows][:3] == [5, 15, None]


def test_tasks_split_row_groups_and_read_in_batches_of_the_asked_size(tmp_path: Path) -> None:
    folder = _shards(tmp_path, "postgresql", n_files=2)
    files = sorted(folder.glob("*.parquet"))
    pieces = [
        (str(f), g, pq.read_metadata(f).row_group(g).num_rows) for f in files
        for g in range(pq.read_metadata(f).num_row_groups)
    ]  # fmt: skip
    columns = _columns_for_target(_schema("postgresql").table("t"), "postgresql", set(pq.read_schema(files[0]).names))
    tasks = _assign([("t", '"t"', columns, pieces)], 4)
    assert len(tasks) == 4 and sum(j.rows for jobs in tasks for j in jobs) == len(_AWKWARD)
    job = tasks[0][0]
    batches = list(_bulk._batches(job, 1))
    assert [b.num_rows for b in batches] == [1] * job.rows
    assert batches[0].schema.field("blob").type == pa.string()  # '\x..' text for bytea
    assert batches[0].column("blob")[0].as_py().startswith("\\x")


def test_binary_hex_keeps_nulls_of_a_sliced_array() -> None:
    a = pa.array([b"a", None, b"\x00\xff", b"", None, b"zz"]).slice(1)
    assert _bulk._convert(a, "binary_hex", None).to_pylist() == [None, "00ff", "", None, "7a7a"]
    assert _bulk._convert(a, "binary_pg", None).to_pylist() == [None, "\\x00ff", "\\x", None, "\\x7a7a"]
