"""Golden vectors for the C++ Whisper parity test, from a random-weights model at Whisper-tiny dims.

    /usr/bin/python3 -m tools.whisper.golden --random-tiny DIR [--seed 53] [--threads 1]

Writes (everything computed from the files as written: the weights read back from DIR/model, the samples read
back from the WAV files as int16 / 32768):
  DIR/model/           config.json, model.safetensors (F32, OpenAI names), vocab.tiktoken: random weights at tiny
                       dims (80 mels, n_vocab 51865, 384 wide, 6 heads, 4 + 4 layers); a synthetic rank table of
                       50257 tokens (ranks 0..255 the single bytes in GPT-2's order, so b" " is 220; then made-up
                       ASCII syllable strings, many with a leading space: not a trained BPE), so eot = 50257
  DIR/speech.wav       3.3 s of synthetic speech-like audio (harmonics of a moving pitch, formant-like weights,
                       syllable envelope, a little noise), 16 kHz mono 16-bit PCM
  DIR/long.wav         31.5 s of the same kind (two 30 s windows), 16 kHz mono 16-bit PCM
  DIR/golden.safetensors
      mel              F32 [80, 3000]     speech.wav's first window of log_mel
      long_mel         F32 [80, F]        long.wav's whole log-mel, F = (n + 480000) // 160
      audio_features   F32 [1500, 384]    the encoder's output for ``mel``
      tf_tokens        I32 [T]            the initial tokens, then 12 fixed text ids (T = 16)
      tf_logits        F32 [T, 51865]     teacher-forced raw logits (no suppression)
      greedy_ids       I32 [N]            greedy, max_tokens 24 (eot excluded)
      greedy_margins   F32 [N]            top1 - top2 of the suppressed logits at each emitted token's step
      beam_ids         I32 [M]            beam search, beam size 4, max_tokens 16
      long_greedy_ids_0, long_greedy_ids_1   I32   greedy, max_tokens 8, long.wav's two windows
  DIR/golden.json      texts, scores, the initial and special ids, dims, tensor table (see ``compute``)

The decoding rules are tools/whisper/model.py's (module doc). The eot row of the token embedding is scaled up
(EOT_GAIN) so that eot competes with the text tokens: greedy and beam search then end on eot sometimes, which a
plain random model (eot 1 in 50k) never does.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import random
import sys
import time
import wave
from collections import OrderedDict
from typing import List, Optional

import numpy as np
import torch

from tools import steps
from tools.dalle import safetensors_io as st
from tools.gpt2.bpe_train import BYTE_ENCODER
from tools.whisper.convert import ConvertError, load_model_dir, write_model_dir
from tools.whisper.model import (SAMPLE_RATE, WhisperDims, beam_decode, expected_shapes, greedy_decode,
                                 initial_tokens, log_mel, mel_windows, sinusoids, text_of)
from tools.whisper.tokenizer import N_FIXED_SPECIALS, serialize_ranks

TINY = WhisperDims(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4, n_vocab=51865,
                   n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4)
N_LANGUAGES = 99
TF_TEXT_IDS = (220, 0, 256, 1000, 4321, 9999, 17000, 25000, 33333, 41000, 48888, 50256)  # taken modulo eot
GREEDY_MAX, BEAM_SIZE, BEAM_MAX, LONG_MAX = 24, 4, 16, 8
SPEECH_SECONDS, LONG_SECONDS = 3.3, 31.5
EOT_GAIN, QK_GAIN, CROSS_OUT_GAIN = 3.0, 2.5, 0.3  # see random_state_dict
VOCAB_SEED, SPEECH_SEED, LONG_SEED = 0, 1, 2  # --seed picks the weights only
# The default weights seed was picked (from 1..60) for coverage: greedy stops at eot after 16 distinct tokens, beam
# search ends with finished hypotheses, long.wav's first window stops at eot and its second runs to max_tokens.
DEFAULT_SEED = 53

write_golden = functools.partial(steps.write_golden, fmt="tessera.whisper.golden")


# ---------------------------------------------------------------------------------------------- model

def synthetic_ranks(n_ranks: int, seed: int = 0) -> List[bytes]:
    """Ranks 0..255: the single bytes in GPT-2's order; then distinct made-up ASCII words (1-3 syllables), about
    60 % with a leading space, some capitalised or with a trailing comma / full stop."""
    tokens = [bytes([b]) for b in BYTE_ENCODER]
    seen = set(tokens)
    r = random.Random(seed)
    cons, vows = "bcdfghjklmnprstvwz", "aeiou"
    while len(tokens) < n_ranks:
        w = "".join(r.choice(cons) + r.choice(vows) + (r.choice(cons) if r.random() < 0.4 else "")
                    for _ in range(r.randint(1, 3)))
        if r.random() < 0.1:
            w = w.capitalize()
        if r.random() < 0.05:
            w += r.choice(",.")
        if r.random() < 0.6:
            w = " " + w
        b = w.encode("ascii")
        if b not in seen:
            seen.add(b)
            tokens.append(b)
    return tokens


def random_state_dict(dims: WhisperDims, seed: int, eot: Optional[int] = None) -> "OrderedDict[str, torch.Tensor]":
    """Every tensor set explicitly: linear / conv weights N(0, 1/fan_in) (unit-scale activations), biases
    N(0, 0.02), layer-norm weights 1 + N(0, 0.1) and biases N(0, 0.02), token embedding N(0, 0.1), decoder
    positions N(0, 0.05), encoder positions the sinusoid table. Three decoder gains keep a random decoder from
    repeating one token forever: its query/key weights times QK_GAIN (peaked attention, so what it reads depends on
    the query), its cross-attention output times CROSS_OUT_GAIN (the averaged audio would otherwise drown the token
    signal in the residual stream), and the eot embedding row times EOT_GAIN (eot competes with the text)."""
    g = torch.Generator().manual_seed(seed)
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, shape in expected_shapes(dims).items():
        if name == "encoder.positional_embedding":
            t = sinusoids(*shape)
        elif name == "decoder.positional_embedding":
            t = torch.randn(shape, generator=g) * 0.05
        elif name == "decoder.token_embedding.weight":
            t = torch.randn(shape, generator=g) * 0.1
            if eot is not None:
                t[eot] *= EOT_GAIN
        elif "_ln." in name or name.startswith(("encoder.ln_post.", "decoder.ln.")):
            t = torch.randn(shape, generator=g) * (0.1 if name.endswith("weight") else 0.02)
            if name.endswith("weight"):
                t += 1.0
        elif name.endswith("bias"):
            t = torch.randn(shape, generator=g) * 0.02
        else:
            t = torch.randn(shape, generator=g) / math.sqrt(int(np.prod(shape[1:])))  # fan-in
            if name.startswith("decoder.") and name.endswith(("query.weight", "key.weight")):
                t *= QK_GAIN
            elif name.startswith("decoder.") and name.endswith("cross_attn.out.weight"):
                t *= CROSS_OUT_GAIN
        sd[name] = t
    return sd


# ---------------------------------------------------------------------------------------------- audio

def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Deterministic speech-like float samples in [-0.7, 0.7] at 16 kHz."""
    rng = np.random.RandomState(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    p = rng.uniform(0, 2 * np.pi, 6)
    f0 = 150 + 35 * np.sin(2 * np.pi * 0.7 * t + p[0]) + 15 * np.sin(2 * np.pi * 2.3 * t + p[1])  # moving pitch
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    f1 = 650 + 200 * np.sin(2 * np.pi * 3.1 * t + p[2])  # formant-like resonances moving per "syllable"
    f2 = 1600 + 500 * np.sin(2 * np.pi * 1.7 * t + p[3])
    x = np.zeros(n)
    for k in range(1, 31):
        fk = k * f0
        a = np.exp(-((fk - f1) / 180) ** 2) + 0.6 * np.exp(-((fk - f2) / 250) ** 2) + 0.05 / k
        x += np.where(fk < 7000, a, 0.0) * np.sin(k * phase)
    syl = np.maximum(0.0, np.sin(np.pi * 3.7 * t + p[4])) ** 1.5  # ~3.7 syllables a second, gaps between
    env = syl * (0.65 + 0.35 * np.sin(2 * np.pi * 0.23 * t + p[5]))
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)  # 50 ms fade in / out
    x = x * env * ramp
    x = 0.7 * x / np.abs(x).max() + 0.003 * rng.randn(n)
    return np.clip(x, -0.99, 0.99).astype(np.float32)


