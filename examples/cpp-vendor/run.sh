#!/usr/bin/env bash
# C/C++ with libraries Lambda lacks: build, analyse, vendor, zip and invoke two programs.
#   1. factorial (C++, GMP's libgmpxx.so.4, absent on provided.al2023) -> layerpack wrap + vendor
#   2. random    (C, arc4random@GLIBC_2.36 > the runtime's 2.34)          -> layerpack vendor --bundle-libc
# Usage: examples/cpp-vendor/run.sh [WORKDIR]     (default: ./build next to this script)
# Needs: g++ and libgmp-dev (gmpxx.h), gcc, bubblewrap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }
fails() { printf '\n$ %s   # expected to fail\n' "$*" >&2; if "$@"; then echo "unexpected success: $*" >&2; exit 1; fi; }

# 1. A C++ program linked against a library the runtime does not have.
run g++ -O2 -o factorial "$here/factorial.cpp" -lgmpxx -lgmp
run layerpack wrap ./factorial --out factorial-src        # bootstrap (bash+curl) + bin/factorial
fails layerpack analyze factorial-src                      # LP102: libgmpxx.so.4 missing on Lambda
run layerpack vendor factorial-src --out factorial-layer   # copies it to lib/, sets RPATH
run layerpack build factorial-layer -o factorial.zip
run layerpack invoke factorial-layer --event "$here/event.json" | tee factorial.out

# 2. A C program built against a newer glibc than the runtime's.
run gcc -O2 -o random "$here/random.c"
mkdir -p random-src && cp random random-src/bootstrap
fails layerpack analyze random-src                         # LP201: arc4random@GLIBC_2.36
fails layerpack vendor random-src --out random-plain       # LP901: glibc is not vendored by default
run layerpack vendor random-src --bundle-libc --out random-layer
run layerpack analyze random-layer
run layerpack build random-layer -o random.zip
run layerpack invoke random-layer --event "$here/event.json" | tee random.out
