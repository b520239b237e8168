"""The tiny Whisper's vocabulary and model directory: BPE -> tiktoken rank file, English-only tokenizer (L = 1),
training checkpoint -> Tessera's Whisper model directory.

    /usr/bin/python3 -m tools.whisper.export --ckpt RUN/whisper.pt --out models/tiny-whisper

Model directory (the layout tools.whisper.convert writes for OpenAI's checkpoints):
  config.json         {"model_type": "whisper", "n_mels", "n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head",
                      "n_audio_layer", "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer"}
  model.safetensors   OpenAI's parameter names and shapes, in state-dict order, F32
  vocab.tiktoken      ``base64(bytes) rank`` lines: ranks 0..255 the single bytes (GPT-2's byte order), then the
                      merged tokens in merge order
The specials follow the ranks in OpenAI's order with one language token (``<|en|>``): eot = R, sot, <|en|>,
translate, transcribe, startoflm, startofprev, nospeech, notimestamps, 1501 timestamps; n_vocab = R + 1510. As
n_vocab < 51865 the decoding rules treat the model as English-only: initial tokens [sot, notimestamps].
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import OrderedDict
from typing import List, Sequence, Tuple

import numpy as np
import torch

from tools.gpt2 import bpe_train
from tools.whisper import data as wdata
from tools.whisper import tokenizer as wtok
from tools.whisper.model import Whisper, WhisperDims, expected_shapes
from tools.whisper.convert import load_model_dir as convert_load_model_dir, write_model_files

DIM_KEYS = ("n_mels", "n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
            "n_text_state", "n_text_head", "n_text_layer")
N_LANGUAGES = 1


class ExportError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- vocabulary

def bpe_to_ranks(bpe: bpe_train.ByteLevelBPE) -> List[bytes]:
    """GPT-2-style vocabulary (ids 0..255 bytes, then merges, then <|endoftext|>) -> token bytes by rank."""
    inv = {i: t for t, i in bpe.vocab.items() if t != bpe.special}
    if sorted(inv) != list(range(len(inv))):
        raise ExportError("vocabulary ids are not contiguous")
    return [bytes(bpe_train.BYTE_DECODER[c] for c in inv[i]) for i in range(len(inv))]


def train_ranks(texts: Sequence[str], n_ranks: int) -> List[bytes]:
    """A byte-level BPE of ``n_ranks`` tokens (or fewer, when no pair occurs twice) trained on ``texts``."""
    return bpe_to_ranks(bpe_train.train_on_texts(texts, n_ranks + 1, min_frequency=2))


def write_ranks(path: str, tokens: Sequence[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(wtok.serialize_ranks(tokens))


def make_tokenizer(tokens: Sequence[bytes], n_vocab: int) -> wtok.Tokenizer:
    return wtok.Tokenizer(tokens, n_vocab)


def n_vocab_for(n_ranks: int) -> int:
    return n_ranks + wtok.N_FIXED_SPECIALS + N_LANGUAGES


# ---------------------------------------------------------------------------------------------- model directory

def state_tensors(model_sd, dims: WhisperDims) -> "OrderedDict[str, np.ndarray]":
    want = expected_shapes(dims)
    extra = sorted(set(model_sd) - set(want))
    if extra:
        raise ExportError(f"unexpected tensor {extra[0]!r}")
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name, shape in want.items():
        if name not in model_sd:
            raise ExportError(f"missing tensor {name!r}")
        a = model_sd[name].detach().cpu().to(torch.float32).numpy()
        if tuple(a.shape) != shape:
            raise ExportError(f"{name}: shape {list(a.shape)}, expected {list(shape)}")
        if not np.all(np.isfinite(a)):
            raise ExportError(f"{name}: non-finite values")
        out[name] = np.ascontiguousarray(a)
    return out


def write_model_dir(out: str, dims: WhisperDims, model_sd, tokens: Sequence[bytes]) -> str:
    tensors = state_tensors(model_sd, dims)
    make_tokenizer(tokens, dims.n_vocab)  # the rank count must fit n_vocab
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    return write_model_files(out, dims, tensors, wtok.serialize_ranks(tokens))


def load_model_dir(directory: str) -> Tuple[WhisperDims, Whisper, wtok.Tokenizer]:
    """-> (dims, Whisper in f32 eval mode, tokenizer): the one loader, tools.whisper.convert's."""
    return convert_load_model_dir(directory)


def load_checkpoint(path: str) -> dict:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or "dims" not in ck or "model_state_dict" not in ck or "tokens" not in ck:
        raise ExportError(f"{path}: not a tools.whisper.train checkpoint")
    return ck


def export(ckpt: str, out: str) -> str:
    ck = load_checkpoint(ckpt)
    dims = WhisperDims(**ck["dims"])
    return write_model_dir(out, dims, ck["model_state_dict"], ck["tokens"])


# The spoken prompt shipped with the model (configs/speech-to-image.yaml's default input): text-to-image.yaml's
# default prompt in a voice the recognizer never heard in training.
SAMPLE_TEXT = "a small red circle on the left and a large blue square at the bottom on a white background"
SAMPLE_VOICE = ("en-us", "m4", 165, 45)  # base, variant, words per minute, pitch


def write_sample(out_dir: str, text: str = SAMPLE_TEXT) -> str:
    from tools.whisper.golden import write_wav
    base, variant, speed, pitch = SAMPLE_VOICE
    if not wdata.voice_is_held_out(base, variant):
        raise ExportError(f"sample voice {wdata.voice_name(base, variant)} is a training voice")
    path = os.path.join(out_dir, "sample.wav")
    write_wav(path, wdata.synthesize(text, wdata.voice_name(base, variant), speed, pitch))
    with open(os.path.join(out_dir, "sample.txt"), "w") as f:
        f.write(text + "\n")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.whisper.export")
    ap.add_argument("--ckpt", required=True, help="RUN/whisper.pt written by tools.whisper.train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-sample", action="store_true", help="skip OUT/sample.wav (needs espeak-ng)")
    args = ap.parse_args(argv)
    try:
        out = export(args.ckpt, args.out)
        if args.no_sample:
            pass
        elif wdata.espeak_exe() is None:
            print("export: espeak-ng is missing (apt-get install -y espeak-ng): no sample.wav", file=sys.stderr)
        else:
            write_sample(out)
    except (ExportError, OSError, wtok.TokenizerError, wdata.DataError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 1
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"export: wrote {out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
