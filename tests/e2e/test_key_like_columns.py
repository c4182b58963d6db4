"""No real value through a key-like column, on PostgreSQL: licence plates and device addresses are never copied.

A unique short-text column that no constraint declares (licence plates) used to be learned as categories, so every
synthetic plate was a real one while the whole-row copy score said 0.000. It must be generated in its format, and
the report's per-column copy score must see it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = [pytest.mark.usefixtures("ray_session"), pytest.mark.server]

N = 400


def _plate(i: int) -> str:
    return f"{chr(65 + i % 26)}{chr(65 + (i * 7) // 26 % 26)}-{1000 + (i * 37) % 9000}"


def _mac(i: int) -> str:
    return f"08:00:2b:{i // 256:02x}:{i % 256:02x}:01"  # one vendor's devices


def test_plates_and_mac_addresses_are_generated_in_format_never_copied(
    pg_url: str, second_db: Callable[[str], str], tmp_path: Path
) -> None:
    plates = [_plate(i) for i in range(N)]
    assert len(set(plates)) == N
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE owner (id integer PRIMARY KEY, age integer NOT NULL)"))
        conn.execute(
            sa.text(
                "CREATE TABLE car (id integer PRIMARY KEY, owner_id integer NOT NULL REFERENCES owner(id), "
                "plate varchar(8) NOT NULL, device macaddr NOT NULL, km integer NOT NULL)"
            )
        )
        conn.execute(sa.text("INSERT INTO owner SELECT g, 18 + g % 60 FROM generate_series(1, 200) g"))
        conn.execute(
            sa.text(
                "INSERT INTO car VALUES (:id, :owner, :plate, CAST(:mac AS macaddr), :km)"
            ),
            [
                {"id": i + 1, "owner": i % 200 + 1, "plate": p, "km": 1000 * (i % 90), "mac": _mac(i)}
                for i, p in enumerate(plates)
            ],
        )
        real_macs = {r[0] for r in conn.execute(sa.text("SELECT device::text FROM car"))}
    engine.dispose()

    target = second_db("postgresql")
    config = load_config(
        None,
        overrides={"source.url": pg_url, "target.url": target, "runs_dir": str(tmp_path), "generation.seed": 3},
        environ={},
    )
    result = run_pipeline(config)
    assert result.validation_success is True

    out = sa.create_engine(target)
    with out.connect() as conn:
        synth = [tuple(r) for r in conn.execute(sa.text("SELECT plate, device::text FROM car"))]
    out.dispose()
    synth_plates = [p for p, _ in synth]
    assert len(synth_plates) == N and len(set(synth_plates)) == N  # generated unique
    assert all(re.fullmatch(r"[A-Z]{2}-[0-9]{4}", p) for p in synth_plates)  # in the source's format
    copied = set(synth_plates) & set(plates)
    assert len(copied) <= 0.05 * N, f"{len(copied)} of {N} synthetic plates are real ones"
    assert not {m for _, m in synth} & real_macs  # MAC addresses are faked, never copied

    report = json.loads((result.run_dir / "report" / "report.json").read_text())
    headline = report["headline"]["column_copies"]
    assert headline["score"] is not None and headline["score"] <= 0.05 and headline["status"] == "pass", headline