def write_wav(path: str, samples: np.ndarray) -> None:
    """16 kHz mono 16-bit PCM, written to a temporary file and renamed."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def read_wav(path: str) -> np.ndarray:
    """16-bit PCM mono 16 kHz -> float32 samples (int16 / 32768), through tools.whisper.data's WAV parser."""
    from tools.whisper.data import DataError, parse_wav16
    with open(path, "rb") as f:
        try:
            x, rate = parse_wav16(f.read())
        except DataError as ex:
            raise ConvertError(f"{path}: {ex}") from None
    if rate != SAMPLE_RATE:
        raise ConvertError(f"{path}: expected 16 kHz mono 16-bit PCM, found {rate} Hz")
    return x


# ---------------------------------------------------------------------------------------------- golden

@torch.no_grad()
def compute(model_dir: str, speech_wav: str, long_wav: str, log=print):
    t0 = time.time()
    dims, model, tok = load_model_dir(model_dir)
    speech, long_ = read_wav(speech_wav), read_wav(long_wav)
    W = 2 * dims.n_audio_ctx  # mel frames per window: 3000 for OpenAI's models
    mel = mel_windows(log_mel(speech, dims.n_mels, W), len(speech), W)[0].contiguous()
    feats = model.encoder(mel[None])
    init = initial_tokens(tok, "en")
    tf_tokens = init + [t % tok.eot for t in TF_TEXT_IDS]
    tf_logits = model.decoder(torch.tensor([tf_tokens]), feats)[0]
    greedy, margins = greedy_decode(model, feats, tok, init, GREEDY_MAX)
    info: dict = {}
    beam, beam_score = beam_decode(model, feats, tok, init, BEAM_SIZE, BEAM_MAX, info)
    log(f"golden: speech window encoded and decoded in {time.time() - t0:.1f}s", flush=True)
    long_mel = log_mel(long_, dims.n_mels, W)
    wins = mel_windows(long_mel, len(long_), W)
    if len(wins) < 2:
        raise ConvertError(f"long.wav gives {len(wins)} window(s) of {W} frames, expected 2 or more")
    long_ids = [greedy_decode(model, model.encoder(w[None]), tok, init, LONG_MAX)[0] for w in wins]
    long_texts = [text_of(tok, ids) for ids in long_ids]
    log(f"golden: long.wav ({len(long_) / SAMPLE_RATE:.1f} s, {len(wins)} windows) in {time.time() - t0:.1f}s",
        flush=True)

    i32 = lambda v: np.asarray(v, np.int32)  # noqa: E731
    tensors = [
        ("mel", mel.numpy()),
        ("long_mel", long_mel.numpy()),
        ("audio_features", feats[0].numpy()),
        ("tf_tokens", i32(tf_tokens)),
        ("tf_logits", tf_logits.numpy()),
        ("greedy_ids", i32(greedy)),
        ("greedy_margins", np.asarray(margins[:len(greedy)], np.float32)),
        ("beam_ids", i32(beam)),
    ] + [(f"long_greedy_ids_{i}", i32(ids)) for i, ids in enumerate(long_ids)]
    stopped = len(margins) > len(greedy)  # the last step chose eot
    meta = {
        "format": "tessera.whisper.golden", "format_version": 1,
        "language": "en", "initial_tokens": init,
        "special_ids": {"eot": tok.eot, "sot": tok.sot, "en": tok.language_token("en"),
                        "transcribe": tok.special("transcribe"), "notimestamps": tok.special("notimestamps"),
                        "timestamp_begin": tok.timestamp_begin, "space": tok.space_token},
        "tf_tokens": tf_tokens,
        "greedy_max_tokens": GREEDY_MAX, "greedy_ids": greedy, "greedy_text": text_of(tok, greedy),
        "greedy_stopped_at_eot": stopped, "greedy_eot_margin": margins[-1] if stopped else None,
        "min_greedy_margin": min(margins) if margins else None,
        "beam_size": BEAM_SIZE, "beam_max_tokens": BEAM_MAX, "beam_ids": beam, "beam_text": text_of(tok, beam),
        "beam_score": beam_score, "beam_score_normalized": beam_score / max(1, len(beam)),
        "beam_steps": info["steps"], "beam_finished": info["finished"], "beam_from_finished": info["from_finished"],
        "long_max_tokens": LONG_MAX, "long_windows": len(wins), "long_ids": long_ids, "long_texts": long_texts,
        # Windows join as decoded (each usually starts with a space), then the whole is stripped, as the plugin does.
        "long_text": "".join(tok.decode(ids) for ids in long_ids).strip(),
        "speech_samples": int(len(speech)), "long_samples": int(len(long_)),
        "dims": dims.to_dict(),
        "model_files_sha256": {f: steps.sha256_file(os.path.join(model_dir, f))
                               for f in ("config.json", "model.safetensors", "vocab.tiktoken")},
        "tensors": {n: {"dtype": st.dtype_name(a), "shape": list(a.shape)} for n, a in tensors},
        "notes": "f32 PyTorch from the written files; samples = int16 / 32768 read back from the WAVs; mel = log_mel "
                 "(a window of zeros appended, global max - 8 floor) window 0; greedy_margins pair with greedy_ids "
                 "(the eot step's margin is greedy_eot_margin); beam_score = summed log-probability (float64) of "
                 "the chosen hypothesis, ranked by beam_score / max(1, len); long_text = the windows' decoded "
                 "texts joined as they are, then stripped.",
    }
    return tensors, meta


