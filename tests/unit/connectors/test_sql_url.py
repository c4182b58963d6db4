"""URL redaction, default drivers, and the messages of failed connections (real servers where needed)."""

from __future__ import annotations

import pickle

import pytest

from connectors.sql.url import make_engine, normalize_url, redact_url
from schemas.errors import ConnectorError, SourceInputError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice:s3cret@db:5432/shop", "postgresql://alice:***@db:5432/shop"),
        ("mysql+pymysql://bob:p%40ss@h/db", "mysql+pymysql://bob:***@h/db"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("postgresql://alice@db/shop", "postgresql://alice@db/shop"),
    ],
)
def test_redact_url_hides_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_hides_the_password_of_a_malformed_url() -> None:
    shown = redact_url("postgresql://alice:s3cret@db:notaport/shop")
    assert "s3cret" not in shown
    assert "alice:***@" in shown


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("mysql://u@h/db", "mysql+pymysql"),
        ("mariadb://u@h/db", "mariadb+pymysql"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_bare_dialects_get_the_installed_drivers(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_malformed_url_is_bad_input_and_hides_the_password() -> None:
    with pytest.raises(SourceInputError) as info:
        make_engine("not a url at all :// x:hunter2@")
    assert "hunter2" not in str(info.value)
    assert "cannot parse the database URL" in str(info.value)
    assert info.value.exit_code == 2


def test_unreachable_server_names_host_and_port_and_is_retryable() -> None:
    with pytest.raises(ConnectorError) as info:
        make_engine("postgresql://alice:topsecret@127.0.0.1:1/shop")
    message = str(info.value)
    assert "127.0.0.1:1" in message
    assert "cannot reach the database server" in message
    assert "topsecret" not in message
    assert info.value.retryable is True
    # Ray carries errors between processes: the flags survive pickling
    again = pickle.loads(pickle.dumps(info.value))
    assert again.retryable is True and str(again) == message


def test_unreachable_mariadb_server() -> None:
    with pytest.raises(ConnectorError, match=r"cannot reach the database server at 127\.0\.0\.1:1"):
        make_engine("mysql://root:pw@127.0.0.1:1/x")


def test_missing_driver_says_what_to_install() -> None:
    with pytest.raises(ConnectorError) as info:
        make_engine("postgresql+psycopg2://alice:secret@127.0.0.1:5432/x")
    assert "psycopg2" in str(info.value)
    assert "pip install" in str(info.value)
    assert "secret" not in str(info.value)


def test_unknown_dialect_is_named() -> None:
    with pytest.raises(ConnectorError, match="unknown database dialect or driver 'nosuchdb'"):
        make_engine("nosuchdb://u:p@h/db")


def test_missing_sqlite_file_is_refused_for_a_source(tmp_path: object) -> None:
    with pytest.raises(SourceInputError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path}/missing.db", require_existing=True)


@pytest.mark.server
def test_wrong_mariadb_user_says_access_denied_without_the_password(mariadb_admin: object) -> None:
    with pytest.raises(ConnectorError) as info:
        make_engine("mysql+pymysql://nosuchuser:secret@127.0.0.1:3306/")
    message = str(info.value)
    assert "access denied for user 'nosuchuser'" in message
    assert "secret" not in message
    assert info.value.retryable is False


@pytest.mark.server
def test_unknown_postgres_database_is_named(pg_admin: object) -> None:
    with pytest.raises(ConnectorError, match="database 'no_such_db_synthdb' does not exist"):
        make_engine("postgresql://postgres@127.0.0.1:5432/no_such_db_synthdb")


@pytest.mark.server
def test_unknown_mariadb_database_is_named(mariadb_admin: object) -> None:
    with pytest.raises(ConnectorError, match="database 'no_such_db_synthdb' does not exist"):
        make_engine("mysql://root@127.0.0.1:3306/no_such_db_synthdb")
