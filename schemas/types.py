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
    # Types only some dialects have. Their values travel as the database's own text literal ('{1,2}', '[1,5)',
    # '10.0.0.1/8', '(1,2)', '0101'), and the target column gets the same native type, which parses them back.
    NETWORK = "network"  # INET, CIDR, MACADDR, MACADDR8
    RANGE = "range"  # INT4RANGE, INT8RANGE, NUMRANGE, DATERANGE, TSRANGE, TSTZRANGE
    ARRAY = "array"  # INTEGER[], TEXT[]... (one dimension or more: the literal says)
    GEOMETRIC = "geometric"  # PostgreSQL POINT, LINE, LSEG, BOX, PATH, POLYGON, CIRCLE
    BIT = "bit"  # BIT(n), BIT VARYING(n): the bits as '0'/'1' text
    XML = "xml"
    TEXT_SEARCH = "text_search"  # TSVECTOR, TSQUERY


NATIVE_TEXT_FAMILIES: frozenset[Family] = frozenset(
    {
        Family.NETWORK,
        Family.RANGE,
        Family.ARRAY,
        Family.GEOMETRIC,
        Family.BIT,
        Family.XML,
        Family.TEXT_SEARCH,
    }
)
"""Families held in Arrow as the database's canonical text literal, written back into the same native type."""


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
        if self.length is not None and self.family in (Family.STRING, Family.BINARY, Family.BIT):
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
        # STRING, UUID (canonical text form), JSON (serialised text), and the native-text families (the
        # database's own literal: '[1,5)', '{1,2}', '10.0.0.0/8', '(1.5,2)', '0101', '<a/>', "'fox' 'quick'")
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
    "INET": (Family.NETWORK, "INET"),
    "CIDR": (Family.NETWORK, "CIDR"),
    "MACADDR": (Family.NETWORK, "MACADDR"),
    "MACADDR8": (Family.NETWORK, "MACADDR8"),
    "INT4RANGE": (Family.RANGE, "INT4RANGE"),
    "INT8RANGE": (Family.RANGE, "INT8RANGE"),
    "NUMRANGE": (Family.RANGE, "NUMRANGE"),
    "DATERANGE": (Family.RANGE, "DATERANGE"),
    "TSRANGE": (Family.RANGE, "TSRANGE"),
    "TSTZRANGE": (Family.RANGE, "TSTZRANGE"),
    "POINT": (Family.GEOMETRIC, "POINT"),
    "LINE": (Family.GEOMETRIC, "LINE"),
    "LSEG": (Family.GEOMETRIC, "LSEG"),
    "BOX": (Family.GEOMETRIC, "BOX"),
    "PATH": (Family.GEOMETRIC, "PATH"),
    "POLYGON": (Family.GEOMETRIC, "POLYGON"),
    "CIRCLE": (Family.GEOMETRIC, "CIRCLE"),
    "BIT VARYING": (Family.BIT, "BIT VARYING"),
    "VARBIT": (Family.BIT, "BIT VARYING"),
    "XML": (Family.XML, "XML"),
    "TSVECTOR": (Family.TEXT_SEARCH, "TSVECTOR"),
    "TSQUERY": (Family.TEXT_SEARCH, "TSQUERY"),
}

_TYPE_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ ]*?)\s*(?:\(\s*([0-9]+)\s*(?:,\s*([0-9]+)\s*)?\))?\s*$")
_ARRAY_RE = re.compile(r"^(?P<element>.+?)\s*(?P<dims>(\[\s*\]\s*)+)$")


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
    array = _ARRAY_RE.match(text)
    if array:
        # ``INTEGER[]``: the element must be a type synthdb knows; the values are PostgreSQL array literals
        element = parse_type(array["element"])
        if element.family in (Family.ARRAY, Family.INTERVAL):
            raise UnknownTypeError(f"unsupported array element type in {text!r}")
        dims = array["dims"].count("[")
        return SqlType(Family.ARRAY, f"{element}{'[]' * dims}")
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
    if family is Family.BOOLEAN and name == "BIT" and first is not None:
        # a bare BIT is a boolean (MariaDB's BIT(1) is reflected as BOOLEAN); BIT(n) is a string of n bits
        return SqlType(Family.BIT, "BIT", length=first)
    if family is Family.BIT:
        return SqlType(family, canonical, length=first)
    return SqlType(family, canonical)
