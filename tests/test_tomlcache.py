"""The parsed copy of the shipped TOML data: the same dicts as tomllib, parsed again after an edit,
and never a reason to fail (unwritable or corrupt cache, values marshal cannot hold)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from packer import tomlcache

RULES = Path(__file__).resolve().parent.parent / "rules" / "runtimes"


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str) -> dict:
        self.calls += 1
        return tomllib.loads(text)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAYERPACK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "toml"


@pytest.mark.parametrize("name", ["runtimes.toml", "version-ceilings.toml"])
def test_cached_copy_is_what_tomllib_parses_and_is_used_the_second_time(tmp_path: Path, cache: Path, name: str) -> None:
    src = tmp_path / name
    shutil.copy2(RULES / name, src)
    parse = Counting()
    first = tomlcache.load_toml(src, parse)
    second = tomlcache.load_toml(src, parse)
    assert first == second == tomllib.loads((RULES / name).read_text(encoding="utf-8"))
    assert parse.calls == 1
    assert (cache / f"{name}.marshal").is_file()


def test_an_edited_file_is_parsed_again(tmp_path: Path, cache: Path) -> None:
    src = tmp_path / "data.toml"
    src.write_text('a = 1\n')
    parse = Counting()
    assert tomlcache.load_toml(src, parse) == {"a": 1}
    src.write_text('a = 22\n')
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 1_000_000_000))
    assert tomlcache.load_toml(src, parse) == {"a": 22}
    assert parse.calls == 2


def test_corrupt_or_unwritable_cache_and_dates_still_give_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "data.toml"
    src.write_text('a = 1\nwhen = 2024-01-02\n')  # a date: marshal cannot hold it, so no copy is kept
    monkeypatch.setenv("LAYERPACK_CACHE_DIR", str(tmp_path / "c"))
    parse = Counting()
    assert tomlcache.load_toml(src, parse)["a"] == 1
    assert tomlcache.load_toml(src, parse)["a"] == 1
    assert parse.calls == 2 and not (tmp_path / "c" / "toml" / "data.toml.marshal").exists()

    plain = tmp_path / "plain.toml"
    plain.write_text('b = [1, 2]\n')
    copy = tmp_path / "c" / "toml" / "plain.toml.marshal"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(b"\x00garbage")
    assert tomlcache.load_toml(plain, parse) == {"b": [1, 2]}  # corrupt copy ignored and replaced
    assert tomlcache.load_toml(plain, parse) == {"b": [1, 2]} and parse.calls == 3

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LAYERPACK_CACHE_DIR", str(tmp_path / "file"))  # a file: nothing can be written under it
    assert tomlcache.load_toml(plain, parse) == {"b": [1, 2]}


def test_analyze_with_a_warm_copy_gives_the_same_report_without_importing_tomllib(tmp_path: Path) -> None:
    env = {**os.environ, "LAYERPACK_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}
    probe = ("import sys, runpy; sys.argv = ['layerpack', 'analyze', '/usr/bin/true', '--json'];\n"
             "try:\n    runpy.run_module('packer', run_name='__main__')\n"
             "finally:\n    sys.stderr.write('tomllib imported: %s' % ('tomllib' in sys.modules))")
    cold = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=tmp_path)
    warm = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert cold.stdout == warm.stdout and '"schema":"layerpack.analyze/1"' in warm.stdout
    assert cold.stderr.endswith("tomllib imported: True")
    assert warm.stderr.endswith("tomllib imported: False")
