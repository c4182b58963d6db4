"""A folder of Parquet or CSV files as a :class:`connectors.source.Source`.

Each table is ``<table>.parquet``, ``<table>.csv`` or a folder ``<table>/`` of Parquet parts. Files carry no
keys: they come from a schema (a :class:`DatabaseSchema`, usually loaded from the edited schema file). Without
one, the columns and types are inferred from the files, no keys are declared, and a log line says that they
must be declared in the schema file for synthdb to keep relations intact.

Reading streams: Parquet through :mod:`pyarrow.dataset`, CSV through :func:`pyarrow.csv.open_csv`, both cast
to the schema's types (``Column.sql_type.to_arrow()``), so a file source hands out the same Arrow types as a
database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as pds

from connectors.source import default_kind
from schemas.errors import SourceInputError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, Table
from schemas.types import parse_type

__all__ = ["FileSource", "portable_type_of_arrow"]

logger = logging.getLogger(__name__)

# CSV blocks are parsed in bytes, not rows; 4 MiB blocks keep type inference on a decent first sample.
_CSV_BLOCK_BYTES = 4 << 20


def portable_type_of_arrow(t: pa.DataType) -> str | None:
    """The portable SQL type for an Arrow type, or None for nested types (lists, structs, maps)."""
    if pa.types.is_dictionary(t):
        return portable_type_of_arrow(t.value_type)
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        bits = t.bit_width + (1 if pa.types.is_unsigned_integer(t) else 0)  # unsigned needs one more bit
        return (
            "SMALLINT"
            if bits <= 16
            else "INTEGER"
            if bits <= 32
            else "BIGINT"
            if bits <= 64
            else "NUMERIC(20, 0)"
        )
    if pa.types.is_floating(t):
        return "DOUBLE PRECISION" if t.bit_width == 64 else "REAL"
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision}, {t.scale})"
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    ):
        return "TEXT"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BLOB"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    if pa.types.is_duration(t):
        return "INTERVAL"
    return None


class FileSource:
    """A folder of ``<table>.parquet`` / ``<table>.csv`` files, or ``<table>/`` folders of Parquet parts.

    Args:
        path: the folder.
        schema: where tables, types and keys come from; None infers columns and types from the files (no
            keys).

    Raises:
        SourceInputError: the folder does not exist, holds no data files, a table has two files, or a table of
            ``schema`` has no file.
    """

    def __init__(self, path: Path | str, *, schema: DatabaseSchema | None = None) -> None:
        self.path = Path(path)
        self._given = schema
        self._schema: DatabaseSchema | None = None
        self._files = _discover(self.path)

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r})"

    # --- schema -------------------------------------------------------------------------------------------
    def read_schema(self) -> DatabaseSchema:
        """The given schema (checked against the files), or one inferred from the files, without keys."""
        if self._schema is None:
            self._schema = self._check_given(self._given) if self._given is not None else self._infer()
        return self._schema

    def _check_given(self, schema: DatabaseSchema) -> DatabaseSchema:
        missing = [t.name for t in schema.active_tables if t.name not in self._files]
        if missing:
            raise SourceInputError(
                f"the schema names table(s) {', '.join(map(repr, missing))} but {self.path} has no "
                f"<table>.parquet, <table>.csv or <table>/ for them "
                f"(found: {', '.join(sorted(self._files))}); "
                "add the files or exclude those tables in the schema file"
            )
        extra = sorted(set(self._files) - {t.name for t in schema.tables})
        if extra:
            logger.info("files %s are not in the schema and are ignored", ", ".join(extra))
        return schema

    def _infer(self) -> DatabaseSchema:
        tables = []
        for name in sorted(self._files):
            arrow = self._file_schema(name)
            columns = []
            for field in arrow:
                portable = portable_type_of_arrow(field.type)
                if portable is None:
                    logger.warning(
                        "table %s, column %s: nested type %s is not supported by synthdb; "
                        "the column is excluded",
                        name,
                        field.name,
                        field.type,
                    )
                    columns.append(
                        Column(
                            name=field.name,
                            type="TEXT",
                            native_type=str(field.type),
                            nullable=True,
                            kind=Kind.TEXT,
                            excluded=True,
                            kind_reason=f"nested type {field.type} is not supported; excluded",
                        )
                    )
                    continue
                sql_type = parse_type(portable)
                kind = default_kind(sql_type)
                reason = f"from its type {portable} in the file"
                if kind is Kind.TEXT:
                    # a file's strings have no declared length, so TEXT says nothing about meaning
                    kind, reason = Kind.CATEGORICAL, "string column in a file (no declared length)"
                columns.append(
                    Column(
                        name=field.name,
                        type=portable,
                        native_type=str(field.type),
                        nullable=field.nullable,
                        kind=kind,
                        kind_reason=reason,
                    )
                )
            tables.append(Table(name=name, columns=columns, row_count=self._count(name)))
        logger.info(
            "inferred %d tables from %s without keys: declare primary and foreign keys in the schema file so "
            "that synthdb keeps the relations",
            len(tables),
            self.path,
        )
        return DatabaseSchema(tables=tables, dialect="files")

    def _file_schema(self, name: str) -> pa.Schema:
        fmt, path = self._files[name]
        if fmt == "parquet":
            return pds.dataset(path, format="parquet").schema
        with pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES)) as reader:
            return reader.schema

    # --- reading ------------------------------------------------------------------------------------------
    def _table(self, name: str) -> Table:
        schema = self.read_schema()
        if not schema.has_table(name) or name not in self._files:
            raise SourceInputError(
                f"table {name!r} is not in {self.path} (tables: {', '.join(sorted(self._files)) or 'none'})"
            )
        return schema.table(name)

    def _target(self, table: Table, columns: list[str] | None) -> pa.Schema:
        cols = table.active_columns if columns is None else [table.column(c) for c in columns]
        return pa.schema([pa.field(c.name, c.sql_type.to_arrow(), nullable=c.nullable) for c in cols])

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema of :meth:`read_table` over the table's active columns."""
        return self._target(self._table(table), None)

    def read_table(
        self, table: str, *, batch_rows: int = 65_536, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table as Arrow batches of at most ``batch_rows`` rows, cast to the schema's types."""
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        t = self._table(table)
        target = self._target(t, columns)
        for batch in self._raw_batches(t.name, target, batch_rows):
            for start in range(0, batch.num_rows, batch_rows):
                yield _cast(batch.slice(start, batch_rows), target, t.name)

    def _raw_batches(self, name: str, target: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
        fmt, path = self._files[name]
        if fmt == "parquet":
            dataset = pds.dataset(path, format="parquet")
            yield from dataset.to_batches(columns=target.names, batch_size=batch_rows)
            return
        # zoned timestamps are read as text: text without an offset is then taken as UTC (see _cast)
        types = {f.name: pa.string() if _is_zoned(f.type) else f.type for f in target}
        convert = pcsv.ConvertOptions(
            column_types=types, include_columns=target.names, strings_can_be_null=True
        )
        try:
            with pcsv.open_csv(
                path, read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES), convert_options=convert
            ) as reader:
                yield from reader
        except pa.ArrowInvalid as exc:
            raise SourceInputError(
                f"table {name!r} ({path.name}): {exc}. "
                "Fix the column's type in the schema file, or exclude it"
            ) from None

    def count_rows(self, table: str) -> int:
        """The exact row count (Parquet: from the file metadata; CSV: one streaming pass)."""
        return self._count(self._table(table).name)

    def _count(self, name: str) -> int:
        fmt, path = self._files[name]
        if fmt == "parquet":
            return int(pds.dataset(path, format="parquet").count_rows())
        first = None
        with pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES)) as reader:
            first = reader.schema.names[0]
        convert = pcsv.ConvertOptions(column_types={first: pa.string()}, include_columns=[first])
        total = 0
        with pcsv.open_csv(
            path, read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES), convert_options=convert
        ) as reader:
            for batch in reader:
                total += batch.num_rows
        return total

    def sample_table(self, table: str, *, rows: int, seed: int = 0) -> pa.Table:
        """A uniform random sample of at most ``rows`` rows, the same for the same seed.

        Parquet: ``rows`` random row positions taken from the dataset (reads only what they need). CSV: one
        streaming pass that keeps the ``rows`` rows with the smallest random keys, so memory stays bounded.
        """
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        t = self._table(table)
        target = self._target(t, None)
        rng = np.random.default_rng(seed)
        fmt, path = self._files[t.name]
        if fmt == "parquet":
            dataset = pds.dataset(path, format="parquet")
            total = int(dataset.count_rows())
            if total <= rows:
                return pa.Table.from_batches(list(self.read_table(t.name)), schema=target)
            picked = np.sort(rng.choice(total, size=rows, replace=False))
            taken = dataset.take(pa.array(picked), columns=target.names)
            return pa.Table.from_batches(
                [_cast(b, target, t.name) for b in taken.to_batches()], schema=target
            )
        kept: pa.Table | None = None
        for batch in self.read_table(t.name, batch_rows=max(rows, 65_536)):
            keyed = pa.Table.from_batches([batch]).append_column(
                "__key", pa.array(rng.random(batch.num_rows))
            )
            kept = keyed if kept is None else pa.concat_tables([kept, keyed])
            if kept.num_rows > rows:
                order = pc.sort_indices(kept["__key"])[:rows]
                kept = kept.take(order)
        if kept is None:
            return target.empty_table()
        return kept.drop_columns(["__key"]).cast(target)

    def close(self) -> None:
        """Nothing to release: each read opens and closes its own file handles."""


