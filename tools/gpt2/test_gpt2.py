"""Tests of tools.gpt2: model layout (HF GPT-2 names/shapes), KV cache, logits processors, byte-level BPE trainer,
export round trip and refusals, golden vectors, a tiny training run.

    /usr/bin/python3 -m unittest tools.gpt2.test_gpt2 -v      # ctest: gpt2_tools (tests/python/gpt2.cmake)
"""
from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import tempfile
import unittest
from collections import OrderedDict
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import torch
import torch.nn.functional as F

from tools.dalle import safetensors_io as st
from tools.gpt2 import bpe_train as bpe
from tools.gpt2 import data, export, golden
from tools.gpt2.model import (GPT2, GPT2Config, apply_repetition_penalty, expected_shapes, forward_cached_stepwise,
                              gelu_new, generate, gpt2_small_config, is_mask_buffer, param_table, process_logits,
                              top_k_filter, top_p_filter)

torch.set_num_threads(1)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYS_FILE = None
for _d in (os.path.join(REPO, "shared"), os.path.join(REPO, "..", "shared"), "/work/shared"):
    _p = os.path.join(_d, "specs", "keys", "gpt2_small_hf.txt")
    if os.path.isfile(_p):
        KEYS_FILE = _p
        break


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def tiny_config(**over) -> GPT2Config:
    d = dict(vocab_size=300, n_positions=40, n_embd=32, n_layer=3, n_head=4, bos_token_id=299, eos_token_id=299)
    d.update(over)
    return GPT2Config(**d)


def random_model(cfg: GPT2Config, seed: int = 0) -> GPT2:
    """Random weights with non-trivial LN weights and biases (a fresh GPT2 has zero biases and unit LN)."""
    torch.manual_seed(seed)
    m = GPT2(cfg).eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.05)
            elif n.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.normal_(1, 0.1)
            else:
                p.normal_(0, 0.15)
    return m


def tiny_tokenizer(vocab_size: int = 300) -> bpe.ByteLevelBPE:
    texts = ["the cat sat on the mat. the cat's hat! that's that; 12 cats and 3 hats"] * 5
    tok = bpe.train_on_texts(texts, vocab_size)
    vocab = {t: i for t, i in tok.vocab.items() if t != bpe.EOT}
    n = 0
    while len(vocab) < vocab_size - 1:
        vocab[f"<unused{n}>"] = len(vocab)
        n += 1
    vocab[bpe.EOT] = vocab_size - 1
    return bpe.ByteLevelBPE(vocab, tok.merges)


# ---------------------------------------------------------------------------------------------- model

