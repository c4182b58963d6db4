"""SDMetrics' multi-table QualityReport on the test zoo's databases, against a real-vs-real ceiling.

For each zoo database (tests/zoo: Chinook, Northwind, Lahman, Employees, AdventureWorks shapes): the real
database (seed 0) is synthesized by ``synthdb run`` into SQLite, and a second real database drawn the same way
(seed 1) is scored as if it were synthetic: the ceiling. Both are scored by SDMetrics' reference implementation
(``sdmetrics.reports.multi_table.QualityReport``), not by synthdb's own formulas.

SDMetrics' metadata knows single-column keys only, so composite primary keys are left unnamed and composite
foreign keys and self-references are left out of the relationships (they still count in synthdb's own report); PII and free-text
columns, which synthdb fakes, are left out of the comparison.

    python -m benchmarks.zoo_quality [--work-dir DIR] [--only chinook,northwind]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from zoo import ZOO, ZooDatabase

_SDTYPES = {
    "numeric": "numerical",
    "categorical": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "date": "datetime",
}


def _frames(url: str, tables: list[str]) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: pd.read_sql_table(t, conn) for t in tables}
    finally:
        engine.dispose()


def _metadata(schema: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """SDMetrics metadata from synthdb's inferred schema, and the columns kept per table."""
    tables: dict[str, Any] = {}
    keep: dict[str, list[str]] = {}
    for t in schema.active_tables:
        pk = list(t.primary_key.columns) if t.primary_key else []
        fk_cols = {c for fk in t.foreign_keys for c in fk.columns}
        columns: dict[str, Any] = {}
        for c in t.active_columns:
            if c.name in pk or c.name in fk_cols:
                columns[c.name] = {"sdtype": "id"}
            elif str(c.kind) in _SDTYPES:
                columns[c.name] = {"sdtype": _SDTYPES[str(c.kind)]}
        tables[t.name] = {"columns": columns, **({"primary_key": pk[0]} if len(pk) == 1 else {})}
        keep[t.name] = list(columns)
    relationships = [
        {
            "parent_table_name": fk.ref_table,
            "parent_primary_key": fk.ref_columns[0],
            "child_table_name": t.name,
            "child_foreign_key": fk.columns[0],
        }
        for t in schema.active_tables
        for fk in t.foreign_keys
        if len(fk.columns) == 1
        and fk.ref_table != t.name  # SDMetrics' inter-table trends fail on a self-reference
        and tables[fk.ref_table].get("primary_key") == fk.ref_columns[0]
    ]
    return {"tables": tables, "relationships": relationships}, keep


def _score(real: dict[str, pd.DataFrame], other: dict[str, pd.DataFrame], metadata: dict[str, Any]) -> dict[str, float]:
    from sdmetrics.reports.multi_table import QualityReport

    report = QualityReport()
    report.generate(real, other, metadata, verbose=False)
    props = report.get_properties()
    out = {"overall": float(report.get_score())}
    out.update({str(r["Property"]): float(r["Score"]) for _, r in props.iterrows()})
    return out


def run_one(db: ZooDatabase, work: Path) -> dict[str, dict[str, float]]:
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from pipelines.run import run_pipeline
    from schemas.config import load_config

    work.mkdir(parents=True, exist_ok=True)
    real_url, twin_url = f"sqlite:///{work}/{db.name}.sqlite", f"sqlite:///{work}/{db.name}-twin.sqlite"
    synth_url = f"sqlite:///{work}/{db.name}-synth.sqlite"
    db.create(real_url, seed=0)
    db.create(twin_url, seed=1)
    config = load_config(
        None,
        overrides={"source.url": real_url, "target.url": synth_url, "runs_dir": str(work / "runs"), "generation.seed": 5},
        environ={},
    )
    started = time.perf_counter()
    run_pipeline(config)
    seconds = time.perf_counter() - started
    source = open_source(real_url)
    try:
        schema = inspect_source(source).schema
    finally:
        source.close()
    metadata, keep = _metadata(schema)
    names = list(keep)

    def load(url: str) -> dict[str, pd.DataFrame]:
        return {t: f[keep[t]] for t, f in _frames(url, names).items()}

    real = load(real_url)
    return {
        "synthdb": {**_score(real, load(synth_url), metadata), "run_s": seconds},
        "real-vs-real": _score(real, load(twin_url), metadata),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--only", default="", help="comma-separated zoo database names (default: all)")
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="synthdb-zoo-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(ZOO)
    rows = []
    for name in names:
        scores = run_one(ZOO[name], work / name)
        for side, s in scores.items():
            rows.append({"database": name, "side": side, **s})
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
