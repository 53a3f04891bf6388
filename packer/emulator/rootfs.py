"""The runtime's root file system, rebuilt from host files: only the runtime's libraries and commands.

Lambda's `/usr/lib64` holds a known set of sonames (`rules/runtimes/libs/`), and a layer that forgot a
library fails there. The host has hundreds more, so running a bootstrap on the host hides exactly
the failure users hit after publishing (e.g. lambci/docker-lambda#255: the build image has 685 commands in /usr/bin, live Lambda 156). Here `/usr/lib64` is rebuilt with
*only* the runtime's sonames (host copies of them), and nothing else of the host's library dirs.

Commands are the hard part: Debian's `curl` needs libldap, librtmp, libssh2… that Amazon Linux does
not have. Each host command therefore gets a private copy whose DT_RPATH points at a private
library directory (`/.layerpack/lib`, its full closure). DT_RPATH is searched before
LD_LIBRARY_PATH and is not inherited across `exec`, so the commands work while the user's own
programs still see only the runtime's set. Runtime libraries whose host copy needs extra libraries
(Debian's libcurl) get the same treatment, so a program linking libcurl works, as it does on Lambda,
without libldap becoming visible to it.

`plan_root` is pure (it only reads the host); `materialize` carries the plan out once into a cache
directory (hardlinks where possible, patched copies where needed) keyed by the plan's content.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packer.cachedir import cache_dir
from packer.elf.hostlibs import HostLibraries
from packer.elf.patcher import Patch, Patcher, PatchelfPatcher
from packer.elf.reader import read_path, sniff
from packer.errors import ElfError, EmulatorError
from packer.runtime import Runtime

PRIVATE = "/.layerpack"  # the commands' own world inside the sandbox
PRIVATE_LIB = PRIVATE + "/lib"
DROP = PRIVATE + "/uid"  # the uid-changing helper (uid_helper), bound here by the sandbox
CACHE_FORMAT = 2

# Amazon Linux's /bin/sh is bash (so `source` works under #!/bin/sh, as the AWS example relies on).
COMMAND_ALIASES = {"sh": "bash"}
HOST_BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin")


@dataclass(frozen=True)
class LibPlacement:
    """A runtime library: where it goes in the sandbox, which host file provides it."""

    dest: str  # e.g. /usr/lib64/libz.so.1
    host: str  # the real host file
    patch: bool  # host copy needs libraries the runtime lacks: give it DT_RPATH to the private dir


@dataclass(frozen=True)
class CommandPlacement:
    dest: str  # e.g. /usr/bin/curl
    host: str  # the real host file
    elf: bool  # dynamic ELF: patched copy with DT_RPATH to the private dir; otherwise copied as-is


@dataclass(frozen=True)
class RootPlan:
    runtime: str
    arch: str
    libs: tuple[LibPlacement, ...]
    commands: tuple[CommandPlacement, ...]
    private_libs: tuple[tuple[str, str], ...]  # (soname, host real file)
    missing_libs: tuple[str, ...]  # runtime library names the host has no copy of
    missing_commands: tuple[str, ...]  # runtime commands the host lacks
    unresolved: tuple[str, ...] = field(default=())  # sonames a host command needs that the host lacks

    def key(self) -> str:
        """Content key of the plan plus the identity of every host file it uses."""
        h = hashlib.sha256()
        h.update(f"{CACHE_FORMAT}|{self.runtime}|{self.arch}".encode())
        for item in (*self.libs, *self.commands):
            h.update(repr(item).encode())
            h.update(_identity(item.host).encode())
        for soname, host in self.private_libs:
            h.update(f"{soname}={host}|{_identity(host)}".encode())
        return h.hexdigest()[:20]


def _identity(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _host_command(name: str, dest: str) -> str | None:
    """The host file that plays the runtime command `dest` (same path first, then the bin dirs)."""
    name = COMMAND_ALIASES.get(name, name)
    candidates = [] if name != posixpath.basename(dest) else [dest]
    candidates += [posixpath.join(d, name) for d in HOST_BIN_DIRS]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.realpath(c)
    return None


def _closure(roots: list[str], libs: HostLibraries, out: dict[str, str], unresolved: set[str]) -> None:
    """Every soname the ELF files `roots` need, transitively, found on the host."""
    todo = list(roots)
    seen_files: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        try:
            info = read_path(path)
        except (ElfError, OSError):
            continue
        for soname in info.needed:
            if soname in out:
                continue
            found = libs.find(soname)
            if found is None:
                unresolved.add(soname)
                continue
            out[soname] = str(found.real)
            todo.append(str(found.real))


def host_machine() -> str:
    return os.uname().machine


def plan_root(rt: Runtime) -> RootPlan:
    """Decide, without writing anything, how the runtime's root is rebuilt from host files."""
    if rt.machine != host_machine():
        raise EmulatorError(
            f"cannot run a {rt.arch} runtime on this {host_machine()} host",
            hint=f"run `layerpack invoke` on a {rt.machine} machine (or pass --arch {_host_arch()})",
        )
    hl = HostLibraries(rt.machine, 64)
    lib_entries: list[tuple[str, str]] = []
    missing: list[str] = []
    for path in rt.libs.entries:
        dest = rt.canonical(path) if rt.usr_merge else posixpath.normpath(path)
        found = hl.find(posixpath.basename(path))
        if found is None:
            missing.append(posixpath.basename(path))
        else:
            lib_entries.append((dest, str(found.real)))
    provided = {posixpath.basename(d) for d, _ in lib_entries}

    private: dict[str, str] = {}
    unresolved: set[str] = set()
    libs: list[LibPlacement] = []
    for dest, host in lib_entries:
        try:
            needed = read_path(host).needed
        except (ElfError, OSError):
            needed = ()
        patch = any(n not in provided for n in needed)
        if patch:
            _closure([host], hl, private, unresolved)
        libs.append(LibPlacement(dest, host, patch))

    commands: list[CommandPlacement] = []
    missing_cmds: list[str] = []
    for dest in sorted(rt.executables):
        host = _host_command(posixpath.basename(dest), dest)
        if host is None:
            missing_cmds.append(dest)
            continue
        is_elf = sniff(host)
        dynamic = False
        if is_elf:
            try:
                info = read_path(host)
                dynamic = bool(info.interp) and info.machine_name == rt.machine
            except ElfError:
                dynamic = False
        if dynamic:
            _closure([host], hl, private, unresolved)
        commands.append(CommandPlacement(dest, host, dynamic))
    loader = hl.find(posixpath.basename(rt.loader))
    if loader is None:
        raise EmulatorError(f"the host has no {posixpath.basename(rt.loader)}, so nothing can run",
                            hint="install the host's glibc for " + rt.machine)
    private[posixpath.basename(rt.loader)] = str(loader.real)
    return RootPlan(
        runtime=rt.name,
        arch=rt.arch,
        libs=tuple(libs),
        commands=tuple(commands),
        private_libs=tuple(sorted(private.items())),
        missing_libs=tuple(sorted(n for n in set(missing) if not _covered(n, provided))),
        missing_commands=tuple(missing_cmds),
        unresolved=tuple(sorted(unresolved)),
    )


