"""Starting Spark in the background: the future gives the process's one session, warmed up, and leaves no files."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

from connectors.spark.session import get_spark, start_spark_in_background
from schemas.config import SparkConfig

pytestmark = pytest.mark.spark


def test_background_start_gives_the_shared_session_and_cleans_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors.spark.session")
    before = set(Path(tempfile.gettempdir()).glob("synthdb-spark-warmup-*"))

    session = start_spark_in_background(SparkConfig()).result(timeout=300)

    assert session is get_spark(SparkConfig())  # one session per process: the write reuses it
    assert session.range(3).count() == 3
    assert set(Path(tempfile.gettempdir()).glob("synthdb-spark-warmup-*")) == before
    assert not [r for r in caplog.records if "warm-up failed" in r.getMessage()]  # the JDBC warm-up really ran
