"""Bytecode a cold start really uses: slim --compile-pyc -> build -> unzip -> `python -v` decides.

The judge is the real interpreter of the runtime's version importing from the unzipped layer: with
hash-based .pyc every module comes from its .pyc ("matches"), with pip's timestamp-based .pyc every
one is "stale" because the zip dates every .py 1980-01-01, and `build` says so (LP613). attrs is a
real wheel from PyPI (cached under ~/.cache/layerpack-test/wheels, never committed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from packer.slim.compile import candidates, interpreter_version
from tests.conftest import require_tool, run_cli

WHEELS = Path.home() / ".cache" / "layerpack-test" / "wheels"
DEBIAN_PYTHON = "/usr/bin/python3.11"


def _python(version: str, path: str | None = None) -> str:
    """The interpreter for a runtime: `path` when given, else the first python{version} found."""
    found = [path] if path else candidates(version)
    for exe in found:
        if exe and os.access(exe, os.X_OK):
            try:
                if interpreter_version(exe) == version:
                    return exe
            except Exception:
                continue
    if os.environ.get("CI"):
        pytest.fail(f"no CPython {version} ({path or 'python' + version}); .ci/run must install it")
    pytest.skip(f"no CPython {version} here")


def _attrs_wheel() -> Path:
    """A real attrs wheel from PyPI, downloaded once."""
    have = sorted(WHEELS.glob("attrs-*-py3-none-any.whl"))
    if have:
        return have[-1]
    WHEELS.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                          "--dest", str(WHEELS), "attrs"], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        pytest.fail(f"pip download attrs failed (PyPI must be reachable): {res.stderr[-400:]}")
    return sorted(WHEELS.glob("attrs-*-py3-none-any.whl"))[-1]


def _layer(base: Path, python: str) -> Path:
    """layer/python: attrs installed by pip --target, plus a package of our own, compiled the way pip
    does it (timestamp-based .pyc) by the runtime's interpreter."""
    site = base / "layer" / "python"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-index", "--no-deps",
                          "--target", str(site), str(_attrs_wheel())], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    pkg = site / "lp_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from lp_demo.core import area\n")
    (pkg / "core.py").write_text("import attr\n\n\n@attr.s\nclass Box:\n    w = attr.ib()\n    h = attr.ib()\n\n\n"
                                 "def area(w, h):\n    b = Box(w, h)\n    return b.w * b.h\n")
    (site / "lp_demo-1.0.dist-info").mkdir()
    (site / "lp_demo-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: lp-demo\nVersion: 1.0\n")
    subprocess.run([python, "-m", "compileall", "-q", str(site)], check=True, timeout=300)
    return base / "layer"


