"""DALL·E Mini's BART encoder/decoder as min-dalle runs it (spec §1.2-1.6), at any size.

Module and parameter names equal min-dalle's (``DalleBartEncoder`` / ``DalleBartDecoder``), so ``state_dict()``
of :class:`DalleBartEncoder` / :class:`DalleBartDecoder` at the real Mini sizes has exactly the names and shapes
of ``shared/specs/keys/min_dalle_mini_{encoder,decoder}.txt``, in the same order.

  * LayerNorm eps 1e-5 (``cfg.layer_norm_eps``), every Linear without bias (``lm_head`` too), exact-erf GELU;
  * GLU FFN: ``z = ln0(x); z = ln1(gelu(fc0 z) * fc1 z); out = fc2 z`` (ln1 over the GLU hidden width);
  * attention: q/k/v/out projections, ``q /= sqrt(head_dim)``, additive bias ``(1 - mask) * -1e12``;
  * encoder: ``x = ln_emb(embed_tokens[t] + embed_positions[i])``, NormFormer layers
    ``x += ln_sa(attn(ln_pre(x)))``, ``x += glu(x)``, then ``final_ln``; keys masked where token == pad (1);
  * decoder: same plus cross-attention (``x += ln_ea(xattn(ln_pre_ea(x), enc))``), causal self-attention, then
    ``final_ln`` and ``lm_head`` -> ``decoder_vocab_rows`` logits.

The LayerNorm weights that min-dalle's checkpoints lack (``ABSENT_LN_WEIGHTS``; they stay 1.0 there) exist here.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

MASK_BIAS = -1e12

# LN weights the real checkpoints do not store (flax "normformer" with force_ln_scale=False), spec §1.9.
ABSENT_LN_SUFFIXES = ("pre_self_attn_layer_norm.weight", "pre_encoder_attn_layer_norm.weight",
                      "glu.ln0.weight", "glu.ln1.weight")
ABSENT_LN_TOP = ("final_ln.weight",)


def is_absent_ln_weight(name: str) -> bool:
    return name in ABSENT_LN_TOP or (name.startswith("layers.") and name.endswith(ABSENT_LN_SUFFIXES))


@dataclasses.dataclass
class DalleConfig:
    name: str = "tiny-dalle"
    text_vocab_size: int = 384          # encoder embed_tokens rows
    text_token_count: int = 40          # encoder positions = padded text length
    embed_dim: int = 256
    attention_heads: int = 4            # head_dim = embed_dim / attention_heads
    glu_hidden: int = 680
    encoder_layers: int = 2
    decoder_layers: int = 3
    image_vocab_size: int = 512         # VQ codebook size; sampling uses logits[:image_vocab_size]
    decoder_vocab_rows: int = 513       # decoder embed_tokens / lm_head rows
    bos_id: int = 512                   # decoder start token (tiny: the extra row; mini/mega: 16383)
    pad_id: int = 1
    image_token_grid: int = 8
    image_size: int = 32
    layer_norm_eps: float = 1e-5
    dropout: float = 0.0                # training only (attention output / GLU output / embeddings)
    # default sampling settings (spec §1.6)
    supercondition_factor: float = 16.0
    top_k: int = 256
    temperature: float = 1.0

    def __post_init__(self):
        if self.embed_dim % self.attention_heads:
            raise ValueError("embed_dim must be a multiple of attention_heads")
        if self.decoder_vocab_rows <= self.bos_id or self.decoder_vocab_rows < self.image_vocab_size:
            raise ValueError("decoder_vocab_rows must hold the image vocabulary and the BOS row")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.attention_heads

    @property
    def image_token_count(self) -> int:
        return self.image_token_grid * self.image_token_grid

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d) -> "DalleConfig":
        d = json.loads(d) if isinstance(d, str) else dict(d)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def mini_config(**over) -> DalleConfig:
    """The real DALL·E Mini numbers (spec §1.1)."""
    d = dict(name="dalle-mini", text_vocab_size=50264, text_token_count=64, embed_dim=1024, attention_heads=16,
             glu_hidden=2730, encoder_layers=12, decoder_layers=12, image_vocab_size=16384,
             decoder_vocab_rows=16385, bos_id=16383, image_token_grid=16, image_size=256)
    d.update(over)
    return DalleConfig(**d)


# ---------------------------------------------------------------------------------------------- modules

class GLU(nn.Module):
    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        e, g = cfg.embed_dim, cfg.glu_hidden
        self.gelu = nn.GELU()
        self.ln0 = nn.LayerNorm(e, eps=cfg.layer_norm_eps, device=device)
        self.ln1 = nn.LayerNorm(g, eps=cfg.layer_norm_eps, device=device)
        self.fc0 = nn.Linear(e, g, bias=False, device=device)
        self.fc1 = nn.Linear(e, g, bias=False, device=device)
        self.fc2 = nn.Linear(g, e, bias=False, device=device)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x):
        z = self.ln0(x)
        w = self.gelu(self.fc0(z))
        v = self.fc1(z)
        z = self.ln1(w * v)
        return self.drop(self.fc2(z))


class Attention(nn.Module):
    """min-dalle's AttentionBase: k, v, q, out projections (this order), no biases."""

    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        e = cfg.embed_dim
        self.heads = cfg.attention_heads
        self.k_proj = nn.Linear(e, e, bias=False, device=device)
        self.v_proj = nn.Linear(e, e, bias=False, device=device)
        self.q_proj = nn.Linear(e, e, bias=False, device=device)
        self.out_proj = nn.Linear(e, e, bias=False, device=device)

    def attend(self, q, k, v, mask):
        """q [B,Tq,E], k/v [B,Tk,E] (projected), mask bool broadcastable to [B,1,Tq,Tk] (True = attend)."""
        b, tq, e = q.shape
        h = self.heads
        hd = e // h
        q = q.reshape(b, tq, h, hd) / math.sqrt(hd)
        k = k.reshape(b, k.shape[1], h, hd)
        v = v.reshape(b, v.shape[1], h, hd)
        bias = (1.0 - mask.to(q.dtype)) * MASK_BIAS
        w = torch.einsum("bqhc,bkhc->bhqk", q, k) + bias
        w = torch.softmax(w, dim=-1)
        out = torch.einsum("bhqk,bkhc->bqhc", w, v).reshape(b, tq, e)
        return self.out_proj(out)

    def forward(self, x, kv, mask):
        return self.attend(self.q_proj(x), self.k_proj(kv), self.v_proj(kv), mask)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        e, eps = cfg.embed_dim, cfg.layer_norm_eps
        self.pre_self_attn_layer_norm = nn.LayerNorm(e, eps=eps, device=device)
        self.self_attn = Attention(cfg, device)
        self.self_attn_layer_norm = nn.LayerNorm(e, eps=eps, device=device)
        self.glu = GLU(cfg, device)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x, mask):
        h = self.pre_self_attn_layer_norm(x)
        h = self.self_attn(h, h, mask)
        x = x + self.drop(self.self_attn_layer_norm(h))
        return x + self.glu(x)


