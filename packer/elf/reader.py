"""A small, bounded ELF reader for the facts the loader cares about.

Why not pyelftools here: analysis touches every file of a tree (thousands of system libraries in the
benchmark), and pyelftools builds section objects eagerly and can loop on crafted files; this reader
does a handful of `pread`s per file, reads the dynamic segment through the program headers (so it works
on files without section headers, which glibc does not need either) and caps every count and length.
Measured: ~45x faster than pyelftools on 1,648 system ELF files. pyelftools is only the tests' oracle
(tests/test_elf_reader.py); the symbol-version reads in `elf.symbols` are struct-based as well.

Every malformed input raises `ElfError`; nothing here executes or maps the file.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from packer.errors import ElfError

ELF_MAGIC = b"\x7fELF"

# e_machine values -> names layerpack reports (Linux-relevant subset; others print as `machine-N`).
MACHINES = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    42: "sh",
    43: "sparcv9",
    50: "ia64",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}
ET_NAMES = {0: "none", 1: "relocatable", 2: "executable", 3: "shared", 4: "core"}

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
DT_FLAGS_1, DT_VERNEED, DT_VERNEEDNUM, DT_VERDEF, DT_VERDEFNUM = 0x6FFFFFFB, 0x6FFFFFFE, 0x6FFFFFFF, 0x6FFFFFFC, 0x6FFFFFFD
DF_1_NODEFLIB, DF_1_PIE = 0x800, 0x08000000
VER_FLG_WEAK = 0x2
SHT_NOBITS = 8

# Bounds: generous for real files (the largest real values seen are far below), small enough that a
# crafted header cannot make us allocate or loop without end.
MAX_PHNUM = 4096
MAX_SHNUM = 1 << 16
MAX_DYN_ENTRIES = 1 << 16
MAX_STRING = 4096
MAX_VERSION_ENTRIES = 4096
MAX_INTERP = 4096
# patchelf and objcopy can leave a few bytes of padding after the last segment; real payloads
# (SBCL cores, raco exe archives) are megabytes.
PAYLOAD_MIN = 512


class Source(Protocol):
    """Random-access bytes: a file descriptor or a buffer (a zip member read into memory)."""

    size: int

    def pread(self, offset: int, length: int) -> bytes: ...


class FileSource:
    """pread through a small cache of 16 KiB blocks: headers, the dynamic segment and the string
    table are read with many small reads close together (measured: 70k preads for 2,341 files of
    /usr/lib and /usr/bin became a few thousand). 16 KiB rather than 64: the magic check of every
    non-ELF file and the section headers at a file's end copy less (reading the 2,199 files of
    /usr/lib/x86_64-linux-gnu: 0.22 s CPU vs 0.28 s, best of 5)."""

    BLOCK = 1 << 14
    MAX_BLOCKS = 64

    def __init__(self, fd: int, size: int, st: os.stat_result | None = None) -> None:
        self.fd = fd
        self.size = size
        self.stat = st  # the caller's fstat, when it has one (InfoMemo's key)
        self._blocks: dict[int, bytes] = {}

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            if len(self._blocks) >= self.MAX_BLOCKS:
                self._blocks.clear()
            block = os.pread(self.fd, self.BLOCK, index * self.BLOCK)
            self._blocks[index] = block
        return block

    def pread(self, offset: int, length: int) -> bytes:
        if length > self.BLOCK:
            return os.pread(self.fd, length, offset)
        first, start = divmod(offset, self.BLOCK)
        if start + length <= self.BLOCK:
            block = self._blocks.get(first)
            if block is None:
                block = self._block(first)
            return block[start : start + length]
        last = (offset + length - 1) // self.BLOCK
        data = b"".join(self._block(i) for i in range(first, last + 1))
        return data[start : start + length]

    def cstring(self, offset: int, end: int) -> bytes | None:
        """The bytes before the NUL at or after `offset` when they lie in one cached block (most
        strings): a dict lookup and a find instead of a copy of up to MAX_STRING bytes."""
        index, start = divmod(offset, self.BLOCK)
        block = self._blocks.get(index)
        if block is None:
            block = self._block(index)
        nul = block.find(b"\0", start, start + (end - offset))
        return block[start:nul] if nul >= 0 else None


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.size = len(data)

    def pread(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])


class Segment(NamedTuple):
    """One program header (a tuple: 10,000 of them are made per 1,000 files)."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int
    flags: int


