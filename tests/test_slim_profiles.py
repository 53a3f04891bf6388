"""Slim profiles as data: shipped profiles load, malformed ones fail with the line, globs, tiers, --keep."""

from __future__ import annotations

import json

import pytest

from packer.errors import PolicyError
from packer.slim import SlimOptions, load, plan, profile_names
from packer.slim.profiles import glob_match, parse_profile
from tests.conftest import run_cli


def test_every_shipped_profile_loads_with_its_parents():
    assert set(profile_names()) >= {"erlang", "elixir", "python", "node", "sbcl", "racket", "generic"}
    for name in profile_names():
        prof = load(name)
        assert prof.chain[-1] == "generic" and all(r.reason for r in prof.rules)
    elixir = load("elixir")
    assert elixir.chain == ("elixir", "erlang", "generic")
    assert {"kernel", "stdlib", "elixir", "logger", "compiler"} <= set(elixir.otp.roots)
    assert "E9" in {r.id for r in elixir.rules}


@pytest.mark.parametrize("text, message", [
    ('[[rule]]\nid = "x"\ntier = "safe"\naction = "remove"\nmatch = ["a"\n', "invalid TOML"),
    ('name = "p"\n\n[[rule]]\nid = "x"\ntier = "risky"\naction = "remove"\nreason = "r"\nmatch = ["a"]\n', ":3: tier 'risky'"),
    ('[[rule]]\nid = "x"\ntier = "safe"\naction = "explode"\nreason = "r"\n', ":1: action 'explode'"),
    ('[[rule]]\nid = "x"\ntier = "safe"\naction = "remove"\nreason = "r"\n', "needs a 'match'"),
    ('[[rule]]\nid = "x"\ntier = "safe"\naction = "remove"\nreason = "r"\nmatch = ["../etc"]\n', "without '..'"),
    ('[[rule]]\nid = "a"\ntier = "safe"\naction = "remove"\nreason = "r"\nmatch = ["a"]\n'
     '[[rule]]\nid = "a"\ntier = "safe"\naction = "remove"\nreason = "r"\nmatch = ["b"]\n', ":7: duplicate rule id"),
    ('[[rule]]\nid = "x"\ntier = "safe"\naction = "remove"\nreason = "r"\nmatch = ["a"]\ncolour = "red"\n', "unknown rule key(s) colour"),
    ('bogus = 1\n', "unknown key(s) bogus"),
    ('[otp]\nbeam_extra_chunks = ["Attribute"]\n', "4 ASCII characters"),
])
def test_malformed_profile_is_a_policy_error_with_the_line(text, message):
    with pytest.raises(PolicyError) as exc:
        parse_profile(text, "my.toml")
    assert message in str(exc.value) and "my.toml" in str(exc.value)


