"""The :class:`ProjectStore` itself: opening, migrating, transactions, locks and leases,
bulk appends, array payloads and meta. Its table methods come from :mod:`.catalogue`,
:mod:`.artifacts` and :mod:`.models`.

``CLIENT`` (what this process is, as other processes see it waiting) and ``LOCK_WAIT_S`` are
read from this module: the CLI and the app set ``project.CLIENT``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import sqlite_utils

from ..errors import ProjectError
from .artifacts import ArtifactTables
from .catalogue import CatalogueTables
from .encoding import CHUNK_MARK, _REDO_DAMAGED, DamagedArrays, _json, _Payload, arrays_from_buffer, is_chunked, now_iso
from .faults import _BUSY, _code, _who, process_alive, write_fault
from .models import ModelTables
from .schema import APPLICATION_ID, migrations


#: how long a write waits for another process's transaction before giving up (seconds)
LOCK_WAIT_S = 600.0
#: what this process is, in the writer note and in leases ("semid train P", set by the CLI / app)
CLIENT = " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])[:200]


_commits = 0  # outermost write transactions begun by any store of this process (see local_commits)
_open_writes = 0  # of those, how many have not yet committed or rolled back
_count_lock = threading.Lock()  # worker threads write too


def local_commits() -> int:
    """How many write transactions stores in this process have begun. With ``PRAGMA
    data_version`` (which counts every other connection's commits, this process's worker
    threads included) it tells the app's own writes from another process's.

    Counted when the write lock is taken, not after the commit: a look between a worker's
    COMMIT and the count would otherwise take the app's own write for another process's."""
    return _commits


def local_writes_open() -> int:
    """Write transactions of this process begun and not yet finished (see :func:`local_commits`)."""
    return _open_writes


def _count_local_write(begun: int, opened: int) -> None:
    global _commits, _open_writes
    with _count_lock:
        _commits += begun
        _open_writes += opened


#: appends of at least this many rows rebuild the table's indexes afterwards (see bulk_load)
BULK_INDEX_ROWS = 200_000
#: SQLite page cache during a bulk append (KiB)
BULK_CACHE_KB = 256 * 1024
_READ_PIECE = 1 << 21  # bytes per blob read call


# --------------------------------------------------------------------------- the store


class ProjectStore(CatalogueTables, ArtifactTables, ModelTables):
    """Open (or create) a ``.semid`` project file.

    Use :meth:`create` for a new file and :meth:`open` for an existing one; both apply any
    pending schema migrations. Every multi-step write goes through :meth:`atomic`.
    """

    def __init__(self, path: str | Path, *, create: bool = False, lock_wait_s: float | None = None,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        #: seconds a write waits for another process's transaction (default: LOCK_WAIT_S)
        self.lock_wait_s = LOCK_WAIT_S if lock_wait_s is None else float(lock_wait_s)
        #: called with one line when a write has to wait for another process (the CLI prints it)
        self.on_wait: Callable[[str], None] | None = None
        #: True when opening folded in the commits a crashed process left in the -wal file
        self.recovered = False
        #: True when the file (or its folder) cannot be written: reading works, writes raise ProjectError
        self.read_only = bool(read_only) and not create
        if create:
            if self.path.exists():
                raise ProjectError(f"{self.path}: already exists; open it or choose another name")
            if not self.path.parent.exists():
                raise ProjectError(f"{self.path}: folder {self.path.parent} does not exist")
        elif not self.path.exists():
            raise ProjectError(f"{self.path}: no such project file")
        wal = self._wal_path()
        wal_bytes = 0 if create or not wal.exists() else wal.stat().st_size
        try:
            conn = sqlite3.connect(str(self.path), timeout=30)
            self._check_application_id(conn, create)
        except sqlite3.DatabaseError as exc:
            raise ProjectError(f"{self.path}: not a SemID Studio project ({exc})") from None
        self.db = sqlite_utils.Database(conn)
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            try:
                if not self.read_only:  # a reader asked for (a training rank > 0) changes nothing
                    self.db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if write_fault(self.path, exc) is None or _code(exc).startswith(_BUSY) or create:
                    raise
                self.read_only = True  # reads still work; every write says why it cannot
            self.db.execute("PRAGMA synchronous = NORMAL")
            if create:
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if wal_bytes and not self.read_only:
                self.recovered = self._fold_wal()
            self._migrate()
            if create:
                self.set_meta("created", now_iso())
        except sqlite3.Error as exc:
            conn.close()
            fault = write_fault(self.path, exc)
            if fault is None:
                raise
            raise fault from None

    @classmethod
    def create(cls, path: str | Path, *, lock_wait_s: float | None = None) -> "ProjectStore":
        return cls(path, create=True, lock_wait_s=lock_wait_s)

    @classmethod
    def open(cls, path: str | Path, *, lock_wait_s: float | None = None, read_only: bool = False) -> "ProjectStore":
        """``read_only``: reads only (every write raises ProjectError), e.g. for the training
        processes beside rank 0 of a distributed run."""
        return cls(path, lock_wait_s=lock_wait_s, read_only=read_only)

    def _check_application_id(self, conn: sqlite3.Connection, create: bool) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if create or app_id == APPLICATION_ID:
            return
        n_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        conn.close()
        kind = "an empty SQLite file" if n_tables == 0 else "another SQLite database"
        raise ProjectError(f"{self.path}: not a SemID Studio project (it is {kind})")

    def _migrate(self) -> None:
        known = {m.name for m in migrations._migrations}
        applied = {m.name for m in migrations.applied(self.db)}
        if applied - known:
            raise ProjectError(
                f"{self.path}: made by a newer SemID Studio (schema steps "
                f"{sorted(applied - known)}); update the app to open it"
            )
        if known - applied:  # nothing to write for an up-to-date (perhaps read-only) project
            if self.read_only:
                raise ProjectError(f"{self.path}: is read-only and was made by an older SemID Studio; "
                                   "open a writable copy once so it can be updated")
            migrations.apply(self.db)

    def _wal_path(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    def _writer_path(self) -> Path:
        return self.path.with_name(self.path.name + "-writer")

    def _fold_wal(self) -> bool:
        """Fold a crashed process's -wal file into the main file; True if that happened.

        A -wal file with nobody else attached is what a killed process leaves: its commits are
        valid but live beside the project, so a user who copies only the .semid file would
        lose them. Leaving WAL mode needs sole access, which tells a crash from another live
        process (then the -wal file is its own and nothing is done).
        """
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            mode = self.db.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlite3.OperationalError:
            return False  # another process has the project open
        finally:
            self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.execute("PRAGMA journal_mode = WAL")
        return str(mode).lower() == "delete"

    def data_version(self) -> int:
        """Changes whenever another connection commits (``PRAGMA data_version``)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    @property
    def schema_version(self) -> int:
        return len(migrations.applied(self.db))

    # -- lifecycle

    def close(self) -> None:
        """Checkpoint the WAL back into the main file so the project is one file again."""
        if getattr(self, "db", None) is None:
            return
        try:
            if not self.read_only:
                _count_local_write(1, 0)  # the checkpoint moves other connections' data_version, as a commit does
                self.db.execute("PRAGMA busy_timeout = 1000")  # a busy project: the last to close folds it
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.db.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error:
            pass  # another connection still has it open (or the disk is full); it will checkpoint on its close
        self.db.conn.close()
        self.db = None  # type: ignore[assignment]

    def __enter__(self) -> "ProjectStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save_as(self, target: str | Path) -> Path:
        """Write a compact copy of the project to ``target`` (``VACUUM INTO``)."""
        target = Path(target)
        if target.exists():
            raise ProjectError(f"{target}: already exists")
        try:
            self.db.execute("VACUUM INTO ?", [str(target)])
        except sqlite3.Error as exc:
            with contextlib.suppress(OSError):
                target.unlink()  # a half-written copy is worse than none
            raise (write_fault(target, exc) or exc) from None
        return target

    @contextlib.contextmanager
    def atomic(self) -> Iterator["ProjectStore"]:
        """All writes inside succeed together or not at all (nested blocks are savepoints).

        The outermost block takes the write lock at once (``BEGIN IMMEDIATE``), waiting for
        another process's transaction if need be; sqlite errors that the user can act on
        (full disk, read-only file, a lock held too long) leave as one ``ProjectError``.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self
            return
        self._begin()
        _count_local_write(1, 1)
        try:
            yield self
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.rollback()
            fault = write_fault(self.path, exc, self.writer())
            if fault is None:
                raise
            raise fault from None
        finally:
            _count_local_write(0, -1)
            self._clear_writer_note()
        # copy the commit into the main file now (never waits): after a crash the .semid file
        # alone is then up to date, even for a user who copies only it
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, retried in one-second waits up to ``lock_wait_s``, saying whom it waits for."""
        if self.read_only:
            raise ProjectError(f"{self.path}: the project file is read-only; nothing was changed - fix its "
                               "permissions or work on a writable copy")
        conn = self.db.conn
        deadline = time.monotonic() + self.lock_wait_s
        told = False
        conn.execute("PRAGMA busy_timeout = 1000")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    holder = self.writer()
                    if not _code(exc).startswith(_BUSY) and "locked" not in str(exc):
                        raise (write_fault(self.path, exc, holder) or exc) from None
                    if time.monotonic() >= deadline:
                        raise ProjectError(f"{self.path}: {holder} has been writing to the project for over "
                                           f"{self.lock_wait_s:g} s; try again when it has finished") from None
                    if not told and self.on_wait is not None:
                        self.on_wait(f"waiting for {holder}, which is writing to {self.path.name} ...")
                    told = True
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")
        self._write_writer_note()

    def writer(self) -> str:
        """Who holds the project's write lock now, in words (from the ``-writer`` note)."""
        try:
            note = json.loads(self._writer_path().read_text())
        except (OSError, ValueError):
            return "another process"
        if note.get("pid") == os.getpid() or not process_alive(note.get("pid", 0), note.get("host")):
            return "another process"
        return _who(note)

    def _write_writer_note(self) -> None:
        # best effort: a read-only folder or a full disk must not stop the write it describes
        note = {"pid": os.getpid(), "host": socket.gethostname(), "command": CLIENT, "since": now_iso()}
        with contextlib.suppress(OSError):
            self._writer_path().write_text(json.dumps(note))

    def _clear_writer_note(self) -> None:
        path = self._writer_path()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()

    # -- leases: long jobs that must not run twice at once

    def live_lease(self, resource: str) -> tuple | None:
        """``(pid, host, command, since)`` of the lease on ``resource`` if its process still runs
        (this process included); a killed holder's lease is stale and reads as none."""
        row = self.db.execute("SELECT pid, host, command, since FROM leases WHERE resource = ?",
                              [resource]).fetchone()
        return row if row is not None and process_alive(row[0], row[1]) else None

    def lease_holder(self, resource: str) -> str | None:
        """Who holds ``resource`` (e.g. ``model:3``), in words, if a live process other than this one does."""
        row = self.live_lease(resource)
        if row is None:
            return None
        pid, host, command, since = row
        if pid == os.getpid() and host == socket.gethostname():
            return None
        return f"pid {pid} ({command}, since {since})"

    def claim(self, resource: str, what: str) -> None:
        """Take ``resource`` for this process; a ProjectError naming the holder if a live process has it.

        ``what`` names the resource for the message ("model #3").
        """
        with self.atomic():
            holder = self.lease_holder(resource)
            if holder is not None:
                raise ProjectError(f"{self.path}: {what} is in use by {holder}; wait for it to finish")
            self.db.execute(
                "INSERT INTO leases(resource, pid, host, command, since) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(resource) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
                "command = excluded.command, since = excluded.since",
                [resource, os.getpid(), socket.gethostname(), CLIENT, now_iso()],
            )

    def release(self, resource: str) -> None:
        """Give ``resource`` back (only if this process holds it)."""
        with self.atomic():
            self.db.execute("DELETE FROM leases WHERE resource = ? AND pid = ? AND host = ?",
                            [resource, os.getpid(), socket.gethostname()])

    # -- bulk appends

    @contextlib.contextmanager
    def bulk_load(self, table: str, rows: int) -> Iterator["ProjectStore"]:
        """Make a large append of ``rows`` rows to ``table`` fast; use inside :meth:`atomic`.

        SQLite's page cache is raised for the load (its 2 MB default makes every index insert
        a disk read once an index outgrows it), and when the append is large against what the
        table holds (at least BULK_INDEX_ROWS and as many rows as it has), the table's indexes
        are dropped and built again afterwards: one sort per index instead of a B-tree insert
        per row, 2-3x faster at a million interactions. Both happen inside the caller's
        transaction, so a failure or a cancel rolls the indexes back with the rows.
        """
        conn = self.db.conn
        if not conn.in_transaction:
            raise RuntimeError("bulk_load belongs inside store.atomic()")
        before = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KB}")
        indexes: list[str] = []
        existing = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if rows >= max(BULK_INDEX_ROWS, existing):
            found = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                 "AND sql IS NOT NULL", [table]).fetchall()  # not the UNIQUE/PK autoindexes
            for name, sql in found:
                conn.execute(f'DROP INDEX "{name}"')
                indexes.append(sql)
        try:
            yield self
        finally:
            with contextlib.suppress(sqlite3.Error):  # after an error the rollback restores them anyway
                for sql in indexes:
                    conn.execute(sql)
            conn.execute(f"PRAGMA cache_size = {int(before)}")

    # -- array payloads (see "large array blobs" in encoding.py)

    def _store_chunks(self, owner: str, rowid: int, col: str, payload: _Payload) -> None:
        """Write a payload's chunks for ``owner`` row ``rowid`` (replacing any it had); inside atomic()."""
        self.db.execute("DELETE FROM blob_chunks WHERE owner = ? AND owner_id = ? AND col = ?", [owner, rowid, col])
        if payload.chunks is None:
            return
        for seq, piece in enumerate(payload.chunks):
            self.db.execute("INSERT INTO blob_chunks(owner, owner_id, col, seq, data) VALUES (?, ?, ?, ?, ?)",
                            [owner, int(rowid), col, seq, piece])

    def _read_blob(self, table: str, col: str, rowid: int, into: np.ndarray | None = None) -> np.ndarray:
        """One stored BLOB as a uint8 array, read in small pieces (``into``: the buffer to fill)."""
        with self.db.conn.blobopen(table, col, int(rowid), readonly=True) as blob:
            size = len(blob)
            raw = np.empty(size, dtype=np.uint8) if into is None else into
            pos = 0
            while pos < size:
                piece = blob.read(min(_READ_PIECE, size - pos))
                raw[pos : pos + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
                pos += len(piece)
        return raw

    def read_arrays(self, table: str, col: str, rowid: int, *, needs: str | None = None,
                    where: str | None = None) -> dict[str, np.ndarray]:
        """The arrays stored in column ``col`` of row ``rowid`` of ``table``, chunked or not.

        ``needs``: an array it must hold; ``where``: how to name the row in an error. Damaged
        bytes are one ProjectError line naming the project, table, row and column.
        """
        try:
            arrays = self._read_arrays(table, col, rowid)
            if needs is not None and needs not in arrays:
                raise DamagedArrays(f"no '{needs}' array in it")
            return arrays
        except DamagedArrays as exc:
            raise self._damaged(table, rowid if where is None else where, col, exc) from None

    def _read_arrays(self, table: str, col: str, rowid: int) -> dict[str, np.ndarray]:
        head = self.db.execute(f"SELECT substr({col}, 1, 256), length({col}) FROM {table} WHERE rowid = ?",
                               [int(rowid)]).fetchone()
        if head is None or head[0] is None or not head[1]:
            return {}
        if not is_chunked(head[0]):
            return arrays_from_buffer(self._read_blob(table, col, rowid))
        try:
            info = json.loads(bytes(head[0])[len(CHUNK_MARK):])
            total, n_chunks = int(info["bytes"]), int(info["chunks"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedArrays(f"unreadable chunk marker ({exc})") from None
        rows = self.db.execute("SELECT id, length(data) FROM blob_chunks WHERE owner = ? AND owner_id = ? "
                               "AND col = ? ORDER BY seq", [table, int(rowid), col]).fetchall()
        if len(rows) != n_chunks or sum(n for _, n in rows) != total:
            raise DamagedArrays(f"incomplete ({len(rows)} of {n_chunks} pieces)")
        raw = np.empty(total, dtype=np.uint8)
        pos = 0
        for chunk_id, n in rows:
            self._read_blob("blob_chunks", "data", chunk_id, raw[pos : pos + n])
            pos += n
        return arrays_from_buffer(raw)

    def _damaged(self, table: str, row: Any, column: str, exc: Exception) -> ProjectError:
        row_text = f"#{row}" if isinstance(row, int) else str(row)
        redo = _REDO_DAMAGED.get(table, "compute it again")
        return ProjectError(f"{self.path}: table {table}, row {row_text}, column {column} is damaged: {exc}. "
                            f"The rest of the project is unaffected; {redo} to replace it")

    # -- meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self.atomic():
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, _json(value)],
            )

    # -- summary

    def summary(self) -> dict:
        """Counts and the list of embedding sets and quantiser runs (``semid info``)."""
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "items": self.item_count(),
            "interactions": self.interaction_count(),
            "users": self.db.execute("SELECT count(DISTINCT user_id) FROM interactions").fetchone()[0],
            "queries": self.query_count(),
            "template": self.get_meta("template"),
            "embedding_sets": [
                {k: v for k, v in vars(e).items() if k != "vectors"} for e in self.list_embedding_sets()
            ],
            "quantizer_runs": [
                {k: v for k, v in vars(r).items() if k not in ("codes", "codebooks", "model_state")}
                for r in self.list_quantizer_runs()
            ],
            "active_run": self.active_run_id(),
            "models": [vars(m) | {"history": None} for m in self.list_models()],
            "evaluations": self.list_evaluations(),
        }
