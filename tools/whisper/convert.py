"""OpenAI Whisper checkpoint -> Tessera's Whisper model directory.

    /usr/bin/python3 -m tools.whisper.convert CHECKPOINT.pt OUT_DIR --tokenizer {gpt2,multilingual}.tiktoken
        [--dtype keep|f32|f16]

CHECKPOINT.pt is OpenAI's published file (``{"dims": {...}, "model_state_dict": {...}}``; the URLs are in
openai/whisper's ``whisper/__init__.py``); the tokenizer is ``gpt2.tiktoken`` for the ``.en`` models and
``multilingual.tiktoken`` for the others (openai/whisper's ``whisper/assets``).

OUT_DIR gets:
  config.json         {"model_type": "whisper", "n_mels", "n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head",
                      "n_audio_layer", "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer"} (ints)
  model.safetensors   OpenAI's state-dict names and shapes in state-dict order; F16 or F32 (``--dtype keep``, the
                      default, keeps each tensor's dtype; other float types become F32)
  vocab.tiktoken      the tokenizer file, byte for byte
Every name and shape is checked against the dims, and the tokenizer's rank count against n_vocab, before anything
is written; the directory is written to a temporary sibling and renamed into place, so a failed conversion leaves
nothing behind (and an existing OUT_DIR untouched).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections import OrderedDict
from typing import Dict, Mapping, Tuple

import numpy as np
import torch

from tools.atomic_dir import atomic_directory
from tools.dalle import safetensors_io as st
from tools.whisper.model import Whisper, WhisperDims, expected_shapes
from tools.whisper.tokenizer import Tokenizer, TokenizerError, num_languages, parse_ranks

DIM_KEYS = ("n_mels", "n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
            "n_text_state", "n_text_head", "n_text_layer")
# in upstream a non-persistent buffer; tolerated (and dropped) if a checkpoint carries it
IGNORED = ("alignment_heads",)


class ConvertError(ValueError):
    pass


def check_dims(d) -> WhisperDims:
    if not isinstance(d, Mapping):
        raise ConvertError(f"dims must be a dict, not {type(d).__name__}")
    for k in DIM_KEYS:
        v = d.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConvertError(f"dims: {k} must be a positive integer, not {v!r}")
    extra = sorted(set(d) - set(DIM_KEYS))
    if extra:
        raise ConvertError(f"dims: unknown key {extra[0]!r}")
    for side in ("audio", "text"):
        c, h = d[f"n_{side}_state"], d[f"n_{side}_head"]
        if c % h or c % 2 or c < 4:
            raise ConvertError(f"dims: n_{side}_state {c} must be even, at least 4 and a multiple of "
                               f"n_{side}_head {h}")
    return WhisperDims(**{k: int(d[k]) for k in DIM_KEYS})


def config_json(dims: WhisperDims) -> dict:
    c = {"model_type": "whisper"}
    c.update({k: int(getattr(dims, k)) for k in DIM_KEYS})
    return c


def dims_from_config(c: dict) -> WhisperDims:
    if c.get("model_type") != "whisper":
        raise ConvertError(f"config: model_type must be 'whisper', not {c.get('model_type')!r}")
    return check_dims({k: v for k, v in c.items() if k != "model_type"})


def check_state_dict(sd: Mapping, dims: WhisperDims, dtype: str = "keep") -> "OrderedDict[str, np.ndarray]":
    """Names and shapes checked against ``dims``; -> numpy arrays in OpenAI's order, converted per ``dtype``."""
    if dtype not in ("keep", "f32", "f16"):
        raise ConvertError(f"dtype must be keep, f32 or f16, not {dtype!r}")
    want = expected_shapes(dims)
    for name, t in sd.items():
        if name in IGNORED:
            continue
        if name not in want:
            raise ConvertError(f"unexpected tensor {name!r} {list(getattr(t, 'shape', []))}")
        if not isinstance(t, torch.Tensor):
            raise ConvertError(f"tensor {name!r} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != want[name]:
            raise ConvertError(f"tensor {name!r}: expected shape {list(want[name])}, found {list(t.shape)}")
        if not t.is_floating_point():
            raise ConvertError(f"tensor {name!r} has dtype {t.dtype}, not a float type")
    missing = [n for n in want if n not in sd]
    if missing:
        raise ConvertError(f"missing tensor {missing[0]!r} (expected shape {list(want[missing[0]])})"
                           + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name in want:
        t = sd[name].detach().cpu()
        if dtype == "f16" or (dtype == "keep" and t.dtype == torch.float16):
            a = t.to(torch.float16).numpy()
        else:  # f32, or keep with f32 / bf16 / f64 (the model directory holds F16 or F32 only)
            a = t.to(torch.float32).numpy()
        if not np.all(np.isfinite(a)):
            raise ConvertError(f"tensor {name!r} holds non-finite values" + (" after conversion to f16"
                                                                             if a.dtype == np.float16 else ""))
        out[name] = a
    return out


def check_tokenizer(data: bytes, dims: WhisperDims) -> int:
    """-> the number of language tokens L (99 or 100)."""
    return num_languages(len(parse_ranks(data)), dims.n_vocab)


def load_checkpoint(path: str) -> Tuple[WhisperDims, Mapping]:
    kw = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kw["weights_only"] = True  # tensors and plain containers only: no code runs from the file
    try:
        ck = torch.load(path, **kw)
    except Exception as ex:  # pickle, zip and weights_only errors alike
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(ex).__name__}: {ex})") from None
    if not isinstance(ck, Mapping) or "dims" not in ck or "model_state_dict" not in ck:
        raise ConvertError(f"{path}: expected a dict with 'dims' and 'model_state_dict' (OpenAI's checkpoint layout)")
    sd = ck["model_state_dict"]
    if not isinstance(sd, Mapping):
        raise ConvertError(f"{path}: model_state_dict is not a dict")
    return check_dims(ck["dims"]), sd


