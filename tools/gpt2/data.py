"""Training text for the tiny GPT-2: an English corpus from a Debian package plus shapes-world scene captions.

Corpus (``--corpus kjv``, the default): the King James Bible from Debian's ``bible-kjv-text`` (read with the
``bible`` program of package ``bible-kjv``: ``apt-get install -y bible-kjv``). 31,102 verses, 4.4 MB, public
domain (the package's copyright file: "The copyright for the King James Version text of the Bible is expired").
One document per chapter (1,189), verses one per line without their references. Every ``VAL_EVERY``-th chapter
(starting with chapter index ``VAL_OFFSET``) is held out for the validation perplexity.

``--corpus fortunes`` (the runner-up): the ``fortunes`` package's English fortune-cookie files
(/usr/share/games/fortunes, 2.6 MB, one document per cookie, minus the ASCII-art files).

Scene captions: documents ``"Scene: " + render_caption(scene)`` for ``sample_scene(split="train")`` scenes (so the
LM never describes a held-out attribute combination), each its own document between ``<|endoftext|>`` tokens;
prompting the model with ``Scene:`` (optionally after ``<|endoftext|>``) makes it write one, ending with
``<|endoftext|>``.
"""
from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

from tools.shapes import world

SCENE_PREFIX = "Scene:"
VAL_EVERY = 20
VAL_OFFSET = 7
FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNES_SKIP = {"art", "ascii-art", "translate-me"}
_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")


class CorpusError(RuntimeError):
    pass


def kjv_verses() -> List[Tuple[str, int, int, str]]:
    """(book, chapter, verse, text) of the whole KJV via the ``bible`` program."""
    exe = shutil.which("bible") or ("/usr/bin/bible" if os.path.exists("/usr/bin/bible") else None)
    if exe is None:
        raise CorpusError("the KJV corpus needs Debian's bible-kjv + bible-kjv-text: apt-get install -y bible-kjv")
    r = subprocess.run([exe, "-f", "gen1:1-rev22:21"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600)
    if r.returncode != 0:
        raise CorpusError(f"bible failed ({r.returncode}): {r.stderr.decode(errors='replace')[:200]}")
    out = []
    for line in r.stdout.decode("utf-8", errors="replace").splitlines():
        m = _VERSE.match(line)
        if m:
            out.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()))
    if len(out) < 30000:
        raise CorpusError(f"bible printed only {len(out)} verses")
    return out


def kjv_documents() -> Tuple[List[str], List[str]]:
    """(train chapters, validation chapters): one document per chapter, verses one per line."""
    chapters: Dict[Tuple[str, int], List[str]] = {}
    for book, ch, _, text in kjv_verses():
        chapters.setdefault((book, ch), []).append(text)
    docs = ["\n".join(v) for v in chapters.values()]  # dicts keep the Bible's order
    train = [d for i, d in enumerate(docs) if i % VAL_EVERY != VAL_OFFSET]
    val = [d for i, d in enumerate(docs) if i % VAL_EVERY == VAL_OFFSET]
    return train, val


def fortune_documents() -> Tuple[List[str], List[str]]:
    if not os.path.isdir(FORTUNES_DIR):
        raise CorpusError("the fortunes corpus needs Debian's fortunes package: apt-get install -y fortunes")
    docs = []
    for name in sorted(os.listdir(FORTUNES_DIR)):
        p = os.path.join(FORTUNES_DIR, name)
        if "." in name or name in FORTUNES_SKIP or not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for cookie in f.read().split("\n%\n"):
                cookie = cookie.strip("\n%")
                if cookie.strip():
                    docs.append(cookie)
    train = [d for i, d in enumerate(docs) if i % VAL_EVERY != VAL_OFFSET]
    val = [d for i, d in enumerate(docs) if i % VAL_EVERY == VAL_OFFSET]
    return train, val


def corpus_documents(name: str) -> Tuple[List[str], List[str]]:
    if name == "kjv":
        return kjv_documents()
    if name == "fortunes":
        return fortune_documents()
    raise CorpusError(f"unknown corpus {name!r} (kjv or fortunes)")


