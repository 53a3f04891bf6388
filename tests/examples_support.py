"""Running an example's own script once per test module, as a user would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_tool, run_cli

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


@pytest.fixture(scope="module")
def bullseye(tmp_path_factory, bullseye_image) -> tuple[str, Path]:
    """(image reference, LAYERPACK_CACHE_DIR holding it): Debian 11, glibc 2.31 — older than the
    glibc 2.36 the examples are built against — pulled once per test module."""
    require_tool("bwrap")
    cache = tmp_path_factory.mktemp("lp-cache")
    proc = run_cli("image", "pull", bullseye_image, env={"LAYERPACK_CACHE_DIR": str(cache)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return bullseye_image, cache


def invoke_on_image(bullseye: tuple[str, Path], layer: Path, event: Path, *extra: str) -> subprocess.CompletedProcess:
    """`layerpack invoke LAYER --image` on Debian 11: the image's own loader, libc and /lib64 judge."""
    image, cache = bullseye
    return run_cli("invoke", str(layer), "--image", image, "--event", str(event), *extra,
                   env={"LAYERPACK_CACHE_DIR": str(cache)}, timeout=600)
