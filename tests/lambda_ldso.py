"""The judge of the loader tests: the real glibc ld.so in a bubblewrap sandbox shaped like Lambda.

The sandbox is the emulator's (`packer.emulator.sandbox`): only the runtime's listed libraries in
/lib64, the layer at /opt, the function at /var/task (also the working directory), Lambda's PATH and
LD_LIBRARY_PATH and nothing else of the environment. Programs and libraries are compiled from small C
sources at test time, so each case is a real ELF tree built by the real toolchain. (No tests here.)
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool

RUNTIME = "provided.al2023"

# A library that says which copy of it was loaded (calling libc, as every real library does, so it
# has a symbol version table), and a program that prints it.
LIB_C = '#include <stdlib.h>\nconst char *which(void) { return getenv("LP_NEVER_SET") ? "env" : TAG; }\n'
MAIN_C = '#include <stdio.h>\nconst char *which(void);\nint main(void) { puts(which()); return 0; }\n'


@dataclass(frozen=True)
class Ran:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


@pytest.fixture(scope="session")
def lambda_root(tmp_path_factory) -> Path:
    """The runtime's root rebuilt from host files (once per session, shared with the emulator tests'
    cache when they run in the same session)."""
    require_tool("bwrap")
    require_tool("gcc")
    from packer import runtime
    from packer.emulator import rootfs, sandbox

    reason = sandbox.probe()
    if reason:
        pytest.fail(f"bwrap cannot sandbox here: {reason}")
    cache = Path(os.environ.get("LAYERPACK_CACHE_DIR") or tmp_path_factory.mktemp("ldso-cache")) / "emulator"
    base = rootfs.materialize(rootfs.plan_root(runtime.load(RUNTIME, "x86_64")), cache)
    return _with_ld_so_cache(base, tmp_path_factory.mktemp("lambda-root"))


def _with_ld_so_cache(base: Path, out: Path) -> Path:
    """A copy of the root (hard links) with an /etc/ld.so.cache of /usr/lib64, as Lambda has: the
    host's loader is built for Debian's directories and finds /lib64 only through that cache, while
    Lambda's own loader searches /lib64 and /usr/lib64 by default."""
    for top in ("usr", ".layerpack", "etc"):
        subprocess.run(["cp", "-al", str(base / top), str(out / top)], check=True)
    (out / "etc" / "ld.so.conf").unlink(missing_ok=True)
    (out / "etc" / "ld.so.conf").write_text("/usr/lib64\n")
    subprocess.run(["/sbin/ldconfig", "-X", "-r", str(out)], check=True, capture_output=True)
    return out


def on_lambda(root: Path, argv: tuple[str, ...], *, opt: Path | None = None, task: Path | None = None,
              env: dict[str, str] | None = None) -> Ran:
    """Run argv in the Lambda-shaped sandbox with Lambda's environment (plus `env`)."""
    from packer import runtime
    from packer.emulator import sandbox

    rt = runtime.load(RUNTIME, "x86_64")
    drop = _uid_helper(root.parent)
    full = {"PATH": ":".join(rt.path_env), "LD_LIBRARY_PATH": ":".join(rt.ld_library_path),
            "LAMBDA_TASK_ROOT": "/var/task", "LANG": "en_US.UTF-8", **(env or {})}
    spec = sandbox.SandboxSpec(root=root, opt=opt, task=task, command=argv, env=full, drop=drop, unprivileged=True)
    proc = subprocess.run(sandbox.bwrap_argv(spec, sandbox.bwrap_path() or "bwrap"), capture_output=True,
                          text=True, timeout=60)
    return Ran(proc.returncode, proc.stdout.strip(), proc.stderr.strip())


@functools.lru_cache(maxsize=None)
def _uid_helper(cache: Path) -> Path | None:
    """Run as Lambda's sbx_user1051 (who owns no file of the layer) also when the tests run as root."""
    from packer.emulator import rootfs

    return rootfs.uid_helper(cache) if os.geteuid() == 0 else None


