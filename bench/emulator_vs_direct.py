"""Emulator overhead: Init and Duration through `layerpack invoke` against the same bootstrap run
directly on the host, in the same run (it measures the emulator, not slimming or layer size).

    python bench/emulator_vs_direct.py [--cold 10] [--warm 200] [--bootstrap fixtures/emulator/http_bootstrap.c]

Three ways to run the same compiled bootstrap (fixtures/emulator/http_bootstrap.c, built with gcc):
  direct     the bootstrap started with subprocess on the host, talking to the same Runtime API
             server; nothing else (the floor: what the program itself costs)
  host view  layerpack's orchestrator with --no-sandbox (REPORT numbers, no bwrap)
  sandbox    layerpack's orchestrator in bubblewrap with the runtime's library set (the default)
Init Duration is spawn -> first GET /next; Duration is /next handing out the event -> the response
POST arriving, both measured by the Runtime API server. Prints medians and the ratios to `direct`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packer.emulator.invoke import FunctionConfig, LocalFunction  # noqa: E402
from packer.emulator.server import Invocation, RuntimeAPIServer, RuntimeState  # noqa: E402


def direct(layer: Path, cold: int, warm: int) -> tuple[list[float], list[float]]:
    """The bootstrap on the host, no orchestrator: the program's own cost."""
    inits, durations = [], []
    for i in range(cold):
        state = RuntimeState(timeout_s=30)
        state.new_generation()
        server = RuntimeAPIServer(state)
        env = {"AWS_LAMBDA_RUNTIME_API": server.address, "_HANDLER": "function.handler", "PATH": "/usr/bin:/bin"}
        t0 = time.monotonic()
        proc = subprocess.Popen([str(layer / "bootstrap")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        first = Invocation(b"{}")
        state.submit(first)
        first.done.wait(30)
        inits.append((state.init_done_at - t0) * 1000)
        if i == 0:
            for _ in range(warm):
                inv = Invocation(b'{"w": 1}')
                state.submit(inv)
                inv.done.wait(30)
                durations.append((inv.outcome.at - inv.dispatched_at) * 1000)
        proc.kill()
        proc.wait()
        server.close()
    return inits, durations


def emulated(layer: Path, cold: int, warm: int, sandboxed: bool, cache: Path) -> tuple[list[float], list[float]]:
    inits, durations = [], []
    for i in range(cold):
        with LocalFunction(FunctionConfig(layers=[layer], sandbox=sandboxed, cache=cache)) as fn:
            r = fn.invoke(b"{}")
            assert r.ok, r.payload
            inits.append(r.report.init_ms)
            if i == 0:
                for _ in range(warm):
                    durations.append(fn.invoke(b'{"w": 1}').report.duration_ms)
    return inits, durations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", type=int, default=10, help="cold starts per way")
    ap.add_argument("--warm", type=int, default=200, help="warm invokes per way")
    ap.add_argument("--bootstrap", type=Path, default=ROOT / "fixtures" / "emulator" / "http_bootstrap.c")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lp-bench-") as tmp:
        layer = Path(tmp) / "layer"
        layer.mkdir()
        subprocess.run(["gcc", "-O2", "-o", str(layer / "bootstrap"), str(args.bootstrap)], check=True)
        cache = Path(os.environ.get("LAYERPACK_CACHE_DIR") or Path(tmp) / "cache")
        t0 = time.monotonic()
        emulated(layer, 1, 0, True, cache)  # builds the runtime root once (cached afterwards)
        print(f"runtime root build (first run only): {(time.monotonic() - t0) * 1000:.0f} ms")
        rows = {
            "direct": direct(layer, args.cold, args.warm),
            "host view (--no-sandbox)": emulated(layer, args.cold, args.warm, False, cache),
            "sandbox (bwrap)": emulated(layer, args.cold, args.warm, True, cache),
        }
    base_init = statistics.median(rows["direct"][0])
    base_warm = statistics.median(rows["direct"][1])
    print(f"{'way':28} {'Init Duration (median)':>24} {'ratio':>7} {'warm Duration (median)':>24} {'ratio':>7}"
          f" {'warm p95':>10}")
    for name, (inits, durs) in rows.items():
        p95 = sorted(durs)[int(len(durs) * 0.95) - 1] if durs else float("nan")
        print(f"{name:28} {statistics.median(inits):21.2f} ms {statistics.median(inits) / base_init:6.1f}x"
              f" {statistics.median(durs):21.3f} ms {statistics.median(durs) / base_warm:6.1f}x {p95:7.3f} ms")
    print(f"({args.cold} cold starts and {args.warm} warm invokes per way; ratio = way / direct)")


if __name__ == "__main__":
    main()
