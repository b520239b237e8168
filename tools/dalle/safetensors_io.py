"""Hand-written safetensors reader/writer (numpy only).

File layout: 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON
``{name: {"dtype": "F32"|"F16"|"I32"|"I64"|"U8"|..., "shape": [...], "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}`` padded with spaces so that 8 + N is a multiple of 8, then the raw little-endian,
row-major tensor data; offsets are relative to the start of the data and tensors are stored back to back in the
order given (no gaps).
"""
from __future__ import annotations

import json
import struct
from collections import OrderedDict
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np

DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"),
          "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"), "U8": np.dtype("u1"),
          "BOOL": np.dtype("?")}
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def dtype_name(a: np.ndarray) -> str:
    for name, dt in DTYPES.items():
        if a.dtype.kind == dt.kind and a.dtype.itemsize == dt.itemsize:
            return name
    raise SafetensorsError(f"unsupported dtype {a.dtype}")


def serialize(tensors: Union[Mapping, Iterable[Tuple[str, object]]], metadata: Optional[Dict[str, str]] = None
              ) -> bytes:
    items = list(tensors.items()) if isinstance(tensors, Mapping) else list(tensors)
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name, t in items:
        if name == "__metadata__" or name in header:
            raise SafetensorsError(f"bad or duplicate tensor name {name!r}")
        a = _as_numpy(t)
        dn = dtype_name(a)
        raw = np.ascontiguousarray(a, dtype=DTYPES[dn]).tobytes()
        header[name] = {"dtype": dn, "shape": [int(s) for s in a.shape], "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write(path: str, tensors, metadata: Optional[Dict[str, str]] = None) -> int:
    data = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def parse(buf: bytes) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    if len(buf) < 8:
        raise SafetensorsError("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER or 8 + n > len(buf):
        raise SafetensorsError(f"header length {n} does not fit the file ({len(buf)} bytes)")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as ex:
        raise SafetensorsError(f"header is not JSON: {ex}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(buf)[8 + n:]
    entries = []
    for name, e in header.items():
        try:
            dt = DTYPES[e["dtype"]]
            shape = tuple(int(s) for s in e["shape"])
            b, end = (int(x) for x in e["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"tensor {name!r}: bad header entry {e!r}") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if b < 0 or end > len(data) or end - b != count * dt.itemsize or any(s < 0 for s in shape):
            raise SafetensorsError(f"tensor {name!r}: offsets {b}..{end} do not match shape {list(shape)} "
                                   f"{e['dtype']} or the file size")
        entries.append((b, end, name, dt, shape))
    entries.sort()
    pos = 0
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for b, end, name, dt, shape in entries:
        if b != pos:
            raise SafetensorsError(f"tensor {name!r}: data not contiguous (starts at {b}, expected {pos})")
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(shape).copy()
        pos = end
    if pos != len(data):
        raise SafetensorsError(f"{len(data) - pos} trailing bytes after the last tensor")
    return out, dict(meta)


def read(path: str) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    with open(path, "rb") as f:
        return parse(f.read())
