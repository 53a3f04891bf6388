#!/usr/bin/env python3
"""Vendor the same fixture trees with `--patcher patchelf` and `--patcher lief`, in the same run, and
print per patched file its growth, whether the program still starts, the wall time and the ratio.

    python bench/vendor_patchers.py [--repeat 3]

Also shows what a naive lief edit (DT_NEEDED renamed, verneed left, file written as lief writes it)
produces, which is why LiefPatcher renames the verneed entry and restores the mode. "runs" means
the vendored bootstrap, executed on this (x86_64) machine, exits 0 — the tests check the same in a
bwrap sandbox holding only the runtime's libraries. Figures quoted in docs/vendor.md come from here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packer import vendor  # noqa: E402
from packer.elf.patcher import Patch, Patcher, make_patcher  # noqa: E402

X86 = ROOT / "fixtures" / "bin" / "x86_64"
LIBZ = Path("/lib/x86_64-linux-gnu/libz.so.1")
CASES = {
    "rpath only (needs-atomic)": ({"bootstrap": X86 / "needs-atomic"}, {}),
    "rename + verneed (needs-zver, bundled libz)": ({"bootstrap": X86 / "needs-zver", "lib/libz.so.1": LIBZ}, {}),
    "sysroot closure (needs-fix1)": ({"bootstrap": X86 / "needs-fix1"},
                                     {"sysroot": ROOT / "fixtures" / "sysroot" / "x86_64"}),
}


class Timed:
    """A Patcher that times the one it wraps (vendor.apply also analyses; that is not the patcher's)."""

    def __init__(self, inner: Patcher) -> None:
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    def apply(self, path: Path, patch: Patch) -> None:
        t0 = time.perf_counter()
        self.inner.apply(path, patch)
        self.seconds += time.perf_counter() - t0


def make(base: Path, files: dict[str, Path]) -> Path:
    src = base / "in"
    for rel, path in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / rel)
    return src


def runs(out: Path) -> str:
    boot = out / "bootstrap"
    if not os.access(boot, os.X_OK):
        return "no: exec bit lost"
    proc = subprocess.run([str(boot)], capture_output=True, text=True, timeout=30)
    if proc.returncode == 0:
        return "yes"
    return "no: " + (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:90]


def vendor_once(case: str, patcher: str) -> tuple[float, list[tuple[str, int, int]], str]:
    files, kw = CASES[case]
    with tempfile.TemporaryDirectory() as tmp:
        src = make(Path(tmp), files)
        p = vendor.plan(src, **kw)
        timed = Timed(make_patcher(patcher))
        res = vendor.apply(p, Path(tmp) / "out", patcher=timed)
        took = timed.seconds
        sizes = []
        for op in p.patches:
            orig = next((c.real for c in p.copies if c.dest == op.rel), None)
            if orig is None:
                moved = next((m.source for m in p.moves if m.dest == op.rel), op.rel)
                orig = str(src / moved)
            sizes.append((op.rel, os.path.getsize(orig), os.path.getsize(res.out / op.rel)))
        return took, sizes, runs(res.out)


def naive_lief() -> tuple[int, int, str]:
    import lief

    with tempfile.TemporaryDirectory() as tmp:
        out = make(Path(tmp), {"bootstrap": X86 / "needs-zver", "lib/libz-0123abcd.so.1": LIBZ})
        b = lief.ELF.parse(str(out / "bootstrap"))
        for e in b.dynamic_entries:
            if e.tag == lief.ELF.DynamicEntry.TAG.NEEDED and e.name == "libz.so.1":
                e.name = "libz-0123abcd.so.1"
        b.add(lief.ELF.DynamicEntryRpath("$ORIGIN/lib"))
        b.write(str(out / "bootstrap.new"))  # a new file, as one writes with lief
        os.replace(out / "bootstrap.new", out / "bootstrap")
        size = os.path.getsize(out / "bootstrap")
        verdict = runs(out)
        os.chmod(out / "bootstrap", 0o755)
        return size, os.path.getsize(X86 / "needs-zver"), f"{verdict}; with the exec bit put back: {runs(out)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for case in CASES:
        print(f"\n{case}")
        best: dict[str, float] = {}
        for patcher in ("patchelf", "lief"):
            took = min(vendor_once(case, patcher)[0] for _ in range(args.repeat))
            _, sizes, verdict = vendor_once(case, patcher)
            best[patcher] = took
            print(f"  {patcher:8s} patching {took * 1000:7.1f} ms  runs: {verdict}")
            for rel, before, after in sizes:
                print(f"           {rel:28s} {before:>8,} -> {after:>8,} bytes ({(after - before) / before:+.1%})")
        print(f"  lief/patchelf time ratio: {best['lief'] / best['patchelf']:.2f}")
    after, before, verdict = naive_lief()
    print(f"\nnaive lief rename of needs-zver: {before:,} -> {after:,} bytes ({(after - before) / before:+.1%}); runs: {verdict}")


if __name__ == "__main__":
    main()
