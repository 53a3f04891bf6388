"""examples/sbcl: a save-lisp-and-die bootstrap survives slim and vendor byte-for-byte and runs."""

from __future__ import annotations

import json

import pytest

from packer.elf.reader import read_path
from tests.conftest import ROOT
from tests.emulator_support import sandbox_ready  # noqa: F401 (fixture)
from tests.examples_support import bullseye, invoke_on_image, run_example, said  # noqa: F401 (fixtures)
from tests.images_support import bullseye_image, bullseye_tar, registry  # noqa: F401 (fixtures)

EXAMPLE = ROOT / "examples" / "sbcl"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    return run_example("sbcl", tmp_path_factory, "sbcl", timeout=600)



def test_sbcl_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("kind", ["plain", "compressed"])
def test_sbcl_core_is_kept_byte_for_byte_and_answers(ran, kind):
    _, work = ran
    assert (work / kind / "bootstrap").read_bytes() == (work / f"{kind}-layer" / "bootstrap").read_bytes()
    answer = json.loads((work / f"{kind}.out").read_text())
    assert answer["implementation"].startswith("SBCL ")
    assert answer["factorial_25"] == 15511210043330985984000000


def test_sbcl_payload_is_reported_and_compression_shrinks_the_layer(ran):
    proc, work = ran
    assert "LP110 info bootstrap: carries" in said(proc)
    assert (work / "compressed.zip").stat().st_size < (work / "plain.zip").stat().st_size
    assert (work / "compressed" / "bootstrap").stat().st_size * 3 < (work / "plain" / "bootstrap").stat().st_size


def test_sbcl_on_provided_al2_answers_with_the_bundled_glibc_and_its_core_intact(ran):
    proc, work = ran
    assert "LP201 error bootstrap: needs GLIBC_2.34 from libc.so.6" in said(proc)
    layer = work / "al2-layer"
    bundle = next(d.name for d in layer.iterdir() if d.name.startswith("glibc-"))
    assert read_path(layer / "bin" / "bootstrap.real").interp == f"/opt/{bundle}/ld.so"
    assert (layer / "bin" / "bootstrap.real").stat().st_size == (work / "plain" / "bootstrap").stat().st_size
    answer = json.loads((work / "al2.out").read_text())
    assert answer["factorial_25"] == 15511210043330985984000000


def test_bundled_sbcl_layer_answers_on_debian_11(ran, bullseye):
    """The SBCL runtime needs GLIBC_2.34; Debian 11 has 2.31: the bundled layer answers there."""
    _, work = ran
    proc = invoke_on_image(bullseye, work / "al2.zip", EXAMPLE / "event.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["factorial_25"] == 15511210043330985984000000
    assert "LP823" not in proc.stderr
