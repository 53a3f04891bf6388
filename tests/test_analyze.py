"""`layerpack analyze` on real fixture binaries: every LP1xx/LP2xx/LP3xx finding, each input form
(binary, directory, zip), layers and mounts, arm64 analysed on this x86_64 machine, JSON and exits."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path


from packer.analyze import analyze
from tests.conftest import require_tool, run_cli
from tests.trees import make_tree

FIX = Path(__file__).resolve().parent.parent / "fixtures"
X86 = FIX / "bin" / "x86_64"
ARM = FIX / "bin" / "aarch64"


def codes(report) -> set[str]:
    return {f.code for f in report.findings}


def patchelf(*args: str) -> None:
    subprocess.run([require_tool("patchelf"), *args], check=True)


# -- dependencies (LP1xx) ---------------------------------------------------------------------------

def test_library_present_on_the_runtime_is_provided() -> None:
    r = analyze(X86 / "needs-z")
    edge = next(e for p in r.processes for e in p.edges if e.name == "libz.so.1")
    assert edge.status == "provided" and edge.path == "/lib64/libz.so.1" and edge.via == "LD_LIBRARY_PATH"
    assert not [f for f in r.findings if f.severity >= 2]


def test_missing_library_that_this_machine_has_is_vendorable_with_host_path() -> None:
    r = analyze(X86 / "needs-atomic")
    f = next(f for f in r.findings if f.code == "LP102")
    assert f.data["library"] == "libatomic.so.1" and Path(f.data["host_path"]).exists()


def test_library_found_nowhere_is_missing_with_the_ordered_search_list() -> None:
    r = analyze(X86 / "needs-missing")
    f = next(f for f in r.findings if f.code == "LP101")
    assert f.data["searched"][:3] == ["/var/lang/lib", "/lib64", "/usr/lib64"]
    assert f.data["searched"][-1] == "/opt/lib"


def test_bundled_copy_of_a_runtime_soname_is_shadowed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-z", "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1")})
    r = analyze(tree)
    f = next(f for f in r.findings if f.code == "LP103")
    assert f.path == "lib/libz.so.1" and f.data["winner"] == "/lib64/libz.so.1"


def test_bundled_library_on_opt_lib_is_found_via_ld_library_path(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "lib/libatomic.so.1": Path("/lib/x86_64-linux-gnu/libatomic.so.1")})
    r = analyze(tree)
    edge = next(e for p in r.processes for e in p.edges if e.name == "libatomic.so.1")
    assert (edge.status, edge.path, edge.via) == ("bundled", "/opt/lib/libatomic.so.1", "LD_LIBRARY_PATH")
    assert "LP102" not in codes(r)


def test_missing_interpreter_is_reported(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "hello"})
    patchelf("--set-interpreter", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", str(tree / "bootstrap"))
    assert "LP104" in codes(analyze(tree))


def test_rpath_to_a_build_machine_directory_is_reported(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "hello"})
    patchelf("--force-rpath", "--set-rpath", "/home/builder/project/lib", str(tree / "bootstrap"))
    f = next(f for f in analyze(tree).findings if f.code == "LP105")
    assert f.data["entry"] == "/home/builder/project/lib"


def test_static_program_is_reported_as_such() -> None:
    r = analyze(X86 / "hello-static")
    assert codes(r) == {"LP106"} and r.processes == []


def test_needed_by_path_is_reported(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-z"})
    patchelf("--replace-needed", "libz.so.1", "/lib64/libz.so.1", str(tree / "bootstrap"))
    r = analyze(tree)
    assert "LP108" in codes(r)
    edge = next(e for p in r.processes for e in p.edges if e.name == "/lib64/libz.so.1")
    assert edge.status == "provided"


def test_wrong_arch_candidate_on_the_search_path_is_skipped_and_reported(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "lib/libatomic.so.1": ARM / "chain" / "deps" / "liba.so"})
    r = analyze(tree, arch="x86_64")
    assert {"LP109", "LP102"} <= codes(r)


def test_trailing_payload_is_reported() -> None:
    f = next(f for f in analyze(X86 / "hello-trailing").findings if f.code == "LP110")
    assert f.data["trailing_bytes"] == 65536


def test_rpath_chain_tree_reports_only_the_runpath_failures() -> None:
    r = analyze(X86 / "chain")
    missing = {(f.path, f.data["library"]) for f in r.findings if f.code == "LP101"}
    assert ("deps/liba.so", "libb.so") in missing and ("deps-rp/liba.so", "libb.so") in missing
    ok = next(p for p in r.processes if p.root.path == "/opt/rpath-main")
    assert all(e.status in ("provided", "bundled", "loaded") for e in ok.edges)
    absolute = next(p for p in r.processes if p.root.path == "/opt/abs-main")
    assert next(e for e in absolute.edges if e.name == "liba.so").path == "/opt/deps/liba.so"


def test_sysroot_libraries_and_their_closure_are_vendorable() -> None:
    sysroot = FIX / "sysroot" / "x86_64"
    r = analyze(X86 / "needs-fix1", sysroot=sysroot)
    vend = {f.data["library"]: f.data["host_path"] for f in r.findings if f.code == "LP102"}
    assert set(vend) == {"libfix1.so.1", "libfix2.so.1"}
    assert all(p.startswith(str(sysroot)) for p in vend.values())
    assert "LP101" in codes(analyze(X86 / "needs-fix1"))  # without the sysroot: nowhere


# -- symbol versions (LP2xx) ------------------------------------------------------------------------

def test_glibc_too_new_names_the_symbol() -> None:
    f = next(f for f in analyze(X86 / "needs-glibc236").findings if f.code == "LP201")
    assert f.data["ceiling"] == "GLIBC_2.34" and "arc4random@GLIBC_2.36" in f.data["symbols"]


def test_glibcxx_too_new_for_al2_but_fine_on_al2023() -> None:
    al2 = analyze(X86 / "needs-glibcxx", runtime="provided.al2")
    f = next(f for f in al2.findings if f.code == "LP201" and f.data["library"] == "libstdc++.so.6")
    assert f.data["ceiling"] == "GLIBCXX_3.4.24" and f.data["symbols"]
    assert "LP201" not in codes(analyze(X86 / "needs-glibcxx", runtime="provided.al2023"))


def test_shared_library_in_the_tree_is_checked_too(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"lib/libcxxuser.so": X86 / "libcxxuser.so"})
    f = next(f for f in analyze(tree, runtime="provided.al2").findings if f.code == "LP201" and f.path == "lib/libcxxuser.so")
    assert f.data["library"] == "libstdc++.so.6"


def test_bundled_library_without_the_needed_version_is_reported(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "ver" / "needs-ver2", "lib/libver.so.1": X86 / "ver" / "libver-v1.so"})
    f = next(f for f in analyze(tree).findings if f.code == "LP202")
    assert f.data["versions"] == ["VER_2"]
    tree2 = make_tree(tmp_path, {"bootstrap": X86 / "ver" / "needs-ver2", "lib/libver.so.1": X86 / "ver" / "libver-v2.so"}, "ok")
    assert "LP202" not in codes(analyze(tree2))


def test_unknown_ceiling_is_an_info_not_a_guess() -> None:
    r = analyze(X86 / "needs-ssl", runtime="nodejs22.x")
    assert "LP203" in codes(r) and "LP201" not in codes(r)
    assert "LP203" not in codes(analyze(X86 / "needs-ssl", runtime="provided.al2023"))


def test_al2_lacks_libssl3_entirely() -> None:
    r = analyze(X86 / "needs-ssl", runtime="provided.al2")
    assert {f.data["library"] for f in r.findings if f.code in ("LP101", "LP102")} >= {"libssl.so.3"}


# -- architecture (LP3xx) ---------------------------------------------------------------------------

def test_arm64_binary_is_analysed_on_x86_64() -> None:
    r = analyze(ARM / "needs-atomic")
    assert (r.runtime.arch, r.arch_source) == ("arm64", "bootstrap")
    f = next(f for f in r.findings if f.code == "LP102")
    assert "aarch64" in f.data["host_path"]  # the aarch64 copy, never the host's x86_64 one
    edge = next(e for p in r.processes for e in p.edges if e.name == "libc.so.6")
    assert edge.status == "provided"


def test_arm64_chain_resolves_like_x86_64() -> None:
    r = analyze(ARM / "chain")
    missing = {(f.path, f.data["library"]) for f in r.findings if f.code == "LP101"}
    assert ("deps/liba.so", "libb.so") in missing
    assert r.runtime.arch == "arm64"


def test_wrong_arch_for_the_target_is_an_error() -> None:
    f = next(f for f in analyze(ARM / "hello", arch="x86_64").findings if f.code == "LP301")
    assert f.data["machine"] == "aarch64"


def test_mixed_arch_tree_is_an_error(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "hello", "bin/helper": ARM / "hello"})
    r = analyze(tree)
    assert {"LP302", "LP301"} <= codes(r) and r.runtime.arch == "x86_64"


def test_musl_program_on_glibc_runtime() -> None:
    assert "LP303" in codes(analyze(X86 / "hello-musl"))


def test_32_bit_program_is_an_error() -> None:
    assert "LP304" in codes(analyze(FIX / "bin" / "other" / "hello-i386"))


def test_foreign_os_abi_is_an_error(tmp_path: Path) -> None:
    data = bytearray((X86 / "hello").read_bytes())
    data[7] = 9  # ELFOSABI_FREEBSD
    tree = make_tree(tmp_path, {"bootstrap": bytes(data)})
    (tree / "bootstrap").chmod(0o755)
    assert "LP305" in codes(analyze(tree))


def test_malformed_elf_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "hello", "lib/libbroken.so": (X86 / "needs-z").read_bytes()[:200]})
    assert "LP307" in codes(analyze(tree))


# -- inputs, mounts and layers ----------------------------------------------------------------------

def test_zip_input_is_read_in_place_and_matches_directory(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "bin/zuser": X86 / "needs-z",
                            "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1"), "lib/libz.so": ("link", "libz.so.1")})
    z = tmp_path / "layer.zip"
    subprocess.run(["zip", "-qry", str(z), "."], cwd=tree, check=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    from_zip, from_dir = analyze(z), analyze(tree)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted
    assert codes(from_zip) == codes(from_dir) == {"LP102", "LP103"}


def test_zip_with_parent_and_absolute_entries_gives_findings(tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../escape.txt", "x")
        zf.writestr("/etc/passwd", "x")
        zf.writestr("bootstrap", "#!/bin/sh\necho hi\n")
    r = analyze(z)
    assert {"LP415", "LP416", "LP403"} <= codes(r)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_function_mount_and_other_layers(tmp_path: Path) -> None:
    libs = make_tree(tmp_path, {"lib/libatomic.so.1": Path("/lib/x86_64-linux-gnu/libatomic.so.1")}, "libs")
    fn = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic"}, "fn")
    r = analyze(fn, as_="function", with_layers=(str(libs),))
    edge = next(e for p in r.processes for e in p.edges if e.name == "libatomic.so.1")
    assert edge.path == "/opt/lib/libatomic.so.1" and r.mount == "/var/task"
    assert "LP102" not in codes(r)


def test_later_layer_wins_at_the_same_path(tmp_path: Path) -> None:
    first = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic"}, "first")
    second = make_tree(tmp_path, {"lib/libatomic.so.1": ARM / "chain" / "deps" / "liba.so"}, "second")
    third = make_tree(tmp_path, {"lib/libatomic.so.1": Path("/lib/x86_64-linux-gnu/libatomic.so.1")}, "third")
    r = analyze(first, with_layers=(str(second), str(third)))
    edge = next(e for p in r.processes for e in p.edges if e.name == "libatomic.so.1")
    assert edge.status == "bundled" and "LP109" not in codes(r)


def test_unknown_runtime_and_bad_input_are_usage_errors(tmp_path: Path) -> None:
    res = run_cli("analyze", str(X86 / "hello"), "--runtime", "provided.al2099")
    assert res.returncode == 2 and "unknown runtime" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("analyze", str(tmp_path / "nope"))
    assert res.returncode == 2 and "no such file" in res.stderr
    res = run_cli("analyze", str(X86 / "hello"), "--runtime", "provided", "--arch", "arm64")
    assert res.returncode == 2 and "does not exist for arm64" in res.stderr


def test_cli_exit_codes_and_text_output() -> None:
    ok = run_cli("analyze", str(X86 / "needs-z"))
    assert ok.returncode == 0 and "looks good for Lambda" in ok.stdout
    bad = run_cli("analyze", str(X86 / "needs-atomic"))
    assert bad.returncode == 1
    assert "libatomic.so.1 MISSING on Lambda (vendorable)" in bad.stdout and "searched:" in bad.stdout
    assert "LP102" in bad.stdout and "layerpack vendor" in bad.stdout


def test_cli_json_follows_the_documented_schema() -> None:
    res = run_cli("analyze", str(X86 / "chain"), "--json")
    doc = json.loads(res.stdout)
    assert doc["schema"] == "layerpack.analyze/1"
    assert set(doc) == {"schema", "input", "runtime", "mount", "layers", "kind", "summary", "files", "dependencies", "findings"}
    assert doc["runtime"]["name"] == "provided.al2023" and doc["summary"]["errors"] >= 3
    f = doc["findings"][0]
    assert set(f) >= {"code", "severity", "path", "message", "hint"}
    edge = next(e for d in doc["dependencies"] for e in d["edges"] if e["status"] == "missing")
    assert edge["searched"] and {"dir", "source"} == set(edge["searched"][0])
