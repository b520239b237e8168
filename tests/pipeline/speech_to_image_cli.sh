#!/bin/sh
# configs/speech-to-image.yaml end to end with its defaults (the bundled recognizer and its spoken sample, the
# bundled painter): the transcript must be the PyTorch reference's greedy transcript of the same WAV with the
# same model, and the picture must be written.
#   speech_to_image_cli.sh TESSERA SOURCE_DIR OUT_DIR
set -e
tessera=$1 src=$2 out=$3
rm -rf "$out"
"$tessera" run "$src/configs/speech-to-image.yaml" --out "$out"
got=$(cat "$out"/speech-to-image-0.txt)
want=$(cd "$src" && PYTHONPATH="$src" /usr/bin/python3 -m tools.whisper.evaluate --model-dir models/tiny-whisper \
       --wav models/tiny-whisper/sample.wav)
if [ "$got" != "$want" ]; then
  echo "transcript: '$got'"
  echo "reference:  '$want'"
  exit 1
fi
test -s "$out"/speech-to-image-0.png || { echo "no picture"; exit 1; }
echo "speech-to-image-ok"
