#!/usr/bin/env bash
# The stdio adapter: `layerpack wrap` turns a program that reads JSON lines on stdin and writes
# JSON lines on stdout into a custom runtime (bash + curl bootstrap, provided.al2023) that starts
# it once per container; and into a nodejs22.x handler (index.mjs) doing the same from Node.js.
# Usage: examples/stdio-adapter/run.sh [WORKDIR]     (default: ./build next to this script)
# Needs: bubblewrap; node (for the nodejs22.x variant, skipped when absent).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

run layerpack wrap "$here/handler.sh" --out layer           # bootstrap + bin/handler.sh
run layerpack analyze layer                                  # bash and curl only: clean on provided.al2023
run layerpack build layer -o layer.zip
# 6 events: two answers from the same process, a crash (error, restarted), a non-JSON line (error)
status=0
run layerpack invoke layer.zip --event "$here/events.jsonl" | tee responses.out || status=$?
[ "$status" = 1 ] || { echo "expected exit 1 (two events fail on purpose), got $status" >&2; exit 1; }

run layerpack wrap "$here/handler.sh" --out function-node --runtime nodejs22.x   # index.mjs + bin/handler.sh
if command -v node >/dev/null; then
  run node "$here/node-driver.mjs" function-node "$here/events.jsonl" | tee node-responses.out
fi
