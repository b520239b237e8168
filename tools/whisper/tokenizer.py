"""Whisper's tokenizer over a tiktoken rank file (``gpt2.tiktoken``, ``multilingual.tiktoken``).

The file holds one ``base64(token bytes) SPACE rank`` per line; ranks are the ids 0..R-1. The specials are not in
the file; they follow the ranks: eot = R, sot = R + 1, then L language tokens (OpenAI's order, ``<|en|>`` first),
translate, transcribe, startoflm, startofprev, nospeech, notimestamps, then 1501 timestamps ``<|0.00|>`` ..
``<|30.00|>``, so ``n_vocab = R + 1509 + L``, where L is 99 (tiny .. large-v2, the ``.en`` models) or 100 (large-v3).

``encode`` is GPT-2's: the pre-tokenisation pattern (hand-written in tools.gpt2.bpe_train, since Python's ``re``
has no ``\\p{L}``), then tiktoken's byte-pair merge (repeatedly join the adjacent pair whose bytes have the lowest
rank). Specials in the text are not recognised (they are plain text to ``encode``).
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Dict, List, Optional, Sequence

from tools.gpt2.bpe_train import pretokenize

LANGUAGES = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi",
    "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml",
    "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs",
    "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am",
    "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
)
TASK_SPECIALS = ("translate", "transcribe", "startoflm", "startofprev", "nospeech", "notimestamps")
N_TIMESTAMPS = 1501
N_FIXED_SPECIALS = 2 + len(TASK_SPECIALS) + N_TIMESTAMPS  # eot, sot, the six task tokens, timestamps: 1509
MULTILINGUAL_MIN_VOCAB = 51865


class TokenizerError(ValueError):
    pass


_B64 = re.compile(rb"[A-Za-z0-9+/]*=*")


def parse_ranks(data: bytes) -> List[bytes]:
    """Rank file content -> token bytes indexed by rank. Ranks must be exactly 0..R-1, tokens distinct (one may be
    empty: multilingual.tiktoken's rank 50256 is ``=``, which decodes to no bytes)."""
    by_rank: Dict[int, bytes] = {}
    seen = set()
    for n, line in enumerate(data.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if not line:
            continue
        parts = line.split(b" ")
        if len(parts) != 2 or not parts[1].isdigit():
            raise TokenizerError(f"line {n}: expected 'BASE64 RANK', got {line[:60]!r}")
        try:
            if not _B64.fullmatch(parts[0]):
                raise ValueError
            # not validate=True: multilingual.tiktoken spells rank 50256 as a lone "=", i.e. empty bytes
            tok = base64.b64decode(parts[0])
        except (binascii.Error, ValueError):
            raise TokenizerError(f"line {n}: bad base64 {parts[0][:60]!r}") from None
        rank = int(parts[1])
        if rank in by_rank:
            raise TokenizerError(f"line {n}: rank {rank} appears twice")
        if tok in seen:
            raise TokenizerError(f"line {n}: token {tok!r} appears twice")
        by_rank[rank] = tok
        seen.add(tok)
    if not by_rank:
        raise TokenizerError("no ranks")
    if max(by_rank) != len(by_rank) - 1:
        missing = next(i for i in range(len(by_rank)) if i not in by_rank)
        raise TokenizerError(f"ranks are not 0..{len(by_rank) - 1}: rank {missing} is missing")
    return [by_rank[i] for i in range(len(by_rank))]


def serialize_ranks(tokens: Sequence[bytes]) -> bytes:
    """The rank file for ``tokens`` (token i has rank i), newline-terminated lines."""
    return b"".join(base64.b64encode(t) + b" " + str(i).encode() + b"\n" for i, t in enumerate(tokens))


def num_languages(n_ranks: int, n_vocab: int, published: bool = True) -> int:
    """L = n_vocab - ranks - 1509, which must be 99 or 100 for OpenAI's checkpoints (``published``), and 1 to 100 for
    a model of our own (the bundled one has English only)."""
    L = n_vocab - n_ranks - N_FIXED_SPECIALS
    if published and L not in (99, 100):
        raise TokenizerError(f"{n_ranks} ranks do not fit n_vocab {n_vocab} ({n_vocab} - {n_ranks} - "
                             f"{N_FIXED_SPECIALS} = {L} language tokens; 99 or 100 expected)")
    if not 1 <= L <= len(LANGUAGES):
        raise TokenizerError(f"{n_ranks} ranks do not fit n_vocab {n_vocab} ({L} language tokens; 1 to "
                             f"{len(LANGUAGES)} expected)")
    return L


def timestamp_name(i: int) -> str:
    return f"<|{i * 0.02:.2f}|>"


class Tokenizer:
    def __init__(self, tokens: Sequence[bytes], n_vocab: int):
        self.tokens = list(tokens)
        self.n_vocab = n_vocab
        self.n_languages = num_languages(len(self.tokens), n_vocab, published=False)
        self.languages = LANGUAGES[:self.n_languages]
        self.ranks = {t: i for i, t in enumerate(self.tokens)}
        names = ["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in self.languages] \
            + [f"<|{s}|>" for s in TASK_SPECIALS] + [timestamp_name(i) for i in range(N_TIMESTAMPS)]
        assert len(self.tokens) + len(names) == n_vocab
        self.special_names = names  # id R + i is names[i]
        self.specials = {nm: len(self.tokens) + i for i, nm in enumerate(names)}
        self.eot = self.specials["<|endoftext|>"]
        self.sot = self.specials["<|startoftranscript|>"]
        self.timestamp_begin = self.specials["<|0.00|>"]
        self.space_token: Optional[int] = self.ranks.get(b" ")

    @classmethod
    def load(cls, path: str, n_vocab: int) -> "Tokenizer":
        with open(path, "rb") as f:
            return cls(parse_ranks(f.read()), n_vocab)

    @property
    def is_multilingual(self) -> bool:
        return self.n_vocab >= MULTILINGUAL_MIN_VOCAB

    def special(self, name: str) -> int:
        """Id of a special token, by ``<|name|>`` or ``name`` (``endoftext``, ``transcribe``, ``0.00``, ...)."""
        key = name if name.startswith("<|") else f"<|{name}|>"
        if key not in self.specials:
            raise KeyError(f"no special token {name!r}")
        return self.specials[key]

    def language_token(self, code: str) -> int:
        if code not in self.languages:
            raise KeyError(f"language {code!r} is not one of this tokenizer's {self.n_languages} languages")
        return self.sot + 1 + self.languages.index(code)

    def token_bytes(self, i: int) -> bytes:
        """A rank's bytes, or a special's name as UTF-8."""
        if 0 <= i < len(self.tokens):
            return self.tokens[i]
        if len(self.tokens) <= i < self.n_vocab:
            return self.special_names[i - len(self.tokens)].encode()
        raise IndexError(f"token id {i} outside 0..{self.n_vocab - 1}")

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The ids below eot, their bytes concatenated (specials and timestamps are skipped)."""
        return b"".join(self.tokens[i] for i in ids if 0 <= i < self.eot)

    def decode(self, ids: Sequence[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def _merge(self, piece: bytes) -> List[int]:
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        try:
            return [self.ranks[p] for p in parts]
        except KeyError as ex:
            raise TokenizerError(f"byte {ex.args[0]!r} has no rank") from None

    def encode(self, text: str) -> List[int]:
        out: List[int] = []
        for piece in pretokenize(text):
            b = piece.encode("utf-8")
            r = self.ranks.get(b)
            out.extend([r] if r is not None else self._merge(b))
        return out
