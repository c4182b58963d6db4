"""``synthdb clean``: remove what killed runs left behind, on demand (a run does the target part at its start).

* staging areas of a target whose owner is dead, and Spark warm-up folders of dead processes
  (:mod:`connectors.debris`);
* in a runs folder, every manifest still at ``running`` whose process is dead is marked ``killed`` (and so is
  the stage it died in), and its copies of the real data (``real/``, ``holdout/``) are deleted; the manifest, the
  report and the rest of the run directory are kept. A manifest that records no owner (written by an older
  synthdb) is left as it is and named in the log.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from connectors.owner import owner_alive, parse_owner

__all__ = ["CleanResult", "clean", "clean_runs"]

log = logging.getLogger(__name__)

REAL_DATA_AREAS = ("real", "holdout")


@dataclass
class CleanResult:
    """What ``clean`` removed or marked."""

    staging: list[str] = field(default_factory=list)
    temp_folders: list[str] = field(default_factory=list)
    killed_runs: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def clean(target_url: str | None, runs_dir: Path | None) -> CleanResult:
    """Sweep a target's dead staging areas, the Spark temp folders and a runs folder's killed runs."""
    from connectors.debris import sweep_spark_temp, sweep_target

    result = CleanResult()
    if target_url:
        result.staging = sweep_target(target_url)
    result.temp_folders = sweep_spark_temp()
    if runs_dir is not None:
        result.killed_runs, result.freed_bytes = clean_runs(runs_dir)
    return result


def clean_runs(runs_dir: Path) -> tuple[list[str], int]:
    """Mark runs stuck at ``running`` whose process is dead as ``killed`` and delete their real-data Parquet.

    Returns:
        The run ids marked, and the bytes freed.
    """
    from pipelines.manifest import atomic_write_text

    killed: list[str] = []
    freed = 0
    if not Path(runs_dir).is_dir():
        return killed, freed
    for path in sorted(Path(runs_dir).glob("*/manifest.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("status") != "running":
            continue
        owner = parse_owner(json.dumps(data.get("owner")))
        if owner is None:
            log.warning("run %s is at 'running' but records no process (an older synthdb); left as it is",
                        path.parent.name)
            continue
        if owner_alive(owner):
            continue
        run_dir = path.parent
        for area in REAL_DATA_AREAS:
            folder = run_dir / area
            if folder.is_dir():
                freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                shutil.rmtree(folder, ignore_errors=True)
        data["status"] = "killed"
        for stage in (data.get("stages") or {}).values():
            if isinstance(stage, dict) and stage.get("status") == "running":
                stage["status"] = "killed"
                stage["error"] = "the process was killed; `synthdb clean` deleted the run's real-data copies"
        atomic_write_text(path, json.dumps(data, indent=2, default=str))
        killed.append(str(data.get("run_id") or run_dir.name))
        log.info("run %s was killed: marked so, its real-data copies deleted", run_dir.name)
    return killed, freed
