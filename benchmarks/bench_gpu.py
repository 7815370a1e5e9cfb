"""GPU figures: training speed of the generative recommender on the GPU at each precision,
next to the CPU, and the latency of one constrained top-10 (beam 20) on each device.

    .venv/bin/python benchmarks/bench_gpu.py [--preset laptop] [--steps 300] [--project out/bench/gpu.semid]
        [--json out/bench_gpu.json]

On a machine where torch sees no CUDA GPU it prints one line, "no GPU: skipped", and exits 0
(so it can run anywhere, e.g. in CI). The project is the bundled sample (built once through
the same core pipeline as the app); docs/scaling.md ("GPUs and torchrun") explains the options.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="laptop")
    parser.add_argument("--steps", type=int, default=300, help="training steps per measured run")
    parser.add_argument("--project", default=str(ROOT / "out" / "bench" / "gpu.semid"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no GPU: skipped")
        return 0

    from semid_studio.core.events import drive
    from semid_studio.core.generative import make_spec, train_model
    from semid_studio.core.generative.evaluate import load_model, recommend
    from semid_studio.core.pipeline import build_sample_project
    from semid_studio.core.store import ProjectStore

    project = Path(args.project)
    if not project.exists():
        project.parent.mkdir(parents=True, exist_ok=True)
        drive(build_sample_project(project))
    gpu = torch.cuda.get_device_name(0)
    print(f"GPU: {gpu}; preset {args.preset}, {args.steps} steps per run")
    runs = [("cuda", "fp32"), ("cuda", "bf16"), ("cuda", "fp16"), ("cpu", "fp32")]
    figures = []
    with ProjectStore.open(project) as store:
        for device, precision in runs:
            # one validation at the end: the figure is the training pace, not the validation's
            spec = make_spec(args.preset, {"max_steps": args.steps, "eval_every": args.steps, "valid_users": 200,
                                           "precision": precision})
            t0 = time.perf_counter()
            model_id = drive(train_model(store, spec, resume=False, preset=args.preset, device=device,
                                         name=f"bench-gpu-{device}-{precision}", checkpoint_s=0))
            wall = time.perf_counter() - t0
            rec = store.get_model(model_id)
            last = rec.history[-1]
            lm = load_model(store, model_id, device=device)
            history = [r["item_id"] for r in store.get_items(list(range(10)))]
            recommend(store, history, model_id=model_id, k=10, beam=20, loaded=lm)  # warm-up
            times = []
            for _ in range(20):
                t = time.perf_counter()
                recommend(store, history, model_id=model_id, k=10, beam=20, loaded=lm)
                times.append(time.perf_counter() - t)
            row = {"device": device, "precision": precision, "targets_per_s": round(last["targets_per_s"]),
                   "train_s": round(last["elapsed_s"], 1), "wall_s": round(wall, 1),
                   "top10_ms": round(1000 * statistics.median(times), 1),
                   "valid": last["valid"]}
            figures.append(row)
            print(f"{device:>4} {precision}: {row['targets_per_s']:>9,} targets/s, {row['train_s']:6.1f} s training, "
                  f"top-10 {row['top10_ms']:.1f} ms; valid {last['valid']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu, "preset": args.preset, "runs": figures}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
