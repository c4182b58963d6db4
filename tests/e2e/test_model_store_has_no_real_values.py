"""No real value in the model store: every byte of every file under ``runs/<id>/models/`` is free of the source's
PII and text key values, with differential privacy off and on, while the fakes and keys keep their formats.

What counts as a value to look for (text, at least 6 characters, so that 'ab' or a column name cannot match by
chance): every value of a PII column (names, emails, phone numbers, national ids), of a free-text column (whole
values, and their longer words), of a text primary key and of the foreign keys that point at it, and of a text key
member that is key-like (mostly distinct values: a label, a code). Not counted: categories (a text column, or a
text key member, with few values each shared by many rows, such as a reading's channel): the table model learns
those as categories, which is what it is for; numbers, dates and times (a step grid, or distinct tuples of
non-text key members, are points of a scale the model learns anyway).
"""

from __future__ import annotations

import pickle
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.run import run_pipeline
from pipelines.stages.train import load_artifacts
from schemas.config import load_config
from schemas.policy import Role

pytestmark = pytest.mark.usefixtures("ray_session")

SENSORS = 150
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
FIRST = ["Quillon", "Marisol", "Thaddeus", "Ingeborg", "Cassius", "Philippa", "Ezekiel", "Rosalind", "Leopold"]
LAST = ["Abernathy", "Vanterpool", "Okonkwo", "Szczepanski", "Featherstone", "Lindqvist", "Castellanos"]
WORDS = ["visited", "premises", "complained", "boiler", "pressure", "neighbour", "invoice", "overdue", "daughter"]
CHANNELS = ["temperature", "humidity", "pressure"]


def _build(url: str) -> dict[str, list[str]]:
    """The source database; returns the values that must not reach the model store, by what they are."""
    rng = np.random.default_rng(17)
    codes = sorted({f"N{rng.integers(0, 1000):03d}{''.join(rng.choice(list(LETTERS), 2))}" for _ in range(400)})
    codes = codes[:SENSORS]
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}-{i}" for i in range(SENSORS)]
    emails = [f"{n.split()[0].lower()}.{i}.{rng.integers(1000, 9999)}@mailbox{i % 7}.example" for i, n in enumerate(names)]
    phones = [f"({rng.integers(200, 999)}) {rng.integers(200, 999)}-{rng.integers(0, 10_000):04d}" for _ in codes]
    ids = [f"{''.join(rng.choice(list(LETTERS), 2))}{rng.integers(0, 10**6):06d}{rng.choice(list(LETTERS))}" for _ in codes]
    notes = [" ".join(rng.choice(WORDS, rng.integers(4, 9))) + f" ref {names[i]}" for i in range(SENSORS)]
    labels = [f"LBL-{''.join(rng.choice(list(LETTERS + '23456789'), 6))}" for _ in range(3 * SENSORS)]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE sensor (code VARCHAR(6) PRIMARY KEY, owner_name VARCHAR(60) NOT NULL, "
                "email VARCHAR(80) NOT NULL UNIQUE, phone VARCHAR(20), national_id VARCHAR(9) NOT NULL, "
                "notes TEXT, region VARCHAR(10) NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE reading (sensor_code VARCHAR(6) NOT NULL REFERENCES sensor(code), "
                "taken_at DATETIME NOT NULL, channel VARCHAR(12) NOT NULL, value REAL NOT NULL, "
                "PRIMARY KEY (sensor_code, taken_at, channel))"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE tag (sensor_code VARCHAR(6) NOT NULL REFERENCES sensor(code), label VARCHAR(10) NOT NULL, "
                "weight INTEGER NOT NULL, PRIMARY KEY (sensor_code, label))"
            )
        )
        conn.execute(
            sa.text("INSERT INTO sensor VALUES (:c, :n, :e, :p, :i, :t, :r)"),
            [
                {"c": c, "n": n, "e": e, "p": p if k % 10 else None, "i": i, "t": t, "r": ["north", "south"][k % 2]}
                for k, (c, n, e, p, i, t) in enumerate(zip(codes, names, emails, phones, ids, notes, strict=True))
            ],
        )
        start = datetime(2024, 3, 1)
        readings = []
        for k, c in enumerate(codes):
            for h in range(4 + k % 6):
                for ch in CHANNELS[: 1 + (h + k) % 3]:
                    value = 20.0 + (k % 5) + rng.normal()
                    readings.append({"c": c, "t": start + timedelta(hours=h + k % 24), "ch": ch, "v": value})
        conn.execute(sa.text("INSERT INTO reading VALUES (:c, :t, :ch, :v)"), readings)
        conn.execute(
            sa.text("INSERT INTO tag VALUES (:c, :l, :w)"),
            [{"c": codes[j % SENSORS], "l": lab, "w": int(rng.integers(1, 9))} for j, lab in enumerate(labels)],
        )
    engine.dispose()
    text_words = sorted({w for t in notes for w in t.split()})
    return {
        "pii": names + emails + phones + ids + notes + [w for w in text_words if w not in WORDS],
        "text key": codes,
        "key-like member": labels,
        "_emails": emails,
        "_phones": phones,
        "_ids": ids,
        "_notes": notes,
    }


