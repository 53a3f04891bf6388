#!/usr/bin/env python3
"""Analyse every ELF file under /usr/lib/x86_64-linux-gnu and /usr/bin with layerpack, auditwheel's
lddtree and libtree, in the same run, and print files/s, wall time, peak RSS and the ratios.

    python bench/analyze_vs_peers.py [--repeat 3] [DIR ...]

Each tool runs in its own child process (peak RSS is that child's ru_maxrss) over the same list of
regular ELF files. layerpack does more per file than the peers (Lambda file system model, version
ceilings, symbol names, layout checks) — the comparison is what a user waits for.
Goals (issue 2): >= 20x lddtree's throughput, <= 2x libtree's total time, peak RSS <= 100 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/bin"]
LDDTREE_CHILD = r"""
import sys
from pathlib import Path
from auditwheel.lddtree import ldd
ok = total = 0
for line in open(sys.argv[1]):
    total += 1
    try:
        ldd(Path(line.rstrip("\n")))
        ok += 1
    except Exception:
        pass
sys.exit(0 if ok * 10 >= total * 9 else 3)  # a peer that failed on most files measured nothing
"""


def elf_files(dirs: list[str]) -> list[str]:
    out = []
    for d in dirs:
        for root, _dirs, files in os.walk(d):
            for name in files:
                p = os.path.join(root, name)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    with open(p, "rb") as fh:
                        if fh.read(4) == b"\x7fELF":
                            out.append(p)
                except OSError:
                    pass
    return sorted(out)


def run(cmd: list[str], strict: bool = False, **kw) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process. Peers exit non-zero when a library
    is missing (libtree: 28); only layerpack's status is checked (0 clean, 1 findings)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if strict and os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed with status {status}")
    return wall, usage.ru_maxrss * 1024


def best(fn, repeat: int) -> tuple[float, int]:
    results = [fn() for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", default=DEFAULT_DIRS)
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the fastest counts (default 3)")
    args = ap.parse_args()
    files = elf_files(args.dirs)
    n = len(files)
    listing = Path("/tmp/layerpack-bench-files.txt")
    listing.write_text("\n".join(files) + "\n")
    print(f"{n} ELF files under {', '.join(args.dirs)}")

    layerpack = shutil.which("layerpack")
    if layerpack is None:
        raise SystemExit("layerpack is not installed (pip install -e .)")

    def run_layerpack() -> tuple[float, int]:
        # one process per directory, as a user would run it; times add up, RSS is the max
        total, peak = 0.0, 0
        for d in args.dirs:
            w, r = run([layerpack, "analyze", d, "--json"], strict=True)
            total, peak = total + w, max(peak, r)
        return total, peak

    rows = [("layerpack analyze", *best(run_layerpack, args.repeat))]

    libtree = shutil.which("libtree")
    if libtree:
        def run_libtree() -> tuple[float, int]:
            total, peak = 0.0, 0
            for i in range(0, n, 500):  # stay below ARG_MAX
                w, r = run([libtree, "-p", *files[i:i + 500]])
                total, peak = total + w, max(peak, r)
            return total, peak
        rows.append(("libtree", *best(run_libtree, args.repeat)))
    else:
        print("libtree not installed (apt-get install libtree): skipped")

    try:
        import auditwheel  # noqa: F401
        rows.append(("auditwheel lddtree", *best(lambda: run([sys.executable, "-c", LDDTREE_CHILD, str(listing)], strict=True), 1)))
    except ImportError:
        print("auditwheel not installed (pip install auditwheel): skipped")

    print(f"{'tool':20} {'seconds':>9} {'files/s':>10} {'peak RSS':>10}")
    for name, wall, rss in rows:
        print(f"{name:20} {wall:9.2f} {n / wall:10.0f} {rss / 1e6:8.1f} MB")
    lp = rows[0]
    for name, wall, _rss in rows[1:]:
        if name == "libtree":
            print(f"time ratio layerpack/libtree: {lp[1] / wall:.2f}x (goal <= 2x)")
        else:
            print(f"throughput ratio layerpack/lddtree: {wall / lp[1]:.1f}x (goal >= 20x)")
    print(f"layerpack peak RSS: {lp[2] / 1e6:.1f} MB (goal <= 100 MB)")
    # Context for the libtree ratio: the floor any Python tool pays before reading one file.
    floor, _ = best(lambda: run([sys.executable, "-c", "pass"]), args.repeat)
    libtree_row = next((r for r in rows if r[0] == "libtree"), None)
    per_dir = len(args.dirs)
    if libtree_row:
        print(f"python start-up floor: {floor:.3f} s per process x {per_dir} = {floor * per_dir:.2f} s "
              f"= {floor * per_dir / libtree_row[1]:.1f}x libtree's total before any analysis")


if __name__ == "__main__":
    main()
