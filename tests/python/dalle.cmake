# Tiny DALL-E Mini tools (tools/dalle): tokenizer, min-dalle key tables, KV cache, export round trip, training smoke.
# include()d from tests/python/CMakeLists.txt, which defines TESSERA_REPO_ROOT.
add_test(NAME dalle_tools
         COMMAND /usr/bin/python3 -m unittest tools.dalle.test_dalle
         WORKING_DIRECTORY ${TESSERA_REPO_ROOT})
set_tests_properties(dalle_tools PROPERTIES TIMEOUT 300 LABELS python)
