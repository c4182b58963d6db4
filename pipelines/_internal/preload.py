"""The last stages' heavy libraries, imported ahead of time on one background thread, and waited for by their users.

Great Expectations (which pulls in altair), plotly, scikit-learn and the report's modules take seconds to import,
so they load while the source is read and the models train. Every stage that needs them first waits for that
thread (:func:`wait`): no two threads ever import them side by side. That matters beyond speed: narwhals (imported
by both altair and plotly) has modules that import each other, and two threads importing them at once can make
Python raise ``_DeadlockError`` (seen failing the validation of a TPC-H SF 0.01 run while the report, on its own
thread, imported plotly).
"""

from __future__ import annotations

import importlib
import logging
import threading

__all__ = ["start", "wait"]

log = logging.getLogger(__name__)

MODULES = (
    "narwhals.stable.v1",
    "narwhals.stable.v2",
    "altair",
    "great_expectations",
    "pipelines._internal.gx_runner",
    "plotly.graph_objects",
    "plotly.subplots",
    "plotly.io",
    "plotly.offline",
    "sklearn.ensemble",
    "pipelines.stages.report",
)

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _load(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # an import error surfaces again, with its message, in the stage that needs it
            log.debug("ahead-of-time import of %s failed", name, exc_info=True)


def start(modules: tuple[str, ...] = MODULES) -> None:
    """Start importing ``modules`` on a background thread (once per process; later calls do nothing)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_load, args=(modules,), name="synthdb-imports", daemon=True)
            _thread.start()


def wait() -> None:
    """Block until the ahead-of-time imports are done (at once when they were never started)."""
    with _lock:
        thread = _thread
    if thread is not None:
        thread.join()
