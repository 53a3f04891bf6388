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
fails() { printf '\n$ %s   # expected to fail\n' "$*" >&2; if "$@"; then echo "unexpected success: $*" >&2; exit 1; fi; }

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

# provided.al2 (glibc 2.26): the SBCL runtime needs GLIBC_2.34 and libzstd.so.1. The core sits past
# the ELF image, so patchelf must not touch the file: vendor rewrites its PT_INTERP in place (same
# size) to the bundled loader, and a bootstrap wrapper puts the bundled glibc first on
# LD_LIBRARY_PATH. /proc/self/exe stays the program, so SBCL finds its core.
fails layerpack analyze plain --runtime provided.al2                  # LP201 GLIBC_2.34, LP102 libzstd
run layerpack vendor plain --runtime provided.al2 --bundle-libc --out al2-layer
run layerpack analyze al2-layer --runtime provided.al2               # clean
run cmp --ignore-initial=4096 plain/bootstrap al2-layer/bin/bootstrap.real   # all but the headers: the core is intact
run layerpack build al2-layer -o al2.zip
run layerpack check al2.zip
run layerpack invoke al2.zip --runtime provided.al2 --event "$here/event.json" | tee al2.out
