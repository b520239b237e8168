"""Sample from an exported tiny GPT-2 directory: scene-caption validity and a few free-text samples.

    /usr/bin/python3 -m tools.gpt2.evaluate --model-dir models/tiny-gpt2 [--n 1000] [--seed 1]
        [--temperature T --top-k K --top-p P --repetition-penalty R] [--json OUT.json] [--show 10]

Captions: ``--n`` samples after the prompt ``Scene:`` with the directory's generation_config.json settings (or the
flags), each up to <|endoftext|> within max_new_tokens; rates as in tools.gpt2.data.check_caption (ended, parsed,
scene, in_vocab, valid, held_out) plus novel_valid (valid and not one of the training captions, which are
regenerated from --train-captions / --train-seed, the defaults of tools.gpt2.train).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from tools.gpt2 import data
from tools.gpt2.export import ExportError, load_model_dir
from tools.gpt2.model import generate
from tools.gpt2.train import sample_captions

TEXT_PROMPTS = ("And it came to pass", "The LORD is my shepherd", "In the beginning")


def evaluate(model_dir: str, n: int = 1000, seed: int = 1, sampling=None, train_captions: int = 30000,
             train_seed: int = 1, log=print) -> dict:
    c, model, tok, gen = load_model_dir(model_dir)
    s = dict(gen)
    s.update({k: v for k, v in (sampling or {}).items() if v is not None})
    t0 = time.time()
    caps = sample_captions(model, tok, n, seed, s["temperature"], s["top_k"], s["top_p"], s["repetition_penalty"],
                           s["max_new_tokens"])
    train = set(data.caption_documents(train_captions, 1_000_003 + train_seed)) if train_captions else None
    stats = data.caption_stats(caps, train)
    stats["seconds"] = round(time.time() - t0, 1)
    texts = []
    for i, p in enumerate(TEXT_PROMPTS):
        g = generate(model, tok.encode(p), 40, s["temperature"], s["top_k"], s["top_p"], max(1.1, s["repetition_penalty"]),
                     seed=seed + i, eos_token_id=tok.eot_id)[0]
        texts.append(p + tok.decode(g))
    return {"sampling": s, "captions": stats, "caption_examples": caps[:20], "text_examples": texts}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpt2.evaluate")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--top-p", type=float, default=None)
    ap.add_argument("--repetition-penalty", type=float, default=None)
    ap.add_argument("--train-captions", type=int, default=30000)
    ap.add_argument("--train-seed", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--show", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.n < 1:
        print("error: --n must be >= 1", file=sys.stderr)
        return 2
    try:
        res = evaluate(args.model_dir, args.n, args.seed,
                       {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
                        "repetition_penalty": args.repetition_penalty}, args.train_captions, args.train_seed)
    except (ExportError, OSError, ValueError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    st = res["captions"]
    print("sampling " + json.dumps(res["sampling"]))
    print("captions: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in st.items()))
    for cap in res["caption_examples"][:args.show]:
        print(f"  Scene: {cap}")
    for t in res["text_examples"]:
        print("  text: " + t.replace("\n", " / "))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
