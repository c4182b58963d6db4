"""Typed statistics of real data, computed by ``connectors.profile`` on a bounded sample.

Kind inference reads them, the validation suite derives its value sets and ranges from them, and the schema file
quotes them in its comments. No I/O here: these are plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ColumnProfile:
    """What a bounded sample says about one column.

    Attributes:
        name: the column name.
        sample_rows: rows in the sample.
        null_count: NULLs in the sample.
        distinct_count: distinct non-null values in the sample.
        min: smallest non-null value (numbers, dates, times; for text the shortest length is in ``min_length``).
        max: largest non-null value.
        min_length: shortest text/bytes length, for text and binary columns.
        max_length: longest text/bytes length.
        top_values: up to 50 most frequent non-null values with their counts, most frequent first.
        pattern_shares: for text, the share of non-null values matching each named pattern (``email``, ``phone``...).
    """

    name: str
    sample_rows: int
    null_count: int
    distinct_count: int
    min: Any = None
    max: Any = None
    min_length: int | None = None
    max_length: int | None = None
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    pattern_shares: dict[str, float] = field(default_factory=dict)

    @property
    def non_null(self) -> int:
        return self.sample_rows - self.null_count

    @property
    def null_share(self) -> float:
        return self.null_count / self.sample_rows if self.sample_rows else 0.0

    @property
    def unique_share(self) -> float:
        """Distinct non-null values over non-null values (1.0 = every value distinct)."""
        return self.distinct_count / self.non_null if self.non_null else 0.0

    @property
    def is_unique(self) -> bool:
        return self.non_null > 0 and self.distinct_count == self.non_null


@dataclass(frozen=True)
class TableProfile:
    """What a bounded sample says about one table.

    Attributes:
        table: the table name.
        row_count: rows in the whole table (exact or the database's estimate).
        sample_rows: rows actually profiled (at most the configured bound).
        columns: per-column profiles keyed by column name.
    """

    table: str
    row_count: int
    sample_rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
