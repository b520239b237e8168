#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   tools/bootstrap.sh run    install what is missing, build, run the main job
#   tools/bootstrap.sh test   install what is missing, build, run the whole test suite
#   tools/bootstrap.sh bench  install what is missing (OpenBLAS, PyTorch too), build, run the benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
build=${TESSERA_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential cmake pkg-config libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers glslang-tools
          spirv-tools libstb-dev libyaml-cpp-dev libgtest-dev libopenblas-dev python3 python3-numpy
          python3-torch libopenblas0-pthread)
# Torch runs the tool tests (tools/vq) and the bench references; with OpenBLAS it is ~20x faster here.

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs"

case "$mode" in
  run)
    # The main job: a picture from a prompt with the bundled tiny DALL-E (docs/MODELS.md), checked by the judge.
    prompt=${TESSERA_PROMPT:-"a small red circle on the left and a large blue square at the bottom on a white background"}
    "$build/bin/tessera" run configs/text-to-image.yaml --prompt "$prompt" --out out
    "$build/bin/tessera" eval out/text-to-image-0.png || true
    ;;
  test)
    cd "$build"
    ctest --output-on-failure -j "$jobs" --timeout 600
    ;;
  bench)
    "$build/bin/tessera" bench ops
    ;;
  *)
    echo "usage: tools/bootstrap.sh run|test|bench" >&2
    exit 2
    ;;
esac
