"""What users get: the wheel and sdist as `python -m build` makes them, installed by pip into a fresh venv and
run from outside the checkout.

Why: every other test runs against the editable checkout, where `rules/` sits beside the package. The first
release's wheel could not find its slim profiles ("choose one of " — an empty list) and the suite stayed
green. These tests are the judge for packaging: pip's own install, not our idea of it (pypa/build keeps the
same kind of test in tests/test_self_packaging.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, require_tool

pytestmark = pytest.mark.slow


def _rules_files() -> list[str]:
    """Every file under rules/, as paths relative to rules/ (the repository's own data, links followed)."""
    base = ROOT / "rules"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist) built by pypa/build: the sdist first, then the wheel from the unpacked sdist, so a
    file missing from the sdist also breaks the wheel."""
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheel = next(out.glob("lambda_layerpack-*.whl"))
    sdist = next(out.glob("lambda_layerpack-*.tar.gz"))
    return wheel, sdist


@pytest.fixture(scope="module")
def installed(dists: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies as pip installs them;
    returns the venv's `layerpack` script."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                          str(dists[0])], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return venv / "bin" / "layerpack"


def _run(exe: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["NO_COLOR"] = "1"
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_distribution_name_is_ours_and_the_version_is_0_2_0(dists: tuple[Path, Path]) -> None:
    wheel, sdist = dists
    assert wheel.name.startswith("lambda_layerpack-0.2.0-")
    assert sdist.name == "lambda_layerpack-0.2.0.tar.gz"
    meta = zipfile.ZipFile(wheel).read("lambda_layerpack-0.2.0.dist-info/METADATA").decode()
    assert "Name: lambda-layerpack" in meta
    assert "zlib-ng" in meta  # the fast deflate backend is a plain dependency, not an extra


def test_every_rules_file_is_in_the_wheel_and_the_sdist(dists: tuple[Path, Path]) -> None:
    wheel, sdist = dists
    expected = _rules_files()
    assert "runtimes/runtimes.toml" in expected and "profiles/erlang.toml" in expected
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as tar:
        sdist_names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    missing_wheel = [f for f in expected if f"packer/rules/{f}" not in wheel_names]
    missing_sdist = [f for f in expected if f"packer/rules/{f}" not in sdist_names]
    assert missing_wheel == [] and missing_sdist == []


def test_installed_wheel_lists_runtimes_and_codes_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    res = _run(installed, "runtimes", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    rows = doc["runtimes"] if isinstance(doc, dict) else doc
    assert "provided.al2023" in {r["runtime"] for r in rows}
    res = _run(installed, "codes", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "LP201" in res.stdout and "LP514" in res.stdout


def test_installed_wheel_analyzes_a_binary(installed: Path, tmp_path: Path) -> None:
    prog = tmp_path / "needs-glibc236"
    shutil.copy2(FIXTURES / "bin" / "x86_64" / "needs-glibc236", prog)
    res = _run(installed, "analyze", str(prog), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "arc4random@GLIBC_2.36" in res.stdout


@pytest.mark.parametrize("profile", ["erlang", "elixir"])
def test_installed_wheel_finds_its_slim_profiles(installed: Path, tmp_path: Path, profile: str) -> None:
    require_tool("erl")
    tree = tmp_path / "erlang"
    shutil.copytree("/usr/lib/erlang", tree, symlinks=True)
    res = _run(installed, "slim", str(tree), "--profile", profile, "--dry-run", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "unknown slim profile" not in res.stderr
    assert f"profile {profile}" in res.stdout or profile in res.stdout


def test_installed_wheel_builds_with_the_fast_backend(installed: Path, tmp_path: Path) -> None:
    tree = tmp_path / "layer"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "hello").write_text("#!/bin/sh\necho hello\n" * 2000)
    out = tmp_path / "layer.zip"
    res = _run(installed, "build", str(tree), "-o", str(out), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["backend"] == "zlib-ng"
    require_tool("unzip")
    assert subprocess.run(["unzip", "-tqq", str(out)], capture_output=True).returncode == 0
