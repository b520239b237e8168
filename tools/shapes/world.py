"""Seeded synthetic "shapes world": scenes, hard-edged renderer, captions and a caption parser.

A :class:`Scene` is the source of truth. ``render(scene)`` draws it (numpy only, no anti-aliasing),
``render_caption(scene, rng)`` describes it in one of several English wordings and ``parse_caption(text)``
turns any such wording back into the constraints it states (used by :mod:`tools.shapes.judge`).

Geometry (fractions of the image side W, so 32x32 and 64x64 behave alike):
  * sizes: bounding-box side ``round(0.28 W)`` (small) or ``round(0.44 W)`` (large);
  * positions: bounding-box centre near (0.22|0.5|0.78, 0.5) / (0.5, 0.22|0.78) / (0.5, 0.5), plus a jitter of
    up to ``round(0.03 W)`` px; when two objects are on adjacent sides (e.g. left + top) each is pushed away from
    the other along its free axis by ``0.14 W`` so they do not collide.  Two objects always keep a gap of at least
    ``max(3, round(0.08 W))`` px between their bounding boxes (so a 3x3 blur cannot join them); pairs that cannot
    satisfy this at a given size (anything next to a "center" object) are never sampled.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

SHAPES: Tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (30, 180, 40),
    "blue": (30, 60, 230),
    "yellow": (245, 230, 30),
    "purple": (140, 40, 180),
    "orange": (255, 130, 0),
}
BACKGROUNDS: Dict[str, Tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}
SIZES: Dict[str, float] = {"small": 0.28, "large": 0.44}
POSITIONS: Dict[str, Tuple[float, float]] = {  # (x, y) of the bounding-box centre, fractions of W / H
    "left": (0.22, 0.5),
    "right": (0.78, 0.5),
    "top": (0.5, 0.22),
    "bottom": (0.5, 0.78),
    "center": (0.5, 0.5),
}
_PUSH = 0.14  # perpendicular push for objects on adjacent sides
_JITTER = 0.03

# Held-out attribute combinations: no training scene contains any object matching one of these.
HELDOUT_SHAPE_COLOUR = frozenset({("triangle", "green"), ("diamond", "orange")})
HELDOUT_SHAPE_SIZE_COLOUR = frozenset({("circle", "large", "purple"), ("square", "small", "yellow"),
                                       ("cross", "large", "blue")})


@dataclasses.dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str
    position: str


@dataclasses.dataclass(frozen=True)
class Scene:
    objects: Tuple[Obj, ...]
    background: str
    size: int = 32  # image side in pixels
    jitter: Tuple[Tuple[int, int], ...] = ()  # per-object (dx, dy) pixel offsets; () means none

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Scene":
        return Scene(objects=tuple(Obj(**o) for o in d["objects"]), background=d["background"],
                     size=d.get("size", 32), jitter=tuple(tuple(j) for j in d.get("jitter", ())))


# ----------------------------------------------------------------------------------------------- geometry

def extent(size_name: str, side: int) -> int:
    """Bounding-box side in pixels of an object of the given size class."""
    return int(round(SIZES[size_name] * side))


def min_gap(side: int) -> int:
    return max(3, int(round(0.08 * side)))


def shape_mask(shape: str, e: int, h: Optional[int] = None) -> np.ndarray:
    """Boolean ``h x e`` mask (h defaults to e) of a shape filling its bounding box, sampled at pixel centres.

    The judge calls this with the measured bounding box of a component, so it doubles as the shape template.
    """
    h = e if h is None else h
    u = (np.arange(e) + 0.5) / e * 2.0 - 1.0
    v = (np.arange(h) + 0.5) / h * 2.0 - 1.0
    U, V = np.meshgrid(u, v)  # V grows downwards
    hu, hv = 0.5 / e + 1e-6, 0.5 / h + 1e-6  # half-pixel tolerances so tips keep at least one pixel
    if shape == "circle":
        m = U * U + V * V <= 1.0 + 1e-6
    elif shape == "square":
        m = np.ones((h, e), bool)
    elif shape == "triangle":  # apex up
        m = np.abs(U) <= (V + 1.0) / 2.0 + hu
    elif shape == "diamond":
        m = np.abs(U) + np.abs(V) <= 1.0 + max(hu, hv)
    elif shape == "cross":  # plus sign, arms about a third of the side wide
        m = (np.abs(U) <= 0.36) | (np.abs(V) <= 0.36)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return m


def _adjacent(p: str, q: str) -> bool:
    return {p, q} in ({"left", "top"}, {"left", "bottom"}, {"right", "top"}, {"right", "bottom"})


def object_boxes(scene: Scene) -> List[Tuple[int, int, int]]:
    """(x0, y0, e) of each object's bounding box (x0/y0 may be computed before clipping checks)."""
    W = scene.size
    boxes = []
    positions = [o.position for o in scene.objects]
    for i, o in enumerate(scene.objects):
        fx, fy = POSITIONS[o.position]
        if len(positions) == 2:
            other = positions[1 - i]
            if _adjacent(o.position, other):
                ox, oy = POSITIONS[other]
                if o.position in ("left", "right"):  # move vertically away from the other (top/bottom) one
                    fy += _PUSH if oy < 0.5 else -_PUSH
                else:
                    fx += _PUSH if ox < 0.5 else -_PUSH
        e = extent(o.size, W)
        dx, dy = scene.jitter[i] if scene.jitter else (0, 0)
        x0 = int(round(fx * W - e / 2.0)) + dx
        y0 = int(round(fy * W - e / 2.0)) + dy
        boxes.append((x0, y0, e))
    return boxes


