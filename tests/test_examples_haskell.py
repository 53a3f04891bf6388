"""examples/haskell: a GHC runtime answers on provided.al2023 as built, on provided.al2 after
`vendor --bundle-libc`, and statically linked. GHC compiles twice per session (~15 s)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ROOT
from tests.emulator_support import sandbox_ready  # noqa: F401 (fixture)
from tests.examples_support import bullseye, invoke_on_image, run_example, said  # noqa: F401 (fixtures)
from tests.images_support import bullseye_image, bullseye_tar, registry  # noqa: F401 (fixtures)

FACTORIAL_25 = 15511210043330985984000000
EVENT = {"hello": "haskell", "n": [1, 2, 3]}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    for lib in ("http-client", "zlib"):
        if not os.path.isdir(f"/usr/share/doc/libghc-{lib}-dev"):
            if os.environ.get("CI"):
                pytest.fail(f"libghc-{lib}-dev missing: .ci/run must install it")
            pytest.skip(f"libghc-{lib}-dev not installed (CI installs it)")
    return run_example("haskell", tmp_path_factory, "ghc", timeout=900)


def _answer(work, name: str) -> dict:
    answer = json.loads((work / f"{name}.out").read_text())
    assert answer["implementation"] == "GHC"
    return answer


def test_haskell_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("name", ["al2023", "al2", "static"])
def test_haskell_layer_echoes_the_event_with_gmp_and_zlib_results(ran, name):
    _, work = ran
    answer = _answer(work, name)
    assert answer["echo"] == EVENT
    assert answer["factorial_25"] == FACTORIAL_25 and answer["gzip_roundtrip"] is True


def test_provided_al2_lacks_libffi_8_and_the_glibc_until_bundled(ran):
    proc, _ = ran
    text = said(proc)
    assert "LP102 error bootstrap: needs libffi.so.8" in text
    assert "LP201 error bootstrap: needs GLIBC_2.34 from libc.so.6" in text and "LP901" in text


def test_static_build_is_reported_as_static(ran):
    proc, work = ran
    assert "LP106 info bootstrap: is statically linked" in said(proc)
    assert "getaddrinfo" in (work / "static-link.log").read_text()


def test_bundled_haskell_layer_answers_on_debian_11_where_the_unbundled_one_cannot_load(ran, bullseye):
    """Debian 11's glibc 2.31 is older than the 2.36 GHC's output was linked against (and it has
    libffi.so.7, not .8): the layer as built cannot load there; the --bundle-libc layer answers."""
    _, work = ran
    event = ROOT / "examples" / "haskell" / "event.json"
    plain = invoke_on_image(bullseye, work / "al2023.zip", event)
    assert plain.returncode != 0 and ("GLIBC_2.3" in plain.stderr or "cannot open shared object file" in plain.stderr)
    proc = invoke_on_image(bullseye, work / "al2.zip", event)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout)
    assert answer["echo"] == EVENT and answer["factorial_25"] == FACTORIAL_25 and answer["gzip_roundtrip"] is True
    assert "LP823" not in proc.stderr  # the image's glibc, not this machine's, was underneath
