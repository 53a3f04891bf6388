#!/usr/bin/env python3
"""Judge vs analyze on the real-layer corpus (issue 23), with analyze's and check's wall time.

For every case of tests/real_layers_corpus.py (layers built with pip/npm from the real registries,
cached under ~/.cache/layerpack-test/real-layers), prints the judge's verdict (the runtime's real
interpreter importing/requiring in a Lambda-shaped sandbox, readelf against the runtime's ceilings),
`layerpack analyze … --json`'s verdict, analyze's wall time and `layerpack check TREE`'s wall time
in the same run, then a summary line: false errors (analyze fails a layer that works) and false
passes (analyze passes a layer that fails). `--report FILE` also writes the table there.

Usage:  python bench/real_layers.py [--only SUBSTRING ...] [--report /tmp/real_layers_report.txt]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.real_layers import CASES, SetupError, analyze, build_tree, judge  # noqa: E402


def check_seconds(tree: Path) -> float:
    exe = shutil.which("layerpack")
    argv = [exe] if exe else [sys.executable, "-m", "packer"]
    start = time.monotonic()
    subprocess.run([*argv, "check", str(tree), "--json"], capture_output=True, text=True, timeout=600)
    return time.monotonic() - start


def row(case) -> tuple[str, str, str]:
    """(line, judge word, analyze word) for one case."""
    try:
        verdict = judge(case)
    except SetupError as exc:
        return f"{case.id:48} judge=ERROR {exc}", "error", "error"
    result = analyze(case)
    check = check_seconds(build_tree(case.tree))
    mark = "  " if verdict.word == result.word else "≠ "
    detail = f"  [{verdict.file.split()[0] if verdict.file else ''}: {verdict.error[:110]}]" if not verdict.works else ""
    codes = ",".join(sorted({e.get("code", "?") for e in result.errors}))
    line = (f"{mark}{case.id:46} judge={verdict.word:5}  analyze={result.word:5} {codes:14} "
            f"analyze {result.seconds:5.2f}s  check {check:5.2f}s{detail}")
    return line, verdict.word, result.word


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--report", type=Path)
    args = ap.parse_args()
    lines, false_errors, false_passes = [], 0, 0
    for case in CASES:
        if args.only and not any(s in case.id for s in args.only):
            continue
        line, j, a = row(case)
        print(line, flush=True)
        lines.append(line)
        false_errors += j == "works" and a == "fails"
        false_passes += j == "fails" and a == "works"
    summary = f"{len(lines)} cases: {false_errors} false errors, {false_passes} false passes"
    print(summary)
    if args.report:
        args.report.write_text("\n".join([*lines, summary]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