class TestModel(unittest.TestCase):
    def test_key_table_matches_hf_gpt2_small(self):
        if KEYS_FILE is None:
            self.skipTest("shared/specs/keys/gpt2_small_hf.txt not found")
        spec, skipped = OrderedDict(), []
        with open(KEYS_FILE) as f:
            for line in f:
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.rstrip("\n").split("\t")
                name, shape = cols[0], tuple(json.loads(cols[1]))
                if len(cols) > 2 and "skip" in cols[2]:
                    skipped.append(name)
                spec[name] = shape
        self.assertEqual(len(spec), 160)
        self.assertEqual(sorted(skipped), sorted(n for n in spec if is_mask_buffer(n)))
        want = {n: s for n, s in spec.items() if not is_mask_buffer(n)}
        got = param_table(gpt2_small_config())
        self.assertEqual(len(got), len(want))
        self.assertEqual(dict(got), want)
        self.assertEqual(expected_shapes(gpt2_small_config()), want)
        n_params = sum(int(np.prod(s)) for s in want.values())
        self.assertEqual(n_params, 124439808)  # 124.4M, tied head

    def test_expected_shapes_equal_module(self):
        cfg = tiny_config()
        self.assertEqual(list(expected_shapes(cfg).items()), param_table(cfg))  # same order too

    def test_gelu_new_is_tanh_approximation(self):
        x = torch.linspace(-6, 6, 1001)
        self.assertLess(float((gelu_new(x) - F.gelu(x, approximate="tanh")).abs().max()), 1e-6)
        self.assertGreater(float((gelu_new(x) - F.gelu(x)).abs().max()), 1e-4)

    def test_forward_is_reference_math(self):
        cfg = tiny_config(n_layer=1, n_head=2)
        m = random_model(cfg)
        ids = torch.tensor([[3, 7, 1, 299, 0]])
        T, C, H = 5, cfg.n_embd, cfg.n_head
        sd = m.state_dict()
        x = sd["wte.weight"][ids[0]] + sd["wpe.weight"][:T]
        ln = lambda v, p: F.layer_norm(v, (C,), sd[p + ".weight"], sd[p + ".bias"], 1e-5)
        h = ln(x, "h.0.ln_1")
        qkv = h @ sd["h.0.attn.c_attn.weight"] + sd["h.0.attn.c_attn.bias"]
        q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
        hd = C // H
        heads = []
        for i in range(H):
            s = q[:, i * hd:(i + 1) * hd] @ k[:, i * hd:(i + 1) * hd].T / math.sqrt(hd)
            s = s + torch.triu(torch.full((T, T), float("-inf")), 1)
            heads.append(torch.softmax(s, -1) @ v[:, i * hd:(i + 1) * hd])
        x = x + torch.cat(heads, 1) @ sd["h.0.attn.c_proj.weight"] + sd["h.0.attn.c_proj.bias"]
        h = ln(x, "h.0.ln_2")
        u = h @ sd["h.0.mlp.c_fc.weight"] + sd["h.0.mlp.c_fc.bias"]
        u = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
        x = x + u @ sd["h.0.mlp.c_proj.weight"] + sd["h.0.mlp.c_proj.bias"]
        ref = ln(x, "ln_f") @ sd["wte.weight"].T
        with torch.no_grad():
            got = m(ids)[0][0]
        self.assertLess(float((got - ref).abs().max()), 1e-5)

    def test_kv_cache_matches_teacher_forcing(self):
        cfg = tiny_config()
        m = random_model(cfg, 1)
        ids = [random.Random(2).randrange(cfg.vocab_size) for _ in range(cfg.n_positions)]
        with torch.no_grad():
            full = m(torch.tensor([ids]))[0][0]
        for chunk in (1, 3, 7):
            step = forward_cached_stepwise(m, ids, chunk)
            self.assertLess(float((full - step).abs().max()), 1e-5, f"chunk {chunk}")
        with self.assertRaises(ValueError):
            m(torch.tensor([ids + [0]]))

    def test_greedy_generation_matches_argmax(self):
        cfg = tiny_config()
        m = random_model(cfg, 3)
        prompt = [5, 9, 2]
        (g,), margins = generate(m, prompt, 12, greedy=True, stop_at_eos=False, return_margins=True)
        self.assertEqual(len(g), 12)
        seq = prompt + g
        with torch.no_grad():
            lg = m(torch.tensor([seq]))[0][0]
        for i, t in enumerate(g):
            row = lg[len(prompt) - 1 + i]
            self.assertEqual(int(row.argmax()), t)
            top = torch.topk(row, 2).values
            self.assertAlmostEqual(float(top[0] - top[1]), margins[i], places=4)
        # eos stops
        cfg2 = tiny_config(eos_token_id=g[0], bos_token_id=g[0])
        m2 = random_model(cfg, 3)
        m2.cfg = cfg2
        self.assertEqual(generate(m2, prompt, 12, greedy=True)[0], [g[0]])

    def test_sampling_is_seeded(self):
        m = random_model(tiny_config(), 4)
        a = generate(m, [1, 2], 10, temperature=1.0, top_k=10, top_p=0.9, seed=7, num_samples=3, stop_at_eos=False)
        b = generate(m, [1, 2], 10, temperature=1.0, top_k=10, top_p=0.9, seed=7, num_samples=3, stop_at_eos=False)
        c = generate(m, [1, 2], 10, temperature=1.0, top_k=10, top_p=0.9, seed=8, num_samples=3, stop_at_eos=False)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        g = generate(m, [1, 2], 10, greedy=True, stop_at_eos=False)
        self.assertEqual(generate(m, [1, 2], 10, top_k=1, seed=3, stop_at_eos=False), g)
        self.assertEqual(generate(m, [1, 2], 10, temperature=0, stop_at_eos=False), g)

    def test_processors_hf_semantics(self):
        lg = torch.tensor([[2.0, -1.0, 0.5, 3.0, -2.0]])
        rp = apply_repetition_penalty(lg, torch.tensor([[0, 1, 1]]), 2.0)
        self.assertEqual(rp.tolist(), [[1.0, -2.0, 0.5, 3.0, -2.0]])  # positive /2, negative *2, once per id
        self.assertEqual(top_k_filter(torch.tensor([[1.0, 3.0, 3.0, 2.0]]), 2).tolist(),
                         [[float("-inf"), 3.0, 3.0, float("-inf")]])
        self.assertEqual(top_k_filter(torch.tensor([[1.0, 3.0, 2.0, 2.0]]), 2).tolist(),
                         [[float("-inf"), 3.0, 2.0, 2.0]])  # ties at the k-th value are kept
        p = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
        keep = torch.isfinite(top_p_filter(p, 0.7))[0].tolist()
        self.assertEqual(keep, [True, True, False, False])
        self.assertEqual(torch.isfinite(top_p_filter(p, 0.79))[0].tolist(), [True, True, False, False])
        self.assertEqual(torch.isfinite(top_p_filter(p, 0.81))[0].tolist(), [True, True, True, False])
        self.assertEqual(torch.isfinite(top_p_filter(p, 0.01))[0].tolist(), [True, False, False, False])
        out = process_logits(torch.tensor([[4.0, 2.0, -1.0]]), torch.tensor([[0, 2]]), temperature=2.0,
                             repetition_penalty=2.0)
        self.assertEqual(out.tolist(), [[1.0, 1.0, -1.0]])


