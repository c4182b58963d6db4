"""Stage tasks survive faults: a killed Ray worker and a retryable error are retried, anything else fails at once.

A worker is killed with ``SYNTHDB_TEST_KILL_WORKER`` (see :data:`pipelines.ray_runtime.KILL_WORKER_ENV`): the one
way to make a real worker process die inside a task. Attempts are counted with marker files, since each attempt may
run in another process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from fixtures.tricky import create_tricky_schema
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ray_runtime import KILL_WORKER_ENV, stage_task
from pipelines.workspace import Workspace
from schemas.config import RayConfig, load_config
from schemas.errors import ConfigError, ConnectorError, SchemaError, SynthdbError

pytestmark = pytest.mark.usefixtures("ray_session")


def _run(tmp_path: Path, name: str, src: str, cfg: Path) -> Path:
    runs = tmp_path / f"runs-{name}"
    args = ["run", "--source", src, "--target", str(tmp_path / f"out-{name}"), "--config", str(cfg)]
    res = CliRunner().invoke(app, [*args, "--runs-dir", str(runs), "--seed", "11"])
    assert res.exit_code == 0, res.output
    (manifest,) = runs.glob("*/manifest.json")
    return manifest.parent


def _digest(run_dir: Path) -> str:
    h = hashlib.sha256()
    for table in sorted(p.name for p in (run_dir / "synth").iterdir()):
        for part in Workspace(run_dir).parts(table):
            h.update(table.encode())
            h.update(pl.read_parquet(part).hash_rows(seed=1).to_numpy().tobytes())
    return h.hexdigest()


def test_a_worker_killed_in_train_and_in_generate_is_retried_and_the_output_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    create_tricky_schema(src, rows=200)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("report:\n  enabled: false\nvalidation:\n  enabled: false\n")
    plain = _run(tmp_path, "plain", src, cfg)

    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv(KILL_WORKER_ENV, str(faults))
    faulted = _run(tmp_path, "faulted", src, cfg)

    # Each marker is written by the task that then killed its worker: both stages lost one and still finished.
    assert sorted(p.name for p in faults.iterdir()) == ["generate", "train"]
    assert json.loads((faulted / "manifest.json").read_text())["status"] == "done"
    assert _digest(faulted) == _digest(plain), "a retried task changed the output"


def _flaky(error: SynthdbError | Exception, *, fails: int, retries: int, tries: Path) -> object:
    """A stage task that raises ``error`` on its first ``fails`` attempts, then returns its attempt count."""

    @stage_task(RayConfig(max_retries=retries), "train")
    def task(table: str, tries: Path) -> int:
        n = len(list(tries.iterdir()))
        (tries / f"try-{n}").touch()
        if n < fails:
            raise error
        return n + 1

    import ray

    return ray.get(task.remote("customer", tries))


def test_a_retryable_error_raised_once_is_retried_and_succeeds(tmp_path: Path) -> None:
    dropped = ConnectorError("customer: the connection to the source dropped", retryable=True)
    assert _flaky(dropped, fails=1, retries=3, tries=tmp_path) == 2
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("retries", [0, 2])
def test_a_retryable_error_that_persists_surfaces_as_itself_after_the_last_try(tmp_path: Path, retries: int) -> None:
    dropped = ConnectorError("customer: the connection to the source dropped", retryable=True)
    with pytest.raises(ConnectorError) as info:
        _flaky(dropped, fails=99, retries=retries, tries=tmp_path)
    assert info.value.message == dropped.message and info.value.exit_code == 1
    assert len(list(tmp_path.iterdir())) == 1 + retries  # the first try, then each retry


def test_max_retries_is_a_count_from_zero() -> None:
    assert load_config(None, overrides={"ray.max_retries": "0"}, environ={}).ray.max_retries == 0
    assert RayConfig().max_retries == 3
    with pytest.raises(ConfigError, match="max_retries"):
        load_config(None, overrides={"ray.max_retries": "-1"}, environ={})


@pytest.mark.parametrize(
    "error",
    [SchemaError("customer.email: kind 'pii' needs a text column, got INTEGER"), ZeroDivisionError("a bug")],
    ids=["bad-input", "bug"],
)
def test_a_non_retryable_error_fails_at_once_with_its_own_message(tmp_path: Path, error: Exception) -> None:
    with pytest.raises(type(error)) as info:
        _flaky(error, fails=99, retries=3, tries=tmp_path)
    assert str(error) in str(info.value)
    assert len(list(tmp_path.iterdir())) == 1
    if isinstance(error, SynthdbError):
        assert info.value.exit_code == 2  # type: ignore[attr-defined]
