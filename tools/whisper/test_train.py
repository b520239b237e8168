"""Fast checks of the tiny Whisper's training tools (numpy / torch only; espeak-ng only where installed).

    /usr/bin/python3 -m unittest tools.whisper.test_train      (or: /usr/bin/python3 -m tools.whisper.test_train)
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch

from tools.dalle import safetensors_io as st
from tools.whisper import data as wdata
from tools.whisper import evaluate as wev
from tools.whisper import export as wexp
from tools.whisper import train as wtrain
from tools.whisper import tokenizer as wtok
from tools.whisper.golden import write_wav
from tools.whisper.model import log_mel, transcribe


class RankFile(unittest.TestCase):
    def test_round_trip(self):
        texts = ["a small red circle on the left", "there is a big blue square at the top",
                 "and god said let there be light", "a tiny green plus sign in the middle"] * 5
        tokens = wexp.train_ranks(texts, 300)
        self.assertEqual(tokens[:256], [bytes([b]) for b in wexp.bpe_train.BYTE_ENCODER])  # GPT-2's byte order
        self.assertGreater(len(tokens), 256)
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "vocab.tiktoken")
            wexp.write_ranks(p, tokens)
            with open(p, "rb") as f:
                raw = f.read()
            self.assertEqual(wtok.parse_ranks(raw), tokens)
            line = raw.split(b"\n")[len(tokens) - 1]
            self.assertTrue(line.endswith(b" %d" % (len(tokens) - 1)))
        n_vocab = wexp.n_vocab_for(len(tokens))
        self.assertEqual(n_vocab, len(tokens) + 1510)
        tok = wexp.make_tokenizer(tokens, n_vocab)
        self.assertEqual(tok.eot, len(tokens))
        self.assertEqual(tok.sot, len(tokens) + 1)
        self.assertEqual(tok.special("notimestamps"), len(tokens) + 8)
        self.assertEqual(tok.special("0.00"), len(tokens) + 9)
        self.assertEqual(tok.special("30.00"), n_vocab - 1)
        self.assertFalse(tok.is_multilingual)
        for t in texts[:4] + ["words never seen: xylophone!"]:
            self.assertEqual(tok.decode(tok.encode(t)), t)
        self.assertLess(len(tok.encode(texts[0])), len(texts[0].encode()))  # merges are used


class WordErrorRate(unittest.TestCase):
    def test_hand_made(self):
        self.assertEqual(wev.edit_distance("a b c".split(), "a b c".split()), (0, 0, 0, 0))
        self.assertEqual(wev.edit_distance("a b c".split(), "a x c".split()), (1, 1, 0, 0))
        self.assertEqual(wev.edit_distance("a b c".split(), "a c".split()), (1, 0, 1, 0))
        self.assertEqual(wev.edit_distance("a b c".split(), "a b c d".split()), (1, 0, 0, 1))
        self.assertEqual(wev.edit_distance([], "a b".split()), (2, 0, 0, 2))
        self.assertEqual(wev.edit_distance("a b".split(), []), (2, 0, 2, 0))
        r = wev.wer(["A small red circle, on the left.", "the sky"], ["a small red circle on the left", "a sky blue"])
        self.assertEqual((r["ref_words"], r["substitutions"], r["insertions"], r["deletions"]), (9, 1, 1, 0))
        self.assertAlmostEqual(r["wer"], 2 / 9)
        self.assertAlmostEqual(r["sentence_accuracy"], 0.5)
        # punctuation and case do not count; hyphens split words on both sides alike
        self.assertEqual(wev.wer(["On the left-hand side!"], ["on the left hand side"])["wer"], 0.0)
        # spellings that sound alike are one word; other words are not touched
        self.assertEqual(wev.wer(["a grey disc in the centre"], ["a gray disk in the center"])["wer"], 0.0)
        self.assertEqual(wev.wer(["a grey disc"], ["a green disk"])["wer"], 1 / 3)

    def test_normalize(self):
        self.assertEqual(wdata.normalize_text("On the Left-hand side; it's - 'there'."),
                         "on the left-hand side it's there")


class FrontEnd(unittest.TestCase):
    def test_init_front_end_scales_the_stem_to_the_target(self):
        from tools.whisper.model import Whisper, WhisperDims
        torch.manual_seed(0)
        dims = WhisperDims(n_mels=80, n_audio_ctx=50, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=300, n_text_ctx=16, n_text_state=32, n_text_head=2, n_text_layer=1)
        model = Whisper(dims)
        mel = 0.5 * torch.randn(4, 80, 100) - 0.3
        enc = model.encoder
        before = float(torch.nn.functional.gelu(enc.conv2(torch.nn.functional.gelu(enc.conv1(mel)))).std())
        wtrain.init_front_end(model, mel, 1.0)
        with torch.no_grad():
            h1 = torch.nn.functional.gelu(enc.conv1(mel))
            h2 = torch.nn.functional.gelu(enc.conv2(h1))
        self.assertAlmostEqual(float(h1.std()), 1.0, delta=0.02)
        self.assertAlmostEqual(float(h2.std()), 1.0, delta=0.02)
        self.assertLess(before, 0.3)  # PyTorch's default init: the stem starts far below the sinusoids' 0.65

    def test_window_log_mel_matches_reference(self):
        r = np.random.default_rng(3)
        x = (0.1 * np.sin(np.arange(9000) * 0.07) + 0.01 * r.standard_normal(9000)).astype(np.float32)
        a = wdata.log_mel_window(x, 80, 50)
        self.assertEqual(tuple(a.shape), (80, 100))
        self.assertTrue(torch.equal(a, log_mel(x, 80)[:, :100]))  # same math; the frames past the window differ
        b = wdata.log_mel_batch([x, x[:4000]], 80, 50)
        self.assertLess(float((b[0] - a).abs().max()), 1e-5)
        self.assertLess(float((b[1] - wdata.log_mel_window(x[:4000], 80, 50)).abs().max()), 1e-5)

    def test_resample_sine(self):
        t = np.arange(22050) / 22050.0
        y = wdata.resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), 22050)
        self.assertEqual(len(y), 16000)
        tt = np.arange(16000) / 16000.0
        self.assertLess(float(np.abs(y[200:-200] - np.sin(2 * np.pi * 440 * tt[200:-200])).max()), 1e-3)

    def test_wav_parse(self):
        pcm = (np.arange(-5, 5) * 1000).astype("<i2").tobytes()
        hdr = (b"RIFF" + (0x7fffffff).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
               + np.array([1, 1], "<u2").tobytes() + np.array([22050, 44100], "<u4").tobytes()
               + np.array([2, 16], "<u2").tobytes() + b"data" + (0x7fffffff).to_bytes(4, "little"))
        x, rate = wdata.parse_wav16(hdr + pcm)
        self.assertEqual(rate, 22050)
        self.assertTrue(np.allclose(x * 32768, np.arange(-5, 5) * 1000))


class TrainableModel(unittest.TestCase):
    def test_same_forward_and_a_correct_gradient(self):
        from tools.whisper.model import Whisper, WhisperDims
        import torch.nn.functional as F
        torch.manual_seed(0)
        dims = WhisperDims(80, 20, 32, 2, 1, 300, 16, 32, 2, 1)
        ref = Whisper(dims)
        m = wtrain.make_trainable(Whisper(dims))
        m.load_state_dict(ref.state_dict())
        self.assertEqual(list(m.state_dict()), list(ref.state_dict()))
        mel, x = torch.randn(2, 80, 40), torch.randint(0, 300, (2, 5))
        self.assertTrue(torch.equal(m(mel, x), ref(mel, x)))

        def f():
            return F.cross_entropy(m(mel, x).reshape(-1, 300), x.reshape(-1))
        f().backward()
        v = {n: torch.randn_like(p) for n, p in m.named_parameters()}
        analytic = sum(float((p.grad * v[n]).sum()) for n, p in m.named_parameters())
        eps = 1e-3
        with torch.no_grad():
            for n, p in m.named_parameters():
                p += eps * v[n]
            fp = float(f())
            for n, p in m.named_parameters():
                p -= 2 * eps * v[n]
            fm = float(f())
        numeric = (fp - fm) / (2 * eps)
        self.assertLess(abs(analytic - numeric), 0.05 * abs(numeric) + 1e-3, (analytic, numeric))


def _synthetic_dataset(args, n_train: int = 6, n_held: int = 3) -> dict:
    """Tone sequences standing in for speech: each word a short chirp (enough to run the code paths)."""
    r = np.random.default_rng(0)
    words = ["red", "circle", "blue", "square", "left", "top"]

    def clip_of(text):
        parts = []
        for w in text.split():
            f = 300 + 150 * words.index(w)
            t = np.arange(1600) / 16000.0
            parts.append(0.3 * np.sin(2 * np.pi * f * t) + 0.01 * r.standard_normal(1600))
            parts.append(np.zeros(400))
        return np.clip(np.round(np.concatenate(parts) * 32767), -32768, 32767).astype(np.int16)

    def split(texts):
        audio, offs = wdata.pack([clip_of(t) for t in texts])
        return {"audio": audio, "offsets": offs, "texts": list(texts), "voices": ["en"] * len(texts),
                "speeds": [170] * len(texts), "pitches": [50] * len(texts), "kinds": ["shapes"] * len(texts)}

    texts = ["red circle left", "blue square top", "red square", "blue circle top", "red circle", "blue square left"]
    return {"splits": {"train": split(texts[:n_train]), "heldout_shapes": split(texts[:n_held]),
                       "heldout_general": split(texts[3:3 + n_held])}, "corpus": "synthetic",
            "dropped": {}, "key": wdata.recipe(args)}


class TinyTraining(unittest.TestCase):
    def test_two_steps_make_a_loadable_model_dir(self):
        tmp = tempfile.mkdtemp(prefix="whisper-train-test-")
        try:
            run, data_pt, out = (os.path.join(tmp, n) for n in ("run", "data.pt", "model"))
            argv = ["--out", run, "--data", data_pt, "--minutes", "0", "--max-steps", "2", "--state", "32",
                    "--heads", "2", "--enc-layers", "1", "--dec-layers", "1", "--vocab", "270", "--batch", "3",
                    "--n-audio-ctx", "50", "--n-shapes", "6", "--n-general", "0", "--n-heldout", "3", "--warmup", "1"]
            args = wtrain.parse_args(argv)
            torch.save(_synthetic_dataset(args), data_pt)
            self.assertEqual(wtrain.main(argv), 0)
            self.assertTrue(os.path.exists(os.path.join(run, "state.pt")))
            self.assertEqual(wexp.main(["--ckpt", os.path.join(run, "whisper.pt"), "--out", out]), 0)
            sample = ["sample.txt", "sample.wav"] if wdata.espeak_exe() else []  # the spoken prompt needs espeak-ng
            self.assertEqual(sorted(os.listdir(out)), ["config.json", "model.safetensors"] + sample + ["vocab.tiktoken"])
            if sample:
                with open(os.path.join(out, "sample.txt")) as f:
                    self.assertEqual(f.read(), wexp.SAMPLE_TEXT + "\n")
                self.assertGreater(os.path.getsize(os.path.join(out, "sample.wav")), 16000)
            with open(os.path.join(out, "config.json")) as f:
                cfg = json.load(f)
            self.assertEqual(cfg["model_type"], "whisper")
            self.assertEqual((cfg["n_audio_ctx"], cfg["n_audio_state"], cfg["n_mels"]), (50, 32, 80))
            dims, model, tok = wexp.load_model_dir(out)
            self.assertEqual(dims.n_vocab, len(tok.tokens) + 1510)
            names = list(st.read(os.path.join(out, "model.safetensors"))[0])
            self.assertEqual(names, list(wexp.expected_shapes(dims)))
            self.assertIn("decoder.blocks.0.cross_attn.key.weight", names)
            d = torch.load(data_pt, weights_only=False)
            mel = wdata.log_mel_window(wdata.clip(d["splits"]["heldout_shapes"], 0), dims.n_mels, dims.n_audio_ctx)
            ids, text, _ = transcribe(model, mel, tok, max_tokens=5)
            self.assertLessEqual(len(ids), 5)
            self.assertTrue(all(i < tok.eot for i in ids))
            # a resumed run continues from RUN/state.pt
            argv2 = list(argv)
            argv2[argv2.index("--max-steps") + 1] = "3"
            self.assertEqual(wtrain.main(argv2), 0)
            self.assertEqual(torch.load(os.path.join(run, "state.pt"), weights_only=False)["step"], 3)
            # --init starts a new run from those weights (fresh optimiser: at learning rate 0 they stay as they were)
            run2 = os.path.join(tmp, "run2")
            argv3 = [a if a != run else run2 for a in argv] + ["--init", os.path.join(run, "state.pt"), "--lr", "0"]
            self.assertEqual(wtrain.main(argv3), 0)
            before = torch.load(os.path.join(run, "state.pt"), weights_only=False)
            after = torch.load(os.path.join(run2, "state.pt"), weights_only=False)
            self.assertEqual(after["step"], 2)
            self.assertEqual(after["tokens"], before["tokens"])
            for name, w in before["model_state_dict"].items():
                self.assertTrue(torch.equal(w, after["model_state_dict"][name]), name)
            # the reference's transcript of one WAV, and a clear refusal of a file that is not one
            wav, bad = os.path.join(tmp, "clip.wav"), os.path.join(tmp, "bad.wav")
            write_wav(wav, wdata.clip(d["splits"]["heldout_shapes"], 0))
            with open(bad, "wb") as f:
                f.write(b"RIFX0000")
            out_lines = io.StringIO()
            with contextlib.redirect_stdout(out_lines):
                self.assertEqual(wev.main(["--model-dir", out, "--wav", wav]), 0)
            _, want, _ = transcribe(model, mel, tok)  # the same clip (int16 in the dataset and in the file)
            self.assertEqual(out_lines.getvalue(), want + "\n")
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(wev.main(["--model-dir", out, "--wav", bad]), 2)
            self.assertEqual(err.getvalue(), f"error: {bad}: not a RIFF/WAVE stream\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipIf(wdata.espeak_exe() is None, "espeak-ng is not installed (apt-get install -y espeak-ng)")
class Espeak(unittest.TestCase):
    def test_synthesis_level_and_length(self):
        x = wdata.synthesize("a small red circle on the left", "en-us+f2", 175, 50)
        self.assertTrue(1.0 < len(x) / 16000 < 4.0)
        self.assertTrue(0.02 < wdata.speech_rms(x) < 0.5)

    def test_voice_split(self):
        tr, he = set(wdata.voice_pairs(False)), set(wdata.voice_pairs(True))
        self.assertFalse(tr & he)
        self.assertGreater(len(he), 20)


if __name__ == "__main__":
    unittest.main()