def test_malformed_rules_file_on_the_cli_exits_2_with_one_line(tmp_path):
    rules = tmp_path / "extra.toml"
    rules.write_text('[[rule]]\nid = "x"\ntier = "sometimes"\naction = "remove"\nreason = "r"\nmatch = ["*.txt"]\n')
    res = run_cli("slim", str(tmp_path), "--profile", "generic", "--rules", str(rules), "--dry-run")
    assert res.returncode == 2
    assert "extra.toml:1: tier 'sometimes'" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--profile", "cobol", "--dry-run"], "unknown slim profile 'cobol'"),
    (["--profile", "generic"], "--out DIR"),
    (["--profile", "generic", "--mount-path", "opt", "--dry-run"], "absolute path"),
    (["--profile", "generic", "--beam-keep-chunk", "Attributes", "--dry-run"], "4 ASCII"),
    (["--profile", "generic", "--rules", "/nonexistent.toml", "--dry-run"], "no such rules file"),
])
def test_bad_usage_exits_2_without_traceback(tmp_path, args, message):
    res = run_cli("slim", str(tmp_path), *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_output_must_be_new_or_empty(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    res = run_cli("slim", str(tmp_path / "in"), "--profile", "generic", "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "not empty" in res.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_zip_input_is_refused_with_a_hint(tmp_path):
    import zipfile

    z = tmp_path / "layer.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("bootstrap", "#!/bin/sh\n")
    res = run_cli("slim", str(z), "--profile", "generic", "--dry-run")
    assert res.returncode == 2 and "Traceback" not in res.stderr


@pytest.mark.parametrize("pattern, path, hit", [
    ("src", "lib/a-1/src", True),
    ("/src", "lib/a-1/src", False),
    ("/src", "src", True),
    ("lib/*/src", "lib/a-1/src", True),
    ("lib/*/src", "x/lib/a/src", False),
    ("**/ebin/*.beam", "ebin/x.beam", True),
    ("**/ebin/*.beam", "a/b/ebin/x.beam", True),
    ("*.md", "a/b/README.md", True),
    ("*/**/tests", "python/numpy/tests", True),
    ("*/**/tests", "tests", False),
    ("*.py[co]", "a/b.pyc", True),
])
def test_globs_are_gitignore_like(pattern, path, hit):
    assert glob_match(pattern, path) is hit


@pytest.fixture
def node_tree(tmp_path):
    nm = tmp_path / "nodejs" / "node_modules"
    files = {
        "axios/package.json": "{}", "axios/index.js": "module.exports = 1", "axios/README.md": "# axios",
        "axios/index.d.ts": "export {}", "axios/lib/a.ts": "x", "axios/lib/a.js": "x", "axios/lib/only.ts": "x",
        "axios/test/t.js": "x", "axios/LICENSE": "MIT", "axios/assets/empty-module.js": "x",
        "axios/dist/a.js.map": "{}", ".bin/axios": "#!/bin/sh", "axios/Makefile": "all:",
    }
    for rel, text in files.items():
        (nm / rel).parent.mkdir(parents=True, exist_ok=True)
        (nm / rel).write_text(text)
    return tmp_path


def _removed(p) -> set[str]:
    return {a.path.split("node_modules/", 1)[1] for a in p.actions if a.op == "remove"}


def test_node_safe_tier_keeps_assets_licenses_and_lone_ts(node_tree):
    removed = _removed(plan(node_tree, load("node"), SlimOptions()))
    assert removed == {"axios/README.md", "axios/index.d.ts", "axios/lib/a.ts", "axios/test", ".bin", "axios/Makefile"}


def test_node_tiers_add_maps_then_assets(node_tree):
    caution = _removed(plan(node_tree, load("node"), SlimOptions(tier="caution")))
    danger = _removed(plan(node_tree, load("node"), SlimOptions(tier="danger")))
    assert "axios/dist/a.js.map" in caution and "axios/assets" not in caution
    assert "axios/assets" in danger


def test_keep_glob_protects_from_every_rule(node_tree):
    removed = _removed(plan(node_tree, load("node"), SlimOptions(keep=("**/axios/test/**", "README.md"))))
    assert "axios/test" not in removed and "axios/README.md" not in removed


def test_user_rules_file_adds_and_replaces_rules(node_tree, tmp_path):
    rules = tmp_path / "mine.toml"
    rules.write_text('[[rule]]\nid = "N4b"\ntier = "danger"\naction = "remove"\nreason = "off"\nmatch = ["*.ts"]\n'
                     '[[rule]]\nid = "U1"\ntier = "safe"\naction = "remove"\nreason = "licenses elsewhere"\nmatch = ["LICENSE"]\n')
    res = run_cli("slim", str(node_tree), "--profile", "node", "--rules", str(rules), "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    paths = {a["path"].split("node_modules/", 1)[1] for a in doc["actions"]}
    assert "axios/LICENSE" in paths and "axios/lib/a.ts" not in paths
    assert [r["tier"] for r in doc["not_applied"] if r["id"] == "N4b"] == ["danger"]


def test_sbcl_core_gets_a_compression_hint_not_a_deletion(tmp_path):
    (tmp_path / "lib" / "sbcl").mkdir(parents=True)
    (tmp_path / "lib" / "sbcl" / "sbcl.core").write_bytes(b"\0" * 1024)
    (tmp_path / "lib" / "sbcl" / "sbcl.o").write_bytes(b"\0" * 2048)
    p = plan(tmp_path, load("sbcl"), SlimOptions())
    assert [a.path for a in p.actions] == ["lib/sbcl/sbcl.o"]
    hint = next(f for f in p.findings if f.code == "LP609")
    assert ":compression t" in hint.hint


@pytest.fixture
def py_tree(tmp_path):
    site = tmp_path / "layer" / "python"
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (site / "pkg" / "__pycache__" / "__init__.cpython-38.pyc").write_bytes(b"old")
    (site / "pkg-1.0.dist-info").mkdir()
    (site / "pkg-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    return tmp_path / "layer"


def test_foreign_pyc_goes_only_when_the_runtime_names_a_python(py_tree):
    unknown = plan(py_tree, load("python"), SlimOptions())
    assert "LP612" in {f.code for f in unknown.findings} and not unknown.actions
    p312 = plan(py_tree, load("python"), SlimOptions(runtime="python3.12"))
    assert [a.path for a in p312.actions] == ["python/pkg/__pycache__/__init__.cpython-38.pyc"]
    assert "LP611" in {f.code for f in p312.findings}  # nothing left to skip compiling


def test_compile_pyc_precompiles_the_output(py_tree, tmp_path):
    import sys

    out = tmp_path / "out"
    runtime = "python%d.%d" % sys.version_info[:2]
    res = run_cli("slim", str(py_tree), "--profile", "python", "--runtime", runtime, "--compile-pyc", sys.executable,
                  "--out", str(out))
    assert res.returncode == 0, res.stderr
    tag = sys.implementation.cache_tag
    pyc = out / "python" / "pkg" / "__pycache__" / f"__init__.{tag}.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 1  # PEP 552: hash-based, unchecked
    assert (out / "python" / "pkg-1.0.dist-info" / "METADATA").is_file()


def test_compile_pyc_refuses_an_interpreter_of_another_version_in_one_line(py_tree, tmp_path):
    import sys

    other = "python3.10" if sys.version_info[:2] != (3, 10) else "python3.12"
    res = run_cli("slim", str(py_tree), "--profile", "python", "--runtime", other, "--compile-pyc", sys.executable,
                  "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert f"runs {other[6:]}" in res.stderr and not (tmp_path / "out").exists()
    res = run_cli("slim", str(py_tree), "--profile", "python", "--runtime", "python3.99", "--compile-pyc",
                  "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "no python3.99 found" in res.stderr and not (tmp_path / "out").exists()
    res = run_cli("slim", str(py_tree), "--profile", "python", "--compile-pyc", "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "needs --runtime python3.X" in res.stderr

def test_dedupe_plans_links_in_dry_run_and_writes_them_to_the_output_only(tmp_path):
    import os
    import subprocess
    import sys

    from tests.test_package import copies_tree

    tree = copies_tree(tmp_path / "t")
    size = (tree / "lib" / "libz.so").stat().st_size
    res = run_cli("slim", str(tree), "--profile", "generic", "--dedupe", "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    links = {a["path"]: a["note"] for a in doc["actions"] if a["op"] == "link"}
    assert links == {"lib/libz.so.1": "libz.so", "lib/libz.so.1.2.13": "libz.so"}
    assert next(r for r in doc["rules"] if r["id"] == "dedupe")["saved"] == 2 * (size - len("libz.so"))
    assert "LP614" in {f["code"] for f in doc["findings"]}
    out = tmp_path / "out"
    res = run_cli("slim", str(tree), "--profile", "generic", "--dedupe", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert {p.relative_to(out).as_posix(): os.readlink(p) for p in out.rglob("*") if p.is_symlink()} == links
    assert not [p for p in tree.rglob("*") if p.is_symlink()]
    code = "import ctypes, sys; ctypes.CDLL(sys.argv[1]).zlibVersion"
    for name in links:
        subprocess.run([sys.executable, "-c", code, str(out / name)], check=True, timeout=60)
