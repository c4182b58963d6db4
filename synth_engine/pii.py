"""Realistic fakes for PII columns, generated fast and reproducibly, never learned from real values.

Faker is slow per call, so it is called only to build small pools (first names, street names, domains, number
templates...) once per ``(locale, seed)``; columns are then composed from the pools with vectorised Arrow and numpy
operations: names are first + last, numbers fill ``#`` templates with random digits (with valid Luhn and IBAN check
digits). A real sample (``like``) is used only for the format: its maximum length, its letter case, and (for phone
numbers, postcodes and national ids) the shape of its digits, with every digit replaced by a random one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

from schemas.errors import ModelError
from schemas.kinds import Kind

log = logging.getLogger(__name__)

_POOL = 1000
_UNIQUE_ROUNDS = 8

Maker = Callable[[int, np.random.Generator], pa.Array]


@lru_cache(maxsize=256)
def _pool(locale: str, seed: int, provider: str) -> pa.Array:
    """Up to :data:`_POOL` distinct outputs of one Faker provider, seeded (so reproducible)."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    method = getattr(fake, provider)
    values = sorted({str(method()) for _ in range(_POOL)})
    return pa.array(values, type=pa.string())


def _pick(pool: pa.Array, n: int, rng: np.random.Generator) -> pa.Array:
    return pc.take(pool, pa.array(rng.integers(0, len(pool), size=n)))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _digits_text(n: int, low: int, high: int, rng: np.random.Generator) -> pa.Array:
    return pa.array(rng.integers(low, high, size=n)).cast(pa.string())


def _to_template(values: pa.Array, *, letters: bool = True) -> pa.Array:
    """Digits become ``#`` (and letters ``?`` when ``letters``): the shape of a value without its content."""
    shape = pc.replace_substring_regex(values, r"[0-9]", "#")
    return pc.replace_substring_regex(shape, r"[A-Za-z]", "?") if letters else shape


def _fill(templates: pa.Array, rng: np.random.Generator) -> pa.Array:
    """Replace each ``#`` with a random digit and each ``?`` with a random upper-case letter, vectorised."""
    offsets, data = _offsets_and_bytes(templates)
    data = data[offsets[0] : offsets[-1]].copy()
    hashes = data == ord("#")
    data[hashes] = rng.integers(ord("0"), ord("9") + 1, size=int(hashes.sum()), dtype=np.uint8)
    marks = data == ord("?")
    data[marks] = rng.integers(ord("A"), ord("Z") + 1, size=int(marks.sum()), dtype=np.uint8)
    rebased = (offsets - offsets[0]).astype(np.int32)
    return pa.StringArray.from_buffers(len(templates), pa.py_buffer(rebased.tobytes()), pa.py_buffer(data.tobytes()))


def _offsets_and_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The int64 offsets and the raw bytes of a (non-null) string array."""
    binary = values.cast(pa.binary())
    if binary.offset or binary.null_count:
        binary = pa.concat_arrays([binary.fill_null(b"")])  # a fresh, offset-free copy
    buffers = binary.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[: len(binary) + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    return offsets, data


def _digit_matrix(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned ``(n, width)`` byte matrix of ASCII values (0 = padding), and each value's length."""
    offsets, data = _offsets_and_bytes(values)
    lengths = np.diff(offsets)
    width = int(lengths.max()) if len(lengths) else 0
    mat = np.zeros((len(values), width), dtype=np.uint8)
    cols = np.arange(width)[None, :]
    src = offsets[:-1, None] + cols - (width - lengths[:, None])
    inside = cols >= (width - lengths[:, None])
    mat[inside] = data[src[inside]]
    return mat, lengths


