"""Train the small VQGAN on freshly sampled shapes-world images.

    /usr/bin/python3 -m tools.vq.train --out DIR --minutes M --seed S [--size 32] [--device cpu|cuda] [--threads 1]

Recipe (defaults; see README.md for the measurements behind it): batch 8, Adam (0.9, 0.99) lr 2e-3 with a 50-step
warm-up and a time-based cosine decay to 5%. The first 200 steps train a plain autoencoder (quantizer bypassed);
then the codebook is seeded by k-means++ and 10 Lloyd iterations on the last 16384 encoder outputs, and training
goes on with the EMA codebook (dead codes re-seeded from badly served encoder outputs). Loss: L1 + MSE on [0,1]
pixels, each pixel weighted 1 + 10 if its 3x3 neighbourhood holds a colour edge (normalised to mean 1), plus the VQ
commitment loss. No GAN, no perceptual loss. At the end: PSNR over 500 held-out samples and the judge's acceptance
rate of the reconstructions paired with the true captions. Writes DIR/vq.pt ({"config", "state_dict", "extra"}),
DIR/config.json and DIR/metrics.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from tools.shapes import judge as shapes_judge
from tools.shapes import world
from tools.vq.model import VQConfig, VQModel, decoder_state_dict, save


def default_config(size: int) -> VQConfig:
    # 32x32 -> 8x8 tokens (two 2x downsamplings), 64x64 -> 8x8 (three). Narrow at full resolution (16 channels),
    # wide at the token grid (64): the 8x8 width matters most for quality, the 32x32 width most for speed.
    mult = (1, 2, 4) if size == 32 else (1, 1, 2, 4)
    return VQConfig(ch=16, ch_mult=mult, num_res_blocks=1, attn_resolutions=(), z_channels=64, embed_dim=64,
                    n_embed=512, resolution=size)


def batch(rng: random.Random, n: int, size: int, split: str = "any"):
    imgs, caps = [], []
    for _ in range(n):
        _, img, cap = world.sample(rng, split=split, size=size)
        imgs.append(img)
        caps.append(cap)
    return np.stack(imgs), caps


def to_tensor(imgs: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-image PSNR (dB) between uint8 image stacks."""
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = d.reshape(d.shape[0], -1).mean(1)
    return float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))))


@torch.no_grad()
def reconstruct(model: VQModel, imgs: np.ndarray, device, bs: int = 100):
    was = model.training
    model.eval()
    outs, ids_all = [], []
    for i in range(0, len(imgs), bs):
        ids = model.encode(to_tensor(imgs[i:i + bs], device))
        outs.append(model.decode_uint8(ids))
        ids_all.append(ids.cpu())
    model.train(was)
    return np.concatenate(outs), torch.cat(ids_all)


def evaluate(model: VQModel, seed: int, size: int, device, n: int = 500) -> dict:
    rng = random.Random(10_000_019 + seed)   # disjoint from the training stream
    imgs, caps = batch(rng, n, size, split="any")
    rec, ids = reconstruct(model, imgs, device)
    ok = sum(bool(shapes_judge.judge(r, c)[0]) for r, c in zip(rec, caps))
    ok_orig = sum(bool(shapes_judge.judge(im, c)[0]) for im, c in zip(imgs, caps))
    return {"n": n, "psnr": psnr_uint8(rec, imgs), "judge_accept": ok / n, "judge_accept_originals": ok_orig / n,
            "codes_used": int(torch.unique(ids).numel()), "n_embed": model.cfg.n_embed}


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """1 where a pixel's 3x3 neighbourhood holds more than one colour, else 0: [B, 1, H, W]."""
    mx = F.max_pool2d(x, 3, 1, 1)
    mn = -F.max_pool2d(-x, 3, 1, 1)
    return ((mx - mn).amax(1, keepdim=True) > 1e-3).to(x.dtype)


def pixel_loss(rec: torch.Tensor, x: torch.Tensor, l1: float = 1.0, mse: float = 1.0, edge_weight: float = 0.0):
    """l1 * L1 + mse * MSE, per pixel weighted by 1 + edge_weight on colour edges (normalised to mean 1)."""
    if edge_weight <= 0:
        return l1 * F.l1_loss(rec, x) + mse * F.mse_loss(rec, x)
    w = 1.0 + edge_weight * edge_map(x)
    w = w / w.mean()
    d = rec - x
    return (w * (l1 * d.abs() + mse * d * d)).mean()


