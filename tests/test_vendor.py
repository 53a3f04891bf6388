"""`layerpack vendor` on fixture binaries: plans, patched output that runs where only the runtime's
library set is visible, renaming against shadowing, --bundle-libc, arm64, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from packer import runtime as runtimes
from packer import vendor
from packer.analyze import analyze
from packer.elf.reader import read_path
from tests.conftest import require_tool, run_cli
from tests.trees import make_tree

FIX = Path(__file__).resolve().parent.parent / "fixtures"
X86 = FIX / "bin" / "x86_64"
ARM = FIX / "bin" / "aarch64"


def tree_digest(root: Path) -> str:
    """Content, modes and link targets of every entry: what "byte-identical output" means."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            h.update(f"{rel}\0{st.st_mode:o}\0".encode())
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            else:
                h.update(Path(p).read_bytes())
    return h.hexdigest()


@pytest.fixture(params=["patchelf", "lief"])
def patcher(request) -> str:
    """Every vendor test that patches runs with both patchers: lief must pass what patchelf passes."""
    return request.param


def sandbox_run(opt: Path, argv: tuple[str, ...] = ("/opt/bootstrap",), env: dict | None = None,
                runtime: str = "provided.al2023") -> subprocess.CompletedProcess:
    """Run with the layer at /opt and only the runtime's library set in /lib64 (bwrap)."""
    require_tool("bwrap")
    from packer.emulator import rootfs, sandbox

    rt = runtimes.load(runtime, "x86_64")
    root = rootfs.materialize(rootfs.plan_root(rt))
    full_env = {"LD_LIBRARY_PATH": ":".join(rt.ld_library_path), "PATH": ":".join(rt.path_env), **(env or {})}
    spec = sandbox.SandboxSpec(root=root, opt=opt, task=None, command=argv, env=full_env)
    return subprocess.run(sandbox.bwrap_argv(spec, sandbox.bwrap_path()), capture_output=True, text=True, timeout=60)


def test_plan_copies_the_missing_library_with_its_soname_link_and_sets_rpath() -> None:
    p = vendor.plan(X86 / "needs-atomic")
    assert [(c.soname, c.dest, c.links) for c in p.copies] == [("libatomic.so.1", "lib/libatomic.so.1.2.0", ("lib/libatomic.so.1",))]
    assert [(op.rel, op.patch.rpath) for op in p.patches] == [("bootstrap", ("$ORIGIN/lib",))]
    assert p.ok and p.bytes_added == os.path.getsize(os.path.realpath("/lib/x86_64-linux-gnu/libatomic.so.1"))


def test_vendored_binary_runs_with_only_the_runtime_library_set_and_failed_before(tmp_path: Path, patcher: str) -> None:
    before = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic"})
    failed = sandbox_run(before)
    assert failed.returncode != 0 and "libatomic.so.1: cannot open shared object file" in failed.stderr
    out = tmp_path / "out"
    res = vendor.apply(vendor.plan(before), out, patcher=patcher)
    assert res.ok, res.findings
    ran = sandbox_run(out)
    assert ran.returncode == 0 and "atomic fixture" in ran.stdout
    boot = read_path(out / "bootstrap")
    assert boot.rpath == ("$ORIGIN/lib",) and not boot.runpath
    assert os.readlink(out / "lib" / "libatomic.so.1") == "libatomic.so.1.2.0"
    assert "libatomic1" in (out / "lib" / "THIRD-PARTY.txt").read_text()


def test_transitive_closure_from_a_sysroot_runs(tmp_path: Path, patcher: str) -> None:
    sysroot = FIX / "sysroot" / "x86_64"
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-fix1"})
    p = vendor.plan(src, sysroot=sysroot)
    assert {c.soname for c in p.copies} == {"libfix1.so.1", "libfix2.so.1"}
    assert ("lib/libfix1.so.1", ("$ORIGIN",)) in [(op.rel, op.patch.rpath) for op in p.patches]
    out = tmp_path / "out"
    assert vendor.apply(p, out, patcher=patcher).ok
    ran = sandbox_run(out)
    assert ran.returncode == 0 and "fix 2" in ran.stdout


