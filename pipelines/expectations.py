"""The validation suite: what the written target must satisfy, checked with Great Expectations on the database.

Two halves, built by :func:`build_suite` without touching any engine (so the CLI can check them before a run starts):

* *integrity* expectations come from the schema: primary keys (not null, unique; composite keys unique as a
  whole), unique constraints, NOT NULL columns and foreign keys. A failure means the target is broken.
* *profile* expectations come from the real data's profile: value sets of low-cardinality categorical columns,
  ranges of numeric and date columns, and the share of NULLs, each with a tolerance. A failure means the synthetic
  data drifted from the real data; it is a warning unless the run says otherwise.

:func:`validate_target` runs the suite on a SQL target (SQLite, PostgreSQL, MariaDB/MySQL) with Great Expectations,
all in SQL: nothing is loaded into memory. Each table's checks run in one set-based pass, an
``UnexpectedRowsExpectation`` whose query scans the table once (NULL counts, value sets and ranges in one
aggregate, foreign keys as LEFT JOINs to each parent's distinct keys, one GROUP BY per unique key) and returns a
row per failed check. A check that failed runs again as its own GX expectation (a foreign key as an
``UnexpectedRowsExpectation`` returning the orphans), so the failure reads in GX's terms, with examples.
It writes ``validation.json`` and Data Docs into the given folder and nowhere else.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError, SchemaError
from schemas.kinds import Kind
from schemas.model import DatabaseSchema, Table
from schemas.profile import ColumnProfile, TableProfile
from schemas.types import Family, UnknownTypeError

log = logging.getLogger(__name__)

__all__ = [
    "ExpectationOutcome",
    "ExpectationSpec",
    "ForeignKeyIntegrity",
    "NotNull",
    "NullShare",
    "Range",
    "Severity",
    "SuiteOptions",
    "SuiteSpec",
    "TableSuite",
    "Unique",
    "ValidationReport",
    "ValidationStatistics",
    "ValueSet",
    "build_suite",
    "validate_target",
]


class Severity(StrEnum):
    """Whether a failed expectation breaks the run (integrity) or only warns (profile)."""

    INTEGRITY = "integrity"
    PROFILE = "profile"


@dataclass(frozen=True)
class SuiteOptions:
    """Tolerances for the profile expectations.

    Attributes:
        max_categories: a categorical column gets a value set only when the real data has at most this many
            distinct values (and the profile saw all of them).
        value_set_mostly: share of non-null rows that must take one of the real values.
        range_tolerance: ranges are widened by this fraction of the real span (min..max) on each side.
        range_mostly: share of non-null rows that must lie inside the widened range.
        null_share_tolerance: the NULL share may differ from the real one by this much (absolute, 0..1).
    """

    max_categories: int = 20
    value_set_mostly: float = 0.95
    range_tolerance: float = 0.10
    range_mostly: float = 0.99
    null_share_tolerance: float = 0.10

    def problems(self) -> list[str]:
        """Every invalid option, one line each, naming it, what it must be and what it got."""
        found: list[str] = []
        if self.max_categories < 1:
            found.append(f"max_categories must be at least 1, got {self.max_categories}")
        for name in ("value_set_mostly", "range_mostly"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                found.append(f"{name} must be in (0, 1], got {value}")
        for name in ("range_tolerance", "null_share_tolerance"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                found.append(f"{name} must be a finite number >= 0, got {value}")
        return found


@dataclass(frozen=True, kw_only=True)
class ExpectationSpec:
    """One expectation on one table, independent of Great Expectations and of any database.

    Attributes:
        table: the (logical) table name, as in the schema.
        columns: the column(s) it is about.
        severity: integrity (fails the run) or profile (warns).
        reason: where it comes from, for messages ("primary key", "NOT NULL", "real data profile").
    """

    table: str
    columns: tuple[str, ...]
    severity: Severity
    reason: str

    @property
    def check(self) -> str:
        """A short name of the check ("not_null", "unique", ...)."""
        return _CHECK_NAMES[type(self)]

    @property
    def key(self) -> str:
        """A stable identifier, unique within a suite; it links a result back to its spec."""
        return f"{self.check}:{self.table}:{'|'.join(self.columns)}"

    @property
    def where(self) -> str:
        """``table 't', column 'c'`` or ``table 't', columns ('a', 'b')``, for messages."""
        if len(self.columns) == 1:
            return f"table {self.table!r}, column {self.columns[0]!r}"
        return f"table {self.table!r}, columns ({', '.join(repr(c) for c in self.columns)})"

    def describe(self) -> str:
        """What the expectation demands, in words."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class NotNull(ExpectationSpec):
    """The column holds no NULL."""

    def describe(self) -> str:
        return f"no NULLs ({self.reason})"


