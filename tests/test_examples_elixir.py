"""examples/elixir: Debian's OTP + Elixir, slimmed and vendored, serve events from one VM."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.conftest import ROOT
from tests.examples_support import run_example

EXAMPLE = ROOT / "examples" / "elixir"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    return run_example("elixir", tmp_path_factory, "erl", "elixirc", timeout=600)



def test_elixir_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_elixir_layer_answers_with_the_event(ran):
    _, work = ran
    answer = json.loads((work / "response.out").read_text())
    assert answer["runtime"].startswith("Elixir ")
    assert answer["event"] == {"hello": "elixir", "n": 42}


def test_slimmed_layer_is_well_under_the_full_distribution(ran):
    _, work = ran
    with zipfile.ZipFile(work / "layer.zip") as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
        names = zf.namelist()
    full = sum(p.stat().st_size for p in (work / "tree").rglob("*") if p.is_file() and not p.is_symlink())
    assert unzipped < full / 2
    assert "bootstrap" in names and not any("/wx-" in n or n.endswith(".erl") for n in names)