def test_bundled_copy_of_a_runtime_soname_is_renamed_and_wins(tmp_path: Path, patcher: str) -> None:
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-z", "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1")})
    assert "LP103" in {f.code for f in analyze(src).findings}
    p = vendor.plan(src)
    (move,) = p.moves
    assert move.source == "lib/libz.so.1" and move.new_soname.startswith("libz-") and move.new_soname.endswith(".so.1")
    out = tmp_path / "out"
    res = vendor.apply(p, out, patcher=patcher)
    assert res.ok and not [f for f in res.report.findings if f.code == "LP103"]
    boot = read_path(out / "bootstrap")
    assert move.new_soname in boot.needed and "libz.so.1" not in boot.needed
    assert boot.rpath == ("$ORIGIN/lib",)
    assert read_path(out / move.dest).soname == move.new_soname
    assert not (out / "lib" / "libz.so.1").exists()
    traced = sandbox_run(out, env={"LD_TRACE_LOADED_OBJECTS": "1"})
    assert f"{move.new_soname} => /opt/lib/{move.new_soname}" in traced.stdout
    assert sandbox_run(out).stdout.startswith("zlib ")


def test_vendored_libstdcxx_is_not_shadowed_by_runtime_copy(tmp_path: Path) -> None:
    """The libstdc++ case: renamed and NEEDED rewritten; and layerpack also sees that Debian 12's
    libstdc++ itself needs GLIBC_2.36, which AL2023 lacks, so it refuses to write a broken layer."""
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-glibcxx", "lib/libstdc++.so.6": Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")})
    assert "LP103" in {f.code for f in analyze(src).findings}
    p = vendor.plan(src)
    (move,) = p.moves
    assert move.new_soname.startswith("libstdc++-") and move.new_soname.endswith(".so.6")
    boot = next(op for op in p.patches if op.rel == "bootstrap")
    assert boot.patch.replace_needed == (("libstdc++.so.6", move.new_soname),) and boot.patch.rpath == ("$ORIGIN/lib",)
    assert next(op for op in p.patches if op.rel == move.dest).patch.soname == move.new_soname
    assert {f.data.get("library") for f in p.findings if f.code == "LP901"} == {"libc.so.6"}
    assert not p.ok


def test_unreachable_library_already_in_the_tree_gets_an_rpath_not_a_copy(tmp_path: Path, patcher: str) -> None:
    src = tmp_path / "chain"
    shutil.copytree(X86 / "chain", src, symlinks=True)
    p = vendor.plan(src)
    assert p.copies == []
    assert ("deps/liba.so", ("$ORIGIN",)) in [(op.rel, op.patch.rpath) for op in p.patches]
    out = tmp_path / "out"
    res = vendor.apply(p, out, patcher=patcher)
    assert not [f for f in res.report.findings if f.code == "LP101" and "runpath-main" in f.message]
    real = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--inhibit-cache", "--list", str(out / "runpath-main")],
                          capture_output=True, text=True)
    assert real.returncode == 0 and str(out / "deps" / "libb.so") in real.stdout


def test_glibc_is_flagged_not_copied_by_default(tmp_path: Path) -> None:
    p = vendor.plan(X86 / "needs-glibc236")
    assert not p.ok and "LP901" in {f.code for f in p.findings} and p.copies == []
    res = run_cli("vendor", str(X86 / "needs-glibc236"), "--out", str(tmp_path / "out"))
    assert res.returncode == 1 and "LP901" in res.stdout and not (tmp_path / "out").exists()


def test_vendored_library_needing_a_newer_glibc_is_caught() -> None:
    p = vendor.plan(X86 / "needs-glibcxx", runtime="provided.al2")
    assert "LP902" in {f.code for f in p.findings}  # Debian's libstdc++ needs GLIBC_2.3x > AL2's 2.26


def test_arm64_fixture_is_vendored_and_reanalysed_on_x86_64(tmp_path: Path, patcher: str) -> None:
    src = make_tree(tmp_path, {"bootstrap": ARM / "needs-atomic"})
    p = vendor.plan(src)
    assert p.arch == "arm64" and p.copies[0].real.startswith("/usr/aarch64-linux-gnu/")
    before = read_path(src / "bootstrap")
    out = tmp_path / "out"
    res = vendor.apply(p, out, patcher=patcher)
    assert res.ok and res.report.runtime.arch == "arm64"
    after = read_path(out / "bootstrap")
    assert after.machine_name == "aarch64" and after.rpath == ("$ORIGIN/lib",)
    assert after.load_align == before.load_align
    assert read_path(out / "lib" / "libatomic.so.1").machine_name == "aarch64"


def test_vendoring_twice_is_byte_identical_and_leaves_the_input_unchanged(tmp_path: Path, patcher: str) -> None:
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-fix1", "bin/other": X86 / "needs-fix1"})
    before = tree_digest(src)
    for name in ("a", "b"):
        res = run_cli("vendor", "--patcher", patcher, str(src), "--out", str(tmp_path / name), "--sysroot", str(FIX / "sysroot" / "x86_64"), "--strip")
        assert res.returncode == 0, res.stdout + res.stderr
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(src) == before