class _Fakes:
    """The column makers of one locale and seed."""

    def __init__(self, locale: str, seed: int, like: pa.Array | None) -> None:
        self.locale = locale
        self.seed = seed
        self.like_templates = None
        if like is not None and len(like):
            self.like_templates = pc.unique(_to_template(like))

    def pool(self, provider: str) -> pa.Array:
        try:
            return _pool(self.locale, self.seed, provider)
        except AttributeError:
            return _pool("en_US", self.seed, provider)  # a locale without this provider

    def templated(self, provider: str, *, letters: bool) -> Maker:
        def make(n: int, rng: np.random.Generator) -> pa.Array:
            templates = self.like_templates
            if templates is None:
                pool = self.pool(provider)
                if not letters:  # phone numbers: leave out extensions such as 'x123'
                    plain = pool.filter(pc.invert(pc.match_substring_regex(pool, "[A-Za-z]")))
                    pool = plain if len(plain) else pool
                templates = pc.unique(_to_template(pool, letters=letters))
            return _fill(_pick(templates, n, rng), rng)

        return make

    def first_name(self, n: int, rng: np.random.Generator) -> pa.Array:
        return _pick(self.pool("first_name"), n, rng)

    def last_name(self, n: int, rng: np.random.Generator) -> pa.Array:
        return _pick(self.pool("last_name"), n, rng)

    def person_name(self, n: int, rng: np.random.Generator) -> pa.Array:
        return _join(self.first_name(n, rng), " ", self.last_name(n, rng))

    def username(self, n: int, rng: np.random.Generator) -> pa.Array:
        base = _pick(self.pool("user_name"), n, rng)
        digits = _digits_text(n, 0, 1000, rng)
        with_digits = rng.random(n) < 0.5
        return pc.if_else(pa.array(with_digits), _join(base, digits), base)

    def email(self, n: int, rng: np.random.Generator) -> pa.Array:
        return _join(self.username(n, rng), "@", _pick(self.pool("free_email_domain"), n, rng))

    def address(self, n: int, rng: np.random.Generator) -> pa.Array:
        number = _fill(_pick(pc.unique(_to_template(self.pool("building_number"))), n, rng), rng)
        return _join(number, " ", _pick(self.pool("street_name"), n, rng))

    def city(self, n: int, rng: np.random.Generator) -> pa.Array:
        return _pick(self.pool("city"), n, rng)

    def ip(self, n: int, rng: np.random.Generator) -> pa.Array:
        first = rng.integers(1, 224, size=n)
        first = np.where(first == 127, 128, first)  # not loopback
        parts = [pa.array(first).cast(pa.string())] + [_digits_text(n, 0, 256, rng) for _ in range(3)]
        return pc.binary_join_element_wise(*parts, ".")

    def mac_address(self, n: int, rng: np.random.Generator) -> pa.Array:
        # locally administered unicast (second hex digit 2, 6, a or e): never a real vendor's device address
        octets = rng.integers(0, 256, size=(n, 6), dtype=np.int64)
        octets[:, 0] = (octets[:, 0] & 0xFC) | 0x02
        return pc.binary_join_element_wise(*(_HEX_OCTETS.take(pa.array(octets[:, i])) for i in range(6)), ":")

    def url(self, n: int, rng: np.random.Generator) -> pa.Array:
        host = _join("https://www.", _pick(self.pool("domain_word"), n, rng), ".", _pick(self.pool("tld"), n, rng))
        path = _pick(self.pool("uri_path"), n, rng)
        return pc.if_else(pa.array(rng.random(n) < 0.5), _join(host, "/", path), _join(host, "/"))

    def credit_card(self, n: int, rng: np.random.Generator) -> pa.Array:
        real = self.pool("credit_card_number")
        # Keep each sample card's 6-digit issuer prefix and length; random account digits; a valid Luhn digit.
        prefixes = pc.utf8_slice_codeunits(real, 0, 6)
        tails = pc.replace_substring_regex(pc.utf8_slice_codeunits(real, 6), r"[0-9]", "#")
        cards = _fill(_pick(_join(prefixes, tails), n, rng), rng)
        mat, lengths = _digit_matrix(cards)
        digits = np.where(mat > 0, mat.astype(np.int64) - ord("0"), 0)
        width = mat.shape[1]
        from_right = width - 1 - np.arange(width)  # 0 = the check digit's position
        doubled = np.where(from_right % 2 == 1, digits * 2, digits)
        doubled = np.where(doubled > 9, doubled - 9, doubled)
        payload = doubled[:, :-1].sum(axis=1)
        check = (10 - payload % 10) % 10
        mat[:, -1] = (ord("0") + check).astype(np.uint8)
        return _from_right_aligned(mat, lengths)

    def iban(self, n: int, rng: np.random.Generator) -> pa.Array:
        real = self.pool("iban")
        country = pc.utf8_slice_codeunits(real, 0, 2)
        bban = pc.replace_substring_regex(pc.utf8_slice_codeunits(real, 4), r"[0-9]", "#")
        drawn = _fill(_pick(_join(country, "00", bban), n, rng), rng)
        # ISO 13616 check digits: move the first four characters to the end, letters become 10..35, mod 97.
        moved = _join(pc.utf8_slice_codeunits(drawn, 4), pc.utf8_slice_codeunits(drawn, 0, 4))
        mat, _ = _digit_matrix(moved)
        value = np.where(mat >= ord("A"), mat.astype(np.int64) - ord("A") + 10, mat.astype(np.int64) - ord("0"))
        scale = np.where(mat == 0, 1, np.where(mat >= ord("A"), 100, 10))
        value = np.where(mat == 0, 0, value)
        remainder = np.zeros(len(drawn), dtype=np.int64)
        for col in range(mat.shape[1]):
            remainder = (remainder * scale[:, col] + value[:, col]) % 97
        check = pa.array(98 - remainder).cast(pa.string())
        check = pc.utf8_lpad(check, 2, "0")
        return _join(pc.utf8_slice_codeunits(drawn, 0, 2), check, pc.utf8_slice_codeunits(drawn, 4))