class DalleBartEncoder(nn.Module):
    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        self.cfg = cfg
        e = cfg.embed_dim
        self.embed_tokens = nn.Embedding(cfg.text_vocab_size, e, device=device)
        self.embed_positions = nn.Embedding(cfg.text_token_count, e, device=device)
        self.layers = nn.ModuleList([EncoderLayer(cfg, device) for _ in range(cfg.encoder_layers)])
        self.layernorm_embedding = nn.LayerNorm(e, eps=cfg.layer_norm_eps, device=device)
        self.final_ln = nn.LayerNorm(e, eps=cfg.layer_norm_eps, device=device)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """text_tokens [B, T] (T <= text_token_count) -> encoder_state [B, T, E]."""
        b, t = text_tokens.shape
        pos = torch.arange(t, device=text_tokens.device)
        x = self.embed_tokens(text_tokens) + self.embed_positions(pos)[None]
        x = self.drop(self.layernorm_embedding(x))
        mask = (text_tokens != self.cfg.pad_id)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_ln(x)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        e, eps = cfg.embed_dim, cfg.layer_norm_eps
        self.pre_self_attn_layer_norm = nn.LayerNorm(e, eps=eps, device=device)
        self.self_attn = Attention(cfg, device)
        self.self_attn_layer_norm = nn.LayerNorm(e, eps=eps, device=device)
        self.pre_encoder_attn_layer_norm = nn.LayerNorm(e, eps=eps, device=device)
        self.encoder_attn = Attention(cfg, device)
        self.encoder_attn_layer_norm = nn.LayerNorm(e, eps=eps, device=device)
        self.glu = GLU(cfg, device)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x, enc, text_mask, self_mask, cache=None, index: Optional[int] = None, cross_kv=None):
        """x [B,T,E]. Teacher forcing: cache None, self_mask [1,1,T,T] causal. Incremental (T == 1): cache is
        this layer's [2B, S, E] (keys rows [0,B), values rows [B,2B)), written at slot ``index``. ``cross_kv``:
        this layer's precomputed (k_proj(enc), v_proj(enc)) (min-dalle recomputes them each step; same values)."""
        h = self.pre_self_attn_layer_norm(x)
        sa = self.self_attn
        q, k, v = sa.q_proj(h), sa.k_proj(h), sa.v_proj(h)
        if cache is not None:
            b = x.shape[0]
            cache[:b, index] = k[:, 0]
            cache[b:, index] = v[:, 0]
            k, v = cache[:b], cache[b:]
        h = sa.attend(q, k, v, self_mask)
        x = x + self.drop(self.self_attn_layer_norm(h))
        h = self.pre_encoder_attn_layer_norm(x)
        ea = self.encoder_attn
        if cross_kv is None:
            h = ea(h, enc, text_mask)
        else:
            h = ea.attend(ea.q_proj(h), cross_kv[0], cross_kv[1], text_mask)
        x = x + self.drop(self.encoder_attn_layer_norm(h))
        return x + self.glu(x)