def test_file_with_a_payload_is_never_patched(tmp_path: Path) -> None:
    data = (X86 / "needs-atomic").read_bytes() + b"CORE" * 4096
    src = tmp_path / "in"
    src.mkdir()
    (src / "bootstrap").write_bytes(data)
    (src / "bootstrap").chmod(0o755)
    p = vendor.plan(src)
    assert "LP903" in {f.code for f in p.findings} and not p.patches
    out = tmp_path / "out"
    assert vendor.apply(p, out).ok
    assert (out / "bootstrap").read_bytes() == data
    ran = sandbox_run(out)  # found through LD_LIBRARY_PATH's /opt/lib
    assert ran.returncode == 0


def test_cli_dry_run_json_changes_nothing_and_bad_usage_exits_2(tmp_path: Path) -> None:
    res = run_cli("vendor", str(X86 / "needs-atomic"), "--dry-run", "--json")
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and doc["schema"] == "layerpack.vendor/1" and doc["copies"][0]["soname"] == "libatomic.so.1"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    res = run_cli("vendor", str(X86 / "needs-atomic"), "--out", str(busy))
    assert res.returncode == 2 and "not empty" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("vendor", str(X86 / "needs-atomic"))
    assert res.returncode == 2


@pytest.mark.parametrize("soname,expected", [("libstdc++.so.6", "libstdc++-12345678.so.6"),
                                             ("libfoo.so", "libfoo-12345678.so"),
                                             ("libz.so.1.2.13", "libz-12345678.so.1.2.13")])
def test_hashed_names_keep_the_so_suffix(soname: str, expected: str) -> None:
    assert vendor.hashed_name(soname, "1234567890abcdef") == expected


def test_zip_input_is_vendored_into_a_directory(tmp_path: Path, patcher: str) -> None:
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "share/data.txt": X86 / "hello"})
    (src / "lib").mkdir()
    (src / "lib" / "libalias.so").symlink_to("../share/data.txt")
    z = tmp_path / "in.zip"
    subprocess.run(["zip", "-qry", str(z), "."], cwd=src, check=True)
    out = tmp_path / "out"
    res = run_cli("vendor", "--patcher", patcher, str(z), "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert os.readlink(out / "lib" / "libalias.so") == "../share/data.txt"
    assert os.access(out / "bootstrap", os.X_OK) and (out / "lib" / "libatomic.so.1").exists()
    assert read_path(out / "bootstrap").rpath == ("$ORIGIN/lib",)


def test_in_place_changes_the_input_directory_only_when_asked(tmp_path: Path, patcher: str) -> None:
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic"})
    res = run_cli("vendor", "--patcher", patcher, str(src), "--in-place")
    assert res.returncode == 0 and (src / "lib" / "libatomic.so.1").exists()
    assert read_path(src / "bootstrap").rpath == ("$ORIGIN/lib",)


def test_one_batched_dpkg_call_names_the_same_packages_as_one_call_per_file() -> None:
    from packer.vendor.notice import dpkg_owners

    dpkg = require_tool("dpkg")
    libs = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libatomic.so.1", "/lib/x86_64-linux-gnu/libc.so.6",
            "/nonexistent/libnothing.so.1"]
    expected = {}
    for lib in libs:
        expected[lib] = None
        for spelling in (lib, os.path.realpath(lib), *(s[4:] if s.startswith("/usr/") else "/usr" + s for s in (lib, os.path.realpath(lib)))):
            proc = subprocess.run([dpkg, "-S", spelling], capture_output=True, text=True)
            if proc.returncode == 0:
                expected[lib] = proc.stdout.split(": ", 1)[0].strip()
                break
    assert dpkg_owners(libs) == expected
    assert expected["/lib/x86_64-linux-gnu/libz.so.1"] and expected["/nonexistent/libnothing.so.1"] is None


def test_renamed_library_with_a_version_requirement_runs(tmp_path: Path, patcher: str) -> None:
    """needs-zver needs ZLIB_1.2.0 from libz.so.1: the rename must reach the verneed entry too,
    keep the exec bit, and the real loader in the sandbox must accept the result."""
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-zver", "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1")})
    p = vendor.plan(src)
    (move,) = p.moves
    out = tmp_path / "out"
    res = vendor.apply(p, out, patcher=patcher)
    assert res.ok, res.findings
    boot = read_path(out / "bootstrap")
    assert (move.new_soname, ("ZLIB_1.2.0",)) in boot.version_needs
    assert "libz.so.1" not in {f for f, _ in boot.version_needs}
    assert os.access(out / "bootstrap", os.X_OK)
    ran = sandbox_run(out)
    assert ran.returncode == 0 and ran.stdout.startswith("zlib ") and "bound" in ran.stdout, ran.stderr


