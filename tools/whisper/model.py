"""Whisper as OpenAI publishes it (shared/specs/whisper.md): a PyTorch reference for Tessera's C++ plugin.

Parameter names equal OpenAI's checkpoint names, so ``Whisper(dims).load_state_dict(ckpt["model_state_dict"])``
works with ``strict=True``. Everything runs in float32 on the CPU.

Front end (:func:`log_mel`): append 480000 zero samples (30 s, as OpenAI's ``transcribe`` does), STFT (n_fft 400,
hop 160, periodic Hann, centred with reflect padding), ``|X|^2``, drop the last frame, Slaney mel filters
(:func:`mel_filters`), ``log10(max(x, 1e-10))``, ``max(x, x.max() - 8)`` over the whole array, ``(x + 4) / 4``.
The result has ``(n + 480000) // 160`` frames; windows of 3000 frames start at frame 0, 3000, 6000, ... while the
start is below ``n // 160`` (:func:`mel_windows`).

Decoding rules (the C++ plugin implements exactly the same):

* initial tokens: multilingual models (n_vocab >= 51865): ``[sot, <|lang|>, transcribe, notimestamps]``
  (``<|en|>`` = sot + 1); English-only models (n_vocab == 51864): ``[sot, notimestamps]``.
* suppression at every step: every id > eot gets -inf (all specials but eot, timestamps too); at the first
  generated step also eot and the token whose bytes are ``b" "`` (when the rank table has one).
* greedy: argmax (first index of the maximum) of the suppressed f32 logits. Stops at eot (not part of the output),
  after ``max_tokens`` generated tokens, or when the sequence (initial + generated tokens) fills n_text_ctx.
* beam search (beam size B): one live hypothesis at first (the initial tokens, score 0.0). Each step, for each live
  beam in order: logprobs = log_softmax of its suppressed logits in float64 (from the f32 logits); its B + 1 best
  tokens (ties: lower id first); candidate score = beam score + logprob. All candidates are sorted by score,
  descending and stable (ties keep beam order, then rank order), then walked: one ending in eot goes to
  ``finished`` (its tokens without eot, its score), the others become the next live beams until there are B, where
  the walk stops. Decoding stops when ``len(finished) >= B``, after ``max_tokens`` steps, or when the sequence
  fills n_text_ctx. If nothing finished, the live beams count as finished. The result is the finished hypothesis
  with the highest ``score / max(1, len(tokens))`` (generated tokens, eot excluded); ties: the first found.
* text: the bytes of the generated ids below eot, concatenated, decoded as UTF-8 (errors="replace"), stripped.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
CHUNK_SAMPLES = 480000  # 30 s
CHUNK_FRAMES = CHUNK_SAMPLES // HOP  # 3000
N_FREQS = N_FFT // 2 + 1  # 201


# ---------------------------------------------------------------------------------------------- dims

@dataclasses.dataclass
class WhisperDims:
    """OpenAI's ``ModelDimensions`` (same names, same order)."""
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    def to_dict(self) -> Dict[str, int]:
        return dataclasses.asdict(self)


def expected_shapes(d: WhisperDims) -> Dict[str, Tuple[int, ...]]:
    """Every checkpoint tensor's name and shape, by formula, in OpenAI's ``state_dict()`` order."""
    out: Dict[str, Tuple[int, ...]] = {}

    def attn(p: str, c: int):
        out.update({p + "query.weight": (c, c), p + "query.bias": (c,), p + "key.weight": (c, c),
                    p + "value.weight": (c, c), p + "value.bias": (c,), p + "out.weight": (c, c), p + "out.bias": (c,)})

    def block(p: str, c: int, cross: bool):
        attn(p + "attn.", c)
        out.update({p + "attn_ln.weight": (c,), p + "attn_ln.bias": (c,)})
        if cross:
            attn(p + "cross_attn.", c)
            out.update({p + "cross_attn_ln.weight": (c,), p + "cross_attn_ln.bias": (c,)})
        out.update({p + "mlp.0.weight": (4 * c, c), p + "mlp.0.bias": (4 * c,), p + "mlp.2.weight": (c, 4 * c),
                    p + "mlp.2.bias": (c,), p + "mlp_ln.weight": (c,), p + "mlp_ln.bias": (c,)})

    ca, ct = d.n_audio_state, d.n_text_state
    out.update({"encoder.positional_embedding": (d.n_audio_ctx, ca), "encoder.conv1.weight": (ca, d.n_mels, 3),
                "encoder.conv1.bias": (ca,), "encoder.conv2.weight": (ca, ca, 3), "encoder.conv2.bias": (ca,)})
    for i in range(d.n_audio_layer):
        block(f"encoder.blocks.{i}.", ca, False)
    out.update({"encoder.ln_post.weight": (ca,), "encoder.ln_post.bias": (ca,),
                "decoder.positional_embedding": (d.n_text_ctx, ct), "decoder.token_embedding.weight": (d.n_vocab, ct)})
    for i in range(d.n_text_layer):
        block(f"decoder.blocks.{i}.", ct, True)
    out.update({"decoder.ln.weight": (ct,), "decoder.ln.bias": (ct,)})
    return out


