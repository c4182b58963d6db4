"""The Arrow path's pieces without a server: re-chunking to batch_rows, and the vectorised casts."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from connectors.sql.arrow_read import rechunk
from connectors.sql.read import convert_array, convert_column
from schemas.errors import ConnectorError
from schemas.model import Column


def _col(name: str, sql_type: str, **extra: object) -> Column:
    return Column(name=name, type=sql_type, **extra)  # type: ignore[arg-type]


def test_rechunk_gives_full_batches_of_batch_rows() -> None:
    parts = [pa.record_batch({"a": list(range(s, s + n))}) for s, n in ((0, 3), (3, 10), (13, 1), (14, 7))]
    out = list(rechunk(iter(parts), 4))
    assert [b.num_rows for b in out] == [4, 4, 4, 4, 4, 1]
    assert pa.Table.from_batches(out).column("a").to_pylist() == list(range(21))
    assert list(rechunk(iter([]), 4)) == []


@pytest.mark.parametrize(
    ("sql_type", "raw", "expected"),
    [
        ("DECIMAL(6,2)", pa.array([1.005, 2.0, None]), [decimal.Decimal("1.00"), decimal.Decimal("2.00"), None]),
        ("DECIMAL(6,2)", pa.array(["1.005", "2"]), [decimal.Decimal("1.00"), decimal.Decimal("2.00")]),
        ("REAL", pa.array([1.1, None], pa.float32()), [1.1, None]),
        ("BOOLEAN", pa.array([0, 2, None]), [False, True, None]),
        ("DATE", pa.array(["2020-01-02", None]), [dt.date(2020, 1, 2), None]),
        ("TIME", pa.array(["10:11:12.5"]), [dt.time(10, 11, 12, 500000)]),
        ("TIMESTAMP WITH TIME ZONE", pa.array(["2020-01-02 03:04:05"]),
         [dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)]),
        ("VARCHAR(5)", pa.array([b"\xff", b"ok"]).view(pa.string()), ["\ufffd", "ok"]),
        ("INTERVAL", pa.array([pa.MonthDayNano([-13, 2, 1_000]), None], pa.month_day_nano_interval()),
         [dt.timedelta(days=-395 + 2, microseconds=1), None]),
    ],
)  # fmt: skip
def test_arrow_casts_match_the_per_value_conversions(sql_type: str, raw: pa.Array, expected: list[object]) -> None:
    col = _col("c", sql_type)
    got = convert_array(raw, col, col.sql_type.to_arrow(), table="t")
    assert got.type == col.sql_type.to_arrow()
    assert got.to_pylist() == expected


def test_a_value_that_does_not_fit_is_named() -> None:
    col = _col("n", "SMALLINT")
    with pytest.raises(ConnectorError, match="table 't', column 'n'"):
        convert_array(pa.array([1, 70_000]), col, pa.int16(), table="t")
    with pytest.raises(ConnectorError, match="table 't', column 'n'"):
        convert_column([1, 70_000], col, pa.int16(), table="t")
