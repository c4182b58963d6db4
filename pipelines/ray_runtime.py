"""Ray: start or join a cluster, ask for a GPU only where the cluster has one, and retry what may succeed again.

A task that asks for ``num_gpus=1`` on a CPU-only cluster waits forever, so every GPU request goes through
:func:`task_resources`. Every stage task is declared through :func:`stage_task`, the one place that sets its
retries (see there).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.config import RayConfig
from schemas.errors import SynthdbError

log = logging.getLogger(__name__)


def init_ray(config: RayConfig) -> None:
    """Start a local Ray runtime, or join ``config.address``; reuse one that is already up."""
    import ray

    if ray.is_initialized():
        return
    _route_ray_logs()
    # Workers must import synthdb's packages: a local runtime inherits this interpreter's environment.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
        "ignore_reinit_error": True,
    }
    if config.address:
        kwargs["address"] = config.address
    else:
        kwargs["num_cpus"] = config.num_cpus or max(1, os.cpu_count() or 1)
    ray.init(**kwargs)
    log.info("ray: %s", {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")})


def _route_ray_logs() -> None:
    """Ray's own log records (its start-up notices) go where every library's do: the run's log file, and the
    console only for errors (the CLI's filter), instead of Ray's console handler printing each of them."""
    ray_log = logging.getLogger("ray")
    for handler in list(ray_log.handlers):
        if type(handler) is logging.StreamHandler:
            ray_log.removeHandler(handler)
    ray_log.propagate = True


def gpu_available(config: RayConfig) -> bool:
    """True when the cluster has a GPU and the configuration allows using it."""
    import ray

    if config.gpus == "never":
        return False
    return float(ray.cluster_resources().get("GPU", 0.0)) >= 1.0


GPU_SHARE = 0.25
"""The share of a GPU one neural training task asks for: four tables train at once on one GPU."""


def task_resources(config: RayConfig, *, wants_gpu: bool) -> dict[str, float]:
    """Resources for one training task: a share of a GPU only when one exists, otherwise one CPU."""
    if wants_gpu and gpu_available(config):
        return {"num_cpus": 1, "num_gpus": GPU_SHARE}
    return {"num_cpus": 1, "num_gpus": 0}


SPREAD = "SPREAD"
"""Ray's scheduling strategy for synthdb's tasks: round robin over the nodes that have room, rather than Ray's default
of filling the driver's node first. Stage tasks are independent per table, so on a cluster they share the nodes'
CPUs and memory instead of queueing on one node while others idle; on one machine it changes nothing."""


def warm_workers() -> None:
    """Have each worker import the models while the driver reads the source (returns at once)."""
    import ray

    # not a stage task: a lost warm-up costs nothing, so it is not rerun; spread, so that every node imports them
    @ray.remote(num_cpus=1, max_retries=0, scheduling_strategy=SPREAD)
    def _warm() -> None:
        import pipelines.stages.generate
        import pipelines.stages.train  # noqa: F401

    cpus = int(ray.cluster_resources().get("CPU", 1))
    for _ in range(max(1, min(cpus, 8))):
        _warm.remote()


RETRY_PAUSE_S = 0.5
"""The pause before the first retry of a retryable error; it doubles with each retry."""

KILL_WORKER_ENV = "SYNTHDB_TEST_KILL_WORKER"
"""Test-only fault injection, read in one place (:func:`stage_task`, on the driver, when a stage declares its task).

``SYNTHDB_TEST_KILL_WORKER=/tmp/x`` (an existing folder): in each stage, the first task to start creates the marker
``/tmp/x/<stage>`` and kills its own worker process (SIGKILL), as an out-of-memory kill or a lost node would; every
later task and attempt finds the marker and runs normally. Nothing else in synthdb reads it.
"""


class RetryableTaskFailure(Exception):
    """A retryable :class:`SynthdbError` on its way out of a task that has tries left: Ray retries only this type.

    It never reaches a caller: the last try raises the original error itself.
    """

    def __init__(self, error: SynthdbError) -> None:
        super().__init__(error)  # args = (error,): pickles as it is
        self.error = error

    def __str__(self) -> str:
        return str(self.error)


def stage_task(config: RayConfig, stage: str, **resources: float) -> Callable[[Callable[..., Any]], Any]:
    """Declare a stage's Ray task (a decorator in place of ``@ray.remote``) with synthdb's retry policy.

    - A lost worker (killed process, out of memory, lost node) is a system failure: Ray reruns the task, up to
      ``config.max_retries`` times.
    - A :class:`SynthdbError` with ``retryable`` set (a dropped connection) is retried too, sharing the same count,
      after a pause that doubles each time (:data:`RETRY_PAUSE_S`, at most 10 s); the last try raises the original
      error, so the caller sees its message and exit code.
    - Any other error (bad input, a bug) fails at once.

    Tasks are spread over the cluster's nodes (:data:`SPREAD`).

    Each retry is logged with the stage, the table and the attempt. A task's table is its first argument (a table
    name, or an object with a ``table`` attribute such as ``TableArtifacts``). Tasks must be safe to rerun: stages
    write their outputs atomically, so a rerun replaces a part rather than adding to it.

    Args:
        config: the run's Ray section (``max_retries``).
        stage: the stage name, for the log and :data:`KILL_WORKER_ENV`.
        **resources: ``ray.remote`` resources (``num_cpus``, ``num_gpus``); ``.options(...)`` may still override.
    """
    import ray

    retries = config.max_retries
    marker = _kill_marker(stage)

    def declare(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            number = _attempt_number()
            table = _table_of(args)
            if number:
                log.warning("%s: %s: attempt %d of %d after a failed one", stage, table, number + 1, retries + 1)
            if marker is not None:
                _kill_once(marker)
            try:
                return fn(*args, **kwargs)
            except SynthdbError as exc:
                if not exc.retryable or number is None or number >= retries:
                    raise
                pause = min(RETRY_PAUSE_S * 2**number, 10.0)  # a dropped connection needs a moment to come back
                log.warning(
                    "%s: %s: attempt %d of %d failed, retrying in %.1f s: %s",
                    stage, table, number + 1, retries + 1, pause, exc,
                )
                time.sleep(pause)
                raise RetryableTaskFailure(exc) from exc

        # Ray accepts a list of exception types (its stubs say bool): only this one is retried.
        options: dict[str, Any] = {
            "max_retries": retries,
            "retry_exceptions": [RetryableTaskFailure],
            "scheduling_strategy": SPREAD,
            **resources,
        }
        return ray.remote(**options)(attempt)

    return declare


def _attempt_number() -> int | None:
    """This task's attempt, from 0 (Ray counts every rerun: lost workers and retried errors); None if unknown."""
    try:
        from ray._private.worker import global_worker

        return int(getattr(global_worker, "core_worker").get_current_task_attempt_number())  # noqa: B009
    except Exception:  # noqa: BLE001 - a private Ray API: without it, every try counts as the last for errors
        return None


def _table_of(args: tuple[Any, ...]) -> str:
    first = args[0] if args else None
    if isinstance(first, str):
        return first
    return str(getattr(first, "table", "?"))


def _kill_marker(stage: str) -> Path | None:
    folder = os.environ.get(KILL_WORKER_ENV)
    return Path(folder) / stage if folder else None


def _kill_once(marker: Path) -> None:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
