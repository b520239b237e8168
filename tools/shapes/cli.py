"""Command line of the shapes world (run as ``/usr/bin/python3 -m tools.shapes ...``).

  sample --n 16 --seed 1 --out DIR [--size 32] [--split train|heldout|any]
      writes DIR/000000.png ... , DIR/captions.txt ("file<TAB>caption" per line) and DIR/scenes.jsonl
  judge IMAGE.png "caption" [--json]
      prints "ok" or "not ok: <why>", exit status 0 (ok) or 1 (not ok)

Bad arguments or unreadable files: a message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import zlib
from typing import List, Optional

import numpy as np

from . import judge as judge_mod
from . import world


# ----------------------------------------------------------------------------------------------- PNG I/O

def write_png(path: str, img: np.ndarray) -> None:
    """8-bit RGB PNG written with zlib + struct (no PIL needed)."""
    a = np.ascontiguousarray(np.asarray(img, np.uint8))
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"write_png wants H x W x 3 uint8, got {a.shape}")
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: str) -> np.ndarray:
    """H x W x 3 uint8. Uses PIL when installed; otherwise decodes 8-bit non-interlaced gray/RGB/RGBA/gray+alpha
    PNGs itself (enough for the files this tool and numpy-based generators write)."""
    try:
        from PIL import Image  # type: ignore
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.uint8).copy()
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if tag == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
    if hdr is None:
        raise ValueError(f"{path}: PNG without IHDR")
    w, h, depth, ctype, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (bit depth {depth}, colour type {ctype}, interlace {interlace});"
                         " install python3-pil")
    raw = zlib.decompress(b"".join(idat))
    stride = w * channels
    out = np.zeros((h, stride), np.uint8)
    prev = bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ft == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 255
        out[y] = np.frombuffer(bytes(line), np.uint8)
        prev = line
    px = out.reshape(h, w, channels)
    if channels in (1, 2):
        return np.repeat(px[:, :, :1], 3, axis=2)
    return px[:, :, :3].copy()


# ----------------------------------------------------------------------------------------------- commands

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit status 2 with a clear message (argparse default, made explicit)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(v: str) -> int:
    try:
        i = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {v!r}")
    if i <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {v}")
    return i


def _image_size(v: str) -> int:
    i = _positive(v)
    if i < 16:
        raise argparse.ArgumentTypeError(f"image size must be at least 16 (got {i})")
    return i


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python3 -m tools.shapes", description="Seeded synthetic shapes world and its pixel judge.")
    sub = p.add_subparsers(dest="cmd", metavar="{sample,judge}", parser_class=_Parser)
    s = sub.add_parser("sample", help="write seeded images + captions")
    s.add_argument("--n", type=_positive, default=16, help="number of images (default 16)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--out", required=True, help="output directory (created if missing)")
    s.add_argument("--size", type=_image_size, default=32, help="image side in pixels (default 32)")
    s.add_argument("--split", choices=("train", "heldout", "any"), default="train")
    j = sub.add_parser("judge", help="judge one image against a caption")
    j.add_argument("image", help="PNG file")
    j.add_argument("caption", help="caption text (quote it)")
    j.add_argument("--json", action="store_true", help="print the full analysis as JSON")
    return p


def cmd_sample(args) -> int:
    os.makedirs(args.out, exist_ok=True)
    r = random.Random(args.seed)
    lines, scenes = [], []
    for i in range(args.n):
        scene, img, cap = world.sample(r, split=args.split, size=args.size)
        name = f"{i:06d}.png"
        write_png(os.path.join(args.out, name), img)
        lines.append(f"{name}\t{cap}\n")
        scenes.append(json.dumps({"file": name, "caption": cap, "scene": scene.to_dict()}) + "\n")
    with open(os.path.join(args.out, "captions.txt"), "w") as f:
        f.writelines(lines)
    with open(os.path.join(args.out, "scenes.jsonl"), "w") as f:
        f.writelines(scenes)
    print(f"wrote {args.n} images, captions.txt and scenes.jsonl to {args.out}")
    return 0


def cmd_judge(args) -> int:
    if not os.path.isfile(args.image):
        print(f"error: no such file: {args.image}", file=sys.stderr)
        return 2
    try:
        img = read_png(args.image)
    except Exception as e:  # unreadable / unsupported image
        print(f"error: cannot read {args.image}: {e}", file=sys.stderr)
        return 2
    try:
        world.parse_caption(args.caption)
    except world.CaptionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ok, details = judge_mod.judge(img, args.caption)
    if args.json:
        print(json.dumps(details, indent=1, default=str))
    print("ok" if ok else f"not ok: {judge_mod.explain(details)}")
    return 0 if ok else 1


def main(argv: Optional[List[str]] = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.cmd is None:
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: a command is required (sample or judge)", file=sys.stderr)
        return 2
    return cmd_sample(args) if args.cmd == "sample" else cmd_judge(args)


if __name__ == "__main__":
    sys.exit(main())