def _from_right_aligned(mat: np.ndarray, lengths: np.ndarray) -> pa.Array:
    width = mat.shape[1]
    keep = np.arange(width)[None, :] >= (width - lengths[:, None])
    data = mat[keep]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes()))


_MAKERS: dict[Kind, Callable[[_Fakes], Maker]] = {
    Kind.EMAIL: lambda f: f.email,
    Kind.PERSON_NAME: lambda f: f.person_name,
    Kind.FIRST_NAME: lambda f: f.first_name,
    Kind.LAST_NAME: lambda f: f.last_name,
    Kind.PHONE: lambda f: f.templated("phone_number", letters=False),
    Kind.ADDRESS: lambda f: f.address,
    Kind.CITY: lambda f: f.city,
    Kind.POSTCODE: lambda f: f.templated("postcode", letters=True),
    Kind.NATIONAL_ID: lambda f: f.templated("ssn", letters=False),
    Kind.IP: lambda f: f.ip,
    Kind.MAC_ADDRESS: lambda f: f.mac_address,
    Kind.URL: lambda f: f.url,
    Kind.CREDIT_CARD: lambda f: f.credit_card,
    Kind.IBAN: lambda f: f.iban,
    Kind.USERNAME: lambda f: f.username,
}


def fake_column(
    kind: Kind,
    n: int,
    *,
    seed: int,
    locale: str = "en_US",
    like: pa.Array | None = None,
    unique: bool = False,
) -> pa.Array:
    """``n`` realistic fake values of a PII kind, as an Arrow string array.

    Args:
        kind: a PII kind (email, person_name, first_name, last_name, phone, address, city, postcode, national_id,
            ip, url, credit_card, iban, username).
        n: values to make.
        seed: the random seed; the same seed, locale and ``like`` give the same values.
        locale: a Faker locale such as ``en_US`` or ``de_DE``.
        like: a sample of real values, used only for the format (max length, letter case, digit layout of phone
            numbers / postcodes / national ids); never copied.
        unique: guarantee distinct values (for unique columns such as an email): duplicates are redrawn, and any
            left get a numeric suffix (in an email, before the ``@``).

    Raises:
        ModelError: when ``kind`` is not a PII kind or the locale is unknown.
    """
    kind = Kind(kind)
    if kind not in _MAKERS:
        raise ModelError(f"fake_column makes PII kinds only ({', '.join(k.value for k in _MAKERS)}); got {kind.value}")
    try:
        Faker(locale)
    except AttributeError:
        raise ModelError(f"unknown Faker locale {locale!r}; use one such as 'en_US' or 'de_DE'") from None
    sample = None
    if like is not None:
        like = like.combine_chunks() if isinstance(like, pa.ChunkedArray) else like
        sample = like.cast(pa.string()).drop_null()
        sample = sample.slice(0, 2000)
    fakes = _Fakes(locale, seed, sample if kind in (Kind.PHONE, Kind.POSTCODE, Kind.NATIONAL_ID) else None)
    maker = _MAKERS[kind](fakes)
    max_len, case = _format_of(sample)
    if kind in _STRUCTURED:  # a cut address or card number is no longer one: these keep their whole form
        max_len = None
    rng = np.random.Generator(np.random.PCG64([seed, sum(kind.value.encode())]))

    def make(count: int) -> pa.Array:
        values = maker(count, rng)
        if case == "upper":
            values = pc.utf8_upper(values)
        elif case == "lower":
            values = pc.utf8_lower(values)
        if max_len is not None:
            if kind is Kind.EMAIL:
                values = _shorten_emails(values, max_len)
            values = pc.utf8_slice_codeunits(values, 0, max_len)
        return values

    out = make(n)
    if unique:
        out = _make_unique(out, make, kind, max_len)
    return out


_HEX_OCTETS = pa.array([f"{v:02x}" for v in range(256)])

_STRUCTURED = frozenset({Kind.IP, Kind.MAC_ADDRESS, Kind.CREDIT_CARD, Kind.IBAN})


def _format_of(sample: pa.Array | None) -> tuple[int | None, str | None]:
    if sample is None or len(sample) == 0:
        return None, None
    max_len = int(pc.max(pc.utf8_length(sample)).as_py())
    has_letters = pc.match_substring_regex(sample, "[A-Za-z]")
    if not pc.any(has_letters).as_py():
        return max_len, None
    lettered = sample.filter(has_letters)
    if pc.all(pc.equal(lettered, pc.utf8_upper(lettered))).as_py():
        return max_len, "upper"
    if pc.all(pc.equal(lettered, pc.utf8_lower(lettered))).as_py():
        return max_len, "lower"
    return max_len, None


