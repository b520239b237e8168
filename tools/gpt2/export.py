"""Export a trained tiny GPT-2 (tools.gpt2.train's gpt2.pt) in Hugging Face's GPT-2 directory layout, and read
such a directory back (ours or a real ``gpt2`` download).

    /usr/bin/python3 -m tools.gpt2.export --ckpt RUN/gpt2.pt --out models/tiny-gpt2 [--dtype f32|f16]
        [--prefix] [--mask-buffers] [--name tiny-gpt2] [--temperature 0.8 --top-k 40 --top-p 0.95
        --repetition-penalty 1.0 --max-new-tokens 48]

Directory contents:
  model.safetensors        HF GPT2Model names (``wte.weight`` [V, C], ``wpe.weight`` [P, C], ``h.N.ln_1.*``,
                           ``h.N.attn.c_attn.weight`` [C, 3C] (Conv1D [in, out]), ..., ``ln_f.*``), F32 or F16,
                           no ``lm_head.weight`` (tied); ``--prefix`` puts ``transformer.`` before every name,
                           ``--mask-buffers`` adds HF's ``h.N.attn.bias`` [1, 1, P, P] (lower-triangular ones, F32)
                           and ``h.N.attn.masked_bias`` [] (-1e4, F32), which a loader must skip
  config.json              HF GPT2Config keys (model_type gpt2, vocab_size, n_positions, n_ctx, n_embd, n_layer,
                           n_head, n_inner null, layer_norm_epsilon, activation_function gelu_new, bos/eos ids, ...)
  generation_config.json   HF GenerationConfig keys with our default sampling (do_sample, temperature, top_k,
                           top_p, repetition_penalty, max_new_tokens, bos/eos ids)
  tessera.json             our extras: format, the scene-caption prompt, weight layout flags, training numbers
  vocab.json, merges.txt   the byte-level BPE (tools.gpt2.bpe_train), GPT-2's format
Every tensor's name and shape is checked against the config before anything is written; the directory is written
to a temporary sibling and renamed into place (a refused export leaves an existing directory untouched).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from tools.atomic_dir import atomic_directory
from tools.dalle import safetensors_io as st
from tools.gpt2 import bpe_train
from tools.gpt2.model import GPT2, GPT2Config, expected_shapes, is_mask_buffer

FORMAT = "tessera.gpt2"
FORMAT_VERSION = 1
PREFIX = "transformer."
DEFAULT_SAMPLING = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.2,
                    "max_new_tokens": 48}
MASKED_BIAS = -1e4


class ExportError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- configs

def hf_config(cfg: GPT2Config, dtype: str = "f32") -> dict:
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.n_positions,
        "n_ctx": cfg.n_positions,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": cfg.layer_norm_epsilon,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "torch_dtype": "float16" if dtype == "f16" else "float32",
    }


def config_from_hf(c: dict) -> GPT2Config:
    """GPT2Config from an HF config.json; refuses anything our GPT-2 does not compute."""
    if c.get("model_type") != "gpt2":
        raise ExportError(f"config: model_type must be 'gpt2', not {c.get('model_type')!r}")
    for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
        v = c.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ExportError(f"config: {k} must be a positive integer, not {v!r}")
    if c["n_embd"] % c["n_head"]:
        raise ExportError("config: n_embd must be a multiple of n_head")
    if c.get("n_inner") not in (None, 4 * c["n_embd"]):
        raise ExportError(f"config: n_inner {c.get('n_inner')} is not 4 * n_embd")
    if c.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ExportError(f"config: activation_function {c.get('activation_function')!r} is not the tanh GELU")
    if c.get("tie_word_embeddings", True) is not True:
        raise ExportError("config: untied word embeddings are not supported")
    eps = c.get("layer_norm_epsilon", 1e-5)
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ExportError(f"config: bad layer_norm_epsilon {eps!r}")
    V = c["vocab_size"]
    bos, eos = c.get("bos_token_id", V - 1), c.get("eos_token_id", V - 1)
    for name, v in (("bos_token_id", bos), ("eos_token_id", eos)):
        if not isinstance(v, int) or not 0 <= v < V:
            raise ExportError(f"config: {name} {v!r} outside the vocabulary")
    return GPT2Config(vocab_size=V, n_positions=c["n_positions"], n_embd=c["n_embd"], n_layer=c["n_layer"],
                      n_head=c["n_head"], layer_norm_epsilon=float(eps), bos_token_id=bos, eos_token_id=eos)


def generation_config(cfg: GPT2Config, sampling: Optional[dict] = None) -> dict:
    s = dict(DEFAULT_SAMPLING)
    s.update({k: v for k, v in (sampling or {}).items() if v is not None})
    if not (s["temperature"] > 0 and s["top_k"] >= 0 and 0 < s["top_p"] <= 1 and s["repetition_penalty"] > 0
            and s["max_new_tokens"] >= 1):
        raise ExportError(f"bad sampling settings {s}")
    return {"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id, "do_sample": True,
            "temperature": float(s["temperature"]), "top_k": int(s["top_k"]), "top_p": float(s["top_p"]),
            "repetition_penalty": float(s["repetition_penalty"]), "max_new_tokens": int(s["max_new_tokens"])}


# ---------------------------------------------------------------------------------------------- checks

def check_tensors(tensors: "OrderedDict[str, np.ndarray]", cfg: GPT2Config, prefix: str = "") -> Dict[str, str]:
    """Check names/shapes/finiteness against the config. Returns {"prefix": ..., "mask_buffers": "yes"|"no"}."""
    want = expected_shapes(cfg)
    seen = set()
    masks = 0
    P = cfg.n_positions
    for k, a in tensors.items():
        if not k.startswith(prefix):
            raise ExportError(f"tensor {k!r} lacks the prefix {prefix!r}")
        n = k[len(prefix):]
        if is_mask_buffer(n):
            layer = int(n.split(".")[1])
            shape = (1, 1, P, P) if n.endswith(".bias") else ()
            if layer >= cfg.n_layer or tuple(a.shape) != shape:
                raise ExportError(f"mask buffer {k!r} {list(a.shape)} does not fit the config "
                                  f"(layer < {cfg.n_layer}, shape {list(shape)})")
            masks += 1
            continue
        if n not in want:
            raise ExportError(f"unexpected tensor {k!r} {list(a.shape)}")
        if tuple(a.shape) != want[n]:
            raise ExportError(f"tensor {k!r} has shape {list(a.shape)}, the config implies {list(want[n])}")
        if a.dtype.kind != "f":
            raise ExportError(f"tensor {k!r} has dtype {a.dtype}, not a float type")
        if not np.all(np.isfinite(a)):
            raise ExportError(f"tensor {k!r} holds non-finite values")
        seen.add(n)
    missing = [n for n in want if n not in seen]
    if missing:
        raise ExportError(f"missing tensor {prefix + missing[0]!r} {list(want[missing[0]])}"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return {"prefix": prefix, "mask_buffers": "yes" if masks else "no"}


def check_tokenizer(tok: bpe_train.ByteLevelBPE, cfg: GPT2Config) -> None:
    ids = sorted(tok.vocab.values())
    if ids != list(range(len(ids))):
        raise ExportError("vocab.json ids are not 0..N-1")
    if len(ids) != cfg.vocab_size:
        raise ExportError(f"tokenizer has {len(ids)} entries but vocab_size is {cfg.vocab_size}")
    if tok.eot_id != cfg.eos_token_id:
        raise ExportError(f"<|endoftext|> is id {tok.eot_id} but eos_token_id is {cfg.eos_token_id}")


# ---------------------------------------------------------------------------------------------- writing

def model_tensors(state_dict: Dict[str, torch.Tensor], cfg: GPT2Config, dtype: str = "f32", prefix: bool = False,
                  mask_buffers: bool = False) -> "OrderedDict[str, np.ndarray]":
    """The safetensors content: names (optionally prefixed) in HF GPT2Model order, mask buffers after each
    layer's attention weights when asked."""
    if dtype not in ("f32", "f16"):
        raise ExportError(f"dtype must be f32 or f16, not {dtype!r}")
    pre = PREFIX if prefix else ""
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    P = cfg.n_positions
    for k, v in state_dict.items():
        a = v.detach().cpu().float().numpy()
        out[pre + k] = a.astype(np.float16) if dtype == "f16" else a
        if mask_buffers and k.endswith(".ln_1.bias") and k.startswith("h."):
            layer = k.split(".")[1]
            out[f"{pre}h.{layer}.attn.bias"] = np.tril(np.ones((P, P), np.float32))[None, None]
            out[f"{pre}h.{layer}.attn.masked_bias"] = np.array(MASKED_BIAS, np.float32)
    return out


