"""Tests of the shapes world and its judge:  cd <repo> && /usr/bin/python3 -m unittest tools.shapes.test_world_judge -v

The accuracy test prints its figures (clean / noisy / blurred / wrong caption / hard negatives) on stderr.
"""

import collections
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from tools.shapes import cli, judge, world

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def box_blur3(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32)
    p = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
    H, W = img.shape[:2]
    out = sum(p[dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)) / 9.0
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def gauss_noise(img: np.ndarray, rs: np.random.RandomState, sigma: float = 8.0) -> np.ndarray:
    return np.clip(np.round(img.astype(np.float32) + rs.normal(0.0, sigma, img.shape)), 0, 255).astype(np.uint8)


class WorldTest(unittest.TestCase):
    def test_determinism_by_seed(self):
        for size in (32, 64):
            a = [world.sample(random.Random(123), size=size) for _ in range(1)]
            r1, r2 = random.Random(42), random.Random(42)
            for _ in range(50):
                s1, i1, c1 = world.sample(r1, size=size)
                s2, i2, c2 = world.sample(r2, size=size)
                self.assertEqual(s1, s2)
                self.assertEqual(c1, c2)
                self.assertTrue(np.array_equal(i1, i2))
            self.assertEqual(a[0][0], world.sample(123, size=size)[0])  # int seed == Random(seed)
        caps = {world.sample(seed)[2] for seed in range(20)}
        self.assertGreater(len(caps), 15)

    def test_scenes_valid_and_varied(self):
        for size in (32, 64):
            r = random.Random(size)
            seen = collections.Counter()
            for _ in range(1500):
                s = world.sample_scene(r, split="any", size=size)
                self.assertTrue(world.scene_is_valid(s))
                img = world.render(s)
                self.assertEqual(img.shape, (size, size, 3))
                self.assertEqual(img.dtype, np.uint8)
                # every object is drawn with its exact colour, hard edges: only palette colours in the image
                cols = {tuple(c) for c in img.reshape(-1, 3)}
                want = {world.BACKGROUNDS[s.background]} | {world.COLOURS[o.colour] for o in s.objects}
                self.assertEqual(cols, want)
                seen["n%d" % len(s.objects)] += 1
                seen[s.background] += 1
                for o in s.objects:
                    seen[o.shape] += 1
                    seen[o.colour] += 1
                    seen[o.size] += 1
                    seen[o.position] += 1
            for k in list(world.SHAPES) + list(world.COLOURS) + list(world.SIZES) + list(world.POSITIONS) + \
                    list(world.BACKGROUNDS) + ["n1", "n2"]:
                self.assertGreater(seen[k], 30, k)

    def test_heldout_split(self):
        r = random.Random(7)
        for _ in range(3000):
            self.assertFalse(world.is_held_out(world.sample_scene(r, split="train")))
        kinds = collections.Counter()
        for _ in range(500):
            s = world.sample_scene(r, split="heldout")
            self.assertTrue(world.is_held_out(s))
            for o in s.objects:
                if world.obj_is_held_out(o):
                    kinds[(o.shape, o.colour)] += 1
        # every held-out combination is reachable from split="heldout"
        want = {c for c in world.HELDOUT_SHAPE_COLOUR} | {(c[0], c[2]) for c in world.HELDOUT_SHAPE_SIZE_COLOUR}
        self.assertEqual(set(kinds), want)
        self.assertTrue(world.is_held_out(world.Scene((world.Obj("triangle", "green", "small", "left"),), "white")))
        self.assertTrue(world.is_held_out(world.Scene((world.Obj("circle", "purple", "large", "left"),), "white")))
        self.assertFalse(world.is_held_out(world.Scene((world.Obj("circle", "purple", "small", "left"),), "white")))

    def test_caption_round_trip_all_templates(self):
        r = random.Random(3)
        for n, temps in ((1, world.SINGLE_TEMPLATES), (2, world.PAIR_TEMPLATES)):
            for t in range(len(temps)):
                for bg in (False, True):
                    for _ in range(60):
                        s = world.sample_scene(r, split="any", n_objects=n)
                        cap = world.render_caption(s, r, template=t, background=bg)
                        got = world.parse_caption(cap)
                        self.assertTrue(world.same_constraints(got, world.scene_constraints(s, bg)),
                                        f"{cap!r} -> {got}")
                        # case and punctuation do not matter
                        noisy = "  " + cap.upper().replace(" ", "  ") + "!! "
                        self.assertTrue(world.same_constraints(world.parse_caption(noisy), got), noisy)

    def test_parse_examples(self):
        c = world.parse_caption("A small red circle on the left and a large blue square at the bottom on a white "
                                "background.")
        self.assertEqual(c.background, "white")
        self.assertEqual([(o.shape, o.colour, o.size, o.position) for o in c.objects],
                         [("circle", "red", "small", "left"), ("square", "blue", "large", "bottom")])
        c = world.parse_caption("To the right there is a big violet box and at the top there is a tiny orange plus sign")
        self.assertIsNone(c.background)
        self.assertEqual([(o.shape, o.colour, o.size, o.position) for o in c.objects],
                         [("square", "purple", "large", "right"), ("cross", "orange", "small", "top")])
        c = world.parse_caption("a green triangle")  # unstated attributes are unconstrained
        self.assertEqual((c.objects[0].size, c.objects[0].position), (None, None))
        with self.assertRaises(world.CaptionError):
            world.parse_caption("nothing to see here")

    def test_png_round_trip(self):
        s, img, _ = world.sample(5, size=64)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.png")
            cli.write_png(p, img)
            self.assertTrue(np.array_equal(cli.read_png(p), img))