def write_model_dir(out: str, dims: WhisperDims, tensors: "OrderedDict[str, np.ndarray]", vocab: bytes) -> str:
    """Check ``tensors`` (already in order and dtype) and ``vocab`` against ``dims``; write OUT atomically."""
    want = expected_shapes(dims)
    if list(tensors) != list(want) or any(tuple(a.shape) != want[n] for n, a in tensors.items()):
        raise ConvertError("tensors do not match the dims (use check_state_dict)")
    check_tokenizer(vocab, dims)
    out = os.path.abspath(out)
    if not os.path.isdir(os.path.dirname(out)):
        raise ConvertError(f"parent directory {os.path.dirname(out)} does not exist")
    return write_model_files(out, dims, tensors, vocab)


def write_model_files(out: str, dims: WhisperDims, tensors: "OrderedDict[str, np.ndarray]", vocab: bytes) -> str:
    """config.json, model.safetensors and vocab.tiktoken into OUT, whole or not at all (no checks: the callers'
    own, OpenAI's vocabulary for the converter, ours for tools.whisper.export)."""
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConvertError(f"{out} exists and is not a directory")
    with atomic_directory(out) as tmp:
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config_json(dims), f, indent=2)
            f.write("\n")
        st.write(os.path.join(tmp, "model.safetensors"), tensors, {"format": "pt"})
        with open(os.path.join(tmp, "vocab.tiktoken"), "wb") as f:
            f.write(vocab)
    return out


def convert(checkpoint: str, out: str, tokenizer: str, dtype: str = "keep") -> str:
    if not os.path.isfile(checkpoint):
        raise ConvertError(f"{checkpoint}: no such file")
    if not os.path.isfile(tokenizer):
        raise ConvertError(f"--tokenizer {tokenizer}: no such file")
    dims, sd = load_checkpoint(checkpoint)
    tensors = check_state_dict(sd, dims, dtype)
    with open(tokenizer, "rb") as f:
        vocab = f.read()
    try:
        check_tokenizer(vocab, dims)
    except TokenizerError as ex:
        raise ConvertError(f"tokenizer {tokenizer}: {ex}") from None
    return write_model_dir(out, dims, tensors, vocab)


def load_model_dir(directory: str) -> Tuple[WhisperDims, Whisper, Tokenizer]:
    """-> (dims, Whisper in f32 eval mode, tokenizer) from a model directory (F16 weights are upcast)."""
    with open(os.path.join(directory, "config.json")) as f:
        dims = dims_from_config(json.load(f))
    tensors, _ = st.read(os.path.join(directory, "model.safetensors"))
    sd: Dict[str, torch.Tensor] = {k: torch.from_numpy(a.astype(np.float32)) for k, a in tensors.items()}
    check_state_dict(sd, dims, "f32")
    model = Whisper(dims)
    model.load_state_dict(sd, strict=True)
    return dims, model.eval(), Tokenizer.load(os.path.join(directory, "vocab.tiktoken"), dims.n_vocab)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.whisper.convert",
                                 description="OpenAI Whisper .pt -> Tessera model directory")
    ap.add_argument("checkpoint", help="OpenAI's checkpoint, e.g. tiny.pt or large-v3.pt")
    ap.add_argument("out", help="the model directory to write")
    ap.add_argument("--tokenizer", required=True, help="gpt2.tiktoken (.en models) or multilingual.tiktoken")
    ap.add_argument("--dtype", default="keep", choices=("keep", "f32", "f16"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        out = convert(args.checkpoint, args.out, args.tokenizer, args.dtype)
    except (ConvertError, TokenizerError, st.SafetensorsError, OSError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"converted {args.checkpoint} -> {out} ({total / 1e6:.1f} MB): " + ", ".join(sorted(os.listdir(out))),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