def config_from_args(args) -> VQConfig:
    cfg = default_config(args.size)
    over = {"ch": args.ch, "ch_mult": args.ch_mult, "num_res_blocks": args.res_blocks, "z_channels": args.z_channels,
            "embed_dim": args.embed_dim, "n_embed": args.n_embed, "beta": args.beta, "ema_decay": args.ema_decay,
            "dead_threshold": args.dead_threshold, "l2_codes": args.l2_codes}
    d = dataclasses.asdict(cfg)
    for k, v in over.items():
        if v is not None:
            d[k] = tuple(int(t) for t in v.split(",")) if k == "ch_mult" else v
    return VQConfig(**d)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.vq.train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=32, choices=(32, 64))
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-min", type=float, default=0.05, help="final learning rate as a fraction of --lr")
    ap.add_argument("--warmup", type=int, default=50, help="learning-rate warm-up steps")
    ap.add_argument("--ae-steps", type=int, default=200,
                    help="plain-autoencoder steps (quantizer bypassed) before k-means seeding of the codebook "
                         "(the phase also ends after 25%% of the time budget)")
    ap.add_argument("--kmeans-vectors", type=int, default=16384,
                    help="encoder outputs (from the last autoencoder steps) that k-means clusters")
    ap.add_argument("--kmeans-iters", type=int, default=10)
    ap.add_argument("--l1", type=float, default=1.0, help="weight of the L1 pixel loss")
    ap.add_argument("--mse", type=float, default=1.0, help="weight of the MSE pixel loss")
    ap.add_argument("--edge-weight", type=float, default=10.0,
                    help="extra pixel-loss weight on pixels next to a colour edge (weight 1 + this)")
    # model overrides (default: default_config(size))
    ap.add_argument("--ch", type=int)
    ap.add_argument("--ch-mult", help="comma-separated, e.g. 1,2,4")
    ap.add_argument("--res-blocks", type=int)
    ap.add_argument("--z-channels", type=int)
    ap.add_argument("--embed-dim", type=int)
    ap.add_argument("--n-embed", type=int)
    ap.add_argument("--beta", type=float)
    ap.add_argument("--ema-decay", type=float)
    ap.add_argument("--dead-threshold", type=float)
    ap.add_argument("--l2-codes", type=int, choices=(0, 1))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--eval-n", type=int, default=500)
    ap.add_argument("--log-every", type=float, default=30.0, help="seconds between progress lines")
    args = ap.parse_args(argv)
    if args.l2_codes is not None:
        args.l2_codes = bool(args.l2_codes)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    cfg = config_from_args(args)
    model = VQModel(cfg).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.99))
    nparam = sum(p.numel() for p in model.parameters())
    print(f"config {cfg.to_json()}", flush=True)
    print(f"args {vars(args)}", flush=True)
    print(f"params {nparam / 1e6:.2f}M  tokens {cfg.token_side}x{cfg.token_side}  device {device}", flush=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        f.write(cfg.to_json() + "\n")

    rng = random.Random(args.seed)
    budget = args.minutes * 60.0
    t0 = time.time()
    last_log = t0
    last_ckpt = t0
    step = 0
    usage = torch.zeros(cfg.n_embed, dtype=torch.bool)
    zbuf = []
    ae_phase = args.ae_steps > 0
    kmeans_batches = max(1, math.ceil(args.kmeans_vectors / (args.batch * cfg.token_side ** 2)))
    while True:
        el = time.time() - t0
        if el >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = min(1.0, el / budget) if not args.max_steps else step / args.max_steps
        lr = args.lr * (args.lr_min + (1 - args.lr_min) * 0.5 * (1 + math.cos(math.pi * frac)))
        warm = min(1.0, (step + 1) / max(1, args.warmup))
        for g in opt.param_groups:
            g["lr"] = lr * warm
        imgs, _ = batch(rng, args.batch, args.size)
        x = to_tensor(imgs, device)
        if ae_phase and (step >= args.ae_steps or el >= 0.25 * budget):
            ae_phase = False
            tk = time.time()
            mse_k = model.init_codebook(torch.cat(zbuf), iters=args.kmeans_iters)
            print(f"k-means codebook init on {sum(len(z) for z in zbuf)} vectors: mse {mse_k:.4f} "
                  f"({time.time() - tk:.1f}s)", flush=True)
            zbuf = []
        bypass = ae_phase
        rec, vq_loss, ids = model(x, bypass=bypass)
        rec_loss = pixel_loss(rec, x, args.l1, args.mse, args.edge_weight)
        loss = rec_loss + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if bypass and (step > args.ae_steps - kmeans_batches or time.time() - t0 > 0.2 * budget):
            zbuf = zbuf[-(kmeans_batches - 1):] if kmeans_batches > 1 else []
            zbuf.append(model.encode_z(x))
        if ids is not None:
            usage[ids.flatten().cpu()] = True
        now = time.time()
        if now - last_log >= args.log_every or step == 1:
            with torch.no_grad():
                mse = F.mse_loss(rec.clamp(0, 1), x).item()
            alive = int((model.ema_cluster_size > 1.0).sum()) if cfg.ema else -1
            nb = int(torch.unique(ids).numel()) if ids is not None else 0
            print(f"step {step:6d}  t {now - t0:6.0f}s  {step / (now - t0):.2f} steps/s  lr {lr * warm:.2e}  "
                  f"loss {loss.item():.4f}  rec {rec_loss.item():.4f}  vq {vq_loss.item():.4f}  "
                  f"psnr {10 * math.log10(1.0 / max(mse, 1e-10)):.2f}  "
                  f"codes batch {nb} window {int(usage.sum())} ema_alive {alive}"
                  + ("  [ae]" if bypass else ""), flush=True)
            usage.zero_()
            last_log = now
        if now - last_ckpt >= 180:
            save(model, os.path.join(args.out, "vq.pt"), {"step": step, "partial": True})
            last_ckpt = now
    if ae_phase and zbuf:                  # stopped inside the autoencoder phase: still seed the codebook
        model.init_codebook(torch.cat(zbuf), iters=args.kmeans_iters)
    train_s = time.time() - t0
    print(f"trained {step} steps in {train_s / 60:.1f} min ({step / max(train_s, 1e-9):.2f} steps/s)", flush=True)

    te = time.time()
    m = evaluate(model, args.seed, args.size, device, n=args.eval_n)
    m.update({"steps": step, "train_minutes": train_s / 60, "steps_per_s": step / max(train_s, 1e-9),
              "batch": args.batch, "eval_seconds": time.time() - te, "params": nparam,
              "decoder_tensors": len(decoder_state_dict(model))})
    print("eval " + json.dumps(m), flush=True)
    save(model, os.path.join(args.out, "vq.pt"), {"step": step, "metrics": m})
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(m, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
