# Whisper tools (tools/whisper): OpenAI name tables, attention and KV cache, the mel front end (filters, STFT, floor),
# tiktoken rank files and special ids, the greedy / beam decoding rules, the checkpoint converter (round trip and
# refusals), the golden-vector tool at small dims; test_train: the tiny recognizer's data, vocabulary, training and
# export (its espeak-ng test skips where espeak-ng is not installed).
# include()d from tests/python/CMakeLists.txt, which defines TESSERA_REPO_ROOT.
add_test(NAME whisper_tools
         COMMAND /usr/bin/python3 -m unittest tools.whisper.test_whisper tools.whisper.test_train
         WORKING_DIRECTORY ${TESSERA_REPO_ROOT})
set_tests_properties(whisper_tools PROPERTIES TIMEOUT 300 LABELS python)
