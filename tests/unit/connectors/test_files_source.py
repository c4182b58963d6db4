"""FileSource over real Parquet and CSV files made in tmp_path."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.files import FileSource
from connectors.source import open_source
from schemas.errors import SourceInputError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table


def _write(folder: Path) -> None:
    n = 1000
    customers = pa.table(
        {
            "id": pa.array(range(1, n + 1), pa.int64()),
            "segment": pa.array(["retail", "business", "enterprise", "retail"] * (n // 4)),
            "balance": pa.array([decimal.Decimal(i).scaleb(-2) for i in range(n)], pa.decimal128(12, 2)),
            "joined": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)], pa.date32()),
            "small": pa.array([i % 100 for i in range(n)], pa.int8()),
        }
    )
    pq.write_table(customers, folder / "customer.parquet", row_group_size=100)
    (folder / "order.csv").write_text(
        "id,customer_id,total,ordered_at,paid\n"
        + "".join(
            f"{i},{i % 50 + 1},{i * 1.25:.2f},2021-03-0{i % 9 + 1} 10:00:00,{'true' if i % 2 else ''}\n"
            for i in range(1, 301)
        ),
        encoding="utf-8",
    )
    parts = folder / "event"
    parts.mkdir()
    for p in range(3):
        pq.write_table(
            pa.table({"id": pa.array(range(p * 10, p * 10 + 10), pa.int32())}), parts / f"part-{p}.parquet"
        )


def test_infers_tables_types_and_no_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(tmp_path)
    with caplog.at_level(logging.INFO, logger="connectors.files"):
        schema = FileSource(tmp_path).read_schema()
    assert [t.name for t in schema.tables] == ["customer", "event", "order"]
    customer = schema.table("customer")
    assert {c.name: c.type for c in customer.columns} == {
        "id": "BIGINT",
        "segment": "TEXT",
        "balance": "NUMERIC(12, 2)",
        "joined": "DATE",
        "small": "SMALLINT",
    }
    assert customer.column("segment").kind is Kind.CATEGORICAL
    assert customer.column("balance").kind is Kind.NUMERIC
    assert customer.row_count == 1000
    assert all(t.primary_key is None and not t.foreign_keys for t in schema.tables)
    order = schema.table("order")
    assert order.column("ordered_at").type == "TIMESTAMP"
    assert order.column("total").type == "DOUBLE PRECISION"
    assert order.row_count == 300
    assert schema.table("event").row_count == 30
    assert schema.dialect == "files"
    assert "declare primary and foreign keys in the schema file" in caplog.text


def test_reads_parquet_in_bounded_batches_with_schema_types(tmp_path: Path) -> None:
    _write(tmp_path)
    source = open_source(str(tmp_path))
    batches = list(source.read_table("customer", batch_rows=64))
    assert all(b.num_rows <= 64 for b in batches)
    table = pa.Table.from_batches(batches)
    assert table.num_rows == 1000
    assert table.schema.field("small").type == pa.int16()  # SMALLINT -> int16, whatever the file held
    assert table.schema.field("balance").type == pa.decimal128(12, 2)
    assert table.column("balance")[5].as_py() == decimal.Decimal("0.05")
    assert source.arrow_schema("customer") == table.schema


def test_reads_csv_streaming_with_declared_keys_and_types(tmp_path: Path) -> None:
    _write(tmp_path)
    schema = DatabaseSchema(
        tables=[
            Table(
                name="customer",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="segment", type="VARCHAR(20)"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="order",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False, kind=Kind.ID),
                    Column(name="customer_id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="total", type="NUMERIC(10, 2)"),
                    Column(name="ordered_at", type="TIMESTAMP WITH TIME ZONE"),
                    Column(name="paid", type="BOOLEAN"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["customer_id"], ref_table="customer", ref_columns=["id"])],
            ),
        ]
    )
    source = open_source(f"file://{tmp_path}", schema=schema)
    assert source.read_schema() is schema  # keys come from the schema
    batches = list(source.read_table("order", batch_rows=50))
    assert [b.num_rows for b in batches] == [50] * 6
    table = pa.Table.from_batches(batches)
    assert table.schema.field("total").type == pa.decimal128(10, 2)
    assert table.schema.field("ordered_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("total")[3].as_py() == decimal.Decimal("5.00")
    assert table.column("paid").to_pylist()[:2] == [True, None]
    assert source.count_rows("order") == 300
    only = pa.Table.from_batches(list(source.read_table("order", columns=["total", "id"])))
    assert only.column_names == ["total", "id"]


@pytest.mark.parametrize("table", ["customer", "order"])
def test_sample_is_bounded_uniform_and_seeded(tmp_path: Path, table: str) -> None:
    _write(tmp_path)
    source = FileSource(tmp_path)
    sample = source.sample_table(table, rows=100, seed=3)
    assert sample.num_rows == 100
    ids = sample.column("id").to_pylist()
    assert len(set(ids)) == 100
    assert max(ids) > 200  # not just the first rows
    assert sample.schema == source.arrow_schema(table)
    assert source.sample_table(table, rows=100, seed=3).column("id").to_pylist() == ids
    assert source.sample_table(table, rows=100, seed=4).column("id").to_pylist() != ids
    assert source.sample_table(table, rows=5000).num_rows == source.count_rows(table)


def test_schema_table_without_a_file_is_named(tmp_path: Path) -> None:
    _write(tmp_path)
    schema = DatabaseSchema(tables=[Table(name="invoice", columns=[Column(name="id", type="INTEGER")])])
    with pytest.raises(SourceInputError, match="'invoice'"):
        FileSource(tmp_path, schema=schema).read_schema()


def test_empty_or_missing_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(SourceInputError, match="no <table>.parquet"):
        FileSource(tmp_path)
    with pytest.raises(SourceInputError, match="is not a folder"):
        FileSource(tmp_path / "nope")


def test_two_files_for_one_table_are_refused(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "customer.csv").write_text("id\n1\n")
    with pytest.raises(SourceInputError, match="two sources"):
        FileSource(tmp_path)
