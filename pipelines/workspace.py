"""The run directory, typed: one name for every path a run writes, and the checksums that let a later run trust them.

``runs/<run_id>/`` holds::

    manifest.json          the run's record (pipelines.manifest): stages, timings, rows, outputs with checksums
    run.log                every log record, Python warning and JVM/Ray line of the run
    schema.yaml plan.json  what inspect and plan decided
    spec.yaml              the spec of a schema-only run
    real/<table>/data.parquet      the extracted training rows      real/orphans.json  orphaned keys handled
    holdout/<table>/data.parquet   the rows held out of training    holdout/summary.json
    models/<table>/        the model store (artifacts.pkl)          privacy.json       the accounted DP budget
    counts/<table>/block-NNNNNNN.npy   children per parent block    synth/<table>/part-NNNNNNN.parquet
    validation/            Great Expectations' results and data docs
    report/                report.json and report.html

Stages reach these paths through :class:`Workspace`, never through string literals. Every file is written under a
temporary name and renamed when complete, and a stage that is run again starts from an emptied area, so a generated
part is never rewritten in place. When a stage ends, the manifest records each of its files with its size and
SHA-256 (:func:`checksums`); ``synthdb run --resume`` reuses a stage only if :func:`verify` finds every one intact.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STAGE_OUTPUTS", "Workspace", "checksums", "verify"]

# What each stage leaves in the run directory (files or areas, relative to it); write leaves nothing there (its
# output is the target) and plan's and inspect's files are re-derived from the source on every resume.
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "inspect": ("schema.yaml",),
    "plan": ("plan.json",),
    "extract": ("real", "holdout"),
    "train": ("models", "privacy.json"),
    "generate": ("synth", "counts"),
    "validate": ("validation",),
    "report": ("report",),
}


def _safe(table: str) -> str:
    """A table's folder name: ASCII letters, digits, ``_`` and ``-`` as they are, any other character as ``=`` and
    six hex digits, so the folder stays readable and two tables never share one (``order line`` and ``order_line``).
    """
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else f"={ord(ch):06x}" for ch in table)


@dataclass(frozen=True)
class Workspace:
    """The paths of one run directory. Pure names: nothing is created until a stage writes."""

    root: Path

    # -- files of the run as a whole
    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def schema(self) -> Path:
        return self.root / "schema.yaml"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def spec(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def log(self) -> Path:
        """The run's log: every log record, warning and native (JVM, Ray) line of the run."""
        return self.root / "run.log"

    @property
    def privacy(self) -> Path:
        return self.root / "privacy.json"

    @property
    def orphans(self) -> Path:
        return self.root / "real" / "orphans.json"

    @property
    def holdout_summary(self) -> Path:
        return self.root / "holdout" / "summary.json"

    @property
    def validation(self) -> Path:
        return self.root / "validation"

    @property
    def report(self) -> Path:
        return self.root / "report"

    # -- per-table folders
    def area(self, name: str) -> Path:
        return self.root / name

    def table(self, area: str, table: str) -> Path:
        """The folder of one table in an area (``real``, ``holdout``, ``models``, ``counts``, ``synth``)."""
        return self.root / area / _safe(table)

    def real(self, table: str) -> Path:
        """The extracted training rows of ``table`` (one Parquet file)."""
        return self.table("real", table) / "data.parquet"

    def holdout(self, table: str) -> Path:
        """The real rows of ``table`` held out of training (one Parquet file)."""
        return self.table("holdout", table) / "data.parquet"

    def models(self, table: str) -> Path:
        return self.table("models", table)

    def synth(self, table: str) -> Path:
        """The folder of ``table``'s generated parts."""
        return self.table("synth", table)

    def part(self, table: str, block: int) -> Path:
        return self.synth(table) / f"part-{block:07d}.parquet"

    def parts(self, table: str) -> list[Path]:
        return sorted(self.synth(table).glob("part-*.parquet"))

    def counts(self, table: str, block: int) -> Path:
        """Children per parent of one parent block of ``table``'s context (NumPy)."""
        return self.table("counts", table) / f"block-{block:07d}.npy"

    def clear(self, *areas: str) -> None:
        """Empty the given areas before a stage writes them again (a stage never rewrites a file in place)."""
        for name in areas:
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def _files(root: Path, outputs: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for name in outputs:
        path = root / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            # temporary files of a write still in flight (".name.tmp-...") are not outputs
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
    return found


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def checksums(root: Path, outputs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every file under ``outputs`` (paths relative to ``root``), with its size and SHA-256."""
    return {
        p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in _files(root, outputs)
    }


def verify(root: Path, recorded: dict[str, dict[str, Any]]) -> list[str]:
    """What no longer matches the recorded checksums: missing or changed files (empty: all intact).

    Sizes are compared first, so a truncated file is found without reading it.
    """
    problems: list[str] = []
    for rel, want in recorded.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != want.get("bytes"):
            problems.append(f"{rel}: {path.stat().st_size} bytes, recorded {want.get('bytes')}")
        elif _sha256(path) != want.get("sha256"):
            problems.append(f"{rel}: checksum differs")
    return problems
