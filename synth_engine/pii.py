"""Realistic fakes for PII columns, generated fast and reproducibly, never learned from real values.

Faker is slow per call, so it is called only to build small pools (first names, street names, domains, number
templates...) once per ``(locale, seed)``; columns are then composed from the pools with vectorised Arrow and numpy
operations: names are first + last, numbers fill ``#`` templates with random digits (with valid Luhn and IBAN check
digits). Real values are used only through a :class:`PiiFormat`, a summary learned once (at training) and stored
instead of them: the maximum length, the letter case, (phone numbers, postcodes, national ids) digit layouts in
which every digit is a ``#`` and every letter a ``?`` (a letter stays only when many values share it at that
place, like the ``x`` of a phone extension), and (free text) how many words values have. No value, and no part of
one that varies from value to value, is in the summary, so a model store that holds it can be shared.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

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
_LEARN_SAMPLE = 2000
# A letter stays literal in a digit layout only when at least this many sampled values of that layout have it at
# that place (a constant such as a phone extension's 'x'); otherwise it is a '?', so a layout seen in few values
# cannot spell out one of them.
_MIN_LITERAL_SUPPORT = 20
_TEMPLATED = frozenset({Kind.PHONE, Kind.POSTCODE, Kind.NATIONAL_ID})

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

    def __init__(self, locale: str, seed: int, templates: tuple[str, ...] = ()) -> None:
        self.locale = locale
        self.seed = seed
        self.like_templates = pa.array(templates, type=pa.string()) if templates else None

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


@dataclass(frozen=True)
class PiiFormat:
    """The format of a PII or free-text column, learned from real values and kept instead of them.

    Attributes:
        max_length: the longest value's length (None: no limit).
        case: ``"upper"`` or ``"lower"`` when every value with letters is in that case.
        templates: digit layouts (phone numbers, postcodes, national ids): ``#`` a digit, ``?`` a letter, other
            characters (punctuation, spaces, letters shared by many values) as they are; sorted.
        word_counts: free text: the numbers of words values have, with ``word_weights`` how many values have each.
        word_weights: see ``word_counts``.
    """

    max_length: int | None = None
    case: Literal["upper", "lower"] | None = None
    templates: tuple[str, ...] = ()
    word_counts: tuple[int, ...] = ()
    word_weights: tuple[int, ...] = ()

    @classmethod
    def learn(cls, values: pa.Array | pa.ChunkedArray, kind: Kind | str) -> PiiFormat:
        """Summarise the format of a column of ``kind`` from real values (up to 2,000 of them are read).

        Raises:
            ModelError: when ``kind`` is neither a PII kind nor free text.
        """
        kind = Kind(kind)
        sample = _format_sample(values, kind)
        if len(sample) == 0:
            return cls()
        max_len = int(pc.max(pc.utf8_length(sample)).as_py())
        if kind is Kind.TEXT:
            words = pc.list_value_length(pc.utf8_split_whitespace(sample)).to_numpy(zero_copy_only=False)
            tally = sorted(Counter(max(int(w), 1) for w in words).items())
            return cls(
                max_length=max_len,
                word_counts=tuple(c for c, _ in tally),
                word_weights=tuple(w for _, w in tally),
            )
        templates: tuple[str, ...] = ()
        if kind in _TEMPLATED:
            templates = _layouts(sample, keep_letters=kind is not Kind.POSTCODE)
        return cls(max_length=max_len, case=_case_of(sample), templates=templates)


def _format_sample(values: pa.Array | pa.ChunkedArray, kind: Kind) -> pa.Array:
    """The non-NULL values a format is learned from, as text (at most :data:`_LEARN_SAMPLE`).

    Raises:
        ModelError: when ``kind`` is neither a PII kind nor free text.
    """
    if kind not in _MAKERS and kind is not Kind.TEXT:
        raise ModelError(f"a PII format is learned for PII kinds and free text only; got {kind.value}")
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return arr.cast(pa.string()).drop_null().slice(0, _LEARN_SAMPLE)


def learn_private_format(
    values: pa.Array | pa.ChunkedArray,
    kind: Kind | str,
    *,
    std: float,
    delta: float,
    rng: np.random.Generator,
    max_length: int | None,
) -> PiiFormat:
    """A PII or free-text column's format under differential privacy: thresholded vocabularies only.

    - letter case: the vocabulary of each value's case (``upper``, ``lower``, ``mixed``); a case is kept when it is
      the only one released;
    - templated kinds (phone numbers, postcodes, ids): the vocabulary of layouts, every digit ``#`` and every other
      letter or symbol ``?`` (no literal letter: it could be someone's initial), punctuation as it is;
    - free text: the vocabulary of word counts, with their noisy counts as weights.

    ``max_length`` is the column's declared length (public, from the schema), not a real value's. Each value is
    counted once per vocabulary (sensitivity 1); :func:`private_releases` says how many a kind makes.

    Raises:
        ModelError: when ``kind`` is neither a PII kind nor free text.
    """
    from synth_engine.privacy import mechanisms as dpm

    kind = Kind(kind)
    sample = _format_sample(values, kind)
    if kind is Kind.TEXT:
        words = pc.list_value_length(pc.utf8_split_whitespace(sample))
        words = pc.max_element_wise(words, pa.scalar(1, words.type)).cast(pa.string())
        cats, noisy = dpm.vocabulary(words, std, delta, rng)
        order = np.argsort([int(c) for c in cats.to_pylist()]) if len(cats) else np.array([], dtype=np.int64)
        return PiiFormat(
            max_length=max_length,
            word_counts=tuple(int(cats[int(i)].as_py()) for i in order),
            word_weights=tuple(max(1, int(round(noisy[int(i)]))) for i in order),
        )
    has_letters = pc.match_substring_regex(sample, r"\p{L}")
    case = pc.if_else(
        pc.utf8_is_upper(sample), "upper", pc.if_else(pc.utf8_is_lower(sample), "lower", "mixed")
    )
    cats, _ = dpm.vocabulary(case.filter(has_letters), std, delta, rng)
    released = set(cats.to_pylist())
    chosen: Literal["upper", "lower"] | None = None
    if released == {"upper"}:
        chosen = "upper"
    elif released == {"lower"}:
        chosen = "lower"
    templates: tuple[str, ...] = ()
    if kind in _TEMPLATED:
        layout = pc.replace_substring_regex(sample, r"\pN", "#")
        layout = pc.replace_substring_regex(layout, r"[^#[:punct:] ]", "?")
        cats, _ = dpm.vocabulary(layout, std, delta, rng)
        templates = tuple(sorted(str(c) for c in cats.to_pylist()))
    return PiiFormat(max_length=max_length, case=chosen, templates=templates)


def private_releases(kind: Kind | str) -> int:
    """The vocabularies :func:`learn_private_format` releases for a column of ``kind``."""
    kind = Kind(kind)
    if kind is Kind.TEXT:
        return 1
    return 2 if kind in _TEMPLATED else 1


def _layouts(sample: pa.Array, *, keep_letters: bool) -> tuple[str, ...]:
    """The distinct digit layouts of ``sample``, every digit a ``#`` and every letter a ``?``.

    With ``keep_letters``, a layout whose letters are the same in at least :data:`_MIN_LITERAL_SUPPORT` values
    keeps them (a constant such as the ``x`` of ``'555-0100 x12'`` or a country's ``'GB'``); the letters of a layout
    seen in fewer values could be someone's initials, so ``'AB123456C'`` seen once gives ``'??######?'``. Any other
    character that is not ASCII punctuation or a space (a letter of another script, a symbol) is a ``?`` too, so a
    layout never spells a value out.
    """
    digits = pc.replace_substring_regex(sample, r"\pN", "#")
    seen = Counter(digits.to_pylist())
    out: set[str] = set()
    for raw, count in seen.items():
        if keep_letters and count >= _MIN_LITERAL_SUPPORT:
            out.add("".join(c if c == "#" or _is_separator(c) or (c.isascii() and c.isalpha()) else "?" for c in raw))
        else:
            out.add("".join(c if c == "#" or _is_separator(c) else "?" for c in raw))
    return tuple(sorted(out))


def _is_separator(c: str) -> bool:
    return c == " " or (c.isascii() and not c.isalnum() and c not in "#?")


def fake_column(
    kind: Kind,
    n: int,
    *,
    seed: int,
    locale: str = "en_US",
    fmt: PiiFormat | None = None,
    like: pa.Array | None = None,
    unique: bool = False,
) -> pa.Array:
    """``n`` realistic fake values of a PII kind, as an Arrow string array.

    Args:
        kind: a PII kind (email, person_name, first_name, last_name, phone, address, city, postcode, national_id,
            ip, url, credit_card, iban, username).
        n: values to make.
        seed: the random seed; the same seed, locale and format give the same values.
        locale: a Faker locale such as ``en_US`` or ``de_DE``.
        fmt: the column's format (:meth:`PiiFormat.learn`): max length, letter case, digit layouts of phone
            numbers / postcodes / national ids.
        like: real values to learn ``fmt`` from here and now (kept for callers that have them at hand; the values
            themselves are neither copied nor kept). Give ``fmt`` or ``like``, not both.
        unique: guarantee distinct values (for unique columns such as an email): duplicates are redrawn, and any
            left get a numeric suffix (in an email, before the ``@``).

    Raises:
        ModelError: when ``kind`` is not a PII kind, the locale is unknown, or both ``fmt`` and ``like`` are given.
    """
    kind = Kind(kind)
    if kind not in _MAKERS:
        raise ModelError(f"fake_column makes PII kinds only ({', '.join(k.value for k in _MAKERS)}); got {kind.value}")
    try:
        Faker(locale)
    except AttributeError:
        raise ModelError(f"unknown Faker locale {locale!r}; use one such as 'en_US' or 'de_DE'") from None
    fmt = _resolve_format(fmt, like, kind)
    fakes = _Fakes(locale, seed, fmt.templates if kind in _TEMPLATED else ())
    maker = _MAKERS[kind](fakes)
    max_len, case = fmt.max_length, fmt.case
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


def _resolve_format(fmt: PiiFormat | None, like: pa.Array | None, kind: Kind) -> PiiFormat:
    if fmt is not None and like is not None:
        raise ModelError("give a PII column's format (fmt) or real values to learn it from (like), not both")
    if like is not None:
        return PiiFormat.learn(like, kind)
    return fmt if fmt is not None else PiiFormat()


_HEX_OCTETS = pa.array([f"{v:02x}" for v in range(256)])

_STRUCTURED = frozenset({Kind.IP, Kind.MAC_ADDRESS, Kind.CREDIT_CARD, Kind.IBAN})


def _case_of(sample: pa.Array) -> Literal["upper", "lower"] | None:
    has_letters = pc.match_substring_regex(sample, "[A-Za-z]")
    if not pc.any(has_letters).as_py():
        return None
    lettered = sample.filter(has_letters)
    if pc.all(pc.equal(lettered, pc.utf8_upper(lettered))).as_py():
        return "upper"
    if pc.all(pc.equal(lettered, pc.utf8_lower(lettered))).as_py():
        return "lower"
    return None


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


def fake_text(
    n: int, *, seed: int, locale: str = "en_US", fmt: PiiFormat | None = None, like: pa.Array | None = None
) -> pa.Array:
    """``n`` values of free text made of dictionary words, never copied from the real data.

    Free text is where real data hides names, addresses and stories, so it is not learned: the output keeps the
    real values' word counts and maximum length (from ``fmt``), with words from Faker's word list.

    Args:
        n: values to make.
        seed: the random seed.
        locale: a Faker locale; its word list is used when it has one.
        fmt: the column's format (:meth:`PiiFormat.learn` with kind ``text``): word counts and maximum length.
        like: real values to learn ``fmt`` from here and now (neither copied nor kept). Give ``fmt`` or ``like``.

    Raises:
        ModelError: when both ``fmt`` and ``like`` are given.
    """
    fmt = _resolve_format(fmt, like, Kind.TEXT)
    fake = Faker(locale)
    fake.seed_instance(seed)
    pool = pa.array(fake.words(nb=2000, unique=False), type=pa.string())
    rng = np.random.Generator(np.random.PCG64([seed, 7_471]))
    max_len = fmt.max_length
    if fmt.word_counts:
        weights = np.asarray(fmt.word_weights, dtype=np.float64)
        k = rng.choice(np.asarray(fmt.word_counts, dtype=np.int64), size=n, p=weights / weights.sum())
    else:
        k = rng.choice(np.array([1, 2, 3], dtype=np.int64), size=n)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    picks = pool.take(pa.array(rng.integers(0, len(pool), size=int(offsets[-1]))))
    text = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), picks), " ")
    first = pc.utf8_upper(pc.utf8_slice_codeunits(text, 0, 1))
    text = pc.binary_join_element_wise(first, pc.utf8_slice_codeunits(text, 1), "")
    if max_len is not None:
        text = pc.utf8_slice_codeunits(text, 0, max_len)
    return text
