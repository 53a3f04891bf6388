"""`slim --compile-pyc`: hash-based bytecode written by the runtime's own Python version.

Why hash-based: `layerpack build` dates every zip entry the same (reproducible zips), so a
timestamp-based `.pyc` no longer matches its unzipped `.py` and CPython recompiles it at every cold
start (see packer.pyc). `unchecked-hash` `.pyc` are never compared with the source, which is right
for /opt: it cannot change. Why the runtime's version: CPython only reads `__pycache__` files of its
own cache tag (`cpython-312`), so bytecode from another version is dead weight.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from packer.errors import SlimError, UsageError

AUTO = "auto"  # `--compile-pyc` without a value: find the runtime's interpreter
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"


def runtime_version(runtime: str | None) -> str | None:
    """`python3.12` -> `3.12`; None for other runtimes."""
    m = re.fullmatch(r"python(\d\.\d+)", runtime or "")
    return m.group(1) if m else None


def interpreter_version(exe: str) -> str:
    """`3.12` for a CPython interpreter; UsageError when it does not run or is not CPython."""
    try:
        res = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise UsageError(f"--compile-pyc {exe}: cannot run it ({exc.strerror or exc})") from None
    parts = res.stdout.split()
    if res.returncode != 0 or len(parts) != 2:
        raise UsageError(f"--compile-pyc {exe}: not a working Python interpreter")
    if parts[1] != "cpython":
        raise UsageError(f"--compile-pyc {exe}: {parts[1]} is not CPython, the interpreter Lambda runs")
    return parts[0]


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/", path)
    return tuple(int(g) for g in m.groups()) if m else (0,)


def candidates(version: str) -> list[str]:
    """Where a `pythonX.Y` may be: PATH first, then pyenv's versions (newest patch release first)."""
    out = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        out.append(on_path)
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = glob.glob(os.path.join(pyenv, "versions", f"{version}.*", "bin", f"python{version}"))
    out.extend(sorted((p for p in found if re.search(rf"/versions/{re.escape(version)}\.\d+/", p)),
                      key=_version_key, reverse=True))
    return out


def find_interpreter(given: str, runtime: str | None) -> str:
    """The interpreter to compile with: `given` (a path or command) checked against the runtime's
    version when the runtime is a python3.X (a custom runtime's Python cannot be checked), or for AUTO
    the first `pythonX.Y` of the runtime's version found. UsageError (one line, exit 2) when none is
    found or the versions differ."""
    want = runtime_version(runtime)
    if given == AUTO:
        if want is None:
            said = f"--runtime {runtime} is not a Python runtime" if runtime else "no --runtime given"
            raise UsageError(f"--compile-pyc needs --runtime python3.X to know which Python to compile with ({said})",
                             hint="or pass the interpreter: --compile-pyc /path/to/python3.X")
        for exe in candidates(want):
            try:
                if interpreter_version(exe) == want:
                    return exe
            except UsageError:  # a pyenv shim for a version not selected, a broken venv: try the next
                continue
        raise UsageError(f"--compile-pyc: no python{want} found on PATH or under ~/.pyenv/versions/{want}.*",
                         hint=f"install Python {want}, or pass its path: --compile-pyc /path/to/python{want}")
    exe = shutil.which(given) or given
    have = interpreter_version(exe)
    if want is not None and have != want:
        raise UsageError(f"--compile-pyc {given} is Python {have} but --runtime {runtime} runs {want}: "
                         f"its .pyc would never be read")
    return exe


def compile_tree(root: Path, exe: str) -> int:
    """Write unchecked-hash .pyc for every .py under `root` with `exe`; the number of .pyc after.
    `-f`: without it compileall keeps pip's timestamp-based .pyc, which it finds up to date."""
    cmd = [exe, "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode", "unchecked-hash", str(root)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except OSError as exc:
        raise SlimError(f"--compile-pyc {exe}: {exc.strerror}") from exc
    if res.returncode not in (0, 1):  # 1: some file did not compile (tests of py2 code...), not fatal
        raise SlimError(f"--compile-pyc {exe}: compileall failed: {res.stderr.strip()[:200]}")
    return sum(1 for _ in root.rglob("*.pyc"))


__all__ = ["AUTO", "candidates", "compile_tree", "find_interpreter", "interpreter_version", "runtime_version"]
