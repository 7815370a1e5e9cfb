"""Hints in the words of the front end in use: a core message that tells the user what to do
names the CLI's command or option in a terminal and the app's own control in the window.

The core raises the same errors for both; where such a message says how to fix something, it
asks :func:`hint` for the words. The CLI is the default; the app calls
``set_front_end("gui")`` when its window opens (and back when it closes).

    raise ProjectError(f"{store.path}: has no embeddings yet; {hint('embed')} first")
"""

from __future__ import annotations

#: hint key -> (the CLI's words, the app's words); ``{name}``-style fields are filled by hint()
HINTS: dict[str, tuple[str, str]] = {
    "embed": ("run 'semid embed'",
              "embed the items (Training → Quantiser, Embeddings: new)"),
    "quantize": ("run 'semid quantize'",
                 "fit a quantiser (Training → Quantiser)"),
    "quantize_tokens": ("re-run 'semid quantize --tokens {strategy}'",
                        "fit the quantiser again with that token strategy (Training → Quantiser, More settings)"),
    "train": ("train one with 'semid train'",
              "train one (Training → Generative model)"),
    "train_joint": ("train one with 'semid train --task joint'",
                    "train one (Training → Generative model, Task: joint)"),
    "train_split": ("train one with 'semid train --split {split}'",
                    "train one with that split (Training → Generative model, Split)"),
    "continue_training": ("run 'semid train' again to continue",
                          "choose it under Model → resume to continue"),
    "new_model": ("start a new one with --new (and more --set max_steps=...)",
                  "start a new model (Model: a new model) with more Steps"),
    "lower_lr": ("lower the learning rate (--set lr=...)",
                 "lower the learning rate (More settings: lr=...)"),
    "generate_queries": ("import a query log or run 'semid queries --generate'",
                         "import a query log (File → New project from files…) or generate queries "
                         "(Training → Search queries)"),
    "make_strategy_set": ("make one first ('--strategy {strategy}')",
                          "make one first (Training → Embedding strategy, Strategy: {strategy})"),
    "import_interactions": ("import some with 'semid import --interactions'",
                            "make a project from files with interactions (File → New project from files…)"),
    "info": ("see 'semid info'", "see the Catalogue view"),
    "map_column": ("name the column with the mapping option, e.g. --map {target}=COLUMN",
                   "choose its column in the Columns box of the file's preview"),
    "map_kind_column": ("name the file's kind, e.g. --map {kind}.{target}=COLUMN",
                        "choose its column in the Columns box of that file's preview"),
    "map_title": ("name one with --map title=COLUMN",
                  "choose one as Title in the Columns box"),
    "encoding": ("give it with the encoding option, e.g. --encoding {encoding}",
                 "type it in the Encoding box on the first page, e.g. {encoding}"),
    "skip_unknown": ("fix the file, or skip such rows (--unknown-items skip)",
                     "fix the file, or tick 'Skip the rows whose item is not in the catalogue'"),
    "field_kind": ("say --field-kind {name}={other} otherwise",
                   "choose {other} in the List fields box otherwise"),
    "field_kind_import": ("import it with --field-kind {name}={other}",
                          "choose {other} for it in the List fields box of the import"),
    "embedding_ids": ("give the ids file (--embedding-ids FILE: one id per line, or a CSV)",
                      "give the file of ids (one id per line, or a CSV)"),
}

_front_end = "cli"


def front_end() -> str:
    return _front_end


def set_front_end(name: str) -> str:
    """Speak as ``name`` ("cli" or "gui") from now on; returns the previous one."""
    global _front_end
    if name not in ("cli", "gui"):
        raise ValueError(f"front end must be 'cli' or 'gui', not {name!r}")
    previous, _front_end = _front_end, name
    return previous


def hint(key: str, **fields) -> str:
    """The words for ``key`` in the current front end's terms."""
    cli, gui = HINTS[key]
    return (gui if _front_end == "gui" else cli).format(**fields)
