"""Generative recommender commands: train, evaluate, recommend (TIGER on the project's SIDs).

``semid train --task search|joint [--mix 0.5] [--query-encoder minilm|wordpiece]`` trains the
same model with a text input (joint generative search + recommendation, core
``generative.joint``; its laptop / paper presets carry the measured recipe, ``joint.recipe``);
``--task rec`` (the default) is the recommender exactly as before.
``semid evaluate --task search|both`` evaluates the joint model's search (and rec) side.

Resume behaviour of ``semid train``: by default it continues the newest unfinished model
trained with exactly the same settings (same preset, overrides, split and seed) — e.g. after
Ctrl+C or a ``--max-minutes`` budget; ``--new`` always starts a fresh model and
``--resume ID`` continues a given one.

Several processes (data-parallel, one model): ``semid train --nproc N ...`` starts
``torchrun`` with N processes on this machine; ``torchrun --nproc-per-node N -m
semid_studio.cli train ...`` does the same by hand (and across machines). Rank 0 prints and
writes; the others open the project read-only.
"""

from __future__ import annotations

import argparse
import signal

from ..core.devices import DEVICE_HELP, PRECISION_HELP
from ..core.errors import SemidError
from ..core.importing.formats import FORMATS
from .common import open_store, parse_key_values, print_json, run_task


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SemidError(f"--k expects comma-separated integers such as 5,10,20, got '{text}'") from None
    if not ks or min(ks) <= 0:
        raise SemidError(f"--k expects positive integers, got '{text}'")
    return ks


