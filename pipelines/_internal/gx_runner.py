"""Run a :class:`~pipelines.expectations.SuiteSpec` with Great Expectations 1.x on a SQL database.

Private to :mod:`pipelines.expectations`. Everything Great Expectations-specific lives here.

The suite runs in few set-based passes. Each table's checks (NULL counts, duplicate keys, value sets, ranges,
NULL shares and foreign-key orphans) become one ``UnexpectedRowsExpectation`` whose query scans the table once:
one aggregate over the table LEFT JOINed to each parent's distinct keys, plus one GROUP BY per unique key, with a
row out for each check that failed (naming it, with its counts). GX runs those in one checkpoint on an ephemeral
context (in-memory stores, no analytics, no progress bars). Only when a check failed is it run again as its own
Great Expectations expectation (``expect_column_values_to_not_be_null``, ``..._to_be_unique``, ...), on the
same batch, so the failure is reported in GX's terms with its examples. Data Docs are built once, at the end, into
the output folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import sqlite3
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pipelines.expectations import (
    ExpectationOutcome,
    ExpectationSpec,
    ForeignKeyIntegrity,
    NotNull,
    NullShare,
    Range,
    Severity,
    SuiteSpec,
    Unique,
    ValidationReport,
    ValidationStatistics,
    ValueSet,
)
from schemas.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

log = logging.getLogger(__name__)

_SITE = "synthdb_local_site"
_META_KEY = "synthdb_key"
_GX_LOGGER = "great_expectations"
_MAX_EXAMPLES = 5


def run_suite(
    url: str,
    suite: SuiteSpec,
    out_dir: Path,
    *,
    db_schema: str | None,
    table_names: dict[str, str],
    fail_on_profile: bool,
) -> ValidationReport:
    """See :func:`pipelines.expectations.validate_target`."""
    target = _Target.from_url(url, db_schema)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs_dir = out_dir / "data_docs"
    physical = {s.table: table_names.get(s.table, s.table) for s in suite.tables}
    missing = target.missing_tables(sorted(set(physical.values())))

    failures: list[str] = []
    for logical, name in physical.items():
        if name in missing:
            where = f" in {target.namespace_label}" if target.namespace_label else ""
            failures.append(
                f"table {logical!r}: expected table {name!r}{where} in the target, found none; "
                "check that the write stage ran and that the schema/database name is right"
            )

    runnable = [s for s in suite.tables if physical[s.table] not in missing and s.expectations]
    missing_logical = {t for t, name in physical.items() if name in missing}
    gx_results: dict[str, dict[str, Any]] = {}
    rerun_results: dict[str, dict[str, Any]] = {}
    found: dict[str, ExpectationOutcome] = {}
    with _quiet_gx():
        context = _context(docs_dir)
        try:
            with _Session(context, target, suite, runnable, physical) as session:
                passes, skipped = session.plan_passes(missing_logical)
                found.update(skipped)
                for table, result in session.run_passes(passes):
                    gx_results[table] = result.to_json_dict()
                    found.update(_pass_outcomes(passes, result))
                # Only what a pass flagged runs again, as its own GX expectation, for GX's terms and examples (a
                # foreign key as the LEFT JOIN UnexpectedRowsExpectation). A pass that raised runs all its checks
                # again, so one bad column does not hide the others.
                rerun = [o.spec for o in found.values() if not o.success and o.spec.key not in skipped]
                by_key = {spec.key: spec for spec in suite}
                for table, result in session.run_native(rerun):
                    rerun_results[table] = result.to_json_dict()
                    for res in result.results:
                        key = (res.expectation_config.meta or {}).get(_META_KEY)
                        spec = by_key.get(key) if key else None
                        if spec is not None:
                            native = _outcome(spec, res)
                            if native.success:
                                log.warning(
                                    "%s: the set-based pass found it broken, its own expectation %s did not; "
                                    "reporting it as it holds", spec.where, native.gx_type,
                                )
                            found[spec.key] = native
            docs_built = bool(context.build_data_docs(site_names=[_SITE]))
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001  # GX wraps driver errors in many types; all end the run
            raise ConnectorError(
                f"validating {target.redacted} with Great Expectations failed: {target.redact(str(exc))}",
                retryable=False,
            ) from None
    outcomes = list(found.values())
    # An expectation GX silently dropped must not count as passed.
    outcomes += [
        ExpectationOutcome(spec=spec, success=False, gx_type="none", observed="no result from Great Expectations")
        for table_suite in runnable
        for spec in table_suite.expectations
        if spec.key not in found
    ]
    order = {spec.key: i for i, spec in enumerate(suite)}
    outcomes.sort(key=lambda o: order[o.spec.key])

    warnings_: list[str] = []
    for outcome in outcomes:
        if outcome.success:
            continue
        if outcome.spec.severity is Severity.INTEGRITY:
            failures.append(outcome.message())
        else:
            warnings_.append(outcome.message())
    failed = sum(not o.success for o in outcomes)
    stats = ValidationStatistics(
        evaluated=len(outcomes),
        successful=len(outcomes) - failed,
        failed=failed,
        integrity_failed=sum(not o.success and o.spec.severity is Severity.INTEGRITY for o in outcomes),
        profile_failed=sum(not o.success and o.spec.severity is Severity.PROFILE for o in outcomes),
    )
    success = not failures and not (fail_on_profile and warnings_)
    results_path = out_dir / "validation.json"
    payload: dict[str, Any] = {
        "suite": suite.name,
        "success": success,
        "target": target.redacted,
        "db_schema": target.db_schema,
        "statistics": dataclasses.asdict(stats),
        "integrity_failures": failures,
        "profile_warnings": warnings_,
        "missing_tables": sorted(missing),
        "outcomes": [_outcome_json(o) for o in outcomes],
        # per table: the set-based pass (one UnexpectedRowsExpectation per pass, a row per failed check)
        "great_expectations": gx_results,
    }
    if rerun_results:
        # per table: the failed checks, each run again as its own expectation
        payload["great_expectations_failed_checks"] = rerun_results
    _write_json(results_path, payload, target)
    index = docs_dir / "index.html"
    log.info(
        "validation of %s: %d/%d expectations held, %d integrity failure(s), %d profile warning(s)",
        target.redacted, stats.successful, stats.evaluated, len(failures), len(warnings_),
    )
    return ValidationReport(
        success=success,
        integrity_failures=failures,
        profile_warnings=warnings_,
        statistics=stats,
        results_path=results_path,
        docs_path=index if docs_built and index.exists() else None,
        outcomes=outcomes,
    )


class _Target:
    """The SQL target as Great Expectations should see it: connection string, engine kwargs, quoting."""

    def __init__(self, url: URL, db_schema: str | None) -> None:
        self.url = url
        self.db_schema = db_schema
        self.backend = url.get_backend_name()
        self.redacted = url.render_as_string(hide_password=True)
        self.engine_kwargs: dict[str, Any] = {}
        if self.backend == "sqlite":
            if db_schema not in (None, "main"):
                raise ConfigError(
                    f"db_schema {db_schema!r} was given for a SQLite target ({self.redacted}); SQLite has no "
                    "schemas: leave it empty, or map the staging tables with table_names"
                )
            self.db_schema = None
        elif self.backend in ("mysql", "mariadb"):
            if db_schema:
                # A MySQL "schema" is a database: connect to it, so unqualified names resolve there.
                self.url = url.set(database=db_schema)
        elif self.backend == "postgresql":
            if db_schema:
                # TableAsset.schema_name is deprecated in GX 1.x: put the schema first on the search path so the
                # table assets resolve in it. Backslash-escaping is libpq's rule for spaces in -c values.
                quoted = url.get_dialect()().identifier_preparer.quote_identifier(db_schema)
                value = quoted.replace("\\", "\\\\").replace(" ", "\\ ")
                self.engine_kwargs = {"connect_args": {"options": f"-csearch_path={value}"}}
        else:
            log.warning("validating a %s target: only SQLite, PostgreSQL and MariaDB/MySQL are tested", self.backend)
        self._engine = sa.create_engine(self.url, **self.engine_kwargs)
        # Pass queries are SQL text that SQLAlchemy runs as text(), which doubles '%' for pyformat drivers itself:
        # render identifiers and literals with the named paramstyle, which doubles nothing.
        self._plain = cast(Any, self.url.get_dialect())(paramstyle="named")
        self.has_filter = self.backend == "postgresql" or (
            self.backend == "sqlite" and sqlite3.sqlite_version_info >= (3, 30)
        )

    @classmethod
    def from_url(cls, url: str, db_schema: str | None) -> _Target:
        try:
            parsed = make_url(url)
            parsed.get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            shown = url.split("@")[-1] if "@" in url else url
            raise ConfigError(
                f"the target URL (...{shown}) is not a SQLAlchemy database URL: {exc}; "
                "use e.g. postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db or sqlite:///path.db"
            ) from None
        return cls(parsed, db_schema)

    @property
    def namespace_label(self) -> str:
        if not self.db_schema:
            return ""
        return f"database {self.db_schema!r}" if self.backend in ("mysql", "mariadb") else f"schema {self.db_schema!r}"

    def redact(self, text: str) -> str:
        password = self.url.password
        return text.replace(str(password), "***") if password else text

    def missing_tables(self, names: list[str]) -> set[str]:
        """The physical tables, among ``names``, that the target does not have (one cheap catalog query)."""
        try:
            with self._engine.connect() as conn:
                existing = set(sa.inspect(conn).get_table_names(schema=self.db_schema))
        except sa.exc.SQLAlchemyError as exc:
            raise ConnectorError(
                f"cannot read the tables of the target {self.redacted}"
                f"{' (' + self.namespace_label + ')' if self.db_schema else ''}: "
                f"{self.redact(str(exc).splitlines()[0])}; check that the server is up and the URL is right",
                retryable=True,
            ) from None
        finally:
            self._engine.dispose()
        return {n for n in names if n not in existing}

    def quote(self, name: str) -> str:
        """Always-quoted identifier for GX's query text: braces doubled so ``str.format`` (GX's ``{batch}``)
        leaves them alone, colons escaped so ``sqlalchemy.text()`` sees no bind parameter."""
        return self.quote_raw(name).replace("{", "{{").replace("}", "}}").replace(":", "\\:")

    def qualified(self, table: str) -> str:
        if self.db_schema:
            return f"{self.quote(self.db_schema)}.{self.quote(table)}"
        return self.quote(table)

    def quote_raw(self, name: str) -> str:
        """Always-quoted identifier, as the database reads it (braces and colons are escaped per query)."""
        return str(self._plain.identifier_preparer.quote_identifier(name))

    def qualified_raw(self, table: str) -> str:
        if self.db_schema:
            return f"{self.quote_raw(self.db_schema)}.{self.quote_raw(table)}"
        return self.quote_raw(table)

    def literal(self, value: Any) -> str:
        """A SQL literal of ``value``, typed by its Python type as GX binds it (``sqlalchemy.literal``)."""
        return str(sa.literal(value).compile(dialect=self._plain, compile_kwargs={"literal_binds": True}))


@contextlib.contextmanager
def _quiet_gx() -> Iterator[None]:
    """No GX chatter: no deprecation noise, no routine INFO/WARNING logs, no analytics (set before import)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_logger = logging.getLogger(_GX_LOGGER)
    previous = gx_logger.level
    if previous == logging.NOTSET:
        # GX logs routine events (context creation, store fallbacks) at WARNING; a user who configured the
        # logger explicitly keeps their level.
        gx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        gx_logger.setLevel(previous)