def scene_is_valid(scene: Scene) -> bool:
    W = scene.size
    boxes = object_boxes(scene)
    for x0, y0, e in boxes:
        if x0 < 0 or y0 < 0 or x0 + e > W or y0 + e > W:
            return False
    if len(boxes) == 2:
        if scene.objects[0].position == scene.objects[1].position:
            return False
        (ax, ay, ae), (bx, by, be) = boxes
        g = min_gap(W)
        sep_x = max(bx - (ax + ae), ax - (bx + be))
        sep_y = max(by - (ay + ae), ay - (by + be))
        if max(sep_x, sep_y) < g:
            return False
    return True


def render(scene: Scene) -> np.ndarray:
    """H x W x 3 uint8 image of the scene, hard edges."""
    W = scene.size
    img = np.empty((W, W, 3), np.uint8)
    img[:] = BACKGROUNDS[scene.background]
    for o, (x0, y0, e) in zip(scene.objects, object_boxes(scene)):
        m = shape_mask(o.shape, e)
        region = img[y0:y0 + e, x0:x0 + e]
        region[m] = COLOURS[o.colour]
    return img


# ----------------------------------------------------------------------------------------------- sampling

def obj_is_held_out(o: Obj) -> bool:
    return (o.shape, o.colour) in HELDOUT_SHAPE_COLOUR or (o.shape, o.size, o.colour) in HELDOUT_SHAPE_SIZE_COLOUR


def is_held_out(scene: Scene) -> bool:
    """True when any object of the scene has a held-out attribute combination."""
    return any(obj_is_held_out(o) for o in scene.objects)


def _rng(rng) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    return random.Random(rng)


