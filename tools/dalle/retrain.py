"""One-command retrain of the tiny DALL·E: VQ -> tokenizer -> transformer -> export -> golden -> judge evaluation.

    /usr/bin/python3 -m tools.dalle.retrain [--work /tmp/tiny-dalle-work] [--seed 1] [--device cpu|cuda]
        [--vq-minutes 15] [--vq-args "..."] [--dalle-minutes 30] [--vq PATH/vq.pt (skip VQ training)] [--threads 1]
        [--model-out models/tiny-dalle] [--golden-out tests/data/dalle] [--eval-n 500] [--dtype f32]
    tools/retrain_tiny_dalle.sh [same options]

Every step is a subprocess of the tools' own CLIs with fixed seeds; timings are printed at the end and written to
WORK/retrain.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

from tools.steps import REPO, run_step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.dalle.retrain")
    ap.add_argument("--work", default="/tmp/tiny-dalle-work")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vq", default=None, help="use this vq.pt instead of training a VQ")
    ap.add_argument("--vq-minutes", type=float, default=15.0)
    ap.add_argument("--vq-args", default="", help="extra arguments for tools.vq.train, e.g. "
                    "\"--ch 16 --ch-mult 1,2,4 --batch 16 --max-steps 1200\"")
    ap.add_argument("--dalle-minutes", type=float, default=30.0)
    ap.add_argument("--scenes", type=int, default=30000)
    ap.add_argument("--eval-n", type=int, default=500)
    ap.add_argument("--dtype", default="f32", choices=("f32", "f16"))
    ap.add_argument("--model-out", default=os.path.join(REPO, "models", "tiny-dalle"))
    ap.add_argument("--golden-out", default=os.path.join(REPO, "tests", "data", "dalle"))
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    timings: dict = {}
    t_all = time.time()
    dev = ["--device", args.device]
    thr = ["--threads", args.threads]
    if args.vq:
        vq = os.path.abspath(args.vq)
        if not os.path.isfile(vq):
            print(f"error: --vq {vq}: no such file", file=sys.stderr)
            return 2
    else:
        vq_dir = os.path.join(args.work, "vq")
        run_step("vq", ["tools.vq.train", "--out", vq_dir, "--minutes", args.vq_minutes, "--seed", args.seed] + dev + thr
            + shlex.split(args.vq_args), timings)
        vq = os.path.join(vq_dir, "vq.pt")
    tok_dir = os.path.join(args.work, "tokenizer")
    run_step("tokenizer", ["tools.dalle.tokenizer", "train", "--out", tok_dir, "--seed", 0], timings)
    run_dir = os.path.join(args.work, "dalle")
    run_step("transformer", ["tools.dalle.train", "--out", run_dir, "--vq", vq, "--tokenizer", tok_dir, "--minutes",
                        args.dalle_minutes, "--seed", args.seed, "--scenes", args.scenes, "--no-eval"] + dev + thr,
        timings)
    run_step("export", ["tools.dalle.export", "--ckpt", os.path.join(run_dir, "dalle.pt"), "--vq", vq, "--out",
                   args.model_out, "--dtype", args.dtype], timings)
    run_step("golden", ["tools.dalle.golden", "--model-dir", args.model_out, "--out", args.golden_out], timings)
    eval_json = os.path.join(args.work, "eval.json")
    run_step("evaluate", ["tools.dalle.evaluate", "--model-dir", args.model_out, "--vq", vq, "--n", args.eval_n,
                     "--seed", args.seed,
                     "--json", eval_json, "--save-grid", os.path.join(args.work, "samples.png")] + dev + thr, timings)
    timings["total"] = round(time.time() - t_all, 1)
    with open(eval_json) as f:
        ev = json.load(f)
    summary = {"timings_s": timings, "judge": ev, "model": args.model_out, "golden": args.golden_out, "vq": vq}
    with open(os.path.join(args.work, "retrain.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("retrain: timings " + json.dumps(timings), flush=True)
    print(f"retrain: judge seen {ev['seen']:.1%}  held-out {ev['heldout']:.1%}  (VQ ceiling "
          f"{ev.get('seen_vq_ceiling', float('nan')):.1%} / {ev.get('heldout_vq_ceiling', float('nan')):.1%})",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
