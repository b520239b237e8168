"""Tests of tools.dalle: tokenizer, model layout (min-dalle names/shapes), KV cache, sampling, export, training.

    /usr/bin/python3 -m unittest tools.dalle.test_dalle -v      # ctest: dalle_tools (tests/python/dalle.cmake)
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
import unittest
from contextlib import redirect_stdout

import numpy as np
import torch

from tools.dalle import safetensors_io as st
from tools.dalle import tokenizer as tk
from tools.dalle.model import (DalleConfig, DalleModel, generate, is_absent_ln_weight, meta_tables, mini_config,
                               mix_logits, sample_from_logits)

torch.set_num_threads(1)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYS = os.path.join(REPO, "..", "shared", "specs", "keys")
if not os.path.isdir(KEYS):
    KEYS = "/work/shared/specs/keys"


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def small_config(**over) -> DalleConfig:
    d = dict(name="t", text_vocab_size=40, text_token_count=10, embed_dim=32, attention_heads=4, glu_hidden=42,
             encoder_layers=2, decoder_layers=2, image_vocab_size=24, decoder_vocab_rows=25, bos_id=24,
             image_token_grid=4, image_size=16, supercondition_factor=3.0, top_k=5, temperature=1.0)
    d.update(over)
    return DalleConfig(**d)


def small_vq():
    from tools.vq.model import VQConfig, VQModel
    torch.manual_seed(0)
    return VQModel(VQConfig(ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=8, embed_dim=8, n_embed=24,
                            resolution=16)).eval()


def hand_tokenizer() -> tk.TextTokenizer:
    syms = ["Ġ", "a", "b", "c", ".", "Ġa", "ab", "Ġab", "bc", "Ġc"]
    vocab = {s: i for i, s in enumerate(tk.SPECIALS)}
    for s in syms:
        vocab[s] = len(vocab)
    return tk.TextTokenizer(vocab, ["a b", "Ġ ab", "b c", "Ġ a", "Ġ c"])


class TokenizerTest(unittest.TestCase):
    def test_hand_cases(self):
        t = hand_tokenizer()
        v = t.vocab
        self.assertEqual(t.tokenize(""), [0, 2])
        self.assertEqual(t.tokenize("   "), [0, 2])
        # "a b" has rank 0: [Ġ a b] -> [Ġ ab] -> [Ġab]
        self.assertEqual(t.pieces("ab"), ["Ġab"])
        # first occurrence of the lowest rank, repeatedly: [Ġ a b a b] -> [Ġ ab a b] -> [Ġ ab ab] -> [Ġab ab]
        self.assertEqual(t.pieces("abab"), ["Ġab", "ab"])
        # "b c" (rank 2) loses to "a b" (rank 0): [Ġ a b c] -> [Ġ ab c] -> [Ġab c]
        self.assertEqual(t.pieces("abc"), ["Ġab", "c"])
        # "Ġ a" has rank 3 but "b c" rank 2 goes first: [Ġ a c b c] -> [Ġ a c bc] -> [Ġa c bc]
        self.assertEqual(t.pieces("acbc"), ["Ġa", "c", "bc"])
        # lower-case, non-ASCII dropped, single-space split with empty words skipped, punctuation attached
        self.assertEqual(t.tokenize("AB  c\u00e9."), [0, v["Ġab"], v["Ġc"], v["."], 2])
        self.assertEqual(t.tokenize("\u00e9\u00e8 ab"), [0, v["Ġab"], 2])  # "éè" -> "" -> skipped
        # unknown symbols -> <unk>; a tab does not split words
        self.assertEqual(t.tokenize("a\tz"), [0, v["Ġa"], 3, 3, 2])
        self.assertEqual(t.tokenize("c"), [0, v["Ġc"], 2])

    def test_file_round_trip(self):
        t = hand_tokenizer()
        d = tempfile.mkdtemp()
        try:
            t.save(d)
            with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
                text = f.read()
            self.assertTrue(text.startswith("#version"))
            self.assertTrue(text.endswith("\n"))
            self.assertEqual(text.split("\n")[1:-1], t.merges)
            t2 = tk.TextTokenizer.load(d)
            self.assertEqual(t2.vocab, t.vocab)
            self.assertEqual(t2.merges, t.merges)
        finally:
            shutil.rmtree(d)

    def test_text_rows(self):
        self.assertEqual(tk.text_rows([0, 5, 6, 2], 6), [[0, 2, 1, 1, 1, 1], [0, 5, 6, 2, 1, 1]])
        # truncated: row 0's second token is the last kept token (min-dalle)
        self.assertEqual(tk.text_rows([0, 5, 6, 7, 2], 3), [[0, 6, 1], [0, 5, 6]])

    def test_world_tokenizer(self):
        t1 = tk.train_world_tokenizer(captions=3000)
        t2 = tk.train_world_tokenizer(captions=3000)
        self.assertEqual((t1.vocab, t1.merges), (t2.vocab, t2.merges))  # deterministic
        self.assertLess(t1.vocab_size, 400)
        for w in tk.world_words():
            self.assertEqual(len(t1.bpe(w)), 1, w)
        rep = tk.coverage_report(t1, captions=500)
        self.assertEqual(rep["unk"], 0)
        self.assertLessEqual(rep["max_tokens"], 40)


class ModelLayoutTest(unittest.TestCase):
    def read_keys(self, name):
        rows = []
        with open(os.path.join(KEYS, name)) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                k, shape, flag = line.rstrip("\n").split("\t")
                rows.append((k, tuple(int(x) for x in shape.strip("[]").split(",")), flag == "absent"))
        return rows

    def test_mini_tables_equal_min_dalle(self):
        tables = meta_tables(mini_config())
        for part in ("encoder", "decoder"):
            ref = self.read_keys(f"min_dalle_mini_{part}.txt")
            self.assertEqual(tables[part], [(k, s) for k, s, _ in ref], part)
            for k, _, absent in ref:
                self.assertEqual(is_absent_ln_weight(k), absent, k)

    def test_config_checks(self):
        with self.assertRaises(ValueError):
            small_config(attention_heads=5)
        with self.assertRaises(ValueError):
            small_config(decoder_vocab_rows=24)


class DecodeTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.cfg = small_config()
        self.model = DalleModel(self.cfg).init_weights(0.1, torch.Generator().manual_seed(1), random_ln=True).eval()

    def texts(self):
        t = torch.full((3, 10), 1, dtype=torch.long)
        t[0, :2] = torch.tensor([0, 2])
        t[1, :6] = torch.tensor([0, 5, 9, 7, 30, 2])
        t[2, :] = torch.randint(4, 40, (10,))
        return t

    @torch.no_grad()
    def test_teacher_forced_equals_kv_cache(self):
        text = self.texts()
        prev = torch.randint(0, 24, (3, 16))
        prev[:, 0] = self.cfg.bos_id
        tf = self.model(text, prev)
        enc = self.model.encoder(text)
        dec = self.model.decoder
        for ckv in (None, dec.cross_kv(enc)):
            cache = dec.new_cache(3)
            steps = torch.stack([dec.step(prev[:, i], i, enc, text, cache, ckv) for i in range(16)], 1)
            self.assertLessEqual(float((tf - steps).abs().max()), 1e-5)

    @torch.no_grad()
    def test_pad_keys_are_masked(self):
        text = self.texts()[1:2]
        enc = self.model.encoder(text)
        # trailing pad columns can be trimmed (the trainer does): same states for the real tokens
        self.assertTrue(torch.allclose(self.model.encoder(text[:, :6])[0], enc[0, :6], atol=1e-6))
        prev = torch.full((1, 4), self.cfg.bos_id)
        a = self.model.decoder(prev, enc, text)
        enc2 = enc.clone()
        enc2[0, 6:] += 5.0  # pad keys/values must not matter
        self.assertTrue(torch.allclose(self.model.decoder(prev, enc2, text), a, atol=1e-6))

    @torch.no_grad()
    def test_greedy_supercondition_matches_teacher_forcing(self):
        text = self.texts()
        unc, cond = text[0:1].expand(2, -1), text[1:3]
        toks, margins = generate(self.model, unc, cond, 3.0, 1, 1.0, return_margins=True)
        self.assertEqual(toks.shape, (2, 16))
        prev = torch.cat([torch.full((2, 1), self.cfg.bos_id), toks[:, :-1]], 1)
        lu = self.model(unc, prev)[..., :24]
        lc = self.model(cond, prev)[..., :24]
        mixed = lu + 3.0 * (lc - lu)
        ok = (mixed.argmax(-1) == toks) | (margins < 1e-4)
        self.assertTrue(bool(ok.all()))
        self.assertTrue(torch.allclose(mix_logits(torch.cat([lu[:, 0], lc[:, 0]]), 2, 3.0), mixed[:, 0], atol=1e-5))

    def test_top_k_sampling(self):
        g = torch.Generator().manual_seed(0)
        logits = torch.tensor([[0.0, 5.0, 4.0, 4.0, -1.0]]).expand(200, -1).contiguous()
        s = sample_from_logits(logits, 2, 1.0, g)   # ties keep more: {1, 2, 3}
        self.assertEqual(set(s.tolist()), {1, 2, 3})
        self.assertEqual(set(sample_from_logits(logits, 1, 1.0, g).tolist()), {1})
        s = sample_from_logits(logits, 5, 0.01, g)  # low temperature: argmax
        self.assertEqual(set(s.tolist()), {1})


class ExportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        from tools.dalle.export import detokenizer_config, make_config
        from tools.vq.model import decoder_state_dict
        torch.manual_seed(0)
        self.cfg = small_config()
        self.tok = tk.train_bpe(["a small red circle", "a big blue box. grey"], vocab_size=100)
        self.cfg.text_vocab_size = self.tok.vocab_size
        self.model = DalleModel(self.cfg).init_weights(0.1, torch.Generator().manual_seed(2), random_ln=True).eval()
        self.vq = small_vq()
        self.detok = decoder_state_dict(self.vq)
        self.make_config = lambda **kw: make_config(self.cfg, detokenizer_config(self.vq.cfg), **kw)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, out, dtype="f32", enc=None, dec=None, omit=False):
        from tools.dalle.export import write_model_dir
        return write_model_dir(out, self.make_config(dtype=dtype, omit_absent_ln=omit),
                               enc or self.model.encoder.state_dict(), dec or self.model.decoder.state_dict(),
                               self.detok, self.tok)

    def test_round_trip(self):
        from tools.dalle.export import load_model_dir
        out = self.write(os.path.join(self.tmp, "m"))
        self.assertEqual(sorted(os.listdir(out)), sorted(["config.json", "encoder.safetensors", "decoder.safetensors",
                                                          "detokenizer.safetensors", "vocab.json", "merges.txt"]))
        with open(os.path.join(out, "config.json")) as f:
            c = json.load(f)
        for k in ("format", "format_version", "name", "text_vocab_size", "text_token_count", "embed_dim",
                  "attention_heads", "glu_hidden", "encoder_layers", "decoder_layers", "image_vocab_size",
                  "decoder_vocab_rows", "bos_id", "pad_id", "image_token_grid", "image_token_count", "image_size",
                  "layer_norm_eps", "sampling", "files", "detokenizer"):
            self.assertIn(k, c)
        enc, meta = st.read(os.path.join(out, "encoder.safetensors"))
        self.assertEqual(list(enc), list(self.model.encoder.state_dict()))
        self.assertEqual(meta["part"], "encoder")
        with open(os.path.join(out, "decoder.safetensors"), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        self.assertEqual((8 + n) % 8, 0)
        c2, m2, tok2, vq2 = load_model_dir(out)
        for a, b in zip(self.model.state_dict().values(), m2.state_dict().values()):
            self.assertTrue(torch.equal(a, b))
        self.assertEqual(tok2.vocab, self.tok.vocab)
        ids = torch.randint(0, 24, (2, 16))
        self.assertTrue(np.array_equal(vq2.decode_uint8(ids), self.vq.decode_uint8(ids)))
        # f16, and omitted absent LN weights (must be ones) read back as ones
        with torch.no_grad():
            for k, p in self.model.named_parameters():
                if is_absent_ln_weight(k.split(".", 1)[1]):
                    p.fill_(1.0)
        out16 = self.write(os.path.join(self.tmp, "m16"), dtype="f16", omit=True)
        enc16, _ = st.read(os.path.join(out16, "encoder.safetensors"))
        self.assertEqual(enc16["embed_tokens.weight"].dtype, np.float16)
        self.assertNotIn("final_ln.weight", enc16)
        self.assertNotIn("layers.0.glu.ln1.weight", enc16)
        _, m16, _, _ = load_model_dir(out16)
        for (k, a), b in zip(self.model.state_dict().items(), m16.state_dict().values()):
            self.assertTrue(torch.allclose(a, b, rtol=1e-3, atol=1e-4), k)

    def test_refusals(self):
        from tools.dalle.export import ExportError
        out = os.path.join(self.tmp, "bad")
        enc = dict(self.model.encoder.state_dict())
        enc["layers.1.glu.fc2.weight"] = torch.zeros(32, 41)
        with self.assertRaisesRegex(ExportError, "fc2.weight.*shape"):
            self.write(out, enc=enc)
        self.assertFalse(os.path.exists(out))
        self.assertEqual([f for f in os.listdir(self.tmp)], [])  # no temp dir left behind
        dec = dict(self.model.decoder.state_dict())
        del dec["lm_head.weight"]
        with self.assertRaisesRegex(ExportError, "missing tensor 'lm_head.weight'"):
            self.write(out, dec=dec)
        with self.assertRaisesRegex(ExportError, "not all ones"):  # trained LN weights cannot be omitted
            self.write(out, omit=True)
        with self.assertRaisesRegex(ExportError, "dtype"):
            self.write(out, dtype="bf16")
        # an existing good export is untouched by a refused one
        good = self.write(out)
        before = read_bytes(os.path.join(good, "encoder.safetensors"))
        enc2 = dict(self.model.encoder.state_dict())
        enc2["extra.weight"] = torch.zeros(3)
        with self.assertRaisesRegex(ExportError, "unexpected tensor"):
            self.write(out, enc=enc2)
        self.assertEqual(read_bytes(os.path.join(good, "encoder.safetensors")), before)

    def test_safetensors_reader_rejects_corruption(self):
        buf = st.serialize({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.uint8)},
                           {"k": "v"})
        t, meta = st.parse(buf)
        self.assertEqual(meta, {"k": "v"})
        self.assertTrue(np.array_equal(t["a"], np.arange(6, dtype=np.float32).reshape(2, 3)))
        with self.assertRaises(st.SafetensorsError):
            st.parse(buf[:-1])
        with self.assertRaises(st.SafetensorsError):
            st.parse(buf + b"\0")
        with self.assertRaises(st.SafetensorsError):
            st.parse(struct.pack("<Q", 10 ** 9) + buf[8:])


class TrainSmokeTest(unittest.TestCase):
    def test_train_export_golden(self):
        from tools.dalle import evaluate, export, golden, train
        from tools.vq.model import save as save_vq
        tmp = tempfile.mkdtemp()
        try:
            vq = small_vq()
            vq.cfg.resolution = 16
            save_vq(vq, os.path.join(tmp, "vq.pt"))
            tok = tk.train_world_tokenizer(captions=500)
            tok.save(os.path.join(tmp, "tok"))
            run = os.path.join(tmp, "run")
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = train.main(["--out", run, "--vq", os.path.join(tmp, "vq.pt"), "--tokenizer",
                                 os.path.join(tmp, "tok"), "--max-steps", "6", "--minutes", "0", "--scenes", "40",
                                 "--captions-per-scene", "2", "--batch", "8", "--embed", "32", "--heads", "2",
                                 "--glu", "42", "--encoder-layers", "1", "--decoder-layers", "1", "--no-eval",
                                 "--text-tokens", "40", "--warmup", "2"])
            self.assertEqual(rc, 0, buf.getvalue())
            log = buf.getvalue()
            self.assertIn("trained 6 steps", log)
            with open(os.path.join(run, "metrics.json")) as f:
                m = json.load(f)
            self.assertTrue(np.isfinite(m["val_seen"]["loss"]))
            out = export.export(os.path.join(run, "dalle.pt"), os.path.join(tmp, "model"))
            _, model, tok2, vq2 = export.load_model_dir(out)
            res = evaluate.evaluate(model, tok2, vq2, n=3, seed=1, log=lambda *a, **k: None)
            self.assertTrue(0.0 <= res["seen"] <= 1.0 and 0.0 <= res["heldout"] <= 1.0)
            tensors, meta = golden.compute(out, log=lambda *a, **k: None)
            shapes = {k: tuple(v.shape) for k, v in tensors}
            self.assertEqual(shapes["encoder_state"], (4, 2, 40, 32))
            self.assertEqual(shapes["tf_logits"], (4, 2, 16, 25))
            self.assertEqual(shapes["images"], (4, 16, 16, 3))
            self.assertEqual(meta["token_ids"][0], [0, 2])
            # bad arguments are refused with exit code 2
            with redirect_stdout(io.StringIO()):
                import contextlib
                with contextlib.redirect_stderr(io.StringIO()):
                    self.assertEqual(train.main(["--out", run, "--vq", os.path.join(tmp, "nope.pt")]), 2)
                    self.assertEqual(export.main(["--ckpt", os.path.join(run, "dalle.pt"), "--out",
                                                  os.path.join(tmp, "m2"), "--dtype", "f8"]), 2)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()