@dataclass(frozen=True)
class ElfInfo:
    """What the loader and layerpack need to know about one ELF file."""

    bits: int  # 32 or 64
    endian: str  # "little" or "big"
    osabi: int
    type: int  # e_type
    machine: int  # e_machine
    interp: str | None
    has_dynamic: bool
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...]  # DT_RPATH split on ':' (raw, unexpanded)
    runpath: tuple[str, ...]
    flags_1: int
    version_needs: tuple[tuple[str, tuple[str, ...]], ...]  # (file, (version names, ...))
    version_defs: tuple[str, ...]
    segments: tuple[Segment, ...] = field(repr=False)
    has_section_headers: bool
    image_end: int  # last byte the ELF structures account for
    file_size: int
    # (file, version) pairs of version_needs whose Elf_Vernaux has VER_FLG_WEAK: ld.so does not
    # fail on a missing one (elf/dl-version.c match_symbol). Kept apart so the common, empty case
    # costs one shared empty tuple and version_needs keeps its shape for its many readers.
    weak_needs: tuple[tuple[str, str], ...] = ()

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"machine-{self.machine}")

    @property
    def type_name(self) -> str:
        return ET_NAMES.get(self.type, f"type-{self.type}")

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def is_static(self) -> bool:
        """A program the kernel runs without a dynamic loader (classic static or static-pie)."""
        return self.is_program and self.interp is None

    @property
    def is_program(self) -> bool:
        """Executable (ET_EXEC, or PIE with an interpreter / DF_1_PIE) rather than a library."""
        if self.type == 2:
            return True
        if self.type == 3:
            if self.soname is not None and not self.flags_1 & DF_1_PIE:
                return False  # a library that can also be run (libc.so.6 prints its version)
            return self.interp is not None or bool(self.flags_1 & DF_1_PIE)
        return False

    @property
    def is_musl(self) -> bool:
        return bool(self.interp and "ld-musl" in self.interp)

    @property
    def trailing_bytes(self) -> int:
        """Bytes past the ELF image: an SBCL core, a `raco exe` payload, a self-extractor."""
        return max(0, self.file_size - self.image_end)

    @property
    def has_payload(self) -> bool:
        """Trailing data large enough to be a payload rather than padding a patcher left behind."""
        return self.trailing_bytes >= PAYLOAD_MIN

    @property
    def load_align(self) -> int:
        """Smallest PT_LOAD alignment: 64 KiB on many aarch64 builds; patching must keep it."""
        aligns = [s.align for s in self.segments if s.type == PT_LOAD]
        return min(aligns) if aligns else 0

    def is_weak_need(self, file: str, version: str) -> bool:
        return bool(self.weak_needs) and (file, version) in self.weak_needs

    def needs_for(self, soname: str) -> tuple[str, ...]:
        for file, names in self.version_needs:
            if file == soname:
                return names
        return ()


PAGE_SIZE = 4096  # Lambda's page size on x86_64 and arm64 alike (glibc's GLRO(dl_pagesize))
STRICT_ALIGN_BEFORE = (2, 35)  # glibc releases before this refuse a PT_LOAD by its p_align


def load_refusal(info: ElfInfo, glibc: tuple[int, ...] | None = None, page_size: int = PAGE_SIZE) -> str | None:
    """What ld.so says when it refuses to map `info`'s PT_LOAD segments, naming the first bad one;
    None when it maps them. The one place layerpack decides this (analyze, strip and vendor ask).

    glibc's _dl_map_object_from_fd (elf/dl-load.c) up to 2.34 (Lambda's AL2 has 2.26, AL2023
    2.34) wants p_align to be a multiple of the page size and p_vaddr ≡ p_offset modulo p_align;
    from 2.35 on only modulo the page size (a 64 KiB-aligned segment moved by one 4 KiB page loads
    there, and not on Lambda). `glibc` None: refused by any of them, the rule for writing a file.
    The arithmetic is the C one: unsigned, so p_align 0 asks for p_vaddr == p_offset."""
    old = glibc is None or glibc < STRICT_ALIGN_BEFORE
    new = glibc is None or glibc >= STRICT_ALIGN_BEFORE
    number = 0
    for s in info.segments:
        if s.type != PT_LOAD:
            continue
        number += 1
        why = None
        if new and (s.vaddr - s.offset) & (page_size - 1):
            why = "ELF load command address/offset not page-aligned"
        elif old and s.align & (page_size - 1):
            why = "ELF load command alignment not page-aligned"
        elif old and (s.vaddr - s.offset) & (s.align - 1):
            why = "ELF load command address/offset not properly aligned"
        if why is not None:
            return (f"PT_LOAD #{number} (offset {s.offset:#x}, vaddr {s.vaddr:#x}, align {s.align:#x}): {why}")
    return None


