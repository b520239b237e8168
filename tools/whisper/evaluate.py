"""Word error rate of a Whisper model directory on the held-out espeak-ng sets of tools.whisper.data.

    /usr/bin/python3 -m tools.whisper.evaluate --model-dir models/tiny-whisper [--data WORK/data.pt]
        [--json-out WORK/eval.json] [--n 200] [--beam 0] [--threads 1] [data options of tools.whisper.data]
    /usr/bin/python3 -m tools.whisper.evaluate --model-dir models/tiny-whisper --wav speech.wav   # one transcript

Each held-out clip (200 shapes-world utterances with held-out attribute combinations, 200 held-out general
sentences; every one in a voice never used for training, with seeded noise) goes through
``data.log_mel_window`` (the C++ front end's window) and ``tools.whisper.model.transcribe`` (the reference decoding
rules; greedy unless --beam). Word error rate = word-level Levenshtein distance (substitutions, deletions,
insertions) summed over a set / reference words summed, on lower-cased, punctuation-stripped words
(``data.wer_words``). Prints one line per set and writes everything (per-utterance hypotheses too) as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import torch

from tools.whisper import data as wdata
from tools.whisper import export as wexp
from tools.whisper.model import transcribe


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[int, int, int, int]:
    """(distance, substitutions, deletions, insertions) of a minimal alignment of hyp to ref."""
    n, m = len(ref), len(hyp)
    # d[i][j] = (cost, subs, dels, ins) for ref[:i] vs hyp[:j]
    prev = [(j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            if ref[i - 1] == hyp[j - 1]:
                best = prev[j - 1]
            else:
                s, d, ins = prev[j - 1], prev[j], cur[j - 1]
                best = min((s[0] + 1, s[1] + 1, s[2], s[3]), (d[0] + 1, d[1], d[2] + 1, d[3]),
                           (ins[0] + 1, ins[1], ins[2], ins[3] + 1))
            cur.append(best)
        prev = cur
    return prev[m]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> Dict[str, float]:
    """Corpus word error rate of hypothesis texts against reference texts."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    tot = [0, 0, 0, 0]
    words = 0
    exact = 0
    for r, h in zip(refs, hyps):
        rw, hw = wdata.wer_words(r), wdata.wer_words(h)
        e = edit_distance(rw, hw)
        tot = [a + b for a, b in zip(tot, e)]
        words += len(rw)
        exact += int(rw == hw)
    return {"wer": tot[0] / max(1, words), "substitutions": tot[1], "deletions": tot[2], "insertions": tot[3],
            "ref_words": words, "utterances": len(refs), "sentence_accuracy": exact / max(1, len(refs))}


@torch.no_grad()
def run_set(model, tok, dims, split: dict, n: int, beam: int) -> Tuple[Dict[str, float], List[dict]]:
    rows = []
    audio_s = 0.0
    t0 = time.time()
    for i in range(min(n, len(split["texts"]))):
        x = wdata.clip(split, i)
        audio_s += len(x) / wdata.SAMPLE_RATE
        mel = wdata.log_mel_window(x, dims.n_mels, dims.n_audio_ctx)
        _, text, _ = transcribe(model, mel, tok, beam_size=beam)
        rows.append({"ref": split["texts"][i], "hyp": text, "voice": split["voices"][i], "speed": split["speeds"][i],
                     "pitch": split["pitches"][i]})
    el = time.time() - t0
    res = wer([r["ref"] for r in rows], [r["hyp"] for r in rows])
    res.update({"seconds": round(el, 1), "audio_seconds": round(audio_s, 1),
                "pytorch_real_time_factor": round(el / max(audio_s, 1e-9), 4)})
    for r in rows:
        r["errors"] = edit_distance(wdata.wer_words(r["ref"]), wdata.wer_words(r["hyp"]))[0]
    return res, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.whisper.evaluate")
    ap.add_argument("--model-dir", default="models/tiny-whisper")
    ap.add_argument("--data", default="/tmp/tiny-whisper-work/data.pt")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--n", type=int, default=200, help="utterances per held-out set")
    ap.add_argument("--beam", type=int, default=0, help="0: greedy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sets", default="heldout_shapes,heldout_general")
    ap.add_argument("--wav", default="", help="print the reference's transcript of this 16 kHz mono 16-bit WAV (its "
                    "first window) and stop")
    wdata.add_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dims, model, tok = wexp.load_model_dir(args.model_dir)
    if args.wav:
        from tools.whisper.golden import read_wav
        from tools.whisper.convert import ConvertError
        try:
            x = read_wav(args.wav)
        except (ConvertError, OSError) as ex:
            print(f"error: {ex}", file=sys.stderr)
            return 2
        with torch.no_grad():
            _, text, _ = transcribe(model, wdata.log_mel_window(x, dims.n_mels, dims.n_audio_ctx), tok,
                                    beam_size=args.beam)
        print(text)
        return 0
    if dims.n_audio_ctx != args.n_audio_ctx:
        args.n_audio_ctx = dims.n_audio_ctx  # the data recipe follows the model's window
    try:
        d = wdata.load_or_build_data(args.data, args)
    except wdata.DataError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    out = {"model_dir": os.path.abspath(args.model_dir), "dims": dims.to_dict(), "beam": args.beam, "sets": {}}
    for name in args.sets.split(","):
        res, rows = run_set(model, tok, dims, d["splits"][name], args.n, args.beam)
        out["sets"][name] = {**res, "rows": rows}
        print(f"{name}: WER {100 * res['wer']:.2f}% over {res['ref_words']} words of {res['utterances']} utterances "
              f"(sub {res['substitutions']}, del {res['deletions']}, ins {res['insertions']}; sentences exact "
              f"{100 * res['sentence_accuracy']:.1f}%; {res['seconds']:.0f}s, PyTorch RTF "
              f"{res['pytorch_real_time_factor']:.3f})", flush=True)
        worst = sorted(rows, key=lambda r: -r["errors"])[:3]
        for r in worst:
            if r["errors"]:
                print(f"    ref: {r['ref']}\n    hyp: {r['hyp']}  [{r['voice']} s{r['speed']} p{r['pitch']}]")
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
