"""Reading SQL tables as Arrow: faithful types and values on every database, bounded batches and samples."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fixtures.tricky import SEGMENTS, TYPE_ZOO_ROWS, create_tricky_schema, type_zoo_rows

from connectors.source import open_source
from connectors.sql import SqlSource
from connectors.sql.url import normalize_url

pytestmark = pytest.mark.server


def _dialect(url: str) -> str:
    name = normalize_url(url).get_backend_name()
    return "mysql" if name == "mariadb" else name


@pytest.fixture
def source(db_url: str) -> SqlSource:
    create_tricky_schema(db_url, rows=60, seed=2)
    src = open_source(db_url)
    assert isinstance(src, SqlSource)
    yield src  # type: ignore[misc]
    src.close()


def test_type_zoo_round_trips_types_and_values(source: SqlSource) -> None:
    dialect = source.dialect if source.dialect == "sqlite" or source.dialect == "postgresql" else "mysql"
    table = pa.Table.from_batches(list(source.read_table("type_zoo")))
    pg = dialect == "postgresql"
    expected_types = {
        "id": pa.int32(),
        "c_smallint": pa.int16(),
        "c_integer": pa.int32(),
        "c_bigint": pa.int64(),
        "c_real": pa.float64(),  # REAL widens to float64 (schemas.types), losing nothing
        "c_double": pa.float64(),
        "c_numeric": pa.decimal128(10, 3),
        "c_varchar": pa.string(),
        "c_char": pa.string(),
        "c_text": pa.string(),
        "c_boolean": pa.bool_(),
        "c_date": pa.date32(),
        "c_time": pa.time64("us"),
        "c_timestamp": pa.timestamp("us"),
        "c_timestamptz": pa.timestamp("us", tz="UTC") if pg else pa.timestamp("us"),
        "c_binary": pa.binary(),
        "c_uuid": pa.string(),
        "c_json": pa.string(),
        "c_mostly_null": pa.int32(),
    }
    assert {f.name: f.type for f in table.schema} == expected_types
    assert table.schema == source.arrow_schema("type_zoo")
    got = sorted(table.to_pylist(), key=lambda r: r["id"])
    want = type_zoo_rows(seed=2)
    assert len(got) == TYPE_ZOO_ROWS
    for g, w in zip(got, want, strict=True):
        for name, value in w.items():
            actual = g[name]
            if value is None:
                assert actual is None, (g["id"], name)
            elif name == "c_double":
                assert actual == pytest.approx(value, rel=1e-12), (g["id"], name)
            elif name == "c_timestamptz":
                assert actual == (value if pg else value.replace(tzinfo=None)), (g["id"], name)
            elif name == "c_uuid":
                assert actual == str(value), (g["id"], name)
            elif name == "c_json":
                assert json.loads(actual) == value, (g["id"], name)
                assert ": " not in actual and ", " not in actual  # compact JSON text on every database
            else:
                assert actual == value, (g["id"], name)
    nulls = table.filter(pc.equal(pc.bit_wise_and(table["id"], 7), 0))
    assert all(nulls.column(c).null_count == nulls.num_rows for c in table.column_names if c != "id")


def test_batches_respect_batch_rows_and_column_selection(source: SqlSource) -> None:
    total = source.count_rows("order")
    batches = list(source.read_table("order", batch_rows=17))
    assert len(batches) == -(-total // 17)
    assert all(b.num_rows <= 17 for b in batches) and sum(b.num_rows for b in batches) == total
    ids = pa.Table.from_batches(batches).column("id").to_pylist()
    assert sorted(ids) == list(range(1, total + 1))
    picked = pa.Table.from_batches(
        list(source.read_table("customer", columns=["full name", "id"], batch_rows=9))
    )
    assert picked.column_names == ["full name", "id"]
    assert picked.num_rows == 60 and all(" " in n for n in picked.column("full name").to_pylist())
    # reserved word, composite key and non-ASCII names all read
    cafe = pa.Table.from_batches(list(source.read_table("café")))
    assert cafe.column_names == ["id", "naïve", "prix €"] and cafe.num_rows == 20
    assert cafe.schema.field("prix €").type == pa.decimal128(8, 2)
    assert list(source.read_table("empty_table")) == []


def test_sample_is_bounded_seeded_and_typed(source: SqlSource) -> None:
    total = source.count_rows("order_line")
    assert total > 100
    sample = source.sample_table("order_line", rows=40, seed=5)
    assert 20 <= sample.num_rows <= 40  # PostgreSQL's Bernoulli sample may come a little short
    assert sample.schema == source.arrow_schema("order_line")
    keys = list(zip(sample.column("order_id").to_pylist(), sample.column("line_no").to_pylist(), strict=True))
    assert len(set(keys)) == len(keys)
    assert max(k[0] for k in keys) > 40  # spread over the table, not its first rows
    again = source.sample_table("order_line", rows=40, seed=5)
    assert again.column("order_id").to_pylist() == sample.column("order_id").to_pylist()
    whole = source.sample_table("product", rows=1000)
    assert whole.num_rows == 40  # a small table comes back whole


def test_children_depend_on_the_parent_segment(source: SqlSource) -> None:
    customers = pa.Table.from_batches(
        list(source.read_table("customer", columns=["id", "segment"]))
    ).to_pylist()
    orders = pa.Table.from_batches(
        list(source.read_table("order", columns=["customer_id", "total"]))
    ).to_pylist()
    per_customer = Counter(o["customer_id"] for o in orders)
    segment = {c["id"]: c["segment"] for c in customers}
    mean_orders = {
        s: sum(per_customer[c] for c in segment if segment[c] == s)
        / max(1, sum(v == s for v in segment.values()))
        for s in SEGMENTS
    }
    assert mean_orders["enterprise"] > 2 * mean_orders["retail"]
    assert any(per_customer[c] == 0 for c in segment)  # some customers have no orders
    totals = {s: [float(o["total"]) for o in orders if segment[o["customer_id"]] == s] for s in SEGMENTS}
    assert sum(totals["enterprise"]) / len(totals["enterprise"]) > 3 * sum(totals["retail"]) / len(
        totals["retail"]
    )
    assert isinstance(dt.date.today(), dt.date)