def test_a_needed_rename_that_leaves_the_version_requirement_behind_is_refused(tmp_path: Path) -> None:
    """What a naive lief rename produces: ld.so aborts on it, and the patcher's read-back refuses it."""
    lief = pytest.importorskip("lief")
    from packer.elf.patcher import Patch, verify
    from packer.errors import ElfError

    out = make_tree(tmp_path, {"bootstrap": X86 / "needs-zver", "lib/libz-0123abcd.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1")})
    before = read_path(out / "bootstrap")
    binary = lief.ELF.parse(str(out / "bootstrap"))
    for e in binary.dynamic_entries:
        if e.tag == lief.ELF.DynamicEntry.TAG.NEEDED and e.name == "libz.so.1":
            e.name = "libz-0123abcd.so.1"
    binary.add(lief.ELF.DynamicEntryRpath("$ORIGIN/lib"))
    binary.write(str(out / "bootstrap"))
    (out / "bootstrap").chmod(0o755)
    ran = sandbox_run(out)
    assert ran.returncode != 0 and "_dl_check_map_versions" in ran.stderr, ran.stderr
    with pytest.raises(ElfError, match="_dl_check_map_versions"):
        verify(out / "bootstrap", Patch(rpath=("$ORIGIN/lib",), replace_needed=(("libz.so.1", "libz-0123abcd.so.1"),)), before)


def test_strip_on_arm64_uses_the_cross_strip_and_keeps_alignment(tmp_path: Path, patcher: str) -> None:
    from packer.elf.strip import loads_aligned, strip_tool

    cross = require_tool("aarch64-linux-gnu-strip")
    assert strip_tool("aarch64", host="x86_64") == cross
    sysroot = FIX / "sysroot" / "aarch64"
    lib = next(sysroot.rglob("libfix1.so.1"))
    readelf = require_tool("aarch64-linux-gnu-readelf")
    assert ".symtab" in subprocess.run([readelf, "-SW", str(lib)], capture_output=True, text=True).stdout
    src = make_tree(tmp_path, {"bootstrap": ARM / "needs-fix1"})
    out = tmp_path / "out"
    res = run_cli("vendor", "--patcher", patcher, str(src), "--out", str(out), "--sysroot", str(sysroot), "--strip", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [f for f in json.loads(res.stdout)["after"] if f["code"] in ("LP908", "LP909")]
    for name in ("libfix1.so.1", "libfix2.so.1"):
        vendored = out / "lib" / name
        before, after = read_path(next(sysroot.rglob(name))), read_path(vendored)
        assert after.machine_name == "aarch64"
        assert loads_aligned(after) and after.load_align == before.load_align
        sections = subprocess.run([readelf, "-SW", str(vendored)], capture_output=True, text=True).stdout
        assert ".symtab" not in sections


def test_lief_patcher_without_lief_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "lief.py").write_text("raise ImportError('No module named lief')\n")
    out = tmp_path / "out"
    res = run_cli("vendor", "--patcher", "lief", str(X86 / "needs-atomic"), "--out", str(out),
                  env={"PYTHONPATH": f"{shadow}:{os.environ.get('PYTHONPATH', '')}"})
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("layerpack: error: the lief patcher needs lief")
    assert "lambda-layerpack[lief]" in res.stderr and not out.exists()


