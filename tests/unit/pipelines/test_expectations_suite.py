"""build_suite: the validation suite derived from a schema and a profile, with no engine involved."""

from __future__ import annotations

import pickle
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipelines.expectations import (
    ForeignKeyIntegrity,
    NotNull,
    NullShare,
    Range,
    Severity,
    SuiteOptions,
    Unique,
    ValueSet,
    build_suite,
)
from schemas.errors import ConfigError, SchemaError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table, UniqueConstraint
from schemas.profile import ColumnProfile, TableProfile


def _col(name: str, type_: str, kind: Kind, *, nullable: bool = True, excluded: bool = False) -> Column:
    return Column(name=name, type=type_, kind=kind, nullable=nullable, excluded=excluded)


def _schema(*, unique: list[UniqueConstraint] | None = None) -> DatabaseSchema:
    parent = Table(
        name="customer",
        columns=[
            _col("id", "INTEGER", Kind.ID, nullable=False),
            _col("email", "VARCHAR(80)", Kind.EMAIL),
            _col("tier", "VARCHAR(10)", Kind.CATEGORICAL),
            _col("country", "VARCHAR(2)", Kind.CATEGORICAL),
            _col("age", "INTEGER", Kind.NUMERIC),
            _col("joined", "DATE", Kind.DATE),
            _col("seen", "TIMESTAMP WITH TIME ZONE", Kind.DATETIME),
            _col("legacy", "TEXT", Kind.TEXT, excluded=True),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        unique=unique if unique is not None else [UniqueConstraint(name="uq_email", columns=["email"])],
    )
    child = Table(
        name="order line",
        columns=[
            _col("customer_id", "INTEGER", Kind.ID, nullable=False),
            _col("line", "INTEGER", Kind.ID, nullable=False),
            _col("amount", "NUMERIC(10, 2)", Kind.NUMERIC, nullable=False),
        ],
        primary_key=PrimaryKey(columns=["customer_id", "line"]),
        foreign_keys=[ForeignKey(columns=["customer_id"], ref_table="customer", ref_columns=["id"])],
    )
    return DatabaseSchema(tables=[parent, child])


def _cp(name: str, **kw: Any) -> ColumnProfile:
    base: dict[str, Any] = {"sample_rows": 100, "null_count": 0, "distinct_count": 0}
    base.update(kw)
    return ColumnProfile(name=name, **base)


def _profiles() -> dict[str, TableProfile]:
    cols = {
        "id": _cp("id", distinct_count=100, min=1, max=100),
        "email": _cp("email", distinct_count=100, top_values=[("a@b.co", 1)]),
        "tier": _cp("tier", null_count=20, distinct_count=3, top_values=[("gold", 40), ("silver", 30), ("bronze", 10)]),
        # 50 top values seen but 60 distinct: the set is partial, so no value-set expectation
        "country": _cp("country", distinct_count=60, top_values=[(f"c{i}", 1) for i in range(50)]),
        "age": _cp("age", distinct_count=50, min=18, max=88),
        "joined": _cp("joined", distinct_count=90, min=date(2020, 1, 1), max=date(2020, 4, 10)),
        "seen": _cp("seen", distinct_count=90, min=datetime(2020, 1, 1, tzinfo=UTC),
                    max=datetime(2021, 1, 1, tzinfo=UTC)),
    }
    return {"customer": TableProfile(table="customer", row_count=100, sample_rows=100, columns=cols)}


def test_integrity_half_comes_from_keys_and_not_null() -> None:
    suite = build_suite(_schema(), name="demo")
    customer, line = suite.table("customer"), suite.table("order line")
    assert {(type(s), s.columns) for s in customer.integrity} == {
        (NotNull, ("id",)), (Unique, ("id",)), (Unique, ("email",)),
    }
    assert [s.reason for s in customer.integrity if isinstance(s, Unique)] == ["primary key", "unique constraint uq_email"]
    assert {(type(s), s.columns) for s in line.integrity} == {
        (NotNull, ("customer_id",)), (NotNull, ("line",)), (NotNull, ("amount",)),
        (Unique, ("customer_id", "line")), (ForeignKeyIntegrity, ("customer_id",)),
    }
    assert all(s.severity is Severity.INTEGRITY for s in suite)
    assert suite.profile_count == 0 and suite.integrity_count == 8
    assert "8 integrity and 0 profile" in suite.summary()


def test_profile_half_has_tolerances_and_skips_keys_pii_and_partial_sets() -> None:
    suite = build_suite(_schema(), _profiles(), options=SuiteOptions(range_tolerance=0.1, null_share_tolerance=0.05))
    profile = {(type(s).__name__, s.columns[0]): s for s in suite.table("customer").profile}
    assert set(profile) == {
        ("NullShare", "tier"), ("ValueSet", "tier"), ("Range", "age"), ("Range", "joined"),
        ("NullShare", "email"), ("NullShare", "country"), ("NullShare", "age"), ("NullShare", "joined"),
        ("NullShare", "seen"),
    }
    tier = profile[("ValueSet", "tier")]
    assert isinstance(tier, ValueSet) and tier.values == ("bronze", "gold", "silver") and tier.mostly == 0.95
    share = profile[("NullShare", "tier")]
    assert isinstance(share, NullShare) and (share.min_share, share.max_share) == (0.15, 0.25)
    age = profile[("Range", "age")]
    assert isinstance(age, Range) and (age.min_value, age.max_value) == (11, 95)  # 70 * 0.1 = 7 each side
    joined = profile[("Range", "joined")]
    assert isinstance(joined, Range) and (joined.min_value, joined.max_value) == (date(2019, 12, 22), date(2020, 4, 20))
    assert all(s.severity is Severity.PROFILE for s in suite.table("customer").profile)


def test_suite_pickles_and_keys_are_unique() -> None:
    doubled = [UniqueConstraint(name="uq_email", columns=["email"]), UniqueConstraint(columns=["email"]),
               UniqueConstraint(columns=["tier", "country"])]
    suite = build_suite(_schema(unique=doubled), _profiles())
    keys = [s.key for s in suite]
    assert len(keys) == len(set(keys))
    assert any(isinstance(s, Unique) and s.columns == ("tier", "country") for s in suite)
    assert pickle.loads(pickle.dumps(suite)) == suite


def test_bad_options_and_keys_on_excluded_columns_are_reported() -> None:
    with pytest.raises(ConfigError, match=r"value_set_mostly must be in \(0, 1\], got 1.5"):
        build_suite(_schema(), options=SuiteOptions(value_set_mostly=1.5))
    schema = _schema(unique=[UniqueConstraint(name="uq_legacy", columns=["legacy"])])
    with pytest.raises(SchemaError) as err:
        build_suite(schema)
    assert "table 'customer'" in str(err.value) and "'legacy'" in str(err.value) and "excluded" in str(err.value)


def test_building_a_suite_imports_no_engine() -> None:
    code = (
        "import sys; from pipelines.expectations import build_suite; "
        "from schemas.model import *; "
        "s = DatabaseSchema(tables=[Table(name='t', columns=[Column(name='a', type='INTEGER', nullable=False)])]); "
        "build_suite(s); "
        "bad = [m for m in ('great_expectations', 'sqlalchemy', 'pyspark', 'ray') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
