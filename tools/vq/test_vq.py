"""Tests for the small VQGAN (tools/vq). Run: /usr/bin/python3 -m unittest tools.vq.test_vq -v"""
from __future__ import annotations

import os
import random
import re
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

from tools.vq.model import VQConfig, VQModel, decoder_state_dict, load, save
from tools.vq import train as vqtrain

torch.set_num_threads(2)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS_FILE = os.path.join(REPO, "..", "shared", "specs", "keys", "min_dalle_detoker.txt")

_RES = r"block_[12]\.(norm1|norm2|conv1|conv2|nin_shortcut)"
_ATT = r"(norm|q|k|v|proj_out)"
KEY_PATTERNS = [re.compile(p + r"\.(weight|bias)$") for p in (
    r"^embedding",
    r"^post_quant_conv",
    r"^decoder\.conv_in",
    r"^decoder\.mid\." + _RES,
    r"^decoder\.mid\.attn_1\." + _ATT,
    r"^decoder\.up\.\d+\.block\.\d+\.(norm1|norm2|conv1|conv2|nin_shortcut)",
    r"^decoder\.up\.\d+\.attn\.\d+\." + _ATT,
    r"^decoder\.up\.\d+\.upsample\.conv",
    r"^decoder\.norm_out",
    r"^decoder\.conv_out",
)]

REAL = dict(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, attn_resolutions=(16,), z_channels=256,
            embed_dim=256, n_embed=16384, resolution=256)


def read_reference():
    ref = {}
    with open(KEYS_FILE) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, shape = line.split("\t")[:2]
            ref[name] = tuple(int(s) for s in shape.strip("[] ").split(",") if s.strip())
    return ref


def tiny_config(**kw):
    d = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16,), z_channels=8, embed_dim=8,
             n_embed=32, resolution=32)
    d.update(kw)
    return VQConfig(**d)


class ModelTest(unittest.TestCase):
    def test_encode_decode_shapes(self):
        torch.manual_seed(0)
        for cfg in (tiny_config(), vqtrain.default_config(32)):
            m = VQModel(cfg).eval()
            rng = random.Random(3)
            imgs, _ = vqtrain.batch(rng, 4, 32)
            ids = m.encode(imgs)                        # uint8 NHWC numpy accepted
            s = cfg.token_side
            self.assertEqual(tuple(ids.shape), (4, s * s))
            self.assertEqual(ids.dtype, torch.int64)
            self.assertTrue(bool((ids >= 0).all()) and bool((ids < cfg.n_embed).all()))
            with torch.no_grad():
                out = m.decode(ids)
            self.assertEqual(tuple(out.shape), (4, 3, 32, 32))
            u8 = m.decode_uint8(ids)
            self.assertEqual(u8.shape, (4, 32, 32, 3))
            self.assertEqual(u8.dtype, np.uint8)
            # same ids from float NCHW input
            x = vqtrain.to_tensor(imgs, "cpu")
            self.assertTrue(torch.equal(m.encode(x), ids))
        self.assertEqual(vqtrain.default_config(32).token_side, 8)
        self.assertEqual(vqtrain.default_config(64).token_side, 8)

    def test_decode_is_row_major(self):
        # decode(ids) must equal decoding the embedding laid out as row t // w, column t % w
        torch.manual_seed(1)
        m = VQModel(tiny_config()).eval()
        ids = torch.randint(0, 32, (2, 256))
        with torch.no_grad():
            z = m.embedding.weight[ids].reshape(2, 16, 16, -1).permute(0, 3, 1, 2)
            ref = m.decoder(m.post_quant_conv(z))
            self.assertTrue(torch.allclose(m.decode(ids), ref))

    def test_groupnorm_groups_and_eps(self):
        cfg = tiny_config()
        m = VQModel(cfg)
        for mod in m.modules():
            if isinstance(mod, torch.nn.GroupNorm):
                self.assertEqual(mod.num_groups, min(32, mod.num_channels))
                self.assertEqual(mod.eps, 1e-5)
        self.assertEqual(cfg.norm_groups(), {8: 8, 16: 16})
        self.assertIn("norm_groups", cfg.to_json())
        self.assertEqual(VQConfig.from_json(cfg.to_json()), cfg)

    def test_decoder_keys_match_pattern(self):
        for cfg in (tiny_config(), tiny_config(ch_mult=(1, 2, 2, 4), num_res_blocks=2, attn_resolutions=(4, 8)),
                    vqtrain.default_config(32)):
            sd = decoder_state_dict(VQModel(cfg))
            self.assertTrue(sd)
            for k in sd:
                self.assertTrue(any(p.match(k) for p in KEY_PATTERNS), k)
            self.assertFalse(any(k.startswith(("encoder.", "quant_conv.", "ema_")) for k in sd))

    def test_real_sizes_match_min_dalle_detokenizer(self):
        ref = read_reference()
        self.assertEqual(len(ref), 197)
        m = VQModel(VQConfig(**REAL))
        sd = decoder_state_dict(m)
        mine = {k: tuple(v.shape) for k, v in sd.items()}
        self.assertEqual(set(mine), set(ref))
        self.assertEqual(mine, ref)
        self.assertEqual(sum(v.numel() for v in sd.values()), 46_709_891)
        for mod in m.decoder.modules():
            if isinstance(mod, torch.nn.GroupNorm):
                self.assertEqual((mod.num_groups, mod.eps), (32, 1e-5))

    def test_save_load_roundtrip(self):
        torch.manual_seed(2)
        m = VQModel(tiny_config()).eval()
        imgs, _ = vqtrain.batch(random.Random(5), 2, 32)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "vq.pt")
            save(m, p)
            m2 = load(p)
        self.assertEqual(m2.cfg, m.cfg)
        self.assertTrue(torch.equal(m.encode(imgs), m2.encode(imgs)))


