"""Moving Arrow columns to float64 numbers and back to their exact Arrow type, vectorised.

Temporal values travel as their int64 storage (microseconds, days...), decimals as floats rounded back to their scale
on the way out, integers are rounded and clipped to their type's range, so a sampled column always casts back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import ModelError
from schemas.kinds import Kind


def is_number_type(t: pa.DataType) -> bool:
    """True for the Arrow types that the numeric marginal can carry as float64."""
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
    )


def is_integral(t: pa.DataType) -> bool:
    """True when sampled numbers must be whole: integers and every temporal storage."""
    return bool(pa.types.is_integer(t) or pa.types.is_temporal(t))


def decimal_scale(t: pa.DataType) -> int | None:
    """The scale of a decimal type, or None for other types."""
    return int(t.scale) if pa.types.is_decimal(t) else None


def plain(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array with dictionaries decoded (models learn values, not dictionary codes)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def to_float(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Numbers of a numeric or temporal array as float64, with the validity mask.

    Returns:
        ``(values, valid)``: ``values`` holds 0.0 where ``valid`` is False.
    """
    t = arr.type
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_temporal(t):
        storage = pa.int32() if t.bit_width == 32 else pa.int64()
        arr = arr.cast(storage)
    elif pa.types.is_decimal(t) or pa.types.is_boolean(t):
        arr = arr.cast(pa.float64())
    values = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    return values, valid


def from_float(values: np.ndarray, valid: np.ndarray | None, t: pa.DataType) -> pa.Array:
    """Float64 numbers back to exactly the Arrow type ``t``; rows where ``valid`` is False become NULL."""
    mask = None if valid is None or valid.all() else ~valid
    if pa.types.is_floating(t):
        return pa.array(values, type=pa.float64(), mask=mask).cast(t)
    if pa.types.is_decimal(t):
        rounded = np.round(values, t.scale)
        return pa.array(rounded, type=pa.float64(), mask=mask).cast(t)
    if pa.types.is_integer(t) or pa.types.is_temporal(t):
        storage = _integer_storage(t)
        info = np.iinfo(storage.to_pandas_dtype())
        # Rounding then clipping keeps every sample castable; the marginals are bounded by the observed range anyway.
        ints = np.clip(np.rint(values), float(info.min), float(info.max)).astype(storage.to_pandas_dtype())
        out = pa.array(ints, type=storage, mask=mask)
        if pa.types.is_temporal(t):
            return out.cast(t)
        return out
    raise ModelError(f"cannot turn numbers back into Arrow type {t}; model this column as categorical")


def _integer_storage(t: pa.DataType) -> pa.DataType:
    if pa.types.is_integer(t):
        return t
    return pa.int32() if t.bit_width == 32 else pa.int64()


def infer_kind(t: pa.DataType) -> Kind | None:
    """A reasonable kind for a column known only by its Arrow type (used for context columns without kinds)."""
    if pa.types.is_dictionary(t):
        return Kind.CATEGORICAL
    if pa.types.is_boolean(t):
        return Kind.BOOLEAN
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return Kind.NUMERIC
    if pa.types.is_timestamp(t):
        return Kind.DATETIME
    if pa.types.is_date(t):
        return Kind.DATE
    if pa.types.is_time(t):
        return Kind.TIME
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return Kind.CATEGORICAL
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return Kind.BINARY
    return None


def take_rows(values: pa.Array, index: np.ndarray) -> pa.Array:
    """``values.take(index)`` with a numpy index (a thin helper so callers need no pyarrow.compute import)."""
    return pc.take(values, pa.array(index, type=pa.int64()))
