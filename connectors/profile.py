"""Profile a bounded sample of a table: nulls, distinct values, ranges, lengths, top values and text patterns.

Everything here is vectorised with :mod:`pyarrow.compute`. Patterns are matched against the *distinct* values and
weighted by their counts, so a low-cardinality column costs a handful of regex evaluations whatever its size. The
input is a sample (see ``Source.sample_table``), so profiling a billion-row table costs the same as a small one.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.profile import ColumnProfile, TableProfile

logger = logging.getLogger(__name__)

TOP_VALUES = 50
"""How many of the most frequent values a profile keeps."""

# RE2 syntax (what Arrow uses). Every pattern is anchored: a value matches only when it is *wholly* that thing, so
# "contact me at a@b.com" is not an e-mail address.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX4 = r"[0-9a-fA-F]{1,4}"
_NAME_PART = r"\p{Lu}[\p{L}'’-]*\p{Ll}"
PATTERNS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    # Optional country prefix, groups of digits with the usual separators, an optional extension. The digit count is
    # checked separately (7 to 15, the E.164 range) because RE2 has no look-ahead.
    "phone": r"^(\+|00)?[0-9]{0,3}[ .-]?(\([0-9]{1,5}\)|[0-9]{1,5})([ .-]?[0-9]{2,5}){1,4}( ?(x|ext\.? ?)[0-9]{1,6})?$",
    "ipv4": rf"^({_OCTET}\.){{3}}{_OCTET}$",
    "ipv6": rf"^(({_HEX4}:){{7}}{_HEX4}|({_HEX4}:){{0,6}}({_HEX4})?::({_HEX4}:){{0,6}}({_HEX4})?)$",
    "url": r"^((https?|ftp)://|www\.)[^\s/?#]+\.[^\s]+$",
    "uuid": r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$",
    "iso_date": (
        r"^[0-9]{4}-[01][0-9]-[0-3][0-9]"
        r"([T ][0-2][0-9]:[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
    ),
    # US ZIP, UK, Canadian, Dutch and Polish shapes: enough to back up a column-name hint, not to stand alone.
    "postcode": (
        r"^([0-9]{5}(-[0-9]{4})?|[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}"
        r"|[A-Za-z][0-9][A-Za-z] ?[0-9][A-Za-z][0-9]|[0-9]{4} ?[A-Za-z]{2}|[0-9]{2}-[0-9]{3})$"
    ),
    # 13 to 19 digits in groups; the Luhn checksum is verified on top (see _luhn_valid).
    "credit_card": r"^[0-9]{4}([ -]?[0-9]{3,6}){2,4}$",
    "iban": r"^[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}( ?[A-Z0-9]{4}){1,6}( ?[A-Z0-9]{1,4})?$",
    "ssn": r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$",
    # "Capitalised Capitalised": an optional title, name parts (O'Brien, McDonald, Jean-Luc), middle initials.
    "person_name": rf"^(\p{{Lu}}\p{{Ll}}{{0,3}}\. )?{_NAME_PART}( ({_NAME_PART}|\p{{Lu}}\.))* {_NAME_PART}$",
    "capitalised_word": rf"^{_NAME_PART}$",
    "digits": r"^[0-9]+$",
    "multi_word": r"\S+\s+\S+\s+\S+",
}
"""Named text patterns whose shares a text column's profile records (share of its non-null values)."""


def profile_table(table: pa.Table, *, name: str, row_count: int) -> TableProfile:
    """Profile every column of a (sampled) table.

    Args:
        table: the sample, as an Arrow table. Its size bounds the cost, not the size of the real table.
        name: the table's name, recorded in the profile.
        row_count: rows in the whole table (exact or estimated), recorded as-is.

    Returns:
        The table's profile, with one :class:`ColumnProfile` per column.
    """
    columns = {
        field.name: profile_column(table.column(i), name=field.name) for i, field in enumerate(table.schema)
    }
    logger.debug("profiled %s: %d sampled rows, %d columns", name, table.num_rows, len(columns))
    return TableProfile(table=name, row_count=row_count, sample_rows=table.num_rows, columns=columns)


