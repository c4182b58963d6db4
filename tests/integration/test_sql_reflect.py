"""Reflection of the tricky schema on SQLite, PostgreSQL and MariaDB: keys, types, constraints, odd names."""

from __future__ import annotations

import logging

import pyarrow as pa
import pytest
import sqlalchemy as sa
from fixtures.tricky import (
    EXPECTED_FOREIGN_KEYS,
    EXPECTED_NOT_NULL,
    EXPECTED_PRIMARY_KEYS,
    EXPECTED_UNIQUE,
    TRICKY_TABLES,
    create_tricky_schema,
)

from connectors.source import open_source
from connectors.sql.reflect import UNSUPPORTED_REASON
from connectors.sql.url import normalize_url
from schemas.errors import SourceInputError
from schemas.kinds import Kind
from schemas.model import DatabaseSchema

pytestmark = pytest.mark.server


def _dialect(url: str) -> str:
    name = normalize_url(url).get_backend_name()
    return "mysql" if name == "mariadb" else name


@pytest.fixture
def tricky(db_url: str) -> tuple[str, DatabaseSchema]:
    create_tricky_schema(db_url, rows=60, seed=1)
    source = open_source(db_url)
    try:
        return db_url, source.read_schema()
    finally:
        source.close()


def test_tables_and_keys(tricky: tuple[str, DatabaseSchema]) -> None:
    _, schema = tricky
    assert sorted(t.name for t in schema.tables) == sorted(TRICKY_TABLES)
    assert {t.name: t.primary_key.columns for t in schema.tables if t.primary_key} == EXPECTED_PRIMARY_KEYS
    found_fks = {
        (t.name, tuple(fk.columns), fk.ref_table, tuple(fk.ref_columns))
        for t in schema.tables
        for fk in t.foreign_keys
    }
    assert found_fks == EXPECTED_FOREIGN_KEYS
    found_unique = {t.name: sorted(sorted(u.columns) for u in t.unique) for t in schema.tables if t.unique}
    assert found_unique == {k: sorted(sorted(c) for c in v) for k, v in EXPECTED_UNIQUE.items()}
    # nullable foreign keys are recognised: they are where the planner can break cycles
    assert schema.table("department").foreign_key("employee").nullable is True
    assert schema.table("employee").foreign_key("department").nullable is False
    assert schema.table("order").foreign_key(["shipped_to_id"]).nullable is True
    assert schema.table("order").foreign_key(["customer_id"]).nullable is False
    assert schema.problems() == []


def test_columns_types_nullability_and_kinds(tricky: tuple[str, DatabaseSchema]) -> None:
    url, schema = tricky
    dialect = _dialect(url)
    for table, not_null in EXPECTED_NOT_NULL.items():
        assert {c.name for c in schema.table(table).columns if not c.nullable} == not_null, table
    customer = schema.table("customer")
    assert [c.name for c in customer.columns] == [
        "id",
        "full name",
        "email",
        "segment",
        "created_at",
        "balance",
        "is_active",
        "notes",
        "referred_by",
    ]
    assert {c.name: c.type for c in customer.columns} == {
        "id": "INTEGER",
        "full name": "VARCHAR(100)",
        "email": "VARCHAR(200)",
        "segment": "VARCHAR(20)",
        "created_at": "TIMESTAMP",
        "balance": "NUMERIC(12, 2)",
        "is_active": "BOOLEAN",
        "notes": "TEXT",
        "referred_by": "INTEGER",
    }
    kinds = {c.name: c.kind for c in customer.columns}
    assert kinds["id"] is Kind.ID and kinds["referred_by"] is Kind.ID
    assert kinds["segment"] is Kind.CATEGORICAL and kinds["notes"] is Kind.TEXT
    assert kinds["balance"] is Kind.NUMERIC and kinds["is_active"] is Kind.BOOLEAN
    assert kinds["created_at"] is Kind.DATETIME
    assert customer.column("referred_by").kind_reason == "foreign key to customer(id)"

    zoo = {c.name: c.type for c in schema.table("type_zoo").columns}
    expected = {
        "c_smallint": "SMALLINT",
        "c_integer": "INTEGER",
        "c_bigint": "BIGINT",
        "c_real": "DOUBLE PRECISION" if dialect == "sqlite" else "REAL",  # SQLite REAL is 8 bytes
        "c_double": "DOUBLE PRECISION",
        "c_numeric": "NUMERIC(10, 3)",
        "c_varchar": "VARCHAR(50)",
        "c_char": "CHAR(3)",
        "c_text": "TEXT",
        "c_boolean": "BOOLEAN",
        "c_date": "DATE",
        "c_time": "TIME",
        "c_timestamp": "TIMESTAMP",
        "c_timestamptz": "TIMESTAMP WITH TIME ZONE" if dialect == "postgresql" else "TIMESTAMP",
        "c_binary": "BLOB",
        "c_uuid": "UUID" if dialect == "postgresql" else "CHAR(36)",
        # MariaDB keeps JSON as LONGTEXT + CHECK (json_valid(...)); SQLite's fixture column is plain TEXT
        "c_json": "TEXT" if dialect == "sqlite" else "JSON",
        "c_mostly_null": "INTEGER",
    }
    assert {k: v for k, v in zoo.items() if k != "id"} == expected
    if dialect != "sqlite":
        assert schema.table("type_zoo").column("c_json").kind is Kind.JSON
    native = {c.name: c.native_type for c in schema.table("type_zoo").columns}
    assert {"postgresql": "JSONB", "mysql": "LONGTEXT", "sqlite": "TEXT"}[dialect] == native["c_json"]
    if dialect == "mysql":
        assert native["c_boolean"] == "TINYINT(1)"
        assert schema.table("type_zoo").checks == []  # the json_valid check is implied by the JSON type


