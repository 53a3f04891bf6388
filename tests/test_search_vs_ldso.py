"""The loader model agrees with the real glibc ld.so on this host, rule by rule.

Each case runs `ld.so --list --inhibit-cache` on a fixture program laid out in a temporary tree and
compares every library it loads (or the first it cannot find) with what `packer.elf.search.Loader`
predicts on the same files through `HostFS`."""

from __future__ import annotations

import os
import platform
import re
import shutil
import tempfile
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


# --- issue 13: the model's verdict against ld.so in a Lambda-shaped sandbox ------------------------

from packer.analyze import analyze  # noqa: E402
from packer.elf.patcher import patchelf_exe  # noqa: E402
from tests.conftest import require_tool  # noqa: E402
from tests.lambda_ldso import LIB_C, MAIN_C, cc, lambda_root, lib, on_lambda, program  # noqa: E402,F401

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 15088\n"


def _codes(report) -> set[str]:
    return {f.code for f in report.findings}


def _chosen(report, name: str = "libv.so.1") -> str | None:
    """The real path the model loads `name` from (None when it does not load it)."""
    for p in report.processes:
        for e in p.edges:
            if e.name == name and e.found is not None and e.status in ("bundled", "provided", "shadowed"):
                return e.found.real
    return None


def _set_rpath(path: Path, value: str, *, runpath: bool = False) -> None:
    """Exact DT_RPATH/DT_RUNPATH strings (gcc drops empty elements)."""
    args = ["--set-rpath", value] if runpath else ["--force-rpath", "--set-rpath", value]
    subprocess.run([patchelf_exe(), *args, str(path)], check=True, capture_output=True)