# program and section header layouts by byte order ("<" or ">"): compiled once
_PH64 = {e: struct.Struct(e + "IIQQQQQQ") for e in "<>"}
_PH32 = {e: struct.Struct(e + "IIIIIIII") for e in "<>"}
_SH64 = {e: struct.Struct(e + "IIQQQQIIQQ") for e in "<>"}
_SH32 = {e: struct.Struct(e + "IIIIIIIIII") for e in "<>"}
_DYN64 = {e: struct.Struct(e + "qQ") for e in "<>"}
_DYN32 = {e: struct.Struct(e + "iI") for e in "<>"}


def is_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


class _Reader:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.size = src.size
        head = src.pread(0, 64)
        if len(head) < 16 or head[:4] != ELF_MAGIC:
            # glibc's loader checks the length before the magic: "file too short" for both
            raise ElfError("file too short for an ELF header" if len(head) < 64 else "not an ELF file")
        cls, data = head[4], head[5]
        if cls not in (1, 2):
            raise ElfError(f"invalid ELF class {cls}")
        if data not in (1, 2):
            raise ElfError(f"invalid ELF data encoding {data}")
        self.bits = 32 if cls == 1 else 64
        self.e = "<" if data == 1 else ">"
        self.endian = "little" if data == 1 else "big"
        self.osabi = head[7]
        need = 52 if self.bits == 32 else 64
        if len(head) < need:
            raise ElfError("file too short for an ELF header")
        if self.bits == 64:
            (self.type, self.machine, _v, _entry, self.phoff, self.shoff, _flags, _ehsize,
             self.phentsize, phnum, self.shentsize, shnum, shstrndx) = struct.unpack_from(self.e + "HHIQQQIHHHHHH", head, 16)
        else:
            (self.type, self.machine, _v, _entry, self.phoff, self.shoff, _flags, _ehsize,
             self.phentsize, phnum, self.shentsize, shnum, shstrndx) = struct.unpack_from(self.e + "HHIIIIIHHHHHH", head, 16)
        self.phnum, self.shnum, self.shstrndx = phnum, shnum, shstrndx
        # Extended numbering: counts that do not fit live in section header 0.
        if (self.phnum == 0xFFFF or self.shnum == 0) and self.shoff:
            sh0 = self._section_header0()
            if sh0 is not None:
                if self.phnum == 0xFFFF:
                    self.phnum = sh0[1]
                if self.shnum == 0:
                    self.shnum = sh0[0]
        if self.phnum > MAX_PHNUM:
            raise ElfError(f"{self.phnum} program headers (more than {MAX_PHNUM})")
        exp_ph = 32 if self.bits == 32 else 56
        if self.phnum and self.phentsize < exp_ph:
            raise ElfError(f"program header entry size {self.phentsize} is too small")

    def _read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ElfError(f"{what} at offset {offset} (+{length}) lies outside the file ({self.size} bytes)")
        data = self.src.pread(offset, length)
        if len(data) != length:
            raise ElfError(f"short read of {what} at offset {offset}")
        return data

    def _section_header0(self) -> tuple[int, int] | None:
        exp = 40 if self.bits == 32 else 64
        if self.shentsize < exp or self.shoff + exp > self.size:
            return None
        raw = self._read(self.shoff, exp, "section header 0")
        if self.bits == 64:
            vals = struct.unpack_from(self.e + "IIQQQQIIQQ", raw)
        else:
            vals = struct.unpack_from(self.e + "IIIIIIIIII", raw)
        return vals[5], vals[7]  # sh_size (shnum), sh_info (phnum)

    def segments(self) -> list[Segment]:
        if not self.phnum:
            return []
        table = self._read(self.phoff, self.phnum * self.phentsize, "program header table")
        if self.bits == 64:
            st = _PH64[self.e]
            rows = st.iter_unpack(table) if self.phentsize == st.size else \
                (st.unpack_from(table, i * self.phentsize) for i in range(self.phnum))
            return [Segment(t, o, v, fs, ms, al, fl) for t, fl, o, v, _pa, fs, ms, al in rows]
        st = _PH32[self.e]
        rows = st.iter_unpack(table) if self.phentsize == st.size else \
            (st.unpack_from(table, i * self.phentsize) for i in range(self.phnum))
        return [Segment(t, o, v, fs, ms, al, fl) for t, o, v, _pa, fs, ms, fl, al in rows]

    def _section_rows(self):
        """Each section header as its 10 raw fields; none without section headers."""
        if not self.shoff or not self.shnum:
            return ()
        exp = 40 if self.bits == 32 else 64
        if self.shnum > MAX_SHNUM or self.shentsize < exp:
            raise ElfError(f"bad section header table ({self.shnum} entries of {self.shentsize} bytes)")
        if self.shoff + self.shnum * self.shentsize > self.size:
            raise ElfError("section header table lies outside the file")
        table = self._read(self.shoff, self.shnum * self.shentsize, "section header table")
        st = (_SH64 if self.bits == 64 else _SH32)[self.e]
        if self.shentsize == st.size:
            return st.iter_unpack(table)
        return (st.unpack_from(table, i * self.shentsize) for i in range(self.shnum))

    def section_headers(self) -> list[tuple[int, int, int, int]]:
        """(sh_name, sh_type, sh_offset, sh_size) of every section; [] without section headers."""
        return [(row[0], row[1], row[4], row[5]) for row in self._section_rows()]

    def section_end(self) -> tuple[bool, int]:
        """(has section headers, last byte covered by section data or the header table)."""
        if not self.shoff or not self.shnum:
            return False, 0
        size = self.size
        ends = [row[4] + row[5] for row in self._section_rows()
                if row[1] != SHT_NOBITS and row[1] != 0 and row[4] + row[5] <= size]
        return True, max(self.shoff + self.shnum * self.shentsize, max(ends, default=0))

    def vaddr_to_offset(self, loads: list[Segment], vaddr: int) -> int:
        for s in loads:
            if s.vaddr <= vaddr < s.vaddr + s.filesz:
                return s.offset + (vaddr - s.vaddr)
        raise ElfError(f"address {vaddr:#x} is not inside any loaded segment")

    def cstring(self, offset: int, limit_end: int) -> str:
        end = min(limit_end, self.size, offset + MAX_STRING)
        if offset < 0 or offset >= end:
            raise ElfError(f"string offset {offset} lies outside the string table")
        fast = getattr(self.src, "cstring", None)
        raw = fast(offset, end) if fast is not None else None
        if raw is None:
            chunk = self.src.pread(offset, end - offset)
            nul = chunk.find(b"\0")
            if nul < 0:
                raise ElfError(f"unterminated string at offset {offset}")
            raw = chunk[:nul]
        return raw.decode("utf-8", "surrogateescape")


