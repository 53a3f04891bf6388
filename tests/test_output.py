"""One voice for every command: findings in one text form, no hard wrap on a pipe, and every
`--json` document an object that names its schema (documented in docs/json.md)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from packer.cli import COMMANDS, main
from packer.render import SCHEMAS, schema_id
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "bin" / "x86_64"
FINDING = re.compile(r"^LP\d{3} (error|warning|info) \S[^\n]*?: \S.*$")
FIX_LINE = re.compile(r"^    fix: \S.*$")


def _json_commands() -> set[str]:
    """Every command and subcommand that takes --json, named as in SCHEMAS (`layers-list`)."""
    out = set()
    for name in COMMANDS:
        cmd = main.get_command(None, name)
        subs = cmd.commands.items() if hasattr(cmd, "commands") else [(None, cmd)]
        for sub_name, sub in subs:
            if any("--json" in getattr(p, "opts", ()) for p in sub.params):
                out.add(f"{name}-{sub_name}" if sub_name else name)
    return out


def test_every_command_with_json_has_a_documented_schema() -> None:
    assert _json_commands() == set(SCHEMAS)
    doc = (ROOT / "docs" / "json.md").read_text()
    for name in SCHEMAS:
        assert f"`{schema_id(name)}`" in doc, f"docs/json.md does not describe {schema_id(name)}"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "tree"
    (t / "bin").mkdir(parents=True)
    shutil.copy(FIX / "needs-missing", t / "bin" / "prog")
    (t / "a.txt").write_text("x")
    return t


def _cases(tmp: Path, tree: Path) -> dict[str, tuple[str, ...]]:
    """The commands whose --json runs without AWS or a sandbox (the others are checked in
    test_publish*.py and test_emulator_invoke.py on moto and bubblewrap)."""
    return {
        "analyze": ("analyze", str(tree)),
        "vendor": ("vendor", str(tree), "--dry-run"),
        "slim": ("slim", str(tree), "--profile", "generic", "--dry-run"),
        "build": ("build", str(tree), "-o", str(tmp / "x.zip")),
        "check": ("check", str(tree), "--no-zip-size"),
        "publish": ("publish", str(tree), "--name", "not a valid name!"),  # refused before any AWS call
        "wrap": ("wrap", str(tree / "bin" / "prog"), "--out", str(tmp / "w"), "--dry-run"),
        "runtimes": ("runtimes",),
        "codes": ("codes",),
        "image-list": ("image", "list"),
    }


def test_every_json_document_is_an_object_that_names_its_schema(tmp_path: Path, tree: Path) -> None:
    for name, args in _cases(tmp_path, tree).items():
        res = run_cli(*args, "--json")
        assert res.returncode in (0, 1, 2) and "Traceback" not in res.stderr, (name, res.stderr)
        doc = json.loads(res.stdout)
        assert isinstance(doc, dict) and next(iter(doc)) == "schema", name
        assert doc["schema"] == schema_id(name), name


def test_piped_analyze_keeps_each_finding_on_one_line() -> None:
    res = run_cli("analyze", str(FIX / "needs-glibc236"), env={"COLUMNS": "40"})
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    head = [n for n, line in enumerate(lines) if line.startswith("LP201 ")]
    assert len(head) == 1, res.stdout
    line = lines[head[0]]
    assert FINDING.match(line) and "arc4random@GLIBC_2.36" in line and "provides GLIBC_2.34" in line
    assert FIX_LINE.match(lines[head[0] + 1]) and "--bundle-libc" in lines[head[0] + 1]
    assert lines[0].endswith("mounted at /opt")  # the header is one line too


def test_piped_tables_are_not_wrapped() -> None:
    res = run_cli("runtimes", env={"COLUMNS": "40"})
    row = [line for line in res.stdout.splitlines() if "provided.al2023 (default)" in line]
    assert row and all("Amazon Linux 2023" in r and "2029-06-30" in r for r in row), res.stdout


def _finding_lines(text: str) -> list[tuple[str, str]]:
    lines = text.splitlines()
    return [(line, lines[n + 1] if n + 1 < len(lines) else "") for n, line in enumerate(lines)
            if re.match(r"^LP\d{3}\b", line)]


def test_every_command_prints_findings_in_one_form(tmp_path: Path, tree: Path) -> None:
    (tree / "bin" / "prog").chmod(0o644)  # LP4xx: an ELF program without its exec bit
    runs = {name: run_cli(*args) for name, args in _cases(tmp_path, tree).items()
            if name in ("analyze", "vendor", "build", "check", "publish")}
    for name, res in runs.items():
        found = _finding_lines(res.stdout + res.stderr)
        assert found, (name, res.stdout, res.stderr)
        for head, fix in found:
            assert FINDING.match(head), (name, head)
            assert FIX_LINE.match(fix), (name, head, fix)


def test_each_finding_names_its_path_once_and_a_run_of_one_code_shares_one_fix(tmp_path: Path) -> None:
    tree = tmp_path / "layer"
    (tree / "bin").mkdir(parents=True)
    for name in ("tool-a", "tool-b", "tool-c"):  # what pip leaves in bin/: scripts for the build machine's python
        script = tree / "bin" / name
        script.write_text("#!/build/venv/bin/python3.11\nprint(1)\n")
        script.chmod(0o755)
    res = run_cli("analyze", str(tree))
    lines = [line for line in res.stdout.splitlines() if line.startswith("LP426 ")]
    assert [line.count("tool-") for line in lines] == [1, 1, 1], res.stdout
    assert all(FINDING.match(line) for line in lines)
    fixes = [line for line in res.stdout.splitlines() if FIX_LINE.match(line)]
    after = res.stdout.splitlines()
    assert after[after.index(lines[-1]) + 1] in fixes and len([f for f in fixes if "interpreter" in f]) == 1