def test_checks_counts_and_odd_names(tricky: tuple[str, DatabaseSchema]) -> None:
    url, schema = tricky
    checks = schema.table("order").checks
    assert len(checks) == 1 and checks[0].name == "ck_order_total"
    assert "total" in checks[0].sqltext and ">= 0" in checks[0].sqltext
    engine = sa.create_engine(normalize_url(url))
    with engine.connect() as conn:
        for t in schema.tables:
            real = conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(t.name, schema=None))
            ).scalar_one()
            assert t.row_count == real, t.name
    engine.dispose()
    assert schema.table("empty_table").row_count == 0
    assert schema.table("order").row_count > 60
    cafe = schema.table("café")
    assert [c.name for c in cafe.columns] == ["id", "naïve", "prix €"]
    assert cafe.column("prix €").type == "NUMERIC(8, 2)"
    if _dialect(url) == "postgresql":
        assert {t.db_schema for t in schema.tables} == {"public"}
        assert schema.db_schema == "public"


def test_empty_database_is_bad_input_with_a_hint(db_url: str) -> None:
    engine = sa.create_engine(normalize_url(db_url))
    with engine.connect():  # SQLite: make the (empty) file exist
        pass
    engine.dispose()
    with pytest.raises(SourceInputError, match="no tables found in") as info:
        open_source(db_url).read_schema()
    if _dialect(db_url) == "postgresql":
        assert "--schema" in str(info.value)
    else:
        assert "check the database name" in str(info.value)


def test_postgres_other_schema_and_unknown_types(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(normalize_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE SCHEMA "Sales"'))
        conn.execute(
            sa.text(
                'CREATE TABLE "Sales".doc (id serial PRIMARY KEY, body_tsv tsvector, span int4range, '
                "price money, amount numeric, created timestamptz DEFAULT now(), at_tz timetz)"
            )
        )
        conn.execute(
            sa.text(
                """INSERT INTO "Sales".doc (body_tsv, span, price, amount) VALUES """
                "(to_tsvector('simple', 'hello world'), int4range(1, 5), 12.5, 3.14159), "
                "(NULL, NULL, NULL, NULL)"
            )
        )
    engine.dispose()
    with pytest.raises(SourceInputError, match="no tables found in schema 'public'"):
        open_source(pg_url).read_schema()
    with pytest.raises(SourceInputError, match="schema 'nosuch' does not exist"):
        open_source(pg_url, db_schema="nosuch").read_schema()
    source = open_source(pg_url, db_schema="Sales")
    with caplog.at_level(logging.WARNING, logger="connectors.sql.reflect"):
        schema = source.read_schema()
    doc = schema.table("doc")
    assert doc.db_schema == "Sales" and schema.db_schema == "Sales"
    assert doc.column("id").autoincrement is True and doc.column("id").default is None  # serial
    assert doc.column("created").default is not None and "now()" in doc.column("created").default
    # types, not strings: PostgreSQL-only types keep their type (values as the database's literals)
    for name, portable, kind in (("body_tsv", "TSVECTOR", Kind.TEXT), ("span", "INT4RANGE", Kind.CATEGORICAL)):
        col = doc.column(name)
        assert (col.type, col.native_type, col.kind) == (portable, portable, kind)
    at_tz = doc.column("at_tz")  # no counterpart: marked, so that inspect refuses it (never silently text)
    assert at_tz.native_type == "TIME WITH TIME ZONE" and at_tz.kind_reason.startswith(UNSUPPORTED_REASON)
    assert "table doc, column at_tz: type TIME WITH TIME ZONE is not supported" in caplog.text
    assert doc.column("price").type == "NUMERIC(19, 2)"
    assert doc.column("amount").type == "NUMERIC(38, 10)"
    table = pa.Table.from_batches(list(source.read_table("doc")))
    assert table.column("body_tsv").to_pylist() == ["'hello':1 'world':2", None]
    assert table.column("span").to_pylist() == ["[1,5)", None]
    assert str(table.column("amount")[0].as_py()) == "3.1415900000"
    source.close()
