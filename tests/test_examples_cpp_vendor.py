"""examples/cpp-vendor: a missing library is vendored; a too-new glibc is bundled; both run."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ROOT
from tests.examples_support import run_example, said

EXAMPLE = ROOT / "examples" / "cpp-vendor"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    if not (os.path.exists("/usr/include/gmpxx.h")):
        if os.environ.get("CI"):
            pytest.fail("gmpxx.h missing: .ci/run must install libgmp-dev")
        pytest.skip("libgmp-dev not installed")
    return run_example("cpp-vendor", tmp_path_factory, "gcc", "g++", timeout=300)



def test_cpp_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_missing_libgmpxx_is_reported_then_vendored_and_runs(ran):
    proc, work = ran
    assert "LP102 error bin/factorial: needs libgmpxx.so.4" in said(proc)
    assert (work / "factorial-layer" / "lib" / "libgmpxx.so.4").exists()
    answer = json.loads((work / "factorial.out").read_text())
    assert answer == {"n": 30, "factorial": "265252859812191058636308480000000"}


def test_glibc_too_new_is_bundled_with_its_loader_and_runs(ran):
    proc, work = ran
    assert "arc4random@GLIBC_2.36" in said(proc) and "LP901" in said(proc)
    bundle = [d for d in (work / "random-layer").iterdir() if d.name.startswith("glibc-")]
    assert len(bundle) == 1 and (bundle[0] / "ld-linux-x86-64.so.2").exists()
    assert not (work / "random-layer" / "bin").exists()  # no wrapper: the program itself is the bootstrap
    answer = json.loads((work / "random.out").read_text())
    assert set(answer) == {"random", "below_100"} and 0 <= answer["below_100"] < 100
