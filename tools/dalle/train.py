"""Train the tiny DALL·E Mini on the shapes world: caption tokens -> VQ image tokens (8x8 = 64, codebook 512).

    /usr/bin/python3 -m tools.dalle.train --out DIR --vq VQDIR/vq.pt --minutes 30 [--tokenizer TOKDIR]
        [--seed 1] [--device cpu|cuda] [--threads 1] [--batch 32] [--lr 2e-3] [--max-steps N]
        [--scenes 30000] [--captions-per-scene 3] [--empty-frac 0.1] [--eval-n 500] [--no-eval]
        [--embed 192] [--heads 6] [--glu 510] [--encoder-layers 2] [--decoder-layers 3] [--text-tokens 40]

Data: ``--scenes`` scenes from ``world.sample_scene(split="train")`` (held-out combinations never appear), each
rendered at 32x32 and VQ-encoded once, with ``--captions-per-scene`` fresh captions each; the token dataset is
cached in DIR/dataset.pt (reused when the VQ checkpoint, tokenizer and sizes are unchanged). At batch time a
fraction ``--empty-frac`` of the rows gets the empty caption ``<s></s>`` (the unconditional row of
super-conditioning). Loss: cross-entropy of the 64 image tokens over the first ``image_vocab_size`` logits,
decoder input ``[bos] + tokens[:-1]``. AdamW (0.9, 0.98, wd 0.01), 100-step warm-up, cosine decay to 5 % over the
time budget (or --max-steps), gradient clipping at 1. Writes DIR/dalle.pt (config, state_dict, tokenizer, extra),
DIR/tokenizer/{vocab.json,merges.txt}, DIR/metrics.json; a partial dalle.pt every 3 minutes. At the end it runs
the judge evaluation of tools.dalle.evaluate (500 seen + 500 held-out prompts) unless --no-eval.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from tools import steps
from tools.dalle import tokenizer as tokmod
from tools.dalle.model import DalleConfig, DalleModel, save
from tools.shapes import world
from tools.vq import model as vqmodel

EMPTY = (tokmod.BOS_ID, tokmod.EOS_ID)


def tiny_config(text_vocab_size: int, **over) -> DalleConfig:
    d = dict(name="tiny-dalle", text_vocab_size=text_vocab_size, text_token_count=40, embed_dim=192,
             attention_heads=6, glu_hidden=510, encoder_layers=2, decoder_layers=3, image_vocab_size=512,
             decoder_vocab_rows=513, bos_id=512, image_token_grid=8, image_size=32,
             supercondition_factor=1.5, top_k=16, temperature=1.0)
    d.update(over)
    return DalleConfig(**d)


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@torch.no_grad()
def encode_images(vq, imgs: np.ndarray, device, bs: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(imgs), bs):
        out.append(vq.encode(torch.from_numpy(imgs[i:i + bs]).to(device)).cpu())
    return torch.cat(out).to(torch.int16)


def build_dataset(vq, tok, n_scenes: int, caps_per_scene: int, text_count: int, seed: int, device,
                  split: str = "train", log=print) -> dict:
    """{"text": int16 [n, T] (pad 1), "image": int16 [n, 64], "scene": int32 [n]} with n = scenes * captions."""
    r = random.Random(seed)
    t0 = time.time()
    imgs, texts, scene_idx = [], [], []
    for s in range(n_scenes):
        scene = world.sample_scene(r, split=split, size=vq.cfg.resolution)
        imgs.append(world.render(scene))
        for _ in range(caps_per_scene):
            texts.append(tokmod.pad_tokens(tok.tokenize(world.render_caption(scene, r)), text_count))
            scene_idx.append(s)
    imgs = np.stack(imgs)
    log(f"data: {n_scenes} scenes x {caps_per_scene} captions rendered in {time.time() - t0:.1f}s; VQ-encoding",
        flush=True)
    t1 = time.time()
    codes = encode_images(vq, imgs, device)
    log(f"data: encoded {n_scenes} images in {time.time() - t1:.1f}s ({n_scenes / max(time.time() - t1, 1e-9):.0f}/s)"
        f", {int(torch.unique(codes.long()).numel())} distinct codes", flush=True)
    sidx = torch.tensor(scene_idx, dtype=torch.long)
    return {"text": torch.tensor(texts, dtype=torch.int16), "image": codes[sidx], "scene": sidx.to(torch.int32)}


# Datasets cached beside the run, rebuilt when their recipe changes; a reused one reports its size.
load_or_build = functools.partial(steps.load_or_build, describe=lambda d: f"{d['text'].shape[0]} pairs")


def make_batch(data: dict, idx: torch.Tensor, empty_frac: float, gen: torch.Generator, bos: int, device):
    text = data["text"][idx].long()
    image = data["image"][idx].long()
    if empty_frac > 0:
        drop = torch.rand(len(idx), generator=gen) < empty_frac
        if bool(drop.any()):
            text[drop] = tokmod.PAD_ID
            text[drop, 0] = tokmod.BOS_ID
            text[drop, 1] = tokmod.EOS_ID
    # trim all-pad columns (the encoder masks pads; positions stay 0..t-1, so this is exact)
    used = int((text != tokmod.PAD_ID).any(0).nonzero().max()) + 1
    text = text[:, :used]
    prev = torch.cat([torch.full((len(idx), 1), bos, dtype=torch.long), image[:, :-1]], 1)
    return text.to(device), prev.to(device), image.to(device)


def loss_fn(model: DalleModel, text, prev, target):
    v = model.cfg.image_vocab_size
    logits = model(text, prev)[..., :v]
    loss = F.cross_entropy(logits.reshape(-1, v), target.reshape(-1))
    acc = (logits.argmax(-1) == target).float().mean()
    return loss, acc


@torch.no_grad()
def eval_loss(model: DalleModel, data: dict, device, bs: int = 128) -> dict:
    was = model.training
    model.eval()
    n = data["text"].shape[0]
    tot, acc = 0.0, 0.0
    g = torch.Generator().manual_seed(0)
    for i in range(0, n, bs):
        idx = torch.arange(i, min(n, i + bs))
        text, prev, target = make_batch(data, idx, 0.0, g, model.cfg.bos_id, device)
        l, a = loss_fn(model, text, prev, target)
        tot += float(l) * len(idx)
        acc += float(a) * len(idx)
    model.train(was)
    return {"loss": tot / n, "acc": acc / n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.dalle.train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vq", required=True, help="VQ checkpoint (tools.vq.train's vq.pt)")
    ap.add_argument("--tokenizer", default=None, help="dir with vocab.json/merges.txt (default: train one)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--scenes", type=int, default=30000)
    ap.add_argument("--captions-per-scene", type=int, default=3)
    ap.add_argument("--empty-frac", type=float, default=0.1)
    ap.add_argument("--embed", type=int, default=192)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--glu", type=int, default=510)
    ap.add_argument("--encoder-layers", type=int, default=2)
    ap.add_argument("--decoder-layers", type=int, default=3)
    ap.add_argument("--text-tokens", type=int, default=40)
    ap.add_argument("--eval-n", type=int, default=500)
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--log-every", type=float, default=30.0, help="seconds between progress lines")
    ap.add_argument("--val-every", type=float, default=300.0, help="seconds between validation losses")
    ap.add_argument("--init", default=None, help="start from this dalle.pt (same config)")
    args = ap.parse_args(argv)

    def bad(msg):
        print(f"error: {msg}", file=sys.stderr)
        return 2

    if not os.path.isfile(args.vq):
        return bad(f"--vq {args.vq}: no such file (train one with python3 -m tools.vq.train)")
    if args.minutes <= 0 and args.max_steps <= 0:
        return bad("give --minutes > 0 or --max-steps > 0")
    if not 0.0 <= args.empty_frac < 1.0:
        return bad("--empty-frac must be in [0, 1)")
    if args.device == "cuda" and not torch.cuda.is_available():
        return bad("--device cuda: CUDA is not available")
    if args.embed % args.heads:
        return bad("--embed must be a multiple of --heads")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)

    vq = vqmodel.load(args.vq, map_location="cpu").to(device).eval()
    if args.tokenizer:
        tok = tokmod.TextTokenizer.load(args.tokenizer)
    else:
        t0 = time.time()
        tok = tokmod.train_world_tokenizer()
        print(f"tokenizer: trained {tok.vocab_size} entries in {time.time() - t0:.1f}s", flush=True)
    tok.save(os.path.join(args.out, "tokenizer"))
    side = vq.cfg.token_side
    cfg = tiny_config(tok.vocab_size, text_token_count=args.text_tokens, embed_dim=args.embed,
                      attention_heads=args.heads, glu_hidden=args.glu, encoder_layers=args.encoder_layers,
                      decoder_layers=args.decoder_layers, image_vocab_size=vq.cfg.n_embed,
                      decoder_vocab_rows=vq.cfg.n_embed + 1, bos_id=vq.cfg.n_embed, image_token_grid=side,
                      image_size=vq.cfg.resolution, dropout=args.dropout)

    vq_digest = file_digest(args.vq)
    tok_digest = hashlib.sha256((tok.vocab_text() + tok.merges_text()).encode()).hexdigest()[:16]
    key = {"vq": vq_digest, "tok": tok_digest, "scenes": args.scenes, "caps": args.captions_per_scene,
           "T": cfg.text_token_count, "seed": args.seed, "v": 1}
    t_data = time.time()
    data = load_or_build(os.path.join(args.out, "dataset.pt"), key, lambda: build_dataset(
        vq, tok, args.scenes, args.captions_per_scene, cfg.text_token_count, 1_000_003 + args.seed, device))
    vkey = dict(key, scenes=256, caps=1)
    val_seen = load_or_build(os.path.join(args.out, "val_seen.pt"), vkey, lambda: build_dataset(
        vq, tok, 256, 1, cfg.text_token_count, 5_000_011 + args.seed, device, split="train"))
    val_held = load_or_build(os.path.join(args.out, "val_heldout.pt"), vkey, lambda: build_dataset(
        vq, tok, 256, 1, cfg.text_token_count, 6_000_007 + args.seed, device, split="heldout"))
    data_s = time.time() - t_data
    n = data["text"].shape[0]
    too_long = int((data["text"][:, -1] != tokmod.PAD_ID).sum())
    print(f"data: {n} pairs ready in {data_s:.1f}s ({too_long} captions fill all {cfg.text_token_count} text "
          f"positions)", flush=True)

    model = DalleModel(cfg).init_weights(0.02)
    if args.init:
        ck = torch.load(args.init, map_location="cpu")
        model.load_state_dict(ck["state_dict"])
    model.to(device).train()
    decay = [p for nme, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for nme, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    nparam = sum(p.numel() for p in model.parameters())
    print(f"config {cfg.to_json()}", flush=True)
    print(f"params {nparam / 1e6:.2f}M  batch {args.batch}  device {device}  threads {args.threads}", flush=True)

    gen = torch.Generator().manual_seed(args.seed)
    budget = args.minutes * 60.0 if args.minutes > 0 else float("inf")
    t0 = time.time()
    last_log = last_ckpt = last_val = t0
    step, ema_loss, ema_acc = 0, None, None
    perm, pos = torch.randperm(n, generator=gen), 0
    history = []
    ckpt_path = os.path.join(args.out, "dalle.pt")
    extra_base = {"vq_path": os.path.abspath(args.vq), "vq_digest": vq_digest, "args": vars(args)}
    while True:
        el = time.time() - t0
        if el >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = step / args.max_steps if args.max_steps else min(1.0, el / budget)
        if args.max_steps and budget != float("inf"):
            frac = max(frac, min(1.0, el / budget))
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        if pos + args.batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        text, prev, target = make_batch(data, idx, args.empty_frac, gen, cfg.bos_id, device)
        loss, acc = loss_fn(model, text, prev, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv, av = float(loss), float(acc)
        ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
        ema_acc = av if ema_acc is None else 0.98 * ema_acc + 0.02 * av
        now = time.time()
        if now - last_val >= args.val_every:
            vs, vh = eval_loss(model, val_seen, device), eval_loss(model, val_held, device)
            history.append({"step": step, "t": now - t0, "train_loss": ema_loss, "val_seen": vs, "val_heldout": vh})
            print(f"val step {step}  seen loss {vs['loss']:.4f} acc {vs['acc']:.3f}  heldout loss {vh['loss']:.4f} "
                  f"acc {vh['acc']:.3f}", flush=True)
            last_val = now = time.time()
        if now - last_log >= args.log_every or step == 1:
            print(f"step {step:6d}  t {now - t0:6.0f}s  {step / (now - t0):.2f} steps/s  lr {lr:.2e}  "
                  f"loss {lv:.4f} (ema {ema_loss:.4f})  acc {ema_acc:.3f}  epoch {step * args.batch / n:.2f}",
                  flush=True)
            last_log = now
        if now - last_ckpt >= 180:
            save(model, ckpt_path, tok, dict(extra_base, step=step, partial=True))
            last_ckpt = now
    train_s = time.time() - t0
    sps = step / max(train_s, 1e-9)
    print(f"trained {step} steps in {train_s / 60:.1f} min ({sps:.2f} steps/s, {sps * args.batch:.0f} samples/s)",
          flush=True)
    model.eval()
    vs, vh = eval_loss(model, val_seen, device), eval_loss(model, val_held, device)
    print(f"val final  seen loss {vs['loss']:.4f} acc {vs['acc']:.3f}  heldout loss {vh['loss']:.4f} "
          f"acc {vh['acc']:.3f}", flush=True)
    metrics = {"steps": step, "train_minutes": train_s / 60, "steps_per_s": sps, "samples_per_s": sps * args.batch,
               "batch": args.batch, "params": nparam, "pairs": n, "data_seconds": data_s,
               "train_loss_ema": ema_loss, "val_seen": vs, "val_heldout": vh, "history": history,
               "config": cfg.to_dict()}
    model.cpu()
    save(model, ckpt_path, tok, dict(extra_base, step=step, metrics=metrics))
    if not args.no_eval:
        from tools.dalle import evaluate
        model.to(device)
        res = evaluate.evaluate(model, tok, vq, n=args.eval_n, seed=args.seed, device=device)
        metrics["judge"] = res
        model.cpu()
        save(model, ckpt_path, tok, dict(extra_base, step=step, metrics=metrics))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
