"""Runtimes past their deprecation date (rules/runtimes/runtimes.toml `deprecated = "…"`): marked by
`layerpack runtimes`, warned about by `analyze` (LP431) and `invoke` with the same line.

"Today" is pinned with LAYERPACK_TODAY (packer.runtime.today, the one place it is read) to the day
before, the day of and the day after the date the data gives; on the day itself the runtime counts
as deprecated, as AWS's table means it and as `publish` (LP718) has always judged it."""

from __future__ import annotations

import datetime
import json

import pytest

from packer import datafiles, runtime
from packer._compat import tomllib
from tests.conftest import run_cli
from tests.emulator_support import c_layer, cli_env, emu_cache, sandbox_ready  # noqa: F401

CATALOGUE = tomllib.loads(datafiles.rule_file("runtimes", "runtimes.toml").read_text(encoding="utf-8"))
NAME = "provided.al2"  # a runtime the data gives a deprecation date for
DATE = datetime.date.fromisoformat(CATALOGUE["runtime"][NAME]["deprecated"])
ONE = datetime.timedelta(days=1)
BOUNDARY = [(DATE - ONE, False), (DATE, True), (DATE + ONE, True)]


@pytest.mark.parametrize("on, past", BOUNDARY)
def test_deprecated_since_is_the_day_of_the_date_and_after(on, past):
    assert (runtime.deprecated_since(DATE.isoformat(), on) == DATE.isoformat()) is past
    assert (runtime.deprecation_warning(NAME, on) is not None) is past


def test_unknown_or_malformed_dates_are_not_deprecation():
    assert runtime.deprecated_since(None, DATE) is None
    assert runtime.deprecated_since("someday", DATE) is None
    assert runtime.deprecated_since("2026-02-30", DATE + 1000 * ONE) is None


@pytest.mark.parametrize("on, past", BOUNDARY)
def test_runtimes_marks_past_deprecation_in_json_and_text(on, past):
    env = {"LAYERPACK_TODAY": on.isoformat(), "COLUMNS": "250"}
    doc = json.loads(run_cli("runtimes", "--json", env=env).stdout)
    rows = [r for r in doc["runtimes"] if r["runtime"] == NAME]
    assert rows and all(r["past_deprecation"] is past for r in rows)
    assert all(r["past_deprecation"] is False for r in doc["runtimes"]
               if datetime.date.fromisoformat(r["deprecated"]) > on)
    text = run_cli("runtimes", env=env).stdout
    lines = [line for line in text.splitlines() if f" {NAME} " in line]
    assert lines and all((f"{DATE} (past)" in line) is past for line in lines)


@pytest.mark.parametrize("on, past", BOUNDARY)
def test_analyze_warns_lp431_for_the_chosen_runtime(tmp_path, on, past):
    tree = tmp_path / "layer"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "hello").write_text("hello\n")
    proc = run_cli("analyze", str(tree), "--runtime", NAME, "--json", env={"LAYERPACK_TODAY": on.isoformat()})
    doc = json.loads(proc.stdout)
    lp431 = [f for f in doc["findings"] if f["code"] == "LP431"]
    assert bool(lp431) is past, proc.stdout
    if past:
        assert lp431[0]["severity"] == "warning" and f"{NAME} is past its deprecation date ({DATE})" in lp431[0]["message"]
    other = run_cli("analyze", str(tree), "--runtime", "provided.al2023", "--json",
                    env={"LAYERPACK_TODAY": on.isoformat()})
    assert not [f for f in json.loads(other.stdout)["findings"] if f["code"] == "LP431"]


@pytest.mark.parametrize("on, past", BOUNDARY)
def test_invoke_prints_the_same_warning_on_stderr(sandbox_ready, emu_cache, c_layer, tmp_path, on, past):
    env = {**cli_env(emu_cache), "LAYERPACK_TODAY": on.isoformat()}
    proc = run_cli("invoke", str(c_layer), "--runtime", NAME, env=env)
    assert proc.returncode in (0, 1), proc.stderr  # the warning does not depend on the run's outcome
    warned = [line for line in proc.stderr.splitlines() if "LP431" in line]
    assert bool(warned) is past, proc.stderr
    if past:
        tree = tmp_path / "t"
        tree.mkdir()
        doc = json.loads(run_cli("analyze", str(tree), "--runtime", NAME, "--json", env=env).stdout)
        message = next(f["message"] for f in doc["findings"] if f["code"] == "LP431")
        assert message in warned[0]


def test_bad_today_is_one_line_and_exit_2():
    proc = run_cli("runtimes", env={"LAYERPACK_TODAY": "08/12/2026"})
    assert proc.returncode == 2 and "LAYERPACK_TODAY" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_publish_judges_deprecation_by_the_same_today(monkeypatch):
    from packer.publish.validate import _deprecated

    for on, past in BOUNDARY:
        monkeypatch.setenv("LAYERPACK_TODAY", on.isoformat())
        assert (_deprecated(NAME) == f"since {DATE}") is past
