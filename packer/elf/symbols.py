"""Which dynamic symbols need which version: names the exact symbol behind a GLIBC_2.38 need.

Measured: doing this with pyelftools (`iter_symbols` + `GNUVerSymSection`) took 19.4 s of a 21.9 s
`layerpack analyze /usr/bin` (83 files with a too-new version, ~160k symbols parsed through
construct). This bounded struct reader does the same walk in well under a second, so it is used
here and pyelftools stays its oracle in tests/test_elf_symbols.py.

Needs section headers (.dynsym, .gnu.version, .gnu.version_r); a file without them yields no names,
which the caller reports as such.
"""

from __future__ import annotations

import struct

SHT_DYNSYM, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 11, 0x6FFFFFFE, 0x6FFFFFFF
SHN_UNDEF = 0
STB_WEAK = 2
MAX_SYMBOLS = 1 << 20
MAX_SYMBOLS_PER_VERSION = 20


def _cstr(data, off: int, end: int | None = None) -> str:
    """The NUL-terminated string at data[off], at most 4096 bytes and none past `end` (a string
    table searched in place, without copying it out of the file's map: libLLVM's is megabytes)."""
    nul = data.find(b"\0", off, off + 4096 if end is None else min(off + 4096, end))
    if off < 0 or nul < 0:
        return ""
    return data[off:nul].decode("utf-8", "replace")


def symbols_needing(data: bytes, versions: set[str]) -> dict[str, list[str]]:
    """{version name: [undefined symbols bound to it]} for the versions asked about."""
    out: dict[str, list[str]] = {v: [] for v in versions}
    try:
        _fill(data, out)
    except (struct.error, IndexError, ValueError, OverflowError):  # offsets past the file or past any C size
        pass
    return out


def bindings_needing(data: bytes, versions: set[str]) -> dict[str, tuple[list[str], list[str]]] | None:
    """{version name: ([strong undefined symbols], [weak undefined symbols])} bound to it; None
    when the file's symbol tables cannot be read (no section headers, malformed). Why the split:
    a missing weak version costs a weak reference nothing (it resolves to 0), while a strong one
    still fails when ld.so looks it up (elf/dl-lookup.c check_match)."""
    strong: dict[str, list[str]] = {v: [] for v in versions}
    weak: dict[str, list[str]] = {v: [] for v in versions}
    try:
        if not _fill(data, strong, weak):
            return None
    except (struct.error, IndexError, ValueError, OverflowError):
        return None
    return {v: (strong[v], weak[v]) for v in versions}