def _context(docs_dir: Path) -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            _SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    # Ephemeral: stores live in memory, so nothing but the Data Docs site touches the disk.
    return gx.get_context(mode="ephemeral", project_config=config)


def _slug(text: str) -> str:
    # GX turns suite names into paths and splits them on dots: keep word characters only (café stays café).
    return re.sub(r"[^\w-]+", "_", text).strip("_") or "table"


_BATCH = "__synthdb_batch__"  # stands for GX's ``{batch}`` while a pass query is assembled
_PASS_META = "synthdb_pass"
# Bounds on one pass: every failed check must come back (GX fetches at most MAX_RESULT_RECORDS = 200 rows), and
# MariaDB/MySQL join at most 61 tables in one query.
_PASS_MAX_CHECKS = 150
_PASS_MAX_JOINS = 30
_OK_MEANS_ZERO = (NotNull, Unique, ForeignKeyIntegrity)  # checks that hold only when nothing is unexpected


@dataclasses.dataclass(frozen=True)
class _Pass:
    """One set-based query over one table: the checks it covers, in the order of its ``synthdb_check`` index."""

    table: str
    specs: tuple[ExpectationSpec, ...]
    query: str


class _PassQuery:
    """Builds one pass: an aggregate over the batch (LEFT JOINed to each parent's distinct keys), one GROUP BY per
    unique key, and a row out per failed check. The query is SQL text for ``UnexpectedRowsExpectation``; literals
    are rendered by SQLAlchemy for the dialect (dates in SQLite's storage format, booleans as the dialect wants)."""

    def __init__(self, target: _Target, physical: dict[str, str]) -> None:
        self.target = target
        self.physical = physical
        self.items: dict[str, str] = {}
        self.joins: list[str] = []
        self.groups: list[str] = []
        self.checks: list[tuple[ExpectationSpec, str, str, str]] = []  # spec, unexpected, non-null, failed
        self.rows = self._agg("COUNT(*)")

    def full(self, spec: ExpectationSpec) -> bool:
        return len(self.checks) >= _PASS_MAX_CHECKS or (
            isinstance(spec, ForeignKeyIntegrity) and len(self.joins) >= _PASS_MAX_JOINS
        )

    def _agg(self, expr: str) -> str:
        alias = self.items.setdefault(expr, f"x{len(self.items)}")
        return f"a.{alias}"

    def _count_where(self, condition: str) -> str:
        # FILTER is three times faster than COUNT(CASE ...) on SQLite (3.30+); PostgreSQL has it too, MariaDB not.
        if self.target.has_filter:
            return f"COUNT(*) FILTER (WHERE {condition})"
        return f"COUNT(CASE WHEN {condition} THEN 1 END)"

    def _col(self, name: str, alias: str = "c") -> str:
        return f"{alias}.{self.target.quote_raw(name)}"

    def add(self, spec: ExpectationSpec) -> None:
        q = self._col
        n = self.rows
        none = "NULL"
        if isinstance(spec, NotNull):
            nn = self._agg(f"COUNT({q(spec.columns[0])})")
            self.checks.append((spec, f"{n} - {nn}", none, f"{nn} < {n}"))
        elif isinstance(spec, Unique):
            j = len(self.groups)
            cols = ", ".join(q(c, "u") for c in spec.columns)
            complete = " AND ".join(f"{q(c, 'u')} IS NOT NULL" for c in spec.columns)
            # Rows whose key another row shares, as GX counts them (both rows of a duplicated pair).
            self.groups.append(
                f"(SELECT COALESCE(SUM(g.n), 0) AS d FROM (SELECT COUNT(*) AS n FROM {_BATCH} AS u "
                f"WHERE {complete} GROUP BY {cols} HAVING COUNT(*) > 1) AS g) AS u{j}"
            )
            self.checks.append((spec, f"u{j}.d", none, f"u{j}.d > 0"))
        elif isinstance(spec, ForeignKeyIntegrity):
            j = len(self.joins)
            parent_cols = [self.target.quote_raw(c) for c in spec.ref_columns]
            parent = self.target.qualified_raw(self.physical.get(spec.ref_table, spec.ref_table))
            on = " AND ".join(f"{q(a)} = p{j}.{b}" for a, b in zip(spec.columns, parent_cols, strict=True))
            # The parent side is a derived table of its distinct complete keys (see _fk_query): at most one match
            # per child row, so the joins never multiply rows, and MariaDB indexes the derived table.
            self.joins.append(
                f"LEFT JOIN (SELECT DISTINCT {', '.join(parent_cols)} FROM {parent} WHERE "
                + " AND ".join(f"{b} IS NOT NULL" for b in parent_cols)
                + f") AS p{j} ON {on}"
            )
            complete = " AND ".join(f"{q(c)} IS NOT NULL" for c in spec.columns)
            orphans = self._agg(self._count_where(f"{complete} AND p{j}.{parent_cols[0]} IS NULL"))
            self.checks.append((spec, orphans, none, f"{orphans} > 0"))
        elif isinstance(spec, (ValueSet, Range)):
            col = q(spec.columns[0])
            nn = self._agg(f"COUNT({col})")
            if isinstance(spec, ValueSet):
                outside = f"{col} NOT IN ({', '.join(self.target.literal(v) for v in spec.values)})"
            else:
                lo, hi = self.target.literal(spec.min_value), self.target.literal(spec.max_value)
                outside = f"{col} NOT BETWEEN {lo} AND {hi}"  # GX: NOT (col >= lo AND col <= hi)
            bad = self._agg(self._count_where(outside))
            # GX: (non-null - unexpected) / non-null >= mostly, vacuously true without a non-null value;
            # compared in integers so no database rounds it differently.
            num, den = _ratio(spec.mostly)
            self.checks.append((spec, bad, nn, f"{nn} > 0 AND {den} * ({nn} - {bad}) < {num} * {nn}"))
        elif isinstance(spec, NullShare):
            nn = self._agg(f"COUNT({q(spec.columns[0])})")
            # GX: the non-null proportion (0 for an empty table) lies in [1 - max_share, 1 - min_share].
            least, most = round(1.0 - spec.max_share, 6), round(1.0 - spec.min_share, 6)
            parts = []
            if least > 0:
                num, den = _ratio(least)
                parts.append(f"{n} = 0 OR {den} * {nn} < {num} * {n}")
            if most < 1:
                num, den = _ratio(most)
                parts.append(f"{den} * {nn} > {num} * {n}")
            self.checks.append((spec, f"{n} - {nn}", nn, " OR ".join(f"({p})" for p in parts) or "1 = 0"))
        else:
            raise TypeError(f"no set-based check for {type(spec).__name__}")

    def build(self, table: str) -> _Pass:
        def case(values: list[str]) -> str:
            return "CASE k.i " + " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values)) + " END"

        specs = [c[0] for c in self.checks]
        aggregate = (
            "SELECT " + ", ".join(f"{expr} AS {alias}" for expr, alias in self.items.items())
            + f" FROM {_BATCH} AS c" + "".join(f" {j}" for j in self.joins)
        )
        numbers = " UNION ALL ".join(f"SELECT {i}" + (" AS i" if i == 0 else "") for i in range(len(specs)))
        failed = case([f"CASE WHEN {c[3]} THEN 1 ELSE 0 END" for c in self.checks])
        query = (
            f"SELECT k.i AS synthdb_check, {case([self.target.literal(s.key) for s in specs])} AS expectation, "
            f"{case([c[1] for c in self.checks])} AS unexpected_count, {self.rows} AS element_count, "
            f"{case([c[2] for c in self.checks])} AS nonnull_count "
            f"FROM ({aggregate}) AS a" + "".join(f" CROSS JOIN {g}" for g in self.groups)
            + f" CROSS JOIN ({numbers}) AS k WHERE {failed} = 1"
        )
        # GX formats the query with str.format and runs it as sqlalchemy.text(): double the braces and escape
        # the colons (a value 'a :b' is not a bind parameter), then put GX's placeholder in.
        escaped = query.replace("{", "{{").replace("}", "}}").replace(":", "\\:")
        return _Pass(table=table, specs=tuple(specs), query=escaped.replace(_BATCH, "{batch}"))


