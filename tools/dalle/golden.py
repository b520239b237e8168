"""Golden vectors for the C++ DALL·E parity tests, computed from an exported model directory (the shipped weights,
read back from the safetensors files; f16 weights are upcast to f32 and everything runs in f32).

    /usr/bin/python3 -m tools.dalle.golden --model-dir models/tiny-dalle --out tests/data/dalle
    /usr/bin/python3 -m tools.dalle.golden --random-mini DIR [--seed 1234] [--dtype f32|f16]
        [--detokenizer real|small]

Writes OUT/golden.safetensors and OUT/golden.json (``--random-mini``: a random-weights model at the real Mini
dimensions with 1 encoder + 1 decoder layer in DIR/model/, then its golden vectors in DIR/). Tensors (P prompts,
T = text_token_count, E = embed_dim, S = image_token_count, R = decoder_vocab_rows, H = W = image_size):
  text_tokens     I32 [P, 2, T]   min-dalle's text rows: row 0 = [tokens[0], tokens[-1], pad...] (unconditional),
                                  row 1 = the tokenizer output padded with 1 (truncated to T)
  token_lengths   I32 [P]         unpadded tokenizer output length (before truncation)
  encoder_state   F32 [P, 2, T, E]
  tf_image_tokens I32 [S]         fixed image tokens; decoder input = [bos_id] + tf_image_tokens[:-1], positions 0..S-1
  tf_logits       F32 [Q, 2, S, R] teacher-forced logits (causal), rows as text_tokens, for prompts json tf_prompts
  greedy_tokens   I32 [P, S]      top-k 1 (argmax) tokens with super-conditioning at the config's factor, logits
                                  sliced to image_vocab_size, same token fed to both rows
  greedy_margins  F32 [P, S]      per-step top1 - top2 of the mixed logits (small margins: ties may flip)
  images          U8  [I, H, W, 3] detokenized greedy_tokens (clip(x, 0, 1) * 255, rounded), prompts json image_prompts
  images_float    F32 [I, H, W, 3] the detokenizer output before clipping (HWC)
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
import torch

from tools import steps
from tools.dalle import safetensors_io as st
from tools.dalle import tokenizer as tokmod
from tools.dalle.export import ExportError, load_model_dir, make_config, write_model_dir
from tools.dalle.model import DalleModel, generate, is_absent_ln_weight, mini_config

PROMPTS = (
    "",
    "a small red circle on the left",
    "Two shapes:  a tiny BLUE box on the right and a big violet disc at the top, grey\tbackground. (caf\u00e9)",
    "a big green triangle at the top",  # held-out combination (green triangle)
)
TF_SEED = 4242


@torch.no_grad()
def compute(model_dir: str, prompts: Sequence[str] = PROMPTS, tf_prompts: Optional[List[int]] = None,
            image_prompts: Optional[List[int]] = None, log=print):
    c, model, tok, vq = load_model_dir(model_dir)
    cfg = model.cfg
    T, S = cfg.text_token_count, cfg.image_token_count
    P = len(prompts)
    tf_prompts = list(range(P)) if tf_prompts is None else tf_prompts
    image_prompts = list(range(P)) if image_prompts is None else image_prompts
    ids = [tok.tokenize(p) for p in prompts]
    rows = torch.tensor([tokmod.text_rows(t, T) for t in ids], dtype=torch.long)   # P, 2, T
    t0 = time.time()
    enc = model.encoder(rows.reshape(2 * P, T)).reshape(P, 2, T, -1)
    g = torch.Generator().manual_seed(TF_SEED)
    tf_tokens = torch.randint(0, cfg.image_vocab_size, (S,), generator=g)
    prev = torch.cat([torch.tensor([cfg.bos_id]), tf_tokens[:-1]])
    tf = []
    for p in tf_prompts:
        tf.append(model.decoder(prev[None].expand(2, -1), enc[p], rows[p]))
    tf_logits = torch.stack(tf) if tf else torch.zeros(0, 2, S, cfg.decoder_vocab_rows)
    log(f"golden: encoder + teacher forcing {time.time() - t0:.1f}s", flush=True)
    t0 = time.time()
    greedy, margins = generate(model, rows[:, 0], rows[:, 1], cfg.supercondition_factor, 1, 1.0,
                               return_margins=True)
    log(f"golden: greedy {S} steps x {P} prompts {time.time() - t0:.1f}s", flush=True)
    t0 = time.time()
    if image_prompts:
        x = vq.decode(greedy[image_prompts]).permute(0, 2, 3, 1).contiguous()
        img_f = x.float()
        img_u8 = x.clamp(0, 1).mul(255).round().to(torch.uint8)
    else:
        img_f = torch.zeros(0, cfg.image_size, cfg.image_size, 3)
        img_u8 = img_f.to(torch.uint8)
    log(f"golden: detokenizer {len(image_prompts)} images {time.time() - t0:.1f}s", flush=True)
    tensors = [
        ("text_tokens", rows.to(torch.int32)),
        ("token_lengths", torch.tensor([len(t) for t in ids], dtype=torch.int32)),
        ("encoder_state", enc.float()),
        ("tf_image_tokens", tf_tokens.to(torch.int32)),
        ("tf_logits", tf_logits.float()),
        ("greedy_tokens", greedy.to(torch.int32)),
        ("greedy_margins", margins.float()),
        ("images", img_u8),
        ("images_float", img_f),
    ]
    meta = {
        "format": "tessera.dalle.golden", "format_version": 1, "model_name": c["name"],
        "prompts": list(prompts), "token_ids": ids, "pieces": [tok.pieces(p) for p in prompts],
        "tf_prompts": tf_prompts, "tf_seed": TF_SEED, "image_prompts": image_prompts,
        "supercondition_factor": cfg.supercondition_factor, "top_k": 1,
        "bos_id": cfg.bos_id, "text_token_count": T, "image_token_count": S,
        "model_files_sha256": {f: steps.sha256_file(os.path.join(model_dir, f)) for f in
                               ["config.json"] + sorted(c["files"].values())},
        "tensors": {n: {"dtype": st.dtype_name(t.numpy()), "shape": list(t.shape)} for n, t in tensors},
        "notes": "emoji.demojize is not applied by this tokenizer (no emoji package); computed in f32 from the "
                 "exported files; greedy = argmax of l_u + f (l_c - l_u) over the first image_vocab_size logits.",
    }
    return tensors, meta


write_golden = functools.partial(steps.write_golden, fmt="tessera.dalle.golden")

def random_mini(out_dir: str, seed: int = 1234, dtype: str = "f32", detokenizer: str = "real", log=print) -> str:
    """A random-weights model at the real Mini dimensions (embed 1024, 16 heads, GLU 2730, 16384 image tokens,
    16x16 grid, 256x256 images) with 1 encoder and 1 decoder layer; the text vocabulary is the shapes-world BPE
    (a few hundred rows instead of 50264). The LN weights the real checkpoints lack are ones and omitted."""
    from tools.vq.model import VQConfig, VQModel, decoder_state_dict
    from tools.dalle.export import detokenizer_config
    t0 = time.time()
    tok = tokmod.train_world_tokenizer()
    cfg = mini_config(name="random-mini", text_vocab_size=tok.vocab_size, encoder_layers=1, decoder_layers=1,
                      supercondition_factor=16.0, top_k=256, temperature=1.0)
    g = torch.Generator().manual_seed(seed)
    model = DalleModel(cfg).init_weights(0.02, generator=g, random_ln=True)
    with torch.no_grad():
        for k, p in model.named_parameters():
            if is_absent_ln_weight(k.split(".", 1)[1]):
                p.fill_(1.0)
    if detokenizer == "real":
        vcfg = VQConfig(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, attn_resolutions=(16,), z_channels=256,
                        embed_dim=256, n_embed=16384, resolution=256)
    elif detokenizer == "small":
        vcfg = VQConfig(ch=16, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(16,), z_channels=32,
                        embed_dim=32, n_embed=16384, resolution=256)
    else:
        raise ExportError(f"--detokenizer must be real or small, not {detokenizer!r}")
    torch.manual_seed(seed)
    vq = VQModel(vcfg)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.randn(vq.embedding.weight.shape, generator=g))
    note = (f"random weights (seed {seed}) at DALL-E Mini dimensions with 1 encoder and 1 decoder layer; text "
            f"vocabulary reduced to the shapes-world BPE ({tok.vocab_size} rows instead of 50264); detokenizer "
            f"{detokenizer}; absent LN weights omitted (= ones)")
    config = make_config(cfg, detokenizer_config(vcfg), dtype, "random-mini", omit_absent_ln=True, notes=note)
    enc = {k[len("encoder."):]: v for k, v in model.state_dict().items() if k.startswith("encoder.")}
    dec = {k[len("decoder."):]: v for k, v in model.state_dict().items() if k.startswith("decoder.")}
    os.makedirs(out_dir, exist_ok=True)
    mdir = write_model_dir(os.path.join(out_dir, "model"), config, enc, dec, decoder_state_dict(vq), tok)
    log(f"random-mini: model written to {mdir} in {time.time() - t0:.1f}s", flush=True)
    return mdir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.dalle.golden")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--out", default=None, help="with --model-dir: where golden.safetensors/json go")
    ap.add_argument("--random-mini", default=None, metavar="DIR")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--detokenizer", default="real")
    ap.add_argument("--tf-prompts", default=None, help="comma-separated prompt indices for tf_logits "
                    "(default: all; --random-mini: 1)")
    ap.add_argument("--image-prompts", default=None, help="comma-separated prompt indices for images "
                    "(default: all; --random-mini: 1)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    def idx(s, default):
        if s is None:
            return default
        return [int(x) for x in s.split(",") if x != ""]

    try:
        if args.random_mini:
            if args.model_dir or args.out:
                raise ExportError("--random-mini DIR takes neither --model-dir nor --out")
            mdir = random_mini(args.random_mini, args.seed, args.dtype, args.detokenizer)
            out = args.random_mini
            tf, im = idx(args.tf_prompts, [1]), idx(args.image_prompts, [1])
        else:
            if not args.model_dir or not args.out:
                raise ExportError("give --model-dir and --out (or --random-mini DIR)")
            mdir, out = args.model_dir, args.out
            tf, im = idx(args.tf_prompts, None), idx(args.image_prompts, None)
        for i in (tf or []) + (im or []):
            if not 0 <= i < len(PROMPTS):
                raise ExportError(f"prompt index {i} out of range 0..{len(PROMPTS) - 1}")
        tensors, meta = compute(mdir, PROMPTS, tf, im)
        if args.random_mini:
            meta["model_dir"] = "model"
        else:
            meta["model_dir"] = os.path.relpath(os.path.abspath(mdir), os.path.abspath(out))
        write_golden(out, tensors, meta)
    except (ExportError, st.SafetensorsError, OSError, ValueError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    size = os.path.getsize(os.path.join(out, "golden.safetensors"))
    print(f"golden: wrote {out}/golden.safetensors ({size / 1e6:.2f} MB) and golden.json", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
