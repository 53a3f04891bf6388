"""The bounded ELF reader agrees with pyelftools, handles every class/byte order, and fails only
with ElfError on malformed input — never another exception, never a hang."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from packer.elf.reader import read_bytes, read_path, read_sections
from packer.errors import ElfError

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "bin"


def _oracle(path: Path) -> dict:
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        out = {"bits": elf.elfclass, "little": elf.little_endian, "machine": elf["e_machine"], "needed": [],
               "soname": None, "rpath": [], "runpath": [], "interp": None, "verneed": {}}
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_INTERP":
                out["interp"] = seg.get_interp_name()
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                for tag in sec.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        out["needed"].append(tag.needed)
                    elif tag.entry.d_tag == "DT_SONAME":
                        out["soname"] = tag.soname
                    elif tag.entry.d_tag == "DT_RPATH":
                        out["rpath"].extend(tag.rpath.split(":"))
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        out["runpath"].extend(tag.runpath.split(":"))
            if isinstance(sec, GNUVerNeedSection):
                for vn, auxes in sec.iter_versions():
                    auxes = list(auxes)
                    out["verneed"][vn.name] = [a.name for a in auxes]
                    out.setdefault("weak", []).extend((vn.name, a.name) for a in auxes if a["vna_flags"] & 2)
        return out


def _fixture_files() -> list[Path]:
    return sorted(p for p in FIX.rglob("*") if p.is_file() and "noshdr" not in p.name)


def _system_sample(n: int = 60) -> list[Path]:
    libdir = Path("/usr/lib/x86_64-linux-gnu")
    files = sorted(p for p in libdir.glob("*.so*") if p.is_file() and not p.is_symlink())
    bins = sorted(p for p in Path("/usr/bin").iterdir() if p.is_file() and not p.is_symlink())
    pool = [p for p in files[:: max(1, len(files) // n)] + bins[:: max(1, len(bins) // n)]]
    out = []
    for p in pool:
        try:
            if p.read_bytes()[:4] == b"\x7fELF":
                out.append(p)
        except OSError:
            pass
    return out


@pytest.mark.parametrize("path", _fixture_files() + _system_sample(), ids=lambda p: str(p).replace("/", "_"))
def test_reader_matches_pyelftools(path: Path) -> None:
    want = _oracle(path)
    got = read_path(path)
    assert got.bits == want["bits"]
    assert (got.endian == "little") == want["little"]
    assert got.needed == tuple(want["needed"])
    assert got.soname == want["soname"]
    assert list(got.rpath) == want["rpath"]
    assert list(got.runpath) == want["runpath"]
    assert got.interp == want["interp"]
    assert dict((f, list(v)) for f, v in got.version_needs) == want["verneed"]
    assert list(got.weak_needs) == want.get("weak", [])


@pytest.mark.parametrize("path", _fixture_files() + _system_sample(20), ids=lambda p: str(p).replace("/", "_"))
def test_section_table_matches_pyelftools(path: Path) -> None:
    """strip's size estimate reads the section table with this reader; pyelftools is the oracle."""
    with open(path, "rb") as fh:
        want = [(sec.name, sec["sh_size"], sec["sh_type"] == "SHT_NOBITS") for sec in ELFFile(fh).iter_sections()]
    got = [(sec.name, sec.size, sec.type == 8) for sec in read_sections(path)]
    assert got == want and got


def test_reader_reads_dynamic_segment_without_section_headers() -> None:
    with_sh = read_path(FIX / "x86_64" / "hello")
    without = read_path(FIX / "x86_64" / "hello-noshdr")
    assert not without.has_section_headers
    assert without.needed == with_sh.needed == ("libc.so.6",)
    assert dict(without.version_needs)["libc.so.6"]
    assert without.trailing_bytes == 0


@pytest.mark.parametrize("name,bits,endian,machine", [
    ("other/hello-i386", 32, "little", "i386"),
    ("other/hello-mips", 32, "big", "mips"),
    ("other/hello-s390x", 64, "big", "s390x"),
    ("aarch64/hello", 64, "little", "aarch64"),
    ("x86_64/hello", 64, "little", "x86_64"),
])
def test_reader_handles_each_class_and_byte_order(name: str, bits: int, endian: str, machine: str) -> None:
    info = read_path(FIX / name)
    assert (info.bits, info.endian, info.machine_name) == (bits, endian, machine)
    assert info.needed == ("libc.so.6",)
    assert info.is_program and not info.is_static


