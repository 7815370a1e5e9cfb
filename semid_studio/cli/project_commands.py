"""Project commands: new, import, embed, quantize, info, export, lookup, use-run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.devices import DEVICE_HELP
from ..core.errors import SemidError
from ..core.importing.formats import FORMATS
from ..core.store import ProjectStore
from .common import open_store, parse_key_values, print_json, run_task


def register(subparsers: argparse._SubParsersAction) -> None:
    for part in (_register_project, _register_sids, _register_outputs):
        part(subparsers)


def _register_project(subparsers: argparse._SubParsersAction) -> None:
    """new, import: a project and what goes into it."""
    p = subparsers.add_parser("new", help="create an empty project file")
    p.add_argument("project", help="path of the new .semid file")
    p.add_argument("--template", help="text template for item embeddings, e.g. 'Title: {title}; Brand: {brand}'")
    p.set_defaults(func=cmd_new)

    p = subparsers.add_parser("import", help="import items, interactions, queries or precomputed embeddings")
    p.add_argument("project")
    p.add_argument("--items", help="catalogue file (CSV/TSV, JSONL(.gz), Parquet, or a named format's file)")
    p.add_argument("--interactions", help="interactions file: user, item, timestamp")
    p.add_argument("--queries", help="search queries file: query text, item")
    p.add_argument("--format", default="auto", choices=list(FORMATS),
                   help="how to read the files (default: auto, detected per file; p5 = P5 sequential_data.txt "
                        "with its datamaps.json)")
    p.add_argument("--map", action="append", metavar="TARGET=COLUMN",
                   help="map a column, e.g. --map item_id=sku --map title=name (repeatable)")
    p.add_argument("--encoding", help="text encoding of the files (default utf-8)")
    p.add_argument("--field-kind", action="append", metavar="FIELD=KIND",
                   help="a list field is a path (category path, read level by level) or a set (genres, tags: "
                        "every value counts for labels and purity), e.g. --field-kind genres=set (repeatable; "
                        "default: detected). Without files: change the kind of a field already imported")
    p.add_argument("--unknown-items", choices=["abort", "skip"], default="abort",
                   help="interactions/queries naming items not in the catalogue: abort (default) or skip them")
    p.add_argument("--embeddings", help="precomputed item embeddings (.npy with --embedding-ids, or .parquet)")
    p.add_argument("--embedding-ids", help="item ids in the row order of the .npy file (one per line)")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")
    p.set_defaults(func=cmd_import)


def _register_sids(subparsers: argparse._SubParsersAction) -> None:
    """embed, quantize, presets: from items to Semantic IDs."""
    p = subparsers.add_parser("embed", help="embed the catalogue with a sentence-transformers model")
    p.add_argument("project")
    p.add_argument("--model", help="model name or local path (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--template", help="text template, e.g. 'Title: {title}; Categories: {categories}'")
    p.add_argument("--device", help=DEVICE_HELP + "; a list such as cuda:0,cuda:1 encodes with one process per GPU")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--processes", type=int, default=1,
                   help="encode with N processes (sentence-transformers' multi-process pool): N CPU workers "
                        "sharing the cores, or one per GPU (cuda:0 .. cuda:N-1) with --device cuda")
    # task-aware embeddings (core/search/strategies.py); the same as 'semid embed-strategy'
    p.add_argument("--strategy", default="auto",
                   choices=["auto", "content", "search", "rec", "multitask", "fused-concat", "fused-svd"],
                   help="auto (default): content when the items have text, else rec; content: the text "
                        "encoder as it is; rec: item vectors learned from the interactions; the others "
                        "fine-tune the encoder for search / recommendation (docs/joint-search.md)")
    p.add_argument("--preset", help="strategies: named settings (laptop, paper)")
    p.add_argument("--seed", type=int, default=0, help="strategies: seed")
    p.add_argument("--sources", help="fused strategies: SEARCH_SET,REC_SET (default: the newest of each)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="strategies: override a setting")
    p.add_argument("--name", help="strategies: a name for the embedding set")
    p.add_argument("--force", action="store_true", help="strategies: make a new set even if an identical one exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_embed)

    p = subparsers.add_parser("quantize", help="fit a residual quantiser and assign Semantic IDs")
    p.add_argument("project")
    p.add_argument("--method", choices=["rq-kmeans", "rq-vae"], default="rq-kmeans")
    p.add_argument("--preset", help="named spec preset of the method (list them with 'semid presets')")
    p.add_argument("--levels", type=int, help="semantic levels (default 3; more past ~4M items)")
    p.add_argument("--codebook-size", type=int,
                   help="codes per level (default: sized to the catalogue, the power of two nearest "
                        "sqrt(items) within 16..256: 64 for 3k items, 128 for 12k, 256 from 46k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-field", help="item field to measure prefix purity against, e.g. categories[1]")
    p.add_argument("--embedding-set", type=int, help="embedding set id (default: the newest)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override any spec field (repeatable)")
    p.add_argument("--name", help="a name for the run")
    p.add_argument("--json", action="store_true", help="print the run's health as JSON")
    # token strategies of the joint model (core/search/token_strategies.py, docs/joint-search.md)
    p.add_argument("--tokens", choices=["shared", "separate", "prefix-share"], default="shared",
                   help="shared (default): one SID table; separate: one per task, distinct vocabulary ranges; "
                        "prefix-share: one per task, level 1 shared")
    p.add_argument("--search-set", type=int, help="--tokens separate/prefix-share: the search side's embedding set "
                                                 "(default: the newest search-tuned set, else the content set)")
    p.add_argument("--rec-set", type=int, help="--tokens separate/prefix-share: the rec side's embedding set "
                                              "(default: the newest rec-tuned set)")
    p.set_defaults(func=cmd_quantize)

    p = subparsers.add_parser("presets", help="list the quantiser spec presets and their settings")
    p.add_argument("--method", choices=["rq-kmeans", "rq-vae"])
    p.set_defaults(func=cmd_presets)


def _register_outputs(subparsers: argparse._SubParsersAction) -> None:
    """info, export, lookup, use-run: what a project holds, and what comes out of it."""
    p = subparsers.add_parser("info", help="counts, embedding sets and quantiser runs with their health")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser("export", help="export the SID table (CSV, Parquet, JSON) and codebooks")
    p.add_argument("project")
    p.add_argument("out", help="OUT.csv, OUT.parquet or OUT.json")
    p.add_argument("--run", type=int, help="quantiser run id (default: the active run)")
    p.add_argument("--with-title", action="store_true", help="add the item title column")
    p.add_argument("--codebooks", metavar="FILE", help="also write the codebooks to FILE.npy or FILE.safetensors")
    p.add_argument("--model", type=int, metavar="MODEL_ID",
                   help="also write generative model MODEL_ID (its best checkpoint) to OUT.model.safetensors "
                        "+ .json (see --model-out)")
    p.add_argument("--model-out", metavar="FILE", help="where to write the model (default: beside OUT)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("lookup", help="item -> SID, or SID prefix -> items")
    p.add_argument("project")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--item", action="append", metavar="ITEM_ID", help="item id (repeatable)")
    group.add_argument("--prefix", help="SID prefix such as '<a_12><b_3>' or '12,3'")
    p.add_argument("--run", type=int)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lookup)

    p = subparsers.add_parser("use-run", help="make a quantiser run the project's active SID table")
    p.add_argument("project")
    p.add_argument("run", type=int)
    p.set_defaults(func=cmd_use_run)

def cmd_new(args: argparse.Namespace) -> int:
    path = Path(args.project)
    if path.suffix != ".semid":
        raise SemidError(f"{path}: project files end in .semid")
    with ProjectStore.create(path) as store:
        if args.template:
            store.set_meta("template", args.template)
    print(f"created {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..core import importing

    from ..core.field_kinds import parse_field_kinds, set_field_kinds

    kinds = parse_field_kinds(args.field_kind)
    files = [args.items, args.interactions, args.queries, args.embeddings]
    if kinds and not any(files):
        with open_store(args.project) as store:
            stored = set_field_kinds(store, kinds)
        print("field kinds: " + ", ".join(f"{k}={v}" for k, v in stored.items()))
        return 0
    if not any(files):
        raise SemidError("nothing to import: give --items, --interactions, --queries or --embeddings")
    mapping = parse_key_values(args.map, "--map")
    with open_store(args.project) as store:
        if args.items or args.interactions or args.queries:
            report = run_task(
                importing.import_data(
                    store,
                    items=args.items,
                    interactions=args.interactions,
                    queries=args.queries,
                    format=args.format,
                    mapping=mapping or None,
                    encoding=args.encoding,
                    on_unknown=args.unknown_items,
                    field_kinds=kinds or None,
                ),
                quiet=args.json,
            )
            if args.json:
                print_json(report.as_dict())
            else:
                print(report.summary())
        if args.embeddings:
            set_id = importing.import_embeddings(store, args.embeddings, ids_path=args.embedding_ids)
            print(f"imported embeddings as set #{set_id}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from ..core.embed import embed_items
    from ..core.pipeline import embed_catalogue

    if args.strategy == "auto" and (args.preset or args.set):
        args.strategy = "content"
    if args.strategy not in ("auto", "content") or args.preset or args.set:
        from .search_commands import cmd_embed_strategy

        if args.template:
            raise SemidError("--template applies to the content strategy only; the others read the project's "
                             "text template")
        if args.processes != 1:
            raise SemidError("--processes applies to the content strategy (the sentence encoder) only")
        return cmd_embed_strategy(args)
    embed = embed_catalogue if args.strategy == "auto" else embed_items
    with open_store(args.project) as store:
        set_id = run_task(embed(store, model=args.model, template=args.template, device=args.device,
                                batch_size=args.batch_size, processes=args.processes), quiet=args.json)
        emb = store.load_embedding_set(set_id)
    if args.json:
        print_json({"id": emb.id, "name": emb.name, "strategy": emb.strategy, "n_items": emb.n_items,
                    "dim": emb.dim, "model": emb.model, "template": emb.template})
        return 0
    print(f"embedding set #{emb.id} {emb.name}: {emb.n_items} items x {emb.dim} dims, model {emb.model}")
    if emb.strategy == "content":
        print(f"template: {emb.template}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..core import quantize, sids

    overrides = parse_key_values(args.set, "--set")
    if args.levels is not None:
        overrides["levels"] = str(args.levels)
    if args.codebook_size is not None:
        overrides["codebook_size"] = str(args.codebook_size)
    overrides["seed"] = str(args.seed)
    with open_store(args.project) as store:
        n_items = store.item_count()
    # without --codebook-size / --levels / --preset the quantiser is sized to the catalogue
    spec = quantize.sized_spec(args.method, n_items, preset=args.preset, overrides=overrides)
    if args.tokens != "shared" or args.search_set is not None or args.rec_set is not None:
        return _quantize_tokens(args, spec)
    with open_store(args.project) as store:
        run_id = run_task(
            quantize.quantize_project(store, method=args.method, spec=spec, embedding_set_id=args.embedding_set,
                                      label_field=args.label_field, name=args.name),
            quiet=args.json,
        )
        run = store.load_quantizer_run(run_id, with_arrays=False)
        active = store.active_run_id() == run_id
    problems = run.metrics.get("problems", [])
    if args.json:
        print_json({"run": run_id, "method": run.method, "spec": run.spec, "health": run.metrics,
                    "active": active})
    elif active:
        print(f"quantiser run #{run_id} ({run.method}) is now the active SID table")
        print(sids.format_health(run.metrics))
    else:
        print(sids.format_health(run.metrics))
        print(f"quantiser run #{run_id} ({run.method}) was saved but is NOT the active SID table: "
              f"{'; '.join(problems)}. Look at it with 'semid info', or make it active anyway with "
              f"'semid use-run {args.project} {run_id}'", file=sys.stderr)
    return 0 if active else 1


def _quantize_tokens(args: argparse.Namespace, spec) -> int:
    """``semid quantize --tokens separate|prefix-share``: one SID table per task."""
    from ..core import sids
    from ..core.search import token_strategies

    if args.tokens == "shared":
        raise SemidError("--search-set and --rec-set apply to --tokens separate or prefix-share")
    if args.embedding_set is not None:
        raise SemidError(f"--tokens {args.tokens} quantises one embedding set per task: name them with "
                         "--search-set ID and --rec-set ID instead of --embedding-set")
    with open_store(args.project) as store:
        ts = run_task(token_strategies.build_token_strategy(
            store, args.tokens, method=args.method, spec=spec, search_set=args.search_set, rec_set=args.rec_set,
            label_field=args.label_field, name=args.name), quiet=args.json)
        runs = {side: store.load_quantizer_run(run_id, with_arrays=False) for side, run_id in ts.runs.items()}
    if args.json:
        print_json({"tokens": ts.to_dict(), "runs": {side: {"run": r.id, "method": r.method, "health": r.metrics}
                                                     for side, r in runs.items()}})
        return 0
    print(f"token strategy {ts.describe()}; run #{ts.runs['rec']} is now the active SID table")
    for side, r in runs.items():
        print(f"{side} table, quantiser run #{r.id} ({r.method}):")
        print(sids.format_health(r.metrics))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from ..core import quantize

    print(quantize.describe_presets(args.method))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..core import sids

    from ..core.search.token_strategies import active_token_strategy

    with open_store(args.project) as store:
        summary = store.summary()
        ts = active_token_strategy(store)
        summary["token_strategy"] = ts.to_dict() if ts else {"strategy": "shared"}
    if args.json:
        print_json(summary)
        return 0
    print(f"project   {summary['path']} (schema v{summary['schema_version']})")
    print(f"items     {summary['items']:,}")
    print(f"users     {summary['users']:,} with {summary['interactions']:,} interactions")
    print(f"queries   {summary['queries']:,}")
    if summary["template"]:
        print(f"template  {summary['template']}")
    print(f"embedding sets ({len(summary['embedding_sets'])}):")
    for e in summary["embedding_sets"]:
        print(f"  #{e['id']} {e['name']}: {e['n_items']} x {e['dim']}, model {e['model']}, {e['created']}")
    print(f"quantiser runs ({len(summary['quantizer_runs'])}):")
    for r in summary["quantizer_runs"]:
        active = "  (active)" if r["id"] == summary["active_run"] else ""
        print(f"  #{r['id']} {r['name']}: {r['method']}, {r['n_levels']} levels, seed {r['seed']}, "
              f"embedding set #{r['embedding_set_id']}{active}")
        for line in sids.format_health(r["metrics"]).splitlines():
            print("      " + line)
    print(f"token strategy: {ts.describe() if ts else 'shared (one SID table for search and rec)'}")
    if summary["models"]:
        print(f"models ({len(summary['models'])}):")
        for m in summary["models"]:
            best = "" if m["best_metric"] is None else f", best validation {m['best_metric']:.4f} at step {m['best_step']}"
            print(f"  #{m['id']} {m['name']}: {m['kind']}, {m['status']}, step {m['step']}{best}")
    if summary["evaluations"]:
        print(f"evaluations ({len(summary['evaluations'])}):")
        for ev in summary["evaluations"]:
            print(f"  #{ev['id']} {ev['name']}: {ev['task']} on {ev['split']}, {ev['created']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..core.export import export_codebooks, export_model, export_sid_table

    with open_store(args.project) as store:
        written = export_sid_table(store, args.out, args.run, with_title=args.with_title)
        if args.codebooks:
            written.append(export_codebooks(store, args.codebooks, args.run))
        if args.model is not None or args.model_out:
            if args.model is None:
                raise SemidError("--model-out needs --model MODEL_ID (see 'semid info' for the models)")
            out = Path(args.model_out) if args.model_out else Path(args.out).with_suffix(".model.safetensors")
            written.extend(export_model(store, out, args.model))
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    from ..core import sids

    with open_store(args.project) as store:
        run = store.load_quantizer_run(args.run, with_arrays=False)
        rows = []
        if args.item:
            index = store.item_index()
            for item_id in args.item:
                if item_id not in index:
                    raise SemidError(f"item '{item_id}' is not in the catalogue")
                item = store.get_items([index[item_id]])[0]
                rows.append({"item_id": item_id, "sid": store.sid_of(run.id, index[item_id]), "title": item["title"]})
        else:
            prefix = sids.sid_string(sids.parse_sid(args.prefix))
            idxs = store.items_with_sid_prefix(run.id, prefix, limit=args.limit)
            for item in store.get_items(idxs):
                rows.append({"item_id": item["item_id"], "sid": store.sid_of(run.id, item["idx"]),
                             "title": item["title"]})
    if args.json:
        print_json(rows)
    else:
        if not rows:
            print("no items")
        for r in rows:
            print(f"{r['sid']}\t{r['item_id']}\t{r['title'] or ''}")
    return 0


def cmd_use_run(args: argparse.Namespace) -> int:
    with open_store(args.project) as store:
        store.set_active_run(args.run)
    print(f"quantiser run #{args.run} is now the active SID table")
    return 0
