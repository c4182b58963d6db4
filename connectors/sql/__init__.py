"""SQL sources: URLs and engines (:mod:`.url`), reflection (:mod:`.reflect`), Arrow reading (:mod:`.read`)."""

from connectors.sql.reflect import portable_type, reflect_schema
from connectors.sql.sql_source import SqlSource
from connectors.sql.url import make_engine, normalize_url, redact_url

__all__ = ["SqlSource", "make_engine", "normalize_url", "portable_type", "redact_url", "reflect_schema"]