_CHECKS_EXPECTATION: list[Any] = []


def _checks_expectation() -> Any:
    """``ExpectSynthdbChecksToPass``: an ``UnexpectedRowsExpectation`` that runs its query once.

    The stock expectation runs the query twice (the rows, then ``COUNT(*)`` over it), which for a pass is two scans
    of the table. A pass yields a row per failed check, never more than the 200 rows GX fetches
    (``_PASS_MAX_CHECKS``), so the rows fetched are all there are and their number is the count. Defined on first
    use (GX registers an expectation class by name, once per process, and is imported late).
    """
    if _CHECKS_EXPECTATION:
        return _CHECKS_EXPECTATION[0]
    from great_expectations.expectations import UnexpectedRowsExpectation  # type: ignore[attr-defined]

    class ExpectSynthdbChecksToPass(UnexpectedRowsExpectation):
        """A pass of synthdb's set-based checks on one table: a row per failed check, none when all hold."""

        metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.table",)

        def _validate(
            self, metrics: dict[str, Any], runtime_configuration: dict[str, Any] | None = None,
            execution_engine: Any = None,
        ) -> dict[str, Any]:
            rows = list(metrics["unexpected_rows_query.table"] or [])
            return {
                "success": not rows,
                "result": {"observed_value": len(rows), "details": {"unexpected_rows": rows}},
            }

    _CHECKS_EXPECTATION.append(ExpectSynthdbChecksToPass)
    return ExpectSynthdbChecksToPass