def cc(out: Path, source: str, *flags: str, shared_name: str | None = None) -> Path:
    """Compile `source` (C text) into `out`; `shared_name`: a shared library with that soname."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / f".{out.name}.c"
    src.write_text(source)
    cmd = ["gcc", "-O1", "-o", str(out), str(src), *flags]
    if shared_name:
        cmd += ["-shared", "-fPIC", f"-Wl,-soname,{shared_name}"]
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()
    out.chmod(0o755)
    return out


def lib(out: Path, tag: str, soname: str = "libv.so.1", *flags: str) -> Path:
    """A libv that answers `tag` when asked which copy it is."""
    return cc(out, LIB_C, f'-DTAG="{tag}"', *flags, shared_name=soname)


def program(out: Path, libdir: Path, *, rpath: str | None = None, runpath: str | None = None,
            soname: str = "libv.so.1", extra: tuple[str, ...] = ()) -> Path:
    """A program that needs `soname` (linked against the copy in `libdir`), with an RPATH or RUNPATH."""
    flags = [f"-L{libdir}", f"-l:{soname}", *extra]
    if rpath is not None:
        flags.append(f"-Wl,--disable-new-dtags,-rpath,{rpath}")
    if runpath is not None:
        flags.append(f"-Wl,--enable-new-dtags,-rpath,{runpath}")
    return cc(out, MAIN_C, *flags)


# --- a second judge: the real ld.so of a glibc older than 2.35, as Lambda's are -----------------
# Lambda's runtimes have glibc 2.26 (AL2) and 2.34 (AL2023); this host's is 2.36, and some loader
# rules changed in between (PT_LOAD alignment: 2.35). Debian 11's libc6 (glibc 2.31) is such an older
# loader: its package is downloaded once with apt's ordinary client into the user's cache.

OLD_GLIBC_SUITE = "bullseye"


@pytest.fixture(scope="session")
def old_glibc() -> tuple[Path, Path]:
    """(ld.so, its library directory) of Debian 11's glibc 2.31 for x86_64."""
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("the old glibc judge is an x86_64 package")
    require_tool("apt-get")
    require_tool("dpkg-deb")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerpack-tests" / f"libc6-{OLD_GLIBC_SUITE}"
    libdir = base / "root" / "lib" / "x86_64-linux-gnu"
    if not (libdir / "ld-linux-x86-64.so.2").exists():
        _download_old_libc(base)
    return libdir / "ld-linux-x86-64.so.2", libdir


def _download_old_libc(base: Path) -> None:
    for sub in ("lists/partial", "cache/archives/partial"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "sources.list").write_text(f"deb http://deb.debian.org/debian {OLD_GLIBC_SUITE} main\n")
    opts = [f"-oDir::Etc::SourceList={base / 'sources.list'}", "-oDir::Etc::SourceParts=-",
            f"-oDir::State::Lists={base / 'lists'}", f"-oDir::Cache={base / 'cache'}", "-oAPT::Sandbox::User=root",
            "-oAPT::Get::List-Cleanup=0", "-oDebug::NoLocking=1"]
    subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True, timeout=600)
    policy = subprocess.run(["apt-cache", *opts, "madison", "libc6"], check=True, capture_output=True, text=True).stdout
    version = next(line.split("|")[1].strip() for line in policy.splitlines() if OLD_GLIBC_SUITE in line)
    subprocess.run(["apt-get", *opts, "download", f"libc6:amd64={version}"], check=True, capture_output=True,
                   cwd=base, timeout=600)
    (deb,) = base.glob("libc6_*_amd64.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(base / "root")], check=True)


def old_ld_so(judge: tuple[Path, Path], *args: str, env: dict[str, str] | None = None) -> Ran:
    """Run the old ld.so with its own libc (`ld.so --library-path DIR ARGS`)."""
    ld_so, libdir = judge
    full = {"PATH": "/usr/bin:/bin", **(env or {})}
    proc = subprocess.run([str(ld_so), "--library-path", str(libdir), *args], capture_output=True, text=True,
                          timeout=60, env=full)
    return Ran(proc.returncode, proc.stdout.strip(), proc.stderr.strip())
