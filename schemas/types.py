"""Portable SQL types.

A column's ``type`` in the schema file is a portable SQL type string such as ``INTEGER``, ``VARCHAR(20)``,
``NUMERIC(10, 2)`` or ``TIMESTAMP WITH TIME ZONE``. It is parsed into a :class:`SqlType` with a :class:`Family`,
so that DDL can be written for any target dialect and data can be typed in Arrow without guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


class Family(StrEnum):
    """The storage family of a SQL type, independent of the dialect."""

    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"
    TIME = "time"
    TIMESTAMP = "timestamp"
    TIMESTAMP_TZ = "timestamp_tz"
    BINARY = "binary"
    UUID = "uuid"
    JSON = "json"
    INTERVAL = "interval"


@dataclass(frozen=True, slots=True)
class SqlType:
    """A parsed portable SQL type.

    Attributes:
        family: storage family.
        name: the canonical type name (``BIGINT``, ``VARCHAR``...).
        length: character or byte length, when bounded.
        precision: decimal precision, or the number of bits of an integer / float.
        scale: decimal scale.
    """

    family: Family
    name: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.family is Family.DECIMAL and self.precision is not None:
            return f"{self.name}({self.precision}, {self.scale or 0})"
        if self.length is not None and self.family in (Family.STRING, Family.BINARY):
            return f"{self.name}({self.length})"
        return self.name

    @property
    def int_bits(self) -> int:
        """Bits of an integer type (16, 32 or 64)."""
        return {"SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}.get(self.name, 64)

    def to_arrow(self) -> pa.DataType:
        """The Arrow type that holds this SQL type's values without loss."""
        import pyarrow as pa

        f = self.family
        if f is Family.INTEGER:
            return {16: pa.int16(), 32: pa.int32()}.get(self.int_bits, pa.int64())
        if f is Family.FLOAT:
            # float64 even for REAL: SQLite stores REAL as 8-byte doubles, and widening a float4 loses nothing.
            return pa.float64()
        if f is Family.DECIMAL:
            precision = self.precision or 38
            scale = self.scale or 0
            if precision > 38:
                return pa.decimal256(min(precision, 76), scale)
            return pa.decimal128(precision, scale)
        if f is Family.BOOLEAN:
            return pa.bool_()
        if f is Family.DATE:
            return pa.date32()
        if f is Family.TIME:
            return pa.time64("us")
        if f is Family.TIMESTAMP:
            return pa.timestamp("us")
        if f is Family.TIMESTAMP_TZ:
            return pa.timestamp("us", tz="UTC")
        if f is Family.BINARY:
            return pa.binary()
        if f is Family.INTERVAL:
            return pa.duration("us")
        # STRING, UUID (canonical text form), JSON (serialised text)
        return pa.string()


