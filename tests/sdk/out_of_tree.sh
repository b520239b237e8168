#!/bin/sh
# The SDK as a third party gets it: install Tessera into a fresh prefix, build examples/image-filter out of
# tree with find_package(Tessera), install the plugin next to the installed CLI, and run its pipeline
# with the installed `tessera` (validation on).
#   out_of_tree.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
build=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$src/examples/image-filter" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
cmake --install "$work/build" > "$work/install-plugin.log"
"$work/prefix/bin/tessera" plugins | grep -q "example.filters"
TESSERA_VALIDATE=1 TESSERA_CACHE_DIR="$work/cache" "$work/prefix/bin/tessera" run \
    "$src/examples/image-filter/invert.yaml" --input picture="$src/examples/image-filter/sample.png" \
    --out "$work/out"
test -s "$work/out/invert-0.png"
echo "out-of-tree plugin built, installed and run"
