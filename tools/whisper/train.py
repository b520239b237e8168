"""Trains the tiny Whisper from scratch on espeak-ng speech (tools.whisper.data).

    /usr/bin/python3 -m tools.whisper.train --out RUN [--data WORK/data.pt] [--minutes 44 | --max-steps N]
        [--state 160] [--heads 5] [--enc-layers 3] [--dec-layers 2] [--vocab 1024] [--batch 16] [--lr 2e-3]
        [--ctc-weight 0.5] [--conv-lr-mult 5] [--threads 1] [--device cpu] [--json] [data options of tools.whisper.data]

Model: ``tools.whisper.model.Whisper`` (OpenAI's architecture and parameter names) with n_mels 80, n_audio_ctx
from the data (window = 2 * n_audio_ctx mel frames), audio and text width ``--state``, ``--heads`` heads, and
n_text_ctx just above the longest target (a multiple of 16). Vocabulary: a byte-level BPE of ``--vocab`` ranks
trained on the training transcripts (tools.gpt2.bpe_train), specials after the ranks with one language token
(tools.whisper.export), n_vocab = ranks + 1510.

Training: teacher forcing on ``[sot, notimestamps, text..., eot]``: cross-entropy (label smoothing 0.05) of the
text and eot positions, plus ``--ctc-weight`` times a character CTC loss of a training-only linear head on the
encoder output (not exported: without it the decoder settles as a text-only language model for hundreds of steps
before it starts to listen). Every clip gets the on-the-fly augmentation of ``data.augment`` (leading silence,
gain, white / pink / brown noise at 5-40 dB SNR, 15 % clean), the window's log-mel (``data.log_mel_batch``) and a
light SpecAugment (2 frequency masks of up to 8 bins, 2 time masks of up to 20 frames, set to the clip's floor),
made by a background thread (``--producers`` threads for a fast ``--device``). AdamW (0.9, 0.98; weight decay 0.05
on matrices), linear warm-up then cosine to 5 % over the time budget (or --max-steps), gradient clip 1; the
encoder's two convolutions and the CTC head use ``--conv-lr-mult`` times the learning rate (at 1x the CTC loss sat
on its all-blank plateau for 800+ steps; an overfitting probe learned per-frame features ~10x faster at 10x). The two
convolutions start scaled on a batch of log-mels so that their GELU outputs have std ``--front-end-std``
(:func:`init_front_end`: PyTorch's default init leaves the stem 13x below the positional sinusoids, and the decoder
then never started to listen within the budget). ``--init RUN/state.pt`` starts from another run's weights with a
fresh optimiser and schedule. The GELUs are swapped for a numerically identical one
whose backward is correct on Debian's PyTorch 1.13 (:class:`SafeGELU`). Progress every 30 s (also as JSON lines
with --json), a teacher-forced check on 64 held-out shapes-world clips every 5 minutes, a checkpoint every 3
minutes: RUN/state.pt (model, CTC head, optimiser, step, elapsed seconds) lets an interrupted run resume where it
stopped (same command). At the end RUN/whisper.pt = {"dims", "model_state_dict" (OpenAI's names), "tokens" (rank
bytes), "metrics"} and RUN/metrics.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import queue
import random
import sys
import threading
import time
from typing import List, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tools.whisper import data as wdata
from tools.whisper import export as wexp
from tools.whisper.model import Whisper, WhisperDims


CTC_CHARS = " abcdefghijklmnopqrstuvwxyz'-0123456789"
_CTC_INDEX = {c: i + 1 for i, c in enumerate(CTC_CHARS)}  # 0 is the blank


def ctc_targets(text: str) -> torch.Tensor:
    """Character targets of the auxiliary CTC loss (characters outside CTC_CHARS are skipped)."""
    return torch.tensor([_CTC_INDEX[c] for c in text if c in _CTC_INDEX] or [1], dtype=torch.long)


def log_json(args, obj: dict) -> None:
    if args.json:
        print(json.dumps(obj), flush=True)


def targets(tok, texts: Sequence[str]) -> List[List[int]]:
    """[sot, notimestamps, text..., eot] per text."""
    nt = tok.special("notimestamps")
    return [[tok.sot, nt] + tok.encode(t) + [tok.eot] for t in texts]


class _SafeGelu(torch.autograd.Function):
    """Exact GELU whose backward makes its inputs contiguous first. Debian's PyTorch 1.13 computes a wrong float32
    GELU gradient when the incoming gradient's memory layout differs from the input's (as in the encoder's
    ``gelu(conv2(x)).transpose(1, 2)``): gradients of 1e18 instead of ~1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.gelu(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        x, g = x.contiguous(), g.contiguous()
        cdf = 0.5 * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
        pdf = torch.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return g * (cdf + x * pdf)


class SafeGELU(nn.Module):
    def forward(self, x):
        return _SafeGelu.apply(x)


def make_trainable(model: Whisper) -> Whisper:
    """Swaps in :class:`SafeGELU` (parameter-free, so the state dict is unchanged) for training."""
    model.encoder.activation = _SafeGelu.apply
    for blk in list(model.encoder.blocks) + list(model.decoder.blocks):
        blk.mlp[1] = SafeGELU()
    return model


def init_weights(model: Whisper) -> None:
    """GPT-2-like: linear weights N(0, 0.02), biases 0, token embedding N(0, 0.02); convolutions and layer norms as
    PyTorch makes them; the encoder's sinusoids stay."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    nn.init.normal_(model.decoder.token_embedding.weight, std=0.02)
    nn.init.normal_(model.decoder.positional_embedding, std=0.01)


@torch.no_grad()
def init_front_end(model: Whisper, mel: torch.Tensor, target_std: float = 1.0) -> None:
    """Scales the two convolutions (data-dependent, on a batch of log-mels) so that each GELU output has standard
    deviation ``target_std``. With PyTorch's default init the stem's output has std ~0.05 against the encoder's fixed
    sinusoids' 0.65: the residual stream starts as position alone, and the first several hundred steps were spent
    growing the convolutions (a trained stem outputs std ~2)."""
    enc = model.encoder
    x = mel
    for conv in (enc.conv1, enc.conv2):
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        for _ in range(3):
            std = float(F.gelu(conv(x)).std())
            conv.weight.mul_(target_std / max(std, 1e-6))
        x = F.gelu(conv(x))


def spec_augment(mel: torch.Tensor, gen: torch.Generator, n_freq: int = 2, max_f: int = 8, n_time: int = 2,
                 max_t: int = 20) -> torch.Tensor:
    B, M, T = mel.shape
    floor = mel.amin(dim=(1, 2))
    for b in range(B):
        for _ in range(n_freq):
            w = int(torch.randint(0, max_f + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, M - w + 1, (1,), generator=gen))
            mel[b, f0:f0 + w, :] = floor[b]
        for _ in range(n_time):
            w = int(torch.randint(0, max_t + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, T - w + 1, (1,), generator=gen))
            mel[b, :, t0:t0 + w] = floor[b]
    return mel


def make_batch(split: dict, idx: Sequence[int], tgts: List[List[int]], dims: WhisperDims, rng: np.random.Generator,
               gen: torch.Generator, augment: bool = True, pad_id: int = 0):
    W = wdata.window_samples(dims.n_audio_ctx)
    clips = []
    for i in idx:
        x = wdata.clip(split, i)
        clips.append(wdata.augment(x, rng, W) if augment else x)
    mel = wdata.log_mel_batch(clips, dims.n_mels, dims.n_audio_ctx)
    if augment:
        mel = spec_augment(mel, gen)
    T = max(len(tgts[i]) for i in idx) - 1
    x = torch.full((len(idx), T), pad_id, dtype=torch.long)
    y = torch.full((len(idx), T), -100, dtype=torch.long)
    for r, i in enumerate(idx):
        t = tgts[i]
        x[r, :len(t) - 1] = torch.tensor(t[:-1])
        y[r, 1:len(t) - 1] = torch.tensor(t[2:])  # position 0 (sot) predicts notimestamps: not trained
    return mel, x, y


@torch.no_grad()
def teacher_forced(model: Whisper, batches) -> dict:
    model.eval()
    tot_loss, tot_n, tot_ok = 0.0, 0, 0
    dev = next(model.parameters()).device
    for mel, x, y in batches:
        mel, x, y = mel.to(dev), x.to(dev), y.to(dev)
        logits = model(mel, x)
        m = y != -100
        tot_loss += float(F.cross_entropy(logits[m], y[m], reduction="sum"))
        tot_ok += int((logits[m].argmax(-1) == y[m]).sum())
        tot_n += int(m.sum())
    model.train()
    return {"loss": tot_loss / max(1, tot_n), "token_acc": tot_ok / max(1, tot_n)}


def save_atomic(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m tools.whisper.train")
    ap.add_argument("--out", required=True, help="run directory (state.pt, whisper.pt, vocab.tiktoken, metrics.json)")
    ap.add_argument("--data", default="/tmp/tiny-whisper-work/data.pt", help="the synthesised dataset's cache")
    ap.add_argument("--minutes", type=float, default=40.0, help="training time budget (0: --max-steps only)")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--state", type=int, default=160)
    ap.add_argument("--heads", type=int, default=5)
    ap.add_argument("--enc-layers", type=int, default=3)
    ap.add_argument("--dec-layers", type=int, default=2)
    ap.add_argument("--n-mels", type=int, default=80)
    ap.add_argument("--vocab", type=int, default=1024, help="BPE ranks (256 bytes + merges)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.05)
    ap.add_argument("--conv-lr-mult", type=float, default=5.0,
                    help="learning-rate factor of the encoder's convolutions and the CTC head")
    ap.add_argument("--ctc-weight", type=float, default=0.5, help="weight of the encoder's auxiliary CTC loss")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--producers", type=int, default=1, help="threads making batches (more for a fast --device)")
    ap.add_argument("--log-every", type=float, default=30.0, help="seconds")
    ap.add_argument("--val-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--ckpt-every", type=float, default=180.0, help="seconds")
    ap.add_argument("--json", action="store_true", help="progress as JSON lines")
    ap.add_argument("--fresh", action="store_true", help="ignore RUN/state.pt")
    ap.add_argument("--train-seed", type=int, default=1)
    ap.add_argument("--front-end-std", type=float, default=1.0,
                    help="std of the convolutions' GELU outputs at init (data-dependent; 0: PyTorch's default init)")
    ap.add_argument("--init", default=None, help="start from this RUN/state.pt's weights (fresh optimiser and schedule)")
    wdata.add_args(ap)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.minutes <= 0 and args.max_steps <= 0:
        print("error: give --minutes > 0 or --max-steps > 0", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.train_seed)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()
    try:
        d = wdata.load_or_build_data(args.data, args)
    except wdata.DataError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    data_s = time.time() - t_start
    train = d["splits"]["train"]
    state_path = os.path.join(args.out, "state.pt")
    resume = None
    if os.path.exists(state_path) and not args.fresh:
        resume = torch.load(state_path, map_location="cpu", weights_only=False)
        if resume.get("data_key") != d["key"]:
            print("train: RUN/state.pt was trained on other data; starting afresh", flush=True)
            resume = None
    init = None
    if resume is None and args.init:
        init = torch.load(args.init, map_location="cpu", weights_only=False)
    # vocabulary
    if resume is not None or init is not None:
        tokens = (resume or init)["tokens"]
    else:
        t0 = time.time()
        tokens = wexp.train_ranks(train["texts"], args.vocab)
        print(f"vocab: {len(tokens)} ranks trained in {time.time() - t0:.1f}s", flush=True)
    wexp.write_ranks(os.path.join(args.out, "vocab.tiktoken"), tokens)
    n_vocab = wexp.n_vocab_for(len(tokens))
    tok = wexp.make_tokenizer(tokens, n_vocab)
    tg = targets(tok, train["texts"])
    bad = sum(tok.decode(t[2:-1]) != s for t, s in zip(tg[:2000], train["texts"][:2000]))
    if bad:
        print(f"error: {bad} transcripts do not survive encode/decode", file=sys.stderr)
        return 1
    held = d["splits"]["heldout_shapes"]
    held_tg = targets(tok, held["texts"])
    longest = max(len(t) for t in tg + held_tg + targets(tok, d["splits"]["heldout_general"]["texts"]))
    n_text_ctx = resume["dims"]["n_text_ctx"] if resume else int(math.ceil((longest + 8) / 16) * 16)
    dims = WhisperDims(n_mels=args.n_mels, n_audio_ctx=args.n_audio_ctx, n_audio_state=args.state,
                       n_audio_head=args.heads, n_audio_layer=args.enc_layers, n_vocab=n_vocab, n_text_ctx=n_text_ctx,
                       n_text_state=args.state, n_text_head=args.heads, n_text_layer=args.dec_layers)
    if resume is not None and (resume["args"].get("ctc_weight", 0) > 0) != (args.ctc_weight > 0):
        print("train: RUN/state.pt was trained with(out) the CTC head; starting afresh", flush=True)
        resume = None
    if resume is not None and resume["args"].get("conv_lr_mult") is None:
        print("train: RUN/state.pt has other optimiser groups; starting afresh", flush=True)
        resume = None
    if resume is not None and resume["dims"] != dataclasses.asdict(dims):
        print("train: RUN/state.pt has other dims; starting afresh (use --fresh to silence this)", flush=True)
        resume = None
    model = make_trainable(Whisper(dims))
    init_weights(model)
    if args.front_end_std > 0:
        init_front_end(model, wdata.log_mel_batch([wdata.clip(train, i) for i in range(0, len(tg), max(1, len(tg) // 32))][:32],
                                                  dims.n_mels, dims.n_audio_ctx), args.front_end_std)
    device = torch.device(args.device)
    # training-only CTC head on the encoder (not exported): makes the encoder learn the words early, which the
    # decoder's cross-attention then picks up (without it the decoder first settles as a text-only language model)
    ctc_head = nn.Linear(dims.n_audio_state, len(CTC_CHARS) + 1) if args.ctc_weight > 0 else None
    model.to(device)
    if ctc_head is not None:
        ctc_head.to(device)
    chars = [ctc_targets(t) for t in train["texts"]]
    named = list(model.named_parameters()) + (list(ctc_head.named_parameters(prefix="ctc")) if ctc_head else [])

    def fast(n):  # the convolutional front end and the CTC head learn --conv-lr-mult times faster
        return n.startswith("encoder.conv") or n.startswith("ctc")
    groups = []
    for is_fast in (False, True):
        for wd in (True, False):
            ps = [p for n, p in named if fast(n) == is_fast and (p.dim() >= 2 and "positional" not in n) == wd]
            if ps:
                groups.append({"params": ps, "weight_decay": args.weight_decay if wd else 0.0,
                               "lr_mult": args.conv_lr_mult if is_fast else 1.0})
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    nparam = sum(p.numel() for p in model.parameters())
    step, elapsed0, history = 0, 0.0, []
    rng = np.random.default_rng(args.train_seed)
    gen = torch.Generator().manual_seed(args.train_seed)
    order_rng = random.Random(args.train_seed)
    if resume is not None:
        model.load_state_dict(resume["model_state_dict"])
        if ctc_head is not None and resume.get("ctc_head"):
            ctc_head.load_state_dict(resume["ctc_head"])
        opt.load_state_dict(resume["opt"])
        step, elapsed0, history = resume["step"], resume["elapsed"], resume["history"]
        rng = np.random.default_rng(args.train_seed + 7919 * step)
        gen.manual_seed(args.train_seed + 7919 * step)
        order_rng = random.Random(args.train_seed + 7919 * step)
        print(f"train: resuming at step {step} ({elapsed0 / 60:.1f} min done)", flush=True)
    elif init is not None:
        model.load_state_dict(init["model_state_dict"])
        if ctc_head is not None and init.get("ctc_head"):
            ctc_head.load_state_dict(init["ctc_head"])
        print(f"train: weights from {args.init} (step {init.get('step')})", flush=True)
    print(f"dims {json.dumps(dataclasses.asdict(dims))}", flush=True)
    print(f"params {nparam / 1e6:.2f}M  train clips {len(tg)}  batch {args.batch}  threads {args.threads}  "
          f"window {2 * dims.n_audio_ctx} frames ({wdata.window_samples(dims.n_audio_ctx) / 16000:.1f} s)", flush=True)
    log_json(args, {"event": "start", "dims": dataclasses.asdict(dims), "params": nparam, "train_clips": len(tg),
                    "resumed_step": step})

    # a fixed teacher-forced check on held-out shapes clips (clean of training augmentation: their own noise)
    vrng, vgen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    nv = min(64, len(held_tg))
    val_batches = [make_batch(held, list(range(s, min(nv, s + 16))), held_tg, dims, vrng, vgen, augment=False,
                              pad_id=tok.eot) for s in range(0, nv, 16)]

    budget = args.minutes * 60.0 if args.minutes > 0 else float("inf")
    model.train()
    t0 = time.time() - elapsed0
    last_log = last_val = last_ckpt = time.time()
    ema = None

    # batches are made (augmentation, log-mel) by one background thread, overlapping the model's work
    batches: "queue.Queue" = queue.Queue(maxsize=3)
    stop = threading.Event()

    order_lock = threading.Lock()
    perm: List[int] = []

    def producer(k: int):
        nonlocal perm
        # producer 0 uses the run's generators; extra producers (--producers, for fast devices) their own
        prng = rng if k == 0 else np.random.default_rng(args.train_seed + 7919 * step + 104729 * k)
        pgen = gen if k == 0 else torch.Generator().manual_seed(args.train_seed + 7919 * step + 104729 * k)
        while not stop.is_set():
            with order_lock:
                if len(perm) < args.batch:
                    p = list(range(len(tg)))
                    order_rng.shuffle(p)
                    perm.extend(p)
                idx, perm = perm[:args.batch], perm[args.batch:]
            b = (idx,) + make_batch(train, idx, tg, dims, prng, pgen, augment=True, pad_id=tok.eot)
            while not stop.is_set():
                try:
                    batches.put(b, timeout=0.5)
                    break
                except queue.Full:
                    pass

    for k in range(max(1, args.producers)):
        threading.Thread(target=producer, args=(k,), daemon=True).start()

    def save_state():
        save_atomic({"model_state_dict": model.state_dict(), "opt": opt.state_dict(),
                     "ctc_head": ctc_head.state_dict() if ctc_head is not None else None, "step": step,
                     "elapsed": time.time() - t0, "history": history, "tokens": tokens,
                     "dims": dataclasses.asdict(dims), "data_key": d["key"], "args": vars(args)}, state_path)

    while True:
        el = time.time() - t0
        if el >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = min(1.0, el / budget)
        if args.max_steps:
            frac = max(frac, step / args.max_steps)
        lr = args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))
        lr *= min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        idx, mel, x, y = batches.get()
        mel, x, y = mel.to(device), x.to(device), y.to(device)
        feats = model.encoder(mel)
        logits = model.decoder(x, feats)
        ce = F.cross_entropy(logits.reshape(-1, n_vocab), y.reshape(-1), ignore_index=-100,
                             label_smoothing=args.label_smoothing)
        loss = ce
        ctc_v = 0.0
        if ctc_head is not None:
            lp = ctc_head(feats).log_softmax(-1).transpose(0, 1)  # [T, B, classes], blank = 0
            ctc = F.ctc_loss(lp, torch.cat([chars[i] for i in idx]).to(device),
                             torch.full((len(idx),), lp.shape[0], dtype=torch.long, device=device),
                             torch.tensor([len(chars[i]) for i in idx], device=device), blank=0, zero_infinity=True)
            loss = ce + args.ctc_weight * ctc
            ctc_v = float(ctc)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        step += 1
        lv = float(ce)
        if not math.isfinite(lv):
            stop.set()  # the batch producers end with the run
            print(f"error: the loss is not finite at step {step}", file=sys.stderr)
            return 1
        ema = lv if ema is None else 0.97 * ema + 0.03 * lv
        now = time.time()
        if now - last_log >= args.log_every or step == 1:
            sps = step / max(1e-9, now - t0)
            print(f"step {step:6d}  t {now - t0:6.0f}s  {sps:.3f} steps/s  lr {lr:.2e}  loss {lv:.4f} (ema "
                  f"{ema:.4f})  ctc {ctc_v:.3f}  gnorm {gnorm:.2f}  epoch {step * args.batch / len(tg):.2f}", flush=True)
            log_json(args, {"event": "step", "step": step, "t": round(now - t0, 1), "lr": lr, "loss": lv,
                            "loss_ema": ema, "ctc": ctc_v, "grad_norm": gnorm, "epoch": step * args.batch / len(tg)})
            last_log = now
        if now - last_val >= args.val_every:
            v = teacher_forced(model, val_batches)
            history.append({"step": step, "t": round(now - t0, 1), "train_loss_ema": ema, **v})
            print(f"val step {step}  held-out shapes loss {v['loss']:.4f}  token acc {v['token_acc']:.4f}", flush=True)
            log_json(args, {"event": "val", "step": step, **v})
            last_val = time.time()
        if now - last_ckpt >= args.ckpt_every:
            save_state()
            last_ckpt = time.time()
    stop.set()
    train_s = time.time() - t0
    save_state()
    v = teacher_forced(model, val_batches)
    history.append({"step": step, "t": round(train_s, 1), "train_loss_ema": ema, **v})
    print(f"trained {step} steps in {train_s / 60:.1f} min; held-out shapes loss {v['loss']:.4f} token acc "
          f"{v['token_acc']:.4f}", flush=True)
    metrics = {"steps": step, "train_minutes": round(train_s / 60, 2), "data_seconds": round(data_s, 1),
               "steps_per_s": step / max(train_s, 1e-9), "batch": args.batch, "params": nparam,
               "train_clips": len(tg), "epochs": step * args.batch / len(tg), "train_loss_ema": ema,
               "heldout_shapes_teacher_forced": v, "history": history, "dims": dataclasses.asdict(dims),
               "n_ranks": len(tokens), "corpus": d.get("corpus")}
    save_atomic({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict(), "tokens": tokens,
                 "metrics": metrics}, os.path.join(args.out, "whisper.pt"))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    log_json(args, {"event": "done", **{k: v for k, v in metrics.items() if k != "history"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
