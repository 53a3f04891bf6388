"""binutils `strip`, chosen for the file's machine and guarded, for slim and vendor alike.

Why one place: a plain `strip` is the host's, so on an arm64 build machine it cannot handle x86_64
files (and vice versa); and `strip` on a file patchelf has rewritten, or on an auditwheel graft, can
move a PT_LOAD so that p_offset and p_vaddr no longer agree modulo p_align, which glibc's loader
refuses ("ELF load command address/offset not page-aligned", auditwheel issue #716). So the file is
stripped into a temporary copy, read back, and kept only when its loads are still aligned the same
way and its dynamic section says the same thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from packer.elf.reader import ElfInfo, load_refusal, read_path
from packer.errors import ElfError

# e_machine names as the reader spells them -> GNU triplet prefix of the cross binutils
_TRIPLET = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
_UNAME = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def host_machine() -> str:
    m = os.uname().machine
    return _UNAME.get(m, m)


def strip_tool(machine_name: str, host: str | None = None) -> str | None:
    """The binutils `strip` that understands files of `machine_name` on a `host` build machine:
    the plain `strip` for the host's own machine, else the cross binutils' `<triplet>-strip`
    (Debian: binutils-aarch64-linux-gnu / binutils-x86-64-linux-gnu). None when not installed."""
    host = _UNAME.get(host or "", host) if host else host_machine()
    prefix = _TRIPLET.get(machine_name)
    if machine_name == host and shutil.which("strip"):
        return shutil.which("strip")
    return shutil.which(f"{prefix}-strip") if prefix else None


def loads_aligned(info: ElfInfo) -> bool:
    """No glibc's loader refuses the PT_LOAD layout (`reader.load_refusal`, the one check)."""
    return load_refusal(info) is None


def strip_file(path: Path, host: str | None = None) -> tuple[bool, str]:
    """`strip --strip-unneeded` `path` in place, atomically, keeping its mode; (changed, why not)."""
    before = read_path(path)
    if before.trailing_bytes:  # an SBCL core, a `raco exe` payload, a self-extractor: strip drops it
        return False, f"{before.trailing_bytes} bytes appended after the ELF image would be lost; original kept"
    tool = strip_tool(before.machine_name, host)
    if tool is None:
        return False, f"no binutils strip for {before.machine_name}"
    fd, tmp = tempfile.mkstemp(prefix=".lp-strip-", dir=path.parent)
    os.close(fd)
    try:
        res = subprocess.run([tool, "--strip-unneeded", "-o", tmp, str(path)], capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            return False, f"strip failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
        try:
            after = read_path(tmp)
        except ElfError as exc:
            return False, f"stripped copy unreadable ({exc}); original kept"
        refused = load_refusal(after)
        if refused is not None:
            return False, f"ld.so would refuse the stripped copy ({refused}); original kept"
        if after.load_align != before.load_align or after.trailing_bytes:
            return False, "segment alignment would change; original kept"
        if (after.needed, after.soname, after.rpath, after.runpath) != (before.needed, before.soname, before.rpath, before.runpath):
            return False, "dynamic section changed; original kept"
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
        tmp = ""
        return True, ""
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
