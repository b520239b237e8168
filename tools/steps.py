"""What the training tools share: cached datasets keyed by their recipe, golden-vector files, and the retrain
drivers' steps (each a ``python3 -m`` module run from the repository root, timed, stopping the driver when it
fails)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Callable, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def load_or_build(path: str, key: dict, builder: Callable[[], dict], describe: Optional[Callable[[dict], str]] = None,
                  log=print) -> dict:
    """The dict saved at ``path`` when it was built with the same ``key``; otherwise ``builder()``, saved there
    (atomically) with the key. An unreadable cache is rebuilt. ``describe`` says what a reused one holds."""
    import torch  # only the trainers need it

    if os.path.exists(path):
        try:
            d = torch.load(path)
            if d.get("key") == key:
                log(f"data: reusing {path}" + (f" ({describe(d)})" if describe else ""), flush=True)
                return d
        except Exception:  # unreadable cache: rebuild
            pass
    d = builder()
    d["key"] = key
    tmp = path + ".tmp"
    torch.save(d, tmp)
    os.replace(tmp, path)
    return d


def run_step(step: str, args, timings: dict) -> None:
    """Runs ``python3 -m ARGS`` from the repository root; records its seconds in ``timings[step]``."""
    cmd = [PY, "-m"] + [str(a) for a in args]
    print(f"== {step}: {' '.join(cmd)}", flush=True)
    t0 = time.time()
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rc = subprocess.call(cmd, cwd=REPO, env=env)
    timings[step] = round(time.time() - t0, 1)
    print(f"== {step}: done in {timings[step]:.0f}s (exit {rc})", flush=True)
    if rc != 0:
        raise SystemExit(f"retrain: step {step!r} failed with exit code {rc}")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_golden(out_dir: str, tensors, meta: dict, fmt: str, stem: str = "golden") -> None:
    """Golden vectors as the parity tests read them: OUT/STEM.safetensors (``fmt`` in its metadata) and the
    description OUT/STEM.json."""
    from tools.dalle import safetensors_io as st

    os.makedirs(out_dir, exist_ok=True)
    st.write(os.path.join(out_dir, stem + ".safetensors"), tensors, {"format": fmt})
    with open(os.path.join(out_dir, stem + ".json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=True)
        f.write("\n")
