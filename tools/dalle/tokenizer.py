"""min-dalle's text tokenizer (spec §1.7) and a small BPE trainer for the shapes-world captions.

Tokenizer (exactly min-dalle's ``TextTokenizer``, except that ``emoji.demojize`` is not applied: the emoji
package is not available here, so emoji are simply dropped by the ASCII filter):
  * ``text.lower()``, then drop every non-ASCII character;
  * words = ``text.split(" ")``, empty words skipped (no regex pre-tokenisation: punctuation stays attached);
  * per word the symbols are ``['Ġ'] + list(word)``; repeatedly merge the adjacent pair of lowest merge rank (its
    first occurrence) until no adjacent pair is in the merge table;
  * every symbol maps through vocab.json, unknown ones to ``<unk>``;
  * output ``[<s>] + ids + [</s>]``. Specials: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3.
Files: ``vocab.json`` (token -> id) and ``merges.txt`` (first line ``#version: ...``, then one ``a b`` pair per line,
rank = line index after the first, file ends with a newline).

    /usr/bin/python3 -m tools.dalle.tokenizer train --out DIR [--vocab-size 384] [--captions 20000] [--seed 0]
    /usr/bin/python3 -m tools.dalle.tokenizer encode DIR "a small red circle on the left"
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

WORD_START = chr(ord(" ") + 256)  # 'Ġ' (U+0120), GPT-2's byte-to-unicode image of the space
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS_ID, PAD_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
MERGES_HEADER = "#version: 0.2 - tessera shapes-world BPE"


def normalize(text: str) -> str:
    """min-dalle's normalisation without emoji.demojize: lower(), then drop non-ASCII characters."""
    return text.lower().encode("ascii", errors="ignore").decode()


def words_of(text: str) -> List[str]:
    return [w for w in normalize(text).split(" ") if len(w) > 0]


class TextTokenizer:
    def __init__(self, vocab: Dict[str, int], merges: Sequence[str]):
        self.vocab = dict(vocab)
        for i, s in enumerate(SPECIALS):
            if self.vocab.get(s) != i:
                raise ValueError(f"vocab must map {s!r} to {i} (found {self.vocab.get(s)!r})")
        pairs = [tuple(m.split()) for m in merges]
        for p in pairs:
            if len(p) != 2:
                raise ValueError(f"bad merge line {' '.join(p)!r}: expected two symbols")
        self.merges = [" ".join(p) for p in pairs]
        self.rank = {p: i for i, p in enumerate(pairs)}
        self._cache: Dict[str, List[str]] = {}

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, directory: str) -> "TextTokenizer":
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        with open(os.path.join(directory, "merges.txt"), encoding="utf-8") as f:
            merges = f.read().split("\n")[1:-1]  # as min-dalle: drop the #version line and the empty last line
        return cls(vocab, merges)

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False, indent=0)
            f.write("\n")
        with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
            f.write(self.merges_text())

    def merges_text(self) -> str:
        return MERGES_HEADER + "\n" + "".join(m + "\n" for m in self.merges)

    def vocab_text(self) -> str:
        return json.dumps(self.vocab, ensure_ascii=False, indent=0) + "\n"

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    # ------------------------------------------------------------------ encoding
    def bpe(self, word: str) -> List[str]:
        """Symbols of one (already normalised, non-empty) word after merging."""
        got = self._cache.get(word)
        if got is not None:
            return list(got)
        sub = [WORD_START] + list(word)
        inf = float("inf")
        while len(sub) > 1:
            best_i, best_r = -1, inf
            for i in range(len(sub) - 1):
                r = self.rank.get((sub[i], sub[i + 1]), inf)
                if r < best_r:  # strict: first occurrence of the lowest rank
                    best_i, best_r = i, r
            if best_i < 0:
                break
            sub = sub[:best_i] + [sub[best_i] + sub[best_i + 1]] + sub[best_i + 2:]
        self._cache[word] = sub
        return list(sub)

    def tokenize(self, text: str) -> List[int]:
        ids = [self.vocab.get(s, UNK_ID) for w in words_of(text) for s in self.bpe(w)]
        return [BOS_ID] + ids + [EOS_ID]

    def pieces(self, text: str) -> List[str]:
        return [s for w in words_of(text) for s in self.bpe(w)]


def text_rows(tokens: Sequence[int], count: int) -> List[List[int]]:
    """min-dalle's 2-row text tensor: row 0 the unconditional ``[tokens[0], tokens[-1], pad...]``, row 1 the
    prompt, both padded with <pad> (1) to ``count``; the prompt is truncated to ``count`` tokens first (then row 0's
    second token is the truncated sequence's last token, not </s>, exactly as min-dalle)."""
    t = list(tokens)[:count]
    r0 = [PAD_ID] * count
    r0[0], r0[1] = t[0], t[-1]
    r1 = t + [PAD_ID] * (count - len(t))
    return [r0, r1]


def pad_tokens(tokens: Sequence[int], count: int) -> List[int]:
    t = list(tokens)[:count]
    return t + [PAD_ID] * (count - len(t))


# ---------------------------------------------------------------------------------------------- BPE trainer

def base_alphabet() -> List[str]:
    """Ġ plus every printable ASCII character that survives lower(): digits, punctuation, a-z."""
    chars = [chr(c) for c in range(33, 127) if not ("A" <= chr(c) <= "Z")]
    return [WORD_START] + chars