def _cast(batch: pa.RecordBatch, target: pa.Schema, table: str) -> pa.RecordBatch:
    if batch.schema.equals(target, check_metadata=False):
        return batch
    try:
        arrays = [_cast_array(batch.column(f.name), f.type) for f in target]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceInputError(
            f"table {table!r}: a column's values do not fit the schema's types {target} ({exc}); fix the "
            "column's type in the schema file, or exclude the column"
        ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _is_zoned(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) and t.tz is not None


def _cast_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    if _is_zoned(target) and pa.types.is_string(array.type):
        try:
            return array.cast(target)
        except pa.ArrowInvalid:  # no zone offset in the text: it is UTC wall time
            return array.cast(pa.timestamp(target.unit)).cast(target)
    return array.cast(target)


def _discover(path: Path) -> dict[str, tuple[str, Path]]:
    if not path.is_dir():
        raise SourceInputError(
            f"{path} is not a folder; a file source is a folder of <table>.parquet or <table>.csv files"
        )
    found: dict[str, tuple[str, Path]] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix.lower() in (".parquet", ".csv"):
            name, fmt = entry.stem, entry.suffix.lower().lstrip(".")
        elif entry.is_dir() and any(entry.glob("*.parquet")):
            name, fmt = entry.name, "parquet"
        else:
            continue
        if name in found:
            raise SourceInputError(
                f"table {name!r} has two sources in {path} ({found[name][1].name} and {entry.name}); keep one"
            )
        found[name] = (fmt, entry)
    if not found:
        raise SourceInputError(
            f"no <table>.parquet, <table>.csv or <table>/ Parquet folders in {path}; check the path"
        )
    return found
