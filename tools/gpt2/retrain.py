"""One-command retrain of the tiny GPT-2: corpus + captions -> BPE -> training -> export -> golden -> evaluation.

    /usr/bin/python3 -m tools.gpt2.retrain [--work /tmp/tiny-gpt2-work] [--minutes 22] [--seed 1]
        [--device cpu|cuda] [--threads 1] [--corpus kjv] [--model-out models/tiny-gpt2]
        [--golden-out tests/data/gpt2] [--eval-n 1000] [--dtype f32]
    tools/gpt2/retrain.sh [same options]

Needs Debian's bible-kjv (``apt-get install -y bible-kjv``) for the default corpus. Every step is a subprocess of
the tools' own CLIs with fixed seeds; timings are printed at the end and written to WORK/retrain.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from tools.steps import REPO, run_step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpt2.retrain")
    ap.add_argument("--work", default="/tmp/tiny-gpt2-work")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=22.0)
    ap.add_argument("--corpus", default="kjv", choices=("kjv", "fortunes"))
    ap.add_argument("--eval-n", type=int, default=1000)
    ap.add_argument("--dtype", default="f32", choices=("f32", "f16"))
    ap.add_argument("--fresh", action="store_true", help="delete WORK/train first (no cached data.pt)")
    ap.add_argument("--model-out", default=os.path.join(REPO, "models", "tiny-gpt2"))
    ap.add_argument("--golden-out", default=os.path.join(REPO, "tests", "data", "gpt2"))
    args = ap.parse_args(argv)
    if args.corpus == "kjv" and shutil.which("bible") is None:
        print("error: the KJV corpus needs Debian's bible-kjv: apt-get install -y bible-kjv", file=sys.stderr)
        return 2
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.model_out)), exist_ok=True)
    timings: dict = {}
    t_all = time.time()
    run_dir = os.path.join(args.work, "train")
    if args.fresh and os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    run_step("train", ["tools.gpt2.train", "--out", run_dir, "--minutes", args.minutes, "--seed", args.seed, "--corpus",
                  args.corpus, "--device", args.device, "--threads", args.threads, "--eval-captions", 0], timings)
    run_step("export", ["tools.gpt2.export", "--ckpt", os.path.join(run_dir, "gpt2.pt"), "--out", args.model_out,
                   "--dtype", args.dtype], timings)
    run_step("golden", ["tools.gpt2.golden", "--model-dir", args.model_out, "--out", args.golden_out], timings)
    eval_json = os.path.join(args.work, "eval.json")
    run_step("evaluate", ["tools.gpt2.evaluate", "--model-dir", args.model_out, "--n", args.eval_n, "--seed", args.seed,
                     "--train-seed", args.seed, "--json", eval_json, "--threads", args.threads], timings)
    timings["total"] = round(time.time() - t_all, 1)
    with open(eval_json) as f:
        ev = json.load(f)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    summary = {"timings_s": timings, "captions": ev["captions"], "val_text_ppl": m["val_text"]["ppl"],
               "val_captions_ppl": m["val_captions"]["ppl"], "steps": m["steps"], "steps_per_s": m["steps_per_s"],
               "model": args.model_out, "golden": args.golden_out}
    with open(os.path.join(args.work, "retrain.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("retrain: timings " + json.dumps(timings), flush=True)
    print(f"retrain: val ppl text {summary['val_text_ppl']:.2f} captions {summary['val_captions_ppl']:.2f}; "
          f"captions valid {ev['captions']['valid']:.1%} (parsed {ev['captions']['parsed']:.1%})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