def test_strip_keeps_a_vendored_library_with_appended_data_whole(tmp_path: Path) -> None:
    """`strip` drops bytes after the ELF image; the guarded strip refuses instead (LP909)."""
    sysroot = tmp_path / "sysroot"
    shutil.copytree(FIX / "sysroot" / "x86_64", sysroot, symlinks=True)
    lib2 = next(sysroot.rglob("libfix2.so.1"))
    with open(lib2, "ab") as fh:
        fh.write(b"PAYLOAD!" * 512)
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-fix1"})
    out = tmp_path / "out"
    res = run_cli("vendor", str(src), "--out", str(out), "--sysroot", str(sysroot), "--strip", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [f["path"] for f in json.loads(res.stdout)["after"] if f["code"] == "LP909"] == ["lib/libfix2.so.1"]
    assert (out / "lib" / "libfix2.so.1").read_bytes() == lib2.read_bytes()
    ran = sandbox_run(out)
    assert ran.returncode == 0 and "fix 2" in ran.stdout


# -- Lambda's unzipped budget, checked on the plan before anything is copied (LP912) ----------

def _lambda_bytes(root: Path) -> int:
    """What unzip would write, counted here with os.walk (not layerpack's tree): file sizes plus
    each symlink's target length."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            total += len(os.fsencode(os.readlink(p))) if os.path.islink(p) else os.lstat(p).st_size
    return total


@pytest.fixture(scope="module")
def vendored_growth(tmp_path_factory: pytest.TempPathFactory) -> int:
    """Bytes vendoring needs-atomic really adds (measured on a real output), less what patchelf's
    edit of bootstrap added: the part of the output the plan can know before copying."""
    tmp = tmp_path_factory.mktemp("growth")
    src = make_tree(tmp, {"bootstrap": X86 / "needs-atomic", "data/real.so": X86 / "libcxxuser.so"})
    out = tmp / "out"
    assert vendor.apply(vendor.plan(src), out).ok
    patched = (out / "bootstrap").stat().st_size - (src / "bootstrap").stat().st_size
    return _lambda_bytes(out) - _lambda_bytes(src) - patched


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_vendor_refuses_a_plan_over_the_unzipped_budget_and_writes_nothing(tmp_path: Path, vendored_growth: int,
                                                                          delta: int) -> None:
    """Planned output of budget - 1 bytes is vendored; budget and budget + 1 are refused before any
    copy (Lambda wants strictly smaller), in one line that says what vendoring adds and the budget."""
    from packer.quotas import UNZIPPED_LIMIT

    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "data/real.so": X86 / "libcxxuser.so"})
    with open(src / "data" / "pad.bin", "wb") as fh:  # sparse: the budget counts its size, the disk does not
        fh.truncate(UNZIPPED_LIMIT + delta - vendored_growth - _lambda_bytes(src))
    before = tree_digest(src)
    p = vendor.plan(src)
    over = [f for f in p.findings if f.code == "LP912"]
    assert bool(over) == (delta >= 0) and p.ok == (delta < 0), p.findings
    out = tmp_path / "out"
    res = run_cli("vendor", str(src), "--out", str(out), *(["--dry-run"] if delta < 0 else []))
    if delta < 0:
        assert res.returncode == 0 and "LP912" not in res.stdout, res.stdout + res.stderr
    else:
        added = os.path.getsize(os.path.realpath("/lib/x86_64-linux-gnu/libatomic.so.1"))
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith("LP912"))
        assert f"add {added:,} bytes" in line and f"{UNZIPPED_LIMIT + delta:,} bytes" in line
        assert f"{UNZIPPED_LIMIT:,}" in line and f"({delta + 1:,} bytes too many)" in line
        assert res.returncode == 1 and res.stderr.startswith("nothing written: vendoring would add")
        assert "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1
        assert not out.exists() and not [x for x in tmp_path.iterdir() if x.name.startswith(".out")]
    assert tree_digest(src) == before


def test_vendor_progress_counts_files_and_shows_on_a_terminal_only(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "data/a.txt": "a", "data/b.txt": "b"})
    seen: list[int] = []
    p = vendor.plan(src, progress=seen.append)
    assert sum(seen) >= 3
    after: list[int] = []
    vendor.apply(p, tmp_path / "out", progress=after.append)
    assert sum(after) >= 5  # bootstrap, two data files, lib/libatomic.so.1{,.2.0}, THIRD-PARTY.txt
    require_tool("script")
    shown = subprocess.run(["script", "-qec", f"layerpack vendor {src} --dry-run", "/dev/null"],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "TERM": "xterm"})
    assert "analysing the input" in shown.stdout, shown.stdout
    piped = run_cli("vendor", str(src), "--dry-run")
    assert piped.returncode == 0 and "analysing" not in piped.stdout + piped.stderr


def test_vendor_doc_shows_the_wrote_line_as_the_program_prints_it(tmp_path: Path) -> None:
    """docs/vendor.md's example, run: `wrote` names the output by its absolute path."""
    shutil.copy2(X86 / "needs-atomic", tmp_path / "bootstrap")
    res = run_cli("vendor", "./bootstrap", "--out", "layer", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    printed = next(ln for ln in res.stdout.splitlines() if ln.startswith("wrote "))
    assert printed.startswith(f"wrote {tmp_path / 'layer'}; ")
    doc = (Path(__file__).resolve().parent.parent / "docs" / "vendor.md").read_text()
    documented = next(ln for ln in doc.splitlines() if ln.startswith("wrote "))
    assert documented == printed.replace(str(tmp_path), "/home/me/fn")
