"""The project file: one SQLite database per project (``.semid``), through :class:`ProjectStore`.

Why SQLite: one file that the user can copy, mail or open with any SQLite tool; atomic
multi-step writes; no server. The schema is versioned with sqlite-utils ``Migrations`` and the
file is marked with a fixed ``PRAGMA application_id`` so that we never mistake another
database for a project (or the other way round).

What lives here
---------------
- ``items``: the catalogue. ``idx`` is a dense 0-based row number that every array in the
  project (embeddings, SID codes, model vocabularies) is aligned to; ``item_id`` is the
  user's own id. Other fields are kept as a JSON object (``attrs``).
- ``interactions``: (user, item, time); ``id`` keeps the file order, which breaks ties
  between equal timestamps (Amazon data has day resolution).
- ``queries``: search queries with the item they should find and their split.
- ``embedding_sets``: item vectors plus the model, template and strategy that made them.
- ``quantizer_runs`` + ``sid_assignments``: a quantiser's spec, codebooks, metrics and the SID
  of every item.
- ``models`` + ``checkpoints`` and ``evaluations``: for the generative model and its reports.

Arrays are stored as safetensors bytes (dtype and shape included); nothing is ever pickled,
so opening a project never executes code stored in it.

Threads: a store (its sqlite3 connection) belongs to the thread that opened it. A worker
thread opens its own store on the same path; WAL mode lets it write while the GUI reads.

Faults (docs/crash_safety.md): every write is one short ``BEGIN IMMEDIATE`` transaction
(:meth:`ProjectStore.atomic`). A writer that finds another process mid-transaction waits,
saying whom it waits for (the ``<project>-writer`` note names the pid and command), and gives
up with a :class:`ProjectError` after ``lock_wait_s``. A full disk, a file-size limit or a
read-only file become one ``ProjectError`` line naming the project; the transaction is rolled
back, so the project is unchanged. Opening a project that a killed process left with a
``-wal`` file folds those commits back into the main file (``store.recovered``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import sqlite_utils
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save
from sqlite_utils import Migrations

from .errors import ProjectError
from .wording import hint

#: "SEMD" — marks a file as a SemID Studio project (PRAGMA application_id)
APPLICATION_ID = 0x53454D44
SUFFIX = ".semid"

migrations = Migrations("semid_studio")

#: how long a write waits for another process's transaction before giving up (seconds)
LOCK_WAIT_S = 600.0
#: what this process is, in the writer note and in leases ("semid train P", set by the CLI / app)
CLIENT = " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])[:200]


_commits = 0  # outermost commits by any store of this process (see local_commits)


def local_commits() -> int:
    """How many write transactions stores in this process have committed. With ``PRAGMA
    data_version`` (which counts every other connection's commits, this process's worker
    threads included) it tells the app's own writes from another process's."""
    return _commits


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


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays -> safetensors bytes (no pickle; dtype and shape are in the header)."""
    return _st_save({k: np.ascontiguousarray(v) for k, v in arrays.items()})


#: what gives a damaged stored value back (ProjectStore.read_arrays), by table
_REDO_DAMAGED = {"embedding_sets": "embed the items again", "quantizer_runs": "quantise again",
                 "checkpoints": "train the model again", "embedding_artifacts": "build the embedding set again"}


class DamagedArrays(ValueError):
    """Stored bytes that are not a safetensors payload (see ProjectStore.read_arrays)."""


def decode_arrays(blob: bytes | None) -> dict[str, np.ndarray]:
    """safetensors bytes -> arrays. Only a header and raw numbers are read: nothing in a damaged
    or hostile payload is ever executed (no pickle)."""
    if not blob:
        return {}
    try:
        return dict(_st_load(bytes(blob)))
    except Exception as exc:  # safetensors raises its own SafetensorError (and others) on bad bytes
        raise DamagedArrays(f"not a safetensors payload ({len(blob):,} bytes: {exc})") from None


# --------------------------------------------------------------------------- large array blobs
#
# SQLite refuses any single value over 1 GB (SQLITE_MAX_LENGTH), and a million 384-d float32
# vectors are 1.5 GB. An array payload larger than BLOB_CHUNK_BYTES is therefore written as
# the rows of ``blob_chunks`` (in order, they are the same safetensors bytes), and its own
# column holds a short marker instead. Payloads up to that size are stored exactly as before.
# Reading assembles the chunks straight into one numpy buffer in small pieces, so a payload
# costs its own size in memory once (not bytes + arrays), and no single C call holds the GIL
# for long (the GUI reads vectors in worker threads).

