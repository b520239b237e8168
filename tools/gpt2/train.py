"""Train the tiny GPT-2 on an English corpus (tools.gpt2.data) mixed with shapes-world ``Scene: <caption>`` lines.

    /usr/bin/python3 -m tools.gpt2.train --out RUN [--minutes 20 | --max-steps N] [--device cpu|cuda]
        [--corpus kjv|fortunes|none] [--captions 30000] [--vocab-size 4096] [--layers 4] [--heads 4] [--embd 128]
        [--ctx 128] [--batch 16] [--lr 2e-3] [--seed 1] [--threads 1]

Steps: documents (corpus chapters + caption documents, shuffled with the seed) -> byte-level BPE
(tools.gpt2.bpe_train) -> one token stream with ``<|endoftext|>`` between documents, cached in RUN/data.pt ->
training on random windows of ``ctx + 1`` tokens (half of them start at a document start, so a prompt at
position 0 looks like training data), AdamW (0.9, 0.95; weight decay on matrices), linear warm-up then cosine to
10 % over the time budget (or --max-steps), gradient clip 1. Progress every 30 s, validation every 5 minutes,
checkpoint every 3 minutes and at the end: RUN/gpt2.pt = {"config", "state_dict" (HF GPT-2 names),
"tokenizer": {"vocab", "merges"}, "extra"}. Validation perplexity = exp(mean next-token loss) over
non-overlapping ``ctx``-token windows of the held-out corpus chapters and of 1,000 held-out captions.
At the end, captions are sampled from the prompt ``Scene:`` and checked (tools.gpt2.data.check_caption).
With ``--corpus none`` a small built-in text replaces the corpus (smoke tests).
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import sys
import time
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from tools import steps
from tools.gpt2 import bpe_train, data
from tools.gpt2.model import GPT2, GPT2Config, generate


def save_ckpt(model: GPT2, path: str, tok: bpe_train.ByteLevelBPE, extra: dict) -> None:
    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ck = {"config": model.cfg.to_dict(), "state_dict": sd,
          "tokenizer": {"vocab": tok.vocab, "merges": tok.merges}, "extra": extra}
    tmp = path + ".tmp"
    torch.save(ck, tmp)
    os.replace(tmp, path)


def load_ckpt(path: str, map_location="cpu"):
    ck = torch.load(path, map_location=map_location)
    cfg = GPT2Config.from_dict(ck["config"])
    model = GPT2(cfg)
    model.load_state_dict(ck["state_dict"])
    tok = bpe_train.ByteLevelBPE(ck["tokenizer"]["vocab"], ck["tokenizer"]["merges"])
    return model.eval(), tok, ck


def build_data(args, log=print) -> dict:
    t0 = time.time()
    if args.corpus == "none":
        base = data.FALLBACK_TEXT.split("\n")
        train_docs, val_docs = [l for l in base if l][:-1], [l for l in base if l][-1:]
        train_docs = train_docs * 20
    else:
        train_docs, val_docs = data.corpus_documents(args.corpus)
    caps = data.caption_documents(args.captions, 1_000_003 + args.seed)
    val_caps = data.caption_documents(args.val_captions, 7_000_001 + args.seed)
    log(f"data: {len(train_docs)} corpus documents ({sum(map(len, train_docs)) / 1e6:.2f} MB), {len(caps)} captions,"
        f" {len(val_docs)} held-out documents, {len(val_caps)} held-out captions ({time.time() - t0:.1f}s)",
        flush=True)
    tok = bpe_train.train_on_texts(train_docs + caps, args.vocab_size)
    log(f"data: BPE {tok.vocab_size} entries, {len(tok.merges)} merges ({time.time() - t0:.1f}s)", flush=True)
    docs = train_docs + caps
    random.Random(args.seed).shuffle(docs)
    stream: List[int] = []
    starts: List[int] = []
    eot = tok.eot_id
    n_cap_tokens = 0
    for d in docs:
        stream.append(eot)
        starts.append(len(stream))
        ids = tok.encode_ordinary(d)
        if d.startswith(data.SCENE_PREFIX):
            n_cap_tokens += len(ids) + 1
        stream.extend(ids)
    stream.append(eot)

    def enc_docs(ds):
        s = []
        for d in ds:
            s.append(eot)
            s.extend(tok.encode_ordinary(d))
        s.append(eot)
        return torch.tensor(s, dtype=torch.int32)

    out = {"tokenizer": {"vocab": tok.vocab, "merges": tok.merges},
           "train": torch.tensor(stream, dtype=torch.int32), "starts": torch.tensor(starts, dtype=torch.int64),
           "val_text": enc_docs(val_docs), "val_captions": enc_docs(val_caps),
           "train_captions": sorted(set(caps)), "caption_token_frac": n_cap_tokens / len(stream),
           "seconds": time.time() - t0}
    log(f"data: {len(stream)} training tokens ({out['caption_token_frac'] * 100:.0f} % captions), "
        f"{len(out['val_text'])} + {len(out['val_captions'])} validation tokens, "
        f"{sum(map(len, train_docs + caps)) / len(stream):.2f} chars/token ({time.time() - t0:.1f}s)", flush=True)
    return out


def data_key(args) -> dict:
    return {"corpus": args.corpus, "captions": args.captions, "val_captions": args.val_captions,
            "vocab": args.vocab_size, "seed": args.seed, "v": 1}


# Datasets cached beside the run, rebuilt when their recipe changes; a reused one reports its size.
load_or_build = functools.partial(steps.load_or_build, describe=lambda d: f"{len(d['train'])} tokens")


def get_batch(stream: torch.Tensor, starts: torch.Tensor, batch: int, ctx: int, gen: torch.Generator,
              doc_start_frac: float = 0.5):
    n = len(stream) - ctx - 1
    rnd = torch.randint(0, n, (batch,), generator=gen)
    ds = starts[torch.randint(0, len(starts), (batch,), generator=gen)].clamp(max=n - 1)
    use = torch.rand(batch, generator=gen) < doc_start_frac
    pos = torch.where(use, ds, rnd)
    idx = pos[:, None] + torch.arange(ctx + 1)[None]
    w = stream[idx].long()
    return w[:, :-1], w[:, 1:]


@torch.no_grad()
def eval_ppl(model: GPT2, stream: torch.Tensor, device, max_windows: int = 0, bs: int = 16) -> Dict[str, float]:
    """exp(mean next-token loss) over non-overlapping windows of n_positions tokens."""
    ctx = model.cfg.n_positions
    was = model.training
    model.eval()
    n_win = (len(stream) - 1) // ctx
    if max_windows:
        n_win = min(n_win, max_windows)
    tot, cnt = 0.0, 0
    for s in range(0, n_win, bs):
        e = min(n_win, s + bs)
        idx = torch.arange(s, e)[:, None] * ctx + torch.arange(ctx + 1)[None]
        w = stream[idx].long().to(device)
        lg, _ = model(w[:, :-1])
        loss = F.cross_entropy(lg.reshape(-1, lg.shape[-1]).float(), w[:, 1:].reshape(-1), reduction="sum")
        tot += float(loss)
        cnt += w[:, 1:].numel()
    model.train(was)
    if cnt == 0:
        return {"loss": float("nan"), "ppl": float("nan"), "tokens": 0}
    return {"loss": tot / cnt, "ppl": math.exp(tot / cnt), "tokens": cnt}


def sample_captions(model: GPT2, tok: bpe_train.ByteLevelBPE, n: int, seed: int, temperature: float = 0.8,
                    top_k: int = 40, top_p: float = 0.95, repetition_penalty: float = 1.0, max_new_tokens: int = 48,
                    prompt: str = data.SCENE_PREFIX, batch: int = 50) -> List[Optional[str]]:
    """Captions sampled after ``prompt`` (text up to <|endoftext|>; None when it does not end in time)."""
    ids = tok.encode(prompt)
    out: List[Optional[str]] = []
    for b in range(0, n, batch):
        k = min(batch, n - b)
        gens = generate(model, ids, max_new_tokens, temperature, top_k, top_p, repetition_penalty,
                        seed=seed + b, num_samples=k, eos_token_id=tok.eot_id)
        for g in gens:
            if g and g[-1] == tok.eot_id:
                out.append(tok.decode(g[:-1]).strip())
            else:
                out.append(None)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpt2.train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default="kjv", choices=("kjv", "fortunes", "none"))
    ap.add_argument("--captions", type=int, default=30000)
    ap.add_argument("--val-captions", type=int, default=1000)
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embd", type=int, default=128)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--log-every", type=float, default=30.0, help="seconds between progress lines")
    ap.add_argument("--val-every", type=float, default=300.0, help="seconds between validations")
    ap.add_argument("--val-windows", type=int, default=0, help="cap on validation windows (0: all)")
    ap.add_argument("--eval-captions", type=int, default=500, help="captions sampled at the end (0: none)")
    args = ap.parse_args(argv)

    def bad(msg):
        print(f"error: {msg}", file=sys.stderr)
        return 2

    if args.minutes <= 0 and args.max_steps <= 0:
        return bad("give --minutes > 0 or --max-steps > 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        return bad("--device cuda: CUDA is not available")
    if args.embd % args.heads:
        return bad("--embd must be a multiple of --heads")
    if args.vocab_size < 257:
        return bad("--vocab-size must be at least 257")
    if args.threads < 1 or args.batch < 1 or args.ctx < 8:
        return bad("--threads/--batch must be >= 1 and --ctx >= 8")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    try:
        d = load_or_build(os.path.join(args.out, "data.pt"), data_key(args), lambda: build_data(args))
    except data.CorpusError as ex:
        return bad(str(ex))
    tok = bpe_train.ByteLevelBPE(d["tokenizer"]["vocab"], d["tokenizer"]["merges"])
    stream, starts = d["train"], d["starts"]
    if len(stream) < args.ctx + 2:
        return bad("training stream shorter than one window")
    cfg = GPT2Config(vocab_size=tok.vocab_size, n_positions=args.ctx, n_embd=args.embd, n_layer=args.layers,
                     n_head=args.heads, bos_token_id=tok.eot_id, eos_token_id=tok.eot_id, dropout=args.dropout)
    model = GPT2(cfg).to(device).train()
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    nparam = model.num_params()
    print(f"config {cfg.to_json()}", flush=True)
    print(f"params {nparam / 1e6:.2f}M  batch {args.batch}x{args.ctx}  device {device}  threads {args.threads}  "
          f"train tokens {len(stream)}", flush=True)

    gen = torch.Generator().manual_seed(args.seed)
    budget = args.minutes * 60.0 if args.minutes > 0 else float("inf")
    t0 = time.time()
    last_log = last_ckpt = last_val = t0
    step, ema = 0, None
    history = []
    ckpt_path = os.path.join(args.out, "gpt2.pt")
    extra_base = {"args": vars(args), "data_key": d["key"]}
    vw = args.val_windows
    while True:
        el = time.time() - t0
        if el >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = step / args.max_steps if args.max_steps else min(1.0, el / budget)
        if args.max_steps and budget != float("inf"):
            frac = max(frac, min(1.0, el / budget))
        lr = args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))
        lr *= min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = get_batch(stream, starts, args.batch, args.ctx, gen)
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv = float(loss)
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        now = time.time()
        if now - last_val >= args.val_every:
            vt, vc = eval_ppl(model, d["val_text"], device, vw), eval_ppl(model, d["val_captions"], device, vw)
            history.append({"step": step, "t": now - t0, "train_loss": ema, "val_text": vt, "val_captions": vc})
            print(f"val step {step}  text loss {vt['loss']:.4f} ppl {vt['ppl']:.2f}  captions loss {vc['loss']:.4f} "
                  f"ppl {vc['ppl']:.2f}", flush=True)
            last_val = now = time.time()
        if now - last_log >= args.log_every or step == 1:
            print(f"step {step:6d}  t {now - t0:6.0f}s  {step / (now - t0):.2f} steps/s  lr {lr:.2e}  "
                  f"loss {lv:.4f} (ema {ema:.4f})  epoch {step * args.batch * args.ctx / len(stream):.2f}",
                  flush=True)
            last_log = now
        if now - last_ckpt >= 180:
            save_ckpt(model, ckpt_path, tok, dict(extra_base, step=step, partial=True))
            last_ckpt = now
    train_s = time.time() - t0
    sps = step / max(train_s, 1e-9)
    print(f"trained {step} steps in {train_s / 60:.1f} min ({sps:.2f} steps/s, "
          f"{sps * args.batch * args.ctx:.0f} tokens/s)", flush=True)
    model.eval()
    vt, vc = eval_ppl(model, d["val_text"], device, vw), eval_ppl(model, d["val_captions"], device, vw)
    print(f"val final  text loss {vt['loss']:.4f} ppl {vt['ppl']:.2f}  captions loss {vc['loss']:.4f} "
          f"ppl {vc['ppl']:.2f}", flush=True)
    metrics = {"steps": step, "train_minutes": train_s / 60, "steps_per_s": sps,
               "tokens_per_s": sps * args.batch * args.ctx, "batch": args.batch, "ctx": args.ctx,
               "params": nparam, "train_tokens": len(stream), "caption_token_frac": d["caption_token_frac"],
               "epochs": step * args.batch * args.ctx / len(stream), "data_seconds": d.get("seconds"),
               "train_loss_ema": ema, "val_text": vt, "val_captions": vc, "history": history,
               "config": cfg.to_dict(), "corpus": args.corpus}
    if args.eval_captions > 0:
        t1 = time.time()
        caps = sample_captions(model, tok, args.eval_captions, seed=args.seed)
        st = data.caption_stats(caps, set(d["train_captions"]))
        st["seconds"] = time.time() - t1
        metrics["captions"] = st
        metrics["caption_examples"] = caps[:10]
        print("captions: " + "  ".join(f"{k} {v:.3f}" for k, v in st.items() if k != "n") + f"  (n {st['n']})",
              flush=True)
        for c in caps[:5]:
            print(f"  Scene: {c}", flush=True)
    model.cpu()
    save_ckpt(model, ckpt_path, tok, dict(extra_base, step=step, metrics=metrics))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