class DalleBartDecoder(nn.Module):
    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        self.cfg = cfg
        e = cfg.embed_dim
        self.embed_tokens = nn.Embedding(cfg.decoder_vocab_rows, e, device=device)
        self.embed_positions = nn.Embedding(cfg.image_token_count, e, device=device)
        self.layers = nn.ModuleList([DecoderLayer(cfg, device) for _ in range(cfg.decoder_layers)])
        self.layernorm_embedding = nn.LayerNorm(e, eps=cfg.layer_norm_eps, device=device)
        self.final_ln = nn.LayerNorm(e, eps=cfg.layer_norm_eps, device=device)
        self.lm_head = nn.Linear(e, cfg.decoder_vocab_rows, bias=False, device=device)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def _embed(self, tokens, positions):
        x = self.embed_tokens(tokens) + self.embed_positions(positions)
        return self.drop(self.layernorm_embedding(x))

    def forward(self, prev_tokens: torch.Tensor, encoder_state: torch.Tensor, text_tokens: torch.Tensor):
        """Teacher forcing: prev_tokens [B, T] at positions 0..T-1 (BOS first) -> logits [B, T, rows]."""
        b, t = prev_tokens.shape
        pos = torch.arange(t, device=prev_tokens.device)
        x = self._embed(prev_tokens, pos[None])
        text_mask = (text_tokens != self.cfg.pad_id)[:, None, None, :]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()[None, None]
        for layer in self.layers:
            x = layer(x, encoder_state, text_mask, causal)
        return self.lm_head(self.final_ln(x))

    def new_cache(self, batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """min-dalle's attention_state: [layers, 2*batch, image_token_count, E] zeros."""
        c = self.cfg
        return torch.zeros(c.decoder_layers, 2 * batch, c.image_token_count, c.embed_dim, device=device,
                           dtype=dtype)

    def cross_kv(self, encoder_state: torch.Tensor):
        """Per layer (k_proj(enc), v_proj(enc)) of the cross-attention, for ``step``."""
        return [(l.encoder_attn.k_proj(encoder_state), l.encoder_attn.v_proj(encoder_state)) for l in self.layers]

    def step(self, tokens: torch.Tensor, index: int, encoder_state: torch.Tensor, text_tokens: torch.Tensor,
             cache: torch.Tensor, cross_kv=None) -> torch.Tensor:
        """One incremental step: tokens [B] at position ``index`` -> logits [B, rows]; updates ``cache``."""
        b = tokens.shape[0]
        pos = torch.full((b, 1), index, dtype=torch.long, device=tokens.device)
        x = self._embed(tokens[:, None], pos)
        text_mask = (text_tokens != self.cfg.pad_id)[:, None, None, :]
        slot_mask = (torch.arange(self.cfg.image_token_count, device=x.device) <= index)[None, None, None, :]
        for l, layer in enumerate(self.layers):
            x = layer(x, encoder_state, text_mask, slot_mask, cache=cache[l], index=index,
                      cross_kv=None if cross_kv is None else cross_kv[l])
        return self.lm_head(self.final_ln(x))[:, 0]


class DalleModel(nn.Module):
    """Encoder + decoder. state_dict keys are prefixed ``encoder.`` / ``decoder.``; the exporter strips them."""

    def __init__(self, cfg: DalleConfig, device=None):
        super().__init__()
        self.cfg = cfg
        self.encoder = DalleBartEncoder(cfg, device)
        self.decoder = DalleBartDecoder(cfg, device)

    def init_weights(self, std: float = 0.02, generator: Optional[torch.Generator] = None,
                     random_ln: bool = False):
        """Normal(0, std) embeddings and linears; LNs ones/zeros (or random around them with random_ln)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    p.copy_(torch.randn(p.shape, generator=generator) * std)
                elif name.endswith(".weight"):
                    p.copy_(1.0 + (0.1 * torch.randn(p.shape, generator=generator) if random_ln else 0.0))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=generator) if random_ln else torch.zeros(p.shape))
        return self

    def forward(self, text_tokens, prev_tokens):
        enc = self.encoder(text_tokens)
        return self.decoder(prev_tokens, enc, text_tokens)


# ---------------------------------------------------------------------------------------------- generation

def mix_logits(logits: torch.Tensor, n: int, factor: float) -> torch.Tensor:
    """Rows [0,n) unconditional, [n,2n) conditional -> l_u * (1 - f) + l_c * f (as min-dalle)."""
    return logits[:n] * (1 - factor) + logits[n:] * factor


def sample_from_logits(logits: torch.Tensor, top_k: int, temperature: float,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """min-dalle's sampling: keep l >= k-th largest (ties keep more), l -= max, l /= T, exp, mask, multinomial.
    top_k == 1 is argmax (first index among ties)."""
    if top_k == 1:
        return logits.argmax(-1)
    k = min(top_k, logits.shape[-1])
    kth = logits.sort(dim=-1, descending=True).values[:, k - 1:k]
    keep = logits >= kth
    w = ((logits - logits.max(-1, keepdim=True).values) / temperature).exp() * keep
    return torch.multinomial(w, 1, generator=generator)[:, 0]


@torch.no_grad()
def text_batch(rows: Sequence[Sequence[int]], n: int, device=None) -> torch.Tensor:
    """2-row text tensor (uncond, cond) per prompt -> [2n, T] laid out [uncond]*n + [cond]*n."""
    t = torch.tensor(rows, dtype=torch.long, device=device)
    return torch.cat([t[0:1].expand(n, -1), t[1:2].expand(n, -1)], 0)


@torch.no_grad()
def generate(model: DalleModel, text_uncond: torch.Tensor, text_cond: torch.Tensor,
             supercondition_factor: Optional[float] = None, top_k: Optional[int] = None,
             temperature: Optional[float] = None, generator: Optional[torch.Generator] = None,
             return_margins: bool = False):
    """Image tokens for N prompts. text_uncond / text_cond [N, T] (row 0 / row 1 of min-dalle's text tensor).
    Every step feeds the same token to the unconditional and conditional rows and mixes their logits.
    Returns tokens [N, image_token_count] (and the per-step top1 - top2 margins of the mixed logits)."""
    cfg = model.cfg
    f = cfg.supercondition_factor if supercondition_factor is None else supercondition_factor
    k = cfg.top_k if top_k is None else top_k
    temp = cfg.temperature if temperature is None else temperature
    n = text_cond.shape[0]
    text = torch.cat([text_uncond, text_cond], 0)
    enc = model.encoder(text)
    dec = model.decoder
    cache = dec.new_cache(2 * n, device=text.device, dtype=enc.dtype)
    ckv = dec.cross_kv(enc)
    tok = torch.full((n,), cfg.bos_id, dtype=torch.long, device=text.device)
    out, margins = [], []
    for i in range(cfg.image_token_count):
        logits = dec.step(torch.cat([tok, tok]), i, enc, text, cache, ckv)[:, :cfg.image_vocab_size]
        mixed = mix_logits(logits.float(), n, f)
        if return_margins:
            top2 = mixed.topk(2, dim=-1).values
            margins.append(top2[:, 0] - top2[:, 1])
        tok = sample_from_logits(mixed, k, temp, generator)
        out.append(tok)
    tokens = torch.stack(out, 1)
    if return_margins:
        return tokens, torch.stack(margins, 1)
    return tokens


# ---------------------------------------------------------------------------------------------- tables

def shape_table(module: nn.Module) -> List[Tuple[str, Tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def meta_tables(cfg: DalleConfig) -> Dict[str, List[Tuple[str, Tuple[int, ...]]]]:
    """Name -> shape tables of the encoder and decoder built on the meta device (nothing allocated)."""
    m = DalleModel(cfg, device="meta")
    return {"encoder": shape_table(m.encoder), "decoder": shape_table(m.decoder)}


def save(model: DalleModel, path: str, tokenizer=None, extra: Optional[dict] = None) -> None:
    tk = None
    if tokenizer is not None:
        tk = {"vocab": tokenizer.vocab, "merges": tokenizer.merges}
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict(), "tokenizer": tk,
                "extra": extra or {}}, path)


def load(path: str, map_location="cpu"):
    """-> (model in eval mode, tokenizer or None, extra)."""
    from tools.dalle.tokenizer import TextTokenizer
    ck = torch.load(path, map_location=map_location)
    model = DalleModel(DalleConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["state_dict"])
    tk = ck.get("tokenizer")
    tok = TextTokenizer(tk["vocab"], tk["merges"]) if tk else None
    return model.eval(), tok, ck.get("extra", {})