# ---------------------------------------------------------------------------------------------- BPE

class TestBPE(unittest.TestCase):
    def test_bytes_to_unicode(self):
        m = bpe.bytes_to_unicode()
        self.assertEqual(len(set(m.values())), 256)
        self.assertEqual(sorted(m), list(range(256)))
        self.assertEqual(m[ord(" ")], "\u0120")
        self.assertEqual(m[ord("\n")], "\u010a")
        self.assertEqual(m[0], "\u0100")
        self.assertEqual(list(m.values())[:3], ["!", '"', "#"])
        self.assertEqual(list(m)[188], 0)  # GPT-2 id 188 is byte 0 ("Ā")

    def test_pretokenize_examples(self):
        P = bpe.pretokenize
        self.assertEqual(P("Hello world"), ["Hello", " world"])
        self.assertEqual(P("I'm here, it's 2024!"), ["I", "'m", " here", ",", " it", "'s", " 2024", "!"])
        self.assertEqual(P("a  b"), ["a", " ", " b"])
        self.assertEqual(P("a\n\nb "), ["a", "\n", "\n", "b", " "])
        self.assertEqual(P("x \tz"), ["x", " ", "\t", "z"])
        self.assertEqual(P("caf\u00e9 na\u00efve"), ["caf\u00e9", " na\u00efve"])
        self.assertEqual(P("'S 'll !'s"), ["'", "S", " '", "ll", " !'", "s"])
        self.assertEqual(P(" "), [" "])
        self.assertEqual(P(""), [])
        for t in ("  x", "x   ", "\u00a0y", "a\x1cb", "\U0001F642 ok"):
            self.assertEqual("".join(P(t)), t)

    def test_pretokenize_matches_gpt2_regex(self):
        try:
            import regex
        except ImportError:
            self.skipTest("regex module not installed")
        pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        pool = list("aZ\u00e9\u00df\u4e2d\u0416 09\u00b2\u0663'\".,!?-_()\t\n\r\u00a0\u2009\u3000\x1c\x1f\x85") + \
            ["s", "t", "re", "ve", "m", "ll", "d", "  ", "\U0001F642", "\u0301"]
        r = random.Random(5)
        for _ in range(3000):
            t = "".join(r.choice(pool) for _ in range(r.randrange(0, 14)))
            self.assertEqual(bpe.pretokenize(t), pat.findall(t), repr(t))

    def test_train_files_and_round_trip(self):
        texts = ["The cat sat on the mat. The cat's hat is on the mat!\n",
                 "Scene: a small red circle on the left and a big blue box on the right."] * 20
        tok = bpe.train_on_texts(texts, 300)
        self.assertEqual(tok.vocab_size, len(tok.vocab))
        self.assertEqual(tok.vocab[bpe.EOT], tok.vocab_size - 1)
        self.assertEqual([tok.inv[i] for i in range(256)], list(bpe.BYTE_ENCODER.values()))
        for i, m in enumerate(tok.merges[:5]):
            a, b = m.split(" ")
            self.assertIn(a + b, tok.vocab)
        d = tempfile.mkdtemp()
        try:
            tok.save(d)
            with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
                raw = f.read()
            self.assertTrue(raw.startswith("#version: 0.2\n"))
            self.assertTrue(raw.endswith("\n"))
            self.assertEqual(len(raw.split("\n")), len(tok.merges) + 2)
            with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f), tok.vocab)
            tok2 = bpe.ByteLevelBPE.load(d)
        finally:
            shutil.rmtree(d)
        self.assertEqual(tok2.merges, tok.merges)
        ids = tok2.encode("The cat sat on the mat.")
        self.assertLess(len(ids), 10)  # frequent words became single tokens
        self.assertEqual(tok2.pieces(tok2.encode(" cat"))[0], "\u0120cat")
        for t in ("The cat sat on the mat.", "na\u00efve caf\u00e9 \U0001F642 \u4e2d\u6587\t\r\n  x  ", "",
                  "a<|endoftext|>b", "\x00\x01 \xff", "Scene: something NEW 123"):
            self.assertEqual(tok2.decode(tok2.encode(t)), t, repr(t))
        e = tok2.encode("x<|endoftext|>y")
        self.assertEqual(e[1], tok2.eot_id)
        self.assertNotIn(tok2.eot_id, tok2.encode("x<|endoftext|>y", allow_special=False))

    def test_encoder_matches_gpt2_vectors(self):
        # GPT-2's own vocab.json / merges.txt and reference ids (tests/data/gpt2, from the C++ tokenizer's tests)
        d = os.path.join(REPO, "tests", "data", "gpt2")
        files = [os.path.join(d, f) for f in ("vocab.json", "merges.txt", "tokenizer_vectors.json")]
        if not all(os.path.isfile(f) for f in files):
            self.skipTest("tests/data/gpt2 GPT-2 tokenizer vectors not present")
        tok = bpe.ByteLevelBPE.load(d)
        self.assertEqual((tok.vocab_size, len(tok.merges), tok.eot_id), (50257, 50000, 50256))
        with open(files[2], encoding="utf-8") as f:
            vectors = json.load(f)["vectors"]
        self.assertGreater(len(vectors), 100)
        for v in vectors:
            self.assertEqual(tok.encode(v["text"], allow_special=False), v.get("gpt2_ids", v["ids"]), repr(v["text"]))
            if "ids_special" in v:
                self.assertEqual(tok.encode(v["text"]), v["ids_special"], repr(v["text"]))
            self.assertEqual(tok.decode(tok.encode(v["text"])), v["text"])

    def test_trainer_picks_most_frequent_pair(self):
        tok = bpe.train_bpe({"ab": 5, "bc": 3, "abc": 1}, 259)
        self.assertEqual(tok.merges, ["a b", "b c"][:len(tok.merges)])
        self.assertIn("ab", tok.vocab)
        self.assertEqual(tok.vocab["ab"], 256)
        self.assertEqual(tok.vocab[bpe.EOT], 258)
        with self.assertRaises(ValueError):
            bpe.train_bpe({"ab": 2}, 100)

    def test_gpt2_encoding_is_rank_order(self):
        tok = bpe.ByteLevelBPE({**{c: i for i, c in enumerate(bpe.BYTE_ENCODER.values())}, "bc": 256, "ab": 257,
                                "abc": 258, bpe.EOT: 259}, ["b c", "a b", "a bc"])
        self.assertEqual(tok.pieces(tok.encode("abc")), ["abc"])  # b c (rank 0) first, then a bc
        self.assertEqual(tok.pieces(tok.encode("ab")), ["ab"])


