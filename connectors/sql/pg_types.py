"""PostgreSQL types SQLAlchemy does not know (geometric types, ``xml``), registered so that reflection sees them.

Without this, SQLAlchemy reflects ``point`` or ``xml`` as ``NullType``, which cannot be compiled: synthdb could not
tell the type, and every later reader of the target that reflects it (the validation suite) would fail on it.
Registering a named type in the dialect's ``ischema_names`` is SQLAlchemy's own extension point (GeoAlchemy does
the same for PostGIS).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import base as _pg_base

__all__ = ["PG_NAMED_TYPES", "PgNamedType"]


class PgNamedType(sa.types.UserDefinedType[Any]):
    """A PostgreSQL type known by its name only; values travel as its text literal."""

    cache_ok = True
    pg_name = ""

    def get_col_spec(self, **kw: Any) -> str:
        return self.pg_name.upper()


def _named(name: str) -> type[PgNamedType]:
    return type(f"PG_{name.upper()}", (PgNamedType,), {"pg_name": name, "cache_ok": True})


PG_NAMED_TYPES: dict[str, type[PgNamedType]] = {
    name: _named(name) for name in ("point", "line", "lseg", "box", "path", "polygon", "circle", "xml")
}
"""The registered types, by PostgreSQL name."""

for _name, _cls in PG_NAMED_TYPES.items():
    _pg_base.ischema_names.setdefault(_name, _cls)
