#!/usr/bin/env bash
# Prompt fidelity of the C++ pipeline: N fresh shapes-world captions of seen combinations and N of held-out
# ones, drawn by `tessera run configs/text-to-image.yaml` with the model's default sampling, then judged
# by `tessera eval` against the prompt stored in each PNG.
#   tools/eval_text_to_image.sh [N] [MODEL_DIR]      (defaults: 500, models/tiny-dalle)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}
model=${2:-models/tiny-dalle}
tessera=${TESSERA:-build/bin/tessera}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for split in train heldout; do
  /usr/bin/python3 -m tools.shapes sample --n "$n" --seed 424242 --split "$split" --out "$work/$split-world" >/dev/null
  cut -f2 "$work/$split-world/captions.txt" > "$work/$split-prompts.txt"
  start=$(date +%s)
  "$tessera" run configs/text-to-image.yaml --prompts "$work/$split-prompts.txt" --input model="$model" \
      --input upscale=1 --out "$work/$split" --progress none >/dev/null
  seconds=$(( $(date +%s) - start ))
  result=$({ "$tessera" eval "$work/$split"/*.png || true; } | tail -1)
  echo "$split: $result  ($n images in ${seconds}s)"
done
