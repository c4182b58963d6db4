"""Run a :class:`~pipelines.expectations.SuiteSpec` with Great Expectations 1.x on a SQL database.

Private to :mod:`pipelines.expectations`. Everything Great Expectations-specific lives here: the ephemeral context
(in-memory stores, one local Data Docs site inside the output folder, no analytics, no progress bars), one table
asset and whole-table batch per table, one GX suite per table, a checkpoint that runs them and updates the Data
Docs, and the translation of GX results back into readable outcomes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    gx_results: dict[str, dict[str, Any]] = {}
    outcomes: list[ExpectationOutcome] = []
    with _quiet_gx():
        context = _context(docs_dir)
        try:
            results = _run(context, target, suite, runnable, physical)
            docs_built = bool(context.build_data_docs(site_names=[_SITE])) if not results else True
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001  # GX wraps driver errors in many types; all end the run
            raise ConnectorError(
                f"validating {target.redacted} with Great Expectations failed: {target.redact(str(exc))}",
                retryable=False,
            ) from None
    by_key = {spec.key: spec for spec in suite}
    for table, result in results:
        gx_results[table] = result.to_json_dict()
        for res in result.results:
            key = (res.expectation_config.meta or {}).get(_META_KEY)
            spec = by_key.get(key) if key else None
            if spec is not None:
                outcomes.append(_outcome(spec, res))
    # An expectation GX silently dropped must not count as passed.
    seen = {o.spec.key for o in outcomes}
    outcomes += [
        ExpectationOutcome(spec=spec, success=False, gx_type="none", observed="no result from Great Expectations")
        for table_suite in runnable
        for spec in table_suite.expectations
        if spec.key not in seen
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
    _write_json(
        results_path,
        {
            "suite": suite.name,
            "success": success,
            "target": target.redacted,
            "db_schema": target.db_schema,
            "statistics": dataclasses.asdict(stats),
            "integrity_failures": failures,
            "profile_warnings": warnings_,
            "missing_tables": sorted(missing),
            "outcomes": [_outcome_json(o) for o in outcomes],
            "great_expectations": gx_results,
        },
        target,
    )
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
        self.preparer = self._engine.dialect.identifier_preparer

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
        """Always-quoted identifier, with braces doubled so ``str.format`` (GX's ``{batch}``) leaves them alone."""
        return self.preparer.quote_identifier(name).replace("{", "{{").replace("}", "}}")

    def qualified(self, table: str) -> str:
        if self.db_schema:
            return f"{self.quote(self.db_schema)}.{self.quote(table)}"
        return self.quote(table)


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


def _run(
    context: AbstractDataContext,
    target: _Target,
    suite: SuiteSpec,
    tables: list[Any],
    physical: dict[str, str],
) -> list[tuple[str, Any]]:
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction

    if not tables:
        return []
    params: dict[str, Any] = {
        "name": "synthdb_target",
        "connection_string": target.url.render_as_string(hide_password=False),
    }
    if target.engine_kwargs:
        params["kwargs"] = target.engine_kwargs  # passed to create_engine (the PostgreSQL search_path)
    if target.backend == "sqlite":
        datasource: Any = context.data_sources.add_sqlite(**params)
    elif target.backend == "postgresql":
        datasource = context.data_sources.add_postgres(**params)
    else:
        datasource = context.data_sources.add_sql(**params)

    definitions = []
    suite_tables: dict[str, str] = {}
    for i, table_suite in enumerate(tables):
        table = table_suite.table
        label = f"{i:03d}_{_slug(table)}"
        # A name wrapped in double quotes makes GX keep it as a quoted identifier (reserved words, case, café);
        # SQLAlchemy then quotes it for the dialect (backticks on MariaDB).
        asset = datasource.add_table_asset(name=label, table_name=f'"{physical[table]}"')
        batch = asset.add_batch_definition_whole_table("whole_table")
        gx_suite = context.suites.add(gx.ExpectationSuite(name=f"{_slug(suite.name)}__{label}"))
        suite_tables[gx_suite.name] = table
        for spec in table_suite.expectations:
            gx_suite.add_expectation(_to_gx(spec, target, physical))
        definitions.append(context.validation_definitions.add(gx.ValidationDefinition(name=label, data=batch, suite=gx_suite)))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{_slug(suite.name)}__checkpoint",
            validation_definitions=definitions,
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[_SITE])],
            # BASIC: counts and a few examples, without the extra GROUP BY queries of SUMMARY.
            result_format="BASIC",
        )
    )
    try:
        result = checkpoint.run()
    finally:
        # Return every pooled connection now: a later staging swap (RENAME on MariaDB) must not wait on them.
        datasource.get_engine().dispose()
    return [(suite_tables[r.suite_name], r) for r in result.run_results.values()]


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
