"""The project file's schema: its ``application_id`` mark and the migrations that build it.

Add schema changes as a new ``@migrations()`` function at the end; never edit an applied one.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations


#: "SEMD" — marks a file as a SemID Studio project (PRAGMA application_id)
APPLICATION_ID = 0x53454D44
SUFFIX = ".semid"

migrations = Migrations("semid_studio")


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
