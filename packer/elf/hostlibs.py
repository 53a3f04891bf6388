"""Finding libraries on the build host (or in a sysroot) for a given target architecture.

A library that Lambda lacks is only *vendorable* if we can find a copy built for the right machine.
We look where the host's loader would (its ld.so.conf directories and the multiarch defaults),
but for the target arch rather than the host's: an aarch64 library is looked for under
`/usr/aarch64-linux-gnu/lib` and `/usr/lib/aarch64-linux-gnu`, never in the x86_64 directories.
"""

from __future__ import annotations

from typing import NamedTuple

import glob
import os
from pathlib import Path

from packer.elf.reader import InfoMemo
from packer.errors import ElfError

# Debian/Ubuntu multiarch triplets and the Fedora/AL-style lib64 layout, per ELF machine name.
_TRIPLETS = {
    "x86_64": ("x86_64-linux-gnu",),
    "aarch64": ("aarch64-linux-gnu",),
    "i386": ("i386-linux-gnu", "i686-linux-gnu"),
    "arm": ("arm-linux-gnueabihf", "arm-linux-gnueabi"),
    "s390x": ("s390x-linux-gnu",),
    "ppc64": ("powerpc64-linux-gnu", "powerpc64le-linux-gnu"),
    "riscv": ("riscv64-linux-gnu",),
}


def _ld_so_conf_dirs(root: Path, conf: str = "etc/ld.so.conf", depth: int = 0) -> list[str]:
    """Directories listed in ld.so.conf (with `include` globs), relative to `root`."""
    out: list[str] = []
    path = root / conf
    if depth > 8 or not path.is_file():
        return out
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include "):
            pattern = line.split(None, 1)[1]
            if not pattern.startswith("/"):
                pattern = os.path.join(os.path.dirname("/" + conf), pattern)
            for inc in sorted(glob.glob(str(root) + pattern)):
                out.extend(_ld_so_conf_dirs(root, os.path.relpath(inc, root), depth + 1))
        elif line.startswith("hwcap "):
            continue
        else:
            out.append(line)
    return out


def host_library_dirs(machine: str, sysroot: Path | None = None) -> list[Path]:
    """Ordered directories to look in for a `machine` library on this host or in `sysroot`."""
    root = Path(sysroot) if sysroot else Path("/")
    dirs: list[str] = []
    triplets = _TRIPLETS.get(machine, ())
    for t in triplets:  # cross-toolchain runtime dirs (Debian's libc6-<arch>-cross)
        dirs.append(f"/usr/{t}/lib")
        dirs.append(f"/usr/{t}/lib64")
    conf = _ld_so_conf_dirs(root)
    for t in triplets:
        dirs.extend([f"/lib/{t}", f"/usr/lib/{t}", f"/usr/local/lib/{t}"])
    dirs.extend(conf)
    dirs.extend(["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"])
    seen: set[str] = set()
    out: list[Path] = []
    for d in dirs:
        p = Path(str(root) + d) if sysroot else Path(d)
        key = str(p)
        if key not in seen and p.is_dir():
            seen.add(key)
            out.append(p)
    return out


class HostLibrary(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    name: str
    path: Path  # where it was found (may be a symlink)
    real: Path  # the file itself


class HostLibraries:
    """Cached lookups of sonames for one machine/class/endianness on the host or a sysroot."""

    def __init__(self, machine: str, bits: int, endian: str = "little", sysroot: Path | None = None,
                 memo: InfoMemo | None = None) -> None:
        self.memo = memo or InfoMemo()
        self.machine = machine
        self.bits = bits
        self.endian = endian
        self.sysroot = sysroot
        self.dirs = host_library_dirs(machine, sysroot)
        self._cache: dict[str, HostLibrary | None] = {}

    def find(self, name: str) -> HostLibrary | None:
        if name in self._cache:
            return self._cache[name]
        found = None
        for d in self.dirs:
            p = d / name
            try:  # a missing file fails the open: no separate exists() (one syscall per directory)
                info = self.memo.read_path(p)
            except ElfError:
                continue
            if info.bits == self.bits and info.endian == self.endian and info.machine_name == self.machine:
                found = HostLibrary(name, p, p.resolve())
                break
        self._cache[name] = found
        return found

    def searched(self) -> list[str]:
        return [str(d) for d in self.dirs]
