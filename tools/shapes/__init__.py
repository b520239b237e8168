"""Tessera "shapes world": a seeded synthetic captioned-image world and a pixel-analysis judge (Python tools).

    from tools.shapes import world, judge
    scene, image, caption = world.sample(seed_or_rng, split="train", size=32)
    ok, details = judge.judge(image, caption)

See tools/shapes/README.md.
"""
