#!/usr/bin/env bash
# Haskell (GHC): the Runtime API loop with http-client, linked dynamically against libgmp (Integer),
# libz (zlib) and libffi (GHC's runtime system). It runs as built on provided.al2023; on
# provided.al2 (glibc 2.26, libffi.so.6) it needs `vendor --bundle-libc`. A fully static build is
# the other way out (LP106), with a caveat the linker itself prints about getaddrinfo.
# Usage: examples/haskell/run.sh [WORKDIR]     (default: ./build next to this script)
# Needs: ghc, libghc-http-client-dev, libghc-zlib-dev (Debian's), bubblewrap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work/src" "$work/static" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }
fails() { printf '\n$ %s   # expected to fail\n' "$*" >&2; if "$@"; then echo "unexpected success: $*" >&2; exit 1; fi; }

# 1. Dynamically linked, as GHC builds by default.
run ghc -O1 -v0 -outputdir obj -o src/bootstrap "$here/bootstrap.hs"
run layerpack analyze src                                       # provided.al2023: every library provided
run layerpack build src -o al2023.zip
run layerpack check al2023.zip
run layerpack invoke al2023.zip --event "$here/event.json" | tee al2023.out

# 2. provided.al2: libffi.so.8 is missing (AL2 has .so.6) and glibc stops at 2.26.
fails layerpack analyze src --runtime provided.al2             # LP102 libffi.so.8, LP201 GLIBC_2.34
fails layerpack vendor src --runtime provided.al2 --out al2-plain   # LP901: glibc is not vendored by default
run layerpack vendor src --runtime provided.al2 --bundle-libc --out al2-layer
run layerpack analyze al2-layer --runtime provided.al2         # the closure, proven again
run layerpack build al2-layer -o al2.zip
run layerpack check al2.zip
run layerpack invoke al2.zip --runtime provided.al2 --event "$here/event.json" | tee al2.out

# 3. Statically linked: no shared library to find on any runtime (LP106).
run ghc -O1 -v0 -outputdir obj-static -optl-static -optl-pthread -o static/bootstrap "$here/bootstrap.hs" 2>&1 | tee static-link.log >&2
run layerpack analyze static --runtime provided.al2
run layerpack build static -o static.zip
run layerpack invoke static.zip --runtime provided.al2 --event "$here/event.json" | tee static.out
