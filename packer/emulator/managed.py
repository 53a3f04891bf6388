"""Managed runtimes (python3.x) run as Lambda runs them: `/var/runtime/bootstrap`, not a layer's.

On Lambda a python3.12 function never looks for a `bootstrap` in the function or its layers: the
runtime's own `/var/runtime/bootstrap` starts `/var/lang/bin/python3.12` with AWS's runtime client,
which imports the handler from /var/task, with the layers' `/opt/python` and
`/opt/python/lib/python3.12/site-packages` on the path. Locally the interpreter is the host's: its
executable and the shared libraries it needs (that the runtime lacks) are staged under /var/lang,
its standard library is bound at `/var/lang/lib/python3.X`, and awslambdaric (AWS's client, which the
Lambda python images also run) with its two dependencies is bound into /var/runtime. The host's
version stands in for the runtime's (a finding says so when they differ).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from packer.emulator.sandbox import RUNTIME_DIR
from packer.errors import EmulatorError

LANG = "/var/lang"
BOOTSTRAP = f"{RUNTIME_DIR}/bootstrap"
CLIENT_PACKAGES = ("awslambdaric", "simplejson", "snapshot_restore_py.py")
_GLIBC = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|ld-linux[-\w]*)\.so")


@dataclass
class Managed:
    binds: list[tuple[str, str]] = field(default_factory=list)  # (host path, sandbox path), read-only
    env: dict[str, str] = field(default_factory=dict)
    host_version: str = ""
    runtime_version: str = ""


def runtime_version(name: str) -> str | None:
    m = re.fullmatch(r"python(\d+\.\d+)", name)
    return m.group(1) if m else None


def prepare_python(runtime: str, offered_libs: set[str], scratch: Path) -> Managed:
    """Stage /var/lang and /var/runtime for `runtime` (python3.X) from the host interpreter."""
    target = runtime_version(runtime)
    if target is None:
        raise EmulatorError(f"{runtime}: no managed-runtime emulation (python3.x only)",
                            hint="build a custom runtime (a `bootstrap`) and use --runtime provided.al2023")
    spec = importlib.util.find_spec("awslambdaric")
    if spec is None or not spec.origin:
        raise EmulatorError(f"--runtime {runtime} runs AWS's Python runtime client, which is not installed",
                            hint="pip install awslambdaric")
    site = Path(spec.origin).parent.parent
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    exe = Path(sys.executable).resolve()
    lang = scratch / "var-lang"
    (lang / "bin").mkdir(parents=True)
    (lang / "lib" / f"python{host}").mkdir(parents=True)  # mount point of the standard library
    shutil.copy2(exe, lang / "bin" / f"python{host}")
    for alias in ("python3", "python", f"python{target}"):
        if not (lang / "bin" / alias).exists():
            os.symlink(f"python{host}", lang / "bin" / alias)
    for lib in _needed_libs(exe, offered_libs):
        shutil.copy2(lib, lang / "lib" / lib.name)
    boot = scratch / "runtime-bootstrap"
    boot.write_text(f'#!/bin/sh\nexec {LANG}/bin/python3 -m awslambdaric "$_HANDLER"\n')
    boot.chmod(0o755)
    out = Managed(host_version=host, runtime_version=target)
    out.binds.append((str(lang), LANG))
    out.binds.append((str(Path(os.__file__).parent), f"{LANG}/lib/python{host}"))
    out.binds.append((str(boot), BOOTSTRAP))
    for name in CLIENT_PACKAGES:
        for cand in [site / name, *sorted(site.glob("runtime_client*.so"))] if name == "awslambdaric" else [site / name]:
            if cand.exists():
                out.binds.append((str(cand), f"{RUNTIME_DIR}/{cand.name}"))
    out.env = {"PYTHONPATH": f"{RUNTIME_DIR}:/opt/python/lib/python{target}/site-packages:/opt/python"}
    return out


def _needed_libs(exe: Path, offered: set[str]) -> list[Path]:
    """Shared libraries the interpreter loads that are neither glibc nor offered by the runtime."""
    try:
        text = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [Path(path) for name, path in re.findall(r"^\s*(\S+) => (/\S+)", text, re.M)
            if not _GLIBC.match(name) and name not in offered]
