"""analyze on layers made by `pip install --target python/` of real PyPI wheels, judged by a real
CPython of the runtime's version importing them with Lambda's sys.path entries.

Wheels are downloaded at test time into ~/.cache/layerpack-test/wheels (never committed) and
installed by pip itself, as users build layers. The judge's verdict (the import works or fails) must
equal analyze's (exit 0 or 1 with an error naming the module)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

CACHE = Path(os.environ.get("LAYERPACK_WHEEL_CACHE", Path.home() / ".cache" / "layerpack-test" / "wheels"))
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64", "musl": "musllinux_1_2_x86_64",
             "windows": "win_amd64", "macos": "macosx_11_0_arm64"}


def interpreter(version: str) -> str | None:
    """A real CPython `version` ("3.11") on this machine: the one running the tests, one on PATH, or
    a pyenv build."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    builds = sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / f"{version}.*" / "bin" / f"python{version}")))
    if builds:
        return builds[-1]
    found = shutil.which(f"python{version}")  # not a pyenv shim: it may run another version
    return found if found and "/shims/" not in found else None


def pip_layer(dest: Path, requirement: str, python: str, arch: str = "x86_64", site: str = "python") -> Path:
    """`pip install --target dest/<site>` of one wheel and its dependencies for CPython `python` on `arch`, as users
    build layers on a machine of another kind (pip's --platform/--python-version)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    flags = ["--only-binary=:all:", "--platform", PLATFORMS[arch], "--python-version", python,
             "--implementation", "cp"]
    dl = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(CACHE), *flags, requirement],
                        capture_output=True, text=True)
    assert dl.returncode == 0, f"pip download {requirement} failed (needs PyPI): {dl.stderr[-500:]}"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(CACHE),
                           "--ignore-requires-python", "--target", str(dest / site), *flags, requirement],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-500:]
    return dest


def lambda_sys_path(layer: Path, version: str) -> list[str]:
    """A layer's entries on a python3.X runtime's sys.path (AWS: /opt/python and
    /opt/python/lib/python3.X/site-packages)."""
    return [str(layer / "python"), str(layer / "python" / "lib" / f"python{version}" / "site-packages")]


def judge_import(layer: Path, version: str, module: str) -> tuple[bool, str]:
    """Import `module` with the real CPython `version` and only the layer's sys.path entries (-S -E:
    no site-packages of this machine, no PYTHON* variables). (imported, last stderr line)."""
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no CPython {version} on this machine")
    code = f"import sys; sys.path[:0] = {lambda_sys_path(layer, version)!r}; import {module}"
    res = subprocess.run([python, "-S", "-E", "-c", code], capture_output=True, text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    return res.returncode == 0, lines[-1] if lines else ""


def analyze_json(layer: Path, runtime: str, *extra: str) -> tuple[int, dict]:
    res = run_cli("analyze", str(layer), "--runtime", runtime, "--json", *extra)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def errors(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["severity"] == "error"]


PYDANTIC_CORE = "pydantic-core==2.27.2"  # a Rust extension (PyO3), one module per CPython version


def test_extension_built_for_another_cpython_is_an_error_as_the_import_fails(tmp_path: Path) -> None:
    layer = pip_layer(tmp_path / "layer", PYDANTIC_CORE, "3.12")
    ok, why = judge_import(layer, "3.11", "pydantic_core")
    assert not ok and "No module named 'pydantic_core._pydantic_core'" in why
    rc, doc = analyze_json(layer, "python3.11")
    assert rc == 1
    [err] = errors(doc)
    assert err["code"] == "LP310" and err["path"].endswith("_pydantic_core.cpython-312-x86_64-linux-gnu.so")
    assert "CPython 3.12 x86_64" in err["message"]


def test_extension_for_the_runtimes_cpython_looks_good_as_the_import_works(tmp_path: Path) -> None:
    layer = pip_layer(tmp_path / "layer", PYDANTIC_CORE, "3.11")
    assert judge_import(layer, "3.11", "pydantic_core")[0]
    rc, doc = analyze_json(layer, "python3.11")
    assert rc == 0 and errors(doc) == []


def test_a_variant_for_the_runtime_beside_others_is_no_error_and_the_others_are_one_info_line(tmp_path: Path) -> None:
    layer = pip_layer(tmp_path / "layer", PYDANTIC_CORE, "3.11")
    other = pip_layer(tmp_path / "other", PYDANTIC_CORE, "3.12")  # pip --target will not add to a package
    for so in (other / "python" / "pydantic_core").glob("*.so"):
        shutil.copy2(so, layer / "python" / "pydantic_core" / so.name)
    assert judge_import(layer, "3.11", "pydantic_core")[0]
    rc, doc = analyze_json(layer, "python3.11")
    assert rc == 0
    infos = [f for f in doc["findings"] if f["code"] == "LP117"]
    assert len(infos) == 1 and infos[0]["data"]["files"] == ["python/pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so"]
    assert all(not f["path"].endswith("cpython-312-x86_64-linux-gnu.so") for f in doc["files"])  # not analysed as loaded


def test_site_packages_of_another_python_only_is_an_error_as_nothing_imports(tmp_path: Path) -> None:
    layer = pip_layer(tmp_path / "layer", PYDANTIC_CORE, "3.12", site="python/lib/python3.12/site-packages")
    ok, why = judge_import(layer, "3.11", "pydantic_core")
    assert not ok and "No module named 'pydantic_core'" in why
    rc, doc = analyze_json(layer, "python3.11")
    assert rc == 1 and [f["code"] for f in errors(doc)] == ["LP429"]
    # and the runtime whose site-packages it is imports it (for the same tree)
    assert analyze_json(layer, "python3.12")[0] == 0


def test_target_arch_is_what_the_runtime_would_import_and_says_why(tmp_path: Path) -> None:
    layer = pip_layer(tmp_path / "layer", PYDANTIC_CORE, "3.11", arch="arm64")
    rc, doc = analyze_json(layer, "python3.11")
    assert doc["runtime"]["arch"] == "arm64" and "aarch64-linux-gnu.so" in doc["runtime"]["arch_source"]
    assert rc == 0
    # on x86_64 the x86_64 interpreter finds no module of its own machine: the import fails
    ok, why = judge_import(layer, "3.11", "pydantic_core")
    assert not ok and "No module named" in why
    rc, doc = analyze_json(layer, "python3.11", "--arch", "x86_64")
    assert rc == 1 and [f["code"] for f in errors(doc)] == ["LP310"]


def test_grafted_libraries_are_judged_through_the_module_that_loads_them(tmp_path: Path) -> None:
    """numpy 1.23.5's wheel grafts libgfortran, which needs its sibling libquadmath and has no RPATH
    of its own: the loader finds the sibling through the extension module's DT_RPATH (inherited
    down the chain). Analysed as a root of its own it was 'missing' (LP101) although numpy imports."""
    layer = pip_layer(tmp_path / "layer", "numpy==1.23.5", "3.11")
    grafted = next((layer / "python" / "numpy.libs").glob("libgfortran-*.so*"))
    assert not any(line.split()[1] in ("(RPATH)", "(RUNPATH)") for line in _dynamic(grafted))
    ok, why = judge_import(layer, "3.11", "numpy.linalg")
    assert ok, why
    rc, doc = analyze_json(layer, "python3.11")
    assert [f["code"] for f in errors(doc)] == [] and rc == 0


def _dynamic(path: Path) -> list[str]:
    res = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True)
    return [line for line in res.stdout.splitlines() if line.strip().startswith("0x")]


def test_musllinux_wheel_on_a_glibc_runtime_is_an_error_as_the_import_fails(tmp_path: Path) -> None:
    layer = pip_layer(tmp_path / "layer", "orjson==3.10.15", "3.11", arch="musl")
    ok, why = judge_import(layer, "3.11", "orjson")
    assert not ok and "No module named 'orjson.orjson'" in why
    rc, doc = analyze_json(layer, "python3.11")
    assert rc == 1 and [(f["code"], f["data"]["built_for"]) for f in errors(doc)] == [("LP310", "CPython 3.11 x86_64 musl")]


def test_a_library_another_module_loads_first_is_not_verified_and_missing_everywhere_is_an_error(tmp_path: Path) -> None:
    """scipy 1.7.3 and numpy (cp310) graft the same libquadmath-<hash>.so. Without scipy's copy,
    scipy.libs/libgfortran still works in Python because scipy imports numpy first, whose copy ld.so
    reuses by name: analyze cannot know the import order, so it says "not verified" (LP116, no
    error). Without both copies the import fails and analyze says LP101."""
    layer = pip_layer(tmp_path / "layer", "scipy==1.7.3", "3.10")
    for lib in (layer / "python" / "scipy.libs").glob("libquadmath-*"):
        lib.unlink()
    ok, why = judge_import(layer, "3.10", "scipy.linalg")
    assert ok, why
    rc, doc = analyze_json(layer, "python3.10")
    assert rc == 0 and errors(doc) == []
    assert {f["code"] for f in doc["findings"] if f["severity"] == "warning"} >= {"LP116"}
    assert doc["summary"]["unverified"] >= 1
    for lib in (layer / "python" / "numpy.libs").glob("libquadmath-*"):
        lib.unlink()
    ok, why = judge_import(layer, "3.10", "scipy.linalg")
    assert not ok and "libquadmath" in why
    rc, doc = analyze_json(layer, "python3.10")
    assert rc == 1 and {f["code"] for f in errors(doc)} == {"LP101"}
    assert all("libquadmath" in f["data"]["library"] for f in errors(doc))


@pytest.mark.parametrize("platform,built_for", [("windows", "Windows"), ("macos", "CPython 3.11 macOS")])
def test_a_layer_pip_built_on_windows_or_macos_is_an_error_as_the_import_fails(tmp_path: Path, platform: str,
                                                                                 built_for: str) -> None:
    layer = pip_layer(tmp_path / "layer", PYDANTIC_CORE, "3.11", arch=platform)
    ok, why = judge_import(layer, "3.11", "pydantic_core")
    assert not ok and "No module named 'pydantic_core._pydantic_core'" in why
    rc, doc = analyze_json(layer, "python3.11")
    assert rc == 1 and [(f["code"], f["data"]["built_for"]) for f in errors(doc)] == [("LP310", built_for)]
