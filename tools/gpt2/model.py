"""GPT-2 exactly as OpenAI / Hugging Face run it (shared/specs/gpt2.md), at any size.

  * ``x = wte[ids] + wpe[pos]``; each block ``x += attn(ln_1(x))``, ``x += mlp(ln_2(x))`` (pre-LN), LN eps 1e-5;
  * attention: ``qkv = x @ c_attn.weight + c_attn.bias`` (Conv1D, weight [in, out] = [C, 3C]), split q | k | v
    (each C wide, heads contiguous inside each), causal ``softmax(q k^T / sqrt(hd)) v``, merge heads,
    ``@ c_proj.weight + c_proj.bias``;
  * mlp: ``gelu_new(x @ c_fc.weight + b) @ c_proj.weight + b`` with the tanh GELU approximation, 4C hidden;
  * ``ln_f`` then ``logits = x @ wte^T`` (tied head, no bias, no ``lm_head.weight`` tensor).

Parameter names equal the ones in Hugging Face's ``gpt2`` ``model.safetensors`` (``wte.weight``, ``wpe.weight``,
``h.N.ln_1.weight`` ... ``ln_f.bias``; no ``transformer.`` prefix). The causal mask is computed on the fly, so the
``h.N.attn.bias`` / ``h.N.attn.masked_bias`` buffers are not part of ``state_dict()``.

Decoding: :meth:`GPT2.forward` takes an optional KV cache (a list of per-layer ``(k, v)`` tensors
[B, n_head, T_past, head_dim]) and returns the extended cache; :func:`generate` does greedy or sampled decoding
with Hugging Face's logits processors (repetition penalty, temperature, top-k, top-p; in that order).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

KVCache = List[Tuple[torch.Tensor, torch.Tensor]]


@dataclasses.dataclass
class GPT2Config:
    vocab_size: int = 4096
    n_positions: int = 128
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int = 4095
    eos_token_id: int = 4095
    dropout: float = 0.0  # training only (embeddings, attention output, mlp output)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            if int(getattr(self, k)) <= 0:
                raise ValueError(f"{k} must be positive")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(d: dict) -> "GPT2Config":
        names = {f.name for f in dataclasses.fields(GPT2Config)}
        return GPT2Config(**{k: v for k, v in d.items() if k in names})


def gpt2_small_config(**over) -> GPT2Config:
    d = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, bos_token_id=50256,
             eos_token_id=50256)
    d.update(over)
    return GPT2Config(**d)


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's tanh approximation of GELU (HF ``gelu_new``)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """HF/OpenAI Conv1D: ``y = x @ weight + bias`` with weight [in, out]."""

    def __init__(self, n_in: int, n_out: int, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out, device=device))
        self.bias = nn.Parameter(torch.zeros(n_out, device=device))
        if self.weight.device.type != "meta":
            nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, cfg: GPT2Config, device=None):
        super().__init__()
        self.n_head, self.hd = cfg.n_head, cfg.head_dim
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd, device)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd, device)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, past: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.reshape(B, T, self.n_head, self.hd).transpose(1, 2) for t in (q, k, v))  # B, H, T, hd
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        S = k.shape[2]  # total keys; query i (0-based in this chunk) sits at absolute position S - T + i
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        if T > 1:
            qpos = torch.arange(S - T, S, device=x.device)[:, None]
            kpos = torch.arange(S, device=x.device)[None, :]
            att = att.masked_fill(kpos > qpos, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.drop(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: GPT2Config, device=None):
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, 4 * cfg.n_embd, device)
        self.c_proj = Conv1D(4 * cfg.n_embd, cfg.n_embd, device)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.c_proj(gelu_new(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config, device=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, device=device)
        self.attn = Attention(cfg, device)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, device=device)
        self.mlp = MLP(cfg, device)

    def forward(self, x, past=None):
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT2(nn.Module):
    """GPT-2 LM with a tied head; ``state_dict()`` names are HF ``GPT2Model``'s (``wte.weight`` ... ``ln_f.bias``)."""

    def __init__(self, cfg: GPT2Config, device=None):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd, device=device)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd, device=device)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg, device) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, device=device)
        if self.wte.weight.device.type != "meta":
            nn.init.normal_(self.wte.weight, std=0.02)
            nn.init.normal_(self.wpe.weight, std=0.01)
            # GPT-2's scaled init of the residual projections
            for n, p in self.named_parameters():
                if n.endswith("c_proj.weight"):
                    nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, ids: torch.Tensor, past: Optional[KVCache] = None, return_hidden: bool = False):
        """ids [B, T] -> (logits [B, T, V], present cache). With ``past`` the ids continue after its positions."""
        B, T = ids.shape
        p0 = 0 if past is None else past[0][0].shape[2]
        if p0 + T > self.cfg.n_positions:
            raise ValueError(f"sequence of {p0 + T} tokens exceeds n_positions {self.cfg.n_positions}")
        pos = torch.arange(p0, p0 + T, device=ids.device)
        x = self.drop(self.wte(ids) + self.wpe(pos)[None])
        present: KVCache = []
        for i, blk in enumerate(self.h):
            x, kv = blk(x, None if past is None else past[i])
            present.append(kv)
        x = self.ln_f(x)
        if return_hidden:
            return x, present
        return x @ self.wte.weight.t(), present

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------------------------- name tables

def param_table(cfg: GPT2Config) -> List[Tuple[str, Tuple[int, ...]]]:
    """(name, shape) of every stored tensor in state_dict order, from a model built on the meta device."""
    m = GPT2(cfg, device="meta")
    return [(n, tuple(t.shape)) for n, t in m.state_dict().items()]