def _duplicates(values: pa.Array) -> np.ndarray:
    series = pl.Series(values.cast(pa.large_string()))
    return np.asarray((~series.is_first_distinct()).to_numpy(), dtype=bool)


def _make_unique(values: pa.Array, make: Callable[[int], pa.Array], kind: Kind, max_len: int | None) -> pa.Array:
    dup = _duplicates(values)
    rounds = 0
    while dup.any() and rounds < _UNIQUE_ROUNDS:
        values = pc.replace_with_mask(values, pa.array(dup), make(int(dup.sum())))
        dup = _duplicates(values)
        rounds += 1
    if not dup.any():
        return values
    # What redrawing could not fix (small pools, short max lengths) gets a numeric suffix that is distinct by
    # construction. Only these few rows are touched, so a plain loop is fine here.
    arr = values.to_numpy(zero_copy_only=False).copy()
    where = np.flatnonzero(dup)
    log.debug("fake %s: %d values made unique with a numeric suffix", kind.value, where.size)
    for number, row in enumerate(where, start=1):
        arr[row] = _with_suffix(str(arr[row]), str(number), kind, max_len)
    out = pa.array(arr, type=pa.string())
    dup = _duplicates(out)
    if dup.any():  # a suffixed value met an existing one; the row index is unique
        for row in np.flatnonzero(dup):
            arr[row] = _with_suffix(str(arr[row]), f"x{row}", kind, max_len)
        out = pa.array(arr, type=pa.string())
    return out


def _with_suffix(value: str, suffix: str, kind: Kind, max_len: int | None) -> str:
    if kind is Kind.EMAIL and "@" in value:
        local, domain = value.split("@", 1)
        room = len(local) if max_len is None else max(max_len - len(domain) - 1 - len(suffix), 1)
        return f"{local[:room]}{suffix}@{domain}"
    room = len(value) if max_len is None else max(max_len - len(suffix), 0)
    return value[:room] + suffix


def _shorten_emails(values: pa.Array, max_len: int) -> pa.Array:
    """Emails longer than ``max_len`` lose characters from their local part, never from their domain."""
    long = np.asarray(pc.greater(pc.utf8_length(values), max_len).to_numpy(zero_copy_only=False), dtype=bool)
    if not long.any():
        return values
    arr = values.to_numpy(zero_copy_only=False).copy()
    for row in np.flatnonzero(long):  # only the over-long rows
        local, _, domain = str(arr[row]).partition("@")
        room = max(max_len - len(domain) - 1, 1)
        arr[row] = f"{local[:room]}@{domain}"[:max_len]
    return pa.array(arr, type=pa.string())


def fake_text(n: int, *, seed: int, locale: str = "en_US", like: pa.Array | None = None) -> pa.Array:
    """``n`` values of free text made of dictionary words, never copied from the real data.

    Free text is where real data hides names, addresses and stories, so it is not learned: the output keeps the
    real values' word counts (drawn from ``like``) and maximum length, with words from Faker's word list.

    Args:
        n: values to make.
        seed: the random seed.
        locale: a Faker locale; its word list is used when it has one.
        like: a sample of real values, used for word counts and maximum length only.
    """
    fake = Faker(locale)
    fake.seed_instance(seed)
    pool = pa.array(fake.words(nb=2000, unique=False), type=pa.string())
    rng = np.random.Generator(np.random.PCG64([seed, 7_471]))
    max_len: int | None = None
    counts = np.array([1, 2, 3], dtype=np.int64)
    if like is not None:
        sample = (like.combine_chunks() if isinstance(like, pa.ChunkedArray) else like).cast(pa.string()).drop_null()
        if len(sample):
            words = pc.list_value_length(pc.utf8_split_whitespace(sample)).to_numpy(zero_copy_only=False)
            counts = np.maximum(np.asarray(words, dtype=np.int64), 1)
            max_len = int(pc.max(pc.utf8_length(sample)).as_py())
    k = rng.choice(counts, size=n)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    picks = pool.take(pa.array(rng.integers(0, len(pool), size=int(offsets[-1]))))
    text = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), picks), " ")
    first = pc.utf8_upper(pc.utf8_slice_codeunits(text, 0, 1))
    text = pc.binary_join_element_wise(first, pc.utf8_slice_codeunits(text, 1), "")
    if max_len is not None:
        text = pc.utf8_slice_codeunits(text, 0, max_len)
    return text
