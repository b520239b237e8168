#!/bin/sh
# One-command retrain of the tiny DALL-E (models/tiny-dalle, tests/data/dalle): VQ, tokenizer, transformer,
# export, golden vectors, judge evaluation. Options pass through to tools/dalle/retrain.py (see --help), e.g.
#   tools/retrain_tiny_dalle.sh --device cuda --dalle-minutes 60
set -e
cd "$(dirname "$0")/.."
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -m tools.dalle.retrain "$@"