def _found(store: Path, needles: list[str]) -> dict[str, list[str]]:
    """Each file under ``store`` that holds any of ``needles`` (as UTF-8 bytes), with what it holds."""
    wanted = sorted({n.encode() for n in needles if len(n) >= 6})
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = [n.decode() for n in wanted if n in data]
        if found:
            hits[str(path.relative_to(store))] = found
    return hits


@pytest.mark.parametrize("epsilon", [None, 1.0], ids=["dp-off", "dp-epsilon-1"])
def test_no_pii_or_key_value_in_any_model_store_file(tmp_path: Path, epsilon: float | None) -> None:
    src, dst = f"sqlite:///{tmp_path}/src.sqlite", f"sqlite:///{tmp_path}/out.sqlite"
    real = _build(src)
    overrides: dict[str, object] = {
        "source.url": src, "target.url": dst, "runs_dir": str(tmp_path / "runs"), "generation.seed": 3,
    }
    if epsilon is not None:
        overrides["privacy.epsilon"] = epsilon
    result = run_pipeline(load_config(None, overrides=overrides, environ={}))
    assert result.validation_success is True
    store = result.run_dir / "models"
    files = [p for p in store.rglob("*") if p.is_file()]
    assert {p.parent.name for p in files} >= {"sensor", "reading", "tag"}, files

    assert _found(store, real["pii"]) == {}
    assert _found(store, real["text key"]) == {}

    # the fakes and the generated keys keep the source's formats, and no PII value is copied
    engine = sa.create_engine(dst)
    with engine.connect() as conn:
        sensors = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM sensor"))]
        readings = conn.execute(sa.text("SELECT count(*) FROM reading")).scalar_one()
    engine.dispose()
    assert 0.9 * SENSORS <= len(sensors) <= 1.1 * SENSORS and readings > 0
    assert len({s["code"] for s in sensors}) == len(sensors) and all(len(s["code"]) <= 6 for s in sensors)
    if epsilon is None:
        # under DP a format is released only where enough values share it to clear the threshold: 150 sensors at
        # epsilon 1 are too few, so their keys are plain numbers and their fakes the kinds' defaults
        assert all(re.fullmatch(r"N[0-9]{3}[A-Z]{2}", s["code"]) for s in sensors)
        phones = [s["phone"] for s in sensors if s["phone"] is not None]
        assert phones and all(re.fullmatch(r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}", p) for p in phones)
        assert all(re.fullmatch(r"[A-Z]{2}[0-9]{6}[A-Z]", s["national_id"]) for s in sensors)
        longest = max(len(t) for t in real["_notes"])
        assert all(s["notes"] is None or 0 < len(s["notes"]) <= longest for s in sensors)
    assert all(re.fullmatch(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+", s["email"]) and len(s["email"]) <= 80 for s in sensors)
    assert all(len(s["owner_name"].split()) >= 2 for s in sensors)
    for column, values in (("email", "_emails"), ("phone", "_phones"), ("national_id", "_ids"), ("notes", "_notes")):
        assert not {s[column] for s in sensors} & set(real[values]), column

    # what this store keeps for keys and PII (grids, key formats, PII formats) holds no key-like member either
    for table in ("sensor", "reading", "tag"):
        art = load_artifacts(result.run_dir, table)
        kept = pickle.dumps([art.member_grids, art.key_formats, art.pii_formats])
        values = real["key-like member"] + real["text key"] + real["pii"]
        assert not [v for v in values if len(v) >= 6 and v.encode() in kept], table
    # (sensor_code, label): a code-like label is generated in its format (schemas.policy), never learned
    tag = load_artifacts(result.run_dir, "tag")
    assert tag.roles.roles["label"] is Role.KEY and "label" in tag.key_formats
    leaked = _found(store, real["key-like member"])
    assert not leaked, f"key-like text key member tag.label found in {sorted(leaked)}"