def random_tiny(out_dir: str, seed: int = DEFAULT_SEED, dims: WhisperDims = TINY, log=print) -> dict:
    """The model, the WAVs and the golden vectors in ``out_dir`` (see the module doc). -> golden.json's dict."""
    t0 = time.time()
    n_ranks = dims.n_vocab - N_FIXED_SPECIALS - N_LANGUAGES
    vocab = serialize_ranks(synthetic_ranks(n_ranks, VOCAB_SEED))
    sd = random_state_dict(dims, seed, eot=n_ranks)
    tensors = OrderedDict((k, v.numpy()) for k, v in sd.items())
    os.makedirs(out_dir, exist_ok=True)
    mdir = write_model_dir(os.path.join(out_dir, "model"), dims, tensors, vocab)
    speech_wav, long_wav = os.path.join(out_dir, "speech.wav"), os.path.join(out_dir, "long.wav")
    write_wav(speech_wav, speech_like(SPEECH_SECONDS, SPEECH_SEED))
    write_wav(long_wav, speech_like(LONG_SECONDS, LONG_SEED))
    log(f"golden: model and audio written to {out_dir} in {time.time() - t0:.1f}s", flush=True)
    tensors, meta = compute(mdir, speech_wav, long_wav, log)
    meta["seed"] = seed
    write_golden(out_dir, tensors, meta)
    return meta


