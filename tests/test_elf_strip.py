"""The ELF-tools layer: which strip handles which machine, the guarded strip, and what slim says when
no strip can handle a file."""

from __future__ import annotations

import shutil
from pathlib import Path

from packer.slim import SlimOptions, load, plan
from tests.trees import make_tree

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def test_no_strip_finding_names_the_machine_of_the_unstrippable_file_not_the_last_file_seen(tmp_path: Path) -> None:
    # s390x sorts first and has no binutils here; the stripped x86_64 file after it must not lend its detail
    assert shutil.which("s390x-linux-gnu-strip") is None
    src = make_tree(tmp_path, {"a/hello-s390x": FIX / "bin" / "other" / "hello-s390x",
                               "z/stripped": FIX / "bin" / "x86_64" / "hello-noshdr"})
    p = plan(src, load("generic"), SlimOptions())
    (lp600,) = [f for f in p.findings if f.code == "LP600"]
    assert lp600.path == "a/hello-s390x"
    assert lp600.message.endswith("no binutils strip for s390x"), lp600.message


def test_strip_tool_is_the_hosts_strip_for_its_own_machine_and_the_cross_strip_otherwise() -> None:
    from packer.elf.strip import strip_tool

    host_strip = shutil.which("strip")
    x86_cross = shutil.which("x86_64-linux-gnu-strip")
    arm_cross = shutil.which("aarch64-linux-gnu-strip")
    assert strip_tool("x86_64", host="x86_64") == host_strip
    assert strip_tool("aarch64", host="x86_64") == arm_cross
    # on an arm64 build machine the plain `strip` is the arm64 one: x86_64 files need the cross tool
    assert strip_tool("aarch64", host="arm64") == host_strip
    assert strip_tool("x86_64", host="aarch64") == x86_cross
    assert strip_tool("s390x", host="x86_64") is None


def test_guarded_strip_keeps_mode_alignment_and_dynamic_section(tmp_path: Path) -> None:
    from packer.elf.reader import read_path
    from packer.elf.strip import loads_aligned, strip_file

    lib = make_tree(tmp_path, {"libfix1.so.1": next((FIX / "sysroot" / "x86_64").rglob("libfix1.so.1"))}) / "libfix1.so.1"
    lib.chmod(0o750)
    before = read_path(lib)
    size = lib.stat().st_size
    assert strip_file(lib) == (True, "")
    after = read_path(lib)
    assert lib.stat().st_size < size and oct(lib.stat().st_mode & 0o777) == "0o750"
    assert loads_aligned(after) and after.load_align == before.load_align
    assert (after.needed, after.soname) == (before.needed, before.soname)
    assert [p.name for p in tmp_path.rglob(".lp-strip-*")] == []
