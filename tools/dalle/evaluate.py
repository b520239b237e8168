"""Judge evaluation of the tiny DALL·E: generate images for fresh shapes-world captions and score them.

    /usr/bin/python3 -m tools.dalle.evaluate --model-dir models/tiny-dalle [--n 500] [--seed 1]
    /usr/bin/python3 -m tools.dalle.evaluate --ckpt RUN/dalle.pt [--vq VQ/vq.pt] [--n 500]
        [--factor F] [--top-k K] [--temperature T] [--sweep "F:K:T,F:K:T,..."] [--device cpu|cuda]
        [--threads 1] [--save-grid PNG] [--json OUT.json]

Prompts: ``n`` captions of split="train" scenes (seen combinations, fresh scenes and captions; stream
``random.Random(20_000_003 + seed)``) and ``n`` of split="heldout" scenes (``random.Random(30_000_001 + seed)``).
Each is generated with super-conditioning (min-dalle's 2-row layout, §1.6), decoded with the VQ and scored with
tools.shapes.judge against its caption. Also reported: the VQ ceiling, i.e. the judge's acceptance of the VQ
reconstructions of the prompts' true images (needs the VQ's encoder: with --model-dir give --vq). ``--sweep`` evaluates several settings on a separate validation
stream (seeds + 40_000_000 / 50_000_000) so the defaults are not chosen on the reported prompts.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import List, Optional, Tuple

import numpy as np
import torch

from tools.dalle import tokenizer as tokmod
from tools.dalle.model import DalleModel, generate
from tools.shapes import judge as shapes_judge
from tools.shapes import world

SEEN_BASE, HELD_BASE = 20_000_003, 30_000_001
SWEEP_SEEN_BASE, SWEEP_HELD_BASE = 40_000_000, 50_000_000


def prompts(n: int, seed: int, split: str, size: int = 32) -> Tuple[List[str], np.ndarray]:
    r = random.Random(seed)
    caps, imgs = [], []
    for _ in range(n):
        _, img, cap = world.sample(r, split=split, size=size)
        caps.append(cap)
        imgs.append(img)
    return caps, np.stack(imgs)


@torch.no_grad()
def generate_images(model: DalleModel, tok, vq, captions: List[str], factor: float, top_k: int,
                    temperature: float, seed: int, device, batch: int = 250) -> Tuple[np.ndarray, torch.Tensor]:
    cfg = model.cfg
    gen = torch.Generator(device=device).manual_seed(seed)
    imgs, toks = [], []
    for i in range(0, len(captions), batch):
        rows = [tokmod.text_rows(tok.tokenize(c), cfg.text_token_count) for c in captions[i:i + batch]]
        t = torch.tensor(rows, dtype=torch.long, device=device)
        ids = generate(model, t[:, 0], t[:, 1], factor, top_k, temperature, generator=gen)
        toks.append(ids.cpu())
        imgs.append(vq.decode_uint8(ids.to(device)))
    return np.concatenate(imgs), torch.cat(toks)


def judge_all(images: np.ndarray, captions: List[str]) -> List[bool]:
    return [bool(shapes_judge.judge(im, c)[0]) for im, c in zip(images, captions)]


@torch.no_grad()
def vq_ceiling(vq, images: np.ndarray, captions: List[str], device) -> float:
    rec = []
    for i in range(0, len(images), 250):
        rec.append(vq.decode_uint8(vq.encode(torch.from_numpy(images[i:i + 250]).to(device))))
    return float(np.mean(judge_all(np.concatenate(rec), captions)))


def evaluate(model: DalleModel, tok, vq, n: int = 500, seed: int = 1, device="cpu", factor: Optional[float] = None,
             top_k: Optional[int] = None, temperature: Optional[float] = None, sweep: bool = False,
             log=print, keep_images: bool = False, ceiling_vq="same") -> dict:
    """``vq`` decodes the generated tokens. ``ceiling_vq``: a VQ with a trained encoder for the VQ ceiling
    ("same": ``vq`` itself; None: skip it; an exported directory holds only the detokenizer)."""
    cfg = model.cfg
    f = cfg.supercondition_factor if factor is None else factor
    k = cfg.top_k if top_k is None else top_k
    temp = cfg.temperature if temperature is None else temperature
    model.eval()
    vq.eval()
    res = {"n": n, "seed": seed, "supercondition_factor": f, "top_k": k, "temperature": temp}
    t0 = time.time()
    for split, base in (("train", SWEEP_SEEN_BASE if sweep else SEEN_BASE),
                        ("heldout", SWEEP_HELD_BASE if sweep else HELD_BASE)):
        caps, truth = prompts(n, base + seed, split, cfg.image_size)
        tg = time.time()
        imgs, _ = generate_images(model, tok, vq, caps, f, k, temp, seed, device)
        gen_s = time.time() - tg
        ok = judge_all(imgs, caps)
        name = "seen" if split == "train" else "heldout"
        res[name] = float(np.mean(ok))
        res[name + "_generate_seconds"] = gen_s
        cvq = vq if ceiling_vq == "same" else ceiling_vq
        if not sweep and cvq is not None:
            res[name + "_vq_ceiling"] = vq_ceiling(cvq.to(device).eval(), truth, caps, device)
        if keep_images:
            res[name + "_images"] = imgs
            res[name + "_captions"] = caps
            res[name + "_ok"] = ok
    res["seconds"] = time.time() - t0
    log("judge " + json.dumps({k_: v for k_, v in res.items() if not k_.endswith(("_images", "_captions", "_ok"))}),
        flush=True)
    return res


def _write_grid(path: str, images: np.ndarray, cols: int = 16) -> None:
    import struct
    import zlib
    n, h, w, _ = images.shape
    rows = (n + cols - 1) // cols
    canvas = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = im
    H, W, _ = canvas.shape
    raw = b"".join(b"\x00" + canvas[y].tobytes() for y in range(H))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.dalle.evaluate")
    ap.add_argument("--model-dir", default=None, help="exported model directory (tools.dalle.export)")
    ap.add_argument("--ckpt", default=None, help="dalle.pt from tools.dalle.train")
    ap.add_argument("--vq", default=None, help="vq.pt: with --ckpt the VQ (default: the path recorded in the "
                    "checkpoint); with --model-dir only used for the VQ ceiling (its encoder)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--factor", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--sweep", default=None, help="comma-separated F:K:T settings, on the validation stream")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-grid", default=None, help="PNG of the first 64 seen + 64 held-out images")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if (args.model_dir is None) == (args.ckpt is None):
        print("error: give exactly one of --model-dir and --ckpt", file=sys.stderr)
        return 2
    if args.n < 1:
        print("error: --n must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        ceiling = "same"
        if args.model_dir:
            from tools.dalle.export import load_model_dir
            from tools.vq import model as vqmodel
            _, model, tok, vq = load_model_dir(args.model_dir)
            ceiling = vqmodel.load(args.vq) if args.vq else None
        else:
            from tools.dalle.model import load
            from tools.vq import model as vqmodel
            model, tok, extra = load(args.ckpt)
            vq = vqmodel.load(args.vq or extra["vq_path"])
    except (OSError, ValueError, KeyError) as ex:
        print(f"error: cannot load the model: {ex}", file=sys.stderr)
        return 2
    model.to(device)
    vq.to(device)
    results = []
    if args.sweep:
        for item in args.sweep.split(","):
            f, k, t = item.split(":")
            results.append(evaluate(model, tok, vq, args.n, args.seed, device, float(f), int(k), float(t),
                                    sweep=True, ceiling_vq=None))
    else:
        r = evaluate(model, tok, vq, args.n, args.seed, device, args.factor, args.top_k, args.temperature,
                     keep_images=bool(args.save_grid), ceiling_vq=ceiling)
        if args.save_grid:
            _write_grid(args.save_grid, np.concatenate([r["seen_images"][:64], r["heldout_images"][:64]]))
            for k in [k for k in r if k.endswith(("_images", "_captions", "_ok"))]:
                del r[k]
        results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results if args.sweep else results[0], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
