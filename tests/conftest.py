"""Shared fixtures: real PostgreSQL and MariaDB databases (one fresh database per test), a real Ray, a real Spark.

Server tests skip only when the server is truly absent. ``SYNTHDB_REQUIRE_SERVERS=1`` (set by ``.ci/run``) turns
those skips into failures, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("SYNTHDB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("SYNTHDB_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
REQUIRE_SERVERS = os.environ.get("SYNTHDB_REQUIRE_SERVERS") == "1"


def _server_or_skip(url: str, what: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "no usable server here"
        engine.dispose()
        reason = f"{what} is not reachable at {engine.url.render_as_string(hide_password=True)}: {exc}"
        if REQUIRE_SERVERS:
            pytest.fail(f"SYNTHDB_REQUIRE_SERVERS=1 but {reason}")
        pytest.skip(reason)
    return engine


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = _server_or_skip(PG_ADMIN_URL, "PostgreSQL")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mariadb_admin() -> Iterator[sa.Engine]:
    engine = _server_or_skip(MARIADB_ADMIN_URL, "MariaDB")
    yield engine
    engine.dispose()


def _fresh_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url(pg_admin: sa.Engine) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = _fresh_name("synthdb_t")
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield pg_admin.url.set(database=name).render_as_string(hide_password=False)
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def mariadb_url(mariadb_admin: sa.Engine) -> Iterator[str]:
    """URL of a fresh, empty MariaDB database, dropped after the test."""
    name = _fresh_name("synthdb_t")
    with mariadb_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    yield mariadb_admin.url.set(database=name).render_as_string(hide_password=False) + "?charset=utf8mb4"
    with mariadb_admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    """URL of a new SQLite file in the test's temporary directory."""
    return f"sqlite:///{os.fspath(tmp_path)}/db.sqlite"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database URL, parametrized over SQLite, PostgreSQL and MariaDB."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}[request.param]
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A real local Ray runtime, shared by the whole session."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def second_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``make(dialect)`` gives the URL of a fresh empty target database next to the source; dropped afterwards."""
    dropped: list[Callable[[], None]] = []

    def make(dialect: str) -> str:
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path}/target.sqlite"
        admin: sa.Engine = request.getfixturevalue("pg_admin" if dialect == "postgresql" else "mariadb_admin")
        name = _fresh_name("synthdb_target")
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            else:
                conn.execute(
                    sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                )
                drop = f"DROP DATABASE IF EXISTS `{name}`"

        def _drop() -> None:
            with admin.connect() as c:
                c.execute(sa.text(drop))

        dropped.append(_drop)
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        return url + ("?charset=utf8mb4" if dialect == "mariadb" else "")

    yield make
    for drop in dropped:
        drop()
