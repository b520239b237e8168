#!/bin/sh
# One-command retrain of the tiny GPT-2 (models/tiny-gpt2, tests/data/gpt2/golden.*): corpus + captions, BPE,
# training, export, golden vectors, caption evaluation. Options pass through to tools/gpt2/retrain.py, e.g.
#   tools/gpt2/retrain.sh --device cuda --minutes 30
# Needs: apt-get install -y bible-kjv   (the default corpus)
set -e
cd "$(dirname "$0")/../.."
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -m tools.gpt2.retrain "$@"