# ---------------------------------------------------------------------------------------------- export

class TestExport(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.cfg = tiny_config()
        self.model = random_model(self.cfg, 5)
        self.tok = tiny_tokenizer(self.cfg.vocab_size)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def _write(self, name):
        t = export.model_tensors(self.model.state_dict(), self.cfg)
        return export.write_model_dir(os.path.join(self.dir, name), self.cfg, t, self.tok)

    def test_round_trip_layouts(self):
        ids = torch.tensor([[1, 4, 9, 16, 25, 36]])
        with torch.no_grad():
            ref = self.model(ids)[0]
        for name, kw, tol in (("plain", {}, 0.0), ("pre", {"prefix": True, "mask_buffers": True}, 0.0),
                              ("half", {"dtype": "f16"}, 5e-2)):
            t = export.model_tensors(self.model.state_dict(), self.cfg, kw.get("dtype", "f32"),
                                     kw.get("prefix", False), kw.get("mask_buffers", False))
            out = export.write_model_dir(os.path.join(self.dir, name), self.cfg, t, self.tok,
                                         dtype=kw.get("dtype", "f32"), prefix=kw.get("prefix", False))
            self.assertEqual(sorted(os.listdir(out)), ["config.json", "generation_config.json", "merges.txt",
                                                       "model.safetensors", "tessera.json", "vocab.json"])
            tensors, meta = st.read(os.path.join(out, "model.safetensors"))
            pre = "transformer." if kw.get("prefix") else ""
            self.assertIn(pre + "h.0.attn.c_attn.weight", tensors)
            self.assertEqual(tensors[pre + "h.0.attn.c_attn.weight"].shape, (32, 96))
            self.assertEqual(tensors[pre + "h.2.mlp.c_proj.weight"].shape, (128, 32))
            self.assertNotIn("lm_head.weight", tensors)
            self.assertEqual(tensors[pre + "wte.weight"].dtype, np.float16 if kw.get("dtype") else np.float32)
            if kw.get("mask_buffers"):
                self.assertEqual(tensors[pre + "h.1.attn.bias"].shape, (1, 1, 40, 40))
                self.assertEqual(tensors[pre + "h.1.attn.bias"].dtype, np.float32)
                self.assertEqual(tensors[pre + "h.1.attn.masked_bias"].shape, ())
            else:
                self.assertFalse(any(is_mask_buffer(k) for k in tensors))
            with open(os.path.join(out, "config.json")) as f:
                c = json.load(f)
            for k, v in (("model_type", "gpt2"), ("vocab_size", 300), ("n_positions", 40), ("n_embd", 32),
                         ("n_layer", 3), ("n_head", 4), ("layer_norm_epsilon", 1e-5),
                         ("activation_function", "gelu_new"), ("bos_token_id", 299), ("eos_token_id", 299)):
                self.assertEqual(c[k], v, k)
            with open(os.path.join(out, "generation_config.json")) as f:
                g = json.load(f)
            self.assertEqual(g["top_k"], 40)
            c2, m2, tok2, gen = export.load_model_dir(out)
            with torch.no_grad():
                got = m2(ids)[0]
            self.assertLessEqual(float((got - ref).abs().max()), tol if tol else 0.0)
            self.assertEqual(tok2.vocab, self.tok.vocab)
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".")], [])

    def test_refuses_wrong_shape_and_keeps_old_dir(self):
        out = self._write("m")
        before = read_bytes(os.path.join(out, "model.safetensors"))
        t = export.model_tensors(self.model.state_dict(), self.cfg)
        t["h.1.attn.c_attn.weight"] = t["h.1.attn.c_attn.weight"].T.copy()  # nn.Linear [out, in] by mistake
        with self.assertRaisesRegex(export.ExportError, "h.1.attn.c_attn.weight.*shape"):
            export.write_model_dir(out, self.cfg, t, self.tok)
        t = export.model_tensors(self.model.state_dict(), self.cfg)
        del t["ln_f.bias"]
        with self.assertRaisesRegex(export.ExportError, "missing tensor 'ln_f.bias'"):
            export.write_model_dir(out, self.cfg, t, self.tok)
        t = export.model_tensors(self.model.state_dict(), self.cfg)
        t["lm_head.weight"] = t["wte.weight"]
        with self.assertRaisesRegex(export.ExportError, "unexpected tensor"):
            export.write_model_dir(out, self.cfg, t, self.tok)
        t = export.model_tensors(self.model.state_dict(), self.cfg)
        t["wpe.weight"] = t["wpe.weight"].copy()
        t["wpe.weight"][0, 0] = np.nan
        with self.assertRaisesRegex(export.ExportError, "non-finite"):
            export.write_model_dir(out, self.cfg, t, self.tok)
        bad_tok = tiny_tokenizer(299)
        with self.assertRaisesRegex(export.ExportError, "vocab_size"):
            export.write_model_dir(out, self.cfg, export.model_tensors(self.model.state_dict(), self.cfg), bad_tok)
        self.assertEqual(read_bytes(os.path.join(out, "model.safetensors")), before)
        self.assertEqual(sorted(os.listdir(self.dir)), ["m"])
        # a file with a wrong shape is refused when read back, too
        tensors, meta = st.read(os.path.join(out, "model.safetensors"))
        tensors["wpe.weight"] = tensors["wpe.weight"][:-1]
        st.write(os.path.join(out, "model.safetensors"), tensors, meta)
        with self.assertRaisesRegex(export.ExportError, "wpe.weight"):
            export.load_model_dir(out)

    def test_config_refusals(self):
        c = export.hf_config(self.cfg)
        self.assertEqual(export.config_from_hf(c), GPT2Config(**{**self.cfg.to_dict(), "dropout": 0.0}))
        for k, v in (("activation_function", "relu"), ("model_type", "gpt_neo"), ("n_inner", 7),
                     ("tie_word_embeddings", False), ("n_head", 5), ("eos_token_id", 300)):
            with self.assertRaises(export.ExportError, msg=k):
                export.config_from_hf(dict(c, **{k: v}))

    def test_golden_from_exported_dir(self):
        out = self._write("g")
        tensors, meta = golden.compute(out, ["the cat", "<|endoftext|>hat"], [[3, 1, 4]], greedy_steps=6, log=lambda *a, **k: None)
        t = dict(tensors)
        offs = t["prompt_offsets"].tolist()
        self.assertEqual(len(offs), 4)
        self.assertEqual(t["tf_logits"].shape, (offs[-1], 300))
        self.assertEqual(t["greedy_ids"].shape, (3, 6))
        self.assertEqual(t["long_ids"].shape, (40,))
        self.assertEqual(t["long_logits"].shape, (len(t["long_positions"]), 300))
        with torch.no_grad():
            for p in range(3):
                ids = t["prompt_ids"][offs[p]:offs[p + 1]].tolist()
                seq = ids + t["greedy_ids"][p].tolist()
                lg = self.model(torch.tensor([seq]))[0][0].numpy()
                np.testing.assert_allclose(lg[:len(ids)], t["tf_logits"][offs[p]:offs[p + 1]], atol=1e-5)
                self.assertEqual(lg[len(ids) - 1:-1].argmax(-1).tolist(), t["greedy_ids"][p].tolist())
            lg = self.model(torch.tensor([t["long_ids"].tolist()]))[0][0].numpy()
            np.testing.assert_allclose(lg[t["long_positions"]], t["long_logits"], atol=1e-5)
        self.assertEqual(meta["token_ids"][1][0], 299)
        self.assertTrue(np.isneginf(t["proc_logits_out"]).any())
        golden.write_golden(self.dir, tensors, meta)
        back, _ = st.read(os.path.join(self.dir, "golden.safetensors"))
        self.assertEqual(list(back), [n for n, _ in tensors])
        self.assertEqual(back["greedy_ids"].dtype, np.int32)

    def test_random_small(self):
        # the C++ test's generator, at 1 layer and F16 with 'transformer.' names to keep this test quick
        with redirect_stdout(io.StringIO()):
            mdir = golden.random_small(self.dir, seed=7, dtype="f16", prefix=True, n_layer=1)
        with open(os.path.join(mdir, "config.json")) as f:
            c = json.load(f)
        self.assertEqual((c["vocab_size"], c["n_positions"], c["n_embd"], c["n_head"], c["n_layer"]),
                         (50257, 1024, 768, 12, 1))
        tensors, _ = st.read(os.path.join(mdir, "model.safetensors"))
        self.assertEqual(tensors["transformer.h.0.attn.bias"].shape, (1, 1, 1024, 1024))
        self.assertEqual(tensors["transformer.wte.weight"].dtype, np.float16)
        del tensors
        t, meta = golden.compute(mdir, golden.PROMPTS[1:2], [[50256, 7, 40000]], greedy_steps=3, long_random=True,
                                 log=lambda *a, **k: None)
        t = dict(t)
        self.assertEqual(t["tf_logits"].shape[1], 50257)
        self.assertEqual(t["long_ids"].shape, (1024,))
        self.assertEqual(t["long_positions"].tolist(), [0, 511, 1022, 1023])
        self.assertEqual(meta["token_ids"][1], [50256, 7, 40000])
        self.assertGreater(meta["min_greedy_margin"], 0.0)

    def test_small_tokenizer_is_gpt2_sized(self):
        tok = golden.small_tokenizer(50257, trained=300)
        self.assertEqual(tok.vocab_size, 50257)
        self.assertEqual(len(tok.vocab), 50257)
        self.assertEqual(tok.eot_id, 50256)
        t = "Scene: a small red circle on the left"
        self.assertEqual(tok.decode(tok.encode(t)), t)


