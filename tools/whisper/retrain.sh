#!/bin/sh
# One-command retrain of the tiny Whisper recognizer (models/tiny-whisper): espeak-ng speech (synthesised once and
# cached in WORK/data.pt), BPE vocabulary + training (tools/whisper/train.py), export, held-out word error rates.
#
#   tools/whisper/retrain.sh [--work /tmp/tiny-whisper-work] [--minutes 44] [--threads 1] [--fresh]
#                            [--model-out models/tiny-whisper] [extra options for tools/whisper/train.py ...]
#
# Needs Debian's espeak-ng and bible-kjv (the general sentences; fortunes is the fallback):
#   apt-get install -y espeak-ng bible-kjv
# Takes about 55 minutes on 2 vCPUs: ~5 min synthesis (skipped when WORK/data.pt is cached), --minutes of training,
# ~2 min evaluation. An interrupted run resumes its training from WORK/run/state.pt when run again (same options);
# --fresh starts the training over (the cached speech is kept).
set -e
cd "$(dirname "$0")/../.."
WORK=/tmp/tiny-whisper-work
MINUTES=44
THREADS=1
FRESH=
OUT=models/tiny-whisper
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --model-out) OUT=$2; shift 2 ;;
    --fresh) FRESH=--fresh; shift ;;
    *) break ;;
  esac
done
if ! command -v espeak-ng >/dev/null 2>&1; then
  echo "error: espeak-ng is missing: apt-get install -y espeak-ng" >&2
  exit 2
fi
if ! command -v bible >/dev/null 2>&1; then
  echo "warning: bible-kjv is missing (apt-get install -y bible-kjv); falling back to the fortunes package" >&2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=/usr/bin/python3
mkdir -p "$WORK"
T0=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - T0 ))s)"; }
step data
$PY -m tools.whisper.data --out "$WORK/data.pt"
step train
$PY -m tools.whisper.train --out "$WORK/run" --data "$WORK/data.pt" --minutes "$MINUTES" --threads "$THREADS" $FRESH "$@"
step export
$PY -m tools.whisper.export --ckpt "$WORK/run/whisper.pt" --out "$OUT"
step evaluate
$PY -m tools.whisper.evaluate --model-dir "$OUT" --data "$WORK/data.pt" --threads "$THREADS" \
  --json-out "$WORK/eval.json"
step "done: $(( ($(date +%s) - T0) / 60 )) min; model in $OUT, word error rates in $WORK/eval.json"
