#!/usr/bin/env bash
# The AWS bash custom-runtime example (developer guide, "Tutorial: building a custom runtime"):
# bootstrap in a layer, function.sh as the function's code. analyze shows it fails on provided.al2
# (no curl there) and passes on provided.al2023; build zips both; invoke runs them in the sandbox.
# Usage: examples/bash/run.sh [WORKDIR]     (default: ./build next to this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work/layer" "$work/function" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }
fails() { printf '\n$ %s   # expected to fail\n' "$*" >&2; if "$@"; then echo "unexpected success: $*" >&2; exit 1; fi; }

cp "$here/bootstrap" layer/bootstrap && cp "$here/function.sh" function/function.sh

fails layerpack analyze layer --runtime provided.al2     # LP406: bootstrap runs curl; provided.al2 has none
run layerpack analyze layer                               # provided.al2023 (the default): clean
run layerpack build layer -o layer.zip
run layerpack build function -o function.zip
run layerpack check layer.zip --function function.zip
run layerpack invoke layer.zip --function function.zip --handler function.handler \
    --event "$here/event.json" | tee response.out