def _covered(name: str, present: set[str]) -> bool:
    """`libz.so.1.2.11` is only the file behind `libz.so.1`: nothing asks for it by that name."""
    return any(name.startswith(p + ".") for p in present)


def _host_arch() -> str:
    from packer.runtime import MACHINE_ARCH

    return MACHINE_ARCH.get(host_machine(), host_machine())


def cache_root() -> Path:
    """Where rebuilt roots are kept (`LAYERPACK_CACHE_DIR`, else XDG cache)."""
    return cache_dir("emulator")


def _patcher() -> Patcher:
    try:
        return PatchelfPatcher()
    except ElfError as exc:
        raise EmulatorError(str(exc.args[0]), hint=exc.hint) from exc


def _place(src: str, dst: Path) -> None:
    """Hardlink (free, same bytes) or copy with mode when across file systems."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _patched_copy(src: str, dst: Path, patcher: Patcher) -> None:
    """A copy of a host program or library that finds its private libraries first (DT_RPATH)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    os.chmod(dst, 0o755)
    try:
        patcher.apply(dst, Patch(rpath=(PRIVATE_LIB,)))
    except ElfError as exc:
        raise EmulatorError(f"could not patch a copy of {src}: {exc.args[0]}") from exc


# The small /etc a Lambda function sees (names resolve, `whoami` works, TZ=:/etc/localtime works).
_ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/bash\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n",
    "group": "root:x:0:\nsbx_user1051:x:990:\n",
    "hosts": "127.0.0.1   localhost localhost.localdomain\n::1         localhost6 localhost6.localdomain6\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "os-release": 'NAME="layerpack emulator (host files standing in for the runtime)"\n',
}
_ETC_MOUNTS = ("resolv.conf", "localtime")  # empty placeholders: bound from the host at run time