_ALIASES: dict[str, tuple[Family, str]] = {
    "SMALLINT": (Family.INTEGER, "SMALLINT"),
    "INT2": (Family.INTEGER, "SMALLINT"),
    "TINYINT": (Family.INTEGER, "SMALLINT"),
    "MEDIUMINT": (Family.INTEGER, "INTEGER"),
    "INTEGER": (Family.INTEGER, "INTEGER"),
    "INT": (Family.INTEGER, "INTEGER"),
    "INT4": (Family.INTEGER, "INTEGER"),
    "SERIAL": (Family.INTEGER, "INTEGER"),
    "BIGINT": (Family.INTEGER, "BIGINT"),
    "INT8": (Family.INTEGER, "BIGINT"),
    "BIGSERIAL": (Family.INTEGER, "BIGINT"),
    "REAL": (Family.FLOAT, "REAL"),
    "FLOAT4": (Family.FLOAT, "REAL"),
    "FLOAT": (Family.FLOAT, "DOUBLE PRECISION"),
    "FLOAT8": (Family.FLOAT, "DOUBLE PRECISION"),
    "DOUBLE": (Family.FLOAT, "DOUBLE PRECISION"),
    "DOUBLE PRECISION": (Family.FLOAT, "DOUBLE PRECISION"),
    "NUMERIC": (Family.DECIMAL, "NUMERIC"),
    "DECIMAL": (Family.DECIMAL, "NUMERIC"),
    "MONEY": (Family.DECIMAL, "NUMERIC"),
    "VARCHAR": (Family.STRING, "VARCHAR"),
    "CHARACTER VARYING": (Family.STRING, "VARCHAR"),
    "NVARCHAR": (Family.STRING, "VARCHAR"),
    "CHAR": (Family.STRING, "CHAR"),
    "CHARACTER": (Family.STRING, "CHAR"),
    "NCHAR": (Family.STRING, "CHAR"),
    "TEXT": (Family.STRING, "TEXT"),
    "CLOB": (Family.STRING, "TEXT"),
    "TINYTEXT": (Family.STRING, "TEXT"),
    "MEDIUMTEXT": (Family.STRING, "TEXT"),
    "LONGTEXT": (Family.STRING, "TEXT"),
    "CITEXT": (Family.STRING, "TEXT"),
    "ENUM": (Family.STRING, "VARCHAR"),
    "BOOLEAN": (Family.BOOLEAN, "BOOLEAN"),
    "BOOL": (Family.BOOLEAN, "BOOLEAN"),
    "BIT": (Family.BOOLEAN, "BOOLEAN"),
    "DATE": (Family.DATE, "DATE"),
    "TIME": (Family.TIME, "TIME"),
    "TIME WITHOUT TIME ZONE": (Family.TIME, "TIME"),
    "TIMESTAMP": (Family.TIMESTAMP, "TIMESTAMP"),
    "TIMESTAMP WITHOUT TIME ZONE": (Family.TIMESTAMP, "TIMESTAMP"),
    "DATETIME": (Family.TIMESTAMP, "TIMESTAMP"),
    "TIMESTAMP WITH TIME ZONE": (Family.TIMESTAMP_TZ, "TIMESTAMP WITH TIME ZONE"),
    "TIMESTAMPTZ": (Family.TIMESTAMP_TZ, "TIMESTAMP WITH TIME ZONE"),
    "BLOB": (Family.BINARY, "BLOB"),
    "BYTEA": (Family.BINARY, "BLOB"),
    "BINARY": (Family.BINARY, "BLOB"),
    "VARBINARY": (Family.BINARY, "BLOB"),
    "LONGBLOB": (Family.BINARY, "BLOB"),
    "MEDIUMBLOB": (Family.BINARY, "BLOB"),
    "TINYBLOB": (Family.BINARY, "BLOB"),
    "LARGEBINARY": (Family.BINARY, "BLOB"),
    "UUID": (Family.UUID, "UUID"),
    "JSON": (Family.JSON, "JSON"),
    "JSONB": (Family.JSON, "JSON"),
    "INTERVAL": (Family.INTERVAL, "INTERVAL"),
}

_TYPE_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ ]*?)\s*(?:\(\s*([0-9]+)\s*(?:,\s*([0-9]+)\s*)?\))?\s*$")


class UnknownTypeError(ValueError):
    """A type string that synthdb cannot map to a family."""


def parse_type(text: str) -> SqlType:
    """Parse a portable SQL type string.

    Args:
        text: for example ``"VARCHAR(20)"``, ``"numeric(10,2)"`` or ``"timestamp with time zone"``.

    Returns:
        The parsed type.

    Raises:
        UnknownTypeError: when the name is not a known SQL type.
    """
    match = _TYPE_RE.match(text)
    if not match:
        raise UnknownTypeError(f"cannot parse SQL type {text!r}")
    raw_name, a, b = match.groups()
    name = " ".join(raw_name.upper().split())
    if name not in _ALIASES:
        raise UnknownTypeError(f"unknown SQL type {text!r}")
    family, canonical = _ALIASES[name]
    first = int(a) if a is not None else None
    second = int(b) if b is not None else None
    if family is Family.DECIMAL:
        return SqlType(family, canonical, precision=first, scale=second if second is not None else (0 if first else None))
    if family in (Family.STRING, Family.BINARY):
        if canonical == "TEXT" or canonical == "BLOB" and first is None:
            return SqlType(family, canonical)
        return SqlType(family, canonical, length=first)
    if family is Family.FLOAT and name == "FLOAT" and first is not None and first <= 24:
        return SqlType(family, "REAL")
    if family is Family.BOOLEAN and name == "BIT" and first not in (None, 1):
        return SqlType(Family.BINARY, "BLOB")
    return SqlType(family, canonical)
