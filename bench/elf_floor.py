#!/usr/bin/env python3
"""The floor of any pure-Python `analyze`: walk DIR, and for every regular file open it, pread its
first 16 KiB, and for each 64-bit little-endian ELF file parse the header, program headers, dynamic
tags, DT_NEEDED / DT_SONAME / DT_RUNPATH strings, the version needs and the section header table
(for the image end) — the facts layerpack's reader gives, with none of its checks, no library
search, no findings and no output.

    python bench/elf_floor.py [DIR]           # prints one line to stderr
    python bench/elf_floor.py [DIR] --lief    # the same facts through lief (C++), for comparison

bench/analyze_vs_peers.py runs it as the row "python floor": if this alone is over 3x one libtree
process, no Python implementation of analyze can meet issue 18's 3x goal on that machine.
Deliberately one flat function: every call it avoids is part of the floor it measures.
"""

from __future__ import annotations

import os
import struct
import sys
import time

BLOCK = 16384
FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def _walk(d: str, out: list[str]) -> None:
    with os.scandir(d) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                _walk(e.path, out)
            elif e.is_file(follow_symlinks=False):
                out.append(e.path)


def floor(files: list[str]) -> int:  # noqa: C901 - one flat loop on purpose (see the module docstring)
    unpack, pread = struct.unpack_from, os.pread
    n = 0
    for p in files:
        fd = os.open(p, FLAGS)
        try:
            size = os.fstat(fd).st_size
            b = pread(fd, BLOCK, 0)
            if b[:4] != b"\x7fELF" or b[4] != 2 or b[5] != 1:
                continue
            n += 1
            (_t, _m, _v, _e, phoff, shoff, _f, _eh, phentsize, phnum, shentsize, shnum, _x) = unpack("<HHIQQQIHHHHHH", b, 16)
            ph = b if phoff + phnum * phentsize <= len(b) else pread(fd, phnum * phentsize, phoff)
            base = phoff if ph is b else 0
            loads, dyn = [], None
            for i in range(phnum):
                t, _fl, off, va, _pa, fsz, _ms, _al = unpack("<IIQQQQQQ", ph, base + i * phentsize)
                if t == 1:
                    loads.append((va, fsz, off))
                elif t == 2:
                    dyn = (off, fsz)
            blocks = {0: b}

            def at(o: int) -> tuple[bytes, int]:
                k = o // BLOCK
                if k not in blocks:
                    blocks[k] = pread(fd, 2 * BLOCK, k * BLOCK)
                return blocks[k], o - k * BLOCK

            def v2o(va: int) -> int:
                return next(lo + va - lv for lv, lf, lo in loads if lv <= va < lv + lf)

            def s(o: int) -> str:
                c, r = at(o)
                return c[r:c.index(b"\0", r)].decode()

            needed, strtab, soname, verneed, runpath = [], None, None, None, []
            if dyn:
                raw, r = at(dyn[0])
                for i in range(dyn[1] // 16):
                    tag, val = unpack("<qQ", raw, r + i * 16)
                    if tag == 0:
                        break
                    if tag == 1:
                        needed.append(val)
                    elif tag == 5:
                        strtab = val
                    elif tag == 14:
                        soname = val
                    elif tag in (15, 29):
                        runpath.append(val)
                    elif tag == 0x6FFFFFFE:
                        verneed = val
            if strtab is not None:
                so = v2o(strtab)
                [s(so + o) for o in needed + runpath + ([soname] if soname is not None else [])]
                off = v2o(verneed) if verneed else None
                while off is not None:
                    c, r = at(off)
                    _vv, cnt, fil, aux, nxt = unpack("<HHIII", c, r)
                    a = off + aux
                    for _j in range(cnt):
                        c2, r2 = at(a)
                        _h, _fl2, _o, nm, an = unpack("<IHHII", c2, r2)
                        s(so + nm)
                        if not an:
                            break
                        a += an
                    s(so + fil)
                    off = off + nxt if nxt else None
            if shoff and shnum:
                sh = pread(fd, shnum * shentsize, shoff)
                end = shoff + shnum * shentsize
                for i in range(shnum):
                    _n, typ, _fl3, _a, so_, ssz = unpack("<IIQQQQ", sh, i * shentsize)
                    if typ not in (0, 8) and so_ + ssz <= size:
                        end = max(end, so_ + ssz)
        finally:
            os.close(fd)
    return n


def lief_floor(files: list[str]) -> int:
    """The same facts through lief with the leanest ParserConfig that still reads version needs."""
    import lief

    lief.logging.disable()
    cfg = lief.ELF.ParserConfig()
    cfg.parse_dyn_symbols = cfg.parse_symtab_symbols = cfg.parse_relocations = False
    cfg.parse_notes = cfg.parse_overlay = False
    cfg.parse_symbol_versions = True
    n = 0
    for p in files:
        with open(p, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        elf = lief.ELF.parse(p, cfg)
        if elf is None:
            continue
        n += 1
        list(elf.libraries)
        [(r.name, [a.name for a in r.get_auxiliary_symbols()]) for r in elf.symbols_version_requirement]
    return n


def main() -> None:
    t0 = time.perf_counter()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = args[0] if args else "/usr/lib/x86_64-linux-gnu"
    files: list[str] = []
    _walk(root, files)
    t1 = time.perf_counter()
    if "--lief" in sys.argv:
        import lief  # noqa: F401 - its import time is reported apart

        t1b = time.perf_counter()
        n = lief_floor(files)
        t2 = time.perf_counter()
        print(f"lief: import {t1b - t1:.3f} s; {n} ELF files read in {t2 - t1b:.3f} s "
              f"({(t2 - t1b) / max(n, 1) * 1e6:.0f} us per file)", file=sys.stderr)
        return
    n = floor(files)
    t2 = time.perf_counter()
    print(f"python floor: {len(files)} files walked in {t1 - t0:.3f} s; {n} ELF files read in {t2 - t1:.3f} s "
          f"({(t2 - t1) / max(n, 1) * 1e6:.0f} us per ELF file, the magic check of the other "
          f"{len(files) - n} files included)", file=sys.stderr)


if __name__ == "__main__":
    main()
