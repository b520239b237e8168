"""Golden vectors for the C++ GPT-2 parity tests, computed from an exported model directory (weights read back
from model.safetensors with tools.gpt2.export.load_model_dir; F16 weights are upcast, everything runs in f32).

    /usr/bin/python3 -m tools.gpt2.golden --model-dir models/tiny-gpt2 --out tests/data/gpt2
    /usr/bin/python3 -m tools.gpt2.golden --random-small DIR [--seed 1234] [--dtype f32|f16] [--prefix]
        [--no-mask-buffers] [--layers 2] [--tokenizer DIR]

Writes OUT/golden.safetensors and OUT/golden.json. ``--random-small DIR``: a random-weights model at GPT-2 small's
width (vocab 50257, n_positions 1024, n_embd 768, 12 heads) with 2 layers in HF layout in DIR/model/ (mask buffers
included, as in HF's own gpt2 file), then its golden vectors in DIR/. Its vocabulary is a small trained BPE padded
with ``<unusedN>`` filler tokens to 50257, or ``--tokenizer DIR``'s vocab.json + merges.txt (GPT-2's own, e.g.
tests/data/gpt2).

Tensors (P prompts, S = sum of the prompts' token counts, V = vocab_size, N = greedy steps, K long positions):
  prompt_ids       I32 [S]      the prompts' token ids, concatenated
  prompt_offsets   I32 [P + 1]  prompt p is prompt_ids[offsets[p]:offsets[p+1]]
  tf_logits        F32 [S, V]   teacher-forced logits of each prompt (positions from 0 for each prompt)
  greedy_ids       I32 [P, N]   greedy continuation (argmax of the raw logits, KV-cached; an eos token does not
                                stop it), N = json greedy_steps
  greedy_margins   F32 [P, N]   per-step top1 - top2 logit (a tiny margin means the argmax may flip in C++)
  long_ids         I32 [L]      a long sequence (L = n_positions: the whole context)
  long_positions   I32 [K]      positions whose logits are stored
  long_logits      F32 [K, V]   teacher-forced logits of long_ids at long_positions
  proc_seen        I32 [M]      ids the repetition penalty applies to (prompt 0's ids + its first 4 greedy ids)
  proc_logits_in   F32 [V]      logits of prompt 0's last position
  proc_logits_out  F32 [V]      after HF's processors in HF's order with json ``processors`` settings
                                (repetition penalty, temperature, top-k, top-p): removed tokens are -inf
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
import torch

from tools import steps
from tools.dalle import safetensors_io as st
from tools.gpt2 import bpe_train, data
from tools.gpt2.export import ExportError, load_model_dir, model_tensors, write_model_dir
from tools.gpt2.model import GPT2, GPT2Config, generate, process_logits

PROMPTS = (
    "Scene:",
    "In the beginning God created the heaven and the earth.",
    "Hello,  world! It's 2024 \u2014 na\u00efve caf\u00e9 \U0001F642\n\tTabs   end",
    "<|endoftext|>Scene: a small red circle on the left and",
)
LONG_TEXT = ("And God said, Let there be light: and there was light. And God saw the light, that it was good: and "
             "God divided the light from the darkness. Scene: there is a big blue square on the right and a tiny "
             "yellow disc at the top, on a black background. ")
PROCESSORS = {"repetition_penalty": 1.3, "temperature": 0.8, "top_k": 40, "top_p": 0.95}
GREEDY_STEPS = 32
LONG_SEED = 4242


@torch.no_grad()
def compute(model_dir: str, prompts: Sequence[Optional[str]] = PROMPTS, raw_prompts: Sequence[Sequence[int]] = (),
            greedy_steps: int = GREEDY_STEPS, long_random: bool = False, log=print):
    """``prompts``: texts tokenized with the directory's tokenizer; ``raw_prompts``: extra prompts given as ids."""
    c, model, tok, gen = load_model_dir(model_dir)
    cfg = model.cfg
    V, Pn = cfg.vocab_size, cfg.n_positions
    t0 = time.time()
    ids = [tok.encode(p) for p in prompts] + [list(r) for r in raw_prompts]
    texts = list(prompts) + [None] * len(raw_prompts)
    for p, i in zip(texts, ids):
        if not i or len(i) + greedy_steps > Pn:
            raise ExportError(f"prompt {p!r}: {len(i)} tokens + {greedy_steps} greedy steps do not fit")
    offs = np.cumsum([0] + [len(i) for i in ids]).astype(np.int32)
    tf = [model(torch.tensor([i]))[0][0] for i in ids]
    greedy, margins = [], []
    for i in ids:
        g, m = generate(model, i, greedy_steps, greedy=True, stop_at_eos=False, return_margins=True)
        greedy.append(g[0])
        margins.append(m)
    log(f"golden: {len(ids)} prompts, teacher forcing + {greedy_steps} greedy steps {time.time() - t0:.1f}s",
        flush=True)
    # the whole context
    if long_random:
        r = random.Random(LONG_SEED)
        long_ids = [r.randrange(V) for _ in range(Pn)]
    else:
        long_ids = []
        while len(long_ids) < Pn:
            long_ids += tok.encode(LONG_TEXT)
        long_ids = long_ids[:Pn]
    long_pos = sorted({0, Pn // 2 - 1, Pn - 2, Pn - 1})
    long_lg = model(torch.tensor([long_ids]))[0][0][long_pos]
    # logits processors, on the next-token logits after `seen` (the first prompt and 4 greedy tokens), so a
    # generator fed `seen` as its prompt sees exactly these logits and this penalty set
    seen = ids[0] + greedy[0][:4]
    lin = model(torch.tensor([seen]))[0][0][-1]
    lout = process_logits(lin[None], torch.tensor([seen]), **PROCESSORS)[0]
    tensors = [
        ("prompt_ids", np.array(sum(ids, []), np.int32)),
        ("prompt_offsets", offs),
        ("tf_logits", torch.cat(tf, 0).float().numpy()),
        ("greedy_ids", np.array(greedy, np.int32)),
        ("greedy_margins", np.array(margins, np.float32)),
        ("long_ids", np.array(long_ids, np.int32)),
        ("long_positions", np.array(long_pos, np.int32)),
        ("long_logits", long_lg.float().numpy()),
        ("proc_seen", np.array(seen, np.int32)),
        ("proc_logits_in", lin.float().numpy()),
        ("proc_logits_out", lout.float().numpy()),
    ]
    files = ["config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt"]
    meta = {
        "format": "tessera.gpt2.golden", "format_version": 1,
        "config": {k: c[k] for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "layer_norm_epsilon",
                                      "bos_token_id", "eos_token_id")},
        "prompts": texts, "token_ids": ids, "pieces": [tok.pieces(i) for i in ids],
        "greedy_steps": greedy_steps, "greedy_text": [tok.decode(g) for g in greedy],
        "min_greedy_margin": float(min(min(m) for m in margins)),
        "long_text": None if long_random else LONG_TEXT, "long_seed": LONG_SEED if long_random else None,
        "processors": dict(PROCESSORS, order=["repetition_penalty", "temperature", "top_k", "top_p"]),
        "proc_kept": int(torch.isfinite(lout).sum()),
        "model_files_sha256": {f: steps.sha256_file(os.path.join(model_dir, f)) for f in files
                               if os.path.exists(os.path.join(model_dir, f))},
        "tensors": {n: {"dtype": st.dtype_name(a), "shape": list(a.shape)} for n, a in tensors},
        "notes": "f32 math from the exported files; greedy = argmax of raw logits with KV cache, eos does not stop; "
                 "<|endoftext|> in a prompt's text is the special token; tokenizer = GPT-2 byte-level BPE.",
    }
    return tensors, meta


write_golden = functools.partial(steps.write_golden, fmt="tessera.gpt2.golden")

def small_tokenizer(vocab_size: int = 50257, trained: int = 600) -> bpe_train.ByteLevelBPE:
    """A ``trained``-entry BPE (built-in text + 2,000 shapes captions), padded with filler tokens ``<unusedN>``
    (plain byte-level strings no merge produces) to ``vocab_size`` with ``<|endoftext|>`` last, as in GPT-2."""
    texts = [data.FALLBACK_TEXT] + data.caption_documents(2000, 99)
    tok = bpe_train.train_on_texts(texts, trained)
    vocab = {t: i for t, i in tok.vocab.items() if t != bpe_train.EOT}
    n = 0
    while len(vocab) < vocab_size - 1:
        s = f"<unused{n}>"
        n += 1
        if s not in vocab:
            vocab[s] = len(vocab)
    vocab[bpe_train.EOT] = vocab_size - 1
    return bpe_train.ByteLevelBPE(vocab, tok.merges)


def random_small(out_dir: str, seed: int = 1234, dtype: str = "f32", prefix: bool = False, mask_buffers: bool = True,
                 n_layer: int = 2, tokenizer: Optional[str] = None, log=print) -> str:
    """Random weights at GPT-2 small's width with ``n_layer`` layers, HF layout, in OUT/model. ``tokenizer``: a
    directory with a 50257-entry vocab.json + merges.txt to use (e.g. GPT-2's own) instead of the padded small BPE."""
    t0 = time.time()
    cfg = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=n_layer, n_head=12,
                     bos_token_id=50256, eos_token_id=50256)
    tok = bpe_train.ByteLevelBPE.load(tokenizer) if tokenizer else small_tokenizer(cfg.vocab_size)
    g = torch.Generator().manual_seed(seed)
    model = GPT2(cfg, device="meta")
    sd = {}
    for k, p in model.state_dict().items():
        if k == "wte.weight":
            std, mean = 0.1, 0.0
        elif k.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            std, mean = 0.1, 1.0
        elif k.endswith("bias"):
            std, mean = 0.02, 0.0
        else:
            std, mean = 0.05, 0.0
        sd[k] = torch.randn(tuple(p.shape), generator=g) * std + mean
    tensors = model_tensors(sd, cfg, dtype, prefix, mask_buffers)
    os.makedirs(out_dir, exist_ok=True)
    mdir = write_model_dir(os.path.join(out_dir, "model"), cfg, tensors, tok, dtype, prefix, name="random-small",
                           extra={"notes": f"random weights (seed {seed}) at GPT-2 small width, {n_layer} layers; "
                                           + (f"vocabulary from {tokenizer}" if tokenizer else
                                              f"vocabulary: a {len(tok.merges)}-merge BPE padded with <unusedN> "
                                              f"fillers to 50257")})
    log(f"random-small: model written to {mdir} in {time.time() - t0:.1f}s", flush=True)
    return mdir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpt2.golden")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--out", default=None, help="with --model-dir: where golden.safetensors/json go")
    ap.add_argument("--random-small", default=None, metavar="DIR")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dtype", default="f32", choices=("f32", "f16"))
    ap.add_argument("--prefix", action="store_true", help="--random-small: 'transformer.' names")
    ap.add_argument("--no-mask-buffers", action="store_true", help="--random-small: leave out h.N.attn.bias")
    ap.add_argument("--layers", type=int, default=2, help="--random-small: number of layers")
    ap.add_argument("--tokenizer", default=None, metavar="DIR",
                    help="--random-small: use DIR/vocab.json + merges.txt (50257 entries, e.g. GPT-2's own)")
    ap.add_argument("--greedy-steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    try:
        if args.random_small:
            if args.model_dir or args.out:
                raise ExportError("--random-small DIR takes neither --model-dir nor --out")
            if args.layers < 1:
                raise ExportError("--layers must be >= 1")
            mdir = random_small(args.random_small, args.seed, args.dtype, args.prefix, not args.no_mask_buffers,
                                args.layers, args.tokenizer)
            out = args.random_small
            r = random.Random(args.seed)
            raw = [[r.randrange(50257) for _ in range(8)]]
            tensors, meta = compute(mdir, PROMPTS[1:2], raw, args.greedy_steps or 16, long_random=True)
            meta["seed"] = args.seed
        else:
            if not args.model_dir or not args.out:
                raise ExportError("give --model-dir and --out (or --random-small DIR)")
            mdir, out = args.model_dir, args.out
            tensors, meta = compute(mdir, PROMPTS, (), args.greedy_steps or GREEDY_STEPS)
        write_golden(out, tensors, meta)
    except (ExportError, st.SafetensorsError, OSError, ValueError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    size = sum(os.path.getsize(os.path.join(out, f)) for f in ("golden.safetensors", "golden.json"))
    print(f"golden: wrote {out}/golden.safetensors + golden.json ({size / 1e6:.2f} MB) in {time.time() - t0:.1f}s; "
          f"min greedy margin {meta['min_greedy_margin']:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
