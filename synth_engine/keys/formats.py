"""Key formats: unique, format-preserving generated keys (integers, UUIDs, counters, fixed-width patterns).

Keys are never learned as values, and a format keeps none: an integer key keeps its smallest number (where the
sequence starts), a counter its literal prefix and suffix (shared by every value) and smallest number, a pattern
one alphabet per position, where a position is a literal character only when it is the same in at least
:data:`_MIN_LITERAL_SUPPORT` distinct values (so a format learned from one or two keys cannot spell one out).

A primary key is generated from its row's *global index* (``start + i``), so
shards that get disjoint index ranges never collide and the output does not depend on how rows were sharded. All
of it is vectorised: numbers are built with numpy, text as fixed-width byte matrices turned into Arrow arrays.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import ModelError
from synth_engine._internal.arrow_numbers import plain

log = logging.getLogger(__name__)

_UUID_RE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_COUNTER_RE = re.compile(r"^(\D*?)([1-9][0-9]{0,17}|0)(\D*)$")
_COUNTER_NAMED = r"^(?P<prefix>\D*?)(?P<number>[1-9][0-9]{0,17}|0)(?P<suffix>\D*)$"  # for Arrow's extract_regex
_LEARN_SAMPLE = 20_000
_MIN_LITERAL_SUPPORT = 5  # distinct values that must share a character for it to stay a literal in a pattern
_MAX_COUNTER_SPACE = 2**31  # keeps the affine permutation a * i + b exact in int64
_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)

KeyStyle = Literal["integer", "uuid", "counter", "pattern"]


@dataclass(frozen=True)
class KeyFormat:
    """How a primary key column looks, learned from its values, and how to make new unique keys like it.

    Styles:
        - ``integer``: sequential integers from the source's minimum (integer and decimal(p, 0) columns);
        - ``uuid``: uuid4-shaped values (text in canonical form, 16-byte binary, or Arrow's uuid type);
        - ``counter``: ``prefix + number + suffix`` with unpadded numbers (also plain numeric text such as ``'42'``);
        - ``pattern``: fixed-length text, one alphabet per position (a single-character alphabet is a literal), e.g.
          ``'N123AB'`` is upper, digit, digit, digit, upper, upper.

    Attributes:
        style: one of the styles above.
        arrow_type: the exact Arrow type generated keys have.
        first: the smallest source number (integer and counter styles).
        prefix: the counter's literal prefix.
        suffix: the counter's literal suffix.
        alphabets: the pattern's per-position alphabets.
        uppercase: uuid text in upper case.
    """

    style: KeyStyle
    arrow_type: pa.DataType
    first: int = 1
    prefix: str = ""
    suffix: str = ""
    alphabets: tuple[str, ...] = ()
    uppercase: bool = False

    # ---------------------------------------------------------------- learn
    @classmethod
    def learn(cls, values: pa.Array | pa.ChunkedArray) -> KeyFormat:
        """Learn the key format from a column's values (a sample of up to 20,000 values is enough).

        Raises:
            ModelError: when the Arrow type cannot hold generated keys (for example a boolean).
        """
        arr = plain(values)
        t = arr.type
        arr = arr.drop_null()
        if len(arr) > _LEARN_SAMPLE:
            arr = arr.slice(0, _LEARN_SAMPLE)
        if pa.types.is_integer(t) or (pa.types.is_decimal(t) and t.scale == 0) or pa.types.is_floating(t):
            first = int(pc.min(arr).as_py()) if len(arr) else 1
            return cls("integer", t, first=first)
        if _is_uuid_type(t):
            return cls("uuid", t)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
            raise ModelError(
                f"cannot generate primary keys of Arrow type {t}; expected integers, text or UUIDs. "
                "Change the key column's type, or give the table a surrogate integer key"
            )
        if len(arr) == 0:
            return cls("counter", t, first=1)
        if pc.all(pc.match_substring_regex(arr, _UUID_RE)).as_py():
            upper = bool(pc.any(pc.match_substring_regex(arr, "[A-F]")).as_py())
            return cls("uuid", t, uppercase=upper)
        texts: list[str] = arr.to_pylist()
        counter = _learn_counter(texts)
        if counter is not None:
            prefix, first, suffix = counter
            return cls("counter", t, first=first, prefix=prefix, suffix=suffix)
        alphabets = _learn_pattern(texts)
        if alphabets is None:
            log.warning("key values follow no single text pattern; generating plain numeric text keys instead")
            return cls("counter", t, first=1)
        return cls("pattern", t, alphabets=alphabets)

    @classmethod
    def learn_private(
        cls, values: pa.Array | pa.ChunkedArray, *, std: float, delta: float, rng: np.random.Generator
    ) -> KeyFormat:
        """The key format under differential privacy: two thresholded vocabularies (Gaussian noise ``std``).

        Integers start at 1 and UUIDs need no data. Text keys release the vocabulary of their counter shapes
        (``prefix + number + suffix``: the prefix and suffix) and of their layouts (each digit ``9``, each
        upper-case letter ``A``, each lower-case one ``a``, punctuation as it is); the shape most keys share (largest
        noisy count, above the threshold) is used, with numbers from 1. For a layout, a third vocabulary of
        (position, character) pairs over the keys of that layout (sensitivity ``sqrt(length)``, noise scaled to it)
        keeps a position's character literal where it is the only one released there and nearly every key has it
        (``N`` in ``N123AB``). No other letter or digit of a key is released. When nothing clears the threshold,
        keys are plain numbers. Each key is counted once per vocabulary.

        Raises:
            ModelError: when the Arrow type cannot hold generated keys (for example a boolean).
        """
        from synth_engine.privacy import mechanisms as dpm

        arr = plain(values)
        t = arr.type
        if pa.types.is_integer(t) or (pa.types.is_decimal(t) and t.scale == 0) or pa.types.is_floating(t):
            return cls("integer", t, first=1)
        if _is_uuid_type(t):
            return cls("uuid", t)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
            return cls.learn(arr.slice(0, 0))  # raises the same error
        arr = arr.drop_null().cast(pa.string())
        if len(arr) > _LEARN_SAMPLE:
            arr = arr.slice(0, _LEARN_SAMPLE)
        if len(arr) == 0:
            return cls("counter", t, first=1)
        is_uuid = pc.match_substring_regex(arr, _UUID_RE)
        parts = pc.extract_regex(arr, _COUNTER_NAMED)  # NULL where a key is no counter
        counters = pc.binary_join_element_wise(
            pc.struct_field(parts, 0), pc.struct_field(parts, 2), "\x1f"
        )
        counters = pc.if_else(is_uuid, pa.scalar(None, pa.string()), counters)
        layout = pc.replace_substring_regex(arr, "[0-9]", "9")
        layout = pc.replace_substring_regex(layout, "[A-Z]", "A")
        layout = pc.replace_substring_regex(layout, "[a-z]", "a")
        layout = pc.replace_substring_regex(layout, "[^9Aa[:punct:] ]", "?")  # another script: no literal
        upper = pc.and_(is_uuid, pc.match_substring_regex(arr, "[A-F]"))
        layout = pc.if_else(is_uuid, pc.if_else(upper, "UUID", "uuid"), layout)
        best: tuple[float, str, str] | None = None
        for what, signatures in (("counter", counters.drop_null()), ("layout", layout)):
            cats, noisy = dpm.vocabulary(signatures, std, delta, rng)
            if len(cats):
                i = int(np.argmax(noisy))
                if best is None or noisy[i] > best[0]:
                    best = (float(noisy[i]), what, str(cats[i].as_py()))
        if best is None:
            log.info("no key shape clears the DP threshold; generating plain numeric text keys instead")
            return cls("counter", t, first=1)
        _, what, sig = best
        if what == "counter":
            prefix, suffix = sig.split("\x1f", 1)
            return cls("counter", t, first=1, prefix=prefix, suffix=suffix)
        if sig in ("uuid", "UUID"):
            return cls("uuid", t, uppercase=sig == "UUID")
        classes = {"9": _DIGITS, "A": _UPPER, "a": _LOWER, "?": _UPPER}
        alphabets = [classes.get(c, c) for c in sig]
        for pos, char in _private_literals(arr, layout, sig, best[0], std, delta, rng).items():
            alphabets[pos] = char
        return cls("pattern", t, alphabets=tuple(alphabets))

    # -------------------------------------------------------------- capacity
    @property
    def capacity(self) -> int | None:
        """How many distinct keys the format can make (None: practically unbounded)."""
        if self.style != "pattern":
            return None
        return math.prod(len(a) for a in self.alphabets if len(a) > 1)

    def with_capacity(self, total: int) -> KeyFormat:
        """The same format, widened when needed so that it holds ``total`` distinct keys.

        Call this once with the total row count before sharding, so that every shard generates with the same
        format. Widening first turns literal digits into digit positions (right to left), then adds digits.
        """
        cap = self.capacity
        if cap is None or cap >= total:
            return self
        alphabets = list(self.alphabets)
        for pos in range(len(alphabets) - 1, -1, -1):
            if len(alphabets[pos]) == 1 and alphabets[pos].isdigit():
                alphabets[pos] = _DIGITS
                if math.prod(len(a) for a in alphabets if len(a) > 1) >= total:
                    break
        insert_at = next((i for i, a in enumerate(alphabets) if a == _DIGITS), len(alphabets))
        while math.prod(len(a) for a in alphabets if len(a) > 1) < total:
            alphabets.insert(insert_at, _DIGITS)
        widened = replace(self, alphabets=tuple(alphabets))
        log.warning(
            "key pattern %s holds %d keys but %d are needed; widened to %s (%d characters). Check the target "
            "column's length", self.describe(), cap, total, widened.describe(), len(alphabets),
        )
        return widened

    def describe(self) -> str:
        """A readable form of the format, such as ``'A999AA'`` or ``'P-{n}'``."""
        if self.style == "pattern":
            names = {_DIGITS: "9", _UPPER: "A", _LOWER: "a"}
            return "".join(a if len(a) == 1 else names.get(a, "?") for a in self.alphabets)
        if self.style == "counter":
            return f"{self.prefix}{{n}}{self.suffix}"
        return self.style

    # -------------------------------------------------------------- generate
    def generate(self, start: int, n: int, *, seed: int) -> pa.Array:
        """``n`` unique keys for global row indexes ``start .. start + n - 1``.

        Keys of disjoint index ranges never collide, and a key depends only on ``(seed, index)``, so the output is
        the same however the rows are sharded.

        Raises:
            ModelError: when an integer key would overflow its type, or ``start``/``n`` are negative.
        """
        if start < 0 or n < 0:
            raise ModelError(f"start and n must be >= 0, got start={start}, n={n}")
        index = np.arange(start, start + n, dtype=np.int64)
        if self.style == "integer":
            return self._integers(index)
        if self.style == "uuid":
            return self._uuids(index, seed)
        if self.style == "counter":
            numbers = pa.array(index + self.first, type=pa.int64()).cast(pa.string())
            out = pc.binary_join_element_wise(self.prefix, numbers, self.suffix, "")
            return out.cast(self.arrow_type)
        fmt = self.with_capacity(start + n)
        return fmt._patterned(index, seed)

    def _integers(self, index: np.ndarray) -> pa.Array:
        values = index + self.first
        t = self.arrow_type
        if pa.types.is_integer(t) and len(values):
            info = np.iinfo(t.to_pandas_dtype())
            if values[-1] > info.max:
                raise ModelError(
                    f"integer keys up to {int(values[-1])} do not fit the key's type {t} (max {info.max}); "
                    "widen the key column's type (e.g. BIGINT) or generate fewer rows"
                )
        out = pa.array(values, type=pa.int64())
        if pa.types.is_decimal(t):
            out = out.cast(pa.decimal128(38, 0))  # int64 needs 19 digits; values are checked on the next cast
        return out.cast(t)

    def _uuids(self, index: np.ndarray, seed: int) -> pa.Array:
        salt = np.random.Generator(np.random.PCG64([seed, 0x75756964])).integers(0, 2**62, size=3, dtype=np.uint64)
        mult = salt[0] | np.uint64(1)  # odd, so i -> mult * i is a bijection modulo 2**62
        idx = index.astype(np.uint64)
        low = ((idx * mult + salt[1]) & np.uint64(2**62 - 1)) | np.uint64(0x8000000000000000)  # variant 10xx
        high = _splitmix64(idx ^ salt[2])
        high = (high & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)  # version 4
        raw = np.concatenate(
            [high.astype(">u8").view(np.uint8).reshape(-1, 8), low.astype(">u8").view(np.uint8).reshape(-1, 8)],
            axis=1,
        )
        t = self.arrow_type
        if _is_uuid_type(t):
            storage = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(index), [None, pa.py_buffer(raw.tobytes())])
            if isinstance(t, pa.ExtensionType):
                return pa.ExtensionArray.from_storage(t, storage)
            return storage
        hexes = np.empty((len(index), 32), dtype=np.uint8)
        hexes[:, 0::2] = _HEX[raw >> 4]
        hexes[:, 1::2] = _HEX[raw & 15]
        text = np.full((len(index), 36), ord("-"), dtype=np.uint8)
        for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
            text[:, dst : dst + width] = hexes[:, src : src + width]
        if self.uppercase:
            text = np.where((text >= ord("a")) & (text <= ord("f")), text - 32, text).astype(np.uint8)
        return _fixed_width_strings(text).cast(t)

    def _patterned(self, index: np.ndarray, seed: int) -> pa.Array:
        variable = [i for i, a in enumerate(self.alphabets) if len(a) > 1]
        # The rightmost variable positions, as many as fit 2**31 keys, carry a permutation of the index; any
        # positions left of them are filled from a hash of the index (uniqueness does not depend on them).
        counted: list[int] = []
        space = 1
        for pos in reversed(variable):
            if space * len(self.alphabets[pos]) > _MAX_COUNTER_SPACE:
                break
            counted.append(pos)
            space *= len(self.alphabets[pos])
        if len(index) and int(index[-1]) >= space:
            raise ModelError(f"key pattern {self.describe()} cannot hold {int(index[-1]) + 1} keys; widen the column")
        rng = np.random.Generator(np.random.PCG64([seed, 0x6B6579]))
        mult = int(rng.integers(1, max(space, 2)))
        while math.gcd(mult, space) != 1:
            mult += 1
        offset = int(rng.integers(0, max(space, 1)))
        code = (index * mult + offset) % space if space > 1 else np.zeros_like(index)
        out = np.empty((len(index), len(self.alphabets)), dtype=np.uint8)
        for pos, alphabet in enumerate(self.alphabets):
            if len(alphabet) == 1:
                out[:, pos] = ord(alphabet)
        for pos in counted:  # right to left: the least significant digit first
            chars = np.frombuffer(self.alphabets[pos].encode("ascii"), dtype=np.uint8)
            out[:, pos] = chars[code % len(chars)]
            code = code // len(chars)
        filler = _splitmix64(index.astype(np.uint64) ^ np.uint64(int(rng.integers(0, 2**62))))
        for pos in (p for p in variable if p not in counted):
            chars = np.frombuffer(self.alphabets[pos].encode("ascii"), dtype=np.uint8)
            out[:, pos] = chars[(filler % np.uint64(len(chars))).astype(np.int64)]
            filler = _splitmix64(filler)
        return _fixed_width_strings(out).cast(self.arrow_type)


def _is_uuid_type(t: pa.DataType) -> bool:
    if isinstance(t, pa.ExtensionType):
        return bool(t.extension_name == "arrow.uuid")
    return bool(pa.types.is_fixed_size_binary(t) and t.byte_width == 16)


_LITERAL_SHARE = 0.9  # a released character is a literal where its noisy count is this share of its layout's


def _private_literals(
    arr: pa.Array, layout: pa.Array, sig: str, layout_count: float, std: float, delta: float,
    rng: np.random.Generator,
) -> dict[int, str]:
    """Positions of layout ``sig`` whose character is the same in nearly every key (a thresholded vocabulary of
    (position, character) pairs, noise scaled to its sensitivity ``sqrt(len(sig))``)."""
    from synth_engine.privacy import mechanisms as dpm

    same = arr.filter(pc.equal(layout, sig))
    try:
        encoded = b"".join(s.encode("ascii") for s in same.to_pylist())
    except UnicodeEncodeError:
        return {}
    width = len(sig)
    if not encoded or width == 0:
        return {}
    mat = np.frombuffer(encoded, dtype=np.uint8).reshape(-1, width)
    positions = [p for p, c in enumerate(sig) if c in "9Aa"]
    if not positions:
        return {}
    pairs = pa.array([f"{p}:{chr(c)}" for p in positions for c in mat[:, p]])
    cats, noisy = dpm.vocabulary(pairs, std * math.sqrt(len(positions)), delta, rng)
    by_pos: dict[int, list[tuple[str, float]]] = {}
    for cat, count in zip(cats.to_pylist(), noisy, strict=True):
        p, c = cat.split(":", 1)
        by_pos.setdefault(int(p), []).append((c, float(count)))
    return {
        p: found[0][0] for p, found in by_pos.items() if len(found) == 1 and found[0][1] >= _LITERAL_SHARE * layout_count
    }


def _learn_counter(texts: list[str]) -> tuple[str, int, str] | None:
    """``(prefix, min number, suffix)`` when every value is ``prefix + unpadded number + suffix``."""
    matches = [_COUNTER_RE.match(s) for s in texts]
    if not all(matches):
        return None
    prefixes = {m.group(1) for m in matches if m}
    suffixes = {m.group(3) for m in matches if m}
    if len(prefixes) != 1 or len(suffixes) != 1:
        return None
    numbers = [int(m.group(2)) for m in matches if m]
    lengths = {len(m.group(2)) for m in matches if m}
    if len(lengths) == 1 and len(texts) > 1 and len(set(numbers)) > 1 and min(numbers) >= 10 ** (min(lengths) - 1):
        # every number has the same width: a fixed-length pattern keeps the look better (e.g. 'AB1234')
        return None
    # a single distinct key would be spelled out by prefix + number + suffix: its sequence starts at 1 instead
    first = min(numbers) if len(set(numbers)) > 1 else 1
    return prefixes.pop(), first, suffixes.pop()


def _learn_pattern(texts: list[str]) -> tuple[str, ...] | None:
    """Per-position alphabets of the most common length, or None when values are not ASCII."""
    try:
        encoded = [s.encode("ascii") for s in texts]
    except UnicodeEncodeError:
        return None
    lengths = np.array([len(b) for b in encoded])
    if lengths.size == 0 or lengths.max() == 0:
        return None
    modal = int(np.bincount(lengths).argmax())
    if modal == 0:
        return None
    same = b"".join(b for b in encoded if len(b) == modal)
    mat = np.frombuffer(same, dtype=np.uint8).reshape(-1, modal)
    # a character common to a few keys only is part of those keys, not of the format: it becomes its class
    literals_ok = np.unique(mat, axis=0).shape[0] >= _MIN_LITERAL_SUPPORT
    alphabets = []
    for pos in range(modal):
        seen = np.unique(mat[:, pos])
        if seen.size == 1 and (literals_ok or not chr(seen[0]).isalnum()):
            alphabets.append(chr(seen[0]))
            continue
        chars = "".join(chr(c) for c in seen)
        alphabet = ""
        if any(c.isdigit() for c in chars):
            alphabet += _DIGITS
        if any(c in _UPPER for c in chars):
            alphabet += _UPPER
        if any(c in _LOWER for c in chars):
            alphabet += _LOWER
        alphabet += "".join(c for c in chars if not c.isalnum())
        alphabets.append(alphabet)
    return tuple(alphabets)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a fast bijective mix of 64-bit integers (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def _fixed_width_strings(mat: np.ndarray) -> pa.Array:
    """An Arrow string array from an ``(n, width)`` matrix of ASCII bytes, without a Python loop."""
    n, width = mat.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets.astype(np.int32).tobytes()), pa.py_buffer(np.ascontiguousarray(mat).tobytes())
        )
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(np.ascontiguousarray(mat).tobytes())
    )
