"""Profiles of Arrow tables: counts, ranges, lengths, top values and text pattern shares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from connectors.profile import TOP_VALUES, profile_column, profile_table


def test_counts_ranges_and_top_values_with_nulls() -> None:
    table = pa.table(
        {
            "n": pa.array([3, 1, None, 3, 7, None], pa.int64()),
            "amount": pa.array(
                [Decimal("1.50"), Decimal("-2.25"), None, None, None, None], pa.decimal128(10, 2)
            ),
            "day": pa.array([dt.date(2024, 1, 2), dt.date(2023, 5, 6), None, None, None, None]),
        }
    )
    prof = profile_table(table, name="t", row_count=1_000)
    assert (prof.table, prof.row_count, prof.sample_rows) == ("t", 1_000, 6)
    n = prof.columns["n"]
    assert (n.sample_rows, n.null_count, n.distinct_count) == (6, 2, 3)
    assert (n.min, n.max) == (1, 7)
    assert n.top_values == [(3, 2), (1, 1), (7, 1)]  # most frequent first, ties by value
    assert n.pattern_shares == {}
    assert prof.columns["amount"].min == Decimal("-2.25")
    assert prof.columns["day"].max == dt.date(2024, 1, 2)


def test_text_lengths_and_pattern_shares() -> None:
    emails = ["ann@example.com", "bob.smith@mail.co.uk", "not an email", None]
    prof = profile_column(pa.array(emails), name="email")
    assert (prof.min_length, prof.max_length) == (12, 20)
    assert prof.min is None and prof.max is None  # text ranges are lengths, not values
    assert prof.pattern_shares["email"] == pytest.approx(2 / 3, abs=1e-3)
    assert prof.pattern_shares["phone"] == 0.0


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (
            "phone",
            ["(555) 123-4567", "+1-555-123-4567x123", "555.123.4567", "+44 20 7946 0958"],
            ["12-34", "hello"],
        ),
        ("ipv4", ["192.168.0.1", "8.8.8.8"], ["256.1.1.1", "1.2.3"]),
        ("ipv6", ["::1", "2001:db8::8a2e:370:7334", "fe80:0:0:0:202:b3ff:fe1e:8329"], ["12:30:00", "abc"]),
        ("url", ["https://example.com/a?b=1", "www.example.org"], ["example", "ftp:/x"]),
        ("uuid", ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567-e89b-12d3-a456"]),
        ("iso_date", ["2024-01-31", "2024-01-31T12:30:00Z", "2024-01-31 12:30:00.123+02:00"], ["31/01/2024"]),
        ("postcode", ["90210", "90210-1234", "SW1A 1AA", "K1A 0B1"], ["ABCDEFG"]),
        ("credit_card", ["4111 1111 1111 1111", "5500-0000-0000-0004"], ["4111 1111 1111 1112", "1234"]),
        ("iban", ["GB82WEST12345698765432", "DE89 3704 0044 0532 0130 00"], ["GB82"]),
        ("ssn", ["123-45-6789"], ["123456789"]),
        (
            "person_name",
            ["John Smith", "Mary-Ann O'Brien", "John F. Kennedy", "Dr. Jane Doe"],
            ["john smith", "ACME"],
        ),
    ],
)
def test_each_pattern_matches_its_shape_only(pattern: str, good: list[str], bad: list[str]) -> None:
    assert profile_column(pa.array(good), name="c").pattern_shares[pattern] == 1.0
    assert profile_column(pa.array(bad), name="c").pattern_shares[pattern] == 0.0


def test_pattern_share_is_weighted_by_repeats() -> None:
    # Patterns run on distinct values; the share must still count every occurrence.
    values = ["a@b.com"] * 9 + ["x"]
    assert profile_column(pa.array(values), name="e").pattern_shares["email"] == pytest.approx(0.9)


def test_empty_and_all_null_columns() -> None:
    empty = pa.table({"a": pa.array([], pa.string()), "b": pa.array([], pa.int32())})
    prof = profile_table(empty, name="e", row_count=0)
    assert prof.sample_rows == 0
    assert prof.columns["a"].distinct_count == 0 and prof.columns["a"].top_values == []
    nulls = profile_column(pa.array([None, None], pa.string()), name="n")
    assert (nulls.null_count, nulls.distinct_count, nulls.null_share) == (2, 0, 1.0)
    assert nulls.pattern_shares == {}


def test_top_values_are_capped_and_chunked_dictionary_input_is_read() -> None:
    values = pa.chunked_array([[f"v{i}" for i in range(60)], [f"v{i}" for i in range(10)]])
    prof = profile_column(values.dictionary_encode(), name="d")
    assert prof.distinct_count == 60
    assert len(prof.top_values) == TOP_VALUES
    assert prof.top_values[0] == ("v0", 2)


def test_binary_and_nested_columns() -> None:
    binary = profile_column(pa.array([b"ab", b"abcd", None]), name="b")
    assert (binary.min_length, binary.max_length, binary.top_values) == (2, 4, [])
    nested = profile_column(pa.array([[1, 2], None, [3]]), name="l")
    assert (nested.null_count, nested.sample_rows) == (1, 3)
