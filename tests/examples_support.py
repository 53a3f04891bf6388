"""Running an example's own script once per test module, as a user would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT, require_tool

EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path_factory, *tools: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, Path]:
    """Run examples/<name>/run.sh WORKDIR after checking the tools it needs (CI must have them)."""
    for tool in ("bwrap", *tools):
        require_tool(tool)
    work = tmp_path_factory.mktemp(f"{name}-example")
    proc = subprocess.run([str(EXAMPLES / name / "run.sh"), str(work)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})
    return proc, work


def said(proc: subprocess.CompletedProcess) -> str:
    """Everything the script printed (commands on stderr, reports on stdout), whitespace-normalised."""
    return " ".join((proc.stdout + proc.stderr).split())