def _build_and_unzip(tree: Path, runtime: str, tmp: Path, env: dict | None = None) -> tuple[dict, Path]:
    unzip = require_tool("unzip")
    zip_path = tmp / f"{tree.name}.zip"
    res = run_cli("build", str(tree), "-o", str(zip_path), "--runtime", runtime, "--json", env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    dest = tmp / f"{tree.name}-unzipped"
    subprocess.run([unzip, "-q", str(zip_path), "-d", str(dest)], check=True, env={**os.environ, "TZ": "UTC"})
    return json.loads(res.stdout), dest


def _verbose_import(python: str, site: Path) -> list[str]:
    """`python -v` importing from the unzipped tree as Lambda would (sys.path at it, nothing written):
    its lines about the tree, and its "bytecode is stale for 'module'" lines (which name no path)."""
    code = "import lp_demo, attr; assert lp_demo.area(3, 4) == 12; print(attr.__version__)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run([python, "-v", "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return [line for line in res.stderr.splitlines() if str(site) in line or "stale" in line]


def _code_objects(lines: list[str]) -> list[str]:
    """Where each module of the tree was loaded from: its .pyc, or its .py (compiled now)."""
    return [m.group(1) for line in lines if (m := re.match(r"# code object from '?([^']+)'?", line))]


PYTHONS = [pytest.param("3.12", None, id="pyenv-python3.12"), pytest.param("3.11", DEBIAN_PYTHON, id="debian-python3.11")]


@pytest.mark.parametrize(("version", "path"), PYTHONS)
def test_compiled_by_slim_every_pyc_is_used_after_build_and_unzip(tmp_path, version, path):
    python = _python(version, path)
    layer = _layer(tmp_path, python)
    out = tmp_path / "slim"
    res = run_cli("slim", str(layer), "--profile", "python", "--runtime", f"python{version}",
                  "--compile-pyc", *([path] if path else []), "--out", str(out), "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["compile_pyc"] == (path or python)
    doc, unzipped = _build_and_unzip(out, f"python{version}", tmp_path)
    assert "LP613" not in {f["code"] for f in doc["findings"]}
    lines = _verbose_import(python, unzipped / "python")
    loaded = _code_objects(lines)
    assert len(loaded) >= 5 and all(p.endswith(".pyc") for p in loaded), loaded
    assert sum(" matches " in line for line in lines) == len(loaded)
    assert not [line for line in lines if "stale" in line]


@pytest.mark.parametrize(("version", "path"), PYTHONS)
def test_timestamp_pyc_are_stale_after_build_and_build_says_so(tmp_path, version, path):
    python = _python(version, path)
    layer = _layer(tmp_path, python)
    doc, unzipped = _build_and_unzip(layer, f"python{version}", tmp_path)
    hits = [f for f in doc["findings"] if f["code"] == "LP613"]
    total = len(list((layer / "python").rglob(f"*.cpython-{version.replace('.', '')}.pyc")))
    assert len(hits) == 1 and hits[0]["data"]["count"] == total > 5, hits
    lines = _verbose_import(python, unzipped / "python")
    loaded = _code_objects(lines)
    assert len(loaded) >= 5 and all(p.endswith(".py") for p in loaded), loaded
    assert sum("bytecode is stale" in line for line in lines) == len(loaded)


def test_check_and_analyze_report_stale_pyc_once_for_the_tree(tmp_path):
    python = _python("3.11", DEBIAN_PYTHON)
    layer = _layer(tmp_path, python)
    for cmd in (("check", str(layer)), ("analyze", str(layer))):
        res = run_cli(*cmd, "--runtime", "python3.11", "--json", timeout=300)
        codes = [f["code"] for f in json.loads(res.stdout)["findings"]]
        assert codes.count("LP613") == 1, (cmd, res.stdout[-1000:])
    res = run_cli("check", str(layer), "--runtime", "python3.12", "--json")  # other tag: not read, not stale
    assert "LP613" not in {f["code"] for f in json.loads(res.stdout)["findings"]}


def test_timestamp_pyc_whose_source_has_the_zip_date_is_used_and_not_reported(tmp_path):
    """The boundary: a timestamp-based .pyc recording exactly the zip's date (1980-01-01) is valid."""
    python = _python("3.11", DEBIAN_PYTHON)
    layer = _layer(tmp_path, python)
    for p in (layer / "python").rglob("*.py"):
        os.utime(p, (315532800, 315532800))
    subprocess.run([python, "-m", "compileall", "-q", "-f", str(layer / "python")], check=True, timeout=300)
    doc, unzipped = _build_and_unzip(layer, "python3.11", tmp_path)
    assert "LP613" not in {f["code"] for f in doc["findings"]}
    lines = _verbose_import(python, unzipped / "python")
    loaded = _code_objects(lines)
    assert len(loaded) >= 5 and all(p.endswith(".pyc") for p in loaded) and not [x for x in lines if "stale" in x]
    # and the same tree zipped with another date: stale, and build says so
    later = tmp_path / "later"
    later.mkdir()
    doc, unzipped = _build_and_unzip(layer, "python3.11", later, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert [f["code"] for f in doc["findings"]].count("LP613") == 1
    assert all(p.endswith(".py") for p in _code_objects(_verbose_import(python, unzipped / "python")))


def test_a_zip_keeps_its_member_dates_so_zip_minus_r_is_not_reported(tmp_path):
    """A zip made by Info-ZIP `zip -r` keeps the mtimes pip's .pyc recorded: nothing is stale."""
    zip_tool = require_tool("zip")
    python = _python("3.11", DEBIAN_PYTHON)
    layer = _layer(tmp_path, python)
    z = tmp_path / "plain.zip"
    subprocess.run([zip_tool, "-q", "-r", str(z), "python"], cwd=layer, check=True)
    res = run_cli("check", str(z), "--runtime", "python3.11", "--json")
    assert "LP613" not in {f["code"] for f in json.loads(res.stdout)["findings"]}, res.stdout[-800:]
    doc, _ = _build_and_unzip(layer, "python3.11", tmp_path)  # layerpack's zip of the same tree: stale
    res = run_cli("check", str(tmp_path / "layer.zip"), "--runtime", "python3.11", "--json")
    assert [f["code"] for f in json.loads(res.stdout)["findings"]].count("LP613") == 1


def test_lp611_fires_when_no_pyc_has_the_runtimes_cache_tag(tmp_path):
    """pip run by python3.11 writes cpython-311 .pyc; python3.12 never reads them (python -v shows
    every module compiled from source), so slimming for python3.12 says so; for python3.11 it does not."""
    py311 = _python("3.11", DEBIAN_PYTHON)
    py312 = _python("3.12")
    layer = _layer(tmp_path, py311)
    loaded = _code_objects(_verbose_import(py312, layer / "python"))
    assert len(loaded) >= 5 and all(p.endswith(".py") for p in loaded)

    def lp611(*args: str, profile: str = "python") -> list[dict]:
        res = run_cli("slim", str(layer), "--profile", profile, *args, "--dry-run", "--json", timeout=300)
        assert res.returncode == 0, res.stderr
        return [f for f in json.loads(res.stdout)["findings"] if f["code"] == "LP611"]

    hit = lp611("--runtime", "python3.12")
    assert len(hit) == 1 and "cpython-311 only" in hit[0]["message"] and " ms " in hit[0]["message"]
    assert lp611("--runtime", "python3.11") == []
    kept = lp611("--runtime", "python3.12", profile="generic")  # no rule removes the cpython-311 files here
    assert len(kept) == 1 and "cpython-311 only" in kept[0]["message"]
    assert lp611("--runtime", "python3.12", "--compile-pyc", py312) == []
