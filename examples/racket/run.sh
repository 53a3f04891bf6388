#!/usr/bin/env bash
# Racket: `raco exe` + `raco distribute` make a layer; analyze finds that Debian's Racket needs
# hypot@GLIBC_2.35 (> provided.al2023's 2.34); the --bundle-libc route is tried and shown not to run.
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
# at ../lib/plt relative to its own directory, so it must stay in bin/).
cp -a dist layer && ln -s bin/bootstrap layer/bootstrap
fails layerpack analyze layer                         # LP201: hypot@GLIBC_2.35 in lib/plt/racketcs-8.7
run layerpack build layer -o layer.zip
# Runs here only because the host's glibc (2.36) stands in for the runtime's (LP823); Racket CS
# needs more than the default 128 MB.
run layerpack invoke layer --memory 512 --event "$here/event.json" | tee layer.out

# The --bundle-libc route. It wants an ELF bootstrap at the root (not a link), so the starter is
# copied there; started through the bundled loader, /proc/self/exe is lib/ld-linux-x86-64.so.2 and
# the starter still finds ../lib/plt. But it then execs lib/plt/racketcs-8.7 through the system
# loader (glibc 2.34), which cannot use the bundled libc: vendor says so, and the run aborts.
fails layerpack vendor layer --bundle-libc --out refused    # exit 2: bootstrap is a symlink
mkdir copied && cp -a dist/lib copied/lib && cp dist/bin/bootstrap copied/bootstrap
fails layerpack vendor copied --bundle-libc --out bundled   # LP201 remains: libc.so.6 needs GLIBC_2.35 of ld-linux
fails layerpack invoke bundled --memory 512 --event "$here/event.json"