def _ratio(value: float) -> tuple[int, int]:
    frac = Fraction(value).limit_denominator(1_000_000)
    return frac.numerator, frac.denominator


class _Session:
    """One data source, one table asset and whole-table batch per table, shared by the passes and the reruns."""

    def __init__(
        self,
        context: AbstractDataContext,
        target: _Target,
        suite: SuiteSpec,
        tables: list[Any],
        physical: dict[str, str],
    ) -> None:
        self.context = context
        self.target = target
        self.suite = suite
        self.tables = tables
        self.physical = physical
        self.datasource: Any = None
        self.batches: dict[str, tuple[str, Any]] = {}

    def __enter__(self) -> Self:
        if not self.tables:
            return self
        params: dict[str, Any] = {
            "name": "synthdb_target",
            "connection_string": self.target.url.render_as_string(hide_password=False),
        }
        if self.target.engine_kwargs:
            params["kwargs"] = self.target.engine_kwargs  # passed to create_engine (the PostgreSQL search_path)
        sources = self.context.data_sources
        if self.target.backend == "sqlite":
            self.datasource = sources.add_sqlite(**params)
        elif self.target.backend == "postgresql":
            self.datasource = sources.add_postgres(**params)
        else:
            self.datasource = sources.add_sql(**params)
        try:
            for i, table_suite in enumerate(self.tables):
                table = table_suite.table
                label = f"{i:03d}_{_slug(table)}"
                # A name wrapped in double quotes makes GX keep it as a quoted identifier (reserved words, case,
                # café); SQLAlchemy then quotes it for the dialect (backticks on MariaDB).
                asset = self.datasource.add_table_asset(name=label, table_name=f'"{self.physical[table]}"')
                self.batches[table] = (label, asset.add_batch_definition_whole_table("whole_table"))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.datasource is not None:
            # Return every pooled connection now: a later staging swap (RENAME on MariaDB) must not wait on them.
            self.datasource.get_engine().dispose()

    def plan_passes(self, missing: set[str]) -> tuple[list[_Pass], dict[str, ExpectationOutcome]]:
        """The passes of every table, and the outcome of each foreign key whose parent table is missing."""
        passes: list[_Pass] = []
        skipped: dict[str, ExpectationOutcome] = {}
        for table_suite in self.tables:
            builder = _PassQuery(self.target, self.physical)
            for spec in table_suite.expectations:
                if isinstance(spec, ForeignKeyIntegrity) and spec.ref_table in missing:
                    skipped[spec.key] = ExpectationOutcome(
                        spec=spec, success=False, gx_type="none",
                        observed=f"no parent table {self.physical.get(spec.ref_table, spec.ref_table)!r} to look in",
                    )
                    continue
                if builder.full(spec):
                    passes.append(builder.build(table_suite.table))
                    builder = _PassQuery(self.target, self.physical)
                builder.add(spec)
            if builder.checks:
                passes.append(builder.build(table_suite.table))
        return passes, skipped

    def run_passes(self, passes: list[_Pass]) -> list[tuple[str, Any]]:
        checks_expectation = _checks_expectation()
        per_table: dict[str, list[Any]] = {}
        for i, one in enumerate(passes):
            integrity = any(s.severity is Severity.INTEGRITY for s in one.specs)
            per_table.setdefault(one.table, []).append(
                checks_expectation(
                    unexpected_rows_query=one.query,
                    description=f"{one.table}: {len(one.specs)} checks in one pass; a row per failed check",
                    meta={_PASS_META: i},
                    severity="critical" if integrity else "warning",
                )
            )
        # COMPLETE: the rows (one per failed check, at most _PASS_MAX_CHECKS) come back in the result.
        return self._run("", per_table, "COMPLETE")

    def run_native(self, specs: list[ExpectationSpec]) -> list[tuple[str, Any]]:
        per_table: dict[str, list[Any]] = {}
        for spec in specs:
            per_table.setdefault(spec.table, []).append(_to_gx(spec, self.target, self.physical))
        # BASIC: counts and a few examples, without the extra GROUP BY queries of SUMMARY.
        return self._run("__failed", per_table, "BASIC")

    def _run(
        self, suffix: str, per_table: dict[str, list[Any]], result_format: Literal["BASIC", "COMPLETE"]
    ) -> list[tuple[str, Any]]:
        import great_expectations as gx

        if not per_table:
            return []
        definitions = []
        suite_tables: dict[str, str] = {}
        for table, expectations in per_table.items():
            label, batch = self.batches[table]
            gx_suite = self.context.suites.add(
                gx.ExpectationSuite(name=f"{_slug(self.suite.name)}__{label}{suffix}", expectations=expectations)
            )
            suite_tables[gx_suite.name] = table
            definitions.append(
                self.context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{label}{suffix}", data=batch, suite=gx_suite)
                )
            )
        # No actions: the Data Docs are built once, after every run (an update action rebuilds them per table).
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=f"{_slug(self.suite.name)}__checkpoint{suffix}",
                validation_definitions=definitions,
                actions=[],
                result_format=result_format,
            )
        )
        result = checkpoint.run()
        return [(suite_tables[r.suite_name], r) for r in result.run_results.values()]


