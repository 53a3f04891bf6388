#!/usr/bin/env python3
"""`layerpack build` against Info-ZIP `zip -r -6 -y` on the same ~200 MB real tree, in one run.

Goal (issues 5 and 11, with a plain install): at least 2x faster at no more than 1.02x the size. Prints wall time, zip size and
the ratios for each layerpack deflate backend available (a plain install of lambda-layerpack has
zlib-ng; isal comes with the `isal` extra; plain zlib is always there).

Usage:  python bench/zip_vs_infozip.py [TREE] [--level 6] [--repeat 3]
Without TREE, a tree of 200 MiB of real files is assembled under this user's private directory
($TMPDIR/layerpack-bench-UID/zip): Debian's Erlang/OTP (/usr/lib/erlang), the largest packages of
this Python's site-packages, then system libraries; it is reused only while it still measures 200 MiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packer.package import build  # noqa: E402
from packer.zipwrite import get_backend  # noqa: E402

TARGET = 200 * 1024 * 1024


def du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def _sources() -> list[Path]:
    """Real files of the kinds layers carry: Erlang/OTP (.beam, ELF), the largest packages of this
    Python's site-packages, then system libraries and shared data if still short of the target."""
    sp = Path(site.getsitepackages()[0])
    packages = sorted((p for p in sp.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))),
                      key=du, reverse=True)
    return [p for p in (Path("/usr/lib/erlang"), *packages, Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/share"))
            if p.is_dir()]


def assemble(base: Path) -> Path:
    """A tree of about TARGET bytes of real files under `base` (this user's private directory),
    copied file by file until the target is reached, links kept as links. Reused only while its
    measured size is still the target's; otherwise rebuilt."""
    tree, stamp = base / "tree", base / "tree.size"
    if tree.is_dir() and stamp.is_file() and stamp.read_text() == str(du(tree)) and du(tree) >= TARGET:
        return tree
    tmp = base / "tree.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    size = 0
    for src in _sources():
        for dirpath, _dirs, files in os.walk(src):
            for name in files:
                if size >= TARGET:
                    break
                s = Path(dirpath) / name
                d = tmp / src.name / s.relative_to(src)
                d.parent.mkdir(parents=True, exist_ok=True)
                try:
                    if s.is_symlink():
                        if not os.readlink(s).startswith("/"):  # a layer cannot carry absolute links
                            d.symlink_to(os.readlink(s))
                    elif s.is_file():
                        shutil.copy2(s, d)
                        size += d.stat().st_size
                except OSError:
                    continue
    if size < TARGET:
        sys.exit(f"could only assemble {size / 1e6:.0f} MB of real files; pass a TREE of about {TARGET / 1e6:.0f} MB")
    tmp.rename(tree)
    stamp.write_text(str(du(tree)))
    return tree


def warm(tree: Path) -> None:
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                with open(p, "rb") as fh:
                    while fh.read(1 << 20):
                        pass


def time_infozip(tree: Path, out: Path, level: int) -> tuple[float, float]:
    """(wall, cpu) seconds of `zip -r -LEVEL -y`."""
    out.unlink(missing_ok=True)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(["zip", "-q", "-r", f"-{level}", "-y", str(out), "."], cwd=tree, check=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def time_layerpack(tree: Path, out: Path, level: int, backend: str) -> tuple[float, float]:
    """(wall, cpu of all threads) seconds of the whole `build` (plan, zip, layout checks, sha256)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    build(tree, out, level=level, backend=backend, force=True)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tree", nargs="?", type=Path)
    ap.add_argument("--level", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    args = ap.parse_args()
    if shutil.which("zip") is None:
        sys.exit("Info-ZIP `zip` is not installed (apt-get install zip)")
    tree = args.tree or assemble(Path(tempfile.gettempdir()) / f"layerpack-bench-{os.getuid()}" / "zip")
    files = sum(len(f) for _d, _s, f in os.walk(tree))
    print(f"tree: {tree}  {du(tree) / 1e6:.1f} MB in {files:,} files, {os.cpu_count()} CPUs, level {args.level}")
    warm(tree)

    backends = []
    for name in ("zlib-ng", "isal", "zlib"):
        try:
            get_backend(name)
            backends.append(name)
        except Exception:
            print(f"  (backend {name} not installed)")
    with tempfile.TemporaryDirectory() as td:
        tdp = Path(td)
        zip_times, lp_times = [], {b: [] for b in backends}
        for _ in range(args.repeat):  # interleaved so cache and CPU frequency treat all alike
            zip_times.append(time_infozip(tree, tdp / "infozip.zip", args.level))
            for b in backends:
                lp_times[b].append(time_layerpack(tree, tdp / f"lp-{b}.zip", args.level, b))
        zt = statistics.median(w for w, _c in zip_times)
        zc = statistics.median(c for _w, c in zip_times)
        zs = (tdp / "infozip.zip").stat().st_size
        print(f"load average before the runs: {os.getloadavg()[0]:.2f} (other processes share these CPUs)")
        print(f"{'tool':28} {'wall s':>7} {'cpu s':>7} {'size bytes':>14} {'speed-up':>9} {'size ratio':>10}")
        print(f"{'zip -r -' + str(args.level) + ' -y (Info-ZIP)':28} {zt:7.2f} {zc:7.2f} {zs:14,} {1.0:8.2f}x {1.0:10.3f}")
        for b in backends:
            t = statistics.median(w for w, _c in lp_times[b])
            c = statistics.median(c for _w, c in lp_times[b])
            s = (tdp / f"lp-{b}.zip").stat().st_size
            print(f"{'layerpack build (' + b + ')':28} {t:7.2f} {c:7.2f} {s:14,} {zt / t:8.2f}x {s / zs:10.3f}")
        for b in backends:
            r = subprocess.run(["unzip", "-tqq", str(tdp / f"lp-{b}.zip")], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"  unzip -t FAILED for {b}: {r.stdout}{r.stderr}")


if __name__ == "__main__":
    main()
