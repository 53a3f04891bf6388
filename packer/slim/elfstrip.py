"""ELF stripping with the guards that keep it from breaking things.

Why guards and not just `strip`: plain `strip` on numpy's auditwheel-grafted `numpy.libs/*.so` makes
the loader refuse them ("ELF load command address/offset not page-aligned", auditwheel issue #716),
and on an SBCL executable it deletes the 40 MB core appended after the ELF image. So: skip files with
bytes past their image (named only when recognised: `trailing_data`), skip `*.libs/` / `.dylibs/`
grafts and hash-named libraries, estimate what `strip` would gain (nothing to do for Debian's
already-stripped files), and leave the stripping itself to `elf.strip.strip_file` (a copy, read
back, kept only when still aligned), shared with `vendor --strip`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from packer.elf.reader import SHT_NOBITS, read_path, read_sections
from packer.elf.strip import loads_aligned, strip_file, strip_tool
from packer.errors import ElfError

_HASHED = re.compile(r"-[0-9a-f]{8}(?:[.-]|$)")
_STRIPPABLE_SECTIONS = (".symtab", ".strtab")


@dataclass(frozen=True)
class Candidate:
    """The verdict for one ELF file: strip it (estimate > 0) or why not."""

    ok: bool
    reason: str  # "strip" or the skip reason code: payload | grafted | hashed | stripped | no-strip | not-elf | broken
    estimate: int = 0
    detail: str = ""


def _strip_estimate(path: Path) -> int:
    """Bytes of symbol and debug sections that `--strip-unneeded` removes (read-only)."""
    try:
        sections = read_sections(path)
    except (ElfError, OSError):
        return 0
    return sum(sec.size for sec in sections
               if sec.type != SHT_NOBITS and (sec.name in _STRIPPABLE_SECTIONS or sec.name.startswith((".debug", ".zdebug"))))


_SBCL_CORE_MAGIC = struct.pack("<Q", 0x5342434C)  # "LCBS": CORE_MAGIC of SBCL's runtime (coreparse.c)


def trailing_data(path: Path) -> str | None:
    """What the bytes past an ELF image are, when layerpack can tell; None otherwise. Only named
    when recognised: bytes after the image are also the slack a patchelf relayout leaves in a
    numpy or scipy module, or anything else a tool appended. An SBCL executable ends with the core's
    start offset and CORE_MAGIC, and the core there starts with CORE_MAGIC too."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            if size < 16:
                return None
            fh.seek(size - 16)
            tail = fh.read(16)
            if tail[8:] != _SBCL_CORE_MAGIC:
                return None
            start = struct.unpack("<Q", tail[:8])[0]
            if start >= size:
                return None
            fh.seek(start)
            return "an SBCL core" if fh.read(8) == _SBCL_CORE_MAGIC else None
    except OSError:
        return None


def candidate(path: Path, rel: str) -> Candidate:
    try:
        info = read_path(path)
    except ElfError as exc:
        return Candidate(False, "broken", detail=str(exc))
    parts = rel.split("/")
    if any(p.endswith(".libs") or p == ".dylibs" for p in parts[:-1]):
        return Candidate(False, "grafted", detail="library grafted by auditwheel/delocate")
    if info.trailing_bytes:
        what = trailing_data(path)
        n = info.trailing_bytes
        return Candidate(False, "payload", detail=f"{n:,} byte{'s' if n != 1 else ''} after the end of the ELF image"
                         + (f" ({what})" if what else ""))
    if _HASHED.search(parts[-1]) and info.type == 3:
        return Candidate(False, "hashed", detail="hash-suffixed name: a vendored (patched) library")
    est = _strip_estimate(path)
    if est == 0:
        return Candidate(False, "stripped", detail="no symbol or debug sections left")
    if strip_tool(info.machine_name) is None:
        return Candidate(False, "no-strip", est, detail=f"no binutils strip for {info.machine_name}")
    return Candidate(True, "strip", est)


__all__ = ["Candidate", "candidate", "trailing_data", "loads_aligned", "strip_file", "strip_tool"]