def sample_scene(rng, split: str = "train", size: int = 32, n_objects: Optional[int] = None,
                 jitter: bool = True) -> Scene:
    """Draw a valid scene. ``rng`` is a ``random.Random`` or a seed.

    split="train" never yields a held-out scene; split="heldout" always yields one (at least one object has a
    held-out combination); split="any" yields either.
    """
    if split not in ("train", "heldout", "any"):
        raise ValueError(f"split must be 'train', 'heldout' or 'any', not {split!r}")
    r = _rng(rng)
    J = int(round(_JITTER * size))
    n = n_objects if n_objects is not None else r.choice((1, 2))
    if n not in (1, 2):
        raise ValueError("a scene has 1 or 2 objects")
    while True:
        objs = []
        positions = r.sample(sorted(POSITIONS), n)
        for i in range(n):
            objs.append(Obj(shape=r.choice(SHAPES), colour=r.choice(sorted(COLOURS)), size=r.choice(sorted(SIZES)),
                            position=positions[i]))
        if split == "heldout" and not any(obj_is_held_out(o) for o in objs):
            # force one object into a held-out combination (keeps rejection rate low)
            k = r.randrange(n)
            combos = sorted(HELDOUT_SHAPE_COLOUR) + sorted(HELDOUT_SHAPE_SIZE_COLOUR)
            c = r.choice(combos)
            if len(c) == 2:
                objs[k] = dataclasses.replace(objs[k], shape=c[0], colour=c[1])
            else:
                objs[k] = dataclasses.replace(objs[k], shape=c[0], size=c[1], colour=c[2])
        jit = tuple((r.randint(-J, J), r.randint(-J, J)) for _ in range(n)) if jitter and J > 0 else ()
        scene = Scene(objects=tuple(objs), background=r.choice(sorted(BACKGROUNDS)), size=size, jitter=jit)
        if not scene_is_valid(scene):
            continue
        held = is_held_out(scene)
        if split == "train" and held:
            continue
        if split == "heldout" and not held:
            continue
        return scene


def sample(rng, split: str = "train", size: int = 32, **kw) -> Tuple[Scene, np.ndarray, str]:
    """Scene, its image and a caption, all from the one rng."""
    r = _rng(rng)
    scene = sample_scene(r, split=split, size=size, **kw)
    return scene, render(scene), render_caption(scene, r)


# ----------------------------------------------------------------------------------------------- captions

