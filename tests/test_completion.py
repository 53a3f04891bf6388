"""Shell completion (issue 24): `layerpack completion bash|zsh|fish` prints click's own script, and
`--runtime` / slim's `--profile` complete the names shipped in rules/. The judge is click's real
completion protocol run against the installed `layerpack` (and, for bash, bash itself running the
printed script); the expected names are read from the data files here, not from layerpack.

Also pinned here: what `invoke --json` prints (JSON lines, one object per event), the other rough
edge of the same issue."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from packer import datafiles
from packer._compat import tomllib
from tests.conftest import console_script, run_cli
from tests.emulator_support import c_layer, emu_cache, invoke_cli, sandbox_ready  # noqa: F401

RUNTIMES = sorted(tomllib.loads(datafiles.rule_file("runtimes", "runtimes.toml").read_text(encoding="utf-8"))["runtime"])
PROFILES = sorted(p.name[:-5] for p in datafiles.rules().joinpath("profiles").iterdir() if p.name.endswith(".toml"))


def complete(*words: str) -> list[str]:
    """The candidates for the last word, through click's bash protocol (`type,value` per line)."""
    env = {"COMP_WORDS": " ".join(["layerpack", *words]), "COMP_CWORD": str(len(words)),
           "_LAYERPACK_COMPLETE": "bash_complete"}
    proc = run_cli(env=env)
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line.startswith("plain,")]


@pytest.mark.parametrize("command", ["analyze", "vendor", "invoke", "slim"])
def test_runtime_completes_every_shipped_runtime(command):
    assert sorted(complete(command, "x", "--runtime", "")) == RUNTIMES
    assert sorted(complete(command, "x", "-r", "python3.1")) == [r for r in RUNTIMES if r.startswith("python3.1")]


def test_a_comma_list_of_runtimes_completes_its_last_item():
    got = complete("publish", "x.zip", "--runtime", "python3.12,node")
    assert got == [f"python3.12,{r}" for r in RUNTIMES if r.startswith("node")] and got


def test_slim_profile_completes_every_shipped_profile():
    assert sorted(complete("slim", "x", "--profile", "")) == PROFILES
    assert complete("slim", "x", "--profile", "er") == [p for p in PROFILES if p.startswith("er")] == ["erlang"]


def test_the_completion_command_itself_completes():
    assert complete("comp") == ["completion"]
    assert sorted(complete("completion", "")) == ["bash", "fish", "zsh"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_clicks_own_script(shell):
    ours = run_cli("completion", shell)
    clicks = run_cli(env={"_LAYERPACK_COMPLETE": f"{shell}_source"})
    assert ours.returncode == 0 and ours.stdout.strip() and ours.stdout == clicks.stdout


def test_bash_runs_the_printed_script_and_completes_runtime_names():
    bash = shutil.which("bash")
    assert bash
    script = run_cli("completion", "bash").stdout
    layerpack = console_script()
    assert layerpack, "the console script is installed"
    probe = (f'{script}\nCOMP_WORDS=(layerpack analyze x --runtime provided); COMP_CWORD=4\n'
             f'_layerpack_completion {layerpack}\nprintf "%s\\n" "${{COMPREPLY[@]}}"\n')
    out = subprocess.run([bash, "--norc", "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == [r for r in RUNTIMES if r.startswith("provided")]


def test_unknown_shell_is_one_line_and_exit_2():
    proc = run_cli("completion", "tcsh")
    assert proc.returncode == 2 and "tcsh" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_readme_documents_completion():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "layerpack completion bash" in text and "--runtime" in text


# -- invoke --json: JSON lines, one object per event ---------------------------------------------
def test_invoke_json_help_says_json_lines_one_object_per_event():
    help_text = " ".join(run_cli("invoke", "--help").stdout.split())
    assert "JSON lines: one object per event" in help_text and "layerpack.invoke/1" in help_text
    assert "Print one JSON object" not in help_text


def test_invoke_json_prints_one_object_per_event(sandbox_ready, emu_cache, c_layer, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"q": 1}\n{"q": 2}\n{"q": 3}\n')
    proc = invoke_cli(emu_cache, str(c_layer), "--json", "--event", str(events))
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(docs) == 3 and all(isinstance(d, dict) and d["schema"] == "layerpack.invoke/1" for d in docs)
    assert [d["payload"]["echo"] for d in docs] == [{"q": 1}, {"q": 2}, {"q": 3}]