def _pass_outcomes(passes: list[_Pass], result: Any) -> dict[str, ExpectationOutcome]:
    """Each check's outcome from its table's pass: failed where a row names it (or everywhere, when the pass
    raised), held otherwise."""
    found: dict[str, ExpectationOutcome] = {}
    for res in result.results:
        index = (res.expectation_config.meta or {}).get(_PASS_META)
        if not isinstance(index, int) or not 0 <= index < len(passes):
            continue
        one = passes[index]
        gx_type = res.expectation_config.type
        info = res.exception_info or {}
        raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
        details = (res.result or {}).get("details") or {}
        rows = details.get("unexpected_rows")
        if raised or (not res.success and not rows):
            message = str(info.get("exception_message") or "the check raised an error").splitlines()[0]
            for spec in one.specs:
                found[spec.key] = ExpectationOutcome(
                    spec=spec, success=False, gx_type=gx_type, observed=f"an error: {message}"
                )
            continue
        failed: dict[int, dict[str, Any]] = {}
        for row in rows or []:
            row = {str(k).lower(): v for k, v in dict(row).items()}
            i = _int(row.get("synthdb_check"))
            if i is not None and 0 <= i < len(one.specs):
                failed[i] = row
        for i, spec in enumerate(one.specs):
            row = failed.get(i)
            if row is None:
                zero = 0 if isinstance(spec, _OK_MEANS_ZERO) else None
                found[spec.key] = ExpectationOutcome(spec=spec, success=True, gx_type=gx_type, unexpected_count=zero)
                continue
            found[spec.key] = _failed_check(spec, gx_type, row)
    return found


