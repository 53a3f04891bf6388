"""Shared test plumbing: where the fixtures are, and tools that CI must have.

A test that needs an external tool (bwrap, erl, libtree, patchelf…) calls `require_tool`: on CI
(`CI` set, where `.ci/run` installed everything) a missing tool is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run must install it")
        pytest.skip(f"{name} not installed (CI installs it)")
    return path


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def console_script() -> str | None:
    """The `layerpack` script installed for the interpreter running the tests (in its bin/), or None.

    Not `shutil.which`: the first `layerpack` on PATH may belong to another Python (a pyenv shim while
    the tests run in a venv of Debian's Python), and then the tests would judge that install instead."""
    exe = Path(sys.executable).parent / "layerpack"
    return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None


def layerpack_command() -> list[str]:
    """argv[0:] that runs layerpack with the tests' interpreter: its console script, else `-m packer`."""
    exe = console_script()
    return [exe] if exe else [sys.executable, "-m", "packer"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `layerpack` console script as a user would (a subprocess, not CliRunner)."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*layerpack_command(), *args], cwd=cwd, env=full_env, input=input, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
