"""Spoken training data for the tiny Whisper: sentences synthesised by espeak-ng (a Debian package), cached on disk.

    /usr/bin/python3 -m tools.whisper.data --out /tmp/tiny-whisper-work/data.pt [--n-shapes 11000] [--n-general 5000]
        [--workers 3] [--seed 1] [--n-audio-ctx 350]      # builds (or reuses) the cache and prints statistics

Sentences
  * shapes world: ``tools.shapes.world`` captions (``render_caption(sample_scene(split="train"))`` for training,
    ``split="heldout"`` scenes -- the world's held-out attribute combinations -- for the held-out set);
  * general: short clauses of the King James Bible (Debian's ``bible-kjv``, read by ``tools.gpt2.data``; falls back
    to the ``fortunes`` package) made of frequent, simple words: 3-10 words, no digits, no capitalised words but the
    first and "I", every word among the corpus' 2000 most frequent. Every 20th distinct clause is held out.
  Transcripts are normalised (:func:`normalize_text`): lower case, only letters, digits, apostrophes and inner
  hyphens, single spaces. That is also the form the word error rate compares (hyphens count as spaces there).

Voices: ``espeak-ng -v BASE+VARIANT -s SPEED -p PITCH --stdout TEXT`` over the English voices of espeak-ng's own
(``gmw/``) set and its voice variants (``!v/``); speed 140..220 words per minute, pitch 20..80. A fixed, hashed
subset of the (base, variant) pairs (:func:`voice_is_held_out`, about 1 in 6) is never used for training: every
held-out utterance uses one of those pairs, so held-out voice, speed and text combinations are all unseen.

Audio: espeak-ng's 22,050 Hz 16-bit output is resampled to 16 kHz by FFT (band-limited: the spectrum above 8 kHz
is cut, zero-padded to a multiple of 441 samples so that 320/441 is exact), stored as int16. Utterances longer
than the window (``2 * n_audio_ctx * 160`` samples less ``MARGIN_S``) are dropped (and counted). Training noise
is added on the fly by :func:`augment`; the held-out sets get their noise once, seeded, at build time (white, pink
or brown noise at 10-40 dB SNR, half of them also given up to 0.4 s of leading silence).

Front end: :func:`log_mel_window` is ``tools.whisper.model.log_mel`` with a window of ``2 * n_audio_ctx`` frames: append
``2 * n_audio_ctx * 160`` zero samples (not 480,000), STFT, drop the last frame, mel, log10, global max - 8 floor,
(x + 4) / 4, then the first ``2 * n_audio_ctx`` frames (the window the C++ plugin feeds the encoder).
:func:`log_mel_batch` computes the same for a batch of clips, bit-for-bit equal to one clip at a time up to float
summation order.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from tools.shapes import world
from tools.whisper.model import HOP, N_FFT, SAMPLE_RATE, log_mel, mel_filters

ESPEAK_RATE = 22050
MARGIN_S = 0.05  # an utterance must end this long before the window does
BASE_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
               "en-us-nyc")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "Michael", "adam", "linda", "paul", "john", "ed", "max", "david", "Alex", "Andy", "Annie", "boris",
            "belinda", "benjamin", "edward", "iven", "steph")
SPEED_RANGE = (140, 220)
PITCH_RANGE = (20, 80)
HELDOUT_VOICE_EVERY = 6
GENERAL_HOLDOUT_EVERY = 20
GENERAL_TOP_WORDS = 2000


class DataError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------- text

_KEEP = re.compile(r"[^a-z0-9'\- ]+")


def normalize_text(s: str) -> str:
    """Lower case; letters, digits, apostrophes, hyphens between letters; single spaces."""
    s = s.lower().replace("\u2019", "'")
    s = _KEEP.sub(" ", s)
    s = re.sub(r"(?<![a-z0-9])-|-(?![a-z0-9])", " ", s)  # hyphens only inside words
    s = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", s)  # apostrophes only inside words
    return " ".join(s.split())


# Spellings of one word that speech cannot tell apart, scored as one (as Whisper's English normaliser maps British
# to American spelling before its word error rates): the shapes-world captions use both forms.
SPELLING = {"grey": "gray", "centre": "center", "disc": "disk"}


def wer_words(s: str) -> List[str]:
    """The words the word error rate compares: lower case, punctuation (hyphens too) as spaces, one spelling per
    word (:data:`SPELLING`)."""
    return [SPELLING.get(w, w) for w in re.sub(r"[^a-z0-9']+", " ", s.lower().replace("\u2019", "'")).split()]


def shapes_sentences(n: int, seed: int, split: str) -> List[str]:
    r = random.Random(seed)
    return [normalize_text(world.render_caption(world.sample_scene(r, split=split), r)) for _ in range(n)]


def _general_source() -> Tuple[str, List[str]]:
    """(name, raw texts) of the general corpus: the KJV verses, else the fortunes."""
    from tools.gpt2 import data as gdata
    try:
        return "kjv", [v[3] for v in gdata.kjv_verses()]
    except gdata.CorpusError:
        pass
    try:
        tr, va = gdata.fortune_documents()
        return "fortunes", tr + va
    except gdata.CorpusError:
        raise DataError("general sentences need Debian's bible-kjv (apt-get install -y bible-kjv) or fortunes")


def general_sentences(min_words: int = 3, max_words: int = 10) -> Tuple[str, List[str], List[str]]:
    """(corpus name, training clauses, held-out clauses), normalised, distinct, in corpus order."""
    name, texts = _general_source()
    clauses = []
    for t in texts:
        for c in re.split(r"[.;:?!()\n]+|, (?:and|but|for|that) ", t):
            c = c.strip(" ,'\"-")
            if c:
                clauses.append(c)
    freq: collections.Counter = collections.Counter()
    for c in clauses:
        freq.update(w.lower() for w in re.findall(r"[A-Za-z']+", c))
    top = {w for w, _ in freq.most_common(GENERAL_TOP_WORDS)}
    keep, seen = [], set()
    for c in clauses:
        if re.search(r"[0-9_@#$%&*=<>/\\|\[\]{}~^`+]", c):
            continue
        words = c.split()
        if not min_words <= len(words) <= max_words:
            continue
        raw = re.findall(r"[A-Za-z']+", c)
        if any(w[0].isupper() and i > 0 and w != "I" for i, w in enumerate(raw)):
            continue
        if any(w.lower() not in top for w in raw):
            continue
        n = normalize_text(c)
        if len(n.split()) < min_words or n in seen:
            continue
        seen.add(n)
        keep.append(n)
    train = [c for i, c in enumerate(keep) if i % GENERAL_HOLDOUT_EVERY != GENERAL_HOLDOUT_EVERY // 2]
    held = [c for i, c in enumerate(keep) if i % GENERAL_HOLDOUT_EVERY == GENERAL_HOLDOUT_EVERY // 2]
    return name, train, held


# ---------------------------------------------------------------------------------------------- voices

def voice_name(base: str, variant: str) -> str:
    return base + ("+" + variant if variant else "")


def voice_is_held_out(base: str, variant: str) -> bool:
    h = int(hashlib.sha256(voice_name(base, variant).encode()).hexdigest()[:8], 16)
    return h % HELDOUT_VOICE_EVERY == 0


def voice_pairs(held_out: bool) -> List[Tuple[str, str]]:
    return [(b, v) for b in BASE_VOICES for v in VARIANTS if voice_is_held_out(b, v) == held_out]


def espeak_exe() -> Optional[str]:
    return shutil.which("espeak-ng")


# ---------------------------------------------------------------------------------------------- audio

def parse_wav16(data: bytes) -> Tuple[np.ndarray, int]:
    """Mono 16-bit PCM WAV bytes (espeak-ng's --stdout writes 0x7fffffff-ish sizes) -> (float32 samples, rate)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DataError("not a RIFF/WAVE stream")
    pos, rate, fmt_ok = 12, None, False
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            fmt, ch, rate, _, _, bits = np.frombuffer(data[pos + 8:pos + 24], dtype="<u2,<u2,<u4,<u4,<u2,<u2")[0]
            if fmt != 1 or ch != 1 or bits != 16:
                raise DataError(f"want 16-bit mono PCM, got format {fmt}, {ch} channels, {bits} bits")
            fmt_ok = True
        elif cid == b"data":
            if not fmt_ok:
                raise DataError("data chunk before fmt chunk")
            body = data[pos + 8:]
            body = body[:min(size, len(body)) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0, int(rate)
        pos += 8 + size + (size & 1)
    raise DataError("no data chunk")


def resample(x: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling by FFT: zero-pad to a length whose output length is exact, keep the bins below both
    Nyquist frequencies, inverse FFT. Returns float32 of length round(len(x) * rate_out / rate_in)."""
    if rate_in == rate_out:
        return np.asarray(x, np.float32)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    n = len(x)
    m = -(-max(n, 1) // down) * down  # pad to a multiple of `down`
    m_out = m // down * up
    X = np.fft.rfft(np.pad(np.asarray(x, np.float64), (0, m - n)))
    k = min(len(X), m_out // 2 + 1)
    Y = np.zeros(m_out // 2 + 1, np.complex128)
    Y[:k] = X[:k]
    if m_out % 2 == 0 and k == m_out // 2 + 1:
        Y[-1] = Y[-1].real  # the output Nyquist bin must be real
    y = np.fft.irfft(Y, m_out) * (m_out / m)
    return y[:int(round(n * rate_out / rate_in))].astype(np.float32)


def synthesize(text: str, voice: str, speed: int, pitch: int, exe: Optional[str] = None) -> np.ndarray:
    """espeak-ng's rendition of ``text`` as 16 kHz float32 samples."""
    exe = exe or espeak_exe()
    if exe is None:
        raise DataError("espeak-ng is not installed: apt-get install -y espeak-ng")
    r = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise DataError(f"espeak-ng -v {voice} failed ({r.returncode}): {r.stderr.decode(errors='replace')[:200]}")
    x, rate = parse_wav16(r.stdout)
    return resample(x, rate)


def noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: white, pink (1/f power) or brown (1/f^2)."""
    w = rng.standard_normal(n)
    if kind != "white" and n > 1:
        W = np.fft.rfft(w)
        f = np.arange(len(W), dtype=np.float64)
        f[0] = 1.0
        W /= f ** (0.5 if kind == "pink" else 1.0)
        W[0] = 0.0
        w = np.fft.irfft(W, n)
    rms = float(np.sqrt(np.mean(w * w))) or 1.0
    return (w / rms).astype(np.float32)


NOISE_KINDS = ("white", "pink", "brown")


def speech_rms(x: np.ndarray) -> float:
    """RMS over the louder half of 20 ms blocks (so leading and trailing silence do not count)."""
    b = 320
    n = len(x) // b
    if n == 0:
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
    e = np.mean(x[:n * b].astype(np.float64).reshape(n, b) ** 2, axis=1)
    e = np.sort(e)[n // 2:]
    return float(np.sqrt(np.mean(e)))


def add_noise(x: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    level = speech_rms(x) * 10.0 ** (-snr_db / 20.0)
    return x + level * noise(len(x), kind, rng)


def augment(x: np.ndarray, rng: np.random.Generator, window_samples: int, p_clean: float = 0.15,
            snr_db: Tuple[float, float] = (5.0, 40.0), max_lead_s: float = 0.5) -> np.ndarray:
    """Training augmentation: leading silence (if it fits), gain, and noise over the whole clip at a random SNR."""
    room = window_samples - len(x) - int(MARGIN_S * SAMPLE_RATE)
    lead = int(rng.integers(0, max(1, min(room, int(max_lead_s * SAMPLE_RATE)) + 1))) if room > 0 else 0
    y = np.concatenate([np.zeros(lead, np.float32), x]) if lead else x.astype(np.float32)
    y = y * np.float32(10.0 ** rng.uniform(-1.0, 0.3))
    if rng.random() >= p_clean:
        y = add_noise(y, float(rng.uniform(*snr_db)), NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))], rng)
    return np.clip(y, -1.0, 1.0)


def window_samples(n_audio_ctx: int) -> int:
    return 2 * n_audio_ctx * HOP


_FILTERS: Dict[int, torch.Tensor] = {}


def _filters(n_mels: int) -> torch.Tensor:
    if n_mels not in _FILTERS:
        _FILTERS[n_mels] = torch.from_numpy(mel_filters(n_mels))
    return _FILTERS[n_mels]


def log_mel_batch(clips: Sequence[np.ndarray], n_mels: int, n_audio_ctx: int) -> torch.Tensor:
    """[B, n_mels, 2 * n_audio_ctx]: each clip (<= the window) as the C++ front end sees it (module doc)."""
    W = window_samples(n_audio_ctx)
    x = torch.zeros(len(clips), 2 * W)  # the clip, zeros to the window, then W appended zero samples
    for i, c in enumerate(clips):
        c = np.asarray(c, np.float32)
        if len(c) > W:
            raise ValueError(f"clip of {len(c)} samples exceeds the {W}-sample window")
        x[i, :len(c)] = torch.from_numpy(c)
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="reflect",
                      return_complex=True)
    power = spec[..., :-1].abs() ** 2  # [B, 201, 2W/160]
    logm = torch.clamp(_filters(n_mels) @ power, min=1e-10).log10()
    top = logm.amax(dim=(1, 2), keepdim=True)
    logm = torch.maximum(logm, top - 8.0)
    return ((logm + 4.0) / 4.0)[..., :2 * n_audio_ctx].contiguous()


def log_mel_window(samples: np.ndarray, n_mels: int, n_audio_ctx: int) -> torch.Tensor:
    """One clip of at most the window -> [n_mels, 2 * n_audio_ctx]: ``model.log_mel`` with its window of padding,
    the frames past the window dropped (what the C++ front end feeds the encoder)."""
    W = window_samples(n_audio_ctx)
    if len(samples) > W:
        raise ValueError(f"clip of {len(samples)} samples exceeds the {W}-sample window")
    return log_mel(samples, n_mels, 2 * n_audio_ctx)[:, :2 * n_audio_ctx].contiguous()


# ---------------------------------------------------------------------------------------------- building

def _synth_job(job):
    text, voice, speed, pitch = job
    x = synthesize(text, voice, speed, pitch)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def plan(texts: Sequence[str], pairs: Sequence[Tuple[str, str]], rng: random.Random) -> List[Tuple[str, str, int, int]]:
    return [(t, voice_name(*rng.choice(pairs)), rng.randint(*SPEED_RANGE), rng.randint(*PITCH_RANGE)) for t in texts]


def synthesize_all(jobs: Sequence[Tuple[str, str, int, int]], workers: int, log=print, label: str = "") -> List[np.ndarray]:
    t0 = time.time()
    out: List[np.ndarray] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        # threads suffice: the work is espeak-ng's process plus numpy FFTs, which release the GIL
        for i, a in enumerate(ex.map(_synth_job, jobs)):
            out.append(a)
            if (i + 1) % 2000 == 0:
                log(f"data: {label} {i + 1}/{len(jobs)} synthesised ({time.time() - t0:.0f}s)", flush=True)
    return out


def pack(clips: Sequence[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(c) for c in clips], dtype=torch.long)
    offs = torch.zeros(len(clips) + 1, dtype=torch.long)
    offs[1:] = torch.cumsum(lens, 0)
    audio = torch.from_numpy(np.concatenate(clips)) if clips else torch.zeros(0, dtype=torch.int16)
    return audio, offs


def clip(split: dict, i: int) -> np.ndarray:
    o = split["offsets"]
    return split["audio"][o[i]:o[i + 1]].numpy().astype(np.float32) / 32768.0


def build(n_shapes: int, n_general: int, n_heldout: int, seed: int, n_audio_ctx: int, workers: int,
          log=print) -> dict:
    """The dataset dict: train / heldout_shapes / heldout_general splits, each {"audio" int16, "offsets",
    "texts", "voices", "speeds", "pitches"}, plus "corpus" and "dropped" counts."""
    if espeak_exe() is None:
        raise DataError("espeak-ng is not installed: apt-get install -y espeak-ng")
    rng = random.Random(seed)
    W = window_samples(n_audio_ctx) - int(MARGIN_S * SAMPLE_RATE)
    corpus, gen_train, gen_held = general_sentences()
    log(f"data: {corpus}: {len(gen_train)} training / {len(gen_held)} held-out general clauses", flush=True)
    shapes_train = shapes_sentences(n_shapes, seed * 1000 + 1, "train")
    rng.shuffle(gen_train)
    general_train = [gen_train[i % len(gen_train)] for i in range(n_general)]
    train_jobs = plan(shapes_train + general_train, voice_pairs(False), rng)
    kinds = ["shapes"] * len(shapes_train) + ["general"] * len(general_train)
    # held out: over-generate a little, since a few may not fit the window
    sh_held = shapes_sentences(n_heldout * 5 // 4, seed * 1000 + 2, "heldout")
    g = list(gen_held)
    random.Random(seed * 1000 + 3).shuffle(g)
    gn_held = g[:n_heldout * 5 // 4]
    held_pairs = voice_pairs(True)
    splits: Dict[str, dict] = {}
    dropped: Dict[str, int] = {}
    for name, jobs, kind in (("train", train_jobs, kinds),
                             ("heldout_shapes", plan(sh_held, held_pairs, rng), None),
                             ("heldout_general", plan(gn_held, held_pairs, rng), None)):
        clips = synthesize_all(jobs, workers, log, name)
        keep = [i for i, c in enumerate(clips) if len(c) <= W]
        dropped[name] = len(clips) - len(keep)
        if name != "train":
            keep = keep[:n_heldout]
            nrng = np.random.default_rng(seed * 1000 + len(name))
            for i in keep:  # seeded noise (and sometimes a leading pause) once, at build time
                x = clips[i].astype(np.float32) / 32768.0
                if nrng.random() < 0.5:
                    lead = int(nrng.integers(0, int(0.4 * SAMPLE_RATE)))
                    if len(x) + lead <= W:
                        x = np.concatenate([np.zeros(lead, np.float32), x])
                x = add_noise(x, float(nrng.uniform(10.0, 40.0)), NOISE_KINDS[int(nrng.integers(3))], nrng)
                clips[i] = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
        audio, offs = pack([clips[i] for i in keep])
        splits[name] = {"audio": audio, "offsets": offs, "texts": [jobs[i][0] for i in keep],
                        "voices": [jobs[i][1] for i in keep], "speeds": [jobs[i][2] for i in keep],
                        "pitches": [jobs[i][3] for i in keep]}
        if kind is not None:
            splits[name]["kinds"] = [kind[i] for i in keep]
        log(f"data: {name}: {len(keep)} utterances, {dropped[name]} longer than the window dropped, "
            f"{len(audio) / SAMPLE_RATE / 3600:.2f} h", flush=True)
    return {"splits": splits, "corpus": corpus, "dropped": dropped}


def recipe(args) -> dict:
    return {"v": 1, "n_shapes": args.n_shapes, "n_general": args.n_general, "n_heldout": args.n_heldout,
            "seed": args.seed, "n_audio_ctx": args.n_audio_ctx, "voices": list(BASE_VOICES),
            "variants": list(VARIANTS), "speed": list(SPEED_RANGE), "pitch": list(PITCH_RANGE)}


def describe(d: dict) -> str:
    return ", ".join(f"{k} {len(v['texts'])}" for k, v in d["splits"].items())


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--n-shapes", type=int, default=11000, help="shapes-world training utterances")
    ap.add_argument("--n-general", type=int, default=5000, help="general-sentence training utterances")
    ap.add_argument("--n-heldout", type=int, default=200, help="held-out utterances per held-out set")
    ap.add_argument("--n-audio-ctx", type=int, default=350, help="window = 2 * n_audio_ctx mel frames")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=3, help="parallel espeak-ng processes")


def load_or_build_data(path: str, args, log=print) -> dict:
    from tools.steps import load_or_build
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return load_or_build(path, recipe(args), lambda: build(args.n_shapes, args.n_general, args.n_heldout, args.seed,
                                                           args.n_audio_ctx, args.workers, log), describe, log)


def stats(d: dict) -> dict:
    out = {}
    for name, s in d["splits"].items():
        lens = (s["offsets"][1:] - s["offsets"][:-1]).float() / SAMPLE_RATE
        rms = [speech_rms(clip(s, i)) for i in range(0, len(s["texts"]), max(1, len(s["texts"]) // 200))]
        out[name] = {"n": len(s["texts"]), "seconds_mean": round(float(lens.mean()), 2),
                     "seconds_p99": round(float(lens.quantile(0.99)), 2), "seconds_max": round(float(lens.max()), 2),
                     "speech_rms_dbfs_median": round(20 * math.log10(max(1e-9, float(np.median(rms)))), 1),
                     "words_mean": round(float(np.mean([len(t.split()) for t in s["texts"]])), 1)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.whisper.data")
    ap.add_argument("--out", default="/tmp/tiny-whisper-work/data.pt")
    add_args(ap)
    args = ap.parse_args(argv)
    t0 = time.time()
    d = load_or_build_data(args.out, args)
    import json
    print(json.dumps({"seconds": round(time.time() - t0, 1), "dropped": d["dropped"], "stats": stats(d)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