def materialize(plan: RootPlan, cache: Path | None = None) -> Path:
    """Build (once) the directory tree of `plan`; returns it. Safe against concurrent builders."""
    base = (cache or cache_root())
    out = base / f"{plan.runtime}-{plan.arch}-{plan.key()}"
    if (out / ".complete").is_file():
        return out
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    patcher = _patcher()
    try:
        for lib in plan.libs:
            dst = work / lib.dest.lstrip("/")
            if dst.exists():
                continue
            if lib.patch:
                _patched_copy(lib.host, dst, patcher)
            else:
                _place(lib.host, dst)
        for cmd in plan.commands:
            dst = work / cmd.dest.lstrip("/")
            if cmd.elf:
                _patched_copy(cmd.host, dst, patcher)
            else:
                _place(cmd.host, dst)
        for soname, host in plan.private_libs:
            _place(host, work / PRIVATE_LIB.lstrip("/") / soname)
        for d in ("usr/lib64", "usr/bin", "usr/sbin", "usr/lib", "etc", PRIVATE_LIB.lstrip("/"), DROP.lstrip("/")):
            (work / d).mkdir(parents=True, exist_ok=True)
        for name, text in _ETC.items():
            (work / "etc" / name).write_text(text)
        for name in _ETC_MOUNTS:
            (work / "etc" / name).touch()
        (work / "plan.json").write_text(json.dumps({
            "runtime": plan.runtime, "arch": plan.arch,
            "missing_libs": plan.missing_libs, "missing_commands": plan.missing_commands,
            "unresolved": plan.unresolved,
        }, indent=1))
        (work / ".complete").touch()
        try:
            os.rename(work, out)
        except OSError:  # another builder won the race; theirs is as good as ours
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def uid_helper(cache: Path | None = None) -> Path | None:
    """A directory with the host's `setpriv`, its libraries and the host loader (as `lib/ld.so`).

    The sandbox starts it as `DROP/lib/ld.so --library-path DROP/lib DROP/setpriv …`, so it runs
    on the host's glibc whatever the image's is, then execs the bootstrap as sbx_user1051 (the
    bootstrap gets the sandbox's own loader and environment). None when the host has no setpriv."""
    setpriv = shutil.which("setpriv") or ("/usr/bin/setpriv" if os.path.exists("/usr/bin/setpriv") else None)
    if setpriv is None:
        return None
    setpriv = os.path.realpath(setpriv)
    try:
        interp = read_path(setpriv).interp
    except (ElfError, OSError):
        return None
    if not interp:
        return None
    hl = HostLibraries(host_machine(), 64)
    libs: dict[str, str] = {}
    _closure([setpriv], hl, libs, set())
    files = [("setpriv", setpriv), ("lib/ld.so", os.path.realpath(interp))]
    files += [(f"lib/{soname}", host) for soname, host in sorted(libs.items())]
    key = hashlib.sha256("|".join(f"{d}={h}:{_identity(h)}" for d, h in files).encode()).hexdigest()[:20]
    base = cache or cache_root()
    out = base / f"uid-{key}"
    if (out / ".complete").is_file():
        return out
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".uid-", dir=base))
    try:
        os.chmod(work, 0o755)
        for dest, host in files:
            _place(host, work / dest)
        (work / ".complete").touch()
        try:
            os.rename(work, out)
        except OSError:  # a concurrent builder won
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out
