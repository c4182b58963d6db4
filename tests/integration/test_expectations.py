"""The validation suite on real databases: SQLite, PostgreSQL and MariaDB, plus a non-default PostgreSQL schema.

The test tables are created *without* constraints (as a staging area is loaded before its keys are added), so
broken data can be written and the suite must find it: an orphan composite foreign key, a duplicate composite
primary key, a NULL in a NOT NULL column, and a category the real data never had (a warning, not a failure).
Names are hostile on purpose: a reserved word (``order``), a space (``unit price``), non-ASCII (``café``).
"""

from __future__ import annotations

import json
import pickle
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.expectations import (
    ForeignKeyIntegrity,
    NotNull,
    SuiteOptions,
    SuiteSpec,
    Unique,
    ValidationReport,
    ValueSet,
    build_suite,
    validate_target,
)
from schemas.errors import ConfigError, ConnectorError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.profile import ColumnProfile, TableProfile

FK_LABEL = "(order_region, order_num) -> order(region, num)"


def _schema() -> DatabaseSchema:
    order = Table(
        name="order",
        columns=[
            Column(name="region", type="VARCHAR(8)", nullable=False, kind=Kind.ID),
            Column(name="num", type="INTEGER", nullable=False, kind=Kind.ID),
            Column(name="status", type="VARCHAR(10)", nullable=False, kind=Kind.CATEGORICAL),
            Column(name="total", type="NUMERIC(10, 2)", nullable=True, kind=Kind.NUMERIC),
            Column(name="placed", type="DATE", nullable=True, kind=Kind.DATE),
        ],
        primary_key=PrimaryKey(columns=["region", "num"]),
    )
    cafe = Table(
        name="café",
        columns=[
            Column(name="id", type="INTEGER", nullable=False, kind=Kind.ID),
            Column(name="order_region", type="VARCHAR(8)", nullable=True, kind=Kind.ID),
            Column(name="order_num", type="INTEGER", nullable=True, kind=Kind.ID),
            Column(name="unit price", type="DOUBLE PRECISION", nullable=False, kind=Kind.NUMERIC),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[
            ForeignKey(name="fk_cafe_order", columns=["order_region", "order_num"], ref_table="order",
                       ref_columns=["region", "num"])
        ],
    )
    return DatabaseSchema(tables=[order, cafe]).validate_all()


def _profiles() -> dict[str, TableProfile]:
    """What the real data looked like (written by hand, matching the rows below)."""
    order = TableProfile(
        table="order",
        row_count=10,
        sample_rows=10,
        columns={
            "status": ColumnProfile(name="status", sample_rows=10, null_count=0, distinct_count=2,
                                    top_values=[("closed", 5), ("open", 5)]),
            "total": ColumnProfile(name="total", sample_rows=10, null_count=0, distinct_count=10,
                                   min=Decimal("10.00"), max=Decimal("100.00")),
            "placed": ColumnProfile(name="placed", sample_rows=10, null_count=0, distinct_count=10,
                                    min=date(2024, 1, 1), max=date(2024, 1, 10)),
        },
    )
    cafe = TableProfile(
        table="café",
        row_count=20,
        sample_rows=20,
        columns={
            "order_num": ColumnProfile(name="order_num", sample_rows=20, null_count=2, distinct_count=5),
            "unit price": ColumnProfile(name="unit price", sample_rows=20, null_count=0, distinct_count=20,
                                        min=1.0, max=20.0),
        },
    )
    return {"order": order, "café": cafe}


def _create(url: str, *, schema: str | None = None, prefix: str = "") -> sa.Engine:
    """Create the two tables with valid rows, without constraints (a staging area before its keys exist)."""
    engine = sa.create_engine(url)
    md = sa.MetaData(schema=schema)
    sa.Table(
        f"{prefix}order", md,
        sa.Column("region", sa.String(8)), sa.Column("num", sa.Integer), sa.Column("status", sa.String(10)),
        sa.Column("total", sa.Numeric(10, 2)), sa.Column("placed", sa.Date),
    )
    sa.Table(
        f"{prefix}café", md,
        sa.Column("id", sa.Integer), sa.Column("order_region", sa.String(8)), sa.Column("order_num", sa.Integer),
        sa.Column("unit price", sa.Float),
    )
    md.create_all(engine)
    orders = [
        {"region": region, "num": n, "status": "open" if n % 2 else "closed",
         "total": Decimal(10 * (i + 1)), "placed": date(2024, 1, i + 1)}
        for i, (region, n) in enumerate((r, n) for r in ("eu", "us") for n in range(1, 6))
    ]
    cafes = [
        {"id": i, "order_region": None if i in (3, 7) else ("eu" if i % 2 else "us"),
         "order_num": None if i in (3, 7) else 1 + i % 5, "unit price": float(i)}
        for i in range(1, 21)
    ]
    with engine.begin() as conn:
        conn.execute(md.tables[_key(schema, f"{prefix}order")].insert(), orders)
        conn.execute(md.tables[_key(schema, f"{prefix}café")].insert(), cafes)
    return engine


def _key(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _exec(engine: sa.Engine, table: str, schema: str | None, rows: list[dict[str, object]]) -> None:
    md = sa.MetaData(schema=schema)
    t = sa.Table(table, md, autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), rows)


def _suite() -> SuiteSpec:
    return build_suite(_schema(), _profiles(), name="it", options=SuiteOptions(value_set_mostly=0.9))


def _assert_outputs(report: ValidationReport, out: Path) -> None:
    assert report.results_path == out / "validation.json"
    assert report.results_path.is_file()
    assert report.docs_path == out / "data_docs" / "index.html"
    assert report.docs_path.is_file()
    data = json.loads(report.results_path.read_text(encoding="utf-8"))
    assert data["success"] is report.success
    assert data["statistics"]["evaluated"] == report.statistics.evaluated
    # a per-table GX result for both tables, under their logical names
    assert set(data["great_expectations"]) == {"order", "café"}
    pickle.loads(pickle.dumps(report))


def test_suite_validates_clean_then_broken_target(
    db_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine = _create(db_url)
    suite = _suite()
    assert suite == pickle.loads(pickle.dumps(suite))

    # 1. valid data: every expectation holds
    out = tmp_path / "valid"
    report = validate_target(db_url, _schema(), suite, out)
    assert report.success, report.integrity_failures
    assert report.integrity_failures == [] and report.profile_warnings == []
    assert report.statistics.evaluated == len(list(suite)) and report.statistics.failed == 0
    _assert_outputs(report, out)
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out  # no tqdm progress bars

    # 2. categories the real data never had: a profile warning, the run still succeeds
    _exec(engine, "order", None, [
        {"region": "zz", "num": i, "status": "lost", "total": Decimal(50), "placed": date(2024, 1, 5)}
        for i in (1, 2)
    ])
    report = validate_target(db_url, _schema(), suite, tmp_path / "drift")
    assert report.success, report.integrity_failures
    assert len(report.profile_warnings) == 1, report.profile_warnings
    warning = report.profile_warnings[0]
    assert "'order'" in warning and "'status'" in warning and "2 unexpected row(s)" in warning
    assert "'lost'" in warning and "expect_column_values_to_be_in_set" in warning
    assert report.statistics.profile_failed == 1 and report.statistics.integrity_failed == 0
    strict = validate_target(db_url, _schema(), suite, tmp_path / "strict", fail_on_profile=True)
    assert not strict.success

    # 3. integrity broken three ways
    _exec(engine, "café", None, [
        {"id": 21, "order_region": "us", "order_num": 99, "unit price": 2.0},   # orphan composite FK
        {"id": 22, "order_region": "eu", "order_num": 1, "unit price": None},   # NULL in NOT NULL
    ])
    _exec(engine, "order", None, [  # duplicate composite primary key
        {"region": "eu", "num": 1, "status": "open", "total": Decimal(20), "placed": date(2024, 1, 2)}
    ])
    out = tmp_path / "broken"
    report = validate_target(db_url, _schema(), suite, out)
    assert not report.success
    failures = report.integrity_failures
    assert len(failures) == 3, failures
    fk = [f for f in failures if "foreign key" in f]
    assert len(fk) == 1 and "table 'café'" in fk[0] and FK_LABEL in fk[0] and "fk_cafe_order" in fk[0]
    assert "1 unexpected row(s)" in fk[0] and "orphans" in fk[0] and "unexpected_rows_expectation" in fk[0]
    pk = [f for f in failures if "primary key" in f]
    assert len(pk) == 1 and "table 'order'" in pk[0] and "('region', 'num')" in pk[0]
    assert "2 unexpected row(s)" in pk[0] and "expect_compound_columns_to_be_unique" in pk[0]
    nn = [f for f in failures if "NOT NULL" in f]
    assert len(nn) == 1 and "column 'unit price'" in nn[0] and "1 unexpected row(s)" in nn[0]
    assert "expect_column_values_to_not_be_null" in nn[0]
    assert report.statistics.integrity_failed == 3
    _assert_outputs(report, out)
    data = json.loads(report.results_path.read_text(encoding="utf-8"))
    fk_json = [o for o in data["outcomes"] if o["check"] == "foreign_key"]
    assert fk_json[0]["success"] is False and fk_json[0]["unexpected_count"] == 1
    engine.dispose()


def test_non_default_postgres_schema_is_what_gets_validated(pg_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA stg"))
    _create(pg_url, schema="stg")
    # A broken copy in public: if validation looked there, it would fail.
    public = _create(pg_url)
    _exec(public, "café", None, [{"id": 30, "order_region": "xx", "order_num": 1, "unit price": 1.0}])

    # The password must not leak into the results or the Data Docs (trust auth ignores it).
    url = sa.make_url(pg_url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    out = tmp_path / "stg"
    report = validate_target(url, _schema(), _suite(), out, db_schema="stg")
    assert report.success, report.integrity_failures
    assert report.statistics.evaluated == len(list(_suite()))
    _assert_outputs(report, out)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html"):
            assert "s3cr3t-pw" not in path.read_text(encoding="utf-8", errors="replace"), path

    # Now break the staging copy: the orphan is found in stg, with the parent looked up in stg too.
    _exec(engine, "café", "stg", [{"id": 31, "order_region": "eu", "order_num": 42, "unit price": 1.0}])
    report = validate_target(url, _schema(), _suite(), tmp_path / "stg2", db_schema="stg")
    assert not report.success
    assert len(report.integrity_failures) == 1 and FK_LABEL in report.integrity_failures[0]
    engine.dispose()
    public.dispose()


def test_other_mariadb_database_is_what_gets_validated(mariadb_url: str, mariadb_admin: sa.Engine, tmp_path: Path) -> None:
    stg = f"{sa.make_url(mariadb_url).database}_stg"
    with mariadb_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{stg}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    try:
        staged = _create(mariadb_url, schema=stg)
        # The URL's own database stays empty: only the staging database has the tables.
        report = validate_target(mariadb_url, _schema(), _suite(), tmp_path / "ok", db_schema=stg)
        assert report.success, report.integrity_failures
        _exec(staged, "café", stg, [{"id": 40, "order_region": "eu", "order_num": 77, "unit price": 3.0}])
        report = validate_target(mariadb_url, _schema(), _suite(), tmp_path / "orphan", db_schema=stg)
        assert len(report.integrity_failures) == 1 and FK_LABEL in report.integrity_failures[0]
        staged.dispose()
    finally:
        with mariadb_admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{stg}`"))


def test_physical_names_and_missing_tables(sqlite_url: str, tmp_path: Path) -> None:
    _create(sqlite_url, prefix="_stg_")
    suite = _suite()
    names = {"order": "_stg_order", "café": "_stg_café"}
    report = validate_target(sqlite_url, _schema(), suite, tmp_path / "mapped", table_names=names)
    assert report.success, report.integrity_failures
    assert report.statistics.evaluated == len(list(suite))

    report = validate_target(sqlite_url, _schema(), suite, tmp_path / "missing", table_names={"order": "_stg_order"})
    assert not report.success
    assert len(report.integrity_failures) == 1
    assert "table 'café'" in report.integrity_failures[0] and "found none" in report.integrity_failures[0]
    assert report.results_path.is_file() and report.docs_path is not None and report.docs_path.is_file()


def test_suite_is_built_from_schema_and_profile_without_an_engine() -> None:
    suite = build_suite(_schema(), _profiles())
    order, cafe = suite.table("order"), suite.table("café")
    assert {(type(s), s.columns) for s in order.integrity} == {
        (NotNull, ("region",)), (NotNull, ("num",)), (NotNull, ("status",)), (Unique, ("region", "num")),
    }
    fks = [s for s in cafe.integrity if isinstance(s, ForeignKeyIntegrity)]
    assert len(fks) == 1 and fks[0].ref_table == "order" and fks[0].ref_columns == ("region", "num")
    value_sets = [s for s in order.profile if isinstance(s, ValueSet)]
    assert len(value_sets) == 1 and value_sets[0].values == ("closed", "open")
    # keys get no value sets or ranges even with a profile; integrity only without one
    assert not any(s.columns[0] in ("region", "num", "id") for s in order.profile + cafe.profile if s.columns)
    assert build_suite(_schema(), None).profile_count == 0


def test_unreachable_target_and_bad_schema_option_fail_clearly(sqlite_url: str, tmp_path: Path) -> None:
    url = "postgresql+psycopg://synth:hunter2-pw@127.0.0.1:1/nowhere"
    with pytest.raises(ConnectorError) as err:
        validate_target(url, _schema(), _suite(), tmp_path / "down")
    assert "127.0.0.1:1" in str(err.value) and "hunter2-pw" not in str(err.value)
    with pytest.raises(ConfigError, match="SQLite has no schemas"):
        validate_target(sqlite_url, _schema(), _suite(), tmp_path / "sqlite", db_schema="stg")
