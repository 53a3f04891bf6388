"""Per-event cost of a warm invocation through `layerpack invoke`, against a minimal Runtime API.

    python bench/emulator_overhead.py [--events 200] [--repeat 3]

The runtime is fixtures/emulator/keepalive_bootstrap.c, built here with gcc: it keeps one HTTP/1.1
connection open (as libcurl, awslambdaric and most clients do) and logs CLOCK_MONOTONIC each time
GET /next returns. The time per warm event is read off that log (the intervals between successive
stamps), so both sides are measured by the same clock in the same program:
  minimal    a single-threaded Python server on 127.0.0.1 that answers every request with one write on
             a TCP_NODELAY socket and nothing else (the floor of a Python Runtime API)
  layerpack  `layerpack invoke LAYER --event events.jsonl` with events+1 JSON lines (the first one is
             the cold start): sandbox, orchestrator, START/END/REPORT, the payload printed to stdout
Prints, for each, the median interval (robust on a shared machine: other processes' bursts land in
a few intervals) and the mean, over all runs, and the ratios layerpack / minimal (goal: <= 2).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "fixtures" / "emulator" / "keepalive_bootstrap.c"
STAMP = re.compile(r"^LPT (\d+)$", re.M)


def per_event_ms(log: str, events: int) -> list[float]:
    stamps = [int(x) for x in STAMP.findall(log)]
    if len(stamps) != events + 1:
        raise SystemExit(f"expected {events + 1} /next stamps, got {len(stamps)}:\n{log[-2000:]}")
    return [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]


def _serve(listener: socket.socket, events: list[bytes]) -> None:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = b""
    queue = list(events)
    while True:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)) if b"ength" in head else 0
        while len(data) < length:
            data += conn.recv(65536)
        data = data[length:]
        if head.startswith(b"GET"):
            if not queue:
                conn.close()
                return
            body = queue.pop(0)
            extra = f"Lambda-Runtime-Aws-Request-Id: {uuid.uuid4()}\r\nLambda-Runtime-Deadline-Ms: 0\r\n"
            status = "200 OK"
        else:
            body, extra, status = b'{"status":"OK"}', "", "202 Accepted"
        conn.sendall(f"HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def minimal(bootstrap: Path, events: int) -> list[float]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    thread = threading.Thread(target=_serve, args=(listener, [b'{"n": %d}' % i for i in range(events + 1)]))
    thread.start()
    proc = subprocess.run([str(bootstrap)], env={"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"},
                          capture_output=True, text=True, timeout=120)
    thread.join()
    listener.close()
    return per_event_ms(proc.stderr, events)


def layerpack(layer: Path, events: int, work: Path) -> list[float]:
    path = work / "events.jsonl"
    path.write_text("".join('{"n": %d}\n' % i for i in range(events + 1)))
    proc = subprocess.run([sys.executable, "-m", "packer", "invoke", str(layer), "--event", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"layerpack invoke failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return per_event_ms(proc.stderr, events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lp-bench-") as tmp:
        work = Path(tmp)
        layer = work / "layer"
        layer.mkdir()
        bootstrap = layer / "bootstrap"
        subprocess.run(["gcc", "-O2", "-o", str(bootstrap), str(SOURCE)], check=True)
        os.chmod(bootstrap, 0o755)
        layerpack(layer, 5, work)  # warm the runtime-root cache; not measured
        floor: list[float] = []
        ours: list[float] = []
        for _ in range(args.repeat):  # interleaved, so a burst of load hits both sides alike
            floor += minimal(bootstrap, args.events)
            ours += layerpack(layer, args.events, work)
    fm, om = statistics.median(floor), statistics.median(ours)
    fa, oa = statistics.mean(floor), statistics.mean(ours)
    print(f"warm events: {args.events} x {args.repeat} runs, keep-alive C runtime ({SOURCE.name})")
    print(f"minimal Runtime API (one write, TCP_NODELAY): median {fm:.3f} ms/event, mean {fa:.3f}")
    print(f"layerpack invoke (sandbox):                   median {om:.3f} ms/event, mean {oa:.3f}")
    print(f"ratio layerpack/minimal: median {om / fm:.2f}x, mean {oa / fa:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
