"""Spark: the session (Java, JDBC jars, UTC) and the writer that loads generated Parquet into a target."""

from connectors.spark.session import get_spark, jdbc_url, stop_spark
from connectors.spark.writer import write_parquet_folder, write_tables

__all__ = ["get_spark", "jdbc_url", "stop_spark", "write_parquet_folder", "write_tables"]