def _fill(data: bytes, out: dict[str, list[str]], weak_out: dict[str, list[str]] | None = None) -> bool:
    """Name the undefined symbols of `out`'s versions (weak ones into `weak_out` when given);
    False when the tables needed are absent."""
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    is64 = data[4] == 2
    e = "<" if data[5] == 1 else ">"
    if is64:
        shoff = struct.unpack_from(e + "Q", data, 40)[0]
        shentsize, shnum = struct.unpack_from(e + "HH", data, 58)
    else:
        shoff = struct.unpack_from(e + "I", data, 32)[0]
        shentsize, shnum = struct.unpack_from(e + "HH", data, 46)
    if not shoff or not shnum or shoff + shnum * shentsize > len(data):
        return False
    fmt = e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    sections = []
    for i in range(shnum):
        _name, sh_type, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(fmt, data, shoff + i * shentsize)
        sections.append((sh_type, off, size, link, entsize))

    def section(kind: int):
        return next((s for s in sections if s[0] == kind), None)

    dynsym, versym, verneed = section(SHT_DYNSYM), section(SHT_GNU_VERSYM), section(SHT_GNU_VERNEED)
    if dynsym is None or versym is None or verneed is None:
        return False
    dynstr = sections[dynsym[3]] if dynsym[3] < len(sections) else None
    vn_str = sections[verneed[3]] if verneed[3] < len(sections) else None
    if dynstr is None or vn_str is None:
        return False
    str_start, str_end = dynstr[1], dynstr[1] + dynstr[2]  # searched in place: libLLVM's is megabytes
    vstrtab = data[vn_str[1] : vn_str[1] + vn_str[2]]

    index_to_name: dict[int, str] = {}
    off, end = verneed[1], verneed[1] + verneed[2]
    for _ in range(4096):
        if off + 16 > end:
            break
        _ver, cnt, _file, aux, nxt = struct.unpack_from(e + "HHIII", data, off)
        a = off + aux
        for _j in range(min(cnt, 4096)):
            if a + 16 > len(data):
                break
            _h, _f, other, name, anext = struct.unpack_from(e + "IHHII", data, a)
            index_to_name[other & 0x7FFF] = _cstr(vstrtab, name)
            if not anext:
                break
            a += anext
        if not nxt:
            break
        off += nxt
    wanted = {i for i, n in index_to_name.items() if n in out}
    if not wanted:
        return True

    entsize = dynsym[4] or (24 if is64 else 16)
    count = min(dynsym[2] // entsize, versym[2] // 2, MAX_SYMBOLS)
    if versym[1] + 2 * count > len(data):
        return False  # the version array is cut off (struct.error before anything was named)
    for i in _symbols_with(data, e, versym[1], count, wanted):
        base = dynsym[1] + i * entsize
        if is64:
            st_name, st_info, _other, st_shndx = struct.unpack_from(e + "IBBH", data, base)
        else:
            st_name = struct.unpack_from(e + "I", data, base)[0]
            st_info, _other, st_shndx = struct.unpack_from(e + "BBH", data, base + 12)
        if st_shndx != SHN_UNDEF:
            continue
        into = weak_out if weak_out is not None and st_info >> 4 == STB_WEAK else out
        bucket = into[index_to_name[struct.unpack_from(e + "H", data, versym[1] + 2 * i)[0] & 0x7FFF]]
        if len(bucket) < MAX_SYMBOLS_PER_VERSION:
            bucket.append(_cstr(data, str_start + st_name, str_end) if st_name < dynstr[2] else "")
    return True


def _symbols_with(data, e: str, versym: int, count: int, wanted: set[int]) -> list[int]:
    """Indices 1 <= i < count of the symbols whose .gnu.version entry (hidden bit ignored) is in
    `wanted`, ascending: a C-speed search for each entry's two byte patterns instead of a Python
    loop over every symbol (libLLVM has ~50,000)."""
    end = versym + 2 * count
    hits = []
    for w in wanted:
        for value in (w, w | 0x8000):
            pattern = struct.pack(e + "H", value)
            at = data.find(pattern, versym + 2, end)
            while at >= 0:
                if (at - versym) % 2 == 0:
                    hits.append((at - versym) // 2)
                    at = data.find(pattern, at + 2, end)
                else:
                    at = data.find(pattern, at + 1, end)
    hits.sort()
    return hits


def defined_symbols(data, names: set[str], prefixes: tuple[str, ...] = ()) -> dict[str, bytes]:
    """{name: the first 16 bytes at its address} of the defined dynamic symbols named in `names` or
    starting with one of `prefixes` ({} when the file has no section headers or is malformed).
    Why the bytes: a Node addon says which Node-API version it needs only in the code of
    `node_api_module_get_api_version_v1` (`return 10;`), and which Node ABI it was built for in
    the name `node_register_module_v115`."""
    try:
        return _defined(data, names, prefixes)
    except (struct.error, IndexError, ValueError, OverflowError):
        return {}


def _defined(data, names: set[str], prefixes: tuple[str, ...]) -> dict[str, bytes]:
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return {}
    is64, e = data[4] == 2, "<" if data[5] == 1 else ">"
    shoff = struct.unpack_from(e + ("Q" if is64 else "I"), data, 40 if is64 else 32)[0]
    shentsize, shnum = struct.unpack_from(e + "HH", data, 58 if is64 else 46)
    if not shoff or not shnum or shoff + shnum * shentsize > len(data):
        return {}
    fmt = e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    sections = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    dynsym = next((s for s in sections if s[1] == SHT_DYNSYM), None)
    if dynsym is None or dynsym[6] >= len(sections):
        return {}
    strtab = sections[dynsym[6]]
    str_start, str_end = strtab[4], strtab[4] + strtab[5]
    entsize = dynsym[9] or (24 if is64 else 16)
    out: dict[str, bytes] = {}
    for i in range(1, min(dynsym[5] // entsize, MAX_SYMBOLS)):
        base = dynsym[4] + i * entsize
        if is64:
            st_name, _info, _other, st_shndx, st_value = struct.unpack_from(e + "IBBHQ", data, base)
        else:
            st_name, st_value, _size, _info, _other, st_shndx = struct.unpack_from(e + "IIIBBH", data, base)
        if st_shndx == SHN_UNDEF or st_name >= strtab[5]:
            continue
        name = _cstr(data, str_start + st_name, str_end)
        if name in names or (prefixes and name.startswith(prefixes)):
            out[name] = _code_at(data, sections, st_value)
    return out


def _code_at(data, sections, vaddr: int) -> bytes:
    """16 bytes of the file at a virtual address, through the section that holds it."""
    for s in sections:
        addr, off, size = s[3], s[4], s[5]
        if s[1] != 8 and addr <= vaddr < addr + size:  # not SHT_NOBITS
            start = off + vaddr - addr
            return bytes(data[start:start + 16])
    return b""
