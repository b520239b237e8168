"""Byte-level BPE in GPT-2's format: trainer, encoder/decoder, vocab.json + merges.txt writer/reader.

    /usr/bin/python3 -m tools.gpt2.bpe_train train --input FILE [FILE ...] --out DIR [--vocab-size 4096]
        [--min-frequency 2] [--doc-sep LINE]
    /usr/bin/python3 -m tools.gpt2.bpe_train encode DIR "some text"      # prints ids and pieces
    /usr/bin/python3 -m tools.gpt2.bpe_train decode DIR 1 2 3

Format (identical to OpenAI's / Hugging Face's GPT-2 files):
  * every byte is first mapped to a printable character with GPT-2's ``bytes_to_unicode`` table (printable
    Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in byte order; e.g. space -> ``Ġ``,
    newline -> ``Ċ``);
  * ``vocab.json``: ``{token: id}``; ids 0..255 are the 256 byte characters in ``bytes_to_unicode`` order (``!`` = 0,
    as in GPT-2), then one id per new token in merge order, and ``<|endoftext|>`` has the last id;
  * ``merges.txt``: a ``#version: 0.2`` line, then one ``left right`` pair per line in rank order, ending in a
    newline.

Pre-tokenisation is GPT-2's pattern
``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``,
implemented by hand (Python's ``re`` has no ``\\p{L}``) in :func:`pretokenize`: the alternatives are tried in
the pattern's order at each position, ``\\p{L}`` / ``\\p{N}`` are the Unicode categories L* / N* from
``unicodedata`` and ``\\s`` is the Unicode White_Space property (``str.isspace()`` minus U+001C..U+001F, which
``isspace`` counts but White_Space does not). ``\\s+(?!\\S)`` takes a whitespace run whole at the end of the text,
otherwise all of it but its last character (which then starts the next token, e.g. `` word``); a lone whitespace
character before a non-space falls through to ``\\s+``. The test checks it against the ``regex`` module's
``\\p{L}`` pattern where that module is installed. ``<|endoftext|>`` in the text is split out as the special token
when encoding (Hugging Face's behaviour for added tokens), never as training data.

Training: word (pre-token) counts, every word as byte characters, then repeatedly merge the most frequent adjacent
pair (ties: the smallest pair in string order) with incremental pair counts, until the vocabulary (256 bytes +
merged tokens + ``<|endoftext|>``) reaches ``vocab_size`` or no pair occurs ``min_frequency`` times. A merge whose
result already exists (``ab``+``c`` vs ``a``+``bc``) is recorded but adds no id (as Hugging Face's trainer does).
Encoding is GPT-2's ``bpe()``: repeatedly merge every occurrence of the lowest-ranked adjacent pair.
"""
from __future__ import annotations

import argparse
import collections
import heapq
import json
import os
import sys
import unicodedata
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

EOT = "<|endoftext|>"
MERGES_HEADER = "#version: 0.2"


# ---------------------------------------------------------------------------------------------- byte map

