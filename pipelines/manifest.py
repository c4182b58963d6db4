"""The run's manifest.

Every run has ``runs/<run_id>/`` (its paths: :mod:`pipelines.workspace`) with ``manifest.json`` recording each
stage's status, timings, row counts and outputs: every file the stage left, with its size and SHA-256. Every file a
stage writes is written atomically (temporary name, then rename), so a crashed run never leaves a half-written file
that a later stage would mistake for finished work, and ``synthdb run --resume`` reuses a stage only when its
recorded outputs are all there, unchanged.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.workspace import STAGE_OUTPUTS, Workspace, checksums

_SAVE_LOCK = threading.Lock()

STAGES = ("inspect", "plan", "extract", "train", "generate", "write", "validate", "report")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class StageRecord:
    """What the manifest says about one stage."""

    status: str = "pending"  # pending | running | done | failed | skipped | killed
    started_at: str | None = None
    seconds: float | None = None
    rows: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # every file the stage left in the run directory (relative path -> size and SHA-256), recorded when it ends
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Manifest:
    """The run's manifest, saved as ``manifest.json`` after every change."""

    run_id: str
    run_dir: Path
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    status: str = "running"  # running | done | failed | killed (marked by `synthdb clean`)
    error: str | None = None  # why the run failed, when it failed outside a stage
    config: dict[str, Any] = field(default_factory=dict)
    # the seed the run used, and where it came from ("auto": drawn for this run; "config": given)
    seed: dict[str, Any] | None = None
    stages: dict[str, StageRecord] = field(default_factory=lambda: {s: StageRecord() for s in STAGES})
    # the process running it (pid, host, start time): `synthdb clean` marks a "running" run whose owner is dead
    owner: dict[str, Any] | None = None
    # when the staging area replaced the live target: from then on the write and its validation are done for good
    committed_at: str | None = None
    # each `synthdb run --resume` of this run: when, what the run's status was, and which stages it reused
    resumed: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(
        cls, runs_dir: Path, *, run_id: str | None = None, config: dict[str, Any] | None = None
    ) -> Manifest:
        rid = run_id or new_run_id()
        run_dir = Path(runs_dir).resolve() / rid
        run_dir.mkdir(parents=True, exist_ok=True)
        from connectors.owner import owner_record

        manifest = cls(run_id=rid, run_dir=run_dir, config=config or {}, owner=owner_record(rid))
        manifest.save()
        return manifest

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        """The manifest of an existing run directory.

        Raises:
            FileNotFoundError: the folder holds no manifest.
        """
        path = Workspace(Path(run_dir).resolve()).manifest
        data = json.loads(path.read_text(encoding="utf-8"))
        data["run_dir"] = path.parent
        known = set(StageRecord.__dataclass_fields__)
        data["stages"] = {
            name: StageRecord(**{k: v for k, v in record.items() if k in known})
            for name, record in data.get("stages", {}).items()
        }
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.run_dir)

    @property
    def path(self) -> Path:
        return Workspace(self.run_dir).manifest

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data

    def save(self) -> None:
        # stages may run side by side (the report beside the write): one writer at a time
        with _SAVE_LOCK:
            atomic_write_text(self.path, json.dumps(self.to_dict(), indent=2, default=str))

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        """Record a stage's start, end, duration, failure and outputs (with checksums) in the manifest."""
        record = self.stages[name] = StageRecord()  # a stage run again starts a fresh record
        record.status = "running"
        record.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.save()
        start = time.perf_counter()
        try:
            yield record
        except BaseException as exc:
            record.status = "failed"
            record.error = str(exc)
            record.seconds = round(time.perf_counter() - start, 3)
            self.status = "failed"
            self.save()
            raise
        record.outputs = checksums(self.run_dir, STAGE_OUTPUTS.get(name, ()))
        record.status = "done"
        record.seconds = round(time.perf_counter() - start, 3)
        self.save()

    def reuse(self, name: str) -> StageRecord:
        """Mark a finished stage as reused by a resumed run (its outputs were verified); returns its record."""
        record = self.stages[name]
        record.detail["reused"] = True
        self.save()
        return record

    def skip(self, name: str, reason: str) -> None:
        record = self.stages.setdefault(name, StageRecord())
        record.status = "skipped"
        record.detail["reason"] = reason
        self.save()


def mark_failed(runs_dir: Path, run_id: str, exc: BaseException) -> None:
    """Record that a run failed, if its manifest exists and still says ``running``; never raises.

    A stage that fails marks the run itself; this catches what fails between stages (opening the source,
    starting Ray), so that no manifest of a dead run says ``running``.
    """
    path = Path(runs_dir).resolve() / run_id / "manifest.json"
    try:
        if not path.exists():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("status") != "running":
            return
        data["status"] = "failed"
        data["error"] = str(exc) or type(exc).__name__
        for record in data.get("stages", {}).values():
            if record.get("status") == "running":
                record["status"] = "failed"
                record["error"] = data["error"]
        with _SAVE_LOCK:
            atomic_write_text(path, json.dumps(data, indent=2, default=str))
    except Exception:  # the original error is the one to report
        import logging

        logging.getLogger(__name__).warning("could not mark run %s failed in its manifest", run_id, exc_info=True)