def register(subparsers: argparse._SubParsersAction) -> None:
    for part in (_register_train, _register_evaluate, _register_recommend):
        part(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the generative recommender (TIGER) on the active SIDs")
    p.add_argument("project")
    p.add_argument("--preset", default="laptop", help="paper, laptop (default), laptop-pair (two laptop models ranked as one: better, twice the time) or tiny")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a spec field, e.g. --set dropout=0.3 (repeatable)")
    p.add_argument("--split", choices=["loo", "temporal"], help="evaluation split (default: leave-one-out)")
    p.add_argument("--max-minutes", type=float,
                   help="time budget: stop cleanly after N minutes (resumable); a new model without --max-steps "
                        "fits its schedule to the budget so that it ends it")
    p.add_argument("--max-steps", type=int, help="length of the training schedule in steps (default: the preset's)")
    p.add_argument("--checkpoint-every", type=float, default=60.0, metavar="SECONDS",
                   help="also save the resumable 'last' checkpoint every N seconds of training, so a crash "
                        "loses at most that much (default 60; 0: only at validations)")
    p.add_argument("--stop-after", type=int, metavar="STEPS",
                   help="train at most STEPS steps in this call, then stop cleanly (resumable)")
    p.add_argument("--device", help=DEVICE_HELP + "; with --nproc: cpu, cuda (process i on cuda:i) or auto")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help=PRECISION_HELP)
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train one model with N data-parallel processes on this machine (starts torchrun; "
                        "gloo on the CPU, nccl on N GPUs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="a name for the model")
    p.add_argument("--task", choices=["rec", "search", "joint"], default="rec",
                   help="rec: history -> item (default); search: query -> item; joint: both, one model. A search / "
                        "joint model of the laptop or paper preset reads requests with a search-tuned encoder and "
                        "history items as rec-tuned vectors, making those embedding sets first when the project "
                        "has none (--set encoder_model= / --set item_vectors= to go without)")
    p.add_argument("--mix", type=float, help="joint: share of search targets per batch (default 0.5)")
    p.add_argument("--query-encoder", choices=["minilm", "wordpiece"],
                   help="search/joint: frozen MiniLM token states (default) or word pieces learned from scratch")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--new", action="store_true", help="start a new model even if one can be resumed")
    group.add_argument("--resume", type=int, metavar="MODEL_ID", help="continue training model MODEL_ID")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="Recall@K / NDCG@K on the test split, with baselines")
    p.add_argument("project")
    p.add_argument("--split", choices=["loo", "temporal"], help="default: the split the model was trained on")
    p.add_argument("--task", choices=["rec", "search", "both"],
                   help="rec: the recommender (default); search / both: the joint model's search (and rec) side")
    # a query log from outside the project: read as 'semid import --queries' reads it, never stored
    p.add_argument("--queries", metavar="FILE",
                   help="search: score a query file that is not in the project (the joint model and every "
                        "search baseline); its queries are never stored, only the figures, the file's name and "
                        "its sha256")
    p.add_argument("--format", default="auto", choices=list(FORMATS), help="--queries: how to read the file "
                   "(default: auto, as for 'semid import')")
    p.add_argument("--map", action="append", metavar="TARGET=COLUMN",
                   help="--queries: map a column, e.g. --map text=request --map item_id=movieId (repeatable)")
    p.add_argument("--encoding", help="--queries: text encoding of the file (default utf-8)")
    p.add_argument("--unknown-items", "--on-unknown", dest="unknown_items", choices=["skip", "abort"],
                   default="skip", help="--queries: requests for items not in the catalogue: skip and count "
                                        "them (default) or abort")
    p.add_argument("--k", help="cut-offs (default 5,10,20 for rec, 10,30 for search)")
    p.add_argument("--model", type=int, action="append", metavar="MODEL_ID",
                   help="model(s) to evaluate (default: the newest and its other seeds)")
    p.add_argument("--beam", type=int, help="beam width (default max(20, K))")
    p.add_argument("--baselines", default="popularity,markov",
                   help="comma list of popularity, markov, sasrec (full softmax), sasrec-ss (sampled softmax, "
                        "256 negatives) ('' for none)")
    p.add_argument("--sasrec-minutes", type=float, help="time budget for each SASRec fit")
    p.add_argument("--exclude-history", action="store_true",
                   help="seen-item filter: leave each user's history items out of every method's list "
                        "(for data where the next item is never a repeat; the report records it)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def _register_recommend(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("recommend", help="next items for a history of item ids")
    p.add_argument("project")
    p.add_argument("--history", required=True, metavar="ID[,ID...]", help="item ids, oldest first")
    p.add_argument("-k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--beam", type=int, default=20, help="beam width (default 20)")
    p.add_argument("--temperature", type=float, help="sample K distinct items with this temperature instead")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling")
    leave_out = p.add_mutually_exclusive_group()
    leave_out.add_argument("--exclude-history", dest="exclude_history", action="store_true", default=None,
                           help="never recommend an item of the history (the default where the project's users "
                                "never take an item twice)")
    leave_out.add_argument("--include-history", dest="exclude_history", action="store_false",
                           help="let items of the history be recommended again")
    p.add_argument("--skip-unknown", action="store_true", help="ignore history ids not in the catalogue")
    p.add_argument("--model", type=int, metavar="MODEL_ID",
                   help="a recommender or a joint search + rec model (default: the newest trained recommender, "
                        "else the newest joint model)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recommend)

def cmd_train(args: argparse.Namespace) -> int:
    from ..core.generative import distributed

    under_torchrun = distributed.launched_by_torchrun()
    if args.nproc is not None:
        if under_torchrun:
            raise SemidError("--nproc starts torchrun itself; under torchrun leave it out "
                             "(torchrun's --nproc-per-node sets the number of processes)")
        if args.nproc != 1:
            _refuse_ensemble_under_nproc(args)
            return distributed.launch(_without_nproc(args.argv), args.nproc, args.device)
    if args.stop_after is not None and args.stop_after < 1:
        raise SemidError(f"--stop-after must be at least 1 step, got {args.stop_after}")
    if not under_torchrun:
        return _train(args, distributed.SINGLE)
    dist = distributed.start(args.device)
    # torchrun ends the workers with SIGTERM when one fails or on Ctrl+C: as an interrupt,
    # rank 0 then saves the last completed step before it goes
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = _train(args, dist)
        if code == 0:
            dist.barrier()  # every rank done (rank 0 writes last) before any closes its connections
        return code
    finally:
        distributed.stop()


def _refuse_ensemble_under_nproc(args: argparse.Namespace) -> None:
    """Before any process starts: an ensemble trains its members one after another in one
    process (each rank would otherwise say so itself, after torchrun has started them all)."""
    from ..core.generative import make_spec

    if args.task == "rec" and make_spec(args.preset, _overrides(args, parse_key_values(args.set, "--set"))).members > 1:
        raise SemidError(f"--preset {args.preset} trains an ensemble (members > 1), one member after another in one "
                         "process; leave out --nproc")


def _without_nproc(argv: list[str]) -> list[str]:
    """The command's arguments without ``--nproc N`` (what each torchrun worker runs)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _fit_schedule(args: argparse.Namespace) -> bool:
    """A time budget and no schedule of the user's own: fit the preset's schedule to the budget."""
    return args.max_minutes is not None and args.max_steps is None and "max_steps" not in (
        parse_key_values(args.set, "--set"))


def _overrides(args: argparse.Namespace, pairs: dict) -> dict:
    pairs["seed"] = str(args.seed)
    if args.split:
        pairs["split"] = args.split
    if args.max_steps is not None:
        pairs["max_steps"] = str(args.max_steps)
    if args.precision:
        pairs["precision"] = args.precision
    return pairs


def _train(args: argparse.Namespace, dist) -> int:
    from ..core.generative import make_spec, train_recommender

    if args.task != "rec":
        return _train_joint(args, dist)
    if args.mix is not None or args.query_encoder:
        raise SemidError("--mix and --query-encoder apply to --task search or joint, not to the recommender")
    spec = make_spec(args.preset, _overrides(args, parse_key_values(args.set, "--set")))
    resume: int | bool | None = None
    if args.new:
        resume = False
    elif args.resume is not None:
        resume = args.resume
    rec = _run_training(args, dist, lambda store: train_recommender(
        store, spec, resume=resume, name=args.name, preset=args.preset, device=args.device,
        max_minutes=args.max_minutes, max_call_steps=args.stop_after, checkpoint_s=args.checkpoint_every,
        dist=dist, fit_schedule=_fit_schedule(args)))
    if rec is None:
        return 130
    if not dist.is_main:
        return 0  # rank 0 reports for all
    model_id = rec.id
    if args.json:
        print_json({"model_id": model_id, "status": rec.status, "step": rec.step, "best_step": rec.best_step,
                    "best_metric": rec.best_metric, "history": rec.history,
                    "members": [m["model_id"] for m in rec.spec.get("members", [])]})
    elif rec.spec.get("members"):
        members = ", ".join(f"#{m['model_id']}" for m in rec.spec["members"])
        print(f"model #{model_id}: an ensemble of models {members}, ranked as one; validation "
              f"{rec.spec['spec']['select_metric']} {rec.best_metric:.4f}")
    else:
        best = "n/a" if rec.best_metric is None else f"{rec.best_metric:.4f} at step {rec.best_step}"
        print(f"model #{model_id}: {rec.status} at step {rec.step}; best validation "
              f"{rec.spec['spec']['select_metric']} {best}")
        if rec.status in ("stopped", "interrupted"):
            print("run the same command again to continue training")
    return 0


def _run_training(args: argparse.Namespace, dist, make_task):
    """Run a training task on the project; its record, or None after Ctrl-C (the last
    completed step is saved by the task). Ranks beside 0 open the project read-only, once
    rank 0 has opened it (and brought an older file up to date), and print nothing."""
    from ..core.events import drive

    if not dist.is_main:
        dist.from_main(0)
    with open_store(args.project, read_only=not dist.is_main) as store:
        if dist.active and dist.is_main:
            dist.from_main(0)
        try:
            if dist.is_main:
                model_id = run_task(make_task(store), quiet=args.json)
            else:
                model_id = drive(make_task(store))
        except KeyboardInterrupt:
            if dist.is_main:
                print("\nsemid train: interrupted; the last completed step is saved — run the same 'semid train' "
                      "command again to resume", flush=True)
            return None
        return store.get_model(model_id)


def _train_joint(args: argparse.Namespace, dist) -> int:
    from ..core.generative.joint import joint_settings, train_joint

    overrides = _overrides(args, parse_key_values(args.set, "--set"))
    overrides["task"] = args.task
    if args.mix is not None:
        if args.task != "joint":
            raise SemidError("--mix is the share of search targets of a joint model; use it with --task joint")
        overrides["mix"] = str(args.mix)
    if args.query_encoder:
        overrides["query_encoder"] = args.query_encoder
    spec, joint = joint_settings(args.preset, overrides)
    resume: int | bool | None = False if args.new else args.resume
    rec = _run_training(args, dist, lambda store: train_joint(
        store, spec, joint, resume=resume, name=args.name, preset=args.preset, device=args.device,
        max_minutes=args.max_minutes, max_call_steps=args.stop_after, checkpoint_s=args.checkpoint_every,
        dist=dist, fit_schedule=_fit_schedule(args)))
    if rec is None:
        return 130
    if not dist.is_main:
        return 0
    model_id = rec.id
    if args.json:
        print_json({"model_id": model_id, "kind": rec.kind, "task": args.task, "status": rec.status, "step": rec.step,
                    "best_step": rec.best_step, "best_metric": rec.best_metric, "history": rec.history})
    else:
        best = "n/a" if rec.best_metric is None else f"{rec.best_metric:.4f} at step {rec.best_step}"
        print(f"joint model #{model_id} ({args.task}): {rec.status} at step {rec.step}; best selection value {best}")
        if rec.status in ("stopped", "interrupted"):
            print("run the same command again to continue training")
    return 0


def _evaluate_joint(args: argparse.Namespace) -> int:
    from ..core import search
    from ..core.generative.joint import evaluate_joint

    ks = _ks(args.k or "10,30")
    with open_store(args.project) as store:
        report = run_task(evaluate_joint(store, args.model, ks=ks, beam=args.beam, rec=args.task == "both",
                                         exclude_history=args.exclude_history, device=args.device), quiet=args.json)
    if args.json:
        print_json(report)
        return 0
    s = report["settings"]
    print(search.format_metrics(report["search"], s["ks"],
                                title=f"joint search on {s['n_queries']} {s['split']} queries "
                                      f"(models {[m['model_id'] for m in s['models']]})"))
    if report["rec"] is not None:
        summ = report["rec"]["summary"]
        print("rec (test): " + ", ".join(f"R@{k} {summ[f'recall@{k}']['mean']:.4f}" for k in s["rec_ks"]))
    print(f"saved as evaluation(s) {report['ids']}")
    return 0


def _evaluate_query_file(args: argparse.Namespace) -> int:
    from ..core.generative.joint.query_log import evaluate_query_log, format_report

    ks = _ks(args.k or "10,30")
    mapping = parse_key_values(args.map, "--map")
    with open_store(args.project) as store:
        report = run_task(evaluate_query_log(store, args.queries, model_ids=args.model, ks=ks, beam=args.beam,
                                             format=args.format, mapping=mapping or None, encoding=args.encoding,
                                             on_unknown=args.unknown_items, device=args.device), quiet=args.json)
    if args.json:
        report["leakage"].pop("rows", None)  # positions in the file: only the count matters here
        print_json(report)
        return 0
    print(format_report(report))
    print(f"saved as evaluation #{report['id']} (the file's name and sha256 and the figures; not its queries)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..core.generative import evaluate_model

    task = args.task or ("search" if args.queries else "rec")
    if args.queries:
        if task != "search":
            raise SemidError("--queries scores search requests: use it with --task search")
        return _evaluate_query_file(args)
    if args.map or args.encoding or args.format != "auto":
        raise SemidError("--format, --map and --encoding describe a query file: use them with --queries FILE")
    if task != "rec":
        return _evaluate_joint(args)
    ks = _ks(args.k or "5,10,20")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    with open_store(args.project) as store:
        report = run_task(evaluate_model(store, args.model, split=args.split, ks=ks, beam=args.beam,
                                         baselines=baselines, sasrec_minutes=args.sasrec_minutes,
                                         exclude_history=args.exclude_history, device=args.device),
                       quiet=args.json)
    if args.json:
        print_json(report)
        return 0
    s = report["settings"]
    print(f"split {s['split']}, {s['n_test']} test users, {s['n_items']} items (full catalogue), beam {s['beam']}, "
          f"models {s['model_ids']} (seeds {s['seeds']})"
          + ("; history items left out of every list" if s.get("exclude_history") else ""))
    header = "model".ljust(12) + "".join(f"R@{k}".rjust(17) + f"N@{k}".rjust(17) for k in s["ks"])
    print(header)
    for name, entry in report["models"].items():
        summ = entry["summary"]
        cells = []
        for k in s["ks"]:
            for m in ("recall", "ndcg"):
                v = summ[f"{m}@{k}"]
                cells.append((f"{v['mean']:.4f}" + (f" ± {v['std']:.4f}" if v["n"] > 1 else "")).rjust(17))
        print(name.ljust(12) + "".join(cells))
    print(f"saved as evaluation #{report.get('evaluation_id')}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from ..core.generative import MODEL_KIND, recommend
    from ..core.generative.joint import JOINT_KIND, has_joint_model, load_joint
    from ..core.generative.joint.evaluate import pick_joint

    history = [h for h in args.history.split(",")]
    with open_store(args.project) as store:
        model_id = args.model
        if model_id is None and not store.list_models(MODEL_KIND) and has_joint_model(store):
            model_id = pick_joint(store).id  # a project whose only generative model is a joint one
        loaded = None
        if model_id is not None and store.get_model(model_id).kind == JOINT_KIND:
            # a joint search + rec model recommends too: its rec side, as the playground uses it
            loaded = load_joint(store, model_id, device=args.device).recommender()
        rows = recommend(store, history, model_id=model_id, k=args.k, beam=args.beam,
                         temperature=args.temperature, seed=args.seed, exclude_history=args.exclude_history,
                         skip_unknown=args.skip_unknown, device=args.device, loaded=loaded)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        print(f"{r['rank']:>3}  {r['score']:9.3f}  {r['sid']}  {r['item_id']}  {r['title'] or ''}")
    return 0
