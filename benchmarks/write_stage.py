"""Benchmark: the write stage (Spark bulk writer) against a plain ADBC copy of the same Parquet, same staging.

For each scale and target, both phases load the extracted demo tables (``benchmarks.pipeline``'s sources,
extracted once with :func:`pipelines.stages.extract.run_extract`) into a fresh staging area prepared by
:func:`connectors.staging.staging_for`, then ``finalize`` (foreign keys checked) and ``abort``:

* **spark**: :func:`connectors.spark.writer.write_tables` with a started and warmed-up session (as the run has it
  after ``start_spark_in_background``);
* **adbc**: pyarrow reads each table's Parquet in batches and ADBC ingests it (``adbc_ingest``, append), one
  connection, in table order: the floor a Spark-free loader would reach.

Usage::

    python -m benchmarks.write_stage                              # scales 1,10; sqlite and postgresql
    python -m benchmarks.write_stage --scales 1 --targets sqlite --repeat 3 --work-dir /tmp/bw
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

_PG_ADMIN = os.environ.get("SYNTHDB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _extracted(work: Path, k: int) -> tuple[Any, list[str], Path]:
    from benchmarks.pipeline import build_sources
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from pipelines.stages.extract import run_extract
    from schemas.plan import build_plan

    source = build_sources(work, [k])[k]
    run_dir = work / f"write-stage-{k}x"
    src = open_source(f"sqlite:///{source}")
    try:
        schema = inspect_source(src).schema
        if not (run_dir / "done").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
            run_extract(src, schema, run_dir, batch_rows=100_000)
            (run_dir / "done").write_text("")
    finally:
        src.close()
    return schema, build_plan(schema).order, run_dir


def _target(work: Path, dialect: str, name: str) -> str:
    if dialect == "sqlite":
        path = work / "out" / f"{name}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
        return f"sqlite:///{path}"
    return _PG_ADMIN


def _adbc_copy(staging: Any, dirs: dict[str, Path], order: list[str], batch_rows: int) -> int:
    from sqlalchemy.engine import make_url

    url = make_url(staging.staging_url)
    if staging.dialect == "sqlite":
        import adbc_driver_sqlite.dbapi as driver

        con = driver.connect(str(url.database), autocommit=True)
        cur = con.cursor()
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("BEGIN")
    else:
        import adbc_driver_postgresql.dbapi as driver

        con = driver.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        cur = con.cursor()
    rows = 0
    try:
        for name in order:
            pf = pq.ParquetFile(dirs[name] / "data.parquet")
            reader = pf.iter_batches(batch_size=batch_rows)
            first = next(reader, None)
            if first is None:
                continue
            import pyarrow as pa

            def chain(first: Any = first, reader: Any = reader) -> Any:
                yield first
                yield from reader

            cur.adbc_ingest(
                name, pa.RecordBatchReader.from_batches(first.schema, chain()), mode="append",
                db_schema_name=staging.staging_db_schema,
            )
            rows += pf.metadata.num_rows
        if staging.dialect == "sqlite":
            cur.execute("COMMIT")
        else:
            con.commit()
    finally:
        cur.close()
        con.close()
    return rows


def measure(work: Path, scales: list[int], targets: list[str], repeat: int, batch_rows: int) -> list[dict[str, Any]]:
    from connectors.spark.session import start_spark_in_background
    from connectors.spark.writer import write_tables
    from connectors.staging import staging_for
    from pipelines.workspace import Workspace
    from schemas.config import SparkConfig

    t0 = time.perf_counter()
    spark = start_spark_in_background(SparkConfig()).result()
    print(f"spark started and warmed up in {time.perf_counter() - t0:.1f} s", flush=True)
    results = []
    for k in scales:
        schema, order, run_dir = _extracted(work, k)
        dirs = {t.name: Workspace(run_dir).table("real", t.name) for t in schema.active_tables}
        for dialect in targets:
            for rep in range(repeat):
                for phase in ("spark", "adbc"):
                    staging = staging_for(_target(work, dialect, f"{phase}{k}"), run_id=f"bench-{phase}-{k}x")
                    staging.prepare(schema)
                    try:
                        started = time.perf_counter()
                        if phase == "spark":
                            rows = sum(write_tables(spark, dirs, schema, order, staging, batch_rows=batch_rows)
                                       .values())
                        else:
                            rows = _adbc_copy(staging, dirs, order, batch_rows)
                        load_s = time.perf_counter() - started
                        staging.finalize(schema)
                        total_s = time.perf_counter() - started
                    finally:
                        staging.abort()
                    res = {"scale": k, "target": dialect, "phase": phase, "rep": rep, "rows": rows,
                           "load_s": round(load_s, 2), "with_finalize_s": round(total_s, 2)}
                    results.append(res)
                    print(res, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--targets", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--work-dir", default="runs/bench")
    args = parser.parse_args(argv)
    work = Path(args.work_dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    results = measure(
        work, [int(s) for s in args.scales.split(",")], args.targets.split(","), args.repeat, args.batch_rows
    )
    print("\nscale target      spark s   adbc s   spark/adbc (best of each)")
    for k in sorted({r["scale"] for r in results}):
        for dialect in dict.fromkeys(r["target"] for r in results):
            best = {
                phase: min(r["load_s"] for r in results if (r["scale"], r["target"], r["phase"]) == (k, dialect, phase))
                for phase in ("spark", "adbc")
            }
            print(f"{k:>4}x {dialect:<11} {best['spark']:>7.2f}  {best['adbc']:>7.2f}   {best['spark'] / best['adbc']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