def expected_shapes(cfg: GPT2Config) -> Dict[str, Tuple[int, ...]]:
    """Same table computed by formula (no torch module), used by the exporter's checks."""
    C, V = cfg.n_embd, cfg.vocab_size
    out: Dict[str, Tuple[int, ...]] = {"wte.weight": (V, C), "wpe.weight": (cfg.n_positions, C)}
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        out.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,),
                    p + "attn.c_attn.weight": (C, 3 * C), p + "attn.c_attn.bias": (3 * C,),
                    p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                    p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
                    p + "mlp.c_fc.weight": (C, 4 * C), p + "mlp.c_fc.bias": (4 * C,),
                    p + "mlp.c_proj.weight": (4 * C, C), p + "mlp.c_proj.bias": (C,)})
    out.update({"ln_f.weight": (C,), "ln_f.bias": (C,)})
    return out


def is_mask_buffer(name: str) -> bool:
    """``h.N.attn.bias`` / ``h.N.attn.masked_bias`` (HF causal-mask buffers; a loader skips them)."""
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "h" and parts[1].isdigit() and parts[2] == "attn" \
        and parts[3] in ("bias", "masked_bias")


# ---------------------------------------------------------------------------------------------- decoding

def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """HF RepetitionPenaltyLogitsProcessor: for every token id in ``seen`` (prompt + generated), a positive logit
    is divided by ``penalty`` and a negative one multiplied by it. logits [B, V], seen [B, L] (long)."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    sc = torch.gather(logits, 1, seen)
    sc = torch.where(sc < 0, sc * penalty, sc / penalty)
    return logits.scatter(1, seen, sc)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """HF TopKLogitsWarper: keep logits >= the k-th largest (ties at the boundary are kept); k <= 0 disables."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """HF TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is <= 1 - p (so the smallest set
    whose mass exceeds p survives, at least one token). p >= 1 disables."""
    if p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cum <= (1.0 - p)
    remove[..., -1:] = False
    mask = remove.scatter(-1, sorted_idx, remove)
    return logits.masked_fill(mask, float("-inf"))


def process_logits(logits: torch.Tensor, seen: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                   top_p: float = 1.0, repetition_penalty: float = 1.0) -> torch.Tensor:
    """The sampling distribution's logits, HF order: repetition penalty, temperature, top-k, top-p."""
    x = apply_repetition_penalty(logits.float(), seen, repetition_penalty)
    if temperature > 0 and temperature != 1.0:
        x = x / temperature
    x = top_k_filter(x, top_k)
    return top_p_filter(x, top_p)


@torch.no_grad()
def generate(model: GPT2, prompt: Sequence[int], max_new_tokens: int = 32, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0, seed: Optional[int] = 0,
             greedy: bool = False, eos_token_id: Optional[int] = None, stop_at_eos: bool = True,
             num_samples: int = 1, return_margins: bool = False):
    """KV-cached decoding. Greedy when ``greedy`` or ``temperature == 0`` (argmax after the repetition penalty),
    otherwise multinomial sampling from :func:`process_logits` with a ``torch.Generator`` seeded by ``seed``.
    Returns a list of ``num_samples`` new-token lists (each stops after eos when ``stop_at_eos``); with
    ``return_margins`` also per-step top1 - top2 of the processed logits of the first sample."""
    if len(prompt) == 0:
        raise ValueError("empty prompt")
    dev = model.wte.weight.device
    eos = model.cfg.eos_token_id if eos_token_id is None else eos_token_id
    greedy = greedy or temperature == 0
    gen = torch.Generator(device="cpu")
    if seed is not None:
        gen.manual_seed(int(seed))
    ids = torch.tensor([list(prompt)] * num_samples, dtype=torch.long, device=dev)
    max_new = min(max_new_tokens, model.cfg.n_positions - len(prompt))
    logits, past = model(ids)
    logits = logits[:, -1]
    out = [[] for _ in range(num_samples)]
    done = [False] * num_samples
    margins = []
    seen = ids
    for step in range(max_new):
        if greedy:
            x = apply_repetition_penalty(logits.float(), seen, repetition_penalty)
            nxt = x.argmax(dim=-1)
        else:
            x = process_logits(logits, seen, temperature, top_k, top_p, repetition_penalty)
            probs = torch.softmax(x, dim=-1).cpu()
            nxt = torch.multinomial(probs, 1, generator=gen)[:, 0].to(dev)
        if return_margins:
            t2 = torch.topk(x[0], 2).values
            margins.append(float(t2[0] - t2[1]))
        for b in range(num_samples):
            if not done[b]:
                out[b].append(int(nxt[b]))
                if stop_at_eos and int(nxt[b]) == eos:
                    done[b] = True
        if all(done) or step == max_new - 1:
            break
        seen = torch.cat([seen, nxt[:, None]], dim=1)
        logits, past = model(nxt[:, None], past)
        logits = logits[:, -1]
    return (out, margins) if return_margins else out


@torch.no_grad()
def forward_cached_stepwise(model: GPT2, ids: Sequence[int], chunk: int = 1) -> torch.Tensor:
    """Logits [T, V] computed with the KV cache, ``chunk`` tokens per call (for testing against teacher forcing)."""
    dev = model.wte.weight.device
    t = torch.tensor([list(ids)], dtype=torch.long, device=dev)
    past, outs = None, []
    for s in range(0, t.shape[1], chunk):
        lg, past = model(t[:, s:s + chunk], past)
        outs.append(lg[0])
    return torch.cat(outs, 0)
