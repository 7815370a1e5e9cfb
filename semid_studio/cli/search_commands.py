"""Search commands: queries, embed-strategy, search, search-eval.

``semid queries``         list a project's queries per source and split, or generate them
``semid embed-strategy``  make an embedding set with a strategy (content, search, rec, multitask,
                          fused-concat, fused-svd); the same as ``semid embed --strategy``
``semid search``          one query against the catalogue: the joint generative model when the
                          project has one (``semid train --task joint``), else dense retrieval
                          with the project's embeddings (it says so); ``--method`` picks
``semid search-eval``     search metrics on held-out queries (bm25, dense, or the joint model)
"""

from __future__ import annotations

import argparse

from ..core.errors import SemidError
from .common import open_store, parse_key_values, print_json, run_task


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..core.search import queries, strategies

    p = subparsers.add_parser("queries", help="list the project's search queries, or generate them")
    p.add_argument("project")
    p.add_argument("--generate", choices=list(queries.METHODS),
                   help="generate queries from the catalogue: known-item, category-path or template")
    p.add_argument("--per-item", type=int, help="training queries per item (default 4)")
    p.add_argument("--test-per-item", type=int, help="test queries per item (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", choices=list(queries.PRESETS), help="named protocol (paper: 10 + 10, no title words)")
    p.add_argument("--exclude-title", action="store_true", help="known-item: leave out the words of the title")
    p.add_argument("--fields", help="comma-separated item fields to draw from (default: every text field)")
    p.add_argument("--category-field", help="list field holding the category path (default: categories)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override any protocol field (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queries)

    p = subparsers.add_parser("embed-strategy",
                              help="item embeddings by strategy: content, search, rec, multitask, fused-concat, fused-svd")
    p.add_argument("project")
    p.add_argument("--strategy", required=True, choices=list(strategies.STRATEGIES))
    p.add_argument("--preset", choices=list(strategies.PRESETS), help="named settings (laptop, paper)")
    p.add_argument("--model", help="base encoder (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sources", help="fused strategies: SEARCH_SET,REC_SET (default: the newest of each)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any setting, e.g. --set epochs=2 --set max_pairs=2000 (repeatable)")
    p.add_argument("--name", help="a name for the embedding set")
    p.add_argument("--force", action="store_true", help="make a new set even if an identical one exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_embed_strategy)

    p = subparsers.add_parser("search", help="search the catalogue with one query")
    p.add_argument("project")
    p.add_argument("text", help="the query text")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--method", choices=["auto", "joint", "dense", "bm25"], default="auto",
                   help="auto (default): the joint generative model when the project has one, else dense")
    p.add_argument("--model", type=int, metavar="MODEL_ID", help="joint: model id (default: the newest)")
    p.add_argument("--beam", type=int, help="joint: beam width (default max(20, k))")
    p.add_argument("--embedding-set", type=int, help="dense: embedding set id (default: the newest with a text side)")
    p.add_argument("--long-text", choices=list(strategies.LONG_TEXT), default="truncate",
                   help="dense: queries longer than the encoder's window are truncated or chunked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = subparsers.add_parser("search-eval", help="search metrics (Recall@K, NDCG@K, MRR) on held-out queries")
    p.add_argument("project")
    p.add_argument("--method", choices=["bm25", "dense", "joint"], default="dense")
    p.add_argument("--model", type=int, action="append", metavar="MODEL_ID",
                   help="joint: model id (repeatable: several seeds; default the newest joint model)")
    p.add_argument("--embedding-set", type=int, action="append", dest="embedding_sets",
                   help="dense: set id (repeatable: several seeds of one strategy are averaged)")
    p.add_argument("--split", help="held-out split (default: validation if present, else test)")
    p.add_argument("-k", type=int, nargs="+", default=[10, 30], help="cut-offs (default 10 30)")
    p.add_argument("--long-text", choices=list(strategies.LONG_TEXT), default="truncate")
    p.add_argument("--no-save", action="store_true", help="do not store the report in the project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search_eval)


def cmd_queries(args: argparse.Namespace) -> int:
    from ..core.search import queries

    with open_store(args.project) as store:
        if args.generate:
            overrides: dict = parse_key_values(args.set, "--set")
            for key, value in (("per_item", args.per_item), ("test_per_item", args.test_per_item),
                               ("fields", args.fields), ("category_field", args.category_field)):
                if value is not None:
                    overrides[key] = value
            if args.exclude_title:
                overrides["exclude_title"] = True
            overrides["seed"] = args.seed
            spec = queries.make_spec(args.generate, preset=args.preset, overrides=overrides)
            protocol = run_task(queries.generate_queries(store, spec), quiet=args.json)
            if args.json:
                print_json(protocol)
            else:
                print(f"generated {protocol['n_train']} train and {protocol['n_test']} test queries "
                      f"({queries.describe_spec(spec)})")
            return 0
        rows = queries.query_protocols(store)
        examples = store.queries_frame().head(5)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no queries; import a query log ('semid import --queries') or generate them ('semid queries --generate')")
        return 0
    for r in rows:
        prot = r["protocol"]
        how = f", {prot.get('method')} seed {prot.get('seed')}" if prot else ""
        print(f"{r['source']:<10} {r['split']:<11} {r['n']:>8,}{how}")
    print("examples:")
    for t, i, s in zip(examples["text"], examples["item_idx"], examples["split"]):
        print(f"  [{s}] item {i}: {t[:90]}")
    return 0


def cmd_embed_strategy(args: argparse.Namespace) -> int:
    from ..core.search import strategies

    overrides: dict = parse_key_values(args.set, "--set")
    overrides["seed"] = args.seed
    if args.model:
        overrides["model"] = args.model
    spec = strategies.make_spec(preset=args.preset, overrides=overrides)
    sources = None
    if args.sources:
        try:
            sources = [int(s) for s in args.sources.split(",")]
        except ValueError:
            raise SemidError(f"--sources expects SEARCH_SET,REC_SET (two set ids), got '{args.sources}'") from None
    with open_store(args.project) as store:
        set_id = run_task(strategies.build_embedding(store, args.strategy, spec, sources=sources, name=args.name,
                                                     force=args.force), quiet=args.json)
        emb = next(e for e in store.list_embedding_sets() if e.id == set_id)
    if args.json:
        print_json({"id": emb.id, "name": emb.name, "strategy": emb.strategy, "n_items": emb.n_items,
                    "dim": emb.dim, "params": emb.params})
    else:
        print(f"embedding set #{emb.id} {emb.name}: {emb.n_items} items x {emb.dim} dims ({emb.strategy})")
        p = emb.params
        if "pairs_per_s" in p:
            print(f"fine-tuned on {p['train_queries']} train queries, {p['steps']} steps, {p['pairs_per_s']} pairs/s, "
                  f"loss {p['loss_first']} -> {p['loss_last']}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ..core import search
    from ..core.generative import joint

    with open_store(args.project) as store:
        method = args.method
        if method == "auto":
            method = "joint" if (args.model is not None or joint.has_joint_model(store)) else "dense"
        if method == "joint":
            result = joint.joint_search(store, args.text, k=args.k, beam=args.beam, model_id=args.model)
        else:
            result = search.search(store, args.text, k=args.k, method=method, embedding_set_id=args.embedding_set,
                                   long_text=args.long_text)
    if args.json:
        print_json(result.as_dict())
        return 0
    print(f"({result.note})")
    for w in result.warnings:
        print(f"warning: {w}")
    for h in result.hits:
        sid = f"  {h['sid']}" if "sid" in h else ""
        print(f"{h['rank']:>3}. {h['score']:8.4f}{sid}  {h['item_id']}\t{h['title'] or ''}")
    return 0


def cmd_search_eval(args: argparse.Namespace) -> int:
    from ..core import search

    if args.method == "joint":
        from ..core.generative.joint import evaluate_joint

        with open_store(args.project) as store:
            report = run_task(evaluate_joint(store, args.model, split=args.split, ks=args.k, rec=False,
                                             save=not args.no_save), quiet=True)
        if args.json:
            print_json(report)
        else:
            s = report["settings"]
            print(search.format_metrics(report["search"], s["ks"],
                                        title=f"joint on {s['n_queries']} {s['split']} queries"
                                              + (f" (evaluation #{report['ids']['search']})" if report["ids"] else "")))
        return 0
    with open_store(args.project) as store:
        report = run_task(search.evaluate_search(store, args.method, embedding_set_ids=args.embedding_sets,
                                                 split=args.split, ks=args.k, long_text=args.long_text,
                                                 save=not args.no_save), quiet=True)
    if args.json:
        print_json(report)
    else:
        s = report["settings"]
        print(search.format_metrics(report["metrics"], s["ks"],
                                    title=f"{s['method']} on {s['n_queries']} {s['split']} queries"
                                          + (f" (evaluation #{report['id']})" if report["id"] else "")))
    return 0