def for_model(model_dir: str, speech_wav: str, long_wav: str, out_dir: str, log=print) -> dict:
    """Golden vectors of an existing model directory (the bundled one) on two 16 kHz mono 16-bit clips."""
    tensors, meta = compute(model_dir, speech_wav, long_wav, log)
    meta["model_dir"] = os.path.relpath(model_dir, out_dir)
    write_golden(out_dir, tensors, meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.whisper.golden")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--random-tiny", metavar="DIR", help="where model/, the WAVs and golden.* go")
    mode.add_argument("--model-dir", metavar="DIR", help="golden vectors of this model (with --speech, --long, --out)")
    ap.add_argument("--speech", help="--model-dir: a clip within one window")
    ap.add_argument("--long", help="--model-dir: a clip of two windows or more")
    ap.add_argument("--out", help="--model-dir: where golden.* go")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    try:
        if args.model_dir:
            if not (args.speech and args.long and args.out):
                ap.error("--model-dir needs --speech, --long and --out")
            meta = for_model(args.model_dir, args.speech, args.long, args.out)
        else:
            meta = random_tiny(args.random_tiny, args.seed)
    except (ConvertError, st.SafetensorsError, OSError, ValueError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    print(f"golden: wrote {args.random_tiny or args.out} in {time.time() - t0:.1f}s; greedy {meta['greedy_text']!r}; "
          f"beam {meta['beam_text']!r}; long {meta['long_text']!r}; min greedy margin "
          f"{meta['min_greedy_margin']:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
