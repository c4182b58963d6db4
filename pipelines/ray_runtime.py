"""Ray: start or join a cluster, and ask for a GPU only where the cluster has one.

A task that asks for ``num_gpus=1`` on a CPU-only cluster waits forever, so every GPU request goes through
:func:`task_resources`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from schemas.config import RayConfig

log = logging.getLogger(__name__)


def init_ray(config: RayConfig) -> None:
    """Start a local Ray runtime, or join ``config.address``; reuse one that is already up."""
    import ray

    if ray.is_initialized():
        return
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


def warm_workers() -> None:
    """Have each worker import the models while the driver reads the source (returns at once)."""
    import ray

    @ray.remote(num_cpus=1)
    def _warm() -> None:
        import pipelines.stages.generate  # noqa: F401
        import pipelines.stages.train  # noqa: F401

    cpus = int(ray.cluster_resources().get("CPU", 1))
    for _ in range(max(1, min(cpus, 8))):
        _warm.remote()
