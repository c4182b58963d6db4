"""The run's log file: every log record of the run, Python's warnings, and what native code prints.

``runs/<run_id>/run.log`` receives the run's log records (INFO and up from synthdb's packages, WARNING and up
from the libraries), Python warnings (a pandas FutureWarning, say), and, when the process's standard error is a
real file descriptor, everything written to file descriptor 2 by code that bypasses Python: the JVM's and Spark's
log4j lines, Ray's core worker. The console keeps Python's ``sys.stderr`` (a duplicate of the original descriptor),
so the progress lines and the errors the CLI prints still reach the terminal, once each.

Under a test runner that replaces ``sys.stderr`` with an in-memory stream, descriptor 2 is left alone: only log
records and warnings go to the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["run_log"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _real_stderr() -> bool:
    try:
        return sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # an in-memory stream (a test runner's capture)
        return False


@contextlib.contextmanager
def _native_output_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` and ``sys.stderr`` at a copy of the old descriptor 2."""
    if not _real_stderr():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    original, sys.stderr = sys.stderr, os.fdopen(saved, "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        finally:
            os.dup2(saved, 2)
            sys.stderr.close()  # closes ``saved``; descriptor 2 is the terminal again
            sys.stderr = original


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[Path]:
    """Send the run's log records, warnings and native output to ``path`` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        with _native_output_to(path):
            yield path
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
