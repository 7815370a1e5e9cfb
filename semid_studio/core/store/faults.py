"""What a failed write means to the user: sqlite's busy / full / read-only / I-O errors as
one :class:`~semid_studio.core.errors.ProjectError` line, and whether another writer is alive
(docs/crash_safety.md)."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

from ..errors import ProjectError


def process_alive(pid: int, host: str | None = None) -> bool:
    """Whether process ``pid`` still runs (another host's process is assumed to)."""
    if host is not None and host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _who(note: dict | None) -> str:
    if not note:
        return "another process"
    return f"pid {note.get('pid')} ({note.get('command', '?')})"


_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")


def _code(exc: BaseException) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def write_fault(path: Path, exc: BaseException, holder: str = "another process") -> ProjectError | None:
    """A sqlite3 error from a write as the user's one line, or None for a programming error."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code, text = _code(exc), str(exc)
    if code.startswith("SQLITE_READONLY") or "readonly" in text:
        return ProjectError(f"{path}: the project file is read-only ({text}); nothing was changed - "
                            "fix its permissions or work on a writable copy")
    if code == "SQLITE_FULL" or "disk is full" in text:
        return ProjectError(f"{path}: the disk is full ({text}); nothing was changed - free some space and "
                            "run the step again")
    if code.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return ProjectError(f"{path}: could not write the project file ({text}: the disk may be full or a file "
                            "size limit reached); nothing was changed")
    if code.startswith(_BUSY) or "database is locked" in text:
        return ProjectError(f"{path}: {holder} is writing to the project; try again when it has finished")
    if code == "SQLITE_CANTOPEN":
        return ProjectError(f"{path}: cannot open the project file for writing ({text})")
    return None
