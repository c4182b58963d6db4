"""Which stages a resumed run reuses: an unbroken chain of finished stages whose recorded files all verify."""

from __future__ import annotations

from pathlib import Path

from pipelines.manifest import Manifest
from pipelines.resume import StageReuse
from pipelines.workspace import Workspace, checksums, verify


def _finished_run(tmp_path: Path) -> Manifest:
    manifest = Manifest.create(tmp_path / "runs", run_id="20261201T000000Z-000001")
    ws = manifest.workspace
    for stage, path in (("extract", ws.real("café")), ("train", ws.models("café") / "artifacts.pkl"),
                        ("generate", ws.part("café", 0))):
        with manifest.stage(stage):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(stage.encode() * 100)
    return Manifest.load(manifest.run_dir)


def test_checksums_cover_every_file_but_temporary_ones_and_find_changes(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.part("t", 0).parent.mkdir(parents=True)
    ws.part("t", 0).write_bytes(b"abc")
    (ws.synth("t") / ".part-0000001.parquet.tmp-1").write_bytes(b"half")
    recorded = checksums(tmp_path, ["synth", "missing-area"])
    assert list(recorded) == ["synth/t/part-0000000.parquet"]
    assert verify(tmp_path, recorded) == []
    ws.part("t", 0).write_bytes(b"abd")
    assert verify(tmp_path, recorded) == ["synth/t/part-0000000.parquet: checksum differs"]
    ws.part("t", 0).unlink()
    assert verify(tmp_path, recorded) == ["synth/t/part-0000000.parquet: missing"]


def test_the_chain_stops_at_the_first_changed_stage(tmp_path: Path) -> None:
    manifest = _finished_run(tmp_path)
    said: list[str] = []
    manifest.workspace.models("café").joinpath("artifacts.pkl").write_bytes(b"other")
    reuse = StageReuse(manifest, resuming=True, say=lambda stage, msg: said.append(f"{stage}: {msg}"))
    assert reuse.take("extract") is not None
    assert reuse.take("train") is None and reuse.take("generate") is None  # what follows a changed stage reruns
    assert reuse.reused == ["extract"]
    assert any(s.startswith("train: run again: models/caf=0000e9/artifacts.pkl") for s in said), said
    assert Manifest.load(manifest.run_dir).stages["extract"].detail["reused"] is True


def test_a_fresh_run_reuses_nothing_and_a_committed_one_keeps_its_data_stages(tmp_path: Path) -> None:
    manifest = _finished_run(tmp_path)
    fresh = StageReuse(manifest, resuming=False, say=lambda *_: None)
    assert [fresh.take(s) for s in ("extract", "train", "generate")] == [None, None, None]
    manifest.workspace.real("café").unlink()  # e.g. `synthdb clean` deleted the real-data copies after the commit
    committed = StageReuse(manifest, resuming=True, say=lambda *_: None, committed=True)
    assert all(committed.take(s) is not None for s in ("extract", "train", "generate"))
    assert committed.take("report") is None  # the report never ran: it runs now
