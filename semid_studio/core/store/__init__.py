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

Modules: :mod:`.project` (:class:`ProjectStore`: open, transactions, locks, payloads, meta),
its tables in :mod:`.catalogue`, :mod:`.artifacts` and :mod:`.models`; :mod:`.records` (what
the readers return), :mod:`.encoding` (arrays, JSON), :mod:`.faults` (write errors) and
:mod:`.schema` (migrations). ``from semid_studio.core.store import ProjectStore`` and the
other public names work from this package.
"""

from .encoding import CHUNK_MARK, DamagedArrays, arrays_from_buffer, decode_arrays, encode_arrays, is_chunked, now_iso
from .faults import process_alive, write_fault
from .project import ProjectStore, local_commits, local_writes_open
from .records import Checkpoint, EmbeddingSet, ModelRecord, QuantizerRun
from .schema import APPLICATION_ID, SUFFIX, migrations


__all__ = [
    "APPLICATION_ID", "SUFFIX", "migrations", "now_iso", "encode_arrays", "decode_arrays", "DamagedArrays",
    "CHUNK_MARK", "is_chunked", "arrays_from_buffer", "process_alive", "write_fault", "EmbeddingSet", "QuantizerRun",
    "ModelRecord", "Checkpoint", "ProjectStore", "local_commits", "local_writes_open",
]
