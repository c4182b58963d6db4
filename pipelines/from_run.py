"""``synthdb sample --run RUN_ID --target URL``: a whole new database from a finished run's models, nothing retrained.

A new run (its own id and directory under the runs folder) takes the earlier run's schema, plan, real-data copies
and model store as they are, and runs generate, write, validate and report with a new seed and a new scale. The
source is never read: the earlier run's files are all it needs (so it works where the source cannot be reached,
such as a nightly refresh that retrains once a week, or a release from models trained elsewhere).

The earlier run's files are hard-linked into the new run directory (copied where links cannot be made, such as
across file systems), so the new run is self-contained: ``synthdb clean`` or a deleted earlier run cannot break it,
and its manifest records their checksums as any run's does. Only files the earlier run's manifest recorded, and
that still verify against their checksums, are taken: a model store that changed since is refused.

Privacy: sampling again from differentially private models is post-processing, so it spends no budget; the new run's
manifest and report carry the earlier run's accounting unchanged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pipelines.manifest import Manifest, StageRecord
from pipelines.workspace import Workspace, verify
from schemas.config import RunConfig
from schemas.errors import ConfigError

__all__ = ["TAKEN_STAGES", "config_from_run", "load_origin", "take_stages"]

TAKEN_STAGES = ("inspect", "plan", "extract", "train")
"""The stages a new run takes from the earlier one; it runs every stage after them."""


def load_origin(run: str, runs_dir: Path) -> Manifest:
    """The finished (or at least trained) run to sample from, given as a run directory or a run id under ``runs_dir``.

    Raises:
        ConfigError: no such run, or it has no complete, intact model store and real-data copies.
    """
    candidates = [Path(run), Path(runs_dir) / run]
    found = next((c for c in candidates if Workspace(c).manifest.exists()), None)
    if found is None:
        raise ConfigError(
            f"--run {run}: no run {run!r} (neither a run directory nor a run id under {Path(runs_dir).absolute()}); "
            f"`synthdb runs --runs-dir {runs_dir}` lists the runs there"
        )
    try:
        origin = Manifest.load(found)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--run {run}: its manifest cannot be read ({exc})") from None
    for name in TAKEN_STAGES:
        record = origin.stages.get(name)
        if record is None or record.status != "done":
            status = "never ran" if record is None else record.status
            raise ConfigError(
                f"--run {origin.run_id}: its {name} stage {status}, so it has no complete model store to sample from; "
                f"resume it first (`synthdb run --resume {origin.run_id}`) or sample from a finished run"
            )
        problems = verify(origin.run_dir, record.outputs)
        if problems:
            more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
            hint = (
                " (`synthdb clean` deletes the real-data copies of killed runs)" if name == "extract" else ""
            )
            raise ConfigError(
                f"--run {origin.run_id}: the files of its {name} stage changed or are missing since it ran: "
                f"{problems[0]}{more}{hint}; sample from a run whose files are intact, or run the pipeline again"
            )
    return origin


def config_from_run(origin: Manifest, *, target: str, seed: int | str | None, scale: float | None,
                    runs_dir: Path | None, if_exists: str | None = None) -> RunConfig:
    """The earlier run's configuration with a new target, seed and scale (everything it trained with stays).

    The source URL is kept for the record only (passwords hidden, as the manifest keeps it): it is never opened.

    Raises:
        ConfigError: the recorded configuration is no longer valid.
    """
    data: dict[str, Any] = {k: v for k, v in origin.config.items()}
    data["target"] = {**(data.get("target") or {}), "url": target}
    if if_exists is not None:
        data["target"]["if_exists"] = if_exists
    generation = dict(data.get("generation") or {})
    generation["seed"] = "auto" if seed is None else seed
    if scale is not None:
        generation["scale"] = scale
    data["generation"] = generation
    if runs_dir is not None:
        data["runs_dir"] = str(runs_dir)
    else:
        data.setdefault("runs_dir", str(origin.run_dir.parent))
    try:
        return RunConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"--run {origin.run_id}: the run's recorded configuration is not valid any more: {exc}") from None


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # the files are never rewritten in place (see pipelines.workspace): sharing them is safe
    except OSError:
        shutil.copy2(src, dst)


def take_stages(origin: Manifest, manifest: Manifest) -> None:
    """Bring the earlier run's files of :data:`TAKEN_STAGES` into the new run and record those stages as taken.

    Each stage's record is the earlier run's (its rows and details, the privacy accounting among them), marked
    ``from_run`` and reused; its outputs are the files as they are now in the new run, checksummed again.

    Raises:
        ConfigError: a file changed while it was being taken.
    """
    for name in TAKEN_STAGES:
        old = origin.stages[name]
        for rel in old.outputs:
            _link_or_copy(origin.run_dir / rel, manifest.run_dir / rel)
        problems = verify(manifest.run_dir, old.outputs)
        if problems:
            raise ConfigError(
                f"--run {origin.run_id}: its {name} files changed while they were taken ({problems[0]}); try again"
            )
        record = StageRecord(
            status="done", started_at=old.started_at, seconds=0.0, rows=dict(old.rows),
            detail={**old.detail, "from_run": origin.run_id, "reused": True}, outputs=dict(old.outputs),
        )
        manifest.stages[name] = record
    manifest.save()