def _failed_check(spec: ExpectationSpec, gx_type: str, row: dict[str, Any]) -> ExpectationOutcome:
    unexpected, rows, nonnull = (_int(row.get(k)) for k in ("unexpected_count", "element_count", "nonnull_count"))
    observed: str | None = None
    if isinstance(spec, ForeignKeyIntegrity):
        rows = None
        observed = "child rows whose parent row is missing (orphans)"
    elif isinstance(spec, NullShare):
        observed = f"a NULL share of {(unexpected or 0) / rows:.3f}" if rows else "a NULL share of 0 (no rows)"
        unexpected = rows = None
    elif isinstance(spec, (ValueSet, Range)) and unexpected is not None and nonnull:
        observed = f"{unexpected / nonnull:.1%} of non-null rows outside"
    return ExpectationOutcome(
        spec=spec, success=False, gx_type=gx_type, unexpected_count=unexpected, element_count=rows, observed=observed
    )


def _to_gx(spec: ExpectationSpec, target: _Target, physical: dict[str, str]) -> Any:
    from great_expectations.expectations import (  # type: ignore[attr-defined]  # GX has no __all__
        ExpectColumnProportionOfNonNullValuesToBeBetween,
        ExpectColumnValuesToBeBetween,
        ExpectColumnValuesToBeInSet,
        ExpectColumnValuesToBeUnique,
        ExpectColumnValuesToNotBeNull,
        ExpectCompoundColumnsToBeUnique,
        UnexpectedRowsExpectation,
    )

    meta = {_META_KEY: spec.key, "severity": spec.severity.value, "reason": spec.reason}
    common: dict[str, Any] = {
        "meta": meta,
        "severity": "critical" if spec.severity is Severity.INTEGRITY else "warning",
    }
    columns = list(spec.columns)
    if isinstance(spec, NotNull):
        return ExpectColumnValuesToNotBeNull(column=columns[0], **common)
    if isinstance(spec, Unique):
        if len(columns) == 1:
            return ExpectColumnValuesToBeUnique(column=columns[0], **common)
        # NULLs are checked by NotNull (keys) or allowed by SQL (unique constraints): compare complete keys only.
        return ExpectCompoundColumnsToBeUnique(
            column_list=columns, ignore_row_if="any_value_is_missing", **common
        )
    if isinstance(spec, ForeignKeyIntegrity):
        return UnexpectedRowsExpectation(
            unexpected_rows_query=_fk_query(spec, target, physical),
            description=f"{spec.table}: {spec.label} — every non-null key has a parent row",
            **common,
        )
    if isinstance(spec, ValueSet):
        return ExpectColumnValuesToBeInSet(
            column=columns[0], value_set=list(spec.values), mostly=spec.mostly, **common
        )
    if isinstance(spec, Range):
        return ExpectColumnValuesToBeBetween(
            column=columns[0], min_value=spec.min_value, max_value=spec.max_value, mostly=spec.mostly, **common
        )
    if isinstance(spec, NullShare):
        return ExpectColumnProportionOfNonNullValuesToBeBetween(
            column=columns[0],
            min_value=round(1.0 - spec.max_share, 6),
            max_value=round(1.0 - spec.min_share, 6),
            **common,
        )
    raise TypeError(f"no Great Expectations translation for {type(spec).__name__}")


