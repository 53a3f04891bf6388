"""The loader model agrees with the real glibc ld.so on this host, rule by rule.

Each case runs `ld.so --list --inhibit-cache` on a fixture program laid out in a temporary tree and
compares every library it loads (or the first it cannot find) with what `packer.elf.search.Loader`
predicts on the same files through `HostFS`."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from packer.elf.search import MISSING, Found, HostFS, Loader

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "x86_64"
LDSO = "/lib64/ld-linux-x86-64.so.2"

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or not Path(LDSO).exists(),
                                reason="needs an x86_64 glibc host to run the real loader")


def _system_dirs() -> tuple[str, ...]:
    out = subprocess.run([LDSO, "--help"], capture_output=True, text=True).stdout
    return tuple(m.group(1) for m in re.finditer(r"^\s+(\S+)\s+\(system search path\)", out, re.M))


def real_loader(program: Path, ld_library_path: str = "", direct: bool = False) -> tuple[dict[str, str], str | None]:
    """What ld.so loads. `direct`: exec the program itself (as Lambda execs bootstrap) with
    LD_TRACE_LOADED_OBJECTS, so $ORIGIN comes from /proc/self/exe as it does on Lambda; otherwise
    `ld.so --list --inhibit-cache`, where $ORIGIN is the directory of the path given."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    if ld_library_path:
        env["LD_LIBRARY_PATH"] = ld_library_path
    if direct:
        env["LD_TRACE_LOADED_OBJECTS"] = "1"
        proc = subprocess.run([str(program)], capture_output=True, text=True, env=env)
    else:
        proc = subprocess.run([LDSO, "--inhibit-cache", "--list", str(program)], capture_output=True, text=True, env=env)
    found = {}
    for m in re.finditer(r"^\s+(\S+) => (/\S+) \(", proc.stdout, re.M):
        found[m.group(1)] = os.path.realpath(m.group(2))
    missing = re.search(r"error while loading shared libraries: (\S+): cannot open", proc.stderr)
    nf = re.search(r"^\s+(\S+) => not found", proc.stdout, re.M)
    return found, (missing.group(1) if missing else nf.group(1) if nf else None)


def model(program: Path, ld_library_path: str = "", cwd: Path | None = None) -> tuple[dict[str, str], str | None]:
    fs = HostFS(cwd=str(cwd or program.parent))
    loader = Loader(fs, tuple(ld_library_path.split(":")) if ld_library_path else (), _system_dirs(), machine=62, bits=64)
    proc = loader.load(Found(str(program), os.path.realpath(program), "host"), as_program=True)
    found = {e.name: os.path.realpath(e.path) for e in proc.edges if e.path and e.status != "loaded"}
    missing = next((e.name for e in proc.edges if e.status == MISSING), None)
    return found, missing


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    dst = tmp_path / "chain"
    shutil.copytree(FIX / "chain", dst, symlinks=True)
    return dst


def _assert_same(program: Path, ld_library_path: str = "", direct: bool = False) -> tuple[dict, str | None]:
    want = real_loader(program, ld_library_path, direct)
    got = model(program, ld_library_path)
    assert got[1] == want[1], f"first missing library: model {got[1]}, ld.so {want[1]}"
    if want[1] is None:
        assert got[0] == want[0]
    else:  # ld.so stops at the first failure; everything it did find must match
        for name, path in want[0].items():
            assert got[0].get(name) == path
    return want


def test_rpath_is_inherited_by_dependencies(chain: Path) -> None:
    found, missing = _assert_same(chain / "rpath-main")
    assert missing is None and found["libb.so"].endswith("/deps/libb.so")


def test_runpath_is_not_inherited(chain: Path) -> None:
    _found, missing = _assert_same(chain / "runpath-main")
    assert missing == "libb.so"


def test_a_dependency_with_runpath_ignores_the_rpath_stack(chain: Path) -> None:
    _found, missing = _assert_same(chain / "rpath-rp-main")
    assert missing == "libb.so"


def test_ld_library_path_finds_what_runpath_does_not(chain: Path) -> None:
    found, missing = _assert_same(chain / "runpath-main", str(chain / "deps"))
    assert missing is None and found["libb.so"].startswith(str(chain / "deps"))


def test_rpath_beats_ld_library_path_but_runpath_loses_to_it(chain: Path, tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    shutil.copy(chain / "deps" / "liba.so", decoy / "liba.so")
    shutil.copy(chain / "deps" / "libb.so", decoy / "libb.so")
    found, _ = _assert_same(chain / "rpath-main", str(decoy))
    assert found["liba.so"] == str(chain / "deps" / "liba.so")
    found, _ = _assert_same(chain / "runpath-main", str(decoy))
    assert found["liba.so"] == str(decoy / "liba.so")


def test_nodeflib_library_does_not_search_default_dirs(chain: Path) -> None:
    _found, missing = _assert_same(chain / "nodeflib-main")
    assert missing == "libz.so.1"


def test_origin_of_a_symlinked_program_is_its_real_directory(chain: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "bin"
    elsewhere.mkdir()
    (elsewhere / "linked").symlink_to(chain / "rpath-main")
    found, missing = _assert_same(elsewhere / "linked", direct=True)
    assert missing is None and found["liba.so"] == str(chain / "deps" / "liba.so")


def test_wrong_architecture_candidate_is_skipped(chain: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    arm = FIX.parent / "aarch64" / "chain" / "deps" / "liba.so"
    shutil.copy(arm, first / "liba.so")  # an aarch64 liba.so earlier on LD_LIBRARY_PATH
    found, missing = _assert_same(chain / "runpath-main", f"{first}:{chain / 'deps'}")
    assert missing is None and found["liba.so"] == str(chain / "deps" / "liba.so")


def test_system_libraries_resolve_like_ld_so() -> None:
    for prog in ("/usr/bin/ls", "/usr/bin/python3", "/usr/bin/curl"):
        if Path(prog).exists():
            _assert_same(Path(os.path.realpath(prog)))
