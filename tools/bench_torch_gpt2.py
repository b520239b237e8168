"""PyTorch reference for `tessera bench text-generation`: the same model directory, the same algorithm (one
batched prompt pass, then one token per step over a KV cache, Hugging Face's logits processors and multinomial
sampling), timed on this machine.

    /usr/bin/python3 tools/bench_torch_gpt2.py MODEL_DIR PROMPT_TOKENS NEW_TOKENS BATCHES RUNS [THREADS]

BATCHES is a comma-separated list (1,8). The prompt is the longest prefix of a fixed English paragraph (whole
words) with at most PROMPT_TOKENS tokens; a second, long prompt fills the model's context less NEW_TOKENS (for the
C++ side's memory figure). Prints one JSON object: the prompts and their token counts, and per batch the median
seconds of the prompt pass and of one generation step, and the torch version.
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from tools.gpt2.export import load_model_dir  # noqa: E402
from tools.gpt2.model import process_logits  # noqa: E402

PARAGRAPH = (
    "The old lighthouse keeper climbed the narrow stairs every evening at dusk, carrying a lantern and a small "
    "notebook in which he wrote down the colour of the sea, the direction of the wind and the names of the ships "
    "that passed the point. In winter the storms came from the north and the waves broke over the rocks below the "
    "tower, throwing white spray against the windows of the lamp room, and he would sit there for hours, listening "
    "to the sound of the water and the creaking of the iron rail. The village children said that he had once been "
    "a sailor who travelled to every port of the southern seas, and that he kept a chest of maps and strange shells "
    "under his bed; he never told them whether this was true, but he smiled when they asked, and sometimes he gave "
    "them a shell or a coin from a country whose name they could not pronounce. ")

SAMPLING = dict(temperature=0.8, top_k=40, top_p=0.95, repetition_penalty=1.1)


def prompt_with_at_most(tok, n_tokens: int) -> str:
    """The longest whole-word prefix of the repeated paragraph with at most n_tokens tokens."""
    words = (PARAGRAPH * (1 + n_tokens // 100)).split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # token count grows with the number of words
        mid = (lo + hi + 1) // 2
        if len(tok.encode(" ".join(words[:mid]))) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def head(model, hidden, past):
    # Only the last position's logits, as the C++ side computes them (a full [B, T, V] head would handicap torch).
    return hidden[:, -1] @ model.wte.weight.t(), past


@torch.no_grad()
def time_batch(model, ids, batch: int, new_tokens: int, runs: int):
    gen = torch.Generator().manual_seed(1)
    prefill, step = [], []
    for r in range(runs + 1):  # run 0 warms up
        x = torch.tensor([ids] * batch, dtype=torch.long)
        t0 = time.perf_counter()
        logits, past = head(model, *model(x, return_hidden=True))
        t1 = time.perf_counter()
        seen = x
        for _ in range(new_tokens):
            probs = torch.softmax(process_logits(logits, seen, **SAMPLING), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)
            seen = torch.cat([seen, nxt], dim=1)
            logits, past = head(model, *model(nxt, past, return_hidden=True))
        t2 = time.perf_counter()
        if r:
            prefill.append(t1 - t0)
            step.append((t2 - t1) / new_tokens)
    return {"prompt_s": statistics.median(prefill), "step_s": statistics.median(step)}


def main() -> int:
    model_dir, prompt_tokens, new_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    batches = [int(b) for b in sys.argv[4].split(",")]
    runs = int(sys.argv[5])
    torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    _, model, tok, _ = load_model_dir(model_dir)
    model.eval()
    ctx = model.cfg.n_positions
    prompt = prompt_with_at_most(tok, min(prompt_tokens, ctx - new_tokens - 1))
    ids = tok.encode(prompt)
    long_prompt = prompt_with_at_most(tok, ctx - new_tokens)
    out = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "sampling": SAMPLING,
        "prompt": prompt, "prompt_tokens": len(ids),
        "long_prompt": long_prompt, "long_prompt_tokens": len(tok.encode(long_prompt)),
        "batches": {str(b): time_batch(model, ids, b, new_tokens, runs) for b in batches},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
