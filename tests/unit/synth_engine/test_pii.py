"""PII fakes: formats, validity (Luhn, IBAN), uniqueness, reproducibility, speed, and that real values are never copied."""

from __future__ import annotations

import ipaddress
import re
import time

import numpy as np
import pyarrow as pa
import pytest

from schemas.errors import ModelError
from schemas.kinds import PII_KINDS, Kind
from synth_engine import fake_column


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


FORMATS = {
    Kind.EMAIL: r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+",
    Kind.PERSON_NAME: r"\S+( \S+)+",
    Kind.FIRST_NAME: r"\S+",
    Kind.LAST_NAME: r"\S+( \S+)*",
    Kind.PHONE: r"[0-9()+\-. x]+",
    Kind.ADDRESS: r"[0-9]+ \S.*",
    Kind.CITY: r".+",
    Kind.POSTCODE: r"[0-9]{5}(-[0-9]{4})?",
    Kind.NATIONAL_ID: r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
    Kind.URL: r"https://www\.[a-z0-9-]+\.[a-z]+/\S*",
    Kind.CREDIT_CARD: r"[0-9]{12,19}",
    Kind.IBAN: r"[A-Z]{2}[0-9]{2}[A-Z0-9]+",
    Kind.USERNAME: r"[a-z0-9._]+",
    Kind.MAC_ADDRESS: r"[0-9a-f][26ae](:[0-9a-f]{2}){5}",  # locally administered unicast: no vendor's real device
}


@pytest.mark.parametrize("kind", sorted(PII_KINDS, key=lambda k: k.value))
def test_each_kind_has_its_format_and_is_reproducible(kind: Kind) -> None:
    values = fake_column(kind, 2000, seed=5)
    assert values.type == pa.string() and len(values) == 2000 and values.null_count == 0
    texts = values.to_pylist()
    if kind is Kind.IP:
        assert all(ipaddress.ip_address(v).version == 4 for v in texts)
    else:
        pattern = re.compile(FORMATS[kind])
        bad = [v for v in texts if not pattern.fullmatch(v)]
        assert not bad, bad[:5]
    if kind is Kind.CREDIT_CARD:
        assert all(_luhn_ok(v) for v in texts)
    if kind is Kind.IBAN:
        assert all(_iban_ok(v) for v in texts)
    assert len(set(texts)) > 50  # varied, not one value repeated
    assert fake_column(kind, 2000, seed=5).equals(values)
    assert not fake_column(kind, 2000, seed=6).equals(values)


def test_unique_emails_at_scale_are_fast() -> None:
    began = time.perf_counter()
    emails = fake_column(Kind.EMAIL, 100_000, seed=1, unique=True)
    elapsed = time.perf_counter() - began
    assert len(set(emails.to_pylist())) == 100_000
    assert elapsed < 20, elapsed  # seconds, not minutes (typically ~1 s once Faker is warm)


def test_unique_from_a_small_pool_uses_suffixes() -> None:
    names = fake_column(Kind.FIRST_NAME, 5000, seed=1, unique=True).to_pylist()
    assert len(set(names)) == 5000


def test_like_gives_the_format_but_values_are_never_copied() -> None:
    real_phones = pa.array(["+1 555 123 4567", "+1 555 987 6543", None])
    phones = fake_column(Kind.PHONE, 3000, seed=2, like=real_phones).to_pylist()
    assert all(re.fullmatch(r"\+[0-9] [0-9]{3} [0-9]{3} [0-9]{4}", p) for p in phones)
    assert not set(phones) & {"+1 555 123 4567", "+1 555 987 6543"}
    real_emails = pa.array(["JANE.DOE@EXAMPLE.COM", "BOB@EXAMPLE.ORG", "LONGER.NAME@EXAMPLE.NET"])
    emails = fake_column(Kind.EMAIL, 3000, seed=2, like=real_emails, unique=True).to_pylist()
    assert all(len(e) <= 23 and e == e.upper() and "@" in e for e in emails)
    assert len(set(emails)) == 3000
    assert not set(emails) & set(real_emails.to_pylist())


def test_locale_and_errors() -> None:
    german = fake_column(Kind.IBAN, 200, seed=0, locale="de_DE").to_pylist()
    assert all(v.startswith("DE") and _iban_ok(v) for v in german)
    with pytest.raises(ModelError, match="PII kinds only"):
        fake_column(Kind.NUMERIC, 3, seed=0)
    with pytest.raises(ModelError, match="locale"):
        fake_column(Kind.EMAIL, 3, seed=0, locale="xx_NOPE")
    assert np.all(np.array(fake_column(Kind.CITY, 10, seed=0, locale="fr_FR").to_pylist()) != "")


def test_the_stored_format_holds_no_real_value_and_fakes_keep_it() -> None:
    import pickle

    from synth_engine.pii import PiiFormat, fake_text

    ids = pa.array([f"AB{i:06d}C" for i in range(3)] + [f"ZX{i:06d}Q" for i in range(30)])
    fmt = PiiFormat.learn(ids, Kind.NATIONAL_ID)
    # 'AB..C' seen 3 times: its letters could be a person's, so they become '?'; 'ZX..Q' is shared by 30 values
    assert fmt.templates == ("??######?", "ZX######Q") and fmt.case == "upper" and fmt.max_length == 9
    fakes = fake_column(Kind.NATIONAL_ID, 2000, seed=3, fmt=fmt).to_pylist()
    assert all(re.fullmatch(r"[A-Z]{2}[0-9]{6}[A-Z]", v) for v in fakes)
    assert any(v.startswith("ZX") for v in fakes) and not set(fakes) & set(ids.to_pylist())
    phones = pa.array(["(212) 555-0147", "(718) 555-0199", "+44 20 7946 0958"])
    texts = pa.array(["Called Mrs Jane Doe about her late payment", "ok", None])
    stored = pickle.dumps(
        [PiiFormat.learn(ids, "national_id"), PiiFormat.learn(phones, "phone"), PiiFormat.learn(texts, "text")]
    )
    for value in [*ids.to_pylist(), *phones.to_pylist(), "Jane", "Doe", "payment", "0147", "7946"]:
        assert value.encode() not in stored, value
    text_fmt = PiiFormat.learn(texts, "text")
    assert text_fmt.word_counts == (1, 8) and text_fmt.max_length == 42
    made = fake_text(500, seed=1, fmt=text_fmt).to_pylist()
    assert all(len(t) <= 42 and len(t.split()) <= 8 for t in made)  # 8 words, cut at the real max length
    assert sum(len(t.split()) == 1 for t in made) > 150
    with pytest.raises(ModelError, match="not both"):
        fake_column(Kind.PHONE, 3, seed=0, fmt=fmt, like=phones)


def test_pii_formats_under_dp_come_from_thresholded_vocabularies() -> None:
    import numpy as np

    from synth_engine.pii import learn_private_format

    rng = np.random.default_rng(0)
    phones = pa.array([f"({i % 900 + 100}) 555-{i:04d}" for i in range(3000)])
    fmt = learn_private_format(phones, "phone", std=20.0, delta=1e-7, rng=rng, max_length=20)
    assert fmt.templates == ("(###) ###-####",) and fmt.max_length == 20
    names = pa.array(["ANNA SMITH", "JOHN DOE"] * 1500)
    assert learn_private_format(names, "first_name", std=20.0, delta=1e-7, rng=rng, max_length=None).case == "upper"
    few = learn_private_format(phones.slice(0, 40), "phone", std=20.0, delta=1e-7, rng=rng, max_length=None)
    assert few.templates == () and few.max_length is None  # too few values share a layout to release it
