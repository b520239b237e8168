"""Tests of tools.convert_min_dalle with small synthetic min-dalle checkpoints (the real files are not needed).

    /usr/bin/python3 -m unittest tools.test_convert_min_dalle -v     # ctest: convert_min_dalle (tests/python/convert.cmake)
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import torch

from tools import convert_min_dalle as cm
from tools.dalle import export as ex
from tools.dalle import safetensors_io as st
from tools.dalle.model import DalleConfig, DalleModel, is_absent_ln_weight
from tools.vq.model import VQConfig, VQModel, decoder_state_dict

torch.set_num_threads(1)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KEYS = os.path.join(REPO, "..", "shared", "specs", "keys")
if not os.path.isdir(KEYS):
    KEYS = "/work/shared/specs/keys"

# A tiny "min-dalle": 2 + 2 layers, embed 64, 4 heads, GLU 96, 40 text rows, 32-code VQ with a 4x4 grid,
# decoder rows 36 > image vocab + 1 (like Mega's 16416 rows for 16384 sampled codes), BOS = image vocab - 1.
TINY_DETOK = dict(in_channels=3, ch=8, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[4], z_channels=8,
                  embed_dim=8, n_embed=32, resolution=16, max_groups=32, norm_eps=1e-5)
TINY = dict(name="tiny-min-dalle", text_vocab_size=40, text_token_count=12, embed_dim=64, attention_heads=4,
            glu_hidden=96, encoder_layers=2, decoder_layers=2, image_vocab_size=32, decoder_vocab_rows=36,
            min_dalle_image_vocab_count=35, bos_id=31, pad_id=1, image_token_grid=4, image_size=16,
            layer_norm_eps=1e-5, supercondition_factor=16.0, top_k=8, temperature=1.0, detokenizer=TINY_DETOK)

VOCAB = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "\u0120": 4, "a": 5, "b": 6, "\u0120a": 7, "ab": 8}
MERGES = "#version: 0.2\n\u0120 a\na b\n"


def quiet(*a, **k):
    pass


def read_keys(name):
    rows = []
    with open(os.path.join(KEYS, f"min_dalle_{name}.txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            k, shape, flag = line.rstrip("\n").split("\t")
            rows.append((k, tuple(json.loads(shape)), flag == "absent"))
    return rows


def fake_checkpoints(d, variant_cfg=TINY, half=True, seed=0, names=None):
    """min-dalle-style files in ``d``: encoder/decoder state_dicts without the absent LN weights (fp16 if
    ``half``), detoker state_dict f32, vocab/merges. Returns (src_files, {part: reference f32 state dict})."""
    cfg = DalleConfig(**{k: variant_cfg[k] for k in cm._MODEL_FIELDS})
    g = torch.Generator().manual_seed(seed)
    model = DalleModel(cfg).init_weights(0.5, generator=g, random_ln=True)
    torch.manual_seed(seed)
    vq = VQModel(VQConfig(**variant_cfg["detokenizer"]))
    ref = {"encoder": model.encoder.state_dict(), "decoder": model.decoder.state_dict(),
           "detokenizer": {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in decoder_state_dict(vq).items()}}
    names = names or {"encoder": "encoder_mini.pt", "decoder": "decoder_mini.pt", "detokenizer": "detoker.pt",
                      "vocab": "vocab_mini.json", "merges": "merges_mini.txt"}
    files = {k: os.path.join(d, v) for k, v in names.items()}
    for part in ("encoder", "decoder"):
        sd = {k: (v.half() if half else v.clone()) for k, v in ref[part].items() if not is_absent_ln_weight(k)}
        torch.save(sd, files[part])
    torch.save({k: v.clone() for k, v in ref["detokenizer"].items()}, files["detokenizer"])
    with open(files["vocab"], "w", encoding="utf-8") as f:
        json.dump(VOCAB, f, ensure_ascii=False)
    with open(files["merges"], "w", encoding="utf-8") as f:
        f.write(MERGES)
    return files, ref


def edit_pt(path, fn):
    sd = torch.load(path)
    fn(sd)
    torch.save(sd, path)


class TablesTest(unittest.TestCase):
    @unittest.skipUnless(os.path.isfile(os.path.join(KEYS, "min_dalle_detoker.txt")), "shared/specs/keys not found")
    def test_real_tables_equal_keys_files(self):
        for variant in ("mini", "mega"):
            t = cm.expected_tables(cm.make_model_config(cm.VARIANTS[variant], "f16"))
            self.assertEqual(t["encoder"], read_keys(f"{variant}_encoder"), variant)
            self.assertEqual(t["decoder"], read_keys(f"{variant}_decoder"), variant)
            self.assertEqual(t["detokenizer"], read_keys("detoker"), variant)
            for part, name in (("encoder", f"{variant}_encoder"), ("decoder", f"{variant}_decoder")):
                with open(os.path.join(KEYS, f"min_dalle_{name}.txt")) as f:
                    foot = [l for l in f if l.startswith("#")][0]
                stored = sum(int(np.prod(s)) for _, s, opt in t[part] if not opt)
                self.assertIn(f"# {len(t[part])} tensors, {stored:,} stored elements", foot)

    def test_real_configs(self):
        mini = cm.make_model_config(cm.VARIANTS["mini"], "f16")
        mega = cm.make_model_config(cm.VARIANTS["mega"], "f32")
        self.assertEqual((mini["text_vocab_size"], mini["embed_dim"], mini["attention_heads"], mini["glu_hidden"],
                          mini["encoder_layers"], mini["decoder_layers"], mini["decoder_vocab_rows"]),
                         (50264, 1024, 16, 2730, 12, 12, 16385))
        self.assertEqual((mega["text_vocab_size"], mega["embed_dim"], mega["attention_heads"], mega["glu_hidden"],
                          mega["encoder_layers"], mega["decoder_layers"], mega["decoder_vocab_rows"]),
                         (50272, 2048, 32, 4096, 24, 24, 16416))
        for c in (mini, mega):
            self.assertEqual((c["image_vocab_size"], c["bos_id"], c["pad_id"], c["text_token_count"],
                              c["image_token_grid"], c["image_token_count"], c["image_size"], c["layer_norm_eps"]),
                             (16384, 16383, 1, 64, 16, 256, 256, 1e-5))
            self.assertEqual(c["sampling"], {"supercondition_factor": 16.0, "top_k": 256, "temperature": 1.0})
            d = c["detokenizer"]
            self.assertEqual((d["ch"], d["ch_mult"], d["num_res_blocks"], d["attn_resolutions"], d["z_channels"],
                              d["embed_dim"], d["n_embed"], d["resolution"], d["max_groups"], d["norm_eps"],
                              d["token_side"], d["in_channels"], d["norm_groups"]),
                             (128, [1, 1, 2, 2, 4], 2, [16], 256, 256, 16384, 256, 32, 1e-5, 16, 3,
                              {"128": 32, "256": 32, "512": 32}))
        self.assertEqual((mini["min_dalle_image_vocab_count"], mega["min_dalle_image_vocab_count"]), (16384, 16415))
        self.assertEqual(mega["weights_dtype"], {"encoder": "F32", "decoder": "F32", "detokenizer": "F32"})


class ConvertTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="convert-test-")
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)
        self.out = os.path.join(self.tmp, "models", "dalle")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def convert(self, files, **kw):
        kw.setdefault("log", quiet)
        return cm.convert(TINY, files, self.out, **kw)

    def refuse(self, files, **kw):
        with self.assertRaises(cm.ConvertError) as c:
            self.convert(files, **kw)
        self.assertFalse(os.path.exists(self.out))
        self.assertEqual([p for p in os.listdir(self.tmp) if p != "src"], [])  # no temporaries left
        return str(c.exception)

    def check_roundtrip(self, ref, dtype, src_half):
        c, model, tok, vq = ex.load_model_dir(self.out)
        want_keys = set(ex.make_config(DalleConfig(), ex.detokenizer_config(VQConfig()))) | {
            "min_dalle_image_vocab_count", "source", "notes"}
        self.assertEqual(set(c), want_keys)
        self.assertEqual(c["weights_dtype"], {"encoder": dtype.upper(), "decoder": dtype.upper(), "detokenizer": "F32"})
        self.assertTrue(c["absent_ln_weights_omitted"])
        self.assertEqual((c["decoder_vocab_rows"], c["bos_id"], c["image_token_count"], c["min_dalle_image_vocab_count"]),
                         (36, 31, 16, 35))
        self.assertEqual(c["detokenizer"], ex.detokenizer_config(VQConfig(**TINY_DETOK)))
        for part, mod in (("encoder", model.encoder), ("decoder", model.decoder)):
            tensors, meta = st.read(os.path.join(self.out, part + ".safetensors"))
            self.assertEqual(meta["part"], part)
            self.assertEqual({str(a.dtype) for a in tensors.values()}, {"float16" if dtype == "f16" else "float32"})
            absent = [k for k in ref[part] if is_absent_ln_weight(k)]
            self.assertTrue(absent)
            self.assertFalse(set(absent) & set(tensors))
            self.assertEqual(list(tensors), [k for k in ref[part] if not is_absent_ln_weight(k)])  # model order
            got = mod.state_dict()
            for k, v in ref[part].items():
                if is_absent_ln_weight(k):
                    self.assertTrue(torch.equal(got[k], torch.ones_like(v)), k)
                else:
                    w = v.half().float() if (dtype == "f16" or src_half) else v
                    self.assertTrue(torch.equal(got[k], w), k)
        tensors, _ = st.read(os.path.join(self.out, "detokenizer.safetensors"))
        self.assertEqual(list(tensors), list(ref["detokenizer"]))
        got = decoder_state_dict(vq)
        for k, v in ref["detokenizer"].items():
            self.assertEqual(tensors[k].dtype, np.float32)
            self.assertTrue(torch.equal(got[k], v), k)
        self.assertEqual(tok.tokenize("ab a"), [0, 7, 6, 7, 2])
        with open(os.path.join(self.out, "vocab.json"), encoding="utf-8") as f1, \
                open(os.path.join(self.src, "vocab_mini.json"), encoding="utf-8") as f2:
            self.assertEqual(f1.read(), f2.read())
        with open(os.path.join(self.out, "merges.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), MERGES)

    def test_f16_source_to_f16(self):
        files, ref = fake_checkpoints(self.src, half=True)
        lines = []
        self.convert(files, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
        self.check_roundtrip(ref, "f16", True)
        self.assertEqual(sorted(os.listdir(self.out)), ["config.json", "decoder.safetensors",
                                                        "detokenizer.safetensors", "encoder.safetensors",
                                                        "merges.txt", "vocab.json"])
        text = "\n".join(lines)
        self.assertIn("encoder: encoder_mini.pt -> encoder.safetensors:", text)
        self.assertIn("detokenizer: detoker.pt -> detokenizer.safetensors:", text)
        self.assertIn("converted tiny-min-dalle", text)

    def test_f32_source_to_f16_rounds(self):
        files, ref = fake_checkpoints(self.src, half=False)
        self.convert(files, dtype="f16")
        self.check_roundtrip(ref, "f16", False)

    def test_f32_source_to_f32_exact(self):
        files, ref = fake_checkpoints(self.src, half=False)
        self.convert(files, dtype="f32")
        self.check_roundtrip(ref, "f32", False)

    def test_streamed_header_equals_safetensors_io(self):
        rng = np.random.default_rng(0)
        tensors = {"a": rng.standard_normal((3, 5)).astype(np.float16), "bb": rng.standard_normal(7).astype(np.float16),
                   "empty": np.zeros((0, 4), np.float16)}
        meta = {"format": "x", "part": "encoder"}
        head = cm.safetensors_header([(k, "F16", v.shape) for k, v in tensors.items()], meta)
        body = b"".join(v.tobytes() for v in tensors.values())
        self.assertEqual(head + body, st.serialize(tensors, meta))

    def test_metadata_reader_matches_torch_load(self):
        files, _ = fake_checkpoints(self.src, half=True)
        for part in cm.PARTS:
            sd = torch.load(files[part])
            meta = cm._table_from_meta(files[part])
            self.assertIsNotNone(meta)
            self.assertEqual(meta, {k: (tuple(v.shape), str(v.dtype)[6:]) for k, v in sd.items()})
        # legacy (non-zip) torch.save: falls back to a full torch.load
        legacy = os.path.join(self.src, "legacy.pt")
        torch.save({"w": torch.zeros(2, 3, dtype=torch.float16)}, legacy, _use_new_zipfile_serialization=False)
        self.assertIsNone(cm._table_from_meta(legacy))
        self.assertEqual(cm.read_table(legacy), {"w": ((2, 3), "float16")})
        # not a state dict
        bad = os.path.join(self.src, "bad.pt")
        torch.save({"state_dict": {"w": torch.zeros(1)}}, bad)
        with self.assertRaisesRegex(cm.ConvertError, "not a plain state_dict"):
            cm.read_table(bad)

    def test_refuse_wrong_shape(self):
        files, _ = fake_checkpoints(self.src)
        edit_pt(files["decoder"], lambda sd: sd.__setitem__("layers.1.glu.fc2.weight", torch.zeros(64, 95).half()))
        msg = self.refuse(files)
        self.assertIn("decoder_mini.pt: tensor 'layers.1.glu.fc2.weight': expected shape [64, 96], found [64, 95]",
                      msg)

    def test_refuse_missing_tensor(self):
        files, _ = fake_checkpoints(self.src)
        edit_pt(files["encoder"], lambda sd: sd.pop("layers.0.self_attn.q_proj.weight"))
        msg = self.refuse(files)
        self.assertIn("encoder_mini.pt: missing tensor 'layers.0.self_attn.q_proj.weight' (expected shape [64, 64])",
                      msg)

    def test_refuse_missing_detokenizer_tensor_even_if_ln_like(self):
        files, _ = fake_checkpoints(self.src)
        edit_pt(files["detokenizer"], lambda sd: sd.pop("decoder.norm_out.weight"))
        self.assertIn("detoker.pt: missing tensor 'decoder.norm_out.weight'", self.refuse(files))

    def test_refuse_extra_tensor(self):
        files, _ = fake_checkpoints(self.src)
        edit_pt(files["detokenizer"], lambda sd: sd.__setitem__("encoder.conv_in.weight", torch.zeros(8, 3, 3, 3)))
        msg = self.refuse(files)
        self.assertIn("detoker.pt: unexpected tensor 'encoder.conv_in.weight' with shape [8, 3, 3, 3]", msg)

    def test_refuse_non_float(self):
        files, _ = fake_checkpoints(self.src)
        edit_pt(files["encoder"], lambda sd: sd.__setitem__("final_ln.bias", torch.zeros(64, dtype=torch.int64)))
        self.assertIn("encoder_mini.pt: tensor 'final_ln.bias' has dtype int64", self.refuse(files))

    def test_refuse_non_finite_and_f16_overflow(self):
        files, _ = fake_checkpoints(self.src, half=False)
        edit_pt(files["decoder"], lambda sd: sd["lm_head.weight"].__setitem__((0, 0), 1e6))
        self.assertIn("decoder_mini.pt: tensor 'lm_head.weight' overflows float16", self.refuse(files))
        self.convert(files, dtype="f32")  # fine in f32
        shutil.rmtree(os.path.dirname(self.out))
        edit_pt(files["decoder"], lambda sd: sd["lm_head.weight"].__setitem__((0, 0), float("nan")))
        self.assertIn("decoder_mini.pt: tensor 'lm_head.weight' holds non-finite values",
                      self.refuse(files, dtype="f32"))

    def test_present_absent_ln_weight_is_kept(self):
        files, ref = fake_checkpoints(self.src, half=False)
        w = ref["encoder"]["final_ln.weight"]
        edit_pt(files["encoder"], lambda sd: sd.__setitem__("final_ln.weight", w))
        self.convert(files, dtype="f32")
        tensors, _ = st.read(os.path.join(self.out, "encoder.safetensors"))
        self.assertTrue(np.array_equal(tensors["final_ln.weight"], w.numpy()))
        self.assertNotIn("glu.ln0.weight", " ".join(tensors))

    def test_existing_out(self):
        files, _ = fake_checkpoints(self.src)
        os.makedirs(self.out)
        with open(os.path.join(self.out, "keep.txt"), "w") as f:
            f.write("x")
        with self.assertRaisesRegex(cm.ConvertError, "exists and is not empty .use --force"):
            self.convert(files)
        self.assertEqual(os.listdir(self.out), ["keep.txt"])
        self.convert(files, force=True)
        self.assertNotIn("keep.txt", os.listdir(self.out))
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.out))), ["dalle"])
        # an empty directory is simply filled
        shutil.rmtree(self.out)
        os.makedirs(self.out)
        self.convert(files)
        self.assertIn("config.json", os.listdir(self.out))

    def test_bad_tokenizer(self):
        files, _ = fake_checkpoints(self.src)
        with open(files["vocab"], "w") as f:
            json.dump({"<s>": 0, "<pad>": 2, "</s>": 1, "<unk>": 3}, f)
        self.assertIn("'<pad>'", self.refuse(files))


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="convert-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_main(self, *argv):
        err, out = io.StringIO(), io.StringIO()
        with redirect_stderr(err), redirect_stdout(out):
            rc = cm.main(list(argv))
        return rc, err.getvalue()

    def test_missing_files(self):
        rc, err = self.run_main("--variant", "mega", "--src", self.tmp, "--out", os.path.join(self.tmp, "o"))
        self.assertEqual(rc, 2)
        self.assertIn("missing encoder.pt, decoder.pt, detoker.pt, vocab.json, merges.txt for --variant mega", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "o")))

    def test_tiny_files_refused_against_real_mini_table(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        fake_checkpoints(src)
        out = os.path.join(self.tmp, "o")
        rc, err = self.run_main("--variant", "mini", "--src", src, "--out", out)
        self.assertEqual(rc, 2)
        self.assertIn("encoder_mini.pt: tensor 'embed_tokens.weight': expected shape [50264, 1024], found [40, 64]",
                      err)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(os.listdir(self.tmp), ["src"])

    def test_pretrained_layout_and_variant_hint(self):
        # min-dalle's own folder layout is found; mini-sized embed_tokens with --variant mega gets a hint
        src = os.path.join(self.tmp, "pretrained")
        os.makedirs(os.path.join(src, "dalle_bart_mega"))
        os.makedirs(os.path.join(src, "vqgan"))
        names = cm.pretrained_files("mega")
        fake_checkpoints(src, names=names)
        edit_pt(os.path.join(src, names["encoder"]),
                lambda sd: sd.__setitem__("embed_tokens.weight", torch.empty(50264, 1024, dtype=torch.float16)))
        rc, err = self.run_main("--variant", "mega", "--src", src, "--out", os.path.join(self.tmp, "o"))
        self.assertEqual(rc, 2)
        self.assertIn("encoder.pt: tensor 'embed_tokens.weight': expected shape [50272, 2048], found [50264, 1024]",
                      err)
        self.assertIn("try --variant mini", err)

    def test_existing_out_refused_first(self):
        out = os.path.join(self.tmp, "o")
        os.makedirs(out)
        open(os.path.join(out, "x"), "w").close()
        rc, err = self.run_main("--variant", "mini", "--src", self.tmp, "--out", out)
        self.assertEqual(rc, 2)
        self.assertIn("exists and is not empty (use --force to replace it)", err)

    def test_bad_dtype(self):
        with redirect_stderr(io.StringIO()):
            with self.assertRaises(SystemExit) as c:
                cm.main(["--variant", "mini", "--src", self.tmp, "--out", "x", "--dtype", "bf16"])
        self.assertEqual(c.exception.code, 2)


if __name__ == "__main__":
    unittest.main()