SHAPE_WORDS: Dict[str, Tuple[str, ...]] = {
    "circle": ("circle", "disc", "disk", "ball", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "cross": ("cross", "plus sign", "plus"),
}
COLOUR_WORDS: Dict[str, Tuple[str, ...]] = {
    "red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
    "purple": ("purple", "violet"), "orange": ("orange",),
}
BACKGROUND_WORDS: Dict[str, Tuple[str, ...]] = {"white": ("white",), "black": ("black",), "gray": ("gray", "grey")}
SIZE_WORDS: Dict[str, Tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
# Caption-side wordings of each position: (postfix phrase, prefix phrase)
POSITION_WORDS: Dict[str, Tuple[str, ...]] = {
    "left": ("on the left", "to the left", "at the left", "on the left side", "on the left-hand side"),
    "right": ("on the right", "to the right", "at the right", "on the right side", "on the right-hand side"),
    "top": ("at the top", "near the top", "on the top", "at the top of the image", "in the upper part"),
    "bottom": ("at the bottom", "near the bottom", "at the bottom of the image", "in the lower part"),
    "center": ("in the center", "in the centre", "in the middle", "at the center", "in the middle of the image"),
}

SINGLE_TEMPLATES = (
    "{o1} {p1}{bg}",
    "there is {o1} {p1}{bg}",
    "an image of {o1} {p1}{bg}",
    "{P1} there is {o1}{bg}",
    "{P1}, {o1}{bg}",
    "a picture showing {o1} {p1}{bg}",
)
PAIR_TEMPLATES = (
    "{o1} {p1} and {o2} {p2}{bg}",
    "there is {o1} {p1} and {o2} {p2}{bg}",
    "{o1} {p1}, {o2} {p2}{bg}",
    "an image of {o1} {p1} and {o2} {p2}{bg}",
    "{P1} there is {o1} and {P2} there is {o2}{bg}",
    "{P1}, {o1}; {P2}, {o2}{bg}",
    "two shapes: {o1} {p1} and {o2} {p2}{bg}",
)
BG_CLAUSES = (" on a {b} background", " with a {b} background", " against a {b} background",
              ". the background is {b}", ", {b} background")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _obj_phrase(o: Obj, r: random.Random) -> str:
    size = r.choice(SIZE_WORDS[o.size])
    colour = r.choice(COLOUR_WORDS[o.colour])
    shape = r.choice(SHAPE_WORDS[o.shape])
    if r.random() < 0.2:
        return f"one {size} {colour} {shape}"
    return f"{_article(size)} {size} {colour} {shape}"


def render_caption(scene: Scene, rng=None, template: Optional[int] = None, background: Optional[bool] = None) -> str:
    """English caption of ``scene``. Wording, object order and whether the background is stated come from rng;
    ``template`` (index into the single/pair template list) and ``background`` can force them."""
    r = _rng(rng)
    objs = list(scene.objects)
    r.shuffle(objs)
    temps = SINGLE_TEMPLATES if len(objs) == 1 else PAIR_TEMPLATES
    t = temps[template if template is not None else r.randrange(len(temps))]
    with_bg = (r.random() < 0.5) if background is None else background
    bg = ""
    if with_bg:
        bg = r.choice(BG_CLAUSES).format(b=r.choice(BACKGROUND_WORDS[scene.background]))
    fields = {"bg": bg}
    for i, o in enumerate(objs, 1):
        fields[f"o{i}"] = _obj_phrase(o, r)
        fields[f"p{i}"] = r.choice(POSITION_WORDS[o.position])
        fields[f"P{i}"] = r.choice(POSITION_WORDS[o.position])
    text = t.format(**fields)
    if r.random() < 0.5:
        text = text[0].upper() + text[1:]
    if r.random() < 0.5:
        text += "."
    return text


# ----------------------------------------------------------------------------------------------- parsing

@dataclasses.dataclass
class ObjConstraint:
    shape: Optional[str] = None
    colour: Optional[str] = None
    size: Optional[str] = None
    position: Optional[str] = None


@dataclasses.dataclass
class Constraints:
    objects: List[ObjConstraint]
    background: Optional[str] = None  # None: not stated, not checked

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _alt(words: Dict[str, Sequence[str]]) -> Tuple[str, Dict[str, str]]:
    lookup = {}
    for key, ws in words.items():
        for w in ws:
            lookup[w] = key
    pat = "|".join(re.escape(w) for w in sorted(lookup, key=len, reverse=True))
    return pat, lookup


_SHAPE_PAT, _SHAPE_LU = _alt(SHAPE_WORDS)
_COLOUR_PAT, _COLOUR_LU = _alt(COLOUR_WORDS)
_SIZE_PAT, _SIZE_LU = _alt(SIZE_WORDS)
_BGC_PAT, _BGC_LU = _alt(BACKGROUND_WORDS)
_POS_PAT, _POS_LU = _alt({k: v + tuple(p.replace("-", " ") for p in v) for k, v in POSITION_WORDS.items()})

_OBJ_RE = re.compile(rf"\b(?:(?P<size>{_SIZE_PAT})\s+)?(?:(?P<colour>{_COLOUR_PAT})\s+)?(?P<shape>{_SHAPE_PAT})\b")
_POS_RE = re.compile(rf"\b(?P<pos>{_POS_PAT})\b")
_BG_RE = re.compile(rf"\b(?:(?:on|with|against|over)\s+(?:a|an|the)\s+)?(?P<c>{_BGC_PAT})\s+background\b"
                    rf"|\bbackground\s+(?:is|colou?r\s+is|:)?\s*(?P<c2>{_BGC_PAT})\b")


class CaptionError(ValueError):
    pass


def parse_caption(text: str) -> Constraints:
    """Constraints stated by a caption. Tolerates case, punctuation and every wording render_caption produces.

    Each object gets the shape, colour and size named in its phrase and the position phrase attached to it:
    positions follow their objects ("a red circle on the left ...") unless the caption opens with a position
    ("on the left there is a red circle and on the right ..."), in which case each precedes its object.
    Raises CaptionError when no object is found.
    """
    t = text.lower().replace("-", " ")
    t = re.sub(r"[^a-z ]+", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    background = None
    m = _BG_RE.search(t)
    if m:
        background = _BGC_LU[m.group("c") or m.group("c2")]
        t = (t[:m.start()] + " " + t[m.end():]).strip()
    # positions first (so "on the top" is not parsed as anything else), then objects outside them
    pos_spans = [(pm.start(), pm.end(), _POS_LU[pm.group("pos")]) for pm in _POS_RE.finditer(t)]
    masked = list(t)
    for s, e, _ in pos_spans:
        masked[s:e] = " " * (e - s)
    masked = "".join(masked)
    objs = []
    obj_starts = []
    for om in _OBJ_RE.finditer(masked):
        objs.append(ObjConstraint(shape=_SHAPE_LU[om.group("shape")],
                                  colour=_COLOUR_LU[om.group("colour")] if om.group("colour") else None,
                                  size=_SIZE_LU[om.group("size")] if om.group("size") else None))
        obj_starts.append(om.start())
    if not objs:
        raise CaptionError(f"no object found in caption {text!r}")
    prefix_mode = bool(pos_spans) and pos_spans[0][0] < obj_starts[0]
    for s, _, pos in pos_spans:
        if prefix_mode:  # the position belongs to the first object after it
            idx = next((i for i, os_ in enumerate(obj_starts) if os_ > s), None)
        else:  # the last object before it
            idx = max((i for i, os_ in enumerate(obj_starts) if os_ < s), default=None)
        if idx is not None and objs[idx].position is None:
            objs[idx].position = pos
    return Constraints(objects=objs, background=background)


def scene_constraints(scene: Scene, with_background: bool = True) -> Constraints:
    """Constraints exactly describing a scene (what a perfect parse of its caption gives)."""
    return Constraints(objects=[ObjConstraint(o.shape, o.colour, o.size, o.position) for o in scene.objects],
                       background=scene.background if with_background else None)


def same_constraints(a: Constraints, b: Constraints) -> bool:
    """Equality up to object order."""
    if a.background != b.background or len(a.objects) != len(b.objects):
        return False
    key = lambda c: (c.shape or "", c.colour or "", c.size or "", c.position or "")
    return sorted(map(key, a.objects)) == sorted(map(key, b.objects))


# ----------------------------------------------------------------------------------------------- hard negatives

def perturb_scene(scene: Scene, rng) -> Tuple[Scene, str]:
    """The same scene with exactly one attribute changed (shape, colour, size, position or background): a
    caption-side negative: the image of the original scene no longer matches it. Returns (scene, attribute)."""
    r = _rng(rng)
    for _ in range(100):
        k = r.randrange(len(scene.objects))
        attr = r.choice(("shape", "colour", "size", "position", "background"))
        o = scene.objects[k]
        if attr == "background":
            new = Scene(scene.objects, r.choice([b for b in sorted(BACKGROUNDS) if b != scene.background]),
                        scene.size, scene.jitter)
        else:
            pool = {"shape": SHAPES, "colour": sorted(COLOURS), "size": sorted(SIZES), "position": sorted(POSITIONS)}
            others = [v for v in pool[attr] if v != getattr(o, attr)]
            if attr == "position":
                others = [v for v in others if all(v != p.position for p in scene.objects)]
            if not others:
                continue
            objs = list(scene.objects)
            objs[k] = dataclasses.replace(o, **{attr: r.choice(others)})
            new = Scene(tuple(objs), scene.background, scene.size, scene.jitter)
        return new, attr
    raise RuntimeError("could not perturb scene")


__all__ = [
    "SHAPES", "COLOURS", "BACKGROUNDS", "SIZES", "POSITIONS", "HELDOUT_SHAPE_COLOUR", "HELDOUT_SHAPE_SIZE_COLOUR",
    "Obj", "Scene", "ObjConstraint", "Constraints", "CaptionError", "extent", "min_gap", "shape_mask",
    "object_boxes", "scene_is_valid", "render", "is_held_out", "obj_is_held_out", "sample_scene", "sample",
    "render_caption", "parse_caption", "scene_constraints", "same_constraints", "perturb_scene",
    "SINGLE_TEMPLATES", "PAIR_TEMPLATES", "BG_CLAUSES",
]
