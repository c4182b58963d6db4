"""Who owns a staging area, a temporary folder or a run: a small record, and whether that owner still lives.

Every area a run leaves outside its run directory while it works carries such a record (a marker file, a schema
or database comment, or the pid in a folder's name), so that a later run or ``synthdb clean`` can tell the debris
of a killed process from the work of a live one. Liveness is only decided on the owner's own host: a record from
another host is treated as alive (it is never removed), since its process cannot be looked up from here.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

__all__ = ["owner_alive", "owner_record", "parse_owner", "pid_alive"]


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (field 3, the state, first), or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from its first owner."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat
    except (IndexError, ValueError):
        return None


def owner_record(run_id: str | None = None) -> dict[str, Any]:
    """This process as an owner: run id, pid, host and (on Linux) the process's start time."""
    return {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(), "started": _start_ticks(os.getpid())}


def parse_owner(text: str | None) -> dict[str, Any] | None:
    """An owner record read back from a marker, or None when the text is not one."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """True when a process ``pid`` runs on this host (not a zombie) and, when given, started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    fields = _stat_fields(pid)
    if not fields:
        return True  # no /proc (not Linux): the signal check is all there is
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return started is None or _start_ticks(pid) in (None, started)


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the owner of a record may still be working. Another host's owner counts as alive."""
    if owner.get("host") != socket.gethostname():
        return True
    started = owner.get("started")
    return pid_alive(int(owner["pid"]), started if isinstance(started, int) else None)
