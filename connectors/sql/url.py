"""Database URLs: default drivers, redaction, and an engine whose connection failures read well.

Passwords never appear in a message: every URL that is shown goes through :func:`redact_url`, and driver
messages are scrubbed of the password before they are quoted.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from schemas.errors import ConnectorError, SourceInputError

__all__ = ["dialect_problem", "make_engine", "normalize_url", "redact_url"]

logger = logging.getLogger(__name__)

# Bare dialect names map to the drivers synthdb ships with (psycopg 3, PyMySQL), not SQLAlchemy's defaults
# (psycopg2, mysqlclient), which are not installed.
_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

_INSTALL_HINTS = {
    "psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg:// (installed)",
    "MySQLdb": "pip install mysqlclient, or use mysql+pymysql:// (installed)",
    "mysqldb": "pip install mysqlclient, or use mysql+pymysql:// (installed)",
    "asyncpg": "synthdb reads synchronously; use postgresql+psycopg:// instead",
    "pyodbc": "pip install pyodbc (and the ODBC driver of your database)",
    "oracledb": "pip install oracledb",
}

# user:password@ after "//", or at the very start when the scheme is missing
_USERINFO_RE = re.compile(r"(?P<pre>//[^:/@]*):(?P<pw>[^@]*)@")
_BARE_USERINFO_RE = re.compile(r"^(?P<pre>[^:/@]*):(?P<pw>[^@]*)@")
_CONNECT_TIMEOUT_S = 10


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``, safe to print or log.

    Works on URLs that SQLAlchemy cannot parse too, so an error about a malformed URL cannot leak the
    password.
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL: fall back to a regex that masks whatever sits between ':' and '@'
        pattern = _USERINFO_RE if "//" in url else _BARE_USERINFO_RE
        return pattern.sub(lambda m: f"{m['pre']}:***@", url)


def normalize_url(url: str) -> URL:
    """Parse a URL and give bare ``postgresql://``, ``mysql://`` and ``mariadb://`` their default drivers.

    Raises:
        SourceInputError: the URL cannot be parsed.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise SourceInputError(
            f"cannot parse the database URL {redact_url(url)!r}; expected dialect[+driver]://user:password@host:port/"
            "database (for example postgresql://user@localhost:5432/shop) or sqlite:///path/to/file.db. "
            "Special characters in the password must be percent-encoded"
        ) from None
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    return parsed


#: the dialects synthdb creates a target schema in (see connectors/sql/ddl.py and connectors/staging.py)
TARGET_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")


def dialect_problem(url: str, *, backends: tuple[str, ...] | None = None) -> str | None:
    """Why ``url`` cannot name a database synthdb can use (bad syntax, unknown dialect), or None when it can.

    Checks the URL and loads the dialect's SQLAlchemy class only: no driver import, no connection, so it is
    cheap enough to run before anything starts.

    Args:
        url: the database URL.
        backends: the backends accepted (for a target, :data:`TARGET_BACKENDS`); None accepts any dialect
            SQLAlchemy knows.
    """
    try:
        parsed = normalize_url(url)
    except SourceInputError as exc:
        return exc.message
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        return (
            f"unknown database dialect {parsed.drivername!r} in {redact_url(parsed)}; use one of "
            "postgresql://, mysql://, mariadb:// or sqlite:/// (or a folder path for Parquet/CSV files)"
        )
    except ImportError:  # the dialect exists but its driver is missing: make_engine says which to install
        pass
    if backends is not None and parsed.get_backend_name() not in backends:
        return (
            f"synthdb cannot write to a {parsed.get_backend_name()!r} database ({redact_url(parsed)}); "
            "the target must be postgresql://, mysql://, mariadb:// or sqlite:/// (or a folder path for Parquet)"
        )
    return None


def _scrub(text: str, url: URL) -> str:
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


def _where(url: URL) -> str:
    port = f":{url.port}" if url.port else ""
    return f"{url.host or 'localhost'}{port}"


