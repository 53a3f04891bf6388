"""The command line as a whole: help for every command, configuration defaults, docs in sync."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from packer.cli import COMMANDS, main
from packer.cli.runtimes import codes_markdown
from packer.findings import catalogue
from packer.runtime import default_runtime
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
    # PEP 668 (Debian 12, Ubuntu 23.04+): a bare `pip install` is refused, so both go through a venv
    assert install.startswith("python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/layerpack analyze ")
    assert test == "bash .ci/run"  # what CI runs, verbatim
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-3:] == ["python3 -m venv .venv", ".venv/bin/python -m pip install -q -e '.[test]'",
                       ".venv/bin/python -m pytest -q"]


def test_readme_first_command_reports_the_glibc_symbol() -> None:
    readme = (ROOT / "README.md").read_text()
    target = re.search(r"layerpack analyze (\S+)", readme).group(1)
    res = run_cli("analyze", str(ROOT / target))
    assert res.returncode == 1 and "arc4random@GLIBC_2.36" in res.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    res = run_cli(command, "--help")
    assert res.returncode == 0 and "Usage:" in res.stdout


def test_help_summaries_are_whole_sentences_from_the_command_table() -> None:
    res = run_cli("--help")
    listed = " ".join(res.stdout.split("Commands:", 1)[1].split())
    for name, (module, summary) in COMMANDS.items():
        assert summary.endswith(".") and "..." not in summary and summary[0].isupper(), name
        assert f"{name} {summary}" in listed, name  # whole, not cut to the terminal's width
        assert importlib.import_module(module) and main.get_command(None, name) is not None, name
    assert "..." not in listed


def test_runtime_option_is_declared_once() -> None:
    """Every command's --runtime comes from packer/cli/options.py (one declaration, one default)."""
    hits = [f"{p}:{n}" for p in sorted((ROOT / "packer").rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r'option\(\s*"--runtime"', line)]
    assert len(hits) == 1 and "packer/cli/options.py" in hits[0], hits
    defaults = {}
    for name in COMMANDS:
        cmd = main.get_command(None, name)
        for sub in (cmd.commands.values() if hasattr(cmd, "commands") else [cmd]):
            for p in sub.params:
                if "--runtime" in getattr(p, "opts", ()):
                    assert "-r" in p.opts, name
                    defaults[name] = p.default
    assert {"analyze", "vendor", "check", "build", "wrap", "invoke", "run", "publish", "slim"} <= set(defaults)
    data_default = defaults.pop("analyze")
    assert data_default is default_runtime  # read from runtimes.toml when the command runs
    assert {d for n, d in defaults.items() if n not in ("publish", "slim")} == {data_default}
    literal = [f"{p}:{n}" for p in sorted((ROOT / "packer").rglob("*.py"))
               for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r'[=:]\s*"provided\.al2023"', line)]
    assert literal == []  # the default is data (runtimes.toml), never a literal


@pytest.mark.parametrize("args", [("vendor", "x"), ("build", "x"), ("wrap", "x"), ("publish", "x.zip"),
                                  ("analyze", "x", "--bogus"), ("analyze", "x", "--arch", "sparc"), ("slim", "x")])
def test_usage_errors_are_one_line_in_one_style(args: tuple[str, ...]) -> None:
    res = run_cli(*args)
    assert res.returncode == 2 and res.stdout == "", res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("layerpack: error: ") and "Usage:" not in res.stderr, res.stderr


def test_no_command_shows_the_help_not_an_error() -> None:
    res = run_cli()
    assert "Commands:" in res.stdout + res.stderr and "layerpack: error" not in res.stderr


def test_old_option_spellings_still_work_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "f").write_text("x")
    old = run_cli("check", str(tmp_path / "l"), "--with", str(tmp_path / "l"), "--no-zip-size", "--json")
    new = run_cli("check", str(tmp_path / "l"), "--with-layer", str(tmp_path / "l"), "--no-zip-size", "--json")
    assert old.returncode == new.returncode == 0 and json.loads(old.stdout) == json.loads(new.stdout)
    assert "--with is now spelled --with-layer" in old.stderr and new.stderr == ""
    assert "--with" not in run_cli("check", "--help").stdout.replace("--with-layer", "")


def test_slim_profile_is_configurable_by_its_option_name(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("x")
    (tmp_path / "layerpack.toml").write_text('[slim]\nprofile = "generic"\n')
    res = run_cli("slim", "tree", "--dry-run", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["profile"] == "generic"


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
    rows = json.loads(run_cli("codes", "--json").stdout)["codes"]
    assert {"code", "severity", "title", "hint"} == set(rows[0]) and len(rows) == len(catalogue())


def test_repository_names_no_document_outside_itself() -> None:
    """A clone must stand alone: no file points at notes that live outside the repository."""
    outside = re.compile("|".join([r"\.\./" + "shared", "peers" + r"\.md", "lambda" + "-facts", "slim" + "-facts",
                                   r"(?<!docs/)(?<![\w/])" + "design" + r"\.md"]))
    hits = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".git", "build", "dist") or ".egg-info" in str(rel) or "__pycache__" in rel.parts:
            continue
        if path.is_file() and path.suffix in (".py", ".md", ".toml", ".txt", ".sh", ".cfg", ".yml", ""):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            hits += [f"{rel}:{n}" for n, line in enumerate(text.splitlines(), 1) if outside.search(line)]
    assert hits == []


def test_broken_data_while_options_are_parsed_is_one_line(monkeypatch) -> None:
    """A default read from data (runtimes.toml) fails inside click's parsing, outside any command:
    still the one-line error and exit 2, not a traceback."""
    from click.testing import CliRunner

    from packer import runtime
    from packer.errors import PolicyError

    def broken() -> str:
        raise PolicyError("runtimes.toml: broken for this test")

    main.get_command(None, "check")  # imported before the monkeypatch takes the default's place
    option = next(p for p in main.commands["check"].params if p.name == "runtime")
    monkeypatch.setattr(option, "default", broken)
    res = CliRunner().invoke(main, ["check", "."])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.exception
    assert "layerpack: error: runtimes.toml: broken for this test" in res.output and "Traceback" not in res.output
    assert runtime.default_runtime()  # the real data is untouched
