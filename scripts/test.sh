#!/bin/bash
# README command 2: install dependencies, build (the demo's configuration: warnings are errors),
# run every test (ctest over the Catch2 suite, as root: real FUSE mounts, namespaces, xattrs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