@dataclass(frozen=True, kw_only=True)
class Unique(ExpectationSpec):
    """The column, or the combination of columns, is unique. Rows with a NULL in the key are not compared."""

    def describe(self) -> str:
        return f"unique values ({self.reason})"


@dataclass(frozen=True, kw_only=True)
class ForeignKeyIntegrity(ExpectationSpec):
    """Every row whose foreign-key columns are all non-null has a parent row with the same key.

    Attributes:
        ref_table: the parent table (logical name).
        ref_columns: the parent's columns, in the order matching ``columns``.
        name: the constraint name, when it has one.
    """

    ref_table: str
    ref_columns: tuple[str, ...]
    name: str | None = None

    @property
    def key(self) -> str:
        return f"{super().key}->{self.ref_table}:{'|'.join(self.ref_columns)}"

    @property
    def label(self) -> str:
        named = f"{self.name} " if self.name else ""
        return f"foreign key {named}({', '.join(self.columns)}) -> {self.ref_table}({', '.join(self.ref_columns)})"

    def describe(self) -> str:
        return f"every non-null key has a parent row ({self.label})"


@dataclass(frozen=True, kw_only=True)
class ValueSet(ExpectationSpec):
    """At least ``mostly`` of the non-null values are among ``values`` (the real data's values)."""

    values: tuple[Any, ...]
    mostly: float

    def describe(self) -> str:
        shown = ", ".join(repr(v) for v in self.values[:10]) + (", ..." if len(self.values) > 10 else "")
        return f"at least {self.mostly:.0%} of non-null values in the real set {{{shown}}}"


@dataclass(frozen=True, kw_only=True)
class Range(ExpectationSpec):
    """At least ``mostly`` of the non-null values lie in ``[min_value, max_value]`` (the real range, widened)."""

    min_value: Any
    max_value: Any
    mostly: float

    def describe(self) -> str:
        return f"at least {self.mostly:.0%} of non-null values in [{self.min_value}, {self.max_value}]"


@dataclass(frozen=True, kw_only=True)
class NullShare(ExpectationSpec):
    """The share of NULLs lies in ``[min_share, max_share]`` (the real share, give or take the tolerance)."""

    min_share: float
    max_share: float

    def describe(self) -> str:
        return f"a NULL share in [{self.min_share:.2f}, {self.max_share:.2f}]"


_CHECK_NAMES: dict[type[ExpectationSpec], str] = {
    NotNull: "not_null",
    Unique: "unique",
    ForeignKeyIntegrity: "foreign_key",
    ValueSet: "value_set",
    Range: "range",
    NullShare: "null_share",
}


@dataclass(frozen=True)
class TableSuite:
    """The expectations of one table."""

    table: str
    integrity: tuple[ExpectationSpec, ...] = ()
    profile: tuple[ExpectationSpec, ...] = ()

    @property
    def expectations(self) -> tuple[ExpectationSpec, ...]:
        return self.integrity + self.profile