def write_model_dir(out: str, cfg: GPT2Config, tensors: "OrderedDict[str, np.ndarray]", tok: bpe_train.ByteLevelBPE,
                    dtype: str = "f32", prefix: bool = False, sampling: Optional[dict] = None,
                    name: str = "tiny-gpt2", extra: Optional[dict] = None) -> str:
    """Check ``tensors`` (from :func:`model_tensors`) against ``cfg`` and write the directory atomically."""
    info = check_tensors(tensors, cfg, PREFIX if prefix else "")
    check_tokenizer(tok, cfg)
    hcfg = hf_config(cfg, dtype)
    config_from_hf(hcfg)  # self-check
    gcfg = generation_config(cfg, sampling)
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ExportError(f"--out {out} exists and is not a directory")
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise ExportError(f"parent directory {parent} does not exist")
    tess = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
            "weights": {"file": "model.safetensors", "dtype": dtype.upper(), "prefix": info["prefix"],
                        "mask_buffers": info["mask_buffers"] == "yes"},
            "scene_prompt": "Scene:", "stop_token": bpe_train.EOT,
            "sampling": {k: gcfg[k] for k in DEFAULT_SAMPLING}}
    if extra:
        tess.update(extra)
    with atomic_directory(out) as tmp:
        for fname, obj in (("config.json", hcfg), ("generation_config.json", gcfg), ("tessera.json", tess)):
            with open(os.path.join(tmp, fname), "w") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")
        st.write(os.path.join(tmp, "model.safetensors"), tensors, {"format": "pt"})
        tok.save(tmp)
    return out


