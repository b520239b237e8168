# Tiny GPT-2 tools (tools/gpt2): HF GPT-2 key table, KV cache vs teacher forcing, logits processors, byte-level BPE
# trainer, export round trip and refusals, golden vectors, random-small generator (1 layer), a tiny training run.
# include()d from tests/python/CMakeLists.txt, which defines TESSERA_REPO_ROOT.
add_test(NAME gpt2_tools
         COMMAND /usr/bin/python3 -m unittest tools.gpt2.test_gpt2
         WORKING_DIRECTORY ${TESSERA_REPO_ROOT})
set_tests_properties(gpt2_tools PROPERTIES TIMEOUT 300 LABELS python)
