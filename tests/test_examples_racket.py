"""examples/racket: analyze names hypot@GLIBC_2.35; `vendor --bundle-libc` rewrites the starter's and
the VM's interpreter, and the bundled layer answers.

Debian's racket is ~330 MB; .ci/run installs it (the issue wants the bundled layer proven in CI);
elsewhere these tests skip without it, and examples/racket/expected-output.txt holds a run's output."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from packer.elf.reader import read_path
from tests.conftest import ROOT
from tests.emulator_support import sandbox_ready  # noqa: F401 (fixture)
from tests.examples_support import bullseye, invoke_on_image, run_example, said  # noqa: F401 (fixtures)
from tests.images_support import bullseye_image, bullseye_tar, registry  # noqa: F401 (fixtures)

EXAMPLE = ROOT / "examples" / "racket"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    if not (shutil.which("raco") and shutil.which("racket")):
        if os.environ.get("CI"):
            pytest.fail("racket is not installed: .ci/run must install it")
        pytest.skip("racket is not installed (CI installs it); see examples/racket/expected-output.txt")
    return run_example("racket", tmp_path_factory, timeout=900)


def test_racket_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_racket_vm_needs_glibc_235_and_the_symbol_is_named(ran):
    proc, _ = ran
    assert "lib/plt/racketcs-8.7: needs GLIBC_2.35 from libm.so.6" in said(proc)
    assert "hypot@GLIBC_2.35" in said(proc)


def test_starter_and_vm_both_ask_for_the_bundled_loader(ran):
    _, work = ran
    layer = work / "bundled"
    bundle = next(d.name for d in layer.iterdir() if d.name.startswith("glibc-"))
    for rel in ("bin/bootstrap", "lib/plt/racketcs-8.7"):
        assert read_path(layer / rel).interp == f"/opt/{bundle}/ld.so"
    assert os.readlink(layer / "bootstrap") == "bin/bootstrap"


def test_bundled_racket_layer_answers(ran):
    _, work = ran
    answer = json.loads((work / "bundled.out").read_text())
    assert answer["implementation"].startswith("Racket ") and sorted(answer["keys"]) == ["a", "b"]


def test_expected_output_is_checked_in():
    text = (EXAMPLE / "expected-output.txt").read_text()
    assert "hypot@GLIBC_2.35" in text and '"implementation":"Racket' in text and "PT_INTERP=/opt/glibc-" in text


def test_bundled_racket_layer_answers_on_debian_11(ran, bullseye):
    """Racket needs GLIBC_2.35; Debian 11 has 2.31: starter and VM both run on the bundled glibc."""
    _, work = ran
    # Racket looks up its user's home directory; Lambda's /etc/passwd has sbx_user1051, the test
    # image's has no entry for that uid, so HOME stands in for it
    proc = invoke_on_image(bullseye, work / "bundled.zip", EXAMPLE / "event.json", "--memory", "512", "--env", "HOME=/tmp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout)
    assert answer["implementation"].startswith("Racket ") and sorted(answer["keys"]) == ["a", "b"]
    assert "LP823" not in proc.stderr
