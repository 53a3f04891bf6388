#!/usr/bin/env python3
"""The long fuzzing run of issue 15: ELF mutants through the library, ELF and zip mutants through
the CLI. Prints one line per target (tried / passed, failures by kind) and the first failures with
the seed that reproduces them.

    python bench/fuzz_long.py [--elf 20000] [--elf-cli 1000] [--zip-cli 300] [--seed 1] [--jobs 2]

Goal: 0 crashes, 0 hangs, 0 escapes. (No peer: the figure is absolute; the time is printed.)
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import fuzzing  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--elf", type=int, default=20_000)
    ap.add_argument("--elf-cli", type=int, default=1_000)
    ap.add_argument("--zip-cli", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--part", default="1/1", help="K/N: only the library mutants i with i %% N == K-1 (run N "
                    "processes for the N parts on a busy machine; their sums are the run)")
    args = ap.parse_args()
    k, n = (int(x) for x in args.part.split("/"))
    work = fuzzing.new_workdir()
    print(f"work directory: {work}", flush=True)
    failed = False

    t0 = time.monotonic()
    lib = fuzzing.Tally()
    one = work / "lib"
    one.mkdir()
    for i, (what, data) in enumerate(fuzzing.elf_mutants(args.elf, args.seed, part=(k - 1, n))):
        verdict = fuzzing.elf_library(data, one)
        lib.add(verdict, f"{what}: {verdict}")
        if (i + 1) % 1000 == 0:
            print(f"  ... {i + 1:,} library mutants, {len(lib.failures)} failure kinds", flush=True)
    lib.max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(lib.line("ELF mutants, library") + f"; {time.monotonic() - t0:.0f} s, max RSS {lib.max_rss_kb // 1024} MB",
          flush=True)

    t0 = time.monotonic()
    elf_cli = fuzzing.Tally()
    cases = list(fuzzing.elf_mutants(args.elf_cli, args.seed + 1000))
    with ThreadPoolExecutor(args.jobs) as pool:
        for what, verdict in pool.map(lambda c: fuzzing.elf_cli_case(c[1][0], c[1][1], work, c[0]), enumerate(cases)):
            elf_cli.add(verdict, f"{what}: {verdict}")
    print(elf_cli.line("ELF mutants, `layerpack analyze`") + f"; {time.monotonic() - t0:.0f} s", flush=True)

    t0 = time.monotonic()
    zips = fuzzing.Tally()
    with ThreadPoolExecutor(args.jobs) as pool:
        for what, verdict in pool.map(lambda i: fuzzing.zip_case(i, args.seed, work), range(args.zip_cli)):
            zips.add(verdict, f"{what}: {verdict}")
    print(zips.line("zip mutants and attacks, analyze/check/vendor") + f"; {time.monotonic() - t0:.0f} s", flush=True)

    for name, tally in (("library", lib), ("ELF CLI", elf_cli), ("zip CLI", zips)):
        for verdict, items in tally.failures.items():
            failed = True
            print(f"  {name} {verdict.split(':')[0]}: {len(items)}; first: {items[:3]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
