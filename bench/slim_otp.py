#!/usr/bin/env python3
"""Benchmark: `layerpack slim --profile erlang` vs the manual recipe (rm + `beam_lib:strip_release`).

Both start from a copy of Debian's /usr/lib/erlang and keep kernel, stdlib, compiler, crypto (+ the
erts app). The manual recipe is what one does by hand (docs/slim-rules.md): remove the other apps, per-app
src/include/doc/examples, build-only binaries and *.script, then `erl -eval beam_lib:strip_release`
(gzip beams). Prints bytes per rule, totals, the zipped size of each result (the same `layerpack
build` for both: what Lambda's 50 MB upload limit counts), the size/time ratios of the two in the
same run, and whether each result BOOTS: its own `erl` started in a bwrap sandbox with the tree
mounted where its scripts expect it (/opt for layerpack's, /usr/lib/erlang for the manual one)
computes a SHA-256 with crypto and compiles a module. A smaller tree that does not boot is no win.

    python bench/slim_otp.py [--otp /usr/lib/erlang] [--gzip]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from packer.package import build
from packer.slim import SlimOptions, apply, load, plan
from packer.slim.apply import tree_bytes

KEEP = {"kernel", "stdlib", "compiler", "crypto", "erts"}
BUILD_ONLY = ["erlc", "dialyzer", "typer", "ct_run", "erl_call", "yielding_c_fun", "run_erl", "to_erl", "start_erl"]


def manual(root: Path) -> float:
    t = time.perf_counter()
    for app in (root / "lib").iterdir():
        if app.name.rsplit("-", 1)[0] not in KEEP:
            shutil.rmtree(app)
        else:
            for sub in ("src", "include", "doc", "examples", "c_src", "man", "priv/obj"):
                shutil.rmtree(app / sub, ignore_errors=True)
    for d in [root / "bin", *root.glob("erts-*/bin")]:
        for name in BUILD_ONLY:
            (d / name).unlink(missing_ok=True)
    for s in [*root.glob("releases/*/*.script"), *root.glob("bin/*.script")]:
        s.unlink()
    subprocess.run(["erl", "-noshell", "-eval", f'{{ok, _}} = beam_lib:strip_release("{root}"), halt().'],
                   check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t


BOOT_EVAL = ('io:format("~s", [binary:encode_hex(crypto:hash(sha256, <<"layerpack">>))]), '
             '{ok, m, _} = compile:forms([{attribute, 1, module, m}], []), halt().')
BOOT_SHA = "ACA18D1511EF82542C887F8AB63C88A8DAEFBC5C85D36CD58F0694FA70AB812F"  # sha256("layerpack")


def boots(root: Path, mount: str) -> str:
    """'yes' when the tree's own erl, mounted read-only at `mount` over this machine's root,
    hashes with crypto and compiles; else the reason."""
    if shutil.which("bwrap") is None:
        return "not verified (bwrap missing)"
    cmd = ["bwrap", "--ro-bind", "/", "/", "--ro-bind", str(root), mount, "--dev", "/dev", "--proc", "/proc",
           "--tmpfs", "/tmp", "--chdir", "/tmp", f"{mount}/bin/erl", "-noshell", "-eval", BOOT_EVAL]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if proc.returncode == 0 and proc.stdout.strip() == BOOT_SHA:
        return "yes"
    return f"NO (exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]})"


def zipped(root: Path, out: Path) -> int:
    return build(root, out, level=6, force=True).zipped_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--otp", default="/usr/lib/erlang")
    ap.add_argument("--gzip", action="store_true", help="gzip beams in layerpack too (beam_lib style)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        src = base / "src"
        shutil.copytree(args.otp, src, symlinks=True)
        before, files_before = tree_bytes(src)

        t = time.perf_counter()
        p = plan(src, load("erlang"), SlimOptions(keep_apps=("compiler", "crypto"), beam_gzip=args.gzip or None))
        result = apply(p, base / "lp")
        t_lp = time.perf_counter() - t

        man = base / "manual"
        shutil.copytree(src, man, symlinks=True)
        t_man = manual(man)
        man_bytes, man_files = tree_bytes(man)
        lp_zip, man_zip = zipped(base / "lp", base / "lp.zip"), zipped(man, base / "manual.zip")
        lp_boot, man_boot = boots(base / "lp", "/opt"), boots(man, "/usr/lib/erlang")

    print(f"input {args.otp}: {before:,} B in {files_before} files")
    print(f"{'rule':6} {'tier':5} {'action':16} {'files':>6} {'before B':>12} {'after B':>12} {'saved B':>12}")
    for r in p.rules:
        print(f"{r.id:6} {r.tier:5} {r.action:16} {r.files:>6} {r.before:>12,} {r.after:>12,} {r.saved:>12,}")
    print(f"layerpack slim --profile erlang{' --gzip-beams' if args.gzip else ''}: {before:,} -> {result.bytes_after:,} B "
          f"({result.files_after} files) in {t_lp:.2f} s")
    print(f"manual rm + beam_lib:strip_release (gzip):   {before:,} -> {man_bytes:,} B ({man_files} files) in {t_man:.2f} s")
    print(f"zipped (layerpack build -6): layerpack {lp_zip:,} B, manual {man_zip:,} B, ratio {lp_zip / man_zip:.3f}")
    print(f"size ratio layerpack/manual: {result.bytes_after / man_bytes:.3f}   time ratio: {t_lp / t_man:.2f}")
    print(f"boots: layerpack's {lp_boot}; manual {man_boot}")


if __name__ == "__main__":
    main()