FALLBACK_TEXT = (
    "The quick brown fox jumps over the lazy dog. It's a small world, isn't it? We'll see what they've done.\n"
    "In the beginning there was a circle, a square and a triangle; then came 2 crosses and 3 diamonds.\n"
    "Colours: red, green, blue, yellow, purple and orange. Backgrounds: white, black and gray (or grey).\n"
)


def caption_documents(n: int, seed: int) -> List[str]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        scene = world.sample_scene(r, split="train")
        out.append(f"{SCENE_PREFIX} {world.render_caption(scene, r)}")
    return out


# ---------------------------------------------------------------------------------------------- caption checks

def _world_vocabulary() -> set:
    words = set()
    texts = []
    for d in (world.SHAPE_WORDS, world.COLOUR_WORDS, world.BACKGROUND_WORDS, world.SIZE_WORDS, world.POSITION_WORDS):
        for ws in d.values():
            texts.extend(ws)
    texts.extend(world.SINGLE_TEMPLATES + world.PAIR_TEMPLATES + world.BG_CLAUSES)
    texts.extend(["a", "an", "one", "the", "background"])
    for t in texts:
        for w in re.findall(r"[a-z]+", re.sub(r"\{[^}]*\}", " ", t.lower().replace("-", " "))):
            words.add(w)
    return words


WORLD_WORDS = _world_vocabulary()


def scene_possible(objs, background: str, size: int = 32) -> bool:
    """Whether ``sample_scene`` can produce these objects: ``scene_is_valid`` for some per-object jitter within
    the world's +-round(0.03 W) px (e.g. a small object on the left next to a large one at the bottom fits only
    with some jitter)."""
    J = int(round(world._JITTER * size))
    offs = [(dx, dy) for dx in range(-J, J + 1) for dy in range(-J, J + 1)]
    for jit in itertools.product(offs, repeat=len(objs)):
        if world.scene_is_valid(world.Scene(objects=tuple(objs), background=background, size=size, jitter=jit)):
            return True
    return False


def check_caption(text: str) -> Dict[str, object]:
    """How usable a generated caption is for the text-to-image model.

    parsed: ``parse_caption`` finds at least one object; scene: additionally 1-2 objects, each with shape, colour,
    size and position stated, distinct positions, and the scene (background as stated, else white; no jitter)
    passes ``scene_is_valid``; in_vocab: every word is one the shapes-world captions use; valid: scene and in_vocab;
    held_out: the scene has a held-out attribute combination."""
    res = {"parsed": False, "scene": False, "in_vocab": False, "valid": False, "held_out": False}
    words = re.findall(r"[a-z]+", text.lower().replace("-", " "))
    res["in_vocab"] = bool(words) and all(w in WORLD_WORDS for w in words)
    try:
        c = world.parse_caption(text)
    except world.CaptionError:
        return res
    res["parsed"] = True
    objs = c.objects
    if not 1 <= len(objs) <= 2:
        return res
    if any(o.shape is None or o.colour is None or o.size is None or o.position is None for o in objs):
        return res
    if len({o.position for o in objs}) != len(objs):
        return res
    if not scene_possible(tuple(world.Obj(o.shape, o.colour, o.size, o.position) for o in objs),
                          c.background or "white"):
        return res
    scene = world.Scene(objects=tuple(world.Obj(o.shape, o.colour, o.size, o.position) for o in objs),
                        background=c.background or "white", size=32)
    res["scene"] = True
    res["held_out"] = world.is_held_out(scene)
    res["valid"] = bool(res["in_vocab"])
    return res


def caption_stats(captions: Sequence[Optional[str]], train_set: Optional[set] = None) -> Dict[str, float]:
    """Rates over generated captions (None = no end of text within the token budget)."""
    n = max(1, len(captions))
    keys = ("parsed", "scene", "in_vocab", "valid", "held_out")
    tot = {k: 0 for k in keys}
    ended = novel = 0
    for cap in captions:
        if cap is None:
            continue
        ended += 1
        r = check_caption(cap)
        for k in keys:
            tot[k] += int(bool(r[k]))
        if train_set is not None and r["valid"] and f"{SCENE_PREFIX} {cap.strip()}" not in train_set:
            novel += 1
    out = {"n": len(captions), "ended": ended / n}
    out.update({k: tot[k] / n for k in keys})
    if train_set is not None:
        out["novel_valid"] = novel / n
    return out
