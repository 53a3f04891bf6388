#!/usr/bin/env bash
# Common Lisp (SBCL): a save-lisp-and-die executable *is* the bootstrap. Built twice, with and
# without core compression; slim and vendor must leave the appended core byte-for-byte intact.
# Usage: examples/sbcl/run.sh [WORKDIR]     (default: ./build next to this script)
# Needs: sbcl (Debian's has :sb-core-compression), bubblewrap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work/plain" "$work/compressed" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

for kind in plain compressed; do
  (cd "$kind" && run sbcl --noinform --non-interactive --load "$here/build.lisp" $kind >/dev/null)
  run layerpack analyze "$kind"                                  # LP110: core past the ELF image
  run layerpack slim "$kind" --profile sbcl --out "$kind-slim"
  run layerpack vendor "$kind-slim" --out "$kind-layer"
  run cmp "$kind/bootstrap" "$kind-layer/bootstrap"              # the core is untouched
  run layerpack build "$kind-layer" -o "$kind.zip"
  run layerpack check "$kind.zip"
  run layerpack invoke "$kind.zip" --event "$here/event.json" | tee "$kind.out"
done
