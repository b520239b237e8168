#!/bin/sh
# configs/transcribe.yaml end to end through the CLI: the transcript file must hold the reference's beam text.
#   transcribe_cli.sh TESSERA CONFIG GOLDEN_DIR OUT_DIR
set -e
tessera=$1 config=$2 golden=$3 out=$4
rm -rf "$out"
"$tessera" run "$config" --input audio="$golden/speech.wav" --input model="$golden/model" --input beam_size=4 --out "$out"
got=$(cat "$out"/transcribe-*.txt)
want=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["beam_text"])' "$golden/golden.json")
if [ "$got" != "$want" ]; then
  echo "transcript: '$got'"
  echo "expected:   '$want'"
  exit 1
fi
echo "transcript-ok"
