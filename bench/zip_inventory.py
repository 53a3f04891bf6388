#!/usr/bin/env python3
"""Peak memory and time of `layerpack check --json` on a zip of many entries, against Info-ZIP
`unzip -Z1` and `zipinfo` listing the same zip, in one run (issue 15: bounded memory for large
zips, the central directory streamed).

Goal: `check --json` on 200,000 entries at most 100 MB peak RSS (it was 204 MB when zipfile held
one ZipInfo per member). Prints, per zip size: peak RSS (GNU time's %M) and
the median wall time of each command, the ratios to `unzip -Z1`, and the growth per entry between
sizes. `--baseline REF` also runs the code of a git revision (e.g. the commit before the change).

Usage:  python bench/zip_inventory.py [--entries 50000,200000,1000000] [--repeat 3] [--infozip]
        [--baseline REF] [--vendor]
The zip holds N empty stored files in directories of 1,000, written directly (a ZIP64 end record
past 65,535 entries, as Info-ZIP writes it); `--infozip` makes it with Info-ZIP `zip -r` on a tree of
N empty files instead (slower to prepare; its members carry Info-ZIP's extra fields).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TIME = "/usr/bin/time"  # GNU time (Debian package "time")

from tests.trees import many_empty_zip  # noqa: E402


def infozip_many(path: Path, n: int, work: Path) -> None:
    tree = work / f"tree{n}"
    for i in range(n):
        d = tree / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:07d}").touch()
    subprocess.run(["zip", "-qr", str(path), "."], cwd=tree, check=True)
    shutil.rmtree(tree)


def measure(cmd: list[str], cwd: Path | None, env: dict, work: Path, scratch: Path) -> tuple[int, float]:
    """(peak RSS in KB of this command alone, wall seconds), by GNU time: a child forked from
    Python starts as a copy of this process, and its ru_maxrss counts that copy (18 MB for unzip).
    What the command wrote below `scratch` is removed afterwards."""
    shutil.rmtree(scratch, ignore_errors=True)
    out = work / "time.out"
    r = subprocess.run([TIME, "-o", str(out), "-f", "%M %e", *cmd], cwd=cwd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    rss, took = out.read_text().split()[-2:]
    shutil.rmtree(scratch, ignore_errors=True)
    return int(rss), float(took)


def layerpack_cmd() -> list[str]:
    exe = shutil.which("layerpack")
    return [exe] if exe else [sys.executable, "-m", "packer"]


def baseline(ref: str, work: Path) -> Path:
    """The code of revision `ref` (packer/ and rules/) in a directory, compiled like an install."""
    dst = work / "baseline"
    dst.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "packer", "rules"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dst / "packer")], check=True)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", default="50000,200000", help="comma-separated zip sizes (entries)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--infozip", action="store_true", help="make the zips with Info-ZIP zip on a tree")
    ap.add_argument("--baseline", metavar="REF", help="also run the code of this git revision")
    ap.add_argument("--vendor", action="store_true",
                    help="also `layerpack vendor ZIP --out` against `unzip -d` (writes every entry; on /dev/shm if it exists)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as an install: .pyc kept
    env["NO_COLOR"] = "1"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "packer")], check=True)
    with tempfile.TemporaryDirectory(prefix="zip-inventory-") as tmp:
        work = Path(tmp)
        old = baseline(args.baseline, work) if args.baseline else None
        shm = Path("/dev/shm")
        scratch = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else work)) / "out"
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
              f"{os.cpu_count()} cores; repeat {args.repeat}")
        rows: list[tuple[int, int]] = []
        for n in (int(x) for x in args.entries.split(",")):
            z = work / f"many{n}.zip"
            (infozip_many(z, n, work) if args.infozip else many_empty_zip(z, n))
            cmds = {"layerpack check --json": (layerpack_cmd() + ["check", str(z), "--json"], None),
                    "unzip -Z1": (["unzip", "-Z1", str(z)], None),
                    "zipinfo": (["zipinfo", str(z)], None)}
            if args.vendor:
                cmds["layerpack vendor --out"] = (layerpack_cmd() + ["vendor", str(z), "--out", str(scratch)], None)
                cmds["unzip -d"] = (["unzip", "-q", str(z), "-d", str(scratch)], None)
            if old is not None:
                cmds[f"layerpack@{args.baseline} check --json"] = (
                    [sys.executable, "-m", "packer", "check", str(z), "--json"], old)
                if args.vendor:
                    cmds[f"layerpack@{args.baseline} vendor --out"] = (
                        [sys.executable, "-m", "packer", "vendor", str(z), "--out", str(scratch)], old)
            print(f"\n{n:,} entries, {z.stat().st_size:,} bytes")
            results = {}
            for name, (cmd, cwd) in cmds.items():
                runs = [measure(cmd, cwd, env, work, scratch) for _ in range(args.repeat)]
                results[name] = (max(r[0] for r in runs), statistics.median(r[1] for r in runs))
            for name, (rss, t) in results.items():
                peer = "unzip -d" if "vendor" in name else "unzip -Z1"
                ref_rss, ref_t = results[peer]
                print(f"  {name:34} peak {rss / 1024:8.1f} MB  {t:7.2f} s   "
                      f"x{rss / ref_rss:6.1f} RSS  x{t / ref_t:7.1f} time of {peer}")
            rows.append((n, results["layerpack check --json"][0]))
        for (n1, r1), (n2, r2) in zip(rows, rows[1:]):
            print(f"growth {n1:,} -> {n2:,} entries: {(r2 - r1) * 1024 / (n2 - n1):.0f} bytes of peak RSS per entry")
        print(f"load average after {os.getloadavg()[0]:.2f}")
        shutil.rmtree(scratch.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
