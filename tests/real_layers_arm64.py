"""The arm64 side of the real-layer judge: aarch64 interpreters through qemu-user (no tests here).

The root is shaped like Lambda's from an arm64 Debian 12 (tests/real_layers_roots.arm64_root): only
the runtime's listed sonames are copied into /usr/lib64 (Debian's aarch64 files standing in for
Amazon Linux's), the interpreter — Debian's python3.11, or an official aarch64 `node` from PyPI — and
the libraries it needs that the runtime lacks go to /var/lang, the tree to /opt, and bubblewrap runs
the same judge script as on x86_64. qemu-aarch64 runs the programs through binfmt_misc (flag F, so
inside the sandbox too); `.ci/run` registers it.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.real_layers_roots import SetupError, _key, _publish, _workdir, arm64_root, cache_root, node_binary

LIB_DIRS = ("usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib")
LOADER = "ld-linux-aarch64.so.1"


def _binfmt_ready() -> None:
    status = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not status.is_file() or "enabled" not in status.read_text():
        raise SetupError("qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static "
                         "binfmt-support; update-binfmts --enable qemu-aarch64)")


def _find(debian: Path, soname: str) -> Path | None:
    for d in LIB_DIRS:
        cand = debian / d / soname
        if cand.exists():
            return cand.resolve()
    return None


def shaped_root(runtime: str) -> Path:
    """/usr of an arm64 Lambda root: the runtime's sonames only, from Debian's aarch64 files."""
    from packer import runtime as rtmod

    debian = arm64_root()
    rt = rtmod.load(runtime, "arm64")
    names = sorted({posixpath.basename(p) for p in rt.libs.entries} | {LOADER})
    out = cache_root() / "roots" / f"lambda-{runtime}-arm64-{_key(names, str(debian))}"
    work = _workdir(out, ".lambda-arm64-")
    if work is None:
        return out
    lib64 = work / "usr" / "lib64"
    lib64.mkdir(parents=True)
    (work / "usr" / "lib").mkdir()
    (work / "usr" / "bin").mkdir()
    for name in names:
        found = _find(debian, name)
        if found is not None:
            shutil.copy2(found, lib64 / name)
    shutil.copy2(lib64 / LOADER, work / "usr" / "lib" / LOADER)
    return _publish(work, out)


def _needed_closure(files: list[Path], debian: Path, offered: set[str]) -> dict[str, Path]:
    """Libraries (by soname) the files need, transitively, that the runtime does not offer."""
    from packer.elf.reader import read_path

    out: dict[str, Path] = {}
    todo = list(files)
    while todo:
        try:
            needed = read_path(str(todo.pop())).needed
        except Exception:  # noqa: BLE001 - not an ELF file: nothing to follow
            continue
        for soname in needed:
            if soname in offered or soname in out:
                continue
            found = _find(debian, soname)
            if found is not None:
                out[soname] = found
                todo.append(found)
    return out


def _lang(runtime: str, root: Path) -> tuple[Path, list[tuple[str, str]], list[str]]:
    """/var/lang for the runtime's interpreter; extra binds; argv."""
    debian = arm64_root()
    offered = {p.name for p in (root / "usr" / "lib64").iterdir()}
    if runtime.startswith("python"):
        version = runtime.removeprefix("python")
        exe = debian / "usr" / "bin" / f"python{version}"
        if not exe.is_file():
            raise SetupError(f"no aarch64 CPython {version} here (the arm64 root has Debian 12's python3.11 only)")
        stdlib = debian / "usr" / "lib" / f"python{version}"
        users = [exe, *stdlib.glob("lib-dynload/*.so")]
        name, argv = f"python{version}", [f"/var/lang/bin/python{version}", "-s", "-E", "/var/runtime/judge.py"]
        binds = [(str(stdlib), f"/var/lang/lib/python{version}")]
    else:
        major = int(runtime.removeprefix("nodejs").removesuffix(".x"))
        exe = node_binary(major, "arm64")
        users, name, argv, binds = [exe], "node", ["/var/lang/bin/node", "/var/runtime/judge.js"], []
    out = cache_root() / "lang" / f"{runtime}-arm64-{_key(str(exe), exe.stat().st_size, str(root))}"
    if not (out / ".complete").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".lang-arm64-", dir=out.parent))
        os.chmod(work, 0o755)
        (work / "bin").mkdir(mode=0o755)
        (work / "lib").mkdir(mode=0o755)
        shutil.copy2(exe, work / "bin" / name)
        for soname, path in _needed_closure(users, debian, offered).items():
            shutil.copy2(path, work / "lib" / soname)
        if name.startswith("python"):
            (work / "lib" / name).mkdir()
        _publish(work, out)
    return out, binds, argv


def run(tree: Path, runtime: str, arch: str) -> dict:
    """Run the judge script for an arm64 case; its parsed report."""
    from packer import runtime as rtmod
    from tests.real_layers_judge import PY_SCRIPT, _targets, node_script, parse_report

    _binfmt_ready()
    root = shaped_root(runtime)
    lang, binds, argv = _lang(runtime, root)
    python = runtime.startswith("python")
    script = (PY_SCRIPT, "/var/runtime/judge.py") if python else (node_script(), "/var/runtime/judge.js")
    rt = rtmod.load(runtime, arch)
    env = {"PATH": ":".join(rt.path_env), "LD_LIBRARY_PATH": ":".join(rt.ld_library_path), "HOME": "/tmp",
           "LAMBDA_TASK_ROOT": "/var/task", "LANG": "C.UTF-8", "JUDGE_TARGETS": json.dumps(_targets(tree, runtime))}
    if runtime.startswith("nodejs"):
        major = runtime.removeprefix("nodejs").removesuffix(".x")
        env["NODE_PATH"] = f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules"
    cmd = ["bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", f"{root}/usr", "/usr",
           "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/lib", "/lib", "--symlink", "usr/bin", "/bin",
           "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", str(tree), "/opt",
           "--dir", "/var/task", "--ro-bind", str(lang), "/var/lang", "--ro-bind", str(script[0]), script[1]]
    for host, inside in binds:
        cmd += ["--ro-bind", host, inside]
    cmd += ["--chdir", "/var/task", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    proc = subprocess.run([*cmd, "--", *argv], capture_output=True, text=True, timeout=900)
    return parse_report(proc.stdout, proc.stderr, proc.returncode)
