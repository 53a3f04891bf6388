#!/usr/bin/env bash
# Racket: `raco exe` + `raco distribute` make a layer; analyze finds that Debian's Racket needs
# hypot@GLIBC_2.35 (> provided.al2023's 2.34); `vendor --bundle-libc` gives the starter and the
# Racket CS VM it execs the bundled loader and glibc, and the layer answers.
# Usage: examples/racket/run.sh [WORKDIR]     (default: ./build next to this script)
# Needs: racket (Debian's package, ~330 MB), bubblewrap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }
fails() { printf '\n$ %s   # expected to fail\n' "$*" >&2; if "$@"; then echo "unexpected success: $*" >&2; exit 1; fi; }

run raco exe -o bootstrap "$here/bootstrap.rkt"      # starter + compiled modules
run raco distribute dist bootstrap                    # + lib/plt/racketcs-8.7 (the Racket CS VM)
# Layer: dist/ as it is, plus a root bootstrap linking to bin/bootstrap (the starter finds the VM
# at ../lib/plt relative to its own path, /proc/self/exe, so it must stay in bin/).
cp -a dist layer && ln -s bin/bootstrap layer/bootstrap
fails layerpack analyze layer                         # LP201: hypot@GLIBC_2.35 in lib/plt/racketcs-8.7
run layerpack build layer -o layer.zip                # the size before bundling

# Both ELF programs get PT_INTERP=/opt/glibc-<hash>/ld.so and the bundle first on DT_RPATH, so the
# VM the starter execs runs on the bundled glibc too; no wrapper, the link stays a link.
run layerpack vendor layer --bundle-libc --out bundled
run layerpack analyze bundled                         # the closure, proven again: clean
run layerpack build bundled -o bundled.zip
run layerpack check bundled.zip
# Racket CS needs more than the default 128 MB.
run layerpack invoke bundled.zip --memory 512 --event "$here/event.json" | tee bundled.out
