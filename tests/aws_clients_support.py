"""Layers that carry AWS's own runtime interface clients, for the emulator tests (no tests here).

provided.al2023 has no Python and no Node.js, so each test layer brings what its client needs,
the way a custom-runtime layer would:
- Python: the interpreter running the tests, its standard library and the installed awslambdaric
  (with simplejson and snapshot-restore-py) are copied to /opt/python (bin/python3, lib/python3.X,
  lib/python3.X/site-packages: Python finds its prefix from the executable's location), the shared
  libraries the interpreter and the client's C extension link that the runtime lacks go to /opt/lib
  (on LD_LIBRARY_PATH), and `bootstrap` runs `python3 -m awslambdaric "$_HANDLER"` from /var/task.
- Node.js: the host's `node` executable goes to /opt/bin/node (with the libraries it links that the
  runtime lacks, e.g. Debian's libnode, in /opt/lib), aws-lambda-ric and its one dependency
  (@aws/lambda-invoke-store) to /opt/node_modules, and `bootstrap` runs
  `node /opt/node_modules/aws-lambda-ric/index.mjs "$_HANDLER"`. aws-lambda-ric is installed by
  .ci/run with npm into NODE_RIC_DIR (it compiles its native part, curl and aws-lambda-cpp, once).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from packer import runtime as runtime_mod

SKIP_STDLIB = {"test", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip",
               "lib2to3", "pydoc_data", "unittest", "config-3.11-x86_64-linux-gnu"}
NODE_RIC_DIR = Path(os.environ.get("LAYERPACK_NODE_RIC_DIR",
                                   Path.home() / ".cache" / "layerpack-test" / "node-ric"))
GLIBC = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|ld-linux[-\w]*)\.so")


def _copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=False, ignore=lambda d, names: [n for n in names if n in SKIP_STDLIB],
                    dirs_exist_ok=True)


def _needed_libs(*elfs: Path) -> set[Path]:
    """Shared libraries `elfs` load (per the host's ldd) that are not glibc and not on the runtime."""
    offered = {Path(p).name for p in runtime_mod.load("provided.al2023", "x86_64").libs.entries}
    out: set[Path] = set()
    for elf in elfs:
        text = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
        for name, path in re.findall(r"^\s*(\S+) => (/\S+)", text, re.M):
            if not GLIBC.match(name) and name not in offered:
                out.add(Path(path))
    return out


def _site_dir(python: Path, lib: Path) -> Path:
    """The directory under `lib` that the copied interpreter's own `site` reads: site-packages for
    python.org builds, dist-packages for Debian's patched Python (which never reads site-packages
    outside a venv). Asked of the copy itself (-I: no PYTHON* variables, no user site)."""
    r = subprocess.run([str(python), "-I", "-c", "import site; print('\\n'.join(site.getsitepackages()))"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if Path(line).parent == lib and Path(line).name in ("site-packages", "dist-packages"):
            return Path(line)
    pytest.fail(f"{python} reads no site directory under {lib}: {r.stdout!r}")


def python_ric_layer(dest: Path) -> Path:
    spec = importlib.util.find_spec("awslambdaric")
    if spec is None or not spec.origin:
        pytest.fail("awslambdaric is not installed (it is in the `test` extra: pip install -e '.[test]')")
    site = Path(spec.origin).parent.parent
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    exe = Path(sys.executable).resolve()
    stdlib = Path(os.__file__).parent
    root = dest / "python"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(exe, root / "bin" / "python3")
    _copy(stdlib, root / "lib" / version)
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or stdlib / "lib-dynload")
    if dynload.is_dir() and not str(dynload).startswith(str(stdlib)):
        _copy(dynload, root / "lib" / version / "lib-dynload")
    target = _site_dir(root / "bin" / "python3", root / "lib" / version)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("awslambdaric", "simplejson", "snapshot_restore_py.py"):
        for cand in [site / name, *site.glob(f"{name}*")]:
            if cand.exists():
                (_copy if cand.is_dir() else shutil.copy2)(cand, target / cand.name)
                break
    extensions = list((target / "awslambdaric").glob("*.so")) + list(target.glob("runtime_client*.so"))
    for cand in site.glob("runtime_client*.so"):
        shutil.copy2(cand, target / cand.name)
        extensions.append(target / cand.name)
    (dest / "lib").mkdir()
    for lib in _needed_libs(exe, *extensions):
        shutil.copy2(lib, dest / "lib" / lib.name)
    boot = dest / "bootstrap"
    boot.write_text('#!/bin/sh\nexec /opt/python/bin/python3 -m awslambdaric "$_HANDLER"\n')
    boot.chmod(0o755)
    return dest


def node_ric_layer(dest: Path) -> Path:
    modules = NODE_RIC_DIR / "node_modules"
    ric = modules / "aws-lambda-ric"
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (.ci/run installs Debian's nodejs)")
    if not (ric / "package.json").is_file():
        pytest.fail(f"aws-lambda-ric is not installed in {NODE_RIC_DIR} (.ci/run installs it: "
                    f"npm install --prefix {NODE_RIC_DIR} aws-lambda-ric)")
    exe = Path(node).resolve()
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(exe, dest / "bin" / "node")
    (dest / "lib").mkdir()
    for lib in _needed_libs(exe):
        shutil.copy2(lib, dest / "lib" / lib.name)
    shutil.copytree(ric, dest / "node_modules" / "aws-lambda-ric", ignore=shutil.ignore_patterns("deps"))
    store = modules / "@aws" / "lambda-invoke-store"
    if store.is_dir():
        shutil.copytree(store, dest / "node_modules" / "@aws" / "lambda-invoke-store")
    boot = dest / "bootstrap"
    entry = _bin_entry(ric)  # index.mjs in 4.x, bin/index.mjs in 3.x
    boot.write_text(f'#!/bin/sh\nexec /opt/bin/node /opt/node_modules/aws-lambda-ric/{entry} "$_HANDLER"\n')
    boot.chmod(0o755)
    return dest


def _package(ric: Path) -> dict:
    import json

    return json.loads((ric / "package.json").read_text())


def _bin_entry(ric: Path) -> str:
    binary = _package(ric).get("bin", "index.mjs")
    return binary.get("aws-lambda-ric", "index.mjs") if isinstance(binary, dict) else binary


def node_ric_version() -> str:
    return _package(NODE_RIC_DIR / "node_modules" / "aws-lambda-ric")["version"]