class QuantizerTest(unittest.TestCase):
    def test_kmeans_init_and_bypass(self):
        torch.manual_seed(3)
        m = VQModel(tiny_config(n_embed=16)).train()
        imgs, _ = vqtrain.batch(random.Random(7), 4, 32)
        rec, vq, ids = m(imgs, bypass=True)                    # plain autoencoder: no quantizer, no ids
        self.assertIsNone(ids)
        self.assertEqual(float(vq), 0.0)
        self.assertEqual(tuple(rec.shape), (4, 3, 32, 32))
        self.assertFalse(bool(m.ema_initialized))
        z = m.encode_z(imgs)
        self.assertEqual(tuple(z.shape), (4 * 16 * 16, 8))
        err_rand = m.init_codebook(z, iters=0)
        err_km = m.init_codebook(z, iters=10)
        self.assertTrue(bool(m.ema_initialized))
        self.assertLess(err_km, err_rand)
        self.assertTrue(torch.equal(m.ema_embed_sum, m.embedding.weight))

    def test_l2_codes_decoder_consumes_stored_rows(self):
        torch.manual_seed(4)
        m = VQModel(tiny_config(l2_codes=True)).train()
        imgs, _ = vqtrain.batch(random.Random(8), 4, 32)
        m.init_codebook(m.encode_z(imgs), iters=3)
        for _ in range(3):                                      # EMA updates and dead-code re-seeding
            m(imgs)
        norms = m.embedding.weight.norm(dim=1)
        self.assertTrue(torch.allclose(norms, torch.ones_like(norms), atol=1e-5))
        m.eval()
        ids = m.encode(imgs)
        with torch.no_grad():
            z = m.embedding.weight[ids].reshape(4, 16, 16, -1).permute(0, 3, 1, 2)
            ref = m.decoder(m.post_quant_conv(z))
            rec, _, ids2 = m(imgs)
            self.assertTrue(torch.allclose(m.decode(ids), ref))
            self.assertTrue(torch.allclose(rec, ref, rtol=1e-4, atol=1e-3 * float(ref.abs().max())))
        self.assertTrue(torch.equal(ids, ids2))

    def test_edge_weighted_loss(self):
        imgs, _ = vqtrain.batch(random.Random(9), 2, 32)
        x = vqtrain.to_tensor(imgs, "cpu")
        e = vqtrain.edge_map(x)
        self.assertEqual(tuple(e.shape), (2, 1, 32, 32))
        self.assertTrue(0 < float(e.mean()) < 0.5)
        self.assertEqual(float(e[:, :, 0, 0].sum()), 0.0)       # corners are background
        y = x.flip(3)
        plain = vqtrain.pixel_loss(y, x)
        self.assertAlmostEqual(float(plain), float(F.l1_loss(y, x) + F.mse_loss(y, x)), places=6)
        self.assertGreater(float(vqtrain.pixel_loss(y, x, edge_weight=10.0)), float(plain))


class TrainTest(unittest.TestCase):
    def test_thirty_steps_reduce_loss(self):
        torch.manual_seed(0)
        cfg = tiny_config(attn_resolutions=())
        m = VQModel(cfg).train()
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
        rng = random.Random(0)
        fixed, _ = vqtrain.batch(random.Random(99), 32, 32)
        xf = vqtrain.to_tensor(fixed, "cpu")

        def eval_loss():
            m.eval()
            with torch.no_grad():
                rec, vq, _ = m(xf)
                v = (F.l1_loss(rec, xf) + F.mse_loss(rec, xf)).item()
            m.train()
            return v

        losses = []
        for step in range(30):
            imgs, _ = vqtrain.batch(rng, 16, 32)
            x = vqtrain.to_tensor(imgs, "cpu")
            rec, vq, ids = m(x)
            loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + vq
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step == 0:
                first_eval = eval_loss()
        self.assertLess(np.mean(losses[-5:]), 0.7 * np.mean(losses[:5]))
        self.assertLess(eval_loss(), first_eval)
        self.assertTrue(bool(m.ema_initialized))

    def test_train_cli_smoke(self):
        with tempfile.TemporaryDirectory() as d:
            rc = vqtrain.main(["--out", d, "--minutes", "5", "--max-steps", "2", "--batch", "8", "--eval-n", "10",
                               "--seed", "3", "--log-every", "1000"])
            self.assertEqual(rc, 0)
            self.assertTrue(os.path.exists(os.path.join(d, "vq.pt")))
            m = load(os.path.join(d, "vq.pt"))
            self.assertEqual(m.cfg, vqtrain.default_config(32))


if __name__ == "__main__":
    unittest.main()