@dataclass(frozen=True)
class SuiteSpec:
    """The whole suite: a picklable, engine-free description of what the target must satisfy.

    Attributes:
        name: the suite's name (prefix of the Great Expectations suites, one per table).
        tables: one entry per active table that has at least one expectation, in schema order.
        options: the tolerances the profile expectations were built with.
    """

    name: str
    tables: tuple[TableSuite, ...]
    options: SuiteOptions = field(default_factory=SuiteOptions)

    def table(self, name: str) -> TableSuite:
        """The suite of table ``name``; raises :class:`SchemaError` listing the tables otherwise."""
        for suite in self.tables:
            if suite.table == name:
                return suite
        known = ", ".join(s.table for s in self.tables) or "none"
        raise SchemaError(f"the validation suite has no table {name!r} (tables: {known})")

    def __iter__(self) -> Iterator[ExpectationSpec]:
        for suite in self.tables:
            yield from suite.expectations

    @property
    def integrity_count(self) -> int:
        return sum(len(s.integrity) for s in self.tables)

    @property
    def profile_count(self) -> int:
        return sum(len(s.profile) for s in self.tables)

    def summary(self) -> str:
        """One line: how many expectations of each half over how many tables."""
        return (
            f"suite {self.name!r}: {self.integrity_count} integrity and {self.profile_count} profile "
            f"expectations over {len(self.tables)} table(s)"
        )


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation on the target.

    Attributes:
        spec: the expectation.
        success: whether it held.
        gx_type: the Great Expectations expectation type that checked it.
        unexpected_count: rows that broke it (orphans for a foreign key), when the check counts rows.
        element_count: rows looked at, when known.
        observed: a short description of what was found (a share, an error message).
        examples: a few offending values, as text.
    """

    spec: ExpectationSpec
    success: bool
    gx_type: str
    unexpected_count: int | None = None
    element_count: int | None = None
    observed: str | None = None
    examples: tuple[str, ...] = ()

    def message(self) -> str:
        """A readable line: table, column(s), what was expected, what was found, the Great Expectations type."""
        found = []
        if self.unexpected_count is not None:
            of = f" of {self.element_count}" if self.element_count is not None else ""
            found.append(f"{self.unexpected_count} unexpected row(s){of}")
        if self.observed:
            found.append(self.observed)
        if self.examples:
            found.append("e.g. " + ", ".join(self.examples))
        what = "; ".join(found) or "it did not hold"
        return f"{self.spec.where}: expected {self.spec.describe()}, found {what} [{self.gx_type}]"


@dataclass(frozen=True)
class ValidationStatistics:
    """Counts over every expectation evaluated."""

    evaluated: int
    successful: int
    failed: int
    integrity_failed: int = 0
    profile_failed: int = 0


@dataclass(frozen=True)
class ValidationReport:
    """What validating the target found.

    Attributes:
        success: every integrity expectation held (and every profile one too when the run asked for it).
        integrity_failures: one readable line per failed integrity expectation (or missing table).
        profile_warnings: one line per failed profile expectation.
        statistics: counts of evaluated, successful and failed expectations.
        results_path: ``validation.json`` in the output folder.
        docs_path: Data Docs' ``index.html`` in the output folder, or None when none could be built.
        outcomes: every expectation's result, for reports.
    """

    success: bool
    integrity_failures: list[str]
    profile_warnings: list[str]
    statistics: ValidationStatistics
    results_path: Path
    docs_path: Path | None
    outcomes: list[ExpectationOutcome] = field(default_factory=list)


def build_suite(
    schema: DatabaseSchema,
    profiles: Mapping[str, TableProfile] | None = None,
    *,
    name: str = "synthdb",
    options: SuiteOptions | None = None,
) -> SuiteSpec:
    """Derive the validation suite from the schema and the real data's profiles. Pure: no engine, no I/O.

    Args:
        schema: the database schema; only active tables and columns are covered.
        profiles: per-table profiles of the real data, keyed by table name; without one, a table gets integrity
            expectations only.
        name: the suite's name.
        options: tolerances for the profile expectations (defaults: :class:`SuiteOptions`).

    Returns:
        The suite.

    Raises:
        ConfigError: when an option is out of range.
        SchemaError: listing every key that names a column the table does not have.
    """
    options = options or SuiteOptions()
    bad = options.problems()
    if bad:
        raise ConfigError("invalid validation options: " + "; ".join(bad))
    if not name.strip():
        raise ConfigError("the validation suite name must not be empty")
    problems: list[str] = []
    suites: list[TableSuite] = []
    for table in schema.active_tables:
        integrity = _integrity_specs(schema, table, problems)
        profile = _profile_specs(table, (profiles or {}).get(table.name), options)
        if integrity or profile:
            suites.append(TableSuite(table=table.name, integrity=tuple(integrity), profile=tuple(profile)))
    if problems:
        raise SchemaError(problems, header="The validation suite cannot be built")
    suite = SuiteSpec(name=name, tables=tuple(suites), options=options)
    log.debug("%s", suite.summary())
    return suite


def _integrity_specs(schema: DatabaseSchema, table: Table, problems: list[str]) -> list[ExpectationSpec]:
    specs: list[ExpectationSpec] = []
    active = {c.name for c in table.active_columns}
    not_null_seen: set[str] = set()

    def usable(what: str, columns: list[str]) -> bool:
        missing = [c for c in columns if c not in active]
        for col in missing:
            state = "is excluded" if table.has_column(col) else "does not exist"
            problems.append(
                f"table {table.name!r}: {what} names column {col!r}, which {state}; include the column or drop the key"
            )
        return bool(columns) and not missing

    def not_null(column: str, reason: str) -> None:
        if column not in not_null_seen:
            not_null_seen.add(column)
            specs.append(NotNull(table=table.name, columns=(column,), severity=Severity.INTEGRITY, reason=reason))

    pk = table.primary_key
    if pk is not None and usable("the primary key", pk.columns):
        for pk_col in pk.columns:
            not_null(pk_col, "primary key")
        specs.append(Unique(table=table.name, columns=tuple(pk.columns), severity=Severity.INTEGRITY,
                            reason="primary key"))
    for uq in table.unique:
        label = f"unique constraint {uq.name}" if uq.name else "unique constraint"
        if usable(label, uq.columns) and (pk is None or uq.columns != pk.columns):
            specs.append(Unique(table=table.name, columns=tuple(uq.columns), severity=Severity.INTEGRITY, reason=label))
    for col in table.active_columns:
        if not col.nullable:
            not_null(col.name, "NOT NULL")
    for child, fk in schema.iter_foreign_keys():
        if child.name != table.name:
            continue
        parent = schema.table(fk.ref_table)
        parent_active = {c.name for c in parent.active_columns}
        if any(c not in parent_active for c in fk.ref_columns):
            problems.append(
                f"table {table.name!r}: foreign key {fk.label} references parent columns that are excluded or "
                f"missing in {fk.ref_table!r}; include them or exclude the foreign key's columns"
            )
            continue
        if usable(f"foreign key {fk.label}", fk.columns):
            specs.append(
                ForeignKeyIntegrity(
                    table=table.name,
                    columns=tuple(fk.columns),
                    severity=Severity.INTEGRITY,
                    reason="foreign key",
                    ref_table=fk.ref_table,
                    ref_columns=tuple(fk.ref_columns),
                    name=fk.name,
                )
            )
    # A key declared twice (a unique index mirroring a constraint) is checked once.
    return list({spec.key: spec for spec in reversed(specs)}.values())[::-1]


_RANGE_FAMILIES = {Family.INTEGER, Family.FLOAT, Family.DECIMAL, Family.DATE, Family.TIMESTAMP}


def _profile_specs(table: Table, profile: TableProfile | None, options: SuiteOptions) -> list[ExpectationSpec]:
    if profile is None:
        return []
    specs: list[ExpectationSpec] = []
    keys = table.key_columns
    for col in table.active_columns:
        cp = profile.columns.get(col.name)
        if cp is None or cp.sample_rows == 0:
            continue
        if col.nullable:
            share = _null_share(table.name, col.name, cp, options)
            if share is not None:
                specs.append(share)
        # Keys are generated and PII is faked: neither is meant to reproduce the real values.
        if col.name in keys or not col.kind.is_learned or cp.non_null == 0:
            continue
        try:
            family = col.family
        except UnknownTypeError:
            continue
        spec: ExpectationSpec | None
        if col.kind in (Kind.CATEGORICAL, Kind.BOOLEAN):
            spec = _value_set(table.name, col.name, cp, options)
        elif col.kind in (Kind.NUMERIC, Kind.DATE, Kind.DATETIME) and family in _RANGE_FAMILIES:
            spec = _range(table.name, col.name, cp, options)
        else:
            spec = None
        if spec is not None:
            specs.append(spec)
    return specs


def _null_share(table: str, column: str, cp: ColumnProfile, options: SuiteOptions) -> NullShare | None:
    share = cp.null_share
    lo = max(0.0, round(share - options.null_share_tolerance, 6))
    hi = min(1.0, round(share + options.null_share_tolerance, 6))
    if lo <= 0.0 and hi >= 1.0:
        return None  # no bound at all
    return NullShare(table=table, columns=(column,), severity=Severity.PROFILE, reason="real data profile",
                     min_share=lo, max_share=hi)


def _value_set(table: str, column: str, cp: ColumnProfile, options: SuiteOptions) -> ValueSet | None:
    # Only when the profile saw every distinct value: a partial set would flag legitimate values.
    if cp.distinct_count > options.max_categories or len(cp.top_values) < cp.distinct_count:
        return None
    values = [_plain(v) for v, _ in cp.top_values]
    if not values or any(v is None or isinstance(v, (bytes, bytearray, float)) for v in values):
        return None  # floats compare inexactly across databases; bytes have no portable literal
    try:
        ordered = tuple(sorted(values))
    except TypeError:
        ordered = tuple(values)
    return ValueSet(table=table, columns=(column,), severity=Severity.PROFILE, reason="real data profile",
                    values=ordered, mostly=options.value_set_mostly)


def _range(table: str, column: str, cp: ColumnProfile, options: SuiteOptions) -> Range | None:
    lo, hi = _plain(cp.min), _plain(cp.max)
    if lo is None or hi is None:
        return None
    tol = options.range_tolerance
    if isinstance(lo, datetime) and isinstance(hi, datetime):
        if (lo.tzinfo is None) != (hi.tzinfo is None) or lo.tzinfo is not None:
            return None  # aware timestamps have no portable comparison across SQLite/MariaDB
        pad: timedelta = (hi - lo) * tol if hi > lo else timedelta(days=1)
        return _range_spec(table, column, lo - pad, hi + pad, options)
    if isinstance(lo, date) and isinstance(hi, date) and not isinstance(lo, datetime):
        days = math.ceil((hi - lo).days * tol) if hi > lo else 1
        return _range_spec(table, column, lo - timedelta(days=days), hi + timedelta(days=days), options)
    if isinstance(lo, bool) or isinstance(hi, bool):
        return None
    if isinstance(lo, (int, float, Decimal)) and isinstance(hi, (int, float, Decimal)):
        flo, fhi = float(lo), float(hi)
        if not (math.isfinite(flo) and math.isfinite(fhi)):
            return None
        pad_n = (fhi - flo) * tol if fhi > flo else max(abs(flo) * tol, 1.0)
        if isinstance(lo, int) and isinstance(hi, int):
            return _range_spec(table, column, math.floor(flo - pad_n), math.ceil(fhi + pad_n), options)
        return _range_spec(table, column, flo - pad_n, fhi + pad_n, options)
    return None


def _range_spec(table: str, column: str, lo: Any, hi: Any, options: SuiteOptions) -> Range:
    return Range(table=table, columns=(column,), severity=Severity.PROFILE, reason="real data profile",
                 min_value=lo, max_value=hi, mostly=options.range_mostly)


def _plain(value: Any) -> Any:
    """A plain Python value (numpy scalars from a profile become ints, floats, strings)."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def validate_target(
    url: str,
    schema: DatabaseSchema,
    suite: SuiteSpec,
    out_dir: Path,
    *,
    db_schema: str | None = None,
    table_names: Mapping[str, str] | None = None,
    fail_on_profile: bool = False,
) -> ValidationReport:
    """Run the suite on a SQL target and write ``validation.json`` and Data Docs into ``out_dir``.

    Every check runs in the database (counts, group-bys, LEFT JOINs), in one pass per table (more for a table with
    over 150 checks or 30 foreign keys); no table is loaded into memory. Only failed checks run again, one by one.

    Args:
        url: SQLAlchemy URL of the target (SQLite, PostgreSQL or MariaDB/MySQL).
        schema: the schema the suite was built from (supplies dialect-independent names only).
        suite: the suite from :func:`build_suite`.
        out_dir: folder for ``validation.json`` and ``data_docs/``; created when missing. Nothing is written
            elsewhere.
        db_schema: the PostgreSQL schema, or the MariaDB/MySQL database, to validate (for example the staging
            area); None for the URL's default.
        table_names: physical table names by logical name, where they differ (for example a staging prefix).
        fail_on_profile: count failed profile expectations as failures too, not just warnings.

    Returns:
        The report; ``success`` is False when an integrity expectation failed or a table is missing.

    Raises:
        ConfigError: when ``db_schema`` is given for SQLite, or the URL is not a SQL URL.
        ConnectorError: when the target cannot be reached.
    """
    from pipelines._internal.gx_runner import run_suite

    unknown = [s.table for s in suite.tables if not schema.has_table(s.table)]
    if unknown:
        raise SchemaError(
            [f"the suite covers table {t!r}, which the schema does not have; rebuild the suite" for t in unknown],
            header="The validation suite does not match the schema",
        )
    return run_suite(
        url,
        suite,
        Path(out_dir),
        db_schema=db_schema,
        table_names=dict(table_names or {}),
        fail_on_profile=fail_on_profile,
    )