def make_engine(url: str, *, require_existing: bool = False, **engine_kwargs: Any) -> sa.Engine:
    """Create an engine and connect once, turning connection failures into clear :class:`ConnectorError`\\ s.

    Args:
        url: a SQLAlchemy URL; bare ``postgresql://``, ``mysql://`` and ``mariadb://`` use psycopg 3 and
            PyMySQL.
        require_existing: for SQLite, refuse a database file that does not exist (SQLite would create an empty
            one). Sources set it; targets do not.
        **engine_kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        A connected-once engine.

    Raises:
        SourceInputError: the URL is malformed, or the SQLite file does not exist while ``require_existing``.
        ConnectorError: the driver is missing, the server is unreachable (``retryable``), the credentials are
            wrong or the database does not exist. The message never holds the password.
    """
    parsed = normalize_url(url)
    shown = redact_url(parsed)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and require_existing:
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            pass
        elif not Path(database).is_file():
            raise SourceInputError(
                f"SQLite database file {database!r} does not exist (URL {shown}); check the path. "
                "Use four slashes for an absolute path: sqlite:////abs/path.db"
            )
    connect_args: dict[str, object] = dict(engine_kwargs.pop("connect_args", None) or {})
    if backend in ("postgresql", "mysql", "mariadb") and "connect_timeout" not in parsed.query:
        # Without a timeout an unreachable host (firewall drop) hangs for minutes before anyone learns why.
        connect_args.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args, **engine_kwargs)
    except NoSuchModuleError:  # bad input, not a failed connection
        raise SourceInputError(
            f"unknown database dialect or driver {parsed.drivername!r} in {shown}; use one of postgresql://, "
            "mysql://, mariadb:// or sqlite:/// (or a folder path for Parquet/CSV files)"
        ) from None
    except ImportError as exc:
        module = (exc.name or str(exc)).split(".")[0]
        hint = _INSTALL_HINTS.get(module, f"pip install {module}")
        raise ConnectorError(
            f"the database driver {module!r} for {parsed.drivername!r} is not installed ({shown}); {hint}"
        ) from None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise _connect_error(exc, parsed) from None
    return engine


def _connect_error(exc: sa.exc.DBAPIError, url: URL) -> ConnectorError:
    """Classify a failed first connection by the driver's error code or message."""
    shown = redact_url(url)
    orig = exc.orig if exc.orig is not None else exc
    detail = _scrub(" ".join(str(orig).split()), url)
    low = detail.lower()
    code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
    user = url.username or "(none)"
    database = url.database or "(default)"
    if (
        code == 1045
        or "password authentication failed" in low
        or "access denied for user" in low
        or ("role" in low and "does not exist" in low)
    ):
        return ConnectorError(
            f"access denied for user {user!r} at {_where(url)} ({shown}): wrong user name or password. "
            f"Check the credentials in the URL. Driver said: {detail}"
        )
    if code == 1049 or ("database" in low and "does not exist" in low) or "unknown database" in low:
        return ConnectorError(
            f"database {database!r} does not exist on {_where(url)} ({shown}); check its name in the URL. "
            f"Driver said: {detail}"
        )
    if code == 1044:
        return ConnectorError(
            f"user {user!r} may not access database {database!r} at {_where(url)} ({shown}); "
            "grant access or use "
            f"another user. Driver said: {detail}"
        )
    if code in (2002, 2003, 2005, 2013) or any(
        s in low
        for s in (
            "connection refused",
            "could not connect",
            "can't connect",
            "timeout",
            "timed out",
            "name or service not known",
            "could not translate host",
            "no route to host",
            "connection to server",
        )
    ):
        return ConnectorError(
            f"cannot reach the database server at {_where(url)} ({shown}): "
            "is it running, and are host and port "
            f"right? Driver said: {detail}",
            retryable=True,
        )
    if url.get_backend_name() == "sqlite":
        return ConnectorError(f"cannot open SQLite database {url.database!r} ({shown}): {detail}")
    return ConnectorError(f"cannot connect to {shown}: {detail}")
