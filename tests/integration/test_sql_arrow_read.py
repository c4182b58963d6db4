"""The Arrow-native read (ADBC, connectorx) gives the same tables as the SQLAlchemy read: types and values."""

from __future__ import annotations

import logging
import sqlite3

import pyarrow as pa
import pytest
import sqlalchemy as sa
from fixtures.tricky import TRICKY_TABLES, create_tricky_schema
from integration.test_sql_types import _make_pg_source

from connectors.sql import SqlSource
from connectors.sql.read import stream_batches
from schemas.errors import ConnectorError

pytestmark = pytest.mark.server

_FALLBACK_WORDS = ("reading through SQLAlchemy", "reading the rest through SQLAlchemy")


def _read(source: SqlSource, table: str, reader: str, batch_rows: int) -> tuple[pa.Table, list[int]]:
    source.reader = reader  # type: ignore[assignment]
    batches = list(source.read_table(table, batch_rows=batch_rows))
    assert all(b.schema == source.arrow_schema(table) for b in batches)
    whole = pa.Table.from_batches(batches, schema=source.arrow_schema(table))
    key = source.read_schema().table(table).primary_key
    if key is not None and whole.num_rows:
        whole = whole.sort_by([(c, "ascending") for c in key.columns])
    return whole, [b.num_rows for b in batches]


def _assert_same(source: SqlSource, table: str, *, batch_rows: int = 7) -> pa.Table:
    arrow, arrow_sizes = _read(source, table, "arrow", batch_rows)
    slow, slow_sizes = _read(source, table, "sqlalchemy", batch_rows)
    assert arrow.schema == slow.schema, table
    for name in slow.column_names:
        assert arrow.column(name).equals(slow.column(name)), (table, name)
    assert arrow_sizes == slow_sizes, table  # full batches of batch_rows, the last one shorter
    return arrow


def test_arrow_read_equals_sqlalchemy_read_on_every_table(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    create_tricky_schema(db_url, rows=60, seed=3)
    source = SqlSource(db_url)
    try:
        with caplog.at_level(logging.WARNING):
            for table in TRICKY_TABLES:
                _assert_same(source, table)
        assert not [r for r in caplog.records if any(w in r.getMessage() for w in _FALLBACK_WORDS)]
        sample = source.sample_table("order_line", rows=25, seed=4)  # the sampling statements read too
        source.reader = "sqlalchemy"
        assert sample.equals(source.sample_table("order_line", rows=25, seed=4))
    finally:
        source.close()


def test_postgres_every_type_reads_the_same(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    _make_pg_source(pg_url)  # the native-text types of test_sql_types: ranges, arrays, inet, bit, xml...
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE more (id int PRIMARY KEY, f4 real, m money, n numeric, n52 numeric(5, 2), "
                "iv interval, u uuid, j json, jb jsonb, tz timestamptz, tm time, by bytea, ch char(3), b bool)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO more SELECT g, g / 10.0, g * 1.25, g / 7.0, g / 3.0, "
                "make_interval(months => g - 13, days => g % 5, secs => g * 1.5), "
                "md5(g::text)::uuid, json_build_object('g', g, 'é', 'x y'), jsonb_build_array(g, 1.5), "
                "'2024-03-01 10:00+02'::timestamptz + g * interval '1 day', time '10:00' + g * interval '1 s', "
                "decode(lpad(to_hex(g), 4, '0'), 'hex'), 'ab', g % 2 = 0 FROM generate_series(1, 50) g"
            )
        )
        conn.execute(sa.text("INSERT INTO more (id) VALUES (51)"))
    engine.dispose()
    source = SqlSource(pg_url)
    try:
        with caplog.at_level(logging.WARNING):
            _assert_same(source, "t", batch_rows=16)
            more = _assert_same(source, "more", batch_rows=16)
        assert not [r for r in caplog.records if any(w in r.getMessage() for w in _FALLBACK_WORDS)]
    finally:
        source.close()
    row = more.slice(0, 1).to_pylist()[0]  # id 1: interval of -12 months (psycopg: -365 days), float4 as text
    assert row["f4"] == 0.1 and row["iv"].days == -365 + 1


def test_sqlite_values_of_another_kind_read_the_same(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, d DECIMAL(10,2), s VARCHAR(10), late TEXT, flag BOOLEAN, "
        "big DECIMAL(20,0))"
    )
    rows = [
        (
            i,
            i if i % 2 else i + 0.25,  # SQLite keeps a whole DECIMAL as an integer, the others as REAL
            b"\xff\xfe" if i == 30 else f"s{i}",  # a BLOB with invalid UTF-8 in a text column
            None if i < 50 else "x",  # NULL for the first batches: the driver would infer int64
            0.5 if i == 45 else i % 2,  # a REAL in a 0/1 column after four batches: the rest through SQLAlchemy
            2**60 + i,
        )
        for i in range(60)
    ]
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    source = SqlSource(sqlite_url)
    try:
        with caplog.at_level(logging.WARNING):
            table = _assert_same(source, "t", batch_rows=10)
        # the rows read before the mismatch stay as the driver read them; SQLAlchemy reads on after them
        assert [r for r in caplog.records if "expected INT64 but got DOUBLE" in r.getMessage()]
    finally:
        source.close()
    assert table.column("s")[30].as_py() == "\ufffd\ufffd"
    assert table.column("late").null_count == 50 and table.column("big")[3].as_py() == 2**60 + 3


def test_integer_text_in_an_integer_column_is_refused_by_both(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "oops" if i == 25 else i) for i in range(40)])
    db.commit()
    db.close()
    source = SqlSource(sqlite_url)
    try:
        for reader in ("arrow", "sqlalchemy"):
            source.reader = reader  # type: ignore[assignment]
            with pytest.raises(ConnectorError, match="table 't', column 'n'"):
                list(source.read_table("t", batch_rows=10))
    finally:
        source.close()


def test_arrow_reader_refuses_an_engine_without_a_driver() -> None:
    engine = sa.create_engine("sqlite://")  # in memory: private to SQLAlchemy's connection
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    from connectors.sql.read import select_statement
    from connectors.sql.reflect import reflect_schema

    table = reflect_schema(engine).table("t")
    statement = select_statement(table, table.columns, "sqlite")
    with pytest.raises(ConnectorError, match="no Arrow driver"):
        list(stream_batches(engine, statement, table, table.columns, batch_rows=5, reader="arrow"))
    assert list(stream_batches(engine, statement, table, table.columns, batch_rows=5)) == []
