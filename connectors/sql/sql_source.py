"""The SQL implementation of :class:`connectors.source.Source`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pyarrow as pa
import sqlalchemy as sa

from connectors.sql.read import Reader, arrow_schema_of, sample_statement, select_statement, stream_batches
from connectors.sql.reflect import reflect_schema
from connectors.sql.url import make_engine, redact_url
from schemas.errors import ConnectorError, SourceInputError
from schemas.model import Column, DatabaseSchema, Table

__all__ = ["SqlSource"]

logger = logging.getLogger(__name__)


def source_engine(url: str) -> sa.Engine:
    """An engine on an existing source database, connected once.

    Raises:
        SourceInputError: the database does not exist, or the credentials or access are wrong: the URL is bad
            input (exit code 2), and the message says which.
        ConnectorError: the server cannot be reached (``retryable``, exit code 1: it may work later).
    """
    try:
        return make_engine(url, require_existing=True)
    except ConnectorError as exc:
        if exc.retryable or isinstance(exc, SourceInputError):
            raise
        raise SourceInputError(f"source.url: {exc.message}") from None


class SqlSource:
    """A SQL database (SQLite, PostgreSQL, MariaDB/MySQL): reflected through SQLAlchemy, read as Arrow.

    Args:
        url: a SQLAlchemy URL; bare ``postgresql://`` / ``mysql://`` / ``mariadb://`` use psycopg 3 / PyMySQL.
        db_schema: the database schema (namespace) to read; None reads the default one.
        schema: a schema to use instead of reflecting (for example loaded from the edited schema file).
        reader: how tables are read: ``auto`` (the Arrow driver where one is installed, else SQLAlchemy),
            ``arrow`` or ``sqlalchemy`` (see :func:`connectors.sql.read.stream_batches`).

    Raises:
        ConnectorError: the database cannot be reached or the URL or credentials are wrong.
    """

    def __init__(
        self,
        url: str,
        *,
        db_schema: str | None = None,
        schema: DatabaseSchema | None = None,
        reader: Reader = "auto",
    ) -> None:
        self.url = redact_url(url)
        self.db_schema = db_schema
        self.reader: Reader = reader
        self._engine = source_engine(url)
        self._schema = schema
        if schema is not None:
            self._check_schema(schema)

    def _check_schema(self, schema: DatabaseSchema) -> None:
        """A given schema (the edited file) must name only tables and columns the database has."""
        from schemas.schema_file import check_against

        try:
            check_against(reflect_schema(self._engine, db_schema=self.db_schema), schema, source=self.url)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (connected once at construction)."""
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def __repr__(self) -> str:
        return f"SqlSource({self.url!r}, db_schema={self.db_schema!r})"

    def read_schema(self) -> DatabaseSchema:
        """The given schema, or the reflected one (reflected once, then cached)."""
        if self._schema is None:
            self._schema = reflect_schema(self._engine, db_schema=self.db_schema)
        return self._schema

    def _table(self, name: str) -> Table:
        schema = self.read_schema()
        if not schema.has_table(name):
            known = ", ".join(t.name for t in schema.tables) or "none"
            raise SourceInputError(f"table {name!r} is not in the source {self.url} (tables: {known})")
        table = schema.table(name)
        if table.db_schema is None and self.db_schema is not None:
            table = table.model_copy(update={"db_schema": self.db_schema})
        return table

    def _columns(self, table: Table, columns: list[str] | None) -> list[Column]:
        if columns is None:
            return table.active_columns
        return [table.column(c) for c in columns]

    def read_table(
        self, table: str, *, batch_rows: int = 65_536, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``table`` as Arrow batches of at most ``batch_rows`` rows (see :mod:`.read`)."""
        t = self._table(table)
        cols = self._columns(t, columns)
        statement = select_statement(t, cols, self.dialect)
        logger.debug("reading %s in batches of %d rows", t.qualified_name, batch_rows)
        yield from stream_batches(self._engine, statement, t, cols, batch_rows=batch_rows, reader=self.reader)

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema of :meth:`read_table` over the table's active columns."""
        return arrow_schema_of(self._table(table).active_columns)

    def count_rows(self, table: str) -> int:
        """The exact row count (``COUNT(*)``)."""
        t = self._table(table)
        query = sa.select(sa.func.count()).select_from(sa.table(t.name, schema=t.db_schema))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _estimate_rows(self, t: Table) -> int:
        if self.dialect == "postgresql":
            query = sa.text(
                "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = :t AND n.nspname = COALESCE(:s, current_schema())"
            )
            with self._engine.connect() as conn:
                estimate = conn.execute(query, {"t": t.name, "s": t.db_schema}).scalar_one_or_none()
            if estimate is not None and estimate >= 0:  # -1: never analysed
                return int(estimate)
        return self.count_rows(t.name)

    def sample_table(self, table: str, *, rows: int, seed: int = 0) -> pa.Table:
        """A random sample of at most ``rows`` rows over the active columns (the whole table when smaller).

        See :func:`connectors.sql.read.sample_statement` for how each dialect samples without sorting or
        reading more than it needs.
        """
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        t = self._table(table)
        cols = t.active_columns
        estimate = self._estimate_rows(t)
        if estimate <= rows:
            statement = select_statement(t, cols, self.dialect).limit(rows)
        else:
            statement = sample_statement(t, cols, self.dialect, rows=rows, seed=seed, estimated_rows=estimate)
        batches = list(
            stream_batches(self._engine, statement, t, cols, batch_rows=min(rows, 65_536), reader=self.reader)
        )
        return pa.Table.from_batches(batches, schema=arrow_schema_of(cols))

    def close(self) -> None:
        """Dispose of the connection pool."""
        self._engine.dispose()