# ---------------------------------------------------------------------------------------------- data + training

class TestTraining(unittest.TestCase):
    def test_caption_checks(self):
        from tools.shapes import world
        r = random.Random(3)
        for _ in range(200):
            scene = world.sample_scene(r, split="any")
            cap = world.render_caption(scene, r)
            res = data.check_caption(cap)
            self.assertTrue(res["valid"], cap)
            self.assertEqual(res["held_out"], world.is_held_out(scene))
        for bad in ("the LORD said unto Moses", "a red circle", "a small red circle on the left and a big blue box "
                    "on the left", "a small red circle in the center and a big blue box on the right",
                    "a small red circle on the left, thus saith the LORD"):
            self.assertFalse(data.check_caption(bad)["valid"], bad)
        st_ = data.caption_stats(["a small red circle on the left", None, "nonsense"])
        self.assertAlmostEqual(st_["valid"], 1 / 3)
        self.assertAlmostEqual(st_["ended"], 2 / 3)

    def test_tiny_training_run(self):
        from tools.gpt2 import train
        d = tempfile.mkdtemp()
        try:
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = train.main(["--out", d, "--corpus", "none", "--max-steps", "60", "--minutes", "0",
                                 "--captions", "300", "--val-captions", "20", "--vocab-size", "300", "--layers", "1",
                                 "--embd", "32", "--heads", "2", "--ctx", "48", "--batch", "8", "--lr", "5e-3",
                                 "--warmup", "10", "--eval-captions", "4", "--log-every", "1000"])
            self.assertEqual(rc, 0, buf.getvalue())
            with open(os.path.join(d, "metrics.json")) as f:
                m = json.load(f)
            self.assertEqual(m["steps"], 60)
            self.assertLess(m["train_loss_ema"], math.log(300) - 1.0)
            self.assertTrue(math.isfinite(m["val_text"]["ppl"]) and math.isfinite(m["val_captions"]["ppl"]))
            self.assertIn("valid", m["captions"])
            out = os.path.join(d, "exp")
            with redirect_stdout(io.StringIO()):
                self.assertEqual(export.main(["--ckpt", os.path.join(d, "gpt2.pt"), "--out", out, "--prefix",
                                              "--mask-buffers"]), 0)
            with open(os.path.join(out, "tessera.json")) as f:
                tj = json.load(f)
            self.assertEqual(tj["weights"], {"file": "model.safetensors", "dtype": "F32", "prefix": "transformer.",
                                             "mask_buffers": True})
            c, model, tok, gen = export.load_model_dir(out)
            m0, tok0, _ = train.load_ckpt(os.path.join(d, "gpt2.pt"))
            ids = torch.tensor([tok.encode("Scene: a small red")])
            with torch.no_grad():
                self.assertTrue(torch.equal(model(ids)[0], m0(ids)[0]))
            with redirect_stderr(io.StringIO()):
                self.assertEqual(train.main(["--out", d, "--embd", "30", "--heads", "4"]), 2)
                self.assertEqual(export.main(["--ckpt", os.path.join(d, "nope.pt"), "--out", out]), 2)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
