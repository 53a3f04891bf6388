"""examples/stdio-adapter: one warm program per container; crashes restart it; bad lines are errors."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import ROOT, require_tool
from tests.examples_support import run_example

EXAMPLE = ROOT / "examples" / "stdio-adapter"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    return run_example("stdio-adapter", tmp_path_factory, timeout=300)



def _answers(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_stdio_example_script_succeeds(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_program_is_started_once_and_restarted_after_a_crash(ran):
    _, work = ran
    a = _answers((work / "responses.out").read_text())
    assert [x.get("count") for x in a] == [1, 2, None, 1, None, 3]
    assert a[0]["pid"] == a[1]["pid"] != a[3]["pid"] == a[5]["pid"]
    assert a[2]["errorType"] == "Stdio.ProgramExited" and "crashing on purpose" in a[2]["errorMessage"]
    assert a[4]["errorType"] == "Stdio.NotJson"


def test_node_handler_variant_behaves_the_same(ran):
    if not shutil.which("node"):
        require_tool("node")
    _, work = ran
    a = _answers((work / "node-responses.out").read_text())
    assert [x.get("count") for x in a] == [1, 2, None, 1, None, 3]
    assert [x.get("errorType") for x in a if "errorType" in x] == ["Stdio.ProgramExited", "Stdio.NotJson"]
