#!/usr/bin/env python3
"""`layerpack analyze` against libtree (and optionally auditwheel's lddtree) on the same ELF files,
in the same run: wall time, peak RSS and the ratios.

    python bench/analyze_vs_peers.py [DIR] [--repeat 5] [--quad] [--lddtree]

Rows, each a fresh child process whose peak RSS is its own ru_maxrss:
  libtree, one process   `libtree -p f1 f2 … fN`: every regular ELF file under DIR in ONE process
                         (the reference the goal is stated against)
  libtree, per file      one `libtree -p f` process per file, summed (what a shell loop costs)
  layerpack --json       `layerpack analyze DIR --json`, stdout a pipe (compact JSON)
  layerpack text         `layerpack analyze DIR`, stdout a pipe (plain text)
  LAYERPACK_JOBS=1       the JSON run again in one process (analyze forks readers when it has
                         more than one CPU: packer/forkwork.py); peak RSS is the largest process's
  layerpack --cache     the JSON run again with header facts from a first --cache run (the
                         analyze -> vendor -> analyze loop): shown apart, never the goal's figure
  python floor           bench/elf_floor.py: walk DIR and read the ELF headers in plain Python, nothing
                         else (the least any Python analyze must do)
--quad repeats the layerpack rows on four hard-linked copies of DIR built once under a private
directory (>= 3,600 ELF files for /usr/lib/x86_64-linux-gnu), the tree the memory goal names.
layerpack does more per file than libtree (Lambda's file system model, version ceilings, the
symbols behind a too-new version, layout checks): the comparison is what a user waits for.
Goals (issue 18): layerpack text and JSON each <= 3x libtree-one-process; peak RSS <= 100 MB on
the four-copy tree. The fastest of --repeat runs counts; RSS is the largest seen. A child's
ru_maxrss includes the moments before exec when it was a copy of this script, so no row shows
less than this script's own RSS (libtree's real figure is lower than printed).
Every layerpack run is verified before it counts (in another process, so this one stays small):
nothing on stderr, JSON that parses and names every ELF file under DIR, text ending with the
summary line for that many ELF files; otherwise the bench stops without a ratio (a broken install
exits 1 as fast as anything). The header line names the interpreter and package timed and says
whether their .pyc are present and PYTHONDONTWRITEBYTECODE is set: each changes start-up by 100+ ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = "/usr/lib/x86_64-linux-gnu"
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


def elf_files(root: str) -> list[str]:
    """Regular ELF files under root, links not followed (what layerpack analyses)."""
    out = []
    for d, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            try:
                with open(p, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(p)
            except OSError:
                pass
    return sorted(out)


def run(cmd: list[str], ok: tuple[int, ...] | None = None, check: list[str] | None = None) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (user + sys) of one child. libtree exits
    non-zero when a library is missing, so only layerpack's status is checked (0 clean, 1 findings),
    and `check` (arguments of --verify) must accept what it printed: exit 1 is also what a broken
    install (a ModuleNotFoundError traceback) returns, and a ratio of such a run is a false "goal met".
    The output goes to a file and is judged by another process: a child's ru_maxrss starts at this
    script's RSS (fork/exec), so this process must not grow by parsing what it timed."""
    with tempfile.NamedTemporaryFile() as out, tempfile.NamedTemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err if check else subprocess.DEVNULL)
        while chunk := proc.stdout.read(1 << 16):  # a real pipe, drained as a reader would
            if check:
                out.write(chunk)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.stdout.close()
        code = os.waitstatus_to_exitcode(status)
        if ok is not None and code not in ok:
            raise SystemExit(f"{' '.join(cmd[:3])} failed with status {code}")
        if check:
            out.flush()
            verdict = subprocess.run([sys.executable, __file__, "--verify", out.name, err.name, *check],
                                     capture_output=True, text=True)
            if verdict.returncode or verdict.stdout.strip():
                raise SystemExit(f"{' '.join(cmd)}: exit {code} but {verdict.stdout.strip() or verdict.stderr[-500:]}; "
                                 "no ratio printed")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def json_problem(out: bytes, root: str, copies: int) -> str | None:
    """What is wrong with the output of `layerpack analyze ROOT --json` (or of its copies): it
    must parse and its `files` must name every ELF file under ROOT once, under the mount point."""
    rels = sorted(os.path.relpath(f, root) for f in elf_files(root))
    try:
        doc = json.loads(out)
        mount = doc["mount"].rstrip("/") + "/"
        got = sorted(f["path"][len(mount):] for f in doc["files"] if f["path"].startswith(mount))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"its JSON does not parse as an analysis ({exc!r}; {out[:200]!r})"
    want = rels if copies == 1 else sorted(f"{c}/{r}" for c in "abcd" for r in rels)
    if got != want:
        return f"its JSON names {len(got)} files under {mount}, not the {len(want)} ELF files expected"
    return None


