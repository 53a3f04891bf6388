"""examples/bash: the AWS bash example fails analysis on provided.al2 (no curl), runs on provided.al2023."""

from __future__ import annotations


import pytest

from tests.conftest import ROOT
from tests.examples_support import run_example, said

EXAMPLE = ROOT / "examples" / "bash"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    return run_example("bash", tmp_path_factory, "curl", timeout=300)



def test_bash_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_bash_example_analysis_names_curl_missing_on_provided_al2(ran):
    proc, _ = ran
    assert "LP406 error bootstrap: runs `curl`, which provided.al2 x86_64 does not have" in said(proc)


def test_bash_example_invoke_echoes_the_event(ran):
    proc, work = ran
    assert "Echoing request: '{\"greeting\": \"hello from bash\"}'" in proc.stdout
    assert (work / "response.out").read_text().startswith("Echoing request:")
