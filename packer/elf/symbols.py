"""Which dynamic symbols need which version: the deep read, done with pyelftools.

Only run on a file that already has a finding (a version above the runtime's ceiling), so its
cost (pyelftools walks the whole .dynsym) is paid where it buys the user the exact symbol to fix.
"""

from __future__ import annotations

import io

from elftools.common.exceptions import ELFError as PyElfError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

MAX_SYMBOLS_PER_VERSION = 20


def symbols_needing(data: bytes, versions: set[str]) -> dict[str, list[str]]:
    """{version name: [undefined symbols bound to it]} for the versions asked about.

    Empty when the file has no section headers (the version table is then reachable only
    through the dynamic segment, which pyelftools does not walk) or cannot be parsed."""
    out: dict[str, list[str]] = {v: [] for v in versions}
    try:
        elf = ELFFile(io.BytesIO(data))
        dynsym = elf.get_section_by_name(".dynsym")
        versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
        verneed = next((s for s in elf.iter_sections() if isinstance(s, GNUVerNeedSection)), None)
        if not isinstance(dynsym, SymbolTableSection) or versym is None or verneed is None:
            return out
        index_to_name: dict[int, str] = {}
        for _vn, aux_iter in verneed.iter_versions():
            for aux in aux_iter:
                index_to_name[aux["vna_other"]] = aux.name
        for i, sym in enumerate(dynsym.iter_symbols()):
            if sym["st_shndx"] != "SHN_UNDEF" or i == 0:
                continue
            idx = versym.get_symbol(i)["ndx"]
            if isinstance(idx, str):
                continue
            name = index_to_name.get(idx & 0x7FFF)
            if name in out and len(out[name]) < MAX_SYMBOLS_PER_VERSION:
                out[name].append(sym.name)
    except (PyElfError, ValueError, KeyError, IndexError, AttributeError):
        return out
    return out
