"""The struct-based symbol-version reader names the same symbols pyelftools does."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection

from packer.elf.symbols import MAX_SYMBOLS_PER_VERSION, bindings_needing, symbols_needing

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "bin"


def oracle(path: Path, weak: bool | None = None) -> dict[str, list[str]]:
    """{version: undefined symbols bound to it}; `weak`: only the weak (True) or strong (False) ones."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        dynsym = elf.get_section_by_name(".dynsym")
        versym = next(s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection))
        verneed = next(s for s in elf.iter_sections() if isinstance(s, GNUVerNeedSection))
        names = {aux["vna_other"]: aux.name for _v, auxes in verneed.iter_versions() for aux in auxes}
        out: dict[str, list[str]] = {}
        for i, sym in enumerate(dynsym.iter_symbols()):
            if i == 0 or sym["st_shndx"] != "SHN_UNDEF":
                continue
            if weak is not None and (sym["st_info"]["bind"] == "STB_WEAK") != weak:
                continue
            ndx = versym.get_symbol(i)["ndx"]
            if isinstance(ndx, int) and (ndx & 0x7FFF) in names:
                out.setdefault(names[ndx & 0x7FFF], []).append(sym.name)
        return out


CASES = [FIX / "x86_64" / "needs-glibc236", FIX / "x86_64" / "needs-glibcxx", FIX / "aarch64" / "needs-glibcxx",
         FIX / "x86_64" / "needs-ssl", FIX / "other" / "hello-mips", FIX / "other" / "hello-s390x",
         FIX / "other" / "hello-i386", Path("/usr/bin/python3.11"), Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")]


@pytest.mark.parametrize("path", [p for p in CASES if p.exists()], ids=lambda p: p.name)
def test_symbol_names_match_pyelftools(path: Path) -> None:
    want = oracle(path.resolve())
    got = symbols_needing(path.read_bytes(), set(want))
    for version, symbols in want.items():
        assert got[version] == symbols[:MAX_SYMBOLS_PER_VERSION]


def test_no_section_headers_gives_no_names_not_an_error() -> None:
    data = (FIX / "x86_64" / "hello-noshdr").read_bytes()
    assert symbols_needing(data, {"GLIBC_2.34"}) == {"GLIBC_2.34": []}


def test_garbage_gives_no_names() -> None:
    assert symbols_needing(b"\x7fELF\x02\x01" + b"\xff" * 100, {"GLIBC_2.34"}) == {"GLIBC_2.34": []}


@pytest.mark.parametrize("path", [p for p in CASES if p.exists()], ids=lambda p: p.name)
def test_strong_and_weak_bindings_match_pyelftools(path: Path) -> None:
    """A missing weak version matters only for strong references: the split must be exact."""
    versions = set(oracle(path.resolve()))
    strong, weak = oracle(path.resolve(), weak=False), oracle(path.resolve(), weak=True)
    got = bindings_needing(path.read_bytes(), versions)
    assert got is not None
    for version in versions:
        assert got[version] == (strong.get(version, [])[:MAX_SYMBOLS_PER_VERSION], weak.get(version, [])[:MAX_SYMBOLS_PER_VERSION])


def test_a_file_without_symbol_tables_has_unknown_bindings() -> None:
    assert bindings_needing((FIX / "x86_64" / "hello-noshdr").read_bytes(), {"GLIBC_2.34"}) is None
    assert bindings_needing(b"\x7fELF\x02\x01" + b"\xff" * 100, {"GLIBC_2.34"}) is None