def test_static_program_has_no_interpreter_and_no_needed() -> None:
    info = read_path(FIX / "x86_64" / "hello-static")
    assert info.is_static and info.interp is None and info.needed == ()


def test_trailing_payload_is_measured_exactly() -> None:
    plain = read_path(FIX / "x86_64" / "hello")
    payload = read_path(FIX / "x86_64" / "hello-trailing")
    assert plain.trailing_bytes == 0
    assert payload.trailing_bytes == 65536 and payload.has_payload


def test_aarch64_load_alignment_is_reported() -> None:
    assert read_path(FIX / "aarch64" / "hello").load_align >= 0x1000
    assert read_path(FIX / "x86_64" / "hello").load_align == 0x1000


@pytest.mark.parametrize("data", [b"", b"\x7fEL", b"\x7fELF", b"\x7fELF\x03\x01\x01" + b"\0" * 60,
                                  b"\x7fELF\x02\x03\x01" + b"\0" * 60, b"not an elf at all" * 4])
def test_garbage_raises_elf_error(data: bytes) -> None:
    with pytest.raises(ElfError):
        read_bytes(data)


def test_truncated_files_raise_elf_error_at_every_length() -> None:
    data = (FIX / "x86_64" / "needs-z").read_bytes()
    full = read_bytes(data)
    for cut in list(range(0, 4096, 7)) + [len(data) - 1]:
        try:
            info = read_bytes(data[:cut])
        except ElfError:
            continue
        # a prefix that still parses must not invent dependencies
        assert set(info.needed) <= set(full.needed)


def test_version_need_chain_pointing_outside_the_file_raises_elf_error() -> None:
    path = FIX / "x86_64" / "hello"
    data = bytearray(path.read_bytes())
    with open(path, "rb") as fh:
        off = ELFFile(fh).get_section_by_name(".gnu.version_r")["sh_offset"]
    struct.pack_into("<H", data, off + 2, 60000)  # vn_cnt: far more entries than exist
    struct.pack_into("<I", data, off + 8, 0x7FFFFFF0)  # vn_aux: far outside the file
    with pytest.raises(ElfError):
        read_bytes(bytes(data))


def test_fuzzed_elf_files_raise_only_elf_error_and_never_hang() -> None:
    """Thousands of mutated real ELF files: each either parses or raises ElfError, quickly."""
    rng = random.Random(20261122)
    seeds = [(FIX / n).read_bytes() for n in ("x86_64/needs-z", "aarch64/chain/rpath-main", "other/hello-mips",
                                               "x86_64/hello-noshdr", "other/hello-i386")]
    start = time.monotonic()
    parsed = failed = 0
    for i in range(4000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 12)):
            if len(data) < 2:
                break
            pos = rng.randrange(0, min(len(data), 4096) if rng.random() < 0.8 else len(data))
            mode = rng.random()
            if mode < 0.6:
                data[pos] = rng.randrange(256)
            elif mode < 0.8:
                width = rng.choice((2, 4, 8))
                val = rng.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)))
                data[pos:pos + width] = val.to_bytes(8, "little")[:width]
            else:
                del data[pos:]
        t0 = time.monotonic()
        try:
            read_bytes(bytes(data))
            parsed += 1
        except ElfError:
            failed += 1
        assert time.monotonic() - t0 < 2.0, f"mutant {i} took too long"
    assert parsed + failed == 4000
    assert failed > 100 and parsed > 100  # the mutations exercise both paths
    assert time.monotonic() - start < 120


def test_a_weak_version_need_is_kept_with_its_flag(tmp_path: Path) -> None:
    """VER_FLG_WEAK set in one Vernaux of a real program (the only field changed): the reader
    reports that (file, version) as weak, pyelftools agrees, and version_needs is unchanged."""
    from tests.lambda_ldso import cc
    from tests.test_loader_rules import set_weak_version

    prog = cc(tmp_path / "prog", "#include <stdio.h>\nint main(void) { puts(\"x\"); return 0; }\n")
    before = read_path(prog)
    version = dict(before.version_needs)["libc.so.6"][0]
    set_weak_version(prog, version)
    after = read_path(prog)
    assert after.weak_needs == (("libc.so.6", version),) and before.weak_needs == ()
    assert after.is_weak_need("libc.so.6", version) and not before.is_weak_need("libc.so.6", version)
    assert after.version_needs == before.version_needs
    assert _oracle(prog)["weak"] == [("libc.so.6", version)]
