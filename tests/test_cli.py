"""The command line as a whole: help for every command, configuration defaults, docs in sync."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from packer.cli import main
from packer.cli.runtimes import codes_markdown
from packer.findings import catalogue
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "bin" / "x86_64"


def test_readme_code_table_lists_exactly_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- codes:start -->", 1)[1].split("<!-- codes:end -->", 1)[0].strip()
    assert block == codes_markdown(catalogue()), "regenerate with `layerpack codes --markdown`"


def test_codes_are_unique_and_in_their_family_format() -> None:
    codes = [c.code for c in catalogue()]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"LP[1-9]\d\d", c) for c in codes)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```console\n(.*?)\n```", readme, re.S)
    install, test = blocks[0].strip(), blocks[1].strip()
    assert install.startswith("pip install . && layerpack analyze ")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test


def test_readme_first_command_reports_the_glibc_symbol() -> None:
    readme = (ROOT / "README.md").read_text()
    target = re.search(r"layerpack analyze (\S+)", readme).group(1)
    res = run_cli("analyze", str(ROOT / target))
    assert res.returncode == 1 and "arc4random@GLIBC_2.36" in res.stdout


@pytest.mark.parametrize("command", sorted(main.lazy))
def test_every_command_has_help(command: str) -> None:
    res = run_cli(command, "--help")
    assert res.returncode == 0 and "Usage:" in res.stdout


def test_configuration_file_sets_defaults_and_the_command_line_wins(tmp_path: Path) -> None:
    (tmp_path / "layerpack.toml").write_text('runtime = "provided.al2"\n')
    res = run_cli("analyze", str(FIX / "needs-z"), "--json", cwd=tmp_path)
    assert json.loads(res.stdout)["runtime"]["name"] == "provided.al2"
    res = run_cli("analyze", str(FIX / "needs-z"), "--json", "--runtime", "provided.al2023", cwd=tmp_path)
    assert json.loads(res.stdout)["runtime"]["name"] == "provided.al2023"


def test_pyproject_tool_table_and_unknown_option_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.layerpack.analyze]\narch = "arm64"\n')
    res = run_cli("analyze", str(FIX / "hello"), "--json", cwd=tmp_path)
    assert json.loads(res.stdout)["runtime"]["arch"] == "arm64"
    (tmp_path / "pyproject.toml").write_text('[tool.layerpack.analyze]\nbogus = 1\n')
    res = run_cli("analyze", str(FIX / "hello"), cwd=tmp_path)
    assert res.returncode == 2 and "unknown option 'bogus'" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.layerpack\n")
    res = run_cli("analyze", str(FIX / "hello"), cwd=tmp_path)
    assert res.returncode == 2 and "invalid configuration" in res.stderr


def test_codes_command_json() -> None:
    rows = json.loads(run_cli("codes", "--json").stdout)
    assert {"code", "severity", "title", "hint"} == set(rows[0]) and len(rows) == len(catalogue())
