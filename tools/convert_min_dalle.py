"""Convert min-dalle's published checkpoints (DALL·E Mini or Mega) to a Tessera model directory.

    /usr/bin/python3 -m tools.convert_min_dalle --variant mini|mega --src DIR --out models/dalle-mini
        [--dtype f16|f32] [--force]

Input: only min-dalle's PyTorch files (Hugging Face repo kuprel/min-dalle), each a torch.save of a plain
state_dict. --src may be laid out as that repo (flat) or as min-dalle's own download folder ("pretrained"):

  variant  flat (kuprel/min-dalle)                                  min-dalle's pretrained/ folder
  mini     encoder_mini.pt decoder_mini.pt detoker.pt               dalle_bart_mini/{encoder,decoder}.pt,
           vocab_mini.json merges_mini.txt                          dalle_bart_mini/{vocab.json,merges.txt},
                                                                    vqgan/detoker.pt
  mega     encoder.pt decoder.pt detoker.pt vocab.json merges.txt   the same with dalle_bart_mega/

Flax checkpoints (dalle-mini/dalle-mega on Hugging Face), safetensors or other layouts are not read.

Output: the directory format tools/dalle/export.py writes (config.json "tessera.dalle" version 1,
encoder/decoder/detokenizer .safetensors with min-dalle's tensor names unchanged, vocab.json + merges.txt copied
byte for byte). Encoder and decoder are stored in --dtype (default f16, as min-dalle's own converter did), the
detokenizer in f32. The LayerNorm weights the real files lack (spec §1.9) stay absent; the loader treats them as
ones (config "absent_ln_weights_omitted": true).

Every tensor's name and shape is checked against the tables the variant's numbers imply before anything is
written (a metadata-only read of each .pt; the full torch.load happens only in the write pass, one file at a
time, tensor by tensor). Errors name the file and the tensor and exit with code 2; --out is written to a
temporary sibling and renamed into place, so nothing appears there unless the whole conversion succeeded.

Note on Mega: min-dalle's ``image_vocab_count`` is 16415 (it sizes the decoder's 16416 embedding / lm_head rows),
but min-dalle samples only ``logits[:, :16384]`` and the VQGAN codebook has 16384 rows. Tessera's
``image_vocab_size`` is that sampled range (= codebook size, checked by both loaders), so it is 16384 for both
variants; ``decoder_vocab_rows`` is 16385 / 16416 and the original count is kept as
``min_dalle_image_vocab_count``.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import time
import zipfile
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from tools.atomic_dir import atomic_directory
from tools.dalle import export as ex
from tools.dalle.model import DalleConfig, is_absent_ln_weight
from tools.dalle.tokenizer import TextTokenizer
from tools.vq.model import VQConfig

PARTS = ("encoder", "decoder", "detokenizer")

# The real VQGAN detokenizer (spec §1.8), shared by both variants.
REAL_DETOKENIZER = dict(in_channels=3, ch=128, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16],
                        z_channels=256, embed_dim=256, n_embed=16384, resolution=256, max_groups=32, norm_eps=1e-5)

_COMMON = dict(text_token_count=64, bos_id=16383, pad_id=1, image_token_grid=16, image_size=256,
               layer_norm_eps=1e-5, supercondition_factor=16.0, top_k=256, temperature=1.0, image_vocab_size=16384,
               detokenizer=REAL_DETOKENIZER)

# Spec §1.1 (MinDalle.__init__). image_vocab_size is the sampled range (see the module docstring).
VARIANTS: Dict[str, dict] = {
    "mini": dict(_COMMON, name="dalle-mini", text_vocab_size=50264, embed_dim=1024, attention_heads=16,
                 glu_hidden=2730, encoder_layers=12, decoder_layers=12, decoder_vocab_rows=16385,
                 min_dalle_image_vocab_count=16384),
    "mega": dict(_COMMON, name="dalle-mega", text_vocab_size=50272, embed_dim=2048, attention_heads=32,
                 glu_hidden=4096, encoder_layers=24, decoder_layers=24, decoder_vocab_rows=16416,
                 min_dalle_image_vocab_count=16415),
}

# Source file names: flat (the Hugging Face repo kuprel/min-dalle) and min-dalle's own download folder.
FLAT_FILES = {
    "mini": {"encoder": "encoder_mini.pt", "decoder": "decoder_mini.pt", "detokenizer": "detoker.pt",
             "vocab": "vocab_mini.json", "merges": "merges_mini.txt"},
    "mega": {"encoder": "encoder.pt", "decoder": "decoder.pt", "detokenizer": "detoker.pt",
             "vocab": "vocab.json", "merges": "merges.txt"},
}


def pretrained_files(variant: str) -> Dict[str, str]:
    d = "dalle_bart_" + variant
    return {"encoder": os.path.join(d, "encoder.pt"), "decoder": os.path.join(d, "decoder.pt"),
            "detokenizer": os.path.join("vqgan", "detoker.pt"), "vocab": os.path.join(d, "vocab.json"),
            "merges": os.path.join(d, "merges.txt")}


class ConvertError(ValueError):
    """A refusal; the message is shown to the user (exit code 2)."""


_MODEL_FIELDS = ("name", "text_vocab_size", "text_token_count", "embed_dim", "attention_heads", "glu_hidden",
                 "encoder_layers", "decoder_layers", "image_vocab_size", "decoder_vocab_rows", "bos_id", "pad_id",
                 "image_token_grid", "image_size", "layer_norm_eps", "supercondition_factor", "top_k",
                 "temperature")


# ---------------------------------------------------------------------------------------------- config / tables

def make_model_config(variant_config: dict, dtype: str, omit_absent_ln: bool = True,
                      source: Optional[dict] = None) -> dict:
    """config.json content for a variant's numbers (export.make_config plus the min-dalle extras)."""
    try:
        cfg = DalleConfig(**{k: variant_config[k] for k in _MODEL_FIELDS})
        vcfg = VQConfig(**variant_config["detokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConvertError(f"bad variant config: {e}") from None
    notes = ("converted from min-dalle's checkpoints (kuprel/min-dalle) by tools/convert_min_dalle.py; "
             "LayerNorm weights absent from them are omitted (a loader treats them as ones)")
    c = ex.make_config(cfg, ex.detokenizer_config(vcfg), dtype, variant_config["name"], omit_absent_ln, notes)
    c["min_dalle_image_vocab_count"] = int(variant_config.get("min_dalle_image_vocab_count",
                                                              variant_config["image_vocab_size"]))
    if source is not None:
        c["source"] = source
    try:
        ex.check_config(c)
    except ex.ExportError as e:
        raise ConvertError(f"bad variant config: {e}") from None
    return c


def expected_tables(config: dict) -> Dict[str, List[Tuple[str, Tuple[int, ...], bool]]]:
    """part -> [(name, shape, optional)] in model order; optional = an LN weight the real files lack."""
    t = ex.expected_tables(config)
    return {part: [(k, tuple(s), part != "detokenizer" and is_absent_ln_weight(k)) for k, s in t[part]]
            for part in PARTS}


# ---------------------------------------------------------------------------------------------- .pt metadata

class _NotPlain(Exception):
    pass


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        base = name[:-len("Storage")]
        self.dtype = {"Half": "float16", "Float": "float32", "Double": "float64", "BFloat16": "bfloat16",
                      "Long": "int64", "Int": "int32", "Short": "int16", "Char": "int8", "Byte": "uint8",
                      "Bool": "bool"}.get(base, base.lower() or "unknown")


class _TensorInfo:
    def __init__(self, shape, dtype: str):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return _TensorInfo(size, storage.dtype)


def _rebuild_parameter(data, *rest):
    return data


class _MetaUnpickler(pickle.Unpickler):
    """Reads a torch zip checkpoint's data.pkl without touching tensor data; refuses anything unexpected."""

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise _NotPlain(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise _NotPlain(f"persistent id {pid!r}")
        return pid[1]


def _table_from_meta(path: str) -> Optional["OrderedDict[str, Tuple[Tuple[int, ...], str]]"]:
    """name -> (shape, dtype) from a zip-format torch.save without loading the data; None if not possible."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                return None
            with z.open(pkl[0]) as f:
                obj = _MetaUnpickler(f).load()
    except (zipfile.BadZipFile, _NotPlain, pickle.UnpicklingError, EOFError, AttributeError, TypeError,
            ValueError, IndexError):
        return None
    if not isinstance(obj, dict) or not all(isinstance(v, _TensorInfo) for v in obj.values()):
        return None
    return OrderedDict((str(k), (v.shape, v.dtype)) for k, v in obj.items())


def _load_state_dict(path: str) -> dict:
    try:
        sd = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error here
        raise ConvertError(f"{path}: cannot be read by torch.load ({type(e).__name__}: {e})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConvertError(f"{path}: not a plain state_dict (a dict of tensors); only min-dalle's .pt files "
                           f"are supported")
    return sd


def read_table(path: str) -> "OrderedDict[str, Tuple[Tuple[int, ...], str]]":
    """name -> (shape, dtype name) of a checkpoint; metadata only when possible, else a full torch.load."""
    t = _table_from_meta(path)
    if t is not None:
        return t
    sd = _load_state_dict(path)
    t = OrderedDict((k, (tuple(v.shape), str(v.dtype).replace("torch.", ""))) for k, v in sd.items())
    del sd
    return t


# ---------------------------------------------------------------------------------------------- checking

def _shape(s) -> str:
    return "[" + ", ".join(str(int(x)) for x in s) + "]"


def check_table(label: str, found: "OrderedDict[str, Tuple[Tuple[int, ...], str]]",
                table: List[Tuple[str, Tuple[int, ...], bool]], limit: int = 10) -> List[str]:
    """Problems of one file against its expected table (empty list: fine)."""
    want = {k: (s, opt) for k, s, opt in table}
    problems = []
    for k, (shape, dtype) in found.items():
        if k not in want:
            problems.append(f"{label}: unexpected tensor '{k}' with shape {_shape(shape)}")
        elif tuple(shape) != want[k][0]:
            problems.append(f"{label}: tensor '{k}': expected shape {_shape(want[k][0])}, found {_shape(shape)}")
        elif dtype not in ("float16", "float32", "float64", "bfloat16"):
            problems.append(f"{label}: tensor '{k}' has dtype {dtype}, expected a floating-point tensor")
    for k, s, opt in table:
        if k not in found and not opt:
            problems.append(f"{label}: missing tensor '{k}' (expected shape {_shape(s)})")
    if len(problems) > limit:
        problems = problems[:limit] + [f"{label}: ... and {len(problems) - limit} more problems"]
    return problems


def _variant_hint(found_tables: Dict[str, dict]) -> str:
    """'these look like the mega files' when embed_tokens matches another real variant."""
    enc = found_tables.get("encoder") or {}
    if "embed_tokens.weight" not in enc:
        return ""
    shape = tuple(enc["embed_tokens.weight"][0])
    for name, v in VARIANTS.items():
        if shape == (v["text_vocab_size"], v["embed_dim"]):
            return f"(the encoder's embed_tokens.weight {_shape(shape)} is DALL·E {name}'s: try --variant {name})"
    return ""


def check_tokenizer(variant_config: dict, vocab_path: str, merges_path: str) -> List[str]:
    """Parse the tokenizer files as min-dalle does; errors raise, warnings are returned."""
    warnings = []
    try:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        with open(merges_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"tokenizer files: {e}") from None
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise ConvertError(f"{vocab_path}: expected a JSON object mapping tokens to integer ids")
    if not lines or not lines[0].startswith("#version"):
        warnings.append(f"{merges_path}: first line is not '#version...'; min-dalle drops it anyway, "
                        f"Tessera keeps it as a merge")
    try:
        tok = TextTokenizer(vocab, [m for m in lines[1:] if m.strip()])
    except ValueError as e:
        raise ConvertError(f"{vocab_path} / {merges_path}: {e}") from None
    n = variant_config["text_vocab_size"]
    big = sorted((i, s) for s, i in vocab.items() if i >= n or i < 0)
    if big:
        ex_ = ", ".join(f"{s!r}={i}" for i, s in big[:3])
        warnings.append(f"{vocab_path}: {len(big)} token id(s) outside the encoder's {n} rows ({ex_}); "
                        f"harmless unless the tokenizer emits them")
    del tok
    return warnings


# ---------------------------------------------------------------------------------------------- writing

_NP = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4")}
_TORCH = {"F16": torch.float16, "F32": torch.float32}


def safetensors_header(entries: List[Tuple[str, str, Tuple[int, ...]]], metadata: Dict[str, str]) -> bytes:
    """The 8-byte length + padded JSON header for tensors stored back to back in ``entries`` order, byte for
    byte what tools.dalle.safetensors_io.serialize writes."""
    header: Dict[str, object] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    off = 0
    for name, dt, shape in entries:
        n = int(np.prod(shape, dtype=np.int64)) * _NP[dt].itemsize
        header[name] = {"dtype": dt, "shape": [int(s) for s in shape], "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return len(h).to_bytes(8, "little") + h


def _convert_tensor(label: str, name: str, t: torch.Tensor, dt: str) -> np.ndarray:
    if not torch.isfinite(t).all():
        raise ConvertError(f"{label}: tensor '{name}' holds non-finite values")
    out = t.detach().to(_TORCH[dt]).contiguous()
    if dt == "F16" and t.dtype != torch.float16 and not torch.isfinite(out).all():
        raise ConvertError(f"{label}: tensor '{name}' overflows float16 (max |x| = "
                           f"{t.abs().max().item():.4g}); convert with --dtype f32")
    return out.numpy()


def write_part(path: str, label: str, sd: dict, table, dt: str, metadata: Dict[str, str]) -> Tuple[int, int, int]:
    """Stream one safetensors file from a loaded state_dict (popped as it goes, so memory falls).
    Returns (tensors written, absent LN weights left out, bytes)."""
    entries, omitted = [], 0
    for name, shape, opt in table:
        if name in sd:
            if tuple(sd[name].shape) != shape:  # the metadata pass already checked this; the data must agree
                raise ConvertError(f"{label}: tensor '{name}': expected shape {_shape(shape)}, "
                                   f"found {_shape(sd[name].shape)}")
            entries.append((name, dt, shape))
        elif opt:
            omitted += 1
        else:
            raise ConvertError(f"{label}: missing tensor '{name}' (expected shape {_shape(shape)})")
    extra = sorted(set(sd) - {k for k, _, _ in table})
    if extra:
        raise ConvertError(f"{label}: unexpected tensor '{extra[0]}' with shape {_shape(sd[extra[0]].shape)}")
    with open(path, "wb") as f:
        f.write(safetensors_header(entries, metadata))
        for name, _, _ in entries:
            a = _convert_tensor(label, name, sd.pop(name), dt)
            f.write(a.data if a.size else b"")
            del a
    return len(entries), omitted, os.path.getsize(path)


def _remove_empty(dirs: List[str]) -> None:
    for d in dirs:  # deepest first
        try:
            os.rmdir(d)
        except OSError:
            break


def _dir_nonempty(p: str) -> bool:
    return os.path.isdir(p) and bool(os.listdir(p))


def convert(variant_config: dict, src_files: Dict[str, str], out: str, dtype: str = "f16", force: bool = False,
            log: Callable[..., None] = print) -> str:
    """Check and convert. ``src_files``: encoder, decoder, detokenizer (.pt), vocab, merges -> paths.
    Raises ConvertError (nothing written at ``out``) on any problem. Returns the output directory."""
    t_start = time.time()
    if dtype not in ("f16", "f32"):
        raise ConvertError(f"--dtype must be f16 or f32, not {dtype!r}")
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConvertError(f"--out {out} exists and is not a directory")
    if _dir_nonempty(out) and not force:
        raise ConvertError(f"--out {out} exists and is not empty (use --force to replace it)")
    for key in PARTS + ("vocab", "merges"):
        p = src_files.get(key)
        if not p or not os.path.isfile(p):
            raise ConvertError(f"{key} file {p!r} not found")

    dt = dtype.upper()
    source = {"from": "min-dalle (kuprel/min-dalle)", "files": {k: os.path.basename(src_files[k])
                                                                for k in PARTS + ("vocab", "merges")}}
    config = make_model_config(variant_config, dtype, True, source)
    tables = expected_tables(config)
    name = config["name"]

    # ---- pass 1: names, shapes and dtypes of every file, and the tokenizer, before anything is written
    found, problems = {}, []
    for part in PARTS:
        label = os.path.basename(src_files[part])
        found[part] = read_table(src_files[part])
        problems += check_table(label, found[part], tables[part])
    if problems:
        hint = _variant_hint(found)
        raise ConvertError(f"the {name} checkpoints do not match the expected tables:\n  " + "\n  ".join(problems)
                           + (f"\n  {hint}" if hint else ""))
    for w in check_tokenizer(variant_config, src_files["vocab"], src_files["merges"]):
        log(f"warning: {w}", flush=True)
    omitted_total = sum(1 for part in PARTS for k, _, opt in tables[part] if opt and k not in found[part])
    config["absent_ln_weights_omitted"] = omitted_total > 0
    stored = sum(len(found[p]) for p in PARTS)
    log(f"checked {stored} tensors in 3 files against the {name} tables "
        f"({omitted_total} absent LayerNorm weights will be treated as ones)", flush=True)

    # disk space: tensors in their output dtypes plus the tokenizer files
    need = sum(int(np.prod(s, dtype=np.int64)) * (4 if part == "detokenizer" else _NP[dt].itemsize)
               for part in PARTS for k, s, _ in tables[part] if k in found[part])
    need += os.path.getsize(src_files["vocab"]) + os.path.getsize(src_files["merges"]) + (1 << 20)
    parent = os.path.dirname(out)
    probe = parent
    while not os.path.isdir(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    if free < need:
        raise ConvertError(f"not enough disk space under {probe}: need {need / 1e9:.2f} GB, "
                           f"{free / 1e9:.2f} GB free")
    del found

    # ---- pass 2: write into a temporary sibling, one checkpoint at a time, then rename into place
    created = []  # parent directories made here, removed again if the conversion fails
    d = parent
    while not os.path.isdir(d):
        created.append(d)
        d = os.path.dirname(d)
    os.makedirs(parent, exist_ok=True)
    total_bytes = 0
    try:
        with atomic_directory(out) as tmp:
            for part in PARTS:
                t0 = time.time()
                src = src_files[part]
                label = os.path.basename(src)
                part_dt = "F32" if part == "detokenizer" else dt
                sd = _load_state_dict(src)
                meta = {"format": ex.FORMAT, "format_version": str(ex.FORMAT_VERSION), "part": part,
                        "source": "min-dalle " + label}
                n, omitted, size = write_part(os.path.join(tmp, ex.FILES[part]), label, sd, tables[part], part_dt, meta)
                del sd
                total_bytes += size
                extra = f", {omitted} absent LN weights omitted" if omitted else ""
                log(f"{part}: {label} -> {ex.FILES[part]}: {n} tensors, {size / 1e6:.1f} MB {part_dt}{extra} "
                    f"({time.time() - t0:.1f} s)", flush=True)
            for key in ("vocab", "merges"):
                shutil.copyfile(src_files[key], os.path.join(tmp, ex.FILES[key]))
                size = os.path.getsize(src_files[key])
                total_bytes += size
                log(f"{key}: {os.path.basename(src_files[key])} -> {ex.FILES[key]} ({size / 1e6:.2f} MB, copied)",
                    flush=True)
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(config, f, indent=1)
                f.write("\n")
    except BaseException:
        _remove_empty(created)
        raise
    log(f"converted {name} ({dtype} encoder/decoder, f32 detokenizer) to {out}: {total_bytes / 1e9:.2f} GB in "
        f"{time.time() - t_start:.0f} s", flush=True)
    return out


# ---------------------------------------------------------------------------------------------- CLI

def resolve_sources(variant: str, src: str) -> Dict[str, str]:
    if not os.path.isdir(src):
        raise ConvertError(f"--src {src}: not a directory")
    layouts = [FLAT_FILES[variant], pretrained_files(variant)]
    for files in layouts:
        paths = {k: os.path.join(src, v) for k, v in files.items()}
        if all(os.path.isfile(p) for p in paths.values()):
            return paths
    flat = {k: os.path.join(src, v) for k, v in layouts[0].items()}
    missing = [os.path.basename(p) for p in flat.values() if not os.path.isfile(p)]
    raise ConvertError(f"--src {src}: missing {', '.join(missing)} for --variant {variant} (expected "
                       f"{', '.join(layouts[0].values())} from kuprel/min-dalle, or min-dalle's pretrained/ folder "
                       f"with {', '.join(layouts[1].values())})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python3 -m tools.convert_min_dalle",
        description="Convert min-dalle's published DALL·E Mini/Mega checkpoints (the .pt files of the Hugging "
                    "Face repo kuprel/min-dalle, downloaded by you) to a Tessera model directory. Only min-dalle's "
                    ".pt state_dicts are read; Flax checkpoints (dalle-mini/dalle-mega) and other layouts are not "
                    "supported.",
        epilog="mini needs encoder_mini.pt decoder_mini.pt detoker.pt vocab_mini.json merges_mini.txt; mega needs "
               "encoder.pt decoder.pt detoker.pt vocab.json merges.txt (or min-dalle's own pretrained/ folder: "
               "dalle_bart_<variant>/ and vqgan/). Exit code 2 on any refusal; nothing is written then.")
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS), help="mini (DALL·E Mini) or mega")
    ap.add_argument("--src", required=True, help="directory holding min-dalle's files")
    ap.add_argument("--out", required=True, help="model directory to create, e.g. models/dalle-mini")
    ap.add_argument("--dtype", default="f16", choices=("f16", "f32"),
                    help="encoder/decoder weights (default f16; the detokenizer is always f32)")
    ap.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        if _dir_nonempty(os.path.abspath(args.out)) and not args.force:
            raise ConvertError(f"--out {os.path.abspath(args.out)} exists and is not empty (use --force to "
                               f"replace it)")
        files = resolve_sources(args.variant, args.src)
        convert(VARIANTS[args.variant], files, args.out, args.dtype, args.force)
    except (ConvertError, ex.ExportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
