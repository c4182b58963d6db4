"""Find and remove what killed runs left outside their run directories: staging areas and Spark temp folders.

Each of them carries its owner (see :mod:`connectors.owner`): SQLite staging files a ``<staging>.owner`` file,
PostgreSQL staging schemas and MariaDB staging and backup databases a JSON comment, Spark warm-up folders the
pid in their name (``synthdb-spark-warmup-<pid>-*``). An area is removed only when its owner is dead: its process
no longer runs on this host (or the pid now belongs to a later process). An area whose owner lives, or runs on
another host, or that carries no owner at all (made by a synthdb before owners were recorded) is kept and
logged, never guessed at. A warm-up folder without a pid is removed once it is an hour old (a warm-up takes
seconds).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from connectors.owner import owner_alive, parse_owner, pid_alive
from connectors.sql.ddl import dialect_family
from connectors.staging import (
    MARIADB_BACKUP_INFIX,
    MARIADB_STAGING_INFIX,
    PG_STAGING_PREFIX,
    SQLITE_OWNER_SUFFIX,
    SQLITE_STAGING_INFIX,
    MariaDbStaging,
    _bq,
    _engine,
    _normalize,
    _server_url_of,
)

__all__ = ["sweep_spark_temp", "sweep_target"]

logger = logging.getLogger(__name__)

_SIDE_SUFFIXES = ("-journal", "-wal", "-shm", SQLITE_OWNER_SUFFIX)
_WARMUP = re.compile(r"^synthdb-spark-warmup-(\d+)-")
_LEGACY_WARMUP_AGE_S = 3600.0


def sweep_target(target_url: str) -> list[str]:
    """Remove the staging areas of dead owners next to a target; returns their names.

    SQLite: the ``<target>.synthdb-staging-*`` files beside the target. PostgreSQL: ``synthdb_staging_*`` schemas
    of the target database. MariaDB: staging and backup databases on the target server.
    """
    url = _normalize(target_url)
    family = dialect_family(url.drivername)
    if family == "sqlite":
        db = url.database
        if not db or db == ":memory:" or db.startswith("file:"):
            return []
        return _sweep_sqlite(Path(db).absolute())
    if family == "postgresql":
        return _sweep_postgres(url)
    return _sweep_mariadb(_server_url_of(url))


def _dead(name: str, marker: str | None) -> bool:
    owner = parse_owner(marker)
    if owner is None:
        logger.warning("staging area %s records no owner (an older synthdb made it); it is kept: remove it by hand "
                       "once no run uses it", name)
        return False
    if owner_alive(owner):
        logger.info("staging area %s belongs to run %s (pid %s on %s), which may still run; kept", name,
                    owner.get("run_id"), owner.get("pid"), owner.get("host"))
        return False
    return True


def _sweep_sqlite(live_path: Path) -> list[str]:
    folder = live_path.parent
    if not folder.is_dir():
        return []
    bases: set[str] = set()
    for p in folder.glob(f"{glob_escape(live_path.name)}{SQLITE_STAGING_INFIX}*"):
        name = p.name
        for suffix in _SIDE_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        bases.add(name)
    removed = []
    for base in sorted(bases):
        marker_path = folder / (base + SQLITE_OWNER_SUFFIX)
        try:
            marker = marker_path.read_text(encoding="utf-8")
        except OSError:
            marker = None
        if not _dead(str(folder / base), marker):
            continue
        for suffix in ("", *_SIDE_SUFFIXES):
            (folder / (base + suffix)).unlink(missing_ok=True)
        removed.append(str(folder / base))
        logger.info("removed the SQLite staging file %s left by a killed run", folder / base)
    return removed


def _sweep_postgres(url: sa.URL) -> list[str]:
    engine = _engine(url)
    removed = []
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
                    "WHERE nspname LIKE :p ORDER BY nspname"
                ),
                {"p": PG_STAGING_PREFIX.replace("_", "\\_") + "%"},
            ).all()
        for name, comment in rows:
            if not _dead(name, comment):
                continue
            with engine.begin() as conn:
                conn.execute(sa.schema.DropSchema(name, cascade=True, if_exists=True))
            removed.append(name)
            logger.info("dropped the PostgreSQL staging schema %s left by a killed run", name)
    finally:
        engine.dispose()
    return removed


def _sweep_mariadb(server_url: sa.URL) -> list[str]:
    engine = _engine(server_url)
    removed = []
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE :s OR SCHEMA_NAME LIKE :b ORDER BY SCHEMA_NAME"
                ),
                {"s": "%" + MARIADB_STAGING_INFIX.replace("_", "\\_") + "%",
                 "b": "%" + MARIADB_BACKUP_INFIX.replace("_", "\\_") + "%"},
            ).all()
            for name, comment in rows:
                if not _dead(name, comment):
                    continue
                MariaDbStaging._drop_db(conn, name)
                conn.commit()
                removed.append(name)
                logger.info("dropped the MariaDB staging database %s left by a killed run", _bq(name))
    finally:
        engine.dispose()
    return removed


def sweep_spark_temp(temp_dir: Path | None = None) -> list[str]:
    """Remove ``synthdb-spark-warmup-*`` folders of dead processes from the system temp folder."""
    folder = Path(temp_dir or tempfile.gettempdir())
    removed = []
    for p in folder.glob("synthdb-spark-warmup-*"):
        match = _WARMUP.match(p.name)
        try:
            if match:
                dead = not pid_alive(int(match.group(1)))
            else:
                dead = time.time() - p.stat().st_mtime > _LEGACY_WARMUP_AGE_S
        except OSError:
            continue
        if dead and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(str(p))
            logger.info("removed the Spark warm-up folder %s left by a killed run", p)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)
