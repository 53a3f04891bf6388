#!/usr/bin/env bash
# Elixir/Erlang runtime layer: Debian's OTP + Elixir -> slim --profile elixir -> vendor -> build ->
# check -> invoke. The bootstrap starts the VM once; LambdaRuntime.main/0 serves events in a loop.
# Usage: examples/elixir/run.sh [WORKDIR]     (default: ./build next to this script)
# Needs: erlang-base erlang-nox elixir (Debian), bubblewrap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$here/build}
rm -rf "$work" && mkdir -p "$work/tree/app/ebin" && cd "$work"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

# The tree as it will sit at /opt: OTP, Elixir, the compiled app and the bootstrap.
cp -a /usr/lib/erlang tree/erlang
cp -a /usr/lib/elixir tree/elixir
cp "$here/bootstrap" tree/bootstrap
run elixirc -o tree/app/ebin "$here/lambda_runtime.ex"

run layerpack check tree                                   # the full distribution, for comparison
run layerpack slim tree --profile elixir --out slim        # drops unused apps, docs, sources; strips BEAMs; ROOTDIR -> /opt/erlang
run layerpack vendor slim --out layer                      # epmd needs libsystemd.so.0, absent on Lambda
run layerpack build layer -o layer.zip
run layerpack check layer.zip
run layerpack invoke layer.zip --event "$here/event.json" | tee response.out