def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character table (dict in GPT-2's id order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


# ---------------------------------------------------------------------------------------------- pre-tokenisation

_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # after an apostrophe, in the pattern's order
_NOT_WHITE_SPACE = {"\x1c", "\x1d", "\x1e", "\x1f"}


def _cls(c: str) -> str:
    """'L' letter, 'N' number, 'S' whitespace, 'O' other."""
    if c.isspace() and c not in _NOT_WHITE_SPACE:
        return "S"
    k = unicodedata.category(c)[0]
    return k if k in ("L", "N") else "O"


def pretokenize(text: str) -> List[str]:
    """GPT-2's pre-tokenisation (see the module doc); ``"".join(pretokenize(t)) == t``."""
    n = len(text)
    if n == 0:
        return []
    cls = [_cls(c) for c in text]
    out: List[str] = []
    i = 0
    while i < n:
        c, k = text[i], cls[i]
        if c == "'":
            hit = None
            for s in _CONTRACTIONS:
                if text.startswith(s, i + 1):
                    hit = s
                    break
            if hit is not None:
                out.append(text[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        start = i
        # " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional literal space then a run of one class
        j = i + 1 if (c == " " and i + 1 < n and cls[i + 1] != "S") else i
        if cls[j] != "S":
            run = cls[j]
            j += 1
            while j < n and cls[j] == run:
                j += 1
            out.append(text[start:j])
            i = j
            continue
        # whitespace: "\s+(?!\S)" then "\s+"
        j = i
        while j < n and cls[j] == "S":
            j += 1
        if j < n and j - i > 1:
            j -= 1  # leave the last whitespace character to start the next token
        out.append(text[i:j])
        i = j
    return out


def split_special(text: str, special: str = EOT) -> List[Tuple[bool, str]]:
    """[(is_special, piece)] with the special token's occurrences split out."""
    out: List[Tuple[bool, str]] = []
    pos = 0
    while True:
        k = text.find(special, pos)
        if k < 0:
            break
        if k > pos:
            out.append((False, text[pos:k]))
        out.append((True, special))
        pos = k + len(special)
    if pos < len(text):
        out.append((False, text[pos:]))
    return out


def to_byte_chars(s: str) -> str:
    return "".join(BYTE_ENCODER[b] for b in s.encode("utf-8"))


# ---------------------------------------------------------------------------------------------- tokenizer

class ByteLevelBPE:
    def __init__(self, vocab: Dict[str, int], merges: Sequence[str], special: str = EOT):
        self.vocab = dict(vocab)
        self.inv = {i: t for t, i in self.vocab.items()}
        self.merges = list(merges)
        self.rank: Dict[Tuple[str, str], int] = {}
        for r, m in enumerate(self.merges):
            a, b = m.split(" ")
            self.rank.setdefault((a, b), r)
        self.special = special
        if special not in self.vocab:
            raise ValueError(f"vocabulary has no {special!r}")
        self.eot_id = self.vocab[special]
        self._cache: Dict[str, List[int]] = {}

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, directory: str) -> "ByteLevelBPE":
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        return cls(vocab, read_merges(os.path.join(directory, "merges.txt")))

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
            f.write(self.vocab_text())
        with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
            f.write(self.merges_text())

    def vocab_text(self) -> str:
        return json.dumps(self.vocab, ensure_ascii=False) + "\n"

    def merges_text(self) -> str:
        return MERGES_HEADER + "\n" + "".join(m + "\n" for m in self.merges)

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    # ------------------------------------------------------------------ encoding
    def bpe(self, word: str) -> List[str]:
        """Symbols of one pre-token already mapped to byte characters (GPT-2's ``bpe()``)."""
        sub = list(word)
        inf = float("inf")
        while len(sub) > 1:
            best, best_r = None, inf
            for i in range(len(sub) - 1):
                r = self.rank.get((sub[i], sub[i + 1]), inf)
                if r < best_r:
                    best, best_r = (sub[i], sub[i + 1]), r
            if best is None:
                break
            a, b = best
            new, i = [], 0
            while i < len(sub):
                if i < len(sub) - 1 and sub[i] == a and sub[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(sub[i])
                    i += 1
            sub = new
        return sub

    def encode_ordinary(self, text: str) -> List[int]:
        ids: List[int] = []
        for w in pretokenize(text):
            got = self._cache.get(w)
            if got is None:
                got = [self.vocab[s] for s in self.bpe(to_byte_chars(w))]
                if len(self._cache) < 500000:
                    self._cache[w] = got
            ids.extend(got)
        return ids

    def encode(self, text: str, allow_special: bool = True) -> List[int]:
        if not allow_special:
            return self.encode_ordinary(text)
        ids: List[int] = []
        for sp, piece in split_special(text, self.special):
            ids.extend([self.eot_id] if sp else self.encode_ordinary(piece))
        return ids

    def pieces(self, ids: Sequence[int]) -> List[str]:
        return [self.inv[int(i)] for i in ids]

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        out = bytearray()
        for i in ids:
            t = self.inv[int(i)]
            if t == self.special:
                out.extend(t.encode("utf-8"))
            else:
                out.extend(BYTE_DECODER[c] for c in t)
        return bytes(out)

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        return self.decode_bytes(ids).decode("utf-8", errors=errors)


def read_merges(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not lines or not lines[0].startswith("#version"):
        raise ValueError(f"{path}: first line is not a '#version' line")
    return [l for l in lines[1:] if l]


# ---------------------------------------------------------------------------------------------- trainer

def count_words(texts: Iterable[str], special: str = EOT) -> "collections.Counter[str]":
    """Pre-token counts (byte characters) of texts; occurrences of the special token are skipped."""
    counts: collections.Counter = collections.Counter()
    for t in texts:
        for sp, piece in split_special(t, special):
            if not sp:
                counts.update(pretokenize(piece))
    out: collections.Counter = collections.Counter()
    for w, c in counts.items():
        out[to_byte_chars(w)] += c
    return out


def train_bpe(word_counts: Dict[str, int], vocab_size: int, min_frequency: int = 2, special: str = EOT,
              log=None) -> ByteLevelBPE:
    """Train merges on byte-character word counts (see :func:`count_words`)."""
    if vocab_size < 257:
        raise ValueError("vocab_size must be at least 257 (256 bytes + the special token)")
    vocab: Dict[str, int] = {c: i for i, c in enumerate(BYTE_ENCODER.values())}
    words = [list(w) for w in sorted(word_counts)]
    freq = [int(word_counts[w]) for w in sorted(word_counts)]
    pair_count: Dict[Tuple[str, str], int] = collections.defaultdict(int)
    where: Dict[Tuple[str, str], set] = collections.defaultdict(set)
    for wi, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += freq[wi]
            where[p].add(wi)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: List[str] = []
    while len(vocab) < vocab_size - 1 and heap:
        negc, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negc:
            continue  # stale entry
        if -negc < min_frequency:
            break
        a, b = pair
        merged = a + b
        merges.append(f"{a} {b}")
        if merged not in vocab:
            vocab[merged] = len(vocab)
        changed = set()
        for wi in sorted(where.pop(pair, ())):
            w, f = words[wi], freq[wi]
            for p in zip(w, w[1:]):
                pair_count[p] -= f
                changed.add(p)
                s = where.get(p)
                if s is not None:
                    s.discard(wi)
            new, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and w[i] == a and w[i + 1] == b:
                    new.append(merged)
                    i += 2
                else:
                    new.append(w[i])
                    i += 1
            words[wi] = new
            for p in zip(new, new[1:]):
                pair_count[p] += f
                where[p].add(wi)
                changed.add(p)
        pair_count.pop(pair, None)
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_count.pop(p, None)
        if log and len(merges) % 1000 == 0:
            log(f"bpe: {len(merges)} merges, vocab {len(vocab)}, last {a!r}+{b!r} ({-negc})")
    vocab[special] = len(vocab)
    return ByteLevelBPE(vocab, merges, special)


def train_on_texts(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, log=None) -> ByteLevelBPE:
    return train_bpe(count_words(texts), vocab_size, min_frequency, log=log)


# ---------------------------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpt2.bpe_train")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--input", nargs="+", required=True, help="UTF-8 text files")
    t.add_argument("--out", required=True)
    t.add_argument("--vocab-size", type=int, default=4096)
    t.add_argument("--min-frequency", type=int, default=2)
    e = sub.add_parser("encode")
    e.add_argument("dir")
    e.add_argument("text")
    d = sub.add_parser("decode")
    d.add_argument("dir")
    d.add_argument("ids", nargs="+", type=int)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "train":
            if args.vocab_size < 257:
                print("error: --vocab-size must be at least 257", file=sys.stderr)
                return 2
            texts = []
            for p in args.input:
                with open(p, encoding="utf-8") as f:
                    texts.append(f.read())
            tok = train_on_texts(texts, args.vocab_size, args.min_frequency, log=print)
            tok.save(args.out)
            print(f"wrote {args.out}/vocab.json ({tok.vocab_size} entries) and merges.txt ({len(tok.merges)} merges)")
        elif args.cmd == "encode":
            tok = ByteLevelBPE.load(args.dir)
            ids = tok.encode(args.text)
            print(" ".join(map(str, ids)))
            print(" ".join(repr(p) for p in tok.pieces(ids)))
        else:
            tok = ByteLevelBPE.load(args.dir)
            print(tok.decode(args.ids))
    except (OSError, ValueError, KeyError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
