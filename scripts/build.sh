#!/bin/bash
# Configures and builds vunify into ./build with one configuration for every README command
# (RelWithDebInfo, warnings as errors, ccache when it is installed), so the demo and the tests
# reuse each other's build. Arguments: targets to build (default: all, the test suite included).
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVUNIFY_WERROR=ON)
if command -v ccache >/dev/null 2>&1; then
  flags+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
else
  flags+=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=)
fi
cmake -S . -B build "${flags[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