#: appends of at least this many rows rebuild the table's indexes afterwards (see bulk_load)
BULK_INDEX_ROWS = 200_000
#: SQLite page cache during a bulk append (KiB)
BULK_CACHE_KB = 256 * 1024
#: payloads larger than this are split into chunks of this size (bytes)
BLOB_CHUNK_BYTES = 64 << 20
#: what a chunked payload's own column starts with (followed by JSON: total bytes, chunks)
CHUNK_MARK = b"SEMID-CHUNKED\n"
_READ_PIECE = 1 << 21  # bytes per blob read call
_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16,
              "I32": np.int32, "I64": np.int64, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32,
              "U64": np.uint64, "BOOL": np.bool_}
_ST_NAMES = {np.dtype(v).newbyteorder("<"): k for k, v in _ST_DTYPES.items()}


@dataclass
class _Payload:
    """Arrays ready to be stored: ``value`` goes in the column, ``chunks`` (if any) in blob_chunks."""

    value: bytes | None
    chunks: Iterator[Any] | None = None


def _payload(arrays: dict[str, np.ndarray] | None) -> _Payload:
    """Encode arrays for one BLOB column: safetensors bytes, or a marker plus chunks when large."""
    if not arrays:
        return _Payload(None)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    # the same layout safetensors writes: 8-byte header length, JSON header, then the data
    header: dict[str, Any] = {}
    offset = 0
    names = sorted(arrays)
    for name in names:
        a = arrays[name]
        if a.dtype.byteorder == ">":
            a = arrays[name] = a.astype(a.dtype.newbyteorder("<"))
        kind = _ST_NAMES.get(a.dtype.newbyteorder("<"))
        if kind is None:
            raise ValueError(f"cannot store array '{name}' of dtype {a.dtype}")
        header[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # aligned data, as safetensors pads its header
    head = np.uint64(len(text)).astype("<u8").tobytes() + text
    total = len(head) + offset
    if total <= BLOB_CHUNK_BYTES:
        return _Payload(encode_arrays(arrays))  # one value, exactly as it has always been stored
    parts = [memoryview(head)] + [memoryview(arrays[n].reshape(-1).view(np.uint8)) for n in names]
    n_chunks = -(-total // BLOB_CHUNK_BYTES)
    marker = CHUNK_MARK + json.dumps({"bytes": total, "chunks": n_chunks}).encode()
    return _Payload(marker, _chunk_pieces(parts, BLOB_CHUNK_BYTES))


def _chunk_pieces(parts: list[memoryview], size: int) -> Iterator[Any]:
    """The concatenation of ``parts`` cut into pieces of ``size`` bytes (the last may be shorter);
    a piece that lies inside one part is a view of it, not a copy."""
    pending = bytearray()
    for part in parts:
        pos, n = 0, len(part)
        while pos < n:
            if not pending and n - pos >= size:
                yield part[pos : pos + size]
                pos += size
                continue
            take = min(size - len(pending), n - pos)
            pending += part[pos : pos + take]
            pos += take
            if len(pending) == size:
                yield bytes(pending)
                pending = bytearray()
    if pending:
        yield bytes(pending)


def is_chunked(value: bytes | None) -> bool:
    return value is not None and bytes(value[: len(CHUNK_MARK)]) == CHUNK_MARK


def arrays_from_buffer(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays of safetensors bytes held in a uint8 numpy buffer, as views of it where aligned.
    Bytes that are not such a payload raise DamagedArrays (only a JSON header is parsed)."""
    if len(raw) == 0:
        return {}
    try:
        header_len = int(np.frombuffer(raw[:8].tobytes(), dtype="<u8")[0])
        if header_len > len(raw) - 8:
            raise ValueError("header longer than the payload")
        header = json.loads(raw[8 : 8 + header_len].tobytes())
        base = 8 + header_len
        out = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, stop = entry["data_offsets"]
            if not 0 <= start <= stop <= len(raw) - base:
                raise ValueError(f"array '{name}' lies outside the payload")
            dtype = np.dtype(_ST_DTYPES[entry["dtype"]]).newbyteorder("<")
            array = raw[base + start : base + stop].view(dtype).reshape(entry["shape"])
            out[name] = array if array.flags.aligned else array.copy()
        return out
    except Exception as exc:  # any malformed header or layout
        raise DamagedArrays(f"not a safetensors payload ({len(raw):,} bytes: {exc})") from None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _loads(text: str | None, default: Any = None) -> Any:
    return default if text in (None, "") else json.loads(text)


# --------------------------------------------------------------------------- schema


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(
        """CREATE TABLE items (
            idx INTEGER PRIMARY KEY,
            item_id TEXT NOT NULL UNIQUE,
            title TEXT,
            attrs TEXT NOT NULL DEFAULT '{}',
            added_at TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE interactions (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            item_idx INTEGER NOT NULL REFERENCES items(idx),
            ts REAL NOT NULL,
            rating REAL
        )"""
    )
    db.execute("CREATE INDEX interactions_user ON interactions(user_id, ts, id)")
    db.execute("CREATE INDEX interactions_item ON interactions(item_idx)")
    db.execute(
        """CREATE TABLE queries (
            id INTEGER PRIMARY KEY,
            query_id TEXT,
            text TEXT NOT NULL,
            item_idx INTEGER NOT NULL REFERENCES items(idx),
            split TEXT NOT NULL DEFAULT 'train',
            user_id TEXT,
            ts REAL,
            source TEXT NOT NULL DEFAULT 'imported',
            protocol TEXT
        )"""
    )
    db.execute("CREATE INDEX queries_item ON queries(item_idx)")
    db.execute(
        """CREATE TABLE embedding_sets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            template TEXT,
            strategy TEXT NOT NULL DEFAULT 'content',
            cache_key TEXT NOT NULL,
            n_items INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            vectors BLOB NOT NULL,
            created TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX embedding_sets_key ON embedding_sets(cache_key)")
    db.execute(
        """CREATE TABLE quantizer_runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            embedding_set_id INTEGER NOT NULL REFERENCES embedding_sets(id),
            method TEXT NOT NULL,
            spec TEXT NOT NULL,
            seed INTEGER NOT NULL,
            n_items INTEGER NOT NULL,
            n_levels INTEGER NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}',
            codebooks BLOB,
            model_state BLOB,
            codes BLOB NOT NULL,
            created TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE sid_assignments (
            run_id INTEGER NOT NULL REFERENCES quantizer_runs(id) ON DELETE CASCADE,
            item_idx INTEGER NOT NULL REFERENCES items(idx),
            sid TEXT NOT NULL,
            PRIMARY KEY (run_id, item_idx)
        )"""
    )
    db.execute("CREATE UNIQUE INDEX sid_assignments_sid ON sid_assignments(run_id, sid)")
    db.execute(
        """CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            quantizer_run_id INTEGER REFERENCES quantizer_runs(id),
            spec TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'new',
            step INTEGER NOT NULL DEFAULT 0,
            best_step INTEGER,
            best_metric REAL,
            history TEXT NOT NULL DEFAULT '[]',
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            step INTEGER NOT NULL,
            weights BLOB NOT NULL,
            train_state BLOB,
            extra TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            UNIQUE (model_id, tag)
        )"""
    )
    db.execute(
        """CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            model_id INTEGER REFERENCES models(id) ON DELETE SET NULL,
            task TEXT NOT NULL,
            split TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL
        )"""
    )


@migrations()
def m002_embedding_artifacts(db: sqlite_utils.Database) -> None:
    # What an embedding set needs beyond its vectors: a fine-tuned encoder's weights (so the
    # query side can be encoded with the same encoder later), the ids of the training queries
    # it saw (leakage audits), projections of fused sets. Arrays as safetensors bytes.
    db.execute(
        """CREATE TABLE embedding_artifacts (
            embedding_set_id INTEGER NOT NULL REFERENCES embedding_sets(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            arrays BLOB NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            PRIMARY KEY (embedding_set_id, name)
        )"""
    )


@migrations()
def m003_leases(db: sqlite_utils.Database) -> None:
    # Long jobs that must not run twice at once (two trainers on one model) claim a resource
    # here; a lease whose process is gone (kill -9) is stale and simply taken over.
    db.execute(
        """CREATE TABLE leases (
            resource TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            command TEXT NOT NULL,
            since TEXT NOT NULL
        )"""
    )


@migrations()
def m004_blob_chunks(db: sqlite_utils.Database) -> None:
    # Array payloads over BLOB_CHUNK_BYTES (SQLite stores no value over 1 GB): the row of
    # ``owner`` (table) with rowid ``owner_id`` holds a marker in column ``col``, and its bytes
    # are these chunks in ``seq`` order. Deleting the row deletes its chunks.
    db.execute(
        """CREATE TABLE blob_chunks (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            owner_id INTEGER NOT NULL,
            col TEXT NOT NULL,
            seq INTEGER NOT NULL,
            data BLOB NOT NULL,
            UNIQUE (owner, owner_id, col, seq)
        )"""
    )
    for table in ("embedding_sets", "quantizer_runs", "checkpoints", "embedding_artifacts"):
        db.execute(f"CREATE TRIGGER {table}_chunks AFTER DELETE ON {table} BEGIN "
                   f"DELETE FROM blob_chunks WHERE owner = '{table}' AND owner_id = old.rowid; END")


# --------------------------------------------------------------------------- faults

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


# --------------------------------------------------------------------------- records


@dataclass
class EmbeddingSet:
    id: int
    name: str
    model: str
    template: str | None
    strategy: str
    cache_key: str
    n_items: int
    dim: int
    params: dict
    created: str
    vectors: np.ndarray | None = None  # (n_items, dim) float32, aligned to items.idx

    def describe(self) -> str:
        return f"#{self.id} {self.name} ({self.model}, {self.n_items} x {self.dim})"


@dataclass
class QuantizerRun:
    id: int
    name: str
    embedding_set_id: int
    method: str
    spec: dict
    seed: int
    n_items: int
    n_levels: int  # semantic levels, without the dedup level
    metrics: dict
    created: str
    codes: np.ndarray | None = None  # (n_items, n_levels + 1) int, last column = dedup code
    codebooks: dict[str, np.ndarray] = field(default_factory=dict)
    model_state: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ModelRecord:
    id: int
    name: str
    kind: str
    quantizer_run_id: int | None
    spec: dict
    status: str
    step: int
    best_step: int | None
    best_metric: float | None
    history: list
    created: str
    updated: str


@dataclass
class Checkpoint:
    model_id: int
    tag: str
    step: int
    weights: dict[str, np.ndarray]
    train_state: dict[str, np.ndarray]
    extra: dict


# --------------------------------------------------------------------------- the store


class ProjectStore:
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
            self._clear_writer_note()
        global _commits
        _commits += 1
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

    def lease_holder(self, resource: str) -> str | None:
        """Who holds ``resource`` (e.g. ``model:3``), in words, if a live process other than this one does."""
        row = self.db.execute("SELECT pid, host, command, since FROM leases WHERE resource = ?",
                              [resource]).fetchone()
        if row is None:
            return None
        pid, host, command, since = row
        if (pid == os.getpid() and host == socket.gethostname()) or not process_alive(pid, host):
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

    # -- array payloads (see "large array blobs" above)

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

    # -- catalogue

    def item_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM items").fetchone()[0]

    def item_ids(self) -> np.ndarray:
        """All item ids, in ``idx`` order (position i = item idx i)."""
        rows = self.db.execute("SELECT item_id FROM items ORDER BY idx").fetchall()
        return np.array([r[0] for r in rows], dtype=object)

    def item_index(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT item_id, idx FROM items").fetchall())

    def add_items(self, records: Sequence[dict]) -> int:
        """Append items: dicts with ``item_id``, optional ``title`` and any other fields.

        Returns the idx of the first new item. Ids must be new (the importer checks and
        reports duplicates with line numbers before calling this).
        """
        start = self.item_count()
        added = now_iso()
        rows = []
        for offset, rec in enumerate(records):
            attrs = {k: v for k, v in rec.items() if k not in ("item_id", "idx")}
            title = attrs.get("title")
            rows.append((start + offset, str(rec["item_id"]), None if title is None else str(title),
                         _json(attrs), added))
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO items(idx, item_id, title, attrs, added_at) VALUES (?, ?, ?, ?, ?)", rows
            )
        return start

    def get_items(self, idxs: Iterable[int]) -> list[dict]:
        """Items as dicts (``idx``, ``item_id``, ``title`` and every attribute), in the order asked."""
        idxs = [int(i) for i in idxs]
        if not idxs:
            return []
        found: dict[int, dict] = {}
        for chunk_start in range(0, len(idxs), 900):
            chunk = idxs[chunk_start : chunk_start + 900]
            marks = ",".join("?" * len(chunk))
            for idx, item_id, title, attrs in self.db.execute(
                f"SELECT idx, item_id, title, attrs FROM items WHERE idx IN ({marks})", chunk
            ):
                rec = {"idx": idx, "item_id": item_id, **json.loads(attrs)}
                rec["title"] = title
                found[idx] = rec
        missing = [i for i in idxs if i not in found]
        if missing:
            raise ProjectError(f"item idx {missing[0]} is not in the catalogue")
        return [found[i] for i in idxs]

    def items_frame(self, fields: Sequence[str] | None = None) -> pd.DataFrame:
        """The catalogue as a DataFrame indexed by ``idx`` with item_id, title and attributes.

        ``fields`` limits the attribute columns (all attributes when None).
        """
        rows = self.db.execute("SELECT idx, item_id, title, attrs FROM items ORDER BY idx").fetchall()
        records = []
        for idx, item_id, title, attrs in rows:
            a = json.loads(attrs)
            if fields is not None:
                a = {k: a.get(k) for k in fields}
            a.pop("title", None)
            records.append({"idx": idx, "item_id": item_id, "title": title, **a})
        frame = pd.DataFrame.from_records(records, columns=None if records else ["idx", "item_id", "title"])
        return frame.set_index("idx")

    def item_fields(self) -> list[str]:
        """Attribute names present in the catalogue (from a sample of items)."""
        names: dict[str, None] = {}
        for (attrs,) in self.db.execute("SELECT attrs FROM items ORDER BY idx LIMIT 500"):
            for k in json.loads(attrs):
                names[k] = None
        return list(names)

    def search_items(self, text: str, limit: int = 50) -> list[dict]:
        """Items whose id or title contains ``text`` (case-insensitive)."""
        pattern = f"%{text}%"
        rows = self.db.execute(
            "SELECT idx FROM items WHERE title LIKE ? OR item_id LIKE ? ORDER BY idx LIMIT ?",
            [pattern, pattern, limit],
        ).fetchall()
        return self.get_items(r[0] for r in rows)

    # -- interactions

    def interaction_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM interactions").fetchone()[0]

    def add_interactions(self, frame: pd.DataFrame) -> int:
        """Append interactions: columns ``user_id``, ``item_idx``, ``ts`` and optional ``rating``."""
        rating = frame["rating"] if "rating" in frame else pd.Series([None] * len(frame))
        rows = zip(
            frame["user_id"].astype(str).tolist(),
            frame["item_idx"].astype(int).tolist(),
            frame["ts"].astype(float).tolist(),
            [None if pd.isna(r) else float(r) for r in rating.tolist()],
        )
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO interactions(user_id, item_idx, ts, rating) VALUES (?, ?, ?, ?)", rows
            )
        return len(frame)

    def interactions_frame(self) -> pd.DataFrame:
        """All interactions sorted by user, time and file order (``user_id, item_idx, ts``)."""
        return pd.read_sql_query(
            "SELECT user_id, item_idx, ts FROM interactions ORDER BY user_id, ts, id", self.db.conn
        )

    def user_history(self, user_id: str) -> list[int]:
        rows = self.db.execute(
            "SELECT item_idx FROM interactions WHERE user_id = ? ORDER BY ts, id", [user_id]
        ).fetchall()
        return [r[0] for r in rows]

    def users(self, limit: int | None = None, like: str | None = None) -> list[tuple[str, int]]:
        """(user_id, number of interactions), most active first."""
        sql = "SELECT user_id, count(*) AS n FROM interactions"
        args: list = []
        if like:
            sql += " WHERE user_id LIKE ?"
            args.append(f"%{like}%")
        sql += " GROUP BY user_id ORDER BY n DESC, user_id"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [(u, n) for u, n in self.db.execute(sql, args).fetchall()]

    def repeat_share(self) -> float:
        """Share of interactions that repeat an item the same user had before (0.0: nobody
        repeats, so a recommender should leave a user's history out of its list)."""
        total, distinct = self.db.execute(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT user_id, item_idx FROM interactions)) "
            "FROM interactions").fetchone()
        return (total - distinct) / total if total else 0.0

    # -- queries

    def query_count(self, split: str | None = None) -> int:
        if split is None:
            return self.db.execute("SELECT count(*) FROM queries").fetchone()[0]
        return self.db.execute("SELECT count(*) FROM queries WHERE split = ?", [split]).fetchone()[0]

    def add_queries(self, frame: pd.DataFrame, *, source: str = "imported", protocol: dict | None = None) -> int:
        """Append queries: columns ``text``, ``item_idx`` and optional ``query_id``, ``split``,
        ``user_id``, ``ts``. ``protocol`` records how generated queries were made."""
        n = len(frame)

        def col(name: str, default: Any = None) -> list:
            if name not in frame:
                return [default] * n
            return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in frame[name].tolist()]

        rows = zip(
            [None if q is None else str(q) for q in col("query_id")],
            frame["text"].astype(str).tolist(),
            frame["item_idx"].astype(int).tolist(),
            [s or "train" for s in col("split", "train")],
            [None if u is None else str(u) for u in col("user_id")],
            [None if t is None else float(t) for t in col("ts")],
            [source] * n,
            [None if protocol is None else _json(protocol)] * n,
        )
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO queries(query_id, text, item_idx, split, user_id, ts, source, protocol) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return n

    def queries_frame(self, split: str | None = None, source: str | None = None) -> pd.DataFrame:
        sql = "SELECT id, query_id, text, item_idx, split, user_id, ts, source FROM queries"
        where, args = [], []
        if split is not None:
            where.append("split = ?")
            args.append(split)
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return pd.read_sql_query(sql + " ORDER BY id", self.db.conn, params=args)

    def delete_queries(self, source: str | None = None) -> int:
        with self.atomic():
            if source is None:
                cur = self.db.execute("DELETE FROM queries")
            else:
                cur = self.db.execute("DELETE FROM queries WHERE source = ?", [source])
        return cur.rowcount

    # -- embedding sets

    def save_embedding_set(
        self,
        *,
        name: str,
        model: str,
        template: str | None,
        strategy: str,
        cache_key: str,
        vectors: np.ndarray,
        params: dict | None = None,
    ) -> int:
        """Store an embedding set; ``vectors`` may be a ``streamed.StreamedArray`` (read block by
        block inside this transaction, never whole in memory)."""
        if hasattr(vectors, "stream_payload"):
            payload = vectors.stream_payload("vectors")
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            payload = _payload({"vectors": vectors})
        if len(vectors.shape) != 2:
            raise ValueError("vectors must be 2-D")
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO embedding_sets(name, model, template, strategy, cache_key, n_items, dim, "
                "params, vectors, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, model, template, strategy, cache_key, int(vectors.shape[0]), int(vectors.shape[1]),
                 _json(params or {}), payload.value, now_iso()],
            )
            set_id = int(cur.lastrowid)
            self._store_chunks("embedding_sets", set_id, "vectors", payload)
        return set_id

    _EMB_COLS = "id, name, model, template, strategy, cache_key, n_items, dim, params, created"

    def _embedding_from_row(self, row: tuple) -> EmbeddingSet:
        id_, name, model, template, strategy, key, n, dim, params, created = row
        return EmbeddingSet(id_, name, model, template, strategy, key, n, dim, _loads(params, {}), created)

    def list_embedding_sets(self) -> list[EmbeddingSet]:
        rows = self.db.execute(f"SELECT {self._EMB_COLS} FROM embedding_sets ORDER BY id").fetchall()
        return [self._embedding_from_row(r) for r in rows]

    def find_embedding_set(self, cache_key: str) -> EmbeddingSet | None:
        """The newest set made with this cache key (model + template + strategy), without vectors."""
        row = self.db.execute(
            f"SELECT {self._EMB_COLS} FROM embedding_sets WHERE cache_key = ? ORDER BY id DESC LIMIT 1",
            [cache_key],
        ).fetchone()
        return None if row is None else self._embedding_from_row(row)

    def load_embedding_set(self, set_id: int | None = None) -> EmbeddingSet:
        """An embedding set with its vectors; the newest one when ``set_id`` is None."""
        if set_id is None:
            row = self.db.execute(f"SELECT {self._EMB_COLS} FROM embedding_sets ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                raise ProjectError(f"{self.path}: has no embeddings yet; {hint('embed')} first")
        else:
            row = self.db.execute(f"SELECT {self._EMB_COLS} FROM embedding_sets WHERE id = ?", [set_id]).fetchone()
            if row is None:
                raise ProjectError(f"{self.path}: no embedding set #{set_id}")
        emb = self._embedding_from_row(row)
        emb.vectors = self.read_arrays("embedding_sets", "vectors", emb.id, needs="vectors")["vectors"]
        return emb

    # -- quantiser runs and SIDs

    def save_quantizer_run(
        self,
        *,
        name: str,
        embedding_set_id: int,
        method: str,
        spec: dict,
        seed: int,
        codes: np.ndarray,
        sid_strings: Sequence[str],
        metrics: dict,
        codebooks: dict[str, np.ndarray] | None = None,
        model_state: dict[str, np.ndarray] | None = None,
    ) -> int:
        """Store a run and the SID of every item, in one transaction."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or len(sid_strings) != codes.shape[0]:
            raise ValueError("codes must be (n_items, levels + 1) with one SID string per item")
        payloads = {"codebooks": _payload(codebooks), "model_state": _payload(model_state),
                    "codes": _payload({"codes": codes.astype(np.int32)})}
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO quantizer_runs(name, embedding_set_id, method, spec, seed, n_items, n_levels, "
                "metrics, codebooks, model_state, codes, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, int(embedding_set_id), method, _json(spec), int(seed), int(codes.shape[0]),
                 int(codes.shape[1] - 1), _json(metrics), payloads["codebooks"].value,
                 payloads["model_state"].value, payloads["codes"].value, now_iso()],
            )
            run_id = int(cur.lastrowid)
            for col, payload in payloads.items():
                self._store_chunks("quantizer_runs", run_id, col, payload)
            self.db.conn.executemany(
                "INSERT INTO sid_assignments(run_id, item_idx, sid) VALUES (?, ?, ?)",
                ((run_id, i, s) for i, s in enumerate(sid_strings)),
            )
        return run_id

    _RUN_COLS = "id, name, embedding_set_id, method, spec, seed, n_items, n_levels, metrics, created"

    def _run_from_row(self, row: tuple) -> QuantizerRun:
        id_, name, emb, method, spec, seed, n, levels, metrics, created = row
        return QuantizerRun(id_, name, emb, method, _loads(spec, {}), seed, n, levels, _loads(metrics, {}), created)

    def list_quantizer_runs(self) -> list[QuantizerRun]:
        rows = self.db.execute(f"SELECT {self._RUN_COLS} FROM quantizer_runs ORDER BY id").fetchall()
        return [self._run_from_row(r) for r in rows]

    def load_quantizer_run(self, run_id: int | None = None, *, with_arrays: bool = True) -> QuantizerRun:
        """A quantiser run with codes, codebooks and model state; the active run when None."""
        if run_id is None:
            run_id = self.active_run_id()
            if run_id is None:
                raise ProjectError(f"{self.path}: has no Semantic IDs yet; {hint('quantize')} first")
        row = self.db.execute(f"SELECT {self._RUN_COLS} FROM quantizer_runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise ProjectError(f"{self.path}: no quantiser run #{run_id}")
        run = self._run_from_row(row)
        if with_arrays:
            run.codes = self.read_arrays("quantizer_runs", "codes", run_id, needs="codes")["codes"].astype(np.int64)
            run.codebooks = self.read_arrays("quantizer_runs", "codebooks", run_id)
            run.model_state = self.read_arrays("quantizer_runs", "model_state", run_id)
        return run

    def update_run_metrics(self, run_id: int, metrics: dict) -> None:
        with self.atomic():
            self.db.execute("UPDATE quantizer_runs SET metrics = ? WHERE id = ?", [_json(metrics), run_id])

    def active_run_id(self) -> int | None:
        """The run whose SIDs the project uses (the user's choice, else the newest)."""
        chosen = self.get_meta("active_run")
        if chosen is not None and self.db.execute(
            "SELECT 1 FROM quantizer_runs WHERE id = ?", [chosen]
        ).fetchone():
            return int(chosen)
        row = self.db.execute("SELECT max(id) FROM quantizer_runs").fetchone()
        return None if row[0] is None else int(row[0])

    def set_active_run(self, run_id: int) -> None:
        self.load_quantizer_run(run_id, with_arrays=False)  # raises if unknown
        self.set_meta("active_run", int(run_id))

    def sid_of(self, run_id: int, item_idx: int) -> str | None:
        row = self.db.execute(
            "SELECT sid FROM sid_assignments WHERE run_id = ? AND item_idx = ?", [run_id, item_idx]
        ).fetchone()
        return None if row is None else row[0]

    def items_with_sid_prefix(self, run_id: int, prefix: str, limit: int | None = None) -> list[int]:
        """Item idxs whose SID string starts with ``prefix`` (e.g. ``<a_12><b_200>``)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = "SELECT item_idx FROM sid_assignments WHERE run_id = ? AND sid LIKE ? ESCAPE '\\' ORDER BY sid"
        args: list = [run_id, escaped + "%"]
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self.db.execute(sql, args).fetchall()]

    # -- generative models and checkpoints

    _MODEL_COLS = "id, name, kind, quantizer_run_id, spec, status, step, best_step, best_metric, history, created, updated"

    def create_model(self, *, name: str, kind: str, quantizer_run_id: int | None, spec: dict) -> int:
        stamp = now_iso()
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO models(name, kind, quantizer_run_id, spec, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
                [name, kind, quantizer_run_id, _json(spec), stamp, stamp],
            )
        return int(cur.lastrowid)

    def _model_from_row(self, row: tuple) -> ModelRecord:
        (id_, name, kind, run, spec, status, step, best_step, best_metric, history, created, updated) = row
        return ModelRecord(id_, name, kind, run, _loads(spec, {}), status, step, best_step, best_metric,
                           _loads(history, []), created, updated)

    def list_models(self, kind: str | None = None) -> list[ModelRecord]:
        sql = f"SELECT {self._MODEL_COLS} FROM models"
        args = []
        if kind:
            sql += " WHERE kind = ?"
            args.append(kind)
        return [self._model_from_row(r) for r in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def get_model(self, model_id: int) -> ModelRecord:
        row = self.db.execute(f"SELECT {self._MODEL_COLS} FROM models WHERE id = ?", [model_id]).fetchone()
        if row is None:
            raise ProjectError(f"{self.path}: no model #{model_id}")
        return self._model_from_row(row)

    def update_model(self, model_id: int, **fields: Any) -> None:
        allowed = {"name", "status", "step", "best_step", "best_metric", "history", "spec"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update model fields {sorted(bad)}")
        sets, args = [], []
        for key, value in fields.items():
            sets.append(f"{key} = ?")
            args.append(_json(value) if key in ("history", "spec") else value)
        sets.append("updated = ?")
        args.append(now_iso())
        with self.atomic():
            self.db.execute(f"UPDATE models SET {', '.join(sets)} WHERE id = ?", [*args, model_id])

    def save_checkpoint(
        self,
        model_id: int,
        tag: str,
        step: int,
        weights: dict[str, np.ndarray],
        train_state: dict[str, np.ndarray] | None = None,
        extra: dict | None = None,
    ) -> None:
        """Replace the model's checkpoint with this tag (``best``, ``last``)."""
        payloads = {"weights": _payload(weights), "train_state": _payload(train_state)}
        if payloads["weights"].value is None:  # NOT NULL: a model without weights is still a checkpoint
            payloads["weights"] = _Payload(encode_arrays({}))
        with self.atomic():
            self.db.execute(
                "INSERT INTO checkpoints(model_id, tag, step, weights, train_state, extra, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model_id, tag) DO UPDATE SET step = excluded.step, "
                "weights = excluded.weights, train_state = excluded.train_state, extra = excluded.extra, "
                "created = excluded.created",
                [model_id, tag, int(step), payloads["weights"].value, payloads["train_state"].value,
                 _json(extra or {}), now_iso()],
            )
            row_id = self.db.execute("SELECT id FROM checkpoints WHERE model_id = ? AND tag = ?",
                                     [model_id, tag]).fetchone()[0]
            for col, payload in payloads.items():
                self._store_chunks("checkpoints", row_id, col, payload)

    def checkpoint_tags(self) -> set[tuple[int, str]]:
        """Every ``(model_id, tag)`` that has a checkpoint, without reading any weights."""
        return {(int(m), str(t)) for m, t in self.db.execute("SELECT model_id, tag FROM checkpoints")}

    def has_checkpoint(self, model_id: int, tag: str = "best") -> bool:
        return self.db.execute("SELECT 1 FROM checkpoints WHERE model_id = ? AND tag = ?",
                               [model_id, tag]).fetchone() is not None

    def load_checkpoint(self, model_id: int, tag: str = "best") -> Checkpoint | None:
        row = self.db.execute(
            "SELECT id, step, extra FROM checkpoints WHERE model_id = ? AND tag = ?", [model_id, tag],
        ).fetchone()
        if row is None:
            return None
        row_id, step, extra = row
        where = f"model #{model_id}, '{tag}' checkpoint"
        return Checkpoint(model_id, tag, step, self.read_arrays("checkpoints", "weights", row_id, where=where),
                          self.read_arrays("checkpoints", "train_state", row_id, where=where), _loads(extra, {}))

    # -- evaluations

    def save_evaluation(
        self, *, name: str, task: str, split: str, settings: dict, metrics: dict, model_id: int | None = None
    ) -> int:
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO evaluations(name, model_id, task, split, settings, metrics, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [name, model_id, task, split, _json(settings), _json(metrics), now_iso()],
            )
        return int(cur.lastrowid)

    def list_evaluations(self, task: str | None = None) -> list[dict]:
        sql = "SELECT id, name, model_id, task, split, settings, metrics, created FROM evaluations"
        args = []
        if task:
            sql += " WHERE task = ?"
            args.append(task)
        out = []
        for id_, name, model_id, task_, split, settings, metrics, created in self.db.execute(sql + " ORDER BY id", args):
            out.append({"id": id_, "name": name, "model_id": model_id, "task": task_, "split": split,
                        "settings": _loads(settings, {}), "metrics": _loads(metrics, {}), "created": created})
        return out

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
