"""The source contract: where real data comes from, as a typed schema and Arrow batches.

A :class:`Source` is either a SQL database (:class:`connectors.sql.SqlSource`) or a folder of Parquet/CSV
files (:class:`connectors.files.FileSource`). :func:`open_source` picks one from a URL. Every source hands out
Arrow data typed by the schema: the Arrow type of a column is always ``Column.sql_type.to_arrow()``, whatever
the source, so the stages after extraction never see dialect quirks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa

from schemas.model import DatabaseSchema
from schemas.policy import default_kind

__all__ = ["Source", "default_kind", "is_file_url", "open_source"]


@runtime_checkable
class Source(Protocol):
    """A readable source of relational data."""

    def read_schema(self) -> DatabaseSchema:
        """The source's schema: reflected from the database, or the one given to :func:`open_source`.

        Kinds are set from the SQL type only (see :func:`default_kind`); key columns get ``Kind.ID``.
        """
        ...

    def read_table(
        self, table: str, *, batch_rows: int = 65_536, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table as Arrow record batches of at most ``batch_rows`` rows.

        Args:
            table: the table name, as in the schema.
            batch_rows: the most rows per batch; memory is bounded by it, not by the table's size.
            columns: the columns to read, in this order; None reads the table's active (not excluded) columns.
        """
        ...

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema of :meth:`read_table`'s batches when reading every active column."""
        ...

    def count_rows(self, table: str) -> int:
        """The exact number of rows in a table."""
        ...

    def sample_table(self, table: str, *, rows: int, seed: int = 0) -> pa.Table:
        """A random sample of at most ``rows`` rows (all rows of a smaller table), fast on huge tables."""
        ...

    def close(self) -> None:
        """Release connections and file handles."""
        ...


def is_file_url(url: str) -> bool:
    """True when ``url`` names a folder of files (a ``file://`` URL or a plain path), not a database."""
    if url.startswith("file://"):
        return True
    return "://" not in url and not url.startswith("sqlite:")


def open_source(url: str, *, db_schema: str | None = None, schema: DatabaseSchema | None = None) -> Source:
    """Open a source from a URL.

    Args:
        url: a SQLAlchemy URL (``postgresql://``, ``mysql://``, ``mariadb://``, ``sqlite:///``; the drivers
            default to psycopg 3 and PyMySQL), or a folder of ``<table>.parquet`` / ``<table>.csv`` files,
            given as a path or a ``file://`` URL.
        db_schema: the database schema (namespace) to read, for example a PostgreSQL schema other than
            ``public``.
        schema: a schema to use instead of reflecting (typically loaded from the edited schema file). For a
            file source it is where keys come from.

    Returns:
        An open source; call :meth:`Source.close` when done.

    Raises:
        ConnectorError: the database cannot be reached, or the credentials or URL are wrong.
        SourceInputError: the folder does not exist or holds no data files.
    """
    if is_file_url(url):
        from connectors.files import FileSource

        path = Path(url.removeprefix("file://"))
        return FileSource(path, schema=schema)
    from connectors.sql import SqlSource

    return SqlSource(url, db_schema=db_schema, schema=schema)
