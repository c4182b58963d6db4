"""``synthdb run --resume RUN_ID``: continue a killed or failed run, reusing every stage whose outputs are intact.

A resumed run is the same run: same run id, same run directory, same configuration and seed, so it ends with the
output an uninterrupted run would have given. Stages are taken in order; one is reused when it finished and every
file it recorded in the manifest is there with its recorded size and SHA-256 (:func:`pipelines.workspace.verify`),
and from the first stage that is not, everything is run again. inspect and plan always run again (they are cheap
and read the source's catalogue): if the schema they find differs from the killed run's, nothing is reused.
The write and its validation are reused only when the killed run had swapped its staging area in; otherwise the
killed run's staging area is removed as debris (its owner is dead) and the write starts over.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.manifest import Manifest, StageRecord
from pipelines.workspace import STAGE_OUTPUTS, verify
from schemas.config import RunConfig
from schemas.errors import ConfigError, TargetBusy

__all__ = ["StageReuse", "config_of_run", "prepare_resume"]

_HIDDEN = "***"


def _load(runs_dir: Path, run_id: str) -> Manifest:
    try:
        return Manifest.load(Path(runs_dir) / run_id)
    except FileNotFoundError:
        raise ConfigError(
            f"--resume {run_id}: no run {run_id!r} under {Path(runs_dir).absolute()}; `synthdb runs --runs-dir "
            f"{runs_dir}` lists the runs there"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--resume {run_id}: its manifest cannot be read ({exc}); start a new run") from None


def config_of_run(runs_dir: Path, run_id: str) -> RunConfig:
    """The configuration a run recorded, for ``--resume`` given without ``--config``.

    Raises:
        ConfigError: no such run, or its URLs carry a password the manifest does not keep (give ``--config``).
    """
    manifest = _load(runs_dir, run_id)
    data = manifest.config
    for section in ("source", "target"):
        url = (data.get(section) or {}).get("url") or ""
        if _HIDDEN in url:
            raise ConfigError(
                f"--resume {run_id}: the run's {section}.url holds a password, which its manifest does not keep; "
                "resume with the same --config (or --source/--target) as the run"
            )
    try:
        return RunConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"--resume {run_id}: the run's recorded configuration is not valid any more: {exc}") from None


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def prepare_resume(config: RunConfig, run_id: str, recorded: dict[str, Any]) -> tuple[Manifest, RunConfig]:
    """The killed run's manifest and the configuration to resume it with (its seed), after checking both.

    Args:
        config: the configuration given now (flags, file, environment).
        run_id: the run to resume.
        recorded: ``config`` as the manifest records it (URLs' passwords hidden), to compare with.

    Raises:
        ConfigError: no such run, the run finished, or the configuration differs from the run's (each
            difference named).
        TargetBusy: the run's own process is still alive.
    """
    from connectors.owner import owner_alive

    manifest = _load(config.runs_dir, run_id)
    if manifest.status == "done":
        raise ConfigError(
            f"--resume {run_id}: the run finished; there is nothing to resume. Start a new run, or sample from its "
            f"models with `synthdb sample --run {run_id}`"
        )
    if manifest.status == "running" and manifest.owner and owner_alive(manifest.owner):
        raise TargetBusy(
            f"--resume {run_id}: the run is still running (pid {manifest.owner.get('pid')} on "
            f"{manifest.owner.get('host')}); wait for it to end, or stop it first"
        )
    seed = (manifest.seed or {}).get("value")
    if seed is not None:
        config = config.model_copy(update={"generation": config.generation.model_copy(update={"seed": int(seed)})})
    then, now = _flat(manifest.config), _flat(json.loads(json.dumps(recorded, default=str)))
    now["generation.seed"] = then.get("generation.seed", now.get("generation.seed"))
    now["runs_dir"] = then.get("runs_dir")  # where the run lies, not what it does
    differ = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
    if differ:
        shown = "; ".join(f"{k}: {then.get(k)!r} in the run, {now.get(k)!r} now" for k in differ[:8])
        raise ConfigError(
            f"--resume {run_id}: the configuration differs from the run's ({shown}). A resumed run must give the "
            "same output as the run would have: resume with the run's configuration, or start a new run"
        )
    return manifest, config


class StageReuse:
    """Which stages of a resumed run are taken as they are: an unbroken chain of finished, verified stages."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        resuming: bool,
        say: Callable[[str, str], None],
        committed: bool = False,
        earlier: str = "the interrupted run",
    ) -> None:
        self.manifest = manifest
        self.earlier = earlier
        self.open = resuming
        self.committed = committed
        self.reused: list[str] = []
        self._say = say

    def take(self, name: str) -> StageRecord | None:
        """The stage's record when it can be reused (marked so in the manifest), else None (and the chain ends).

        After a commit every finished data stage is taken as it is, verified or not: its output is in the target,
        and running it again could only make the run directory disagree with the target. A missing file then
        shows in the report (which says why it could not score), never in the target.
        """
        record = self.manifest.stages.get(name)
        if self.committed and name != "report" and record is not None and record.status == "done":
            self.manifest.reuse(name)
            self.reused.append(name)
            return record
        if not self.open:
            return None
        if record is None or record.status != "done":
            self.open = False
            return None
        problems = verify(self.manifest.run_dir, record.outputs)
        if not record.outputs and any((self.manifest.run_dir / o).exists() for o in STAGE_OUTPUTS.get(name, ())):
            problems = ["its outputs carry no checksums (a run before checksums were recorded)"]
        if problems:
            more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
            self._say(name, f"run again: {problems[0]}{more}")
            self.open = False
            return None
        self.manifest.reuse(name)
        self.reused.append(name)
        self._say(name, f"reused from {self.earlier} (outputs verified)")
        return record

    def stop(self, name: str, why: str) -> None:
        """End the chain: ``name`` and every stage after it run again."""
        if self.open:
            self._say(name, f"run again: {why}")
        self.open = False