def profile_column(values: pa.Array | pa.ChunkedArray, *, name: str) -> ColumnProfile:
    """Profile one column (see :func:`profile_table`)."""
    arr = _plain(values)
    rows = len(arr)
    nulls = arr.null_count
    typ = arr.type
    if rows == nulls or pa.types.is_null(typ):
        return ColumnProfile(name=name, sample_rows=rows, null_count=rows, distinct_count=0)
    non_null = pc.drop_null(arr)
    if _is_nested(typ):
        # Lists, structs and maps: no order and no cheap hashing in every Arrow version; nulls are what we can say.
        return ColumnProfile(
            name=name, sample_rows=rows, null_count=nulls, distinct_count=_safe_distinct(non_null)
        )

    counts = pc.value_counts(non_null)
    distinct_values, distinct_counts = counts.field("values"), counts.field("counts")
    lo, hi, min_len, max_len = None, None, None, None
    top: list[tuple[Any, int]] = []
    shares: dict[str, float] = {}
    if _is_text(typ) or _is_binary(typ):
        lengths = pc.utf8_length(distinct_values) if _is_text(typ) else pc.binary_length(distinct_values)
        mm = pc.min_max(lengths)
        min_len, max_len = mm["min"].as_py(), mm["max"].as_py()
    elif pa.types.is_duration(typ):
        # Arrow has no min/max kernel for durations: take it on the microseconds, then give back timedeltas
        mm = pc.min_max(non_null.cast(pa.int64()))
        lo, hi = (pa.scalar(mm[k].as_py(), type=typ).as_py() for k in ("min", "max"))
    else:
        mm = pc.min_max(non_null)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if not _is_binary(typ):
        top = _top_values(distinct_values, distinct_counts)
    if _is_text(typ):
        shares = _pattern_shares(distinct_values.cast(pa.string()), distinct_counts, len(non_null))
    return ColumnProfile(
        name=name,
        sample_rows=rows,
        null_count=nulls,
        distinct_count=len(distinct_values),
        min=lo,
        max=hi,
        min_length=min_len,
        max_length=max_len,
        top_values=top,
        pattern_shares=shares,
    )


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array, dictionary-decoded, with string views turned into plain strings."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    elif pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.large_binary())
    return arr


def _is_text(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))


def _is_binary(typ: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ)
    )


def _is_nested(typ: pa.DataType) -> bool:
    return bool(pa.types.is_nested(typ) or pa.types.is_union(typ))


def _safe_distinct(values: pa.Array) -> int:
    try:
        return int(pc.count_distinct(values, mode="only_valid").as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return 0


def _top_values(values: pa.Array, counts: pa.Array) -> list[tuple[Any, int]]:
    """The most frequent values, most frequent first; ties broken by value so the profile is deterministic."""
    pairs = pa.table({"v": values, "c": counts})
    try:
        order = pc.sort_indices(pairs, sort_keys=[("c", "descending"), ("v", "ascending")])
    except pa.ArrowNotImplementedError:  # a value type with no order: ties stay in first-seen order
        order = pc.sort_indices(pairs, sort_keys=[("c", "descending")])
    head = pairs.take(order[:TOP_VALUES])
    return list(zip(head.column("v").to_pylist(), head.column("c").to_pylist(), strict=True))


def _pattern_shares(values: pa.Array, counts: pa.Array, non_null: int) -> dict[str, float]:
    """Share of the non-null values matching each pattern, from the distinct values weighted by their counts."""
    shares: dict[str, float] = {}
    weights = counts.cast(pa.int64())
    for pattern_name, regex in PATTERNS.items():
        matches = pc.match_substring_regex(values, regex)
        if pattern_name == "phone":
            # E.164 allows at most 15 digits; fewer than 7 is a short code, not a phone number.
            digits = pc.utf8_length(pc.replace_substring_regex(values, r"[^0-9]", ""))
            in_range = pc.and_(pc.greater_equal(digits, 7), pc.less_equal(digits, 15))
            # "2024-01-31" has the shape of a phone number too; a date is not one.
            matches = pc.and_(
                pc.and_(matches, in_range), pc.invert(pc.match_substring_regex(values, PATTERNS["iso_date"]))
            )
        elif pattern_name == "credit_card":
            matches = _luhn_valid(values, matches)
        hit = pc.sum(pc.filter(weights, matches)).as_py() or 0
        shares[pattern_name] = round(hit / non_null, 4) if non_null else 0.0
    return shares


def _luhn_valid(values: pa.Array, candidates: pa.Array) -> pa.Array:
    """Refine ``candidates`` (a boolean mask over ``values``) to those whose digits pass the Luhn checksum.

    Vectorised: the digits are left-padded to 19 characters, viewed as one (n, 19) byte matrix and summed with
    the doubling rule in numpy, so no value is looked at from Python.
    """
    mask = np.asarray(candidates.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    if not mask.any():
        return candidates
    picked = values.filter(pa.array(mask))
    digits = pc.replace_substring_regex(picked, r"[^0-9]", "")
    lengths = np.asarray(pc.utf8_length(digits).to_numpy(zero_copy_only=False))
    padded = pc.utf8_lpad(digits, width=19, padding="0").cast(pa.string())
    start = padded.offset  # the array may be a slice of its buffers
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[start : start + len(padded) + 1]
    raw = np.frombuffer(padded.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    matrix = raw.reshape(-1, 19).astype(np.int16) - ord("0")
    doubled = matrix[:, 1::2] * 2  # counted from the right, every second digit: columns 17, 15, ..., 1
    matrix[:, 1::2] = np.where(doubled > 9, doubled - 9, doubled)
    ok = (matrix.sum(axis=1) % 10 == 0) & (lengths >= 13) & (lengths <= 19)
    refined = mask.copy()
    refined[np.flatnonzero(mask)] = ok
    return pa.array(refined)