class JudgeTest(unittest.TestCase):
    def test_accuracy(self):
        t0 = time.time()
        N = 1000
        r = random.Random(2024)
        rs = np.random.RandomState(2024)
        data = [world.sample(r, split="any", size=32) for _ in range(N)]
        acc = collections.Counter()
        hard_n = collections.Counter()
        for i, (scene, img, cap) in enumerate(data):
            acc["clean"] += judge.judge(img, cap)[0]
            acc["noise"] += judge.judge(gauss_noise(img, rs), cap)[0]
            acc["blur"] += judge.judge(box_blur3(img), cap)[0]
            acc["noise+blur"] += judge.judge(box_blur3(gauss_noise(img, rs)), cap)[0]
            acc["wrong"] += judge.judge(img, data[(i + 1 + r.randrange(N - 1)) % N][2])[0]
            neg, attr = world.perturb_scene(scene, r)
            neg_cap = world.render_caption(neg, r, background=True if attr == "background" else None)
            ok = judge.judge(img, neg_cap)[0]
            acc["hard"] += ok
            acc["hard_" + attr] += ok
            hard_n[attr] += 1
        # a smaller 64x64 run
        N64 = 150
        d64 = [world.sample(r, split="any", size=64) for _ in range(N64)]
        for scene, img, cap in d64:
            acc["clean64"] += judge.judge(img, cap)[0]
            acc["noise+blur64"] += judge.judge(box_blur3(gauss_noise(img, rs)), cap)[0]
        rates = {k: acc[k] / N for k in ("clean", "noise", "blur", "noise+blur", "wrong", "hard")}
        rates.update({k: acc[k] / N64 for k in ("clean64", "noise+blur64")})
        per_attr = {a: f"{acc['hard_' + a]}/{hard_n[a]}" for a in sorted(hard_n)}
        sys.stderr.write("\n[shapes judge] accept rates, %d images 32x32 (+%d at 64x64): %s\n"
                         "[shapes judge] hard negatives accepted per changed attribute: %s  (%.1f s)\n"
                         % (N, N64, {k: round(v, 4) for k, v in rates.items()}, per_attr, time.time() - t0))
        self.assertGreaterEqual(rates["clean"], 0.99)
        self.assertGreaterEqual(rates["noise"], 0.97)
        self.assertGreaterEqual(rates["blur"], 0.97)
        self.assertGreaterEqual(rates["noise+blur"], 0.97)
        self.assertGreaterEqual(rates["clean64"], 0.99)
        self.assertGreaterEqual(rates["noise+blur64"], 0.97)
        self.assertLess(rates["wrong"], 0.05)
        self.assertLess(rates["hard"], 0.05)

    def test_rejections(self):
        s = world.Scene((world.Obj("circle", "red", "small", "left"),), "white")
        img = world.render(s)
        self.assertTrue(judge.judge(img, "a small red circle on the left")[0])
        self.assertTrue(judge.judge(img, "A red circle.")[0])  # unstated size / position / background: unchecked
        ok, d = judge.judge(img, "a small red circle on the left on a black background")
        self.assertFalse(ok)
        self.assertIn("background", judge.explain(d))
        ok, d = judge.judge(img, "a small red circle on the left and a small red circle on the right")
        self.assertFalse(ok)
        self.assertIn("object count", judge.explain(d))
        blank = np.full((32, 32, 3), 255, np.uint8)
        self.assertFalse(judge.judge(blank, "a small red circle on the left")[0])
        noise = np.random.RandomState(0).randint(0, 256, (32, 32, 3)).astype(np.uint8)
        self.assertFalse(judge.judge(noise, "a small red circle on the left")[0])
        self.assertFalse(judge.judge(img, "hello")[0])


class CliTest(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-m", "tools.shapes", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=60)

    def test_cli(self):
        with tempfile.TemporaryDirectory() as d:
            p = self.run_cli("sample", "--n", "4", "--seed", "1", "--out", d)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(d, "captions.txt")) as f:
                lines = f.read().splitlines()
            self.assertEqual(len(lines), 4)
            name, cap = lines[0].split("\t")
            img = os.path.join(d, name)
            self.assertEqual(self.run_cli("judge", img, cap).returncode, 0)
            other = [c for c in (l.split("\t")[1] for l in lines[1:]) if not world.same_constraints(
                world.parse_caption(c), world.parse_caption(cap))][0]
            p = self.run_cli("judge", img, other)
            self.assertEqual(p.returncode, 1)
            self.assertTrue(p.stdout.startswith("not ok"), p.stdout)
            self.assertEqual(self.run_cli("judge", os.path.join(d, "missing.png"), cap).returncode, 2)
            self.assertEqual(self.run_cli("judge", img, "no shapes here").returncode, 2)
            self.assertEqual(self.run_cli("sample", "--n", "zero", "--out", d).returncode, 2)
            self.assertEqual(self.run_cli().returncode, 2)


if __name__ == "__main__":
    unittest.main()
