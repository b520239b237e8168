"""Tests of tools.whisper: name tables, model math, KV cache, mel front end, tokenizer, decoding rules, the converter
(round trip and refusals), the golden tool at small dims.

    /usr/bin/python3 -m unittest tools.whisper.test_whisper -v      # ctest: whisper_tools (tests/python/whisper.cmake)
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import os
import shutil
import tempfile
import unittest
from collections import OrderedDict
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import torch

from tools.dalle import safetensors_io as st
from tools.whisper import convert, golden
from tools.whisper.model import (KVCache, MultiHeadAttention, Whisper, WhisperDims, beam_decode, expected_shapes,
                                 greedy_decode, initial_tokens, log_mel, mel_filters, mel_windows, param_table,
                                 sinusoids, suppress, transcribe)
from tools.whisper.tokenizer import (LANGUAGES, Tokenizer, TokenizerError, num_languages, parse_ranks,
                                     serialize_ranks)

torch.set_num_threads(1)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYS_DIR = next((os.path.join(d, "specs", "keys") for d in (os.path.join(REPO, "shared"),
                 os.path.join(REPO, "..", "shared"), "/work/shared")
                 if os.path.isdir(os.path.join(d, "specs", "keys"))), None)

N_RANKS = 300  # small synthetic vocabularies: n_vocab = 300 + 1509 + 99


def small_dims(**over) -> WhisperDims:
    d = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=4, n_audio_layer=2, n_vocab=N_RANKS + 1608,
             n_text_ctx=40, n_text_state=32, n_text_head=4, n_text_layer=2)
    d.update(over)
    return WhisperDims(**d)


def small_model(dims: WhisperDims, seed: int = 0) -> Whisper:
    m = Whisper(dims).eval()
    m.load_state_dict(golden.random_state_dict(dims, seed, eot=N_RANKS))
    return m


@functools.lru_cache(maxsize=None)
def ranks(n: int):
    return tuple(golden.synthetic_ranks(n, 0))


def small_tokenizer(n_vocab: int = N_RANKS + 1608) -> Tokenizer:
    return Tokenizer(ranks(N_RANKS), n_vocab)


def tone_samples(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return golden.speech_like(seconds, seed)


def read_keys(name: str):
    with open(os.path.join(KEYS_DIR, name)) as f:
        rows = [ln.split("\t") for ln in f.read().splitlines() if ln and not ln.startswith("#")]
    return [(r[0], tuple(json.loads(r[1]))) for r in rows]


# ---------------------------------------------------------------------------------------------- model

class TestModel(unittest.TestCase):
    @unittest.skipIf(KEYS_DIR is None, "shared/specs/keys not found")
    def test_key_tables(self):
        tiny = WhisperDims(80, 1500, 384, 6, 4, 51865, 448, 384, 6, 4)
        v3 = WhisperDims(128, 1500, 1280, 20, 32, 51866, 448, 1280, 20, 32)
        for dims, fname in ((tiny, "whisper_tiny.txt"), (v3, "whisper_large-v3.txt")):
            want = read_keys(fname)
            self.assertEqual(list(expected_shapes(dims).items()), want, fname)
            self.assertEqual(param_table(dims), want, fname)  # the module's state_dict, same order

    def test_sinusoids(self):
        s = sinusoids(50, 16).double()
        inc = math.log(10000) / 7
        for t, j in ((0, 0), (7, 3), (49, 7)):
            self.assertAlmostEqual(float(s[t, j]), math.sin(t * math.exp(-inc * j)), places=6)
            self.assertAlmostEqual(float(s[t, 8 + j]), math.cos(t * math.exp(-inc * j)), places=6)

    def test_attention_math(self):
        torch.manual_seed(0)
        a = MultiHeadAttention(16, 2)
        self.assertIsNone(a.key.bias)
        x = torch.randn(1, 5, 16)
        y, _ = a(x, causal=True)
        q, k, v = (t.reshape(5, 2, 8).transpose(0, 1) for t in (a.query(x)[0], a.key(x)[0], a.value(x)[0]))
        w = q @ k.transpose(1, 2) / math.sqrt(8) + torch.triu(torch.full((5, 5), -math.inf), 1)
        want = a.out((torch.softmax(w, -1) @ v).transpose(0, 1).reshape(5, 16))
        torch.testing.assert_close(y[0], want, rtol=1e-5, atol=1e-6)

    def test_kv_cache_matches_teacher_forcing(self):
        dims = small_dims()
        m = small_model(dims)
        feats = torch.randn(1, 1500, 32)
        toks = torch.randint(0, dims.n_vocab, (2, dims.n_text_ctx))
        with torch.no_grad():
            full = m.decoder(toks, feats)
            for chunk in (1, 3, 7):
                cache, outs = KVCache(), []
                for s in range(0, toks.shape[1], chunk):
                    outs.append(m.decoder(toks[:, s:s + chunk], feats, cache))
                torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-4, atol=1e-4)
                self.assertEqual(cache.offset, dims.n_text_ctx)
            with self.assertRaisesRegex(ValueError, "exceed n_text_ctx"):
                m.decoder(toks[:, :1], feats, cache)

    def test_encoder_checks_the_frame_count(self):
        m = small_model(small_dims())
        with self.assertRaisesRegex(ValueError, r"gives \[1000, 32\], the positional embedding is \[1500, 32\]"):
            m.encoder(torch.zeros(1, 80, 2000))


# ---------------------------------------------------------------------------------------------- audio

class TestAudio(unittest.TestCase):
    def test_mel_filters_known_values(self):
        # by hand: max mel = 15 + 27 ln 8 / ln 6.4 = 45.2456; band edges f_k = hz(k * max / (n + 1)), hz(m) = 200/3 m
        # below 15 mel, 1000 exp(ln(6.4)/27 (m - 15)) above; weight = min(rising, falling) * 2 / (f2 - f0).
        # n=80 row 0: f = 0, 37.2392, 74.4784; bin 1 (40 Hz): (74.4784 - 40) / 37.2392 * 2 / 74.4784 = 0.0248626
        want = {(80, 0, 1): 0.024862594, (80, 10, 10): 0.019908219, (80, 40, 43): 0.014735566,
                (80, 79, 192): 0.0031647117, (128, 0, 1): 0.012373986, (128, 40, 24): 0.040376365,
                (128, 127, 195): 0.0050416017}
        for (n, r, b), v in want.items():
            self.assertAlmostEqual(float(mel_filters(n)[r, b]) / v, 1.0, delta=2e-7, msg=(n, r, b))

    def test_mel_filters_properties(self):
        for n in (80, 128):
            w = mel_filters(n).astype(np.float64)
            self.assertEqual(w.shape, (n, 201))
            self.assertEqual(mel_filters(n).dtype, np.float32)
            self.assertTrue((w >= 0).all() and (w.max(1) > 0).all())
            logstep = math.log(6.4) / 27
            mels = np.linspace(0, 15 + math.log(8) / logstep, n + 2)
            f = np.where(mels < 15, mels * 200 / 3, 1000 * np.exp(logstep * (mels - 15)))
            for i in range(n):
                height = 2 / (f[i + 2] - f[i])  # slaney: unit area over Hz, so the apex is 2 / base
                self.assertLessEqual(w[i].max(), height * (1 + 1e-6))
                self.assertIn(int(w[i].argmax()), (math.floor(f[i + 1] / 40), math.ceil(f[i + 1] / 40)))
                if f[i + 2] - f[i] >= 400:  # at least 10 bins under the triangle: the Riemann sum is the area
                    self.assertAlmostEqual(w[i].sum() * 40.0, 1.0, delta=0.02)
                nz = np.nonzero(w[i])[0] * 40.0
                self.assertTrue((nz > f[i]).all() and (nz < f[i + 2]).all())

    def test_log_mel_shape_and_floor(self):
        x = tone_samples(2.0)
        m = log_mel(x, 80)
        self.assertEqual(tuple(m.shape), (80, (len(x) + 480000) // 160))
        self.assertEqual(m.dtype, torch.float32)
        floor = float(m.max()) - 2.0  # max - 8 in log10 units is max - 2 after (x + 4) / 4
        self.assertGreaterEqual(float(m.min()), floor - 1e-6)
        self.assertLess(abs(float(m[:, -500:].max()) - floor), 1e-6)  # the 30 s of zeros sit on the floor
        self.assertEqual(tuple(log_mel(tone_samples(1.0), 128).shape), (128, 3100))

    def test_log_mel_matches_a_direct_dft(self):
        x = tone_samples(1.0, seed=3).astype(np.float64)
        m = log_mel(x.astype(np.float32), 80).double().numpy()
        padded = np.concatenate([x, np.zeros(480000)])
        padded = np.pad(padded, 200, mode="reflect")
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic
        fil = mel_filters(80).astype(np.float64)
        for t in (0, 1, 37, 99):
            power = np.abs(np.fft.rfft(padded[t * 160:t * 160 + 400] * hann)) ** 2
            want = (np.log10(np.maximum(fil @ power, 1e-10)) + 4) / 4
            keep = want > m.max() - 2 + 1e-3  # above the floor
            np.testing.assert_allclose(m[keep, t], want[keep], atol=2e-4)

    def test_windows(self):
        for n, count in ((0, 0), (159, 0), (160, 1), (480000, 1), (480160, 2), (504000, 2), (960000, 2)):
            mel = torch.zeros(80, (n + 480000) // 160)
            w = mel_windows(mel, n)
            self.assertEqual(len(w), count, n)
            self.assertTrue(all(tuple(x.shape) == (80, 3000) for x in w))


# ---------------------------------------------------------------------------------------------- tokenizer

class TestTokenizer(unittest.TestCase):
    def test_special_ids(self):
        toks = golden.synthetic_ranks(N_RANKS, 0)
        for n_vocab, L in ((N_RANKS + 1608, 99), (N_RANKS + 1609, 100)):
            t = Tokenizer(toks, n_vocab)
            R = N_RANKS
            self.assertEqual((t.eot, t.sot, t.n_languages), (R, R + 1, L))
            self.assertEqual(t.language_token("en"), R + 2)
            self.assertEqual(t.language_token(LANGUAGES[L - 1]), R + 1 + L)
            self.assertEqual(t.special("transcribe"), R + 3 + L)
            self.assertEqual(t.special("<|notimestamps|>"), R + 7 + L)
            self.assertEqual(t.timestamp_begin, R + 8 + L)
            self.assertEqual(t.special("30.00"), n_vocab - 1)
            self.assertEqual(t.space_token, 220)
            self.assertEqual(t.is_multilingual, n_vocab >= 51865)
        with self.assertRaisesRegex(KeyError, "'yue' is not one of this tokenizer's 99 languages"):
            Tokenizer(toks, N_RANKS + 1608).language_token("yue")
        # a model of our own may have fewer languages (the bundled one: English only); none at all does not fit
        self.assertEqual(Tokenizer(toks, N_RANKS + 1510).n_languages, 1)
        with self.assertRaises(TokenizerError) as cm:
            Tokenizer(toks, N_RANKS + 1509)
        self.assertEqual(str(cm.exception), "300 ranks do not fit n_vocab 1809 (0 language tokens; 1 to 100 expected)")
        # OpenAI's checkpoints have 99 or 100 (the converter's check)
        with self.assertRaises(TokenizerError) as cm:
            num_languages(N_RANKS, N_RANKS + 1607)
        self.assertEqual(str(cm.exception), "300 ranks do not fit n_vocab 1907 (1907 - 300 - 1509 = 98 language "
                                            "tokens; 99 or 100 expected)")

    def test_rank_file(self):
        toks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello", b" w", b" wor", b" world", b""]
        data = serialize_ranks(toks)
        self.assertTrue(data.startswith(b"AA== 0\n"))
        self.assertEqual(parse_ranks(data), toks)
        self.assertEqual(parse_ranks(data.replace(b"\n", b"\r\n") + b"\n"), toks)
        self.assertEqual(parse_ranks(b"IQ== 1\nIg== 0\n= 2\n"), [b'"', b"!", b""])  # "=" is the empty token
        for bad, msg in ((b"IQ== 0\nIg== 2\n", "rank 1 is missing"), (b"IQ== 0\nIQ== 1\n", "appears twice"),
                         (b"IQ== 0\nIg==\n", "line 2: expected 'BASE64 RANK'"), (b"I*== 0\n", "bad base64"),
                         (b"IQ== 0\nIg== 0\n", "rank 0 appears twice"), (b"\n", "no ranks")):
            with self.assertRaisesRegex(TokenizerError, msg):
                parse_ranks(bad)

    def test_encode_decode(self):
        toks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello", b" w", b" wor", b" world"]
        t = Tokenizer(toks, len(toks) + 1608)
        self.assertEqual(t.encode("hello world"), [259, 262])
        self.assertEqual(t.encode("hell wo"), [258, 260, ord("o")])
        for s in ("hello world", " na\u00efve caf\u00e9 \U0001F642\n\tx", "It's 2024!"):
            self.assertEqual(t.decode(t.encode(s)), s)
        self.assertEqual(t.decode([259, t.eot, 262, t.sot, t.timestamp_begin]), "hello world")
        self.assertEqual(t.decode([0xC3]), "\ufffd")  # a lone UTF-8 lead byte
        self.assertEqual(t.token_bytes(t.sot), b"<|startoftranscript|>")


# ---------------------------------------------------------------------------------------------- decoding

class TestDecoding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dims = small_dims()
        cls.tok = small_tokenizer()
        cls.models = [small_model(cls.dims, s) for s in range(4)]
        cls.feats = [torch.randn(1, 1500, 32, generator=torch.Generator().manual_seed(s)) for s in range(3)]

    def test_initial_tokens(self):
        t = self.tok  # n_vocab 1908 < 51865: English-only by the rule
        self.assertFalse(t.is_multilingual)
        self.assertEqual(initial_tokens(t), [t.sot, t.special("notimestamps")])
        ml = Tokenizer(ranks(50257), 51865)
        self.assertTrue(ml.is_multilingual)
        self.assertEqual(initial_tokens(ml), [50258, 50259, 50359, 50363])
        self.assertEqual(initial_tokens(ml, "de"), [50258, 50261, 50359, 50363])
        v3 = Tokenizer(ranks(50257), 51866)
        self.assertEqual(initial_tokens(v3, "yue"), [50258, 50358, 50360, 50364])
        en = Tokenizer(ranks(50256), 51864)
        self.assertFalse(en.is_multilingual)
        self.assertEqual(initial_tokens(en), [50257, 50362])

    def test_suppress(self):
        x = torch.arange(self.dims.n_vocab, dtype=torch.float32)
        a, b = suppress(x, self.tok, first=True), suppress(x, self.tok, first=False)
        eot = self.tok.eot
        self.assertTrue(np.isneginf(a[eot:]).all() and np.isneginf(a[220]) and np.isfinite(a[:220]).all())
        self.assertTrue(np.isneginf(b[eot + 1:]).all() and np.isfinite(b[:eot + 1]).all())

    def test_greedy_is_argmax_of_teacher_forcing(self):
        stops = 0
        for m in self.models:
            for f in self.feats:
                init = initial_tokens(self.tok)
                ids, margins = greedy_decode(m, f, self.tok, init, 30)
                stopped = len(margins) == len(ids) + 1
                stops += stopped
                seq = init + ids + ([self.tok.eot] if stopped else [])
                with torch.no_grad():
                    lg = m.decoder(torch.tensor([seq[:-1]]), f)[0, len(init) - 1:]
                for i in range(len(seq) - len(init)):
                    x = suppress(lg[i], self.tok, first=i == 0)
                    self.assertEqual(int(np.argmax(x)), seq[len(init) + i])
                    top = np.sort(x)[-2:]
                    self.assertAlmostEqual(margins[i], float(top[1] - top[0]), places=4)
                self.assertTrue(all(0 <= t < self.tok.eot for t in ids) and ids[0] != 220)
        self.assertGreater(stops, 0)  # some runs end on eot

    def test_beam_size_1_is_greedy(self):
        for m in self.models:
            for f in self.feats:
                init = initial_tokens(self.tok)
                for n in (1, 5, 30):
                    self.assertEqual(beam_decode(m, f, self.tok, init, 1, n)[0], greedy_decode(m, f, self.tok, init,
                                                                                            n)[0])

    def _beam_reference(self, m, f, init, B, max_tokens):
        """The beam rules again, each hypothesis teacher-forced from scratch (no cache)."""
        beams, finished, step = [([], 0.0)], [], 0
        while True:
            cands = []
            for b, (toks, score) in enumerate(beams):
                with torch.no_grad():
                    lg = m.decoder(torch.tensor([init + toks]), f)[0, -1]
                lp = torch.log_softmax(torch.from_numpy(suppress(lg, self.tok, step == 0)).double(), -1).numpy()
                best = sorted(range(len(lp)), key=lambda i: (-lp[i], i))[:B + 1]
                cands += [(score + lp[t], b, t) for t in best]
            cands.sort(key=lambda c: -c[0])
            nxt = []
            for score, b, t in cands:
                if t == self.tok.eot:
                    finished.append((beams[b][0], score))
                elif len(nxt) < B:
                    nxt.append((beams[b][0] + [t], score))
                if len(nxt) == B:
                    break
            beams, step = nxt, step + 1
            if len(finished) >= B or step >= max_tokens or len(init) + step >= self.dims.n_text_ctx:
                break
        pool = finished or beams
        norms = [s / max(1, len(t)) for t, s in pool]
        return pool[norms.index(max(norms))]

    def test_beam_matches_uncached_reference(self):
        seen_finished = 0
        init = initial_tokens(self.tok)
        for m in self.models[:3]:
            for f in self.feats[:2]:
                for B, n in ((2, 12), (4, 8)):
                    info = {}
                    got = beam_decode(m, f, self.tok, init, B, n, info)
                    want = self._beam_reference(m, f, init, B, n)
                    self.assertEqual(got[0], want[0])
                    self.assertAlmostEqual(got[1], want[1], places=4)
                    seen_finished += info["from_finished"]
        self.assertGreater(seen_finished, 0)

    def test_context_limit(self):
        dims = small_dims(n_text_ctx=7)
        m = small_model(dims, 5)
        init = initial_tokens(self.tok)
        f = self.feats[0]
        room = dims.n_text_ctx - len(init)
        ids, _ = greedy_decode(m, f, self.tok, init, 100)
        self.assertLessEqual(len(ids), room)
        info = {}
        ids, _ = beam_decode(m, f, self.tok, init, 3, 100, info)
        self.assertLessEqual(info["steps"], room)
        self.assertEqual(greedy_decode(m, f, self.tok, init, 0), ([], []))

    def test_transcribe(self):
        m = self.models[0]
        x = tone_samples(2.0, 1)
        win = mel_windows(log_mel(x, 80), len(x))[0]
        ids, text, margins = transcribe(m, win, self.tok, max_tokens=10)
        self.assertEqual(text, self.tok.decode(ids).strip())
        self.assertGreaterEqual(len(margins), len(ids))
        bids, btext, bm = transcribe(m, win, self.tok, beam_size=3, max_tokens=10)
        self.assertEqual((btext, bm), (self.tok.decode(bids).strip(), []))


# ---------------------------------------------------------------------------------------------- convert

class TestConvert(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="whisper-test-")
        self.dims = small_dims(n_audio_ctx=10, n_text_ctx=12)
        self.model = small_model(self.dims, 7)
        self.vocab = os.path.join(self.tmp, "vocab.tiktoken")
        with open(self.vocab, "wb") as f:
            f.write(serialize_ranks(golden.synthetic_ranks(N_RANKS, 0)))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def save_ckpt(self, sd, name="ckpt.pt", dtype=torch.float16):
        path = os.path.join(self.tmp, name)
        torch.save({"dims": dataclasses.asdict(self.dims),
                    "model_state_dict": OrderedDict((k, v.to(dtype)) for k, v in sd.items())}, path)
        return path

    def test_round_trip(self):
        sd = self.model.state_dict()
        for src, dtype, want_dt in ((torch.float16, "keep", np.float16), (torch.float32, "keep", np.float32),
                                    (torch.float16, "f32", np.float32), (torch.float32, "f16", np.float16)):
            ck = self.save_ckpt(sd, dtype=src)
            out = os.path.join(self.tmp, f"out-{dtype}")
            with redirect_stdout(io.StringIO()) as so:
                self.assertEqual(convert.main([ck, out, "--tokenizer", self.vocab, "--dtype", dtype]), 0)
            self.assertIn("converted", so.getvalue())
            self.assertEqual(sorted(os.listdir(out)), ["config.json", "model.safetensors", "vocab.tiktoken"])
            with open(os.path.join(out, "config.json")) as f:
                self.assertEqual(json.load(f), dict({"model_type": "whisper"}, **dataclasses.asdict(self.dims)))
            with open(os.path.join(out, "vocab.tiktoken"), "rb") as f, open(self.vocab, "rb") as g:
                self.assertEqual(f.read(), g.read())
            tensors, meta = st.read(os.path.join(out, "model.safetensors"))
            self.assertEqual(list(tensors), list(expected_shapes(self.dims)))
            for k, a in tensors.items():
                self.assertEqual(a.dtype, want_dt, k)
                np.testing.assert_array_equal(a, sd[k].to(src).numpy().astype(want_dt), err_msg=k)
            dims, m, tok = convert.load_model_dir(out)
            self.assertEqual(dims, self.dims)
            self.assertEqual(tok.eot, N_RANKS)
            feats, toks = torch.randn(1, 10, 32), torch.tensor([[1, 2, 3, 4, 5]])
            with torch.no_grad():
                want = self.model.to(torch.float32).decoder(toks, feats)
                torch.testing.assert_close(m.decoder(toks, feats), want, rtol=0.05, atol=0.05 if want_dt ==
                                           np.float16 or src == torch.float16 else 1e-5)

    def refuse(self, ck, msg, vocab=None, out=None):
        out = out or os.path.join(self.tmp, "refused")
        with self.assertRaises(convert.ConvertError) as cm:
            convert.convert(ck, out, vocab or self.vocab)
        self.assertEqual(str(cm.exception), msg)
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(convert.main([ck, out, "--tokenizer", vocab or self.vocab]), 2)
        self.assertEqual(err.getvalue(), f"error: {msg}\n")
        return out

    def test_refusals_leave_nothing_behind(self):
        sd = OrderedDict(self.model.state_dict())
        bad = OrderedDict(sd)
        bad["decoder.blocks.1.attn.key.weight"] = torch.zeros(32, 33)
        out = self.refuse(self.save_ckpt(bad, "shape.pt"), "tensor 'decoder.blocks.1.attn.key.weight': expected "
                                                           "shape [32, 32], found [32, 33]")
        self.assertFalse(os.path.exists(out))
        bad = OrderedDict(sd)
        del bad["decoder.ln.bias"]
        self.refuse(self.save_ckpt(bad, "missing.pt"), "missing tensor 'decoder.ln.bias' (expected shape [32])")
        bad = OrderedDict(sd)
        bad["decoder.blocks.0.attn.key.bias"] = torch.zeros(32)
        self.refuse(self.save_ckpt(bad, "extra.pt"), "unexpected tensor 'decoder.blocks.0.attn.key.bias' [32]")
        wrong = os.path.join(self.tmp, "wrong.tiktoken")
        with open(wrong, "wb") as f:
            f.write(serialize_ranks(golden.synthetic_ranks(N_RANKS + 1, 0)))
        ok = self.save_ckpt(sd, "ok.pt")
        self.refuse(ok, f"tokenizer {wrong}: 301 ranks do not fit n_vocab 1908 (1908 - 301 - 1509 = 98 language "
                        f"tokens; 99 or 100 expected)", vocab=wrong)
        garbage = os.path.join(self.tmp, "garbage.pt")
        with open(garbage, "wb") as f:
            f.write(b"not a checkpoint")
        with self.assertRaisesRegex(convert.ConvertError, "garbage.pt: not a readable PyTorch checkpoint"):
            convert.convert(garbage, out, self.vocab)
        self.assertEqual([n for n in os.listdir(self.tmp) if "refused" in n], [])  # no temporary directory either
        # an existing directory survives a refused conversion untouched
        os.makedirs(out)
        with open(os.path.join(out, "keep.txt"), "w") as f:
            f.write("x")
        self.refuse(self.save_ckpt(bad, "extra.pt"), "unexpected tensor 'decoder.blocks.0.attn.key.bias' [32]",
                    out=out)
        self.assertEqual(os.listdir(out), ["keep.txt"])

    def test_dims_refusals(self):
        d = dataclasses.asdict(self.dims)
        for k, v, msg in (("n_vocab", 0, "dims: n_vocab must be a positive integer, not 0"),
                          ("n_text_head", 5, "dims: n_text_state 32 must be even, at least 4 and a multiple of "
                                             "n_text_head 5"),
                          ("n_extra", 1, "dims: unknown key 'n_extra'")):
            with self.assertRaises(convert.ConvertError) as cm:
                convert.check_dims(dict(d, **{k: v}))
            self.assertEqual(str(cm.exception), msg)


# ---------------------------------------------------------------------------------------------- golden

class TestGolden(unittest.TestCase):
    def test_random_tiny_at_small_dims(self):
        tmp = tempfile.mkdtemp(prefix="whisper-golden-")
        try:
            # multilingual vocabulary size (the real golden's decoding path), everything else small
            dims = small_dims(n_audio_state=16, n_audio_layer=1, n_text_state=16, n_text_layer=1, n_text_ctx=64,
                              n_vocab=51865)
            meta = golden.random_tiny(tmp, 3, dims, log=lambda *a, **k: None)
            self.assertEqual(sorted(os.listdir(tmp)), ["golden.json", "golden.safetensors", "long.wav", "model",
                                                       "speech.wav"])
            self.assertEqual(sorted(os.listdir(os.path.join(tmp, "model"))),
                             ["config.json", "model.safetensors", "vocab.tiktoken"])
            t, m = st.read(os.path.join(tmp, "golden.safetensors"))
            self.assertEqual(m["format"], "tessera.whisper.golden")
            n_long = golden.read_wav(os.path.join(tmp, "long.wav")).shape[0]
            self.assertEqual(n_long, 504000)
            self.assertEqual(golden.read_wav(os.path.join(tmp, "speech.wav")).shape[0], 52800)
            V, T = dims.n_vocab, 16
            shapes = {"mel": (80, 3000), "long_mel": (80, (n_long + 480000) // 160), "audio_features": (1500, 16),
                      "tf_tokens": (T,), "tf_logits": (T, V), "greedy_ids": (len(meta["greedy_ids"]),),
                      "greedy_margins": (len(meta["greedy_ids"]),), "beam_ids": (len(meta["beam_ids"]),),
                      "long_greedy_ids_0": (len(meta["long_ids"][0]),),
                      "long_greedy_ids_1": (len(meta["long_ids"][1]),)}
            self.assertEqual({k: a.shape for k, a in t.items()}, shapes)
            self.assertEqual(t["tf_tokens"].dtype, np.int32)
            self.assertEqual(t["tf_logits"].dtype, np.float32)
            with open(os.path.join(tmp, "golden.json")) as f:
                j = json.load(f)
            for k in ("language", "initial_tokens", "greedy_max_tokens", "greedy_text", "beam_size", "beam_max_tokens",
                      "beam_text", "beam_score", "long_max_tokens", "long_text", "dims"):
                self.assertIn(k, j)
            self.assertEqual(j["initial_tokens"], [50258, 50259, 50359, 50363])
            self.assertEqual(list(t["tf_tokens"][:4]), j["initial_tokens"])
            # recomputed from the files: the stored mel and the model directory give the stored ids
            _, model, tok = convert.load_model_dir(os.path.join(tmp, "model"))
            # windows join as decoded (each may start with a space), then the whole is stripped
            self.assertEqual(j["long_text"], "".join(tok.decode(i) for i in j["long_ids"]).strip())
            ids, text, _ = transcribe(model, torch.from_numpy(t["mel"]), tok, max_tokens=24)
            self.assertEqual((ids, text), (list(t["greedy_ids"]), j["greedy_text"]))
            with torch.no_grad():
                lg = model.decoder(torch.from_numpy(t["tf_tokens"]).long()[None],
                                   torch.from_numpy(t["audio_features"])[None])[0]
            np.testing.assert_allclose(lg.numpy(), t["tf_logits"], rtol=1e-5, atol=1e-5)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