def _spoil(path: Path, how: str, good: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "lfs-pointer":
        path.write_text(LFS_POINTER)
    elif how == "truncated":
        path.write_bytes(good.read_bytes()[:4096])
    elif how == "directory":
        path.mkdir()
        (path / "README").write_text("not a library\n")
    elif how in ("pie-program", "exec-program"):  # a program under the library's name
        cc(path, "int main(void) { return 0; }\n", "-pie" if how == "pie-program" else "-no-pie")


@pytest.mark.parametrize("how", ["empty", "lfs-pointer", "truncated", "directory", "pie-program", "exec-program"])
def test_a_file_that_is_not_loadable_stops_the_loader(lambda_root: Path, tmp_path: Path, how: str) -> None:
    layer = tmp_path / "layer"
    good = lib(layer / "lib" / "libv.so.1", "good")
    program(layer / "bootstrap", layer / "lib", rpath="$ORIGIN/bad:$ORIGIN/lib")
    _spoil(layer / "bad" / "libv.so.1", how, good)
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert not ran.ok, ran
    assert "/opt/bad/libv.so.1" in ran.err or "libv.so.1: cannot dynamically load" in ran.err \
        or (how == "truncated" and ran.rc == 128 + 7), ran  # 7: SIGBUS
    report = analyze(layer)
    assert report.errors and "LP111" in _codes(report)
    (f,) = [f for f in report.findings if f.code == "LP111"]
    assert f.path == "bad/libv.so.1"
    if how != "truncated":  # ld.so's own words
        assert f.data["error"].split(":")[0] in ran.err


def test_a_library_for_another_machine_is_skipped(lambda_root: Path, tmp_path: Path) -> None:
    cross = shutil.which("aarch64-linux-gnu-gcc")
    if cross is None:
        pytest.skip("no aarch64 cross compiler")
    layer = tmp_path / "layer"
    lib(layer / "lib" / "libv.so.1", "good")
    program(layer / "bootstrap", layer / "lib", rpath="$ORIGIN/bad:$ORIGIN/lib")
    (layer / "bad").mkdir()
    src = tmp_path / "v.c"
    src.write_text(LIB_C)
    subprocess.run([cross, "-shared", "-fPIC", '-DTAG="arm"', "-Wl,-soname,libv.so.1", "-o",
                    str(layer / "bad" / "libv.so.1"), str(src)], check=True)
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert ran.ok and ran.out == "good"
    report = analyze(layer, arch="x86_64")
    assert "LP109" in _codes(report) and "LP111" not in _codes(report)
    assert _chosen(report) == "/opt/lib/libv.so.1"


MID_C = "const char *which(void);\nconst char *mid(void) { return which(); }\n"
USES_MID_C = '#include <stdio.h>\nconst char *mid(void);\nint main(void) { puts(mid()); return 0; }\n'


@pytest.mark.parametrize("both", [True, False])
def test_dotdot_after_a_symlinked_directory_is_resolved_physically(lambda_root: Path, tmp_path: Path, both: bool) -> None:
    """libmid is found as /opt/lib/libmid.so with /opt/lib -> vendor/pkg/lib; its RUNPATH
    $ORIGIN/../deps is /opt/vendor/pkg/deps for the kernel, not /opt/deps."""
    layer = tmp_path / "layer"
    real = layer / "vendor" / "pkg"
    lib(real / "deps" / "libv.so.1", "physical")
    if both:
        lib(layer / "deps" / "libv.so.1", "textual")
    cc(real / "lib" / "libmid.so", MID_C, f"-L{real / 'deps'}", "-l:libv.so.1",
       "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../deps", shared_name="libmid.so")
    (layer / "lib").symlink_to("vendor/pkg/lib")
    cc(layer / "bootstrap", USES_MID_C, f"-L{real / 'lib'}", "-lmid")
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert ran.ok and ran.out == "physical", ran
    report = analyze(layer)
    assert not report.errors, [f.message for f in report.findings]
    assert _chosen(report) == "/opt/vendor/pkg/deps/libv.so.1"


@pytest.mark.parametrize("cwd_copy", ["good", "lfs-pointer"])
def test_an_empty_rpath_element_is_the_working_directory(lambda_root: Path, tmp_path: Path, cwd_copy: str) -> None:
    """DT_RPATH ':$ORIGIN/lib' searches the current directory first — /var/task on Lambda."""
    task = tmp_path / "task"
    good = lib(task / "lib" / "libv.so.1", "origin")
    boot = program(task / "bootstrap", task / "lib", rpath="$ORIGIN/lib")
    _set_rpath(boot, ":$ORIGIN/lib")
    if cwd_copy == "good":
        lib(task / "libv.so.1", "cwd")
    else:
        _spoil(task / "libv.so.1", cwd_copy, good)
    ran = on_lambda(lambda_root, ("/var/task/bootstrap",), task=task)
    report = analyze(task, as_="function")
    if cwd_copy == "good":
        assert ran.ok and ran.out == "cwd", ran
        assert not report.errors and _chosen(report) == "/var/task/libv.so.1"
    else:
        assert not ran.ok and "invalid ELF header" in ran.err
        assert "LP111" in _codes(report)


def test_an_rpath_into_tmp_is_a_build_directory_leak(lambda_root: Path, tmp_path: Path) -> None:
    """The library is in /tmp on the build machine, so the program runs here; Lambda's /tmp is empty."""
    build = Path(tempfile.mkdtemp(prefix="lp-build-", dir="/tmp"))
    try:
        lib(build / "lib" / "libv.so.1", "build")
        layer = tmp_path / "layer"
        program(layer / "bootstrap", build / "lib", rpath=str(build / "lib"))
        assert subprocess.run([str(layer / "bootstrap")], capture_output=True, text=True).stdout.strip() == "build"
        ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
        assert not ran.ok and "libv.so.1: cannot open shared object file" in ran.err
        report = analyze(layer)
        assert report.errors
        (f,) = [f for f in report.findings if f.code == "LP105"]
        assert f.data["entry"] == str(build / "lib") and "/tmp is empty" in f.message
    finally:
        shutil.rmtree(build)


def test_lib_linked_to_lib64_is_on_the_library_path(lambda_root: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    lib(layer / "lib64" / "libv.so.1", "lib64")
    (layer / "lib").symlink_to("lib64")
    program(layer / "bootstrap", layer / "lib64")
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert ran.ok and ran.out == "lib64"
    report = analyze(layer)
    assert not report.errors and "LP420" not in _codes(report)
    (layer / "lib").unlink()  # without the link nothing finds /opt/lib64, and LP420 says so
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert not ran.ok
    assert "LP420" in _codes(analyze(layer))


def test_a_bootstrap_that_exports_ld_library_path_is_followed(lambda_root: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    lib(layer / "private" / "libv.so.1", "private")
    program(layer / "bin" / "app", layer / "private")
    (layer / "bootstrap").write_text('#!/bin/sh\nexport LD_LIBRARY_PATH="/opt/private:$LD_LIBRARY_PATH"\nexec /opt/bin/app\n')
    (layer / "bootstrap").chmod(0o755)
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert ran.ok and ran.out == "private", ran
    report = analyze(layer)
    assert not report.errors, [f.message for f in report.findings]
    assert _chosen(report) == "/opt/private/libv.so.1"


def test_analyze_env_sets_the_functions_library_path(lambda_root: Path, tmp_path: Path, cli) -> None:
    layer = tmp_path / "layer"
    lib(layer / "private" / "libv.so.1", "private")
    program(layer / "bin" / "app", layer / "private")
    ran = on_lambda(lambda_root, ("/opt/bin/app",), opt=layer, env={"LD_LIBRARY_PATH": "/opt/private"})
    assert ran.ok and ran.out == "private"
    res = cli("analyze", str(layer), "--env", "LD_LIBRARY_PATH=/opt/private", "--json")
    assert res.returncode == 0, res.stdout
    assert not on_lambda(lambda_root, ("/opt/bin/app",), opt=layer).ok
    assert cli("analyze", str(layer)).returncode == 1
    bad = cli("analyze", str(layer), "--env", "LD_LIBRARY_PATH")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr


APP_CXX = r'''#include <cstdio>
#include <cstdlib>
#include <string>
int main(int argc, char **argv) {
    std::string s = "cpp-runtime";
    unsigned r = arc4random();  // GLIBC_2.36: newer than provided.al2023's glibc 2.34
    std::printf("%s %d\n", s.c_str(), (int)(r & 0));
    return 0;
}
'''


def _ldd_closure(program: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True).stdout
    return [Path(m.group(1)) for m in re.finditer(r"=> (/\S+) \(", out)]


def test_aws_lambda_cpp_packager_layout_runs_and_is_not_called_failing(lambda_root: Path, tmp_path: Path) -> None:
    """The layout the aws-lambda-cpp packager writes: the program's whole ldd closure and the loader
    in lib/, and a bootstrap that execs that loader with --library-path lib/."""
    require_tool("g++")
    fn = tmp_path / "function"
    (fn / "bin").mkdir(parents=True)
    (fn / "lib").mkdir()
    src = tmp_path / "app.cpp"
    src.write_text(APP_CXX)
    subprocess.run(["g++", "-O1", "-o", str(fn / "bin" / "app"), str(src)], check=True)
    for dep in _ldd_closure(fn / "bin" / "app"):
        shutil.copy(dep, fn / "lib" / dep.name)
    shutil.copy(os.path.realpath(LDSO), fn / "lib" / "ld-linux-x86-64.so.2")
    (fn / "bootstrap").write_text(
        "#!/bin/bash\nset -euo pipefail\nexport AWS_EXECUTION_ENV=lambda-cpp\n"
        "exec $LAMBDA_TASK_ROOT/lib/ld-linux-x86-64.so.2 --library-path $LAMBDA_TASK_ROOT/lib "
        "$LAMBDA_TASK_ROOT/bin/app ${_HANDLER}\n")
    (fn / "bootstrap").chmod(0o755)
    ran = on_lambda(lambda_root, ("/var/task/bootstrap",), task=fn, env={"_HANDLER": "app"})
    assert ran.ok and ran.out == "cpp-runtime 0", ran
    # (the sandbox's libc is this host's, so it cannot show that bin/app alone needs too new a glibc)
    report = analyze(fn, as_="function")
    assert not report.errors, [f.message for f in report.findings if f.severity.name == "ERROR"][:5]
    assert "LP103" not in _codes(report)
    assert _chosen(report, "libc.so.6") == "/var/task/lib/libc.so.6"


NO_LIBC_C = 'const char *which(void) { return TAG; }\n'


def _versioned_lib(out: Path, tag: str, node: str | None, *, uses_libc: bool = True) -> Path:
    """libv with `which` in version node `node` (None: no version definitions). A library that
    calls libc has a version table (for its own needs) even when it defines no versions."""
    if not uses_libc:
        return cc(out, NO_LIBC_C, f'-DTAG="{tag}"', shared_name="libv.so.1")
    flags = []
    if node is not None:
        script = out.parent / f".{out.name}.map"
        out.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f"{node} {{ global: which; local: *; }};\n")
        flags.append(f"-Wl,--version-script,{script}")
    return lib(out, tag, "libv.so.1", *flags)


@pytest.mark.parametrize("shipped", ["no versions", "no version table", "other versions"])
def test_version_needs_against_a_bundled_library(lambda_root: Path, tmp_path: Path, shipped: str) -> None:
    build = tmp_path / "build"
    _versioned_lib(build / "libv.so.1", "built", "V_1")
    layer = tmp_path / "layer"
    program(layer / "bootstrap", build)  # needs which@V_1
    _versioned_lib(layer / "lib" / "libv.so.1", "shipped", "V_2" if shipped == "other versions" else None,
                   uses_libc=shipped != "no version table")
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    report = analyze(layer)
    if shipped == "no version table":  # ld.so warns, then its symbol lookup asserts
        assert not ran.ok and "no version information available" in ran.err and "check_match" in ran.err, ran
        assert "LP202" in _codes(report)
    elif shipped == "no versions":  # ld.so warns and goes on
        assert ran.ok and ran.out == "shipped" and "no version information available" in ran.err, ran
        assert not report.errors
        (f,) = [f for f in report.findings if f.code == "LP205"]
        assert "no version information available" in f.message
    else:
        assert not ran.ok and "version `V_1' not found" in ran.err, ran
        assert "LP202" in _codes(report)


CURL_C = 'char *curl_version(void);\nint main(void) { return curl_version() == 0; }\n'


def test_a_version_family_the_runtime_data_does_not_cover_is_not_verified(tmp_path: Path) -> None:
    """Debian's libcurl versions its symbols CURL_OPENSSL_4; whether Lambda's copy defines that is
    not in the runtime data, so the need is reported as not verified instead of met."""
    curl = Path("/usr/lib/x86_64-linux-gnu/libcurl.so.4")
    if not curl.exists():
        pytest.skip("no libcurl.so.4 on this machine")
    layer = tmp_path / "layer"
    cc(layer / "bootstrap", CURL_C, f"-L{curl.parent}", "-l:libcurl.so.4")
    report = analyze(layer)
    (f,) = [f for f in report.findings if f.code == "LP204"]
    assert f.data["version"] == "CURL_OPENSSL_4" and "not verified" in f.message
    assert f.severity.name == "WARNING"


@pytest.mark.parametrize("ships_racket", [False, True])
def test_env_interpreter_of_a_wrapped_program_must_be_on_lambdas_path(lambda_root: Path, tmp_path: Path, cli,
                                                                       ships_racket: bool) -> None:
    """`#!/usr/bin/env racket` in the program a `wrap` bootstrap starts: env finds racket only on
    the runtime's PATH, which holds the layer's bin/ as /opt/bin."""
    prog = tmp_path / "handler.rkt"
    prog.write_text("#!/usr/bin/env racket\n#lang racket/base\n(display 1)\n")
    prog.chmod(0o755)
    layer = tmp_path / "layer"
    assert cli("wrap", str(prog), "--out", str(layer)).returncode == 0
    if ships_racket:  # a stand-in racket in the layer's bin/
        (layer / "bin" / "racket").write_text("#!/bin/sh\necho racket-ran\n")
        (layer / "bin" / "racket").chmod(0o755)
    ran = on_lambda(lambda_root, ("/opt/bin/handler.rkt",), opt=layer)
    report = analyze(layer)
    errors = [f for f in report.findings if f.severity.name == "ERROR"]
    if ships_racket:
        assert ran.ok and ran.out == "racket-ran", ran
        assert not errors, [f.message for f in errors]
    else:
        assert not ran.ok and "racket" in ran.err, ran
        (f,) = [f for f in errors if f.code == "LP405"]
        assert f.path == "bin/handler.rkt" and f.data["interpreter"] == "racket"


@pytest.mark.parametrize("rootdir", ["/usr/lib/erlang", "/opt"])
def test_launcher_with_a_hard_coded_rootdir_fails_where_nothing_is(lambda_root: Path, tmp_path: Path, rootdir: str) -> None:
    """Debian's bin/erl, copied into a layer as is: ROOTDIR=/usr/lib/erlang and an exec of
    $BINDIR/erlexec, which Lambda does not have (erlexec here is a stand-in that says it ran)."""
    require_tool("erl")
    erl = Path("/usr/lib/erlang/bin/erl")
    if not erl.is_file() or "ROOTDIR=/usr/lib/erlang" not in erl.read_text():
        pytest.skip("not Debian's erlang launcher")
    text = erl.read_text()
    erts = re.search(r'BINDIR="\$ROOTDIR/(erts-[^/]+)/bin"', text).group(1)
    layer = tmp_path / "layer"
    (layer / "bin").mkdir(parents=True)
    (layer / erts / "bin").mkdir(parents=True)
    (layer / "bin" / "erl").write_text(text.replace("ROOTDIR=/usr/lib/erlang", f"ROOTDIR={rootdir}"))
    (layer / erts / "bin" / "erlexec").write_text("#!/bin/sh\necho erlexec-ran\n")
    (layer / "bootstrap").write_text("#!/bin/sh\nexec /opt/bin/erl -noshell\n")
    for f in (layer / "bin" / "erl", layer / erts / "bin" / "erlexec", layer / "bootstrap"):
        f.chmod(0o755)
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    report = analyze(layer)
    if rootdir == "/opt":
        assert ran.ok and ran.out == "erlexec-ran", ran
        assert not report.errors, [f.message for f in report.findings]
    else:
        assert not ran.ok and "erlexec" in ran.err, ran
        (f,) = [f for f in report.findings if f.code == "LP427"]
        assert f.path == "bin/erl" and any(p.endswith("/erlexec") for p in f.data["paths"])
        assert "--mount-path" in f.hint


def _cpu_supports(level: str) -> bool:
    out = subprocess.run([LDSO, "--help"], capture_output=True, text=True).stdout
    return re.search(rf"^\s+{re.escape(level)} \(supported, searched\)", out, re.M) is not None


@pytest.mark.parametrize("plain_copy", [False, True])
def test_glibc_hwcaps_subdirectories_make_the_outcome_cpu_dependent(lambda_root: Path, tmp_path: Path, cli,
                                                                    plain_copy: bool) -> None:
    """glibc >= 2.33 (provided.al2023 has 2.34) looks in glibc-hwcaps/x86-64-vN/ before the
    directory itself, on CPUs of that level. The model must not say which copy loads."""
    level = "x86-64-v2"
    if not _cpu_supports(level):
        pytest.skip(f"this CPU is not {level}")
    layer = tmp_path / "layer"
    lib(layer / "lib" / "glibc-hwcaps" / level / "libv.so.1", level)
    if plain_copy:
        lib(layer / "lib" / "libv.so.1", "plain")
    program(layer / "bootstrap", layer / "lib" / "glibc-hwcaps" / level)
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert ran.ok and ran.out == level, ran  # this CPU: the hwcaps copy
    report = analyze(layer)
    assert not report.errors, [f.message for f in report.findings]
    (f,) = [f for f in report.findings if f.code == "LP113"]
    assert f.data["candidates"] == [f"/opt/lib/glibc-hwcaps/{level}/libv.so.1"]
    assert "not verified" in f.message
    assert f.data["otherwise"] == ("/opt/lib/libv.so.1" if plain_copy else None)
    text = cli("analyze", str(layer)).stdout
    assert "looks good" not in text and "1 not verified" in text
    al2 = _codes(analyze(layer, runtime="provided.al2"))  # glibc 2.26: no glibc-hwcaps search
    assert "LP113" not in al2 and ("LP101" in al2) == (not plain_copy)


def test_vendor_does_not_call_an_output_clean_that_ld_so_refuses(lambda_root: Path, tmp_path: Path, cli) -> None:
    """Nothing to vendor, but a Git LFS pointer sits where the loader looks first: the output does
    not start, so vendor must not say "clean" (it used to count only some codes of its re-analysis)."""
    layer = tmp_path / "layer"
    lib(layer / "lib" / "libv.so.1", "good")
    program(layer / "bootstrap", layer / "lib", rpath="$ORIGIN/bad:$ORIGIN/lib")
    (layer / "bad").mkdir()
    (layer / "bad" / "libv.so.1").write_text(LFS_POINTER)
    out = tmp_path / "out"
    res = cli("vendor", str(layer), "--out", str(out))
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=out)
    assert not ran.ok and "invalid ELF header" in ran.err
    assert res.returncode == 1, res.stdout
    assert "LP111" in res.stdout and "clean: no missing" not in res.stdout


def test_a_bootstrap_that_execs_what_is_not_there_fails(lambda_root: Path, tmp_path: Path) -> None:
    """aws-lambda-cpp's bootstrap names $LAMBDA_TASK_ROOT: shipped as a layer (at /opt) it execs a
    loader that is not there."""
    layer = tmp_path / "layer"
    lib(layer / "lib" / "libv.so.1", "good")
    program(layer / "bin" / "app", layer / "lib")
    shutil.copy(os.path.realpath(LDSO), layer / "lib" / "ld-linux-x86-64.so.2")
    (layer / "bootstrap").write_text("#!/bin/bash\nexec $LAMBDA_TASK_ROOT/lib/ld-linux-x86-64.so.2 --library-path "
                                     "$LAMBDA_TASK_ROOT/lib $LAMBDA_TASK_ROOT/bin/app\n")
    (layer / "bootstrap").chmod(0o755)
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert not ran.ok and "No such file or directory" in ran.err, ran
    report = analyze(layer)
    (f,) = [f for f in report.findings if f.code == "LP427"]
    assert "/var/task/lib/ld-linux-x86-64.so.2" in f.data["paths"]


def test_dt_relr_marker_counts_as_glibc_2_36(tmp_path: Path) -> None:
    """-z pack-relative-relocs adds a need for GLIBC_ABI_DT_RELR, a node glibc defines from 2.36 on:
    ld.so of an older glibc stops with "version `GLIBC_ABI_DT_RELR' not found"."""
    layer = tmp_path / "layer"
    probe = subprocess.run(["gcc", "-Wl,-z,pack-relative-relocs", "-x", "c", "-", "-o", str(tmp_path / "probe")],
                           input="int main(void){return 0;}", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("this linker has no -z pack-relative-relocs")
    cc(layer / "bootstrap", MAIN_C.replace("puts(which())", "puts(\"relr\")").replace("const char *which(void);", ""),
       "-Wl,-z,pack-relative-relocs")
    report = analyze(layer)
    (f,) = [f for f in report.findings if f.code == "LP201"]
    assert "GLIBC_ABI_DT_RELR" in f.data["versions"] and f.data["ceiling"] == "GLIBC_2.34"


def test_a_library_lambdas_user_cannot_read_is_skipped(lambda_root: Path, tmp_path: Path) -> None:
    """Lambda runs the function as a user that owns no file: a 0600 library cannot be opened
    (EACCES) and ld.so searches on, as for a missing file."""
    layer = tmp_path / "layer"
    lib(layer / "lib" / "libv.so.1", "good").chmod(0o600)
    program(layer / "bootstrap", layer / "lib")
    ran = on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer)
    assert not ran.ok and "libv.so.1" in ran.err, ran
    report = analyze(layer)
    assert report.errors and ("LP101" in _codes(report) or "LP102" in _codes(report))
    (layer / "lib" / "libv.so.1").chmod(0o644)
    assert on_lambda(lambda_root, ("/opt/bootstrap",), opt=layer).ok and not analyze(layer).errors


def test_the_loaders_own_soname_is_met_without_a_search(tmp_path: Path) -> None:
    """NEEDED ld-linux-x86-64.so.2 (Rust and napi modules have it): ld.so is on its own list under
    that soname, so it never opens the decoy the RUNPATH offers first (issue 23)."""
    lib_dir = tmp_path / "lib"
    libx = cc(lib_dir / "libx.so", LIB_C, '-DTAG="x"', "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../bad", shared_name="libx.so")
    subprocess.run([patchelf_exe(), "--add-needed", "ld-linux-x86-64.so.2", str(libx)], check=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "ld-linux-x86-64.so.2").write_text(LFS_POINTER)
    found, missing = _assert_same(libx)
    assert missing is None and "ld-linux-x86-64.so.2" not in found and "libc.so.6" in found