def _fk_query(spec: ForeignKeyIntegrity, target: _Target, physical: dict[str, str]) -> str:
    """Child rows with a complete key and no parent: a LEFT JOIN anti-join, run entirely in the database.

    The parent side is a derived table of its distinct complete keys rather than the bare table: MariaDB has no
    hash join, and without an index on the parent (a staging area before its keys are added) a plain LEFT JOIN is
    a nested loop (a minute for 340k x 1k rows). It materialises a derived table with an automatic index instead
    (a quarter of a second); PostgreSQL and SQLite plan it as a hash join / automatic index either way.
    """
    child = [target.quote(c) for c in spec.columns]
    parent_cols = [target.quote(c) for c in spec.ref_columns]
    parent = target.qualified(physical.get(spec.ref_table, spec.ref_table))
    keys = ", ".join(parent_cols)
    parent_complete = " AND ".join(f"{b} IS NOT NULL" for b in parent_cols)
    on = " AND ".join(f"c.{a} = p.{b}" for a, b in zip(child, parent_cols, strict=True))
    complete = " AND ".join(f"c.{a} IS NOT NULL" for a in child)
    return (
        f"SELECT {', '.join(f'c.{a}' for a in child)} FROM {{batch}} AS c "
        f"LEFT JOIN (SELECT DISTINCT {keys} FROM {parent} WHERE {parent_complete}) AS p ON {on} "
        f"WHERE {complete} AND p.{parent_cols[0]} IS NULL"
    )


