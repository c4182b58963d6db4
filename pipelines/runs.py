"""``synthdb runs``: the runs under a runs folder, newest first, with their status and headline scores.

Read from each run's manifest and ``report/report.json`` only (paths from :mod:`pipelines.workspace`); nothing
connects to a database. A run whose manifest says ``running`` while its process is dead is shown as ``killed``
(what ``synthdb clean`` would mark it), so a list never claims a dead run is still working.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.workspace import Workspace

__all__ = ["RunSummary", "list_runs"]

HEADLINE_SHOWN = ("overall", "dcr_share", "mia_auc")


@dataclass
class RunSummary:
    """One run, as ``synthdb runs`` shows it."""

    run_id: str
    created_at: str | None
    status: str  # running | done | failed | killed
    source: str | None
    target: str | None
    synthetic_rows: int | None
    seconds: float | None  # the sum of the stages' times
    committed: bool
    resumed: int
    error: str | None
    headline: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # headline scores past their thresholds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _status(manifest: dict[str, Any]) -> str:
    status = str(manifest.get("status", "unknown"))
    owner = manifest.get("owner")
    if status == "running" and isinstance(owner, dict) and isinstance(owner.get("pid"), int):
        from connectors.owner import owner_alive

        if not owner_alive(owner):
            return "killed"
    return status


def _summary(run_dir: Path) -> RunSummary | None:
    ws = Workspace(run_dir)
    try:
        manifest = json.loads(ws.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    stages = manifest.get("stages", {})
    generated = (stages.get("generate") or {}).get("rows") or {}
    seconds = [s.get("seconds") for s in stages.values() if isinstance(s.get("seconds"), int | float)]
    config = manifest.get("config", {})
    summary = RunSummary(
        run_id=str(manifest.get("run_id", run_dir.name)),
        created_at=manifest.get("created_at"),
        status=_status(manifest),
        source=(config.get("source") or {}).get("url"),
        target=(config.get("target") or {}).get("url"),
        synthetic_rows=sum(generated.values()) if generated else None,
        seconds=round(sum(seconds), 1) if seconds else None,
        committed=manifest.get("committed_at") is not None,
        resumed=len(manifest.get("resumed") or []),
        error=manifest.get("error") or next((s.get("error") for s in stages.values() if s.get("error")), None),
    )
    try:
        headline = json.loads((ws.report / "report.json").read_text(encoding="utf-8")).get("headline", {})
    except (OSError, ValueError):
        headline = {}
    for name, item in headline.items():
        if name in HEADLINE_SHOWN:
            summary.headline[name] = item.get("score")
        if item.get("status") == "warn":
            summary.warnings.append(name)
    return summary


def list_runs(runs_dir: Path, *, limit: int | None = None) -> list[RunSummary]:
    """The runs under ``runs_dir``, newest first (run ids sort by their start time); unreadable folders skipped."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    folders = sorted((p for p in runs_dir.iterdir() if Workspace(p).manifest.is_file()), reverse=True)
    found = [s for p in folders[: limit or None] if (s := _summary(p)) is not None]
    return found
