"""PyTorch reference for `tessera bench speech`: the same Whisper model directory, the same audio and the same
algorithm as the tessera.whisper plugin (log-mel over the whole clip plus one window of zeros, each window
encoded, then greedy or beam decoding with the plugin's rules over a KV cache), timed on this machine.

    /usr/bin/python3 tools/bench_torch_whisper.py MODEL_DIR WAV RUNS THREADS BEAM MAX_TOKENS
    /usr/bin/python3 tools/bench_torch_whisper.py MODEL_DIR MANIFEST.tsv 1 THREADS BEAM MAX_TOKENS

WAV: 16 kHz mono 16-bit PCM. BEAM 1 is greedy. Prints one JSON object: median seconds of the whole
transcription and of its parts (log_mel, encode, decode), the tokens decoded, the text, the torch version.
A manifest (lines "file.wav<TAB>reference text", files relative to it) is transcribed clip by clip once: total
seconds and audio seconds, the word error rate against the references (tools/whisper/evaluate.py's), the texts.
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from tools.whisper.convert import load_model_dir  # noqa: E402
from tools.whisper.golden import read_wav  # noqa: E402
from tools.whisper.model import beam_decode, greedy_decode, initial_tokens, log_mel, mel_windows  # noqa: E402


@torch.no_grad()
def transcribe_once(model, dims, tok, samples, beam: int, max_tokens: int):
    W = 2 * dims.n_audio_ctx
    t0 = time.perf_counter()
    mel = log_mel(samples, dims.n_mels, W)
    t1 = time.perf_counter()
    init = initial_tokens(tok, "en")
    t_enc = t_dec = 0.0
    ids = []
    for window in mel_windows(mel, len(samples), W) or [mel[:, :W]]:
        a = time.perf_counter()
        feats = model.encoder(window.contiguous()[None])
        b = time.perf_counter()
        if beam > 1:
            got, _ = beam_decode(model, feats, tok, init, beam, max_tokens)
        else:
            got, _ = greedy_decode(model, feats, tok, init, max_tokens)
        t_enc += b - a
        t_dec += time.perf_counter() - b
        ids.append(got)
    return time.perf_counter() - t0, t1 - t0, t_enc, t_dec, ids, tok


def run_manifest(model, dims, tok, manifest: str, beam: int, max_tokens: int) -> dict:
    from tools.whisper.evaluate import wer
    base = os.path.dirname(os.path.abspath(manifest))
    refs, hyps, seconds, audio_seconds = [], [], 0.0, 0.0
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            name, ref = line.rstrip("\n").split("\t", 1)
            samples = read_wav(os.path.join(base, name))
            total, _, _, _, ids, _ = transcribe_once(model, dims, tok, samples, beam, max_tokens)
            seconds += total
            audio_seconds += len(samples) / 16000.0
            refs.append(ref)
            hyps.append("".join(tok.decode(i) for i in ids).strip())
    return {"seconds": seconds, "audio_seconds": audio_seconds, "wer": wer(refs, hyps)["wer"], "texts": hyps,
            "torch": torch.__version__}


def main() -> int:
    model_dir, wav, runs, threads, beam, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
        int(sys.argv[5]), int(sys.argv[6])
    torch.set_num_threads(threads)
    dims, model, tok = load_model_dir(model_dir)
    if wav.endswith(".tsv"):
        out = run_manifest(model, dims, tok, wav, beam, max_tokens)
        out["threads"] = threads
        print(json.dumps(out))
        return 0
    samples = read_wav(wav)
    results = [transcribe_once(model, dims, tok, samples, beam, max_tokens) for _ in range(runs + 1)][1:]
    med = lambda k: statistics.median(r[k] for r in results)  # noqa: E731
    ids = results[0][4]
    print(json.dumps({"seconds": med(0), "log_mel": med(1), "encode": med(2), "decode": med(3),
                      "tokens": sum(len(i) for i in ids), "windows": len(ids),
                      "text": "".join(tok.decode(i) for i in ids).strip(), "audio_seconds": len(samples) / 16000.0,
                      "torch": torch.__version__, "threads": threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