# ---------------------------------------------------------------------------------------------- modules

def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """[length, channels]: ``[sin(t * exp(-inc * j)) | cos(...)]`` with ``inc = ln(max_timescale) / (channels/2 - 1)``
    (computed in float64, returned as float32)."""
    if channels % 2 or channels < 4:
        raise ValueError(f"sinusoids need an even channel count >= 4, not {channels}")
    half = channels // 2
    inc = math.log(max_timescale) / (half - 1)
    inv = torch.exp(-inc * torch.arange(half, dtype=torch.float64))
    t = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1).float()


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(1, 2)  # B, H, T, hd


class MultiHeadAttention(nn.Module):
    """query / value / out with bias, key without; scores ``(q hd^-1/4)(k hd^-1/4)^T``."""

    def __init__(self, n_state: int, n_head: int, device=None):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state, device=device)
        self.key = nn.Linear(n_state, n_state, bias=False, device=device)
        self.value = nn.Linear(n_state, n_state, device=device)
        self.out = nn.Linear(n_state, n_state, device=device)

    def project_kv(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return _heads(self.key(x), self.n_head), _heads(self.value(x), self.n_head)

    def forward(self, x: torch.Tensor, kv: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                past: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, causal: bool = False):
        """x [B, T, C] -> (y [B, T, C], (k, v)). ``kv``: fixed keys/values [B or 1, H, S, hd] (cross-attention;
        a batch of 1 is shared by every row); otherwise self-attention over ``past`` + x. ``causal``: query i of x
        sits at absolute position S - T + i and sees keys up to it."""
        B, T, C = x.shape
        q = _heads(self.query(x), self.n_head)
        if kv is None:
            k, v = self.project_kv(x)
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        else:
            k, v = kv
        s = (C // self.n_head) ** -0.25
        w = (q * s) @ (k * s).transpose(-1, -2)  # B, H, T, S
        S = k.shape[2]
        if causal and T > 1:
            qpos = torch.arange(S - T, S)[:, None]
            w = w.masked_fill(torch.arange(S)[None, :] > qpos, float("-inf"))
        y = (torch.softmax(w, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        return self.out(y), (k, v)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN: ``x += attn(attn_ln x)``; [``x += cross_attn(cross_attn_ln x, audio)``]; ``x += mlp(mlp_ln x)``."""

    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False, device=None):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head, device)
        self.attn_ln = nn.LayerNorm(n_state, eps=1e-5, device=device)
        self.cross_attn = MultiHeadAttention(n_state, n_head, device) if cross_attention else None
        self.cross_attn_ln = nn.LayerNorm(n_state, eps=1e-5, device=device) if cross_attention else None
        # exact (erf) GELU; mlp.1 has no parameters, so the names are mlp.0.* and mlp.2.*
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state, device=device), nn.GELU(),
                                 nn.Linear(4 * n_state, n_state, device=device))
        self.mlp_ln = nn.LayerNorm(n_state, eps=1e-5, device=device)

    def forward(self, x, cross_kv=None, past=None, causal: bool = False):
        a, present = self.attn(self.attn_ln(x), past=past, causal=causal)
        x = x + a
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.cross_attn_ln(x), kv=cross_kv)[0]
        return x + self.mlp(self.mlp_ln(x)), present


class AudioEncoder(nn.Module):
    def __init__(self, d: WhisperDims, device=None):
        super().__init__()
        C = d.n_audio_state
        self.conv1 = nn.Conv1d(d.n_mels, C, 3, padding=1, device=device)
        self.conv2 = nn.Conv1d(C, C, 3, stride=2, padding=1, device=device)
        pos = torch.empty(d.n_audio_ctx, C, device="meta") if device == "meta" else sinusoids(d.n_audio_ctx, C)
        self.register_buffer("positional_embedding", pos)  # persistent: it is in the checkpoints
        self.blocks = nn.ModuleList([ResidualAttentionBlock(C, d.n_audio_head, device=device)
                                     for _ in range(d.n_audio_layer)])
        self.ln_post = nn.LayerNorm(C, eps=1e-5, device=device)
        # The conv stem's activation: a plain attribute (no parameters, so the state dict is unchanged) that a
        # trainer may swap for one with the same values (tools/whisper/train.py's SafeGELU).
        self.activation = F.gelu

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, 2 * n_audio_ctx] -> audio features [B, n_audio_ctx, C]."""
        x = self.activation(self.conv1(mel))
        x = self.activation(self.conv2(x)).transpose(1, 2)
        if x.shape[1:] != self.positional_embedding.shape:
            raise ValueError(f"encoder: mel {list(mel.shape)} gives {list(x.shape[1:])}, the positional embedding "
                             f"is {list(self.positional_embedding.shape)}")
        x = x + self.positional_embedding
        for blk in self.blocks:
            x = blk(x)[0]
        return self.ln_post(x)


class KVCache:
    """The decoder's cache: per layer self-attention (k, v) [B, H, T_past, hd] and cross-attention (k, v)
    [1 or B, H, n_audio_ctx, hd] (computed on first use from the audio features and kept)."""

    def __init__(self):
        self.self_kv: List[Tuple[torch.Tensor, torch.Tensor]] = []
        self.cross_kv: List[Tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def offset(self) -> int:
        return self.self_kv[0][0].shape[2] if self.self_kv else 0

    def reorder(self, rows: Sequence[int]) -> None:
        """Keep self-attention rows ``rows`` (beam search: each new beam continues the beam it came from)."""
        idx = torch.tensor(list(rows), dtype=torch.long)
        self.self_kv = [(k[idx], v[idx]) for k, v in self.self_kv]


class TextDecoder(nn.Module):
    def __init__(self, d: WhisperDims, device=None):
        super().__init__()
        C = d.n_text_state
        self.token_embedding = nn.Embedding(d.n_vocab, C, device=device)
        # upstream leaves this uninitialised (torch.empty); we never do
        self.positional_embedding = nn.Parameter(torch.empty(d.n_text_ctx, C, device=device))
        if device != "meta":
            nn.init.normal_(self.positional_embedding, std=0.01)
        self.blocks = nn.ModuleList([ResidualAttentionBlock(C, d.n_text_head, cross_attention=True, device=device)
                                     for _ in range(d.n_text_layer)])
        self.ln = nn.LayerNorm(C, eps=1e-5, device=device)

    def forward(self, tokens: torch.Tensor, audio_features: torch.Tensor, cache: Optional[KVCache] = None):
        """tokens [B, T] (continuing after ``cache.offset`` positions), audio features [B or 1, S, C] ->
        logits [B, T, n_vocab] (f32, tied to the token embedding). ``cache`` is extended in place."""
        B, T = tokens.shape
        off = cache.offset if cache is not None else 0
        if off + T > self.positional_embedding.shape[0]:
            raise ValueError(f"decoder: {off + T} positions exceed n_text_ctx {self.positional_embedding.shape[0]}")
        x = self.token_embedding(tokens) + self.positional_embedding[off:off + T]
        if cache is not None and not cache.cross_kv:
            cache.cross_kv = [blk.cross_attn.project_kv(audio_features) for blk in self.blocks]
        present = []
        for i, blk in enumerate(self.blocks):
            ckv = cache.cross_kv[i] if cache is not None else blk.cross_attn.project_kv(audio_features)
            past = cache.self_kv[i] if cache is not None and cache.self_kv else None
            x, kv = blk(x, ckv, past, causal=True)
            present.append(kv)
        if cache is not None:
            cache.self_kv = present
        return self.ln(x) @ self.token_embedding.weight.t()


class Whisper(nn.Module):
    def __init__(self, dims: WhisperDims, device=None):
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(dims, device)
        self.decoder = TextDecoder(dims, device)

    @property
    def is_multilingual(self) -> bool:
        return self.dims.n_vocab >= 51865

    def forward(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: mel [B, n_mels, 3000], tokens [B, T] -> logits [B, T, n_vocab]."""
        return self.decoder(tokens, self.encoder(mel))


def param_table(dims: WhisperDims) -> List[Tuple[str, Tuple[int, ...]]]:
    """(name, shape) of every state_dict entry of a model built on the meta device, in order."""
    return [(n, tuple(t.shape)) for n, t in Whisper(dims, device="meta").state_dict().items()]


# ---------------------------------------------------------------------------------------------- audio

def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney: linear below 1 kHz (200/3 Hz per mel), logarithmic above (ln(6.4)/27 per mel)."""
    f = np.asarray(f, np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-300) / 1000.0) / logstep, f * 3.0 / 200.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * 200.0 / 3.0)


def mel_filters(n_mels: int) -> np.ndarray:
    """librosa ``filters.mel(sr=16000, n_fft=400, n_mels, fmin=0, fmax=8000, htk=False, norm="slaney")``:
    float32 [n_mels, 201], computed in float64. Like librosa, the triangle weights are rounded to float32 before
    the slaney normalisation ``2 / (f[i+2] - f[i])`` is applied (in float64, rounded again): that makes the result
    bit-identical to OpenAI's ``mel_filters.npz`` (one rounding instead would differ by 1 ulp in ~100 entries)."""
    fft_f = np.linspace(0.0, SAMPLE_RATE / 2, N_FREQS)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    w = np.zeros((n_mels, N_FREQS), np.float32)
    for i in range(n_mels):
        rising = (fft_f - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        falling = (mel_f[i + 2] - fft_f) / (mel_f[i + 2] - mel_f[i + 1])
        w[i] = np.maximum(0.0, np.minimum(rising, falling))
    # slaney normalisation: each triangle has unit area over Hz
    norm = 2.0 / (mel_f[2:] - mel_f[:-2])
    return (w.astype(np.float64) * norm[:, None]).astype(np.float32)


def log_mel(samples: np.ndarray, n_mels: int, window_frames: int = CHUNK_FRAMES) -> torch.Tensor:
    """16 kHz mono float samples -> log-mel [n_mels, (n + window_frames * 160) // 160] (float32), as in the module
    doc: one window of zeros is appended (30 s for OpenAI's models; 2 * n_audio_ctx frames in general)."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    x = F.pad(x, (0, window_frames * HOP))
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="reflect",
                      return_complex=True)
    power = spec[:, :-1].abs() ** 2  # [201, frames]; the last frame is dropped
    mel = torch.from_numpy(mel_filters(n_mels)) @ power
    logm = torch.clamp(mel, min=1e-10).log10()
    logm = torch.maximum(logm, logm.max() - 8.0)
    return (logm + 4.0) / 4.0


def mel_windows(mel: torch.Tensor, n_samples: int, window_frames: int = CHUNK_FRAMES) -> List[torch.Tensor]:
    """The windows [n_mels, W] (W = 3000 for OpenAI's models) at frames 0, W, 2W, ... while the start is
    < n_samples // 160."""
    W = window_frames
    return [mel[:, s:s + W] for s in range(0, n_samples // HOP, W)]


# ---------------------------------------------------------------------------------------------- decoding

def initial_tokens(tokenizer, language: str = "en") -> List[int]:
    """[sot, <|language|>, transcribe, notimestamps] (multilingual) or [sot, notimestamps] (English-only)."""
    if tokenizer.is_multilingual:
        return [tokenizer.sot, tokenizer.language_token(language), tokenizer.special("transcribe"),
                tokenizer.special("notimestamps")]
    return [tokenizer.sot, tokenizer.special("notimestamps")]


def suppress(logits: torch.Tensor, tokenizer, first: bool) -> np.ndarray:
    """float32 numpy copy of one row of logits with the suppressed ids at -inf."""
    x = logits.detach().float().cpu().numpy().copy()
    x[tokenizer.eot + 1:] = -np.inf
    if first:
        x[tokenizer.eot] = -np.inf
        if tokenizer.space_token is not None:
            x[tokenizer.space_token] = -np.inf
    return x


def _check_room(model: Whisper, initial: Sequence[int], max_tokens: int) -> bool:
    if len(initial) > model.dims.n_text_ctx:
        raise ValueError(f"{len(initial)} initial tokens exceed n_text_ctx {model.dims.n_text_ctx}")
    return max_tokens >= 1 and len(initial) < model.dims.n_text_ctx


@torch.no_grad()
def greedy_decode(model: Whisper, audio_features: torch.Tensor, tokenizer, initial: Sequence[int],
                  max_tokens: int = 224) -> Tuple[List[int], List[float]]:
    """-> (generated ids, eot excluded; top1 - top2 of the suppressed logits at every step, the step that chose
    eot included)."""
    out: List[int] = []
    margins: List[float] = []
    if not _check_room(model, initial, max_tokens):
        return out, margins
    cache = KVCache()
    logits = model.decoder(torch.tensor([list(initial)]), audio_features, cache)[0, -1]
    while True:
        x = suppress(logits, tokenizer, first=not out)
        nxt = int(np.argmax(x))  # first index of the maximum
        top2 = np.partition(x, -2)[-2:]
        margins.append(float(top2[1] - top2[0]))
        if nxt == tokenizer.eot:
            break
        out.append(nxt)
        if len(out) >= max_tokens or len(initial) + len(out) >= model.dims.n_text_ctx:
            break
        logits = model.decoder(torch.tensor([[nxt]]), audio_features, cache)[0, -1]
    return out, margins


@torch.no_grad()
def beam_decode(model: Whisper, audio_features: torch.Tensor, tokenizer, initial: Sequence[int], beam_size: int,
                max_tokens: int = 224, info: Optional[dict] = None) -> Tuple[List[int], float]:
    """-> (ids of the best hypothesis, eot excluded; its summed log-probability). Rules in the module doc.
    ``info`` (if given) receives ``steps``, ``finished`` (how many hypotheses ended in eot) and ``from_finished``
    (whether the result is one of them rather than a live beam)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, not {beam_size}")
    if not _check_room(model, initial, max_tokens):
        if info is not None:
            info.update(steps=0, finished=0, from_finished=False)
        return [], 0.0
    B, eot = beam_size, tokenizer.eot
    cache = KVCache()
    logits = model.decoder(torch.tensor([list(initial)]), audio_features, cache)[:, -1]  # [live, V]
    beams: List[Tuple[List[int], float]] = [([], 0.0)]
    finished: List[Tuple[List[int], float]] = []
    step = 0
    while True:
        cands = []  # (score, beam, token) in beam order, then rank order
        for b, (_, score) in enumerate(beams):
            x = suppress(logits[b], tokenizer, first=step == 0)
            lp = torch.log_softmax(torch.from_numpy(x).double(), dim=-1).numpy()
            for t in np.argsort(-lp, kind="stable")[:B + 1]:  # stable: ties give the lower id first
                cands.append((score + float(lp[t]), b, int(t)))
        cands.sort(key=lambda c: -c[0])  # list.sort is stable
        nxt_beams, rows, toks = [], [], []
        for score, b, t in cands:
            if t == eot:
                finished.append((beams[b][0], score))
                continue
            nxt_beams.append((beams[b][0] + [t], score))
            rows.append(b)
            toks.append(t)
            if len(nxt_beams) == B:
                break
        beams = nxt_beams
        step += 1
        if len(finished) >= B or step >= max_tokens or len(initial) + step >= model.dims.n_text_ctx:
            break
        cache.reorder(rows)
        logits = model.decoder(torch.tensor([[t] for t in toks]), audio_features, cache)[:, -1]
    best, best_norm = None, -math.inf
    for toks_, score in finished or beams:
        norm = score / max(1, len(toks_))
        if best is None or norm > best_norm:
            best, best_norm = (toks_, score), norm
    if info is not None:
        info.update(steps=step, finished=len(finished), from_finished=bool(finished))
    return list(best[0]), float(best[1])


def text_of(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(ids).strip()


@torch.no_grad()
def transcribe(model: Whisper, mel_window: torch.Tensor, tokenizer, language: str = "en", beam_size: int = 0,
               max_tokens: int = 224) -> Tuple[List[int], str, List[float]]:
    """One 3000-frame window [n_mels, 3000] -> (ids, text, greedy per-step margins; empty for beam search).
    ``beam_size`` 0 is greedy."""
    feats = model.encoder(mel_window[None])
    init = initial_tokens(tokenizer, language)
    if beam_size > 0:
        ids, _ = beam_decode(model, feats, tokenizer, init, beam_size, max_tokens)
        margins: List[float] = []
    else:
        ids, margins = greedy_decode(model, feats, tokenizer, init, max_tokens)
    return ids, text_of(tokenizer, ids), margins
