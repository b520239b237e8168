"""PyTorch reference for `tessera bench text-to-image`: the same exported model directory, the same algorithm
(cached decoder, text keys/values computed once, super-conditioning, top-k), timed on this machine.

    /usr/bin/python3 tools/bench_torch_dalle.py MODEL_DIR IMAGES RUNS [THREADS]

Prints one JSON object: median seconds of encode, decode and detokenize per run, and the torch version.
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from tools.dalle.export import load_model_dir  # noqa: E402
from tools.dalle.model import generate  # noqa: E402


def main() -> int:
    model_dir, images, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    cfg, model, tok, vq = load_model_dir(model_dir)
    T = cfg["text_token_count"]
    ids = tok.tokenize("a small red circle on the left and a large blue square at the bottom")[:T]
    cond = ids + [1] * (T - len(ids))
    uncond = [ids[0], ids[-1]] + [1] * (T - 2)
    text_cond = torch.tensor([cond] * images, dtype=torch.long)
    text_uncond = torch.tensor([uncond] * images, dtype=torch.long)
    times = {"encode": [], "decode": [], "detokenize": []}
    with torch.no_grad():
        for r in range(runs + 1):  # the first run warms up
            g = torch.Generator().manual_seed(r + 1)
            t0 = time.perf_counter()
            model.encoder(torch.cat([text_uncond, text_cond], 0))
            t1 = time.perf_counter()
            tokens = generate(model, text_uncond, text_cond, generator=g)  # encodes again inside: subtract below
            t2 = time.perf_counter()
            vq.decode_uint8(tokens)
            t3 = time.perf_counter()
            if r:
                times["encode"].append(t1 - t0)
                times["decode"].append(max(t2 - t1 - (t1 - t0), 1e-9))
                times["detokenize"].append(t3 - t2)
    print(json.dumps({k: statistics.median(v) for k, v in times.items()} | {"torch": torch.__version__,
                                                                           "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
