"""Python profile on a real `pip install --target` of numpy + requests, and the ELF strip guards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from packer.elf.reader import read_path
from packer.slim import elfstrip
from tests.conftest import require_tool, run_cli


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """numpy + requests installed by pip into python/ (the layer layout), slimmed by the CLI."""
    base = tmp_path_factory.mktemp("py")
    target = base / "layer" / "python"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target),
                          "numpy", "requests"], capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        pytest.fail(f"pip install failed (PyPI must be reachable): {res.stderr[-500:]}")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(target)], check=True, timeout=600)
    libs = {p.relative_to(target).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in target.glob("*.libs/*") if p.is_file()}
    out = base / "out"
    res = run_cli("slim", str(base / "layer"), "--profile", "python", "--out", str(out), "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    return {"src": base / "layer", "out": out, "doc": json.loads(res.stdout), "libs": libs}


def _import_check(python_dir: Path) -> subprocess.CompletedProcess:
    code = ("import importlib.metadata, numpy, requests; "
            "assert numpy.linalg.inv(numpy.eye(2))[0][0] == 1.0; "
            "print(importlib.metadata.version('requests'), importlib.metadata.version('numpy'))")
    env = {**os.environ, "PYTHONPATH": str(python_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd="/")


def test_numpy_and_requests_still_import_with_metadata_after_slimming(site):
    res = _import_check(site["out"] / "python")
    assert res.returncode == 0, res.stderr
    requests_version, numpy_version = res.stdout.split()
    assert requests_version[0].isdigit() and numpy_version[0].isdigit()


def test_tests_go_but_metadata_pyc_and_grafted_libs_stay(site):
    out = site["out"] / "python"
    assert not list(out.glob("numpy/**/tests")) and list(site["src"].glob("python/numpy/**/tests"))
    assert list(out.glob("requests-*.dist-info/METADATA")) and list(out.glob("requests-*.dist-info/RECORD"))
    assert list(out.glob("numpy/__pycache__/*.pyc"))
    assert (out / "numpy" / "testing").is_dir()  # public API, not a test suite
    for rel, digest in site["libs"].items():  # auditwheel-grafted libraries are never stripped
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    assert site["doc"]["bytes_after"] < site["doc"]["bytes_before"]
    assert site["doc"]["result"]["bytes_after"] <= site["doc"]["bytes_after"]
    rules = {r["id"]: r for r in site["doc"]["rules"]}
    assert rules["P1"]["saved"] > 1_000_000


def test_danger_tier_would_remove_dist_info_and_says_so_only_when_asked(site):
    res = run_cli("slim", str(site["src"]), "--profile", "python", "--dry-run", "--json")
    doc = json.loads(res.stdout)
    assert "P3b" in [r["id"] for r in doc["not_applied"]]
    res = run_cli("slim", str(site["src"]), "--profile", "python", "--tier", "danger", "--dry-run", "--json")
    doc = json.loads(res.stdout)
    removed = [a["path"] for a in doc["actions"] if a["rule"] == "P3b"]
    assert any(p.endswith(".dist-info") for p in removed)
    assert not (site["out"] / "python" / "absent").exists()


def test_dry_run_changes_nothing_and_prints_rules(site, tmp_path):
    res = run_cli("slim", str(site["src"]), "--profile", "python", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "P1" in res.stdout and "dry run" in res.stdout and "total:" in res.stdout


# -- ELF guards on real binaries -----------------------------------------------------------------


@pytest.fixture(scope="module")
def elf_tree(tmp_path_factory):
    """A tree with an unstripped .so (gcc -g), the same .so under foo.libs/, and an SBCL-like
    executable with a payload appended after its ELF image."""
    gcc = require_tool("gcc")
    require_tool("strip")
    base = tmp_path_factory.mktemp("elf")
    src = base / "f.c"
    src.write_text("int answer(void) { return 42; }\nint main(void) { return answer() - 42; }\n")
    tree = base / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "pkg.libs").mkdir()
    subprocess.run([gcc, "-g", "-O0", "-shared", "-fPIC", "-o", str(tree / "lib" / "libf.so"), str(src)], check=True)
    shutil.copy2(tree / "lib" / "libf.so", tree / "pkg.libs" / "libf-0123abcd.so")
    subprocess.run([gcc, "-g", "-o", str(tree / "runner"), str(src)], check=True)
    with open(tree / "runner", "ab") as fh:
        fh.write(b"CORE" * 4096)  # bytes appended after the image (not a real SBCL core)
    return tree


def test_unstripped_library_is_stripped_and_still_aligned(elf_tree, tmp_path):
    out = tmp_path / "out"
    res = run_cli("slim", str(elf_tree), "--profile", "generic", "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    before, after = (elf_tree / "lib" / "libf.so").stat().st_size, (out / "lib" / "libf.so").stat().st_size
    assert after < before
    assert doc["result"]["elf_saved"] == before - after
    info = read_path(out / "lib" / "libf.so")
    assert elfstrip.loads_aligned(info) and info.load_align == read_path(elf_tree / "lib" / "libf.so").load_align
    assert os.access(out / "runner", os.X_OK)


def test_appended_payload_and_grafted_libs_are_never_stripped(elf_tree, tmp_path):
    out = tmp_path / "out"
    res = run_cli("slim", str(elf_tree), "--profile", "sbcl", "--out", str(out), "--json")
    doc = json.loads(res.stdout)
    codes = {f["code"]: f["path"] for f in doc["findings"]}
    assert codes.get("LP601") == "runner" and codes.get("LP602") == "pkg.libs/libf-0123abcd.so"
    assert (out / "runner").read_bytes() == (elf_tree / "runner").read_bytes()
    assert (out / "pkg.libs" / "libf-0123abcd.so").read_bytes() == (elf_tree / "pkg.libs" / "libf-0123abcd.so").read_bytes()


def test_lp601_names_the_data_only_when_it_is_known(elf_tree, tmp_path):
    """A real SBCL executable is recognised by its core trailer; other bytes past the image (here
    an appended blob, in numpy a patchelf relayout) are described without guessing what they are."""
    sbcl = require_tool("sbcl")
    tree = tmp_path / "t"
    (tree / "bin").mkdir(parents=True)
    shutil.copy2(elf_tree / "runner", tree / "bin" / "runner")
    exe = tree / "bin" / "hello"
    subprocess.run([sbcl, "--non-interactive", "--no-userinit", "--eval",
                    f'(sb-ext:save-lisp-and-die "{exe}" :executable t :toplevel (lambda () (princ "hi") (terpri)))'],
                   check=True, capture_output=True, timeout=300)
    res = run_cli("slim", str(tree), "--profile", "generic", "--out", str(tmp_path / "out"), "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    msgs = {f["path"]: f["message"] for f in json.loads(res.stdout)["findings"] if f["code"] == "LP601"}
    assert "an SBCL core" in msgs["bin/hello"]
    assert "16,384 bytes after the end of the ELF image" in msgs["bin/runner"] and "SBCL" not in msgs["bin/runner"]
    ran = subprocess.run([str(tmp_path / "out" / "bin" / "hello")], capture_output=True, text=True, timeout=60)
    assert ran.stdout.strip() == "hi"


def test_numpy_modules_past_their_image_are_not_called_payloads(site):
    msgs = [f["message"] for f in site["doc"]["findings"] if f["code"] == "LP601"]
    assert msgs and all("SBCL" not in m and "raco" not in m and "payload" not in m for m in msgs)


def test_in_place_changes_the_input_itself(elf_tree, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(elf_tree, copy, symlinks=True)
    (copy / ".git").mkdir()
    (copy / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    res = run_cli("slim", str(copy), "--profile", "generic", "--in-place")
    assert res.returncode == 0, res.stderr
    assert not (copy / ".git").exists()
    assert (copy / "lib" / "libf.so").stat().st_size < (elf_tree / "lib" / "libf.so").stat().st_size
