"""Pixel-analysis judge: does an image show exactly what a shapes-world caption states?

Pipeline (numpy only):
  1. every pixel is assigned to the nearest palette colour (6 object colours + 3 backgrounds); the background is
     the most frequent background label and must be the majority label of the image border;
  2. foreground = pixels whose nearest palette colour is not the background; 8-connected components below
     ``min_area`` (noise specks, blur fringes) are dropped;
  3. per component: colour = nearest palette colour to the median of its most saturated pixels; shape, side and
     placement by analysis by synthesis (fit_shape): every shape, sharp and 3x3-blurred, at sides/offsets near the
     measured box, compared with the component's colour-coverage map; the lowest error wins ("unknown" when even
     that is poor or the box is far from square). Size from the fitted side (threshold half way between small and
     large), position from the fitted centre (center if within 0.12 W of the image centre, else the dominant axis
     of the offset). Hard-mask descriptors (fill ratio, symmetry, best template IoU) are reported in details;
  4. the caption's constraints (world.parse_caption) must match the detected objects one to one (any order),
     every stated attribute equal, no extra object; the background is checked only when the caption states it.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import world

_OBJ_NAMES = sorted(world.COLOURS)
_BG_NAMES = sorted(world.BACKGROUNDS)
_NAMES = _OBJ_NAMES + _BG_NAMES
_PALETTE = np.array([world.COLOURS[n] for n in _OBJ_NAMES] + [world.BACKGROUNDS[n] for n in _BG_NAMES], np.float32)
_N_OBJ = len(_OBJ_NAMES)

MAX_FIT_ERR = 0.12  # mean squared coverage error over the fitted bounding box above which the shape is unknown
SNAP_DIST = 60.0  # an object colour this close to a palette colour is taken to be it when computing coverage
MAX_COLOUR_DIST = 110.0  # an object's median colour must be this close (RGB L2) to a palette colour


def _labels(img: np.ndarray) -> np.ndarray:
    x = img.reshape(-1, 3).astype(np.float32)
    d = ((x[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(-1)
    return d.argmin(1).reshape(img.shape[:2])


def _components(mask: np.ndarray) -> List[np.ndarray]:
    """8-connected components of a boolean mask as arrays of (y, x) pixel coordinates."""
    H, W = mask.shape
    seen = np.zeros_like(mask, bool)
    comps = []
    ys, xs = np.nonzero(mask)
    for y0, x0 in zip(ys.tolist(), xs.tolist()):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        q = deque([(y0, x0)])
        pix = []
        while q:
            y, x = q.popleft()
            pix.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < H and 0 <= nx < W and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        q.append((ny, nx))
        comps.append(np.array(pix, np.int64))
    return comps


@functools.lru_cache(maxsize=None)
def _templates(e: int) -> np.ndarray:
    """(2 * len(SHAPES), e + 2, e + 2) float32: each shape of side e, then the same shapes after a 3x3 box blur,
    with a one-pixel margin (where the blur spreads)."""
    sharp = np.zeros((len(world.SHAPES), e + 2, e + 2), np.float32)
    for i, s in enumerate(world.SHAPES):
        sharp[i, 1:-1, 1:-1] = world.shape_mask(s, e)
    p = np.pad(sharp, ((0, 0), (1, 1), (1, 1)))
    blurred = sum(p[:, dy:dy + e + 2, dx:dx + e + 2] for dy in range(3) for dx in range(3)) / 9.0
    return np.concatenate([sharp, blurred]).astype(np.float32)


def fit_shape(alpha: np.ndarray, bbox: Tuple[int, int, int, int]) -> dict:
    """Analysis by synthesis: the shape, side and placement (sharp or 3x3-blurred) that best explains ``alpha``
    (H x W coverage map in [0, 1] of one object's colour) near the measured bounding box (x0, y0, w, h).

    Tries sides max(w, h) - 3 .. + 2 (a blur fringe can inflate the box, lost tips shrink it) and placements within one pixel of the box centre; returns the best shape,
    its side, its bbox, whether the blurred template won, and the per-shape best mean squared error (over the
    shape's bounding box)."""
    x0, y0, w, h = bbox
    m = max(w, h)
    P = m + 6
    a = np.pad(alpha.astype(np.float32), P)
    cx2, cy2 = 2 * x0 + w, 2 * y0 + h  # twice the bbox centre (image coords)
    n = len(world.SHAPES)
    best_err = np.full(n, np.inf, np.float32)
    best = None
    for e in range(max(2, m - 3), m + 3):
        T = _templates(e)
        area = float(e * e)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                tx = (cx2 - e) // 2 + dx  # shape bbox top-left, image coords
                ty = (cy2 - e) // 2 + dy
                # window: template with its one-pixel margin, plus the rest of the object's neighbourhood
                wx0, wy0 = x0 - 3 + P, y0 - 3 + P
                win = a[wy0:wy0 + h + 6, wx0:wx0 + w + 6]
                canvas = np.zeros((2 * n,) + win.shape, np.float32)
                ox, oy = tx - 1 - (x0 - 3), ty - 1 - (y0 - 3)
                # clip the template into the window
                sx0, sy0 = max(0, -ox), max(0, -oy)
                ex, ey = min(e + 2, win.shape[1] - ox), min(e + 2, win.shape[0] - oy)
                canvas[:, oy + sy0:oy + ey, ox + sx0:ox + ex] = T[:, sy0:ey, sx0:ex]
                err = ((canvas - win[None]) ** 2).sum((1, 2)) / area
                err2 = np.minimum(err[:n], err[n:])
                best_err = np.minimum(best_err, err2)
                k = int(err.argmin())
                if best is None or err[k] < best[0]:
                    best = (float(err[k]), k % n, e, (int(tx), int(ty)), k >= n)
    err, k, e, (tx, ty), blurred = best
    return {"shape": world.SHAPES[k], "err": err, "side": e, "bbox": [tx, ty, e, e], "blurred": bool(blurred),
            "errs": {s: round(float(v), 4) for s, v in zip(world.SHAPES, best_err)}}


def classify_shape(mask: np.ndarray) -> Tuple[str, Dict[str, float]]:
    """Hard-mask descriptors of a component cropped to its bounding box: best template IoU, fill ratio of the
    bounding box, left/right and up/down symmetry. (The decision uses fit_shape; these are reported.)"""
    h, w = mask.shape
    ious = {}
    for s in world.SHAPES:
        t = world.shape_mask(s, w, h)
        inter = np.logical_and(t, mask).sum()
        union = np.logical_or(t, mask).sum()
        ious[s] = float(inter) / float(max(union, 1))
    best = max(ious, key=ious.get)
    desc = {"fill": round(float(mask.mean()), 3), "sym_lr": round(float((mask == mask[:, ::-1]).mean()), 3),
            "sym_ud": round(float((mask == mask[::-1, :]).mean()), 3), "iou": round(ious[best], 3)}
    return best, desc


def _position(cx: float, cy: float, W: int, H: int) -> str:
    dx, dy = cx / W - 0.5, cy / H - 0.5
    if max(abs(dx), abs(dy)) < 0.12:
        return "center"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def analyze(image: np.ndarray) -> dict:
    """Detected background and objects of an image (H x W x 3 uint8)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"expected an H x W x 3 image, got shape {img.shape}")
    img = img[:, :, :3]
    H, W = img.shape[:2]
    lab = _labels(img)
    counts = np.bincount(lab.ravel(), minlength=len(_NAMES))
    bg_idx = _N_OBJ + int(np.argmax(counts[_N_OBJ:]))
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    border_frac = float((border == bg_idx).mean())
    result = {"background": _NAMES[bg_idx], "background_frac": round(float(counts[bg_idx]) / lab.size, 3),
              "border_frac": round(border_frac, 3), "objects": [], "ignored_specks": 0}
    if border_frac < 0.5 or counts[bg_idx] < 0.4 * lab.size:
        result["background"] = None  # no recognisable uniform background
    side = min(H, W)
    e_small, e_large = world.extent("small", side), world.extent("large", side)
    min_area = max(4, int(0.15 * e_small * e_small))
    size_thr = 0.5 * (e_small + e_large)
    fg = lab != bg_idx
    imgf = img.astype(np.float32)
    bg_rgb = np.median(imgf[lab == bg_idx], axis=0) if counts[bg_idx] else _PALETTE[bg_idx]
    comps = []
    for pix in _components(fg):
        if len(pix) < min_area:
            result["ignored_specks"] += 1
        else:
            comps.append(pix)
    owner = np.full((H, W), -1, np.int64)
    for i, pix in enumerate(comps):
        owner[pix[:, 0], pix[:, 1]] = i
    for i, pix in enumerate(comps):
        y0, x0 = pix.min(0)
        y1, x1 = pix.max(0)
        m = np.zeros((y1 - y0 + 1, x1 - x0 + 1), bool)
        m[pix[:, 0] - y0, pix[:, 1] - x0] = True
        # object colour: median of its most saturated pixels (farthest from the background: blur fringes and
        # mixed edge pixels excluded), snapped to the palette when close to it
        px = imgf[pix[:, 0], pix[:, 1]]
        dist_bg = np.sqrt(((px - bg_rgb) ** 2).sum(-1))
        core = px[dist_bg >= np.quantile(dist_bg, 0.6)]
        med = np.median(core, axis=0)
        d = np.sqrt(((_PALETTE - med[None]) ** 2).sum(-1))
        ci = int(d.argmin())
        colour = _NAMES[ci] if (ci < _N_OBJ and d[ci] <= MAX_COLOUR_DIST) else "unknown"
        ref = _PALETTE[ci] if (ci < _N_OBJ and d[ci] <= SNAP_DIST) else med
        # coverage of this object's colour over the background, other objects blanked out
        cb = ref - bg_rgb
        alpha = np.clip(((imgf - bg_rgb) @ cb) / max(float(cb @ cb), 1.0), 0.0, 1.0)
        alpha[(owner >= 0) & (owner != i)] = 0.0
        bw, bh = int(x1 - x0 + 1), int(y1 - y0 + 1)
        fit = fit_shape(alpha, (int(x0), int(y0), bw, bh))
        shape = fit["shape"]
        _, desc = classify_shape(m)
        if fit["err"] > MAX_FIT_ERR or not (0.6 <= bw / bh <= 1.67):
            shape = "unknown"
        size = "large" if fit["side"] >= size_thr else "small"
        tx, ty, e, _ = fit["bbox"]
        cx, cy = tx + 0.5 * e, ty + 0.5 * e
        result["objects"].append({
            "shape": shape, "colour": colour, "size": size, "position": _position(cx, cy, W, H),
            "bbox": fit["bbox"], "mask_bbox": [int(x0), int(y0), bw, bh], "area": int(len(pix)),
            "rgb": [int(round(v)) for v in med], "fit_err": round(fit["err"], 4), "fit_blurred": fit["blurred"],
            "fit_errs": fit["errs"], **desc})
    return result


_ATTRS = ("shape", "colour", "size", "position")


def _mismatches(c: world.ObjConstraint, o: dict) -> List[str]:
    out = []
    for a in _ATTRS:
        want = getattr(c, a)
        if want is not None and o[a] != want:
            out.append(f"{a}: wanted {want}, found {o[a]}")
    return out


def judge_constraints(image: np.ndarray, cons: world.Constraints) -> Tuple[bool, dict]:
    det = analyze(image)
    details = {"constraints": cons.to_dict(), "detected": det, "reasons": []}
    reasons = details["reasons"]
    if det["background"] is None:
        reasons.append("no uniform background found")
    elif cons.background is not None and det["background"] != cons.background:
        reasons.append(f"background: wanted {cons.background}, found {det['background']}")
    objs = det["objects"]
    if len(objs) != len(cons.objects):
        reasons.append(f"object count: caption states {len(cons.objects)}, image has {len(objs)}")
    else:
        best = None
        for perm in itertools.permutations(range(len(objs))):
            mm = []
            for ci, oi in enumerate(perm):
                mm += [f"object {ci + 1}: {s}" for s in _mismatches(cons.objects[ci], objs[oi])]
            if best is None or len(mm) < len(best):
                best = mm
        reasons.extend(best or [])
    details["ok"] = not reasons
    return not reasons, details


def judge(image: np.ndarray, caption: str) -> Tuple[bool, dict]:
    """(ok, details): ok when the image shows exactly the objects (and background, if stated) of the caption.

    details has "reasons" (empty when ok), "detected" (analysis of the image) and "constraints" (the parse).
    A caption that names no object gives ok=False with the parse error as reason.
    """
    try:
        cons = world.parse_caption(caption)
    except world.CaptionError as e:
        return False, {"reasons": [str(e)], "constraints": None, "detected": None, "ok": False}
    return judge_constraints(image, cons)


def explain(details: dict) -> str:
    if details.get("ok"):
        return "ok"
    return "; ".join(details.get("reasons", [])) or "not ok"


__all__ = ["judge", "judge_constraints", "analyze", "classify_shape", "explain"]
