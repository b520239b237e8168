# Small VQGAN image tokenizer (tools/vq): model shapes, min-dalle detokenizer key names/shapes, a short training run.
# include()d from tests/python/CMakeLists.txt, which defines TESSERA_REPO_ROOT.
add_test(NAME vq_model
         COMMAND /usr/bin/python3 -m unittest tools.vq.test_vq
         WORKING_DIRECTORY ${TESSERA_REPO_ROOT})
set_tests_properties(vq_model PROPERTIES TIMEOUT 900 LABELS python)
