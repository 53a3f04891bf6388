"""Managed runtimes (python3.x, nodejs*.x) run as Lambda runs them: `/var/runtime/bootstrap`, not a layer's.

On Lambda a python3.12 function never looks for a `bootstrap` in the function or its layers: the
runtime's own `/var/runtime/bootstrap` starts `/var/lang/bin/python3.12` with AWS's runtime client,
which imports the handler from /var/task, with the layers' `/opt/python` and
`/opt/python/lib/python3.12/site-packages` on the path. Locally the interpreter is the host's: its
executable and the shared libraries it needs (that the runtime lacks) are staged under /var/lang,
its standard library is bound at `/var/lang/lib/python3.X`, and awslambdaric (AWS's client, which the
Lambda python images also run) with its two dependencies is bound into /var/runtime. The host's
version stands in for the runtime's (a finding says so when they differ).

nodejs*.x works the same way with the host's `node` bound at /var/lang/bin/node and AWS's Node.js
client, aws-lambda-ric (npm; it compiles a native part, so it is not bundled: install it with
`npm install -g aws-lambda-ric` or point LAYERPACK_NODE_RIC_DIR at an `npm install --prefix` dir),
bound into /var/runtime/node_modules; NODE_PATH is Lambda's (/opt/nodejs/node_modules first).
"""

from __future__ import annotations

import importlib.util
import json
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


def prepare_node(runtime: str, offered_libs: set[str], scratch: Path) -> Managed:
    """Stage /var/lang and /var/runtime for `runtime` (nodejsNN.x) from the host's node."""
    m = re.fullmatch(r"nodejs(\d+)\.x", runtime)
    node = shutil.which("node")
    if m is None or node is None:
        raise EmulatorError(f"--runtime {runtime} runs the host's node, which is not installed",
                            hint="install Node.js, or build a custom runtime and use --runtime provided.al2023")
    modules = _node_ric_modules()
    if modules is None:
        raise EmulatorError(f"--runtime {runtime} runs AWS's Node.js runtime client, which is not installed",
                            hint="npm install -g aws-lambda-ric (or set LAYERPACK_NODE_RIC_DIR to an npm --prefix dir)")
    exe = Path(node).resolve()
    host = subprocess.run([str(exe), "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True,
                          timeout=30).stdout.strip()
    lang = scratch / "var-lang"
    (lang / "bin").mkdir(parents=True)
    (lang / "lib").mkdir()
    (lang / "bin" / "node").touch()  # mount point of the host's node
    for lib in _needed_libs(exe, offered_libs):
        shutil.copy2(lib, lang / "lib" / lib.name)
    ric = modules / "aws-lambda-ric"
    binary = json.loads((ric / "package.json").read_text()).get("bin", "index.mjs")
    entry = binary.get("aws-lambda-ric", "index.mjs") if isinstance(binary, dict) else binary
    boot = scratch / "runtime-bootstrap"
    boot.write_text(f'#!/bin/sh\nexec {LANG}/bin/node {RUNTIME_DIR}/node_modules/aws-lambda-ric/{entry} "$_HANDLER"\n')
    boot.chmod(0o755)
    out = Managed(host_version=host, runtime_version=m.group(1))
    out.binds += [(str(lang), LANG), (str(exe), f"{LANG}/bin/node"), (str(boot), BOOTSTRAP),
                  (str(ric), f"{RUNTIME_DIR}/node_modules/aws-lambda-ric")]
    store = modules / "@aws" / "lambda-invoke-store"
    if store.is_dir():
        out.binds.append((str(store), f"{RUNTIME_DIR}/node_modules/@aws/lambda-invoke-store"))
    out.env = {"NODE_PATH": f"/opt/nodejs/node{m.group(1)}/node_modules:/opt/nodejs/node_modules:"
                            f"{RUNTIME_DIR}/node_modules:{RUNTIME_DIR}:/var/task"}
    return out


def _node_ric_modules() -> Path | None:
    """The node_modules holding aws-lambda-ric: LAYERPACK_NODE_RIC_DIR, else npm's global root."""
    candidates = []
    if os.environ.get("LAYERPACK_NODE_RIC_DIR"):
        candidates.append(Path(os.environ["LAYERPACK_NODE_RIC_DIR"]) / "node_modules")
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            root = ""
        if root:
            candidates.append(Path(root))
    return next((c for c in candidates if (c / "aws-lambda-ric" / "package.json").is_file()), None)


def _needed_libs(exe: Path, offered: set[str]) -> list[Path]:
    """Shared libraries the interpreter loads that are neither glibc nor offered by the runtime."""
    try:
        text = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [Path(path) for name, path in re.findall(r"^\s*(\S+) => (/\S+)", text, re.M)
            if not _GLIBC.match(name) and name not in offered]