def text_problem(out: bytes, n_elf: int) -> str | None:
    """What is wrong with text output: it must end with the summary line counting n_elf ELF files."""
    lines = out.rstrip(b"\n").splitlines()
    if not lines or not re.match(rb"^\d+ files, %d ELF; libraries: " % n_elf, lines[-1]):
        return f"its text does not end with the summary line for {n_elf} ELF files ({out[-200:]!r})"
    return None


def verify(out_file: str, err_file: str, kind: str, *args: str) -> None:
    """--verify: print what is wrong with one run's output (nothing when it is a real analysis)."""
    with open(out_file, "rb") as fh:
        out = fh.read()
    with open(err_file, "rb") as fh:
        err = fh.read()
    if err.strip():
        problem = f"stderr is not empty: {err.decode(errors='replace')[-300:]!r}"
    elif kind == "json":
        problem = json_problem(out, args[0], int(args[1]))
    else:
        problem = text_problem(out, int(args[0]))
    print(problem or "")


def describe(layerpack: str) -> tuple[str, str]:
    """Which interpreter and package the layerpack rows time, and whether byte code is cached:
    without .pyc (PYTHONDONTWRITEBYTECODE=1 with an editable install) every run recompiles every
    module, 100+ ms of start-up that a pip-installed wheel does not pay."""
    with open(layerpack, "rb") as fh:
        first = fh.readline().decode(errors="replace").strip()
    words = first[2:].split() if first.startswith("#!") else [sys.executable]
    interp = words[1] if len(words) > 1 and os.path.basename(words[0]) == "env" else words[0]
    probe = ("import importlib.util, os, sys, packer; d = os.path.dirname(packer.__file__); "
             "srcs = [os.path.join(r, f) for r, _d, fs in os.walk(d) for f in fs if f.endswith('.py')]; "
             "stale = [s for s in srcs if not os.path.exists(importlib.util.cache_from_source(s)) or "
             "os.path.getmtime(importlib.util.cache_from_source(s)) < os.path.getmtime(s)]; "
             "print(sys.version.split()[0], d, len(srcs), len(stale))")
    out = subprocess.run([interp, "-c", probe], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if out.returncode:
        raise SystemExit(f"{layerpack}: its interpreter {interp} cannot import packer:\n{out.stderr[-500:]}")
    version, pkg, n_src, n_stale = out.stdout.split()
    env = os.environ.get("PYTHONDONTWRITEBYTECODE")
    pyc = "all .pyc present" if n_stale == "0" else f".pyc missing or stale for {n_stale} of {n_src} modules"
    return interp, (f"layerpack = {layerpack} -> Python {version} {interp}, package {pkg}; {pyc}; "
                    f"PYTHONDONTWRITEBYTECODE={'unset' if env is None else repr(env)}")


def best(fn, repeat: int) -> tuple[float, int, float]:
    """Fastest wall time, largest RSS, least CPU of `repeat` runs (CPU is what a loaded machine
    distorts least: other processes stretch wall time, not a child's own CPU seconds)."""
    results = [fn() for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results), min(r[2] for r in results)


def quad_tree(src: str) -> Path:
    """Four hard-linked copies of src under a private directory (built once, reused while src
    keeps its file count)."""
    base = Path(tempfile.gettempdir()) / f"layerpack-bench-{os.getuid()}" / "quad"
    stamp = base / ".source"
    if not (stamp.is_file() and stamp.read_text() == src):
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        for copy in "abcd":
            subprocess.run(["cp", "-al", src, str(base / copy)], check=True)
        stamp.write_text(src)
    return base


def layerpack_rows(layerpack: str, target: str, repeat: int, label: str,
                   src: str, n: int, copies: int = 1) -> list[tuple[str, float, int, float]]:
    """The JSON and text rows for target (src itself, or its four copies), each run verified."""
    as_json, as_text = ["json", src, str(copies)], ["text", str(n * copies)]
    return [(f"layerpack --json{label}", *best(lambda: run([layerpack, "analyze", target, "--json"], ok=(0, 1), check=as_json), repeat)),
            (f"layerpack text{label}", *best(lambda: run([layerpack, "analyze", target], ok=(0, 1), check=as_text), repeat))]


def main() -> None:
    if sys.argv[1:2] == ["--verify"]:
        return verify(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    ap.add_argument("--repeat", type=int, default=5, help="runs per tool; the fastest counts (default 5)")
    ap.add_argument("--quad", action="store_true", help="also run layerpack on four hard-linked copies of DIR")
    ap.add_argument("--lddtree", action="store_true", help="also run auditwheel's lddtree (slow)")
    ap.add_argument("--layerpack", help="the layerpack command to time (default: the one on PATH)")
    args = ap.parse_args()
    layerpack, libtree = shutil.which(args.layerpack or "layerpack"), shutil.which("libtree")
    if layerpack is None or libtree is None:
        raise SystemExit("needs layerpack (pip install -e .) and libtree (apt-get install libtree) on PATH")
    files = elf_files(args.dir)
    n = len(files)
    print(f"{n} ELF files under {args.dir}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    interp, about = describe(layerpack)
    print(about)

    rows = [("libtree, one process", *best(lambda: run([libtree, "-p", *files]), args.repeat))]
    rows += layerpack_rows(layerpack, args.dir, args.repeat, "", args.dir, n)
    os.environ["LAYERPACK_JOBS"] = "1"  # the same run in one process: what the forked readers bring
    rows.append(("layerpack --json, LAYERPACK_JOBS=1", *best(lambda: run(
        [layerpack, "analyze", args.dir, "--json"], ok=(0, 1), check=["json", args.dir, "1"]), args.repeat)))
    del os.environ["LAYERPACK_JOBS"]

    def per_file() -> tuple[float, int, float]:
        total, peak, cpu = 0.0, 0, 0.0
        for f in files:
            w, r, c = run([libtree, "-p", f])
            total, peak, cpu = total + w, max(peak, r), cpu + c
        return total, peak, cpu

    rows.append(("libtree, per file", *best(per_file, 1)))
    # warm re-run with --cache (analyze -> vendor -> analyze): apart from the cold goal, in a private cache
    os.environ["LAYERPACK_CACHE_DIR"] = tempfile.mkdtemp(prefix="layerpack-bench-cache-")
    warm_check = ["json", args.dir, "1"]
    run([layerpack, "analyze", args.dir, "--json", "--cache"], ok=(0, 1), check=warm_check)  # fills the cache
    rows.append(("layerpack --json --cache, warm (not the goal)",
                 *best(lambda: run([layerpack, "analyze", args.dir, "--json", "--cache"], ok=(0, 1), check=warm_check),
                       args.repeat)))
    shutil.rmtree(os.environ.pop("LAYERPACK_CACHE_DIR"), ignore_errors=True)
    if args.lddtree:
        listing = Path(tempfile.mkdtemp(prefix="layerpack-bench-")) / "files.txt"
        listing.write_text("\n".join(files) + "\n")
        rows.append(("auditwheel lddtree", *best(lambda: run([sys.executable, "-c", LDDTREE_CHILD, str(listing)], ok=(0,)), 1)))
    floor = best(lambda: run([sys.executable, "-c", "pass"]), args.repeat)
    rows.append(("python -c pass", *floor))
    # what any Python analyze must do at least: walk + read the ELF headers (bench/elf_floor.py)
    elf_floor = Path(__file__).with_name("elf_floor.py")
    rows.append(("python floor: walk + ELF headers only", *best(lambda: run([interp, str(elf_floor), args.dir]), args.repeat)))
    if args.quad:
        quad = quad_tree(args.dir)
        rows += layerpack_rows(layerpack, str(quad), args.repeat, f", 4 copies ({4 * n} ELF)", args.dir, n, 4)

    print(f"{'':44} {'seconds':>8} {'CPU s':>7} {'files/s':>9} {'peak RSS':>10}")
    for name, wall, rss, cpu in rows:
        count = 4 * n if "4 copies" in name else n
        print(f"{name:44} {wall:8.3f} {cpu:7.3f} {count / wall:9.0f} {rss / 1e6:7.1f} MB")
    one, one_cpu = rows[0][1], rows[0][3]
    for name, wall, _rss, cpu in rows:
        if name.startswith("layerpack") and "copies" not in name and "warm" not in name:
            print(f"{name} / libtree one process: {wall / one:.1f}x wall (goal <= 3x), "
                  f"{cpu / one_cpu if one_cpu else float('inf'):.1f}x CPU")
    for name, _wall, rss, _cpu in rows:
        if "copies" in name:
            print(f"{name}: peak RSS {rss / 1e6:.1f} MB (goal <= 100 MB)")
    print(f"python start-up alone is {floor[0] / one:.1f}x libtree's one-process wall time")
    walked = next(r for r in rows if r[0].startswith("python floor"))
    print(f"python floor (walk + ELF headers, no search, findings or output) / libtree one process: "
          f"{walked[1] / one:.1f}x wall, {walked[3] / one_cpu if one_cpu else float('inf'):.1f}x CPU")


if __name__ == "__main__":
    main()