def world_words() -> List[str]:
    """Every word (after normalisation) the shapes world's captions can contain, punctuation variants aside."""
    from tools.shapes import world
    texts = []
    for d in (world.SHAPE_WORDS, world.COLOUR_WORDS, world.BACKGROUND_WORDS, world.SIZE_WORDS, world.POSITION_WORDS):
        for ws in d.values():
            texts.extend(ws)
    texts.extend(world.SINGLE_TEMPLATES)
    texts.extend(world.PAIR_TEMPLATES)
    texts.extend(world.BG_CLAUSES)
    texts.extend(["a", "an", "one", "the", "background"])
    out = set()
    for t in texts:
        for w in words_of(t.replace("{", " ").replace("}", " ")):
            w = w.strip(".,;:")
            if w and not any(c.isdigit() for c in w) and w not in ("o1", "o2", "p1", "p2", "bg", "b") \
                    and not w.startswith(("o1", "o2", "p1", "p2", "bg")):
                out.add(w)
    return sorted(out)


def caption_corpus(n: int, seed: int = 0) -> List[str]:
    """n captions over all templates, background on/off, both splits (held-out combinations' words included)."""
    from tools.shapes import world
    r = random.Random(seed)
    caps = []
    for i in range(n):
        split = ("train", "heldout", "any")[i % 3]
        scene = world.sample_scene(r, split=split, size=32)
        k = len(world.SINGLE_TEMPLATES) if len(scene.objects) == 1 else len(world.PAIR_TEMPLATES)
        caps.append(world.render_caption(scene, r, template=i % k if i % 2 else None))
    return caps


def train_bpe(texts: Iterable[str], vocab_size: int = 384, min_count: int = 2,
              extra_words: Sequence[str] = (), extra_count: int = 50) -> TextTokenizer:
    """Learn merges greedily: repeatedly merge the most frequent adjacent pair (ties: lexicographically smallest
    pair) until the vocabulary holds ``vocab_size`` entries or no pair occurs ``min_count`` times.
    ``extra_words`` are added with ``extra_count`` occurrences each (coverage of the whole world vocabulary)."""
    counts = collections.Counter()
    for t in texts:
        counts.update(words_of(t))
    for w in extra_words:
        counts[w] += extra_count
    alphabet = base_alphabet()
    vocab: Dict[str, int] = {s: i for i, s in enumerate(SPECIALS)}
    for c in alphabet:
        vocab[c] = len(vocab)
    if vocab_size < len(vocab):
        raise ValueError(f"vocab_size {vocab_size} is smaller than the base alphabet + specials ({len(vocab)})")
    words = [([WORD_START] + list(w), c) for w, c in counts.items()]
    merges: List[str] = []
    while len(vocab) < vocab_size:
        pc = collections.Counter()
        for sym, c in words:
            for a, b in zip(sym[:-1], sym[1:]):
                pc[(a, b)] += c
        if not pc:
            break
        best = min(pc.items(), key=lambda kv: (-kv[1], kv[0]))
        (a, b), c = best
        if c < min_count:
            break
        merges.append(f"{a} {b}")
        new = a + b
        if new not in vocab:
            vocab[new] = len(vocab)
        nw = []
        for sym, cnt in words:
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            nw.append((out, cnt))
        words = nw
    return TextTokenizer(vocab, merges)


def train_world_tokenizer(vocab_size: int = 384, captions: int = 20000, seed: int = 0) -> TextTokenizer:
    return train_bpe(caption_corpus(captions, seed), vocab_size=vocab_size, extra_words=world_words())


def coverage_report(tok: TextTokenizer, captions: int = 3000, seed: int = 12345) -> dict:
    """Token statistics on fresh captions (both splits): max/mean length with specials, <unk> count, and the
    world words that are not a single token."""
    caps = caption_corpus(captions, seed)
    lens = [len(tok.tokenize(c)) for c in caps]
    unk = sum(tok.tokenize(c).count(UNK_ID) for c in caps)
    multi = [w for w in world_words() if len(tok.bpe(w)) > 1]
    return {"captions": captions, "max_tokens": max(lens), "mean_tokens": sum(lens) / len(lens), "unk": unk,
            "vocab_size": tok.vocab_size, "merges": len(tok.merges), "multi_token_world_words": multi}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.dalle.tokenizer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="learn a BPE vocabulary from shapes-world captions")
    t.add_argument("--out", required=True)
    t.add_argument("--vocab-size", type=int, default=384)
    t.add_argument("--captions", type=int, default=20000)
    t.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("encode", help="tokenize a text with vocab.json/merges.txt from DIR")
    e.add_argument("dir")
    e.add_argument("text")
    args = ap.parse_args(argv)
    if args.cmd == "train":
        if args.vocab_size < len(SPECIALS) + len(base_alphabet()) or args.captions < 1:
            print(f"error: --vocab-size must be >= {len(SPECIALS) + len(base_alphabet())} and --captions >= 1",
                  file=sys.stderr)
            return 2
        tok = train_world_tokenizer(args.vocab_size, args.captions, args.seed)
        tok.save(args.out)
        print("tokenizer " + json.dumps(coverage_report(tok)), flush=True)
        return 0
    try:
        tok = TextTokenizer.load(args.dir)
    except (OSError, ValueError) as ex:
        print(f"error: cannot read tokenizer from {args.dir}: {ex}", file=sys.stderr)
        return 2
    print(json.dumps({"ids": tok.tokenize(args.text), "pieces": tok.pieces(args.text)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
