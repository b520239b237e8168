# min-dalle checkpoint converter (tools/convert_min_dalle.py): real Mini/Mega/VQGAN tables vs shared/specs/keys,
# conversion of small synthetic min-dalle checkpoints, refusals. include()d from tests/python/CMakeLists.txt,
# which defines TESSERA_REPO_ROOT.
add_test(NAME convert_min_dalle
         COMMAND /usr/bin/python3 -m unittest tools.test_convert_min_dalle
         WORKING_DIRECTORY ${TESSERA_REPO_ROOT})
set_tests_properties(convert_min_dalle PROPERTIES TIMEOUT 300 LABELS python)