def _outcome(spec: ExpectationSpec, res: Any) -> ExpectationOutcome:
    result: dict[str, Any] = dict(res.result or {})
    info = res.exception_info or {}
    gx_type = res.expectation_config.type
    raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
    if raised:
        message = str(info.get("exception_message") or "the check raised an error").splitlines()[0]
        return ExpectationOutcome(spec=spec, success=False, gx_type=gx_type, observed=f"an error: {message}")
    unexpected = _int(result.get("unexpected_count"))
    element = _int(result.get("element_count"))
    observed: str | None = None
    if isinstance(spec, ForeignKeyIntegrity):
        unexpected = _int(result.get("observed_value"))
        element = None
        observed = "child rows whose parent row is missing (orphans)" if unexpected else None
    elif isinstance(spec, NullShare):
        value = result.get("observed_value")
        if isinstance(value, (int, float)):
            observed = f"a NULL share of {1.0 - float(value):.3f}"
    elif isinstance(spec, (ValueSet, Range)) and unexpected is not None:
        base = element - (_int(result.get("missing_count")) or 0) if element is not None else None
        if base:
            observed = f"{unexpected / base:.1%} of non-null rows outside"
    examples = tuple(repr(v) for v in (result.get("partial_unexpected_list") or [])[:_MAX_EXAMPLES])
    if isinstance(spec, (Unique, NotNull)):
        examples = () if isinstance(spec, NotNull) else tuple(dict.fromkeys(examples))
    return ExpectationOutcome(
        spec=spec,
        success=bool(res.success),
        gx_type=gx_type,
        unexpected_count=unexpected,
        element_count=element,
        observed=observed,
        examples=examples,
    )


def _int(value: Any) -> int | None:
    # MariaDB returns some counts as Decimal/float; a count is an integer.
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _outcome_json(o: ExpectationOutcome) -> dict[str, Any]:
    spec = o.spec
    data: dict[str, Any] = {
        "table": spec.table,
        "columns": list(spec.columns),
        "check": spec.check,
        "severity": spec.severity.value,
        "reason": spec.reason,
        "expected": spec.describe(),
        "gx_type": o.gx_type,
        "success": o.success,
        "unexpected_count": o.unexpected_count,
        "element_count": o.element_count,
        "observed": o.observed,
        "examples": list(o.examples),
    }
    if isinstance(spec, ForeignKeyIntegrity):
        data["ref_table"] = spec.ref_table
        data["ref_columns"] = list(spec.ref_columns)
    return data


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _write_json(path: Path, payload: dict[str, Any], target: _Target) -> None:
    """Atomically: a reader never sees half a file, and a crash leaves the previous one."""
    text = target.redact(json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
