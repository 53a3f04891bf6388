"""ELF stripping with the guards that keep it from breaking things (slim-facts.md §8).

Why guards and not just `strip`: plain `strip` on numpy's auditwheel-grafted `numpy.libs/*.so` makes
the loader refuse them ("ELF load command address/offset not page-aligned", peers.md pain point 12),
and on an SBCL executable it deletes the 40 MB core appended after the ELF image. So: skip files with
trailing data, skip `*.libs/` / `.dylibs/` grafts and hash-named libraries, estimate what `strip`
would gain (nothing to do for Debian's already-stripped files), strip a *copy*, re-read it and keep
the original when any PT_LOAD alignment or the minimum load alignment changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packer.elf.reader import PT_LOAD, ElfInfo, read_path
from packer.errors import ElfError

_HASHED = re.compile(r"-[0-9a-f]{8}(?:[.-]|$)")
_STRIPPABLE_SECTIONS = (".symtab", ".strtab")
_HOST_MACHINE = os.uname().machine


@dataclass(frozen=True)
class Candidate:
    """The verdict for one ELF file: strip it (estimate > 0) or why not."""

    ok: bool
    reason: str  # "strip" or the skip reason code: payload | grafted | hashed | stripped | no-strip | not-elf | broken
    estimate: int = 0
    detail: str = ""


def strip_tool(machine_name: str) -> str | None:
    """binutils `strip` that understands this machine (the host one, or a cross binutils)."""
    host = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(_HOST_MACHINE, _HOST_MACHINE)
    if machine_name == host and shutil.which("strip"):
        return shutil.which("strip")
    prefix = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(machine_name)
    return shutil.which(f"{prefix}-strip") if prefix else None


def _strip_estimate(path: Path) -> int:
    """Bytes of symbol and debug sections that `--strip-unneeded` removes (pyelftools, read-only)."""
    from elftools.common.exceptions import ELFError as PyElfError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as fh:
            ef = ELFFile(fh)
            total = 0
            for sec in ef.iter_sections():
                if sec.name in _STRIPPABLE_SECTIONS or sec.name.startswith((".debug", ".zdebug")):
                    if sec["sh_type"] != "SHT_NOBITS":
                        total += sec["sh_size"]
            return total
    except (PyElfError, OSError, ValueError, AssertionError):
        return 0


def loads_aligned(info: ElfInfo) -> bool:
    """Every PT_LOAD satisfies p_offset ≡ p_vaddr (mod p_align), the check glibc's loader makes."""
    for s in info.segments:
        if s.type == PT_LOAD and s.align >= 2 and s.offset % s.align != s.vaddr % s.align:
            return False
    return True


def candidate(path: Path, rel: str) -> Candidate:
    try:
        info = read_path(path)
    except ElfError as exc:
        return Candidate(False, "broken", detail=str(exc))
    parts = rel.split("/")
    if any(p.endswith(".libs") or p == ".dylibs" for p in parts[:-1]):
        return Candidate(False, "grafted", detail="library grafted by auditwheel/delocate")
    if info.trailing_bytes:
        return Candidate(False, "payload", detail=f"{info.trailing_bytes} bytes appended after the ELF image")
    if _HASHED.search(parts[-1]) and info.type == 3:
        return Candidate(False, "hashed", detail="hash-suffixed name: a vendored (patched) library")
    est = _strip_estimate(path)
    if est == 0:
        return Candidate(False, "stripped", detail="no symbol or debug sections left")
    if strip_tool(info.machine_name) is None:
        return Candidate(False, "no-strip", est, detail=f"no binutils strip for {info.machine_name}")
    return Candidate(True, "strip", est)


def strip_file(path: Path) -> tuple[bool, str]:
    """Strip `path` in place, atomically, keeping its mode; return (changed, why-not)."""
    before = read_path(path)
    tool = strip_tool(before.machine_name)
    if tool is None:
        return False, f"no binutils strip for {before.machine_name}"
    fd, tmp = tempfile.mkstemp(prefix=".lp-strip-", dir=path.parent)
    os.close(fd)
    try:
        args = [tool, "--strip-unneeded", "-o", tmp, str(path)]
        res = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            return False, f"strip failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
        try:
            after = read_path(tmp)
        except ElfError as exc:
            return False, f"stripped copy unreadable ({exc}); original kept"
        if not loads_aligned(after) or after.load_align != before.load_align or after.trailing_bytes:
            return False, "segment alignment would change; original kept"
        if after.needed != before.needed or after.soname != before.soname:
            return False, "dynamic section changed; original kept"
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
        tmp = ""
        return True, ""
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
