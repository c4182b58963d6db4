"""Integration fixtures: one real Spark session (local[2]) for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


# Tests run tiny jobs on a cold JVM: the quick (C1) compiler alone starts faster than tiered compilation.
_FAST_START = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A real local Spark session with the system JDBC drivers, stopped at the end of the test session."""
    from connectors.spark.session import get_spark, stop_spark
    from schemas.config import SparkConfig
    from schemas.errors import ConfigError

    try:
        session = get_spark(
            SparkConfig(master="local[2]", conf=_FAST_START), app_name="synthdb-tests"
        )
    except ConfigError as exc:  # no Java 17/21 on this machine
        if os.environ.get("SYNTHDB_REQUIRE_SERVERS") == "1":
            pytest.fail(f"SYNTHDB_REQUIRE_SERVERS=1 but Spark cannot start: {exc}")
        pytest.skip(f"Spark cannot start: {exc}")
    yield session
    stop_spark()