def export(ckpt: str, out: str, dtype: str = "f32", prefix: bool = False, mask_buffers: bool = False,
           name: str = "tiny-gpt2", sampling: Optional[dict] = None) -> str:
    from tools.gpt2.train import load_ckpt
    if not os.path.isfile(ckpt):
        raise ExportError(f"--ckpt {ckpt}: no such file")
    model, tok, ck = load_ckpt(ckpt)
    m = (ck.get("extra") or {}).get("metrics") or {}
    extra = {}
    if m:
        extra["training"] = {k: m[k] for k in ("steps", "train_minutes", "steps_per_s", "tokens_per_s", "params",
                                               "train_tokens", "corpus", "epochs") if k in m}
        extra["training"]["val_text_ppl"] = m["val_text"]["ppl"]
        extra["training"]["val_captions_ppl"] = m["val_captions"]["ppl"]
        if "captions" in m:
            extra["training"]["captions"] = m["captions"]
    tensors = model_tensors(model.state_dict(), model.cfg, dtype, prefix, mask_buffers)
    return write_model_dir(out, model.cfg, tensors, tok, dtype, prefix, sampling, name, extra)


# ---------------------------------------------------------------------------------------------- reading

def load_model_dir(directory: str) -> Tuple[dict, GPT2, bpe_train.ByteLevelBPE, dict]:
    """-> (config.json dict, GPT2 (f32, eval), tokenizer, generation settings). Strips a ``transformer.`` prefix,
    skips the mask buffers, upcasts F16, ignores a ``lm_head.weight`` equal to ``wte.weight``."""
    with open(os.path.join(directory, "config.json")) as f:
        c = json.load(f)
    cfg = config_from_hf(c)
    tensors, _ = st.read(os.path.join(directory, "model.safetensors"))
    prefix = PREFIX if any(k.startswith(PREFIX) for k in tensors) else ""
    lm = tensors.pop("lm_head.weight", None)
    check_tensors(tensors, cfg, prefix)
    sd = OrderedDict()
    for k, a in tensors.items():
        n = k[len(prefix):]
        if not is_mask_buffer(n):
            sd[n] = torch.from_numpy(a.astype(np.float32))
    if lm is not None and not np.array_equal(lm.astype(np.float32), sd["wte.weight"].numpy()):
        raise ExportError("lm_head.weight differs from wte.weight (untied head)")
    model = GPT2(cfg)
    model.load_state_dict(sd)
    tok = bpe_train.ByteLevelBPE.load(directory)
    check_tokenizer(tok, cfg)
    gen = dict(DEFAULT_SAMPLING)
    gp = os.path.join(directory, "generation_config.json")
    if os.path.exists(gp):
        with open(gp) as f:
            g = json.load(f)
        gen.update({k: g[k] for k in DEFAULT_SAMPLING if k in g})
    return c, model.eval(), tok, gen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpt2.export")
    ap.add_argument("--ckpt", required=True, help="gpt2.pt from tools.gpt2.train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="f32", choices=("f32", "f16"))
    ap.add_argument("--prefix", action="store_true", help="prefix every tensor name with 'transformer.'")
    ap.add_argument("--mask-buffers", action="store_true", help="also store h.N.attn.bias / h.N.attn.masked_bias")
    ap.add_argument("--name", default="tiny-gpt2")
    for k, t in (("temperature", float), ("top-k", int), ("top-p", float), ("repetition-penalty", float),
                 ("max-new-tokens", int)):
        ap.add_argument(f"--{k}", type=t, default=None, help=f"default {k} (default {DEFAULT_SAMPLING[k.replace('-', '_')]})")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    samp = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
            "repetition_penalty": args.repetition_penalty, "max_new_tokens": args.max_new_tokens}
    try:
        out = export(args.ckpt, args.out, args.dtype, args.prefix, args.mask_buffers, args.name, samp)
    except (ExportError, st.SafetensorsError, OSError, ValueError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"exported {out} ({total / 1e6:.2f} MB): " + ", ".join(sorted(os.listdir(out))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