def read_elf(src: Source) -> ElfInfo:
    """Parse the headers and dynamic segment of an ELF file. Raises ElfError on any inconsistency."""
    try:
        return _read_elf(src)
    except ElfError:
        raise
    except (struct.error, ValueError, OverflowError, IndexError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from exc


class _DynTags:
    """The dynamic-section values the reader needs, as raw string-table offsets and addresses
    (a plain class: one is made per file, and a dataclass costs a millisecond to define)."""

    __slots__ = ("needed", "rpath", "runpath", "soname", "strtab", "strsz", "verneed", "verdef",
                 "verneednum", "verdefnum", "flags_1")

    def __init__(self) -> None:
        self.needed: list[int] = []
        self.rpath: list[int] = []
        self.runpath: list[int] = []
        self.soname: int | None = None
        self.strtab: int | None = None
        self.strsz: int | None = None
        self.verneed: int | None = None
        self.verdef: int | None = None
        self.verneednum = self.verdefnum = self.flags_1 = 0


_DT_SCALAR = {DT_STRTAB: "strtab", DT_STRSZ: "strsz", DT_SONAME: "soname", DT_FLAGS_1: "flags_1",
              DT_VERNEED: "verneed", DT_VERNEEDNUM: "verneednum", DT_VERDEF: "verdef", DT_VERDEFNUM: "verdefnum"}


def _dynamic_tags(r: _Reader, dyn: Segment | None) -> _DynTags:
    t = _DynTags()
    if dyn is None or not dyn.filesz:
        return t
    entsize = 8 if r.bits == 32 else 16
    count = min(dyn.filesz // entsize, MAX_DYN_ENTRIES)
    raw = r._read(dyn.offset, count * entsize, "dynamic segment")
    needed, rpath, runpath = t.needed, t.rpath, t.runpath
    for tag, val in (_DYN32 if r.bits == 32 else _DYN64)[r.e].iter_unpack(raw):
        if tag == DT_NEEDED:
            needed.append(val)
        elif tag == DT_NULL:
            break
        elif tag == DT_RUNPATH:
            runpath.append(val)
        elif tag == DT_RPATH:
            rpath.append(val)
        elif tag in _DT_SCALAR:
            setattr(t, _DT_SCALAR[tag], val)
    return t


def _read_elf(src: Source) -> ElfInfo:
    r = _Reader(src)
    segs = r.segments()
    loads = [s for s in segs if s.type == PT_LOAD]
    image_end = max(r.phoff + r.phnum * r.phentsize, 64 if r.bits == 64 else 52)
    for s in segs:
        if s.filesz:
            if s.offset + s.filesz > r.size:
                if s.type in (PT_LOAD, PT_DYNAMIC, PT_INTERP):
                    raise ElfError(f"segment at offset {s.offset} (+{s.filesz}) extends past the end of the file")
                continue
            image_end = max(image_end, s.offset + s.filesz)
    has_sh, sh_end = r.section_end()
    image_end = max(image_end, sh_end)

    interp = None
    for s in segs:
        if s.type == PT_INTERP:
            if s.filesz > MAX_INTERP:
                raise ElfError("PT_INTERP is implausibly long")
            raw = r._read(s.offset, s.filesz, "PT_INTERP")
            interp = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            break

    dyn = next((s for s in segs if s.type == PT_DYNAMIC), None)
    t = _dynamic_tags(r, dyn)
    needed_off, rpath_off, runpath_off = t.needed, t.rpath, t.runpath
    soname_off, strtab, strsz, verneed, verdef = t.soname, t.strtab, t.strsz, t.verneed, t.verdef
    verneednum, verdefnum, flags_1 = t.verneednum, t.verdefnum, t.flags_1

    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    soname = None
    version_needs: list[tuple[str, tuple[str, ...]]] = []
    weak_needs: list[tuple[str, str]] = []
    version_defs: list[str] = []
    has_strings = needed_off or rpath_off or runpath_off or soname_off is not None or verneed or verdef
    if has_strings:
        if strtab is None:
            raise ElfError("dynamic segment has string references but no DT_STRTAB")
        str_off = r.vaddr_to_offset(loads, strtab)
        str_end = str_off + strsz if strsz else r.size
        if str_end > r.size:
            raise ElfError("DT_STRSZ extends past the end of the file")

        s = _strings(r, str_off, str_end)

        needed = [s(o) for o in needed_off]
        soname = s(soname_off) if soname_off is not None else None
        for o in rpath_off:
            rpath.extend(p for p in s(o).split(":"))
        for o in runpath_off:
            runpath.extend(p for p in s(o).split(":"))
        if verneed:
            version_needs = _read_verneed(r, loads, verneed, verneednum, s, weak_needs)
        if verdef:
            version_defs = _read_verdef(r, loads, verdef, verdefnum, s)

    return ElfInfo(
        bits=r.bits,
        endian=r.endian,
        osabi=r.osabi,
        type=r.type,
        machine=r.machine,
        interp=interp,
        has_dynamic=dyn is not None,
        needed=tuple(needed),
        soname=soname,
        rpath=tuple(rpath),
        runpath=tuple(runpath),
        flags_1=flags_1,
        version_needs=tuple(version_needs),
        version_defs=tuple(version_defs),
        segments=tuple(segs),
        has_section_headers=has_sh,
        image_end=image_end,
        file_size=r.size,
        weak_needs=tuple(weak_needs) if weak_needs else (),
    )


WHOLE_STRTAB = 1 << 18  # read a string table this small at once (most are a few KiB; libLLVM's is MBs)


def _strings(r: _Reader, str_off: int, str_end: int):
    """A function from a string-table offset to its string, with r.cstring's bounds and errors;
    a small table is read once and searched in place (a dozen strings per file)."""
    if str_end - str_off > WHOLE_STRTAB:
        return lambda o: r.cstring(str_off + o, str_end)
    table = r._read(str_off, str_end - str_off, "dynamic string table")
    length = len(table)

    def s(o: int) -> str:
        if o >= length:
            raise ElfError(f"string offset {str_off + o} lies outside the string table")
        nul = table.find(b"\0", o, o + MAX_STRING)
        if nul < 0:
            raise ElfError(f"unterminated string at offset {str_off + o}")
        return table[o:nul].decode("utf-8", "surrogateescape")

    return s


VERSION_WINDOW = 4096  # .gnu.version_r / .gnu.version_d are read as one window (most fit)


def _unpacker(r: _Reader, start: int):
    """unpack(fmt, offset, what) for the version tables at `start`: from one window read there
    when the record lies inside it (13,000 records per 900 files), else with r._read's checks."""
    window = r.src.pread(start, min(VERSION_WINDOW, r.size - start)) if 0 <= start < r.size else b""
    limit = len(window)

    def unpack(fmt: str, off: int, size: int, what: str) -> tuple:
        rel = off - start
        if 0 <= rel and rel + size <= limit:
            return struct.unpack_from(fmt, window, rel)
        return struct.unpack(fmt, r._read(off, size, what))

    return unpack


def _read_verneed(r: _Reader, loads, vaddr: int, num: int, s,
                  weak: list[tuple[str, str]] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """Walk Elf_Verneed / Elf_Vernaux chains (same layout for 32 and 64 bit); the (file, version)
    pairs flagged VER_FLG_WEAK are appended to `weak`."""
    out = []
    off = r.vaddr_to_offset(loads, vaddr)
    unpack = _unpacker(r, off)
    need_fmt, aux_fmt = r.e + "HHIII", r.e + "IHHII"
    seen: set[int] = set()
    total = 0
    for _ in range(min(num or MAX_VERSION_ENTRIES, MAX_VERSION_ENTRIES)):
        if off in seen:
            raise ElfError("version-need chain loops")
        seen.add(off)
        vn_version, vn_cnt, vn_file, vn_aux, vn_next = unpack(need_fmt, off, 16, "Elf_Verneed")
        if vn_version != 1:
            raise ElfError(f"unknown Elf_Verneed version {vn_version}")
        names = []
        aux = off + vn_aux
        aux_seen: set[int] = set()
        for _j in range(vn_cnt):
            total += 1
            if total > MAX_VERSION_ENTRIES or aux in aux_seen:
                raise ElfError("version-need entries loop or are too many")
            aux_seen.add(aux)
            _h, vna_flags, _o, vna_name, vna_next = unpack(aux_fmt, aux, 16, "Elf_Vernaux")
            names.append(s(vna_name))
            if vna_flags & VER_FLG_WEAK and weak is not None:
                weak.append((s(vn_file), names[-1]))
            if not vna_next:
                break
            aux += vna_next
        out.append((s(vn_file), tuple(names)))
        if not vn_next:
            break
        off += vn_next
    return out


def _read_verdef(r: _Reader, loads, vaddr: int, num: int, s) -> list[str]:
    """Version names a library defines (Elf_Verdef / Elf_Verdaux), base name excluded."""
    out = []
    off = r.vaddr_to_offset(loads, vaddr)
    unpack = _unpacker(r, off)
    seen: set[int] = set()
    for _ in range(min(num or MAX_VERSION_ENTRIES, MAX_VERSION_ENTRIES)):
        if off in seen:
            raise ElfError("version-definition chain loops")
        seen.add(off)
        vd_version, vd_flags, _ndx, vd_cnt, _hash, vd_aux, vd_next = unpack(r.e + "HHHHIII", off, 20, "Elf_Verdef")
        if vd_version != 1:
            raise ElfError(f"unknown Elf_Verdef version {vd_version}")
        if vd_cnt:
            name_off, _next = unpack(r.e + "II", off + vd_aux, 8, "Elf_Verdaux")
            if not vd_flags & 1:  # VER_FLG_BASE names the file itself
                out.append(s(name_off))
        if not vd_next:
            break
        off += vd_next
    return out


def read_path(path: str | os.PathLike) -> ElfInfo:
    """Read an ELF file from disk without following it anywhere but the file itself."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        return read_elf(FileSource(fd, size))
    finally:
        os.close(fd)


def open_regular(path: str | os.PathLike) -> int:
    """A read descriptor for a regular file. O_NONBLOCK: a FIFO where a library is looked for must
    not block the run (it opens at once, then is refused by type); a directory is refused by type
    too (reading it raised IsADirectoryError)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ElfError(f"cannot open: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ElfError(f"cannot read file data: {kind}")
    return fd


class InfoMemo:
    """ElfInfo by file identity (device, inode, size, mtime): the tree's copy of a library and this
    machine's copy (the same inode when analysing a system directory), or hard links to one file,
    are read once. One memo per run: a file rewritten in place between runs is read again.
    Measured on /usr/lib/x86_64-linux-gnu: 1,342 header reads became 904."""

    def __init__(self) -> None:
        self._by_id: dict[tuple[int, ...], ElfInfo | ElfError] = {}

    def key(self, st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def stored(self, key: tuple[int, ...]) -> ElfInfo | ElfError | None:
        """Facts known from before this run (none here; see packer.elf.infocache)."""
        return None

    def read_fd(self, fd: int, st: os.stat_result | None = None) -> ElfInfo:
        st = st or os.fstat(fd)
        key = self.key(st)
        value = self._by_id.get(key)
        if value is None:
            value = self.stored(key)
        if value is None:
            try:
                value = read_elf(FileSource(fd, st.st_size))
            except ElfError as exc:
                value = exc
        self._by_id[key] = value
        if isinstance(value, ElfError):
            raise value
        return value

    def adopt(self, key: tuple[int, ...], value: ElfInfo | ElfError) -> ElfInfo | ElfError:
        """Facts another process read for the file with this key: the value already held when
        there is one, so that one file (hard links, this machine's copy) stays one object."""
        return self._by_id.setdefault(key, value)

    def read_path(self, path: str | os.PathLike) -> ElfInfo:
        fd = open_regular(path)
        try:
            return self.read_fd(fd)
        finally:
            os.close(fd)


def read_bytes(data: bytes) -> ElfInfo:
    return read_elf(BytesSource(data))


def sniff(path: str | os.PathLike) -> bool:
    """True when the file starts with the ELF magic (cheap pre-filter for tree walks)."""
    try:
        fd = open_regular(path)
    except ElfError:
        return False
    try:
        return os.pread(fd, 4, 0) == ELF_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


class Section(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    name: str
    type: int  # sh_type (SHT_NOBITS = 8 occupies no bytes in the file)
    size: int


def read_sections(path: str | os.PathLike) -> list[Section]:
    """The section table with names, bounded like the rest of this reader (no file-size trust,
    at most MAX_SHNUM entries, names capped at MAX_STRING). Used for strip's size estimate, so
    pyelftools is not needed at run time; tests compare it with pyelftools."""
    fd = open_regular(path)
    try:
        r = _Reader(FileSource(fd, os.fstat(fd).st_size))
        headers = r.section_headers()
        names_at = headers[r.shstrndx] if 0 < r.shstrndx < len(headers) else None
        out = []
        for sh_name, sh_type, _offset, sh_size in headers:
            name = ""
            if names_at is not None and names_at[1] != SHT_NOBITS:
                name = r.cstring(names_at[2] + sh_name, names_at[2] + names_at[3])
            out.append(Section(name, sh_type, sh_size))
        return out
    except (struct.error, ValueError, OverflowError, IndexError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from exc
    finally:
        os.close(fd)
