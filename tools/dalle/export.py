"""Export a trained tiny DALL·E (tools.dalle.train's dalle.pt + the VQ's vq.pt) as a Tessera model directory.

    /usr/bin/python3 -m tools.dalle.export --ckpt RUN/dalle.pt [--vq VQ/vq.pt] --out models/tiny-dalle
        [--dtype f32|f16] [--name tiny-dalle] [--omit-absent-ln]

Directory contents (format "tessera.dalle", format_version 1):
  config.json              hyperparameters, default sampling settings, file names, detokenizer (VQ) config
  encoder.safetensors      min-dalle DalleBartEncoder names (embed_tokens.weight, layers.N...., final_ln.*)
  decoder.safetensors      min-dalle DalleBartDecoder names (... lm_head.weight)
  detokenizer.safetensors  min-dalle VQGanDetokenizer names (embedding.weight, post_quant_conv.*, decoder.*), F32
  vocab.json, merges.txt   the text tokenizer (tools.dalle.tokenizer)
Every tensor's name and shape is checked against the tables the config implies before anything is written; the
directory is written to a temporary sibling and renamed into place. ``--omit-absent-ln`` leaves out the LN
weights the real min-dalle checkpoints lack (they must then be all ones; a loader treats them as ones).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from tools.atomic_dir import atomic_directory
from tools.dalle import safetensors_io as st
from tools.dalle.model import DalleConfig, DalleModel, is_absent_ln_weight, meta_tables
from tools.dalle.tokenizer import SPECIALS, TextTokenizer

FORMAT = "tessera.dalle"
FORMAT_VERSION = 1
FILES = {"encoder": "encoder.safetensors", "decoder": "decoder.safetensors",
         "detokenizer": "detokenizer.safetensors", "vocab": "vocab.json", "merges": "merges.txt"}
DETOK_KEYS = ("in_channels", "ch", "ch_mult", "num_res_blocks", "attn_resolutions", "z_channels", "embed_dim",
              "n_embed", "resolution", "max_groups", "norm_groups", "norm_eps", "token_side")
MODEL_KEYS = ("name", "text_vocab_size", "text_token_count", "embed_dim", "attention_heads", "glu_hidden",
              "encoder_layers", "decoder_layers", "image_vocab_size", "decoder_vocab_rows", "bos_id", "pad_id",
              "image_token_grid", "image_token_count", "image_size", "layer_norm_eps")


class ExportError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- config

def detokenizer_config(vq_cfg) -> dict:
    d = json.loads(vq_cfg.to_json())
    return {k: d[k] for k in DETOK_KEYS}


def make_config(cfg: DalleConfig, detok: dict, dtype: str = "f32", name: Optional[str] = None,
                omit_absent_ln: bool = False, notes: Optional[str] = None) -> dict:
    c = {"format": FORMAT, "format_version": FORMAT_VERSION}
    for k in MODEL_KEYS:
        c[k] = getattr(cfg, k)
    if name:
        c["name"] = name
    c["sampling"] = {"supercondition_factor": float(cfg.supercondition_factor), "top_k": int(cfg.top_k),
                     "temperature": float(cfg.temperature)}
    c["files"] = dict(FILES)
    c["detokenizer"] = dict(detok)
    c["weights_dtype"] = {"encoder": dtype.upper(), "decoder": dtype.upper(), "detokenizer": "F32"}
    c["absent_ln_weights_omitted"] = bool(omit_absent_ln)
    if notes:
        c["notes"] = notes
    return c


def config_to_dalle(c: dict) -> DalleConfig:
    d = {k: c[k] for k in MODEL_KEYS if k != "image_token_count"}
    d.update(c.get("sampling", {}))
    return DalleConfig(**d)


def check_config(c: dict) -> None:
    if c.get("format") != FORMAT or c.get("format_version") != FORMAT_VERSION:
        raise ExportError(f"config: format must be {FORMAT!r} version {FORMAT_VERSION}")
    for k in MODEL_KEYS + ("sampling", "files", "detokenizer"):
        if k not in c:
            raise ExportError(f"config: missing key {k!r}")
    for k in MODEL_KEYS[1:]:
        v = c[k]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise ExportError(f"config: {k} must be a non-negative number, not {v!r}")
    if c["embed_dim"] % c["attention_heads"]:
        raise ExportError("config: embed_dim must be a multiple of attention_heads")
    if c["image_token_count"] != c["image_token_grid"] ** 2:
        raise ExportError("config: image_token_count must be image_token_grid squared")
    if not (c["image_vocab_size"] <= c["decoder_vocab_rows"] and 0 <= c["bos_id"] < c["decoder_vocab_rows"]):
        raise ExportError("config: need image_vocab_size <= decoder_vocab_rows and bos_id < decoder_vocab_rows")
    if c["pad_id"] != 1:
        raise ExportError("config: pad_id must be 1 (BART <pad>)")
    d = c["detokenizer"]
    if d["n_embed"] != c["image_vocab_size"]:
        raise ExportError(f"detokenizer codebook ({d['n_embed']}) != image_vocab_size ({c['image_vocab_size']})")
    if d["token_side"] != c["image_token_grid"] or d["resolution"] != c["image_size"]:
        raise ExportError(f"detokenizer grid/resolution ({d['token_side']}, {d['resolution']}) != "
                          f"image_token_grid/image_size ({c['image_token_grid']}, {c['image_size']})")
    s = c["sampling"]
    if not (s["top_k"] >= 1 and s["temperature"] > 0 and math.isfinite(s["supercondition_factor"])):
        raise ExportError(f"config: bad sampling settings {s}")


def expected_tables(c: dict) -> Dict[str, List[Tuple[str, Tuple[int, ...]]]]:
    from tools.vq.model import VQConfig, VQModel, decoder_state_dict
    t = meta_tables(config_to_dalle(c))
    vq = VQModel(VQConfig.from_json(c["detokenizer"]))
    t["detokenizer"] = [(k, tuple(v.shape)) for k, v in decoder_state_dict(vq).items()]
    return t


def check_tensors(part: str, tensors: "OrderedDict[str, np.ndarray]", table, omit_absent_ln: bool) -> None:
    want = OrderedDict(table)
    for k, a in tensors.items():
        if k not in want:
            raise ExportError(f"{part}: unexpected tensor {k!r} {list(a.shape)}")
        if tuple(a.shape) != want[k]:
            raise ExportError(f"{part}: tensor {k!r} has shape {list(a.shape)}, the config implies {list(want[k])}")
        if not np.all(np.isfinite(a)):
            raise ExportError(f"{part}: tensor {k!r} holds non-finite values")
    for k in want:
        if k not in tensors:
            if omit_absent_ln and part != "detokenizer" and is_absent_ln_weight(k):
                continue
            raise ExportError(f"{part}: missing tensor {k!r} {list(want[k])}")


# ---------------------------------------------------------------------------------------------- writing

def _np(t: torch.Tensor, dtype: str) -> np.ndarray:
    a = t.detach().cpu().float().numpy()
    return a.astype(np.float16) if dtype == "f16" else a


def write_model_dir(out: str, config: dict, encoder: Dict[str, torch.Tensor], decoder: Dict[str, torch.Tensor],
                    detokenizer: Dict[str, torch.Tensor], tok: TextTokenizer, overwrite: bool = True) -> str:
    """Check everything against ``config`` and write the directory atomically. Returns the path."""
    dtype = config["weights_dtype"]["encoder"].lower()
    if dtype not in ("f32", "f16"):
        raise ExportError(f"dtype must be f32 or f16, not {dtype!r}")
    omit = bool(config.get("absent_ln_weights_omitted"))
    check_config(config)
    if tok.vocab_size > config["text_vocab_size"]:
        raise ExportError(f"tokenizer has {tok.vocab_size} ids but text_vocab_size is {config['text_vocab_size']}")
    for i, s in enumerate(SPECIALS):
        if tok.vocab.get(s) != i:
            raise ExportError(f"tokenizer must map {s!r} to {i}")
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ExportError(f"--out {out} exists and is not a directory")
    if os.path.exists(out) and not overwrite:
        raise ExportError(f"--out {out} exists")
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise ExportError(f"parent directory {parent} does not exist")

    parts = {"encoder": OrderedDict(), "decoder": OrderedDict(), "detokenizer": OrderedDict()}
    for part, sd, dt in (("encoder", encoder, dtype), ("decoder", decoder, dtype), ("detokenizer", detokenizer, "f32")):
        for k, v in sd.items():
            if omit and part != "detokenizer" and is_absent_ln_weight(k):
                if not torch.all(v == 1):
                    raise ExportError(f"{part}: {k} is not all ones, so it cannot be omitted")
                continue
            parts[part][k] = _np(v, dt)
    tables = expected_tables(config)
    for part in parts:
        check_tensors(part, parts[part], tables[part], omit)

    with atomic_directory(out) as tmp:
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        for part, tensors in parts.items():
            st.write(os.path.join(tmp, FILES[part]), tensors,
                     {"format": FORMAT, "format_version": str(FORMAT_VERSION), "part": part})
        with open(os.path.join(tmp, FILES["vocab"]), "w", encoding="utf-8") as f:
            f.write(tok.vocab_text())
        with open(os.path.join(tmp, FILES["merges"]), "w", encoding="utf-8") as f:
            f.write(tok.merges_text())
    return out


def export(ckpt: str, out: str, vq_path: Optional[str] = None, dtype: str = "f32", name: Optional[str] = None,
           omit_absent_ln: bool = False, sampling: Optional[dict] = None) -> str:
    """``sampling``: overrides of supercondition_factor / top_k / temperature (default: the checkpoint's)."""
    from tools.dalle.model import load as load_dalle
    from tools.vq import model as vqmodel
    if dtype not in ("f32", "f16"):
        raise ExportError(f"--dtype must be f32 or f16, not {dtype!r}")
    if not os.path.isfile(ckpt):
        raise ExportError(f"--ckpt {ckpt}: no such file")
    model, tok, extra = load_dalle(ckpt)
    if tok is None:
        raise ExportError(f"{ckpt} holds no tokenizer")
    vq_path = vq_path or extra.get("vq_path")
    if not vq_path or not os.path.isfile(vq_path):
        raise ExportError(f"VQ checkpoint {vq_path!r} not found (give --vq)")
    vq = vqmodel.load(vq_path)
    for k, v in (sampling or {}).items():
        if v is not None:
            setattr(model.cfg, k, type(getattr(model.cfg, k))(v))
    config = make_config(model.cfg, detokenizer_config(vq.cfg), dtype, name, omit_absent_ln)
    return write_model_dir(out, config, model.encoder.state_dict(), model.decoder.state_dict(),
                           vqmodel.decoder_state_dict(vq), tok)


# ---------------------------------------------------------------------------------------------- reading

def load_model_dir(directory: str):
    """-> (config dict, DalleModel (f32, eval), TextTokenizer, VQModel with the detokenizer weights (eval)).
    Missing absent-LN weights are ones (as min-dalle's strict=False load leaves them)."""
    from tools.vq.model import VQConfig, VQModel, decoder_state_dict
    with open(os.path.join(directory, "config.json")) as f:
        c = json.load(f)
    check_config(c)
    cfg = config_to_dalle(c)
    model = DalleModel(cfg).eval()
    for part, mod in (("encoder", model.encoder), ("decoder", model.decoder)):
        tensors, _ = st.read(os.path.join(directory, c["files"][part]))
        sd = mod.state_dict()
        for k in sd:
            if k in tensors:
                sd[k] = torch.from_numpy(tensors[k].astype(np.float32))
            elif is_absent_ln_weight(k):
                sd[k] = torch.ones_like(sd[k])
            else:
                raise ExportError(f"{part}: missing tensor {k}")
        extra = set(tensors) - set(sd)
        if extra:
            raise ExportError(f"{part}: unexpected tensors {sorted(extra)[:5]}")
        mod.load_state_dict(sd)
    vq = VQModel(VQConfig.from_json(c["detokenizer"])).eval()
    tensors, _ = st.read(os.path.join(directory, c["files"]["detokenizer"]))
    want = decoder_state_dict(vq)
    if set(tensors) != set(want):
        raise ExportError("detokenizer: tensor names differ from the VQ decoder's")
    vq.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}, strict=False)
    tok = TextTokenizer.load(directory)
    return c, model, tok, vq


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.dalle.export")
    ap.add_argument("--ckpt", required=True, help="dalle.pt from tools.dalle.train")
    ap.add_argument("--vq", default=None, help="vq.pt (default: the path recorded in the checkpoint)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="f32", help="encoder/decoder weights: f32 or f16 (detokenizer stays f32)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--omit-absent-ln", action="store_true")
    ap.add_argument("--factor", type=float, default=None, help="default supercondition factor to record")
    ap.add_argument("--top-k", type=int, default=None, help="default top-k to record")
    ap.add_argument("--temperature", type=float, default=None, help="default temperature to record")
    args = ap.parse_args(argv)
    try:
        out = export(args.ckpt, args.out, args.vq, args.dtype, args.name, args.omit_absent_ln,
                     {"supercondition_factor": args.factor, "top_k": args.top_k, "temperature": args.temperature})
    except (ExportError, st.SafetensorsError, OSError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"exported {out} ({total / 1e6:.2f} MB): " + ", ".join(sorted(os.listdir(out))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
