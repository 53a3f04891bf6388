"""analyze's first phase shared among processes: the same files, facts and report as one process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from packer import elffiles, forkwork
from packer.analyze import analyze
from packer.elf.infocache import to_plain
from packer.elf.reader import InfoMemo
from packer.render import compact_json
from packer.tree import open_tree
from tests.conftest import require_tool

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "bin"
SYSTEM = Path("/usr/lib/x86_64-linux-gnu")


# Small shared libraries compiled here, so the tree does not depend on what this machine has installed:
# each links something different (libm, a GLIBC_2.36 symbol, a SONAME, nothing), and each is copied
# under several names to make LIB_COPIES files.
LIB_SOURCES = {
    "plain": ("int lp_plain(int x) { return x * 3 + 1; }\n", []),
    "math": ("#include <math.h>\ndouble lp_math(double x) { return sqrt(x) + cbrt(x); }\n", ["-lm"]),
    "random": ("#include <stdlib.h>\nunsigned lp_random(void) { return arc4random(); }\n", []),  # GLIBC_2.36
    "named": ("const char *lp_named(void) { return \"named\"; }\n", ["-Wl,-soname,liblpnamed.so.7"]),
    "io": ("#include <stdio.h>\nint lp_io(const char *s) { return puts(s) + printf(\"%s\", s); }\n", []),
    "data": ("int lp_table[4096] = {1, 2, 3};\nint lp_data(int i) { return lp_table[i & 4095]; }\n", []),
}
LIB_COPIES = 150


def _built_libs(out: Path) -> list[Path]:
    """LIB_COPIES ELF shared libraries under `out`, from LIB_SOURCES compiled with the host gcc."""
    gcc = require_tool("gcc")
    out.mkdir(parents=True)
    built = []
    for name, (source, flags) in LIB_SOURCES.items():
        src = out / f"{name}.c"
        src.write_text(source)
        lib = out / f"liblp{name}.so.1"
        subprocess.run([gcc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), *flags], check=True)
        src.unlink()
        built.append(lib)
    libs = list(built)
    while len(libs) < LIB_COPIES:
        origin = built[len(libs) % len(built)]
        copy = out / f"{origin.name.split('.so')[0]}-{len(libs)}.so.{len(libs) % 5}"
        shutil.copy2(origin, copy)
        libs.append(copy)
    return sorted(libs)


def _big_tree(tmp_path: Path) -> Path:
    """More candidate files than PARALLEL_MIN: shared libraries built here (copied under several
    names, and hard links to them so one inode falls in two shares), the fixtures (other machines, a
    musl program, trailing data), a truncated ELF file and files that are not ELF."""
    root = tmp_path / "big"
    libs = _built_libs(root / "lib")
    assert len(libs) == LIB_COPIES
    for p in libs:
        os.link(p, root / "lib" / f"{p.name}.again")
    shutil.copytree(FIX, root / "fixtures")
    (root / "lib" / "libcut.so.1").write_bytes(libs[0].read_bytes()[:200])
    for i in range(20):
        (root / "share" / f"d{i}").mkdir(parents=True)
        (root / "share" / f"d{i}" / "notes.txt").write_text("not an ELF file\n" * 10)
    return root


def _facts(files: list[elffiles.ElfFile]) -> list[tuple]:
    return [(f.rel, f.path, f.error, to_plain(f.info) if f.info else None) for f in files]


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    return _big_tree(tmp_path_factory.mktemp("elffiles"))


def test_several_processes_read_the_same_files_and_facts_as_one(big_tree: Path, monkeypatch) -> None:
    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    tree = open_tree(big_tree)
    assert len([e for e in tree.files() if e.size >= elffiles.MIN_SIZE]) >= elffiles.PARALLEL_MIN
    monkeypatch.setenv("LAYERPACK_JOBS", "1")
    one = elffiles.collect(tree, "/opt", None, InfoMemo())
    assert forks == []
    monkeypatch.setattr(elffiles, "jobs", lambda: 3)  # whatever this machine's CPU count
    ticks: list[int] = []
    several = elffiles.collect(tree, "/opt", ticks.append, InfoMemo())
    assert len(forks) == 2
    assert _facts(several) == _facts(one)
    assert sum(ticks) == sum(1 for _ in tree.files())  # the progress bar reaches its end
    errors = {f.rel: f.error for f in several if f.error}
    assert list(errors) == ["lib/libcut.so.1"]
    by_rel = {f.rel: f for f in several}
    linked = [f for f in several if f.rel.endswith(".again")]
    assert linked and all(by_rel[f.rel[: -len(".again")]].info is f.info for f in linked)  # one inode, one object


def test_the_report_is_the_same_text_whether_one_or_two_processes_work(big_tree: Path, monkeypatch) -> None:
    """Two processes: one reads half the files, then one names the symbols behind too-new versions."""
    from packer import analyze as analyze_module

    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    for module in (elffiles, analyze_module):
        monkeypatch.setattr(module, "jobs", lambda: 1)
    one = compact_json(analyze(big_tree).to_json())
    assert forks == []
    for module in (elffiles, analyze_module):
        monkeypatch.setattr(module, "jobs", lambda: 2)
    two = compact_json(analyze(big_tree).to_json())
    assert len(forks) == 2
    assert two == one
    assert '"LP307"' in one and '"LP301"' in one  # the truncated file and the other machines' fixtures
    report = analyze(big_tree)
    named = [f for f in report.findings if f.code == "LP201" and f.data.get("symbols")]
    assert named, "no too-new version with named symbols: the names were not exercised"


def test_a_child_that_fails_loses_nothing_its_share_is_read_here(big_tree: Path, monkeypatch) -> None:
    parent = os.getpid()
    real = elffiles._read_plain

    def dies_in_the_child(*args):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    tree = open_tree(big_tree)
    monkeypatch.setattr(elffiles, "jobs", lambda: 1)
    one = _facts(elffiles.collect(tree, "/opt", None, InfoMemo()))
    monkeypatch.setattr(elffiles, "jobs", lambda: 2)
    monkeypatch.setattr(elffiles, "_read_plain", dies_in_the_child)
    assert _facts(elffiles.collect(tree, "/opt", None, InfoMemo())) == one


def test_a_forked_value_comes_back_through_marshal_and_a_child_left_behind_is_reaped() -> None:
    with forkwork.Forked(lambda n: {"pid": os.getpid(), "squares": [i * i for i in range(n)]}, 5) as f:
        got = f.result()
    assert got["squares"] == [0, 1, 4, 9, 16] and got["pid"] != os.getpid()
    with forkwork.Forked(lambda: [lambda: 1]) as f:  # not marshal-able: computed here instead
        assert f.result()[0]() == 1
    started = time.monotonic()
    with pytest.raises(RuntimeError):
        with forkwork.Forked(time.sleep, 60) as f:
            pid = f._pid
            raise RuntimeError("the parent stops first")
    assert time.monotonic() - started < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie, no sleeper left running


def test_layerpack_jobs_caps_the_processes(monkeypatch) -> None:
    monkeypatch.setenv("LAYERPACK_JOBS", "1")
    assert forkwork.jobs() == 1
    monkeypatch.setenv("LAYERPACK_JOBS", "not a number")
    assert forkwork.jobs() == len(os.sched_getaffinity(0))


def test_facts_read_by_children_are_kept_by_the_cache_for_the_next_run(big_tree: Path, monkeypatch, tmp_path: Path) -> None:
    from packer.elf import reader
    from packer.elf.infocache import PersistentInfoMemo

    store = tmp_path / "elf-headers.marshal"
    tree = open_tree(big_tree)
    monkeypatch.setattr(elffiles, "jobs", lambda: 2)
    first = PersistentInfoMemo(store)
    cold = _facts(elffiles.collect(tree, "/opt", None, first))
    first.save()
    reads: list[int] = []
    real = reader.read_elf
    monkeypatch.setattr(reader, "read_elf", lambda src: reads.append(src.size) or real(src))
    monkeypatch.setattr(elffiles, "jobs", lambda: 1)  # every read in this process, where it is counted
    assert _facts(elffiles.collect(tree, "/opt", None, PersistentInfoMemo(store))) == cold
    assert reads == []


def test_names_found_ahead_are_not_given_to_another_layers_file_at_the_same_path(big_tree: Path, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """A --with-layer tree whose lib/libcoll.so.1 replaces the analysed tree's at /opt: the symbols
    reported are those of the file Lambda would load, with one process or two."""
    from packer import analyze as analyze_module

    main = tmp_path / "main"
    shutil.copytree(big_tree, main, symlinks=True)
    shutil.copy2(FIX / "x86_64" / "needs-glibc236", main / "lib" / "libcoll.so.1")  # arc4random@GLIBC_2.36
    other = tmp_path / "other"
    (other / "lib").mkdir(parents=True)
    shutil.copy2(SYSTEM / "libgcc_s.so.1", other / "lib" / "libcoll.so.1")  # _dl_find_object@GLIBC_2.35
    texts = []
    for n in (1, 2):
        for module in (elffiles, analyze_module):
            monkeypatch.setattr(module, "jobs", lambda n=n: n)
        report = analyze(main, with_layers=(str(other),))
        texts.append(compact_json(report.to_json()))
        coll = [f for f in report.findings if f.code == "LP201" and "libcoll.so.1" in f.path]
        assert coll and all("arc4random" not in s for f in coll for s in f.data["symbols"])
    assert texts[0] == texts[1]
