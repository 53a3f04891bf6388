"""`layerpack wrap`: the generated stdio adapter, run for real in the sandbox (and under node)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from packer import wrap
from packer.checks import shell_commands
from tests.conftest import require_tool, run_cli

ECHO = """#!/bin/bash
# echoes each line; special events steer it
n=0
while IFS= read -r line; do
  n=$((n + 1))
  case $line in
    *'"die"'*) echo "dying" >&2; exit 7 ;;
    *'"prose"'*) echo "not json at all" ;;
    *'"warn"'*) echo "careful" >&2; printf '{"warned":%d}\\n' "$n" ;;
    *'"count"'*) printf '{"n":%d}\\n' "$n" ;;
    *) printf '%s\\n' "$line" ;;
  esac
done
"""


@pytest.fixture
def program(tmp_path) -> Path:
    p = tmp_path / "echo.sh"
    p.write_text(ECHO)
    p.chmod(0o755)
    return p


def invoke(layer: Path, events: list, tmp_path: Path, *extra: str) -> tuple[list[dict], subprocess.CompletedProcess]:
    require_tool("bwrap")
    ev = tmp_path / "events.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events))
    proc = run_cli("invoke", str(layer), "--event", str(ev), "--json", *extra, timeout=120)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return rows, proc


def payloads(rows: list[dict]) -> list:
    return [r["payload"] if isinstance(r["payload"], (dict, list)) else json.loads(r["payload"]) for r in rows]


def test_plan_writes_nothing_and_lists_program_and_bootstrap(program, tmp_path):
    plan = wrap.plan(program, tmp_path / "out")
    assert [f.rel for f in plan.files] == ["bin/echo.sh", "bootstrap"]
    assert not (tmp_path / "out").exists()
    proc = run_cli("wrap", str(program), "--out", str(tmp_path / "out"), "--dry-run", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["written"] is False
    assert not (tmp_path / "out").exists()


def test_generated_bootstrap_runs_only_bash_and_curl(program, tmp_path):
    text = wrap.render_bootstrap("bin/x", ("--flag", "it's"))
    assert text.startswith("#!/bin/bash\n")
    assert shell_commands(text) <= {"curl"}
    out = tmp_path / "layer"
    assert run_cli("wrap", str(program), "--out", str(out)).returncode == 0
    proc = run_cli("analyze", str(out))
    assert proc.returncode == 0, proc.stdout


def test_arguments_are_quoted_for_bash(tmp_path):
    args = ("a b", "it's", "$HOME", "@ARGS@", "")
    text = wrap.render_bootstrap("bin/my prog", args)
    lines = [line for line in text.splitlines() if line.startswith(("program=", "args="))]
    r = subprocess.run(["bash", "-c", "; ".join(lines) + "; printf '%s|' \"$program\" \"${args[@]}\""],
                       capture_output=True, text=True)
    assert r.stdout == "bin/my prog|a b|it's|$HOME|@ARGS@||"


TEMPLATES = Path(wrap.__file__).parent / "templates"


def test_templates_are_package_data_that_bash_shellcheck_and_node_accept(tmp_path):
    """The adapters ship as files in packer/templates/ (not Python strings); both the templates and
    what wrap writes from them with awkward names and arguments must pass the languages' own checks."""
    boot, handler = TEMPLATES / "wrap-bootstrap.sh", TEMPLATES / "wrap-handler.mjs"
    assert boot.is_file() and handler.is_file()
    args = ("a b", "it's", "$HOME", "`id`", "\\")
    rendered_sh = tmp_path / "bootstrap"
    rendered_sh.write_text(wrap.render_bootstrap("bin/my 'prog'", args))
    rendered_js = tmp_path / "index.mjs"
    rendered_js.write_text(wrap.render_node_handler("bin/my 'prog'", args))
    for script in (boot, rendered_sh):
        r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    sc = require_tool("shellcheck")
    r = subprocess.run([sc, str(boot)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    r = subprocess.run([sc, "--severity=warning", str(rendered_sh)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout  # (info-level SC2016 on the literal '$HOME' argument is the point)
    node = require_tool("node")
    for script in (handler, rendered_js):
        copy = tmp_path / f"check-{script.name}"
        copy.write_text(script.read_text())
        r = subprocess.run([node, "--check", str(copy)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert 'const ARGS = ["a b", "it\'s", "$HOME", "`id`", "\\\\"];' in rendered_js.read_text()


def test_events_with_newlines_unicode_and_escapes_arrive_intact(program, tmp_path):
    out = tmp_path / "layer"
    run_cli("wrap", str(program), "--out", str(out))
    event = {"text": "line one\nline two\r\n\ttab", "u": "é 😀 \u2028 \\ \"q\"", "nested": [1, {"a": None}]}
    ev = tmp_path / "pretty.json"
    ev.write_text(json.dumps(event, indent=2, ensure_ascii=False))  # a multi-line document: one event
    require_tool("bwrap")
    proc = run_cli("invoke", str(out), "--event", str(ev), "--json")
    assert proc.returncode == 0, proc.stderr
    assert payloads([json.loads(proc.stdout)]) == [event]


def test_program_is_started_once_and_restarted_after_it_dies(program, tmp_path):
    out = tmp_path / "layer"
    run_cli("wrap", str(program), "--out", str(out))
    rows, proc = invoke(out, [{"count": 1}, {"count": 1}, {"die": 1}, {"count": 1}], tmp_path)
    assert proc.returncode == 1
    assert payloads([rows[0], rows[1], rows[3]]) == [{"n": 1}, {"n": 2}, {"n": 1}]
    err = payloads([rows[2]])[0]
    assert err["errorType"] == "Stdio.ProgramExited" and "exit status 7" in err["errorMessage"]
    assert "dying" in err["errorMessage"]


def test_non_json_line_and_stderr_become_invocation_errors(program, tmp_path):
    out = tmp_path / "layer"
    run_cli("wrap", str(program), "--out", str(out))
    rows, _ = invoke(out, [{"prose": 1}, {"warn": 1}, {"ok": True}], tmp_path)
    p = payloads(rows)
    assert p[0]["errorType"] == "Stdio.NotJson" and "not json at all" in p[0]["errorMessage"]
    assert p[1] == {"errorType": "Stdio.Stderr", "errorMessage": "careful\n"}
    assert p[2] == {"ok": True}


def test_stderr_log_mode_only_logs(program, tmp_path):
    out = tmp_path / "layer"
    run_cli("wrap", str(program), "--out", str(out), "--stderr", "log")
    rows, proc = invoke(out, [{"warn": 1}], tmp_path)
    assert proc.returncode == 0 and payloads(rows) == [{"warned": 1}]
    assert "careful" in proc.stderr


def test_large_event_round_trips(program, tmp_path):
    out = tmp_path / "layer"
    run_cli("wrap", str(program), "--out", str(out))
    event = {"blob": "x" * 300_000 + "\n" + "y" * 10}
    rows, proc = invoke(out, [event], tmp_path, "--timeout", "30")
    assert proc.returncode == 0 and payloads(rows) == [event]


def test_missing_program_in_layer_is_an_init_error(program, tmp_path):
    out = tmp_path / "layer"
    run_cli("wrap", str(program), "--out", str(out))
    (out / "bin" / "echo.sh").unlink()
    rows, proc = invoke(out, [{}], tmp_path)
    assert proc.returncode == 1 and "Stdio.ProgramNotFound" in proc.stdout + proc.stderr


def test_provided_al2_is_refused_because_it_has_no_curl(program, tmp_path):
    proc = run_cli("wrap", str(program), "--out", str(tmp_path / "o"), "--runtime", "provided.al2")
    assert proc.returncode == 2 and "curl" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["does-not-exist"], ["."]])
def test_bad_program_is_a_one_line_error(tmp_path, args):
    proc = run_cli("wrap", *args, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.startswith("layerpack: error:")


def test_existing_bootstrap_needs_force(program, tmp_path):
    out = tmp_path / "layer"
    assert run_cli("wrap", str(program), "--out", str(out)).returncode == 0
    again = run_cli("wrap", str(program), "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("wrap", str(program), "--out", str(out), "--force").returncode == 0


def test_program_already_inside_the_tree_is_not_copied(program, tmp_path):
    out = tmp_path / "layer"
    (out / "tools").mkdir(parents=True)
    inner = out / "tools" / "echo.sh"
    inner.write_text(ECHO)
    inner.chmod(0o755)
    plan = wrap.plan(inner, out)
    assert [f.rel for f in plan.files] == ["bootstrap"] and plan.program_rel == "tools/echo.sh"


def test_node_handler_keeps_one_program_and_reports_errors(program, tmp_path):
    node = require_tool("node")
    fn = tmp_path / "fn"
    proc = run_cli("wrap", str(program), "--out", str(fn), "--runtime", "nodejs22.x")
    assert proc.returncode == 0 and (fn / "index.mjs").exists() and (fn / "bin" / "echo.sh").exists()
    driver = tmp_path / "driver.mjs"
    driver.write_text(
        "const { handler } = await import(process.argv[2]);\n"
        "for (const e of [{count:1},{count:1},{die:1},{count:1},{prose:1},{warn:1},{t:'a\\nb'}]) {\n"
        "  try { console.log(JSON.stringify(await handler(e, {}))); }\n"
        "  catch (err) { console.log(JSON.stringify({errorType: err.name, errorMessage: err.message})); }\n"
        "}\nprocess.exit(0);\n")
    r = subprocess.run([node, str(driver), (fn / "index.mjs").as_uri()], capture_output=True, text=True, timeout=60)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[0] == {"n": 1} and rows[1] == {"n": 2} and rows[3] == {"n": 1}
    assert [rows[i]["errorType"] for i in (2, 4, 5)] == ["Stdio.ProgramExited", "Stdio.NotJson", "Stdio.Stderr"]
    assert rows[6] == {"t": "a\nb"}


SLOW_START = """#!/bin/bash
# busy start-up (a sleeping start-up would look ready), timed by itself; then answers with that time
start=$EPOCHREALTIME
for ((i = 0; i < 60000; i++)); do :; done
spin=$(( (${EPOCHREALTIME/./} - ${start/./}) / 1000 ))
echo "warming up" && echo READY
while IFS= read -r line; do printf '{"spin_ms":%d}\\n' "$spin"; done
"""


@pytest.mark.parametrize("ready", [["--ready-line", "READY"], []])
def test_program_start_up_is_counted_in_init_not_in_the_first_event(tmp_path, ready):
    """Judged by the program's own clock: Init Duration must contain its start-up; the ready line
    (and what came before it) is never taken for an answer."""
    prog = tmp_path / "slow.sh"
    prog.write_text(SLOW_START if ready else SLOW_START.replace('echo "warming up" && echo READY\n', ""))
    prog.chmod(0o755)
    out = tmp_path / "layer"
    assert run_cli("wrap", str(prog), "--out", str(out), *ready).returncode == 0
    rows, proc = invoke(out, [{"a": 1}], tmp_path, "--timeout", "60")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spin = payloads(rows)[0]["spin_ms"]
    assert rows[0]["report"]["initDurationMs"] >= spin > 0


def _wrapped(tmp_path: Path, name: str, text: str) -> Path:
    """A layer wrapping an executable script `name` with `text`."""
    prog = tmp_path / name
    prog.write_text(text)
    prog.chmod(0o755)
    out = tmp_path / "layer"
    assert run_cli("wrap", str(prog), "--out", str(out)).returncode == 0
    return out


def test_missing_interpreter_fails_init_with_program_not_found_and_exit_127(tmp_path):
    rows, proc = invoke(_wrapped(tmp_path, "needs-python.py", "#!/usr/bin/python9.9\nprint('never')\n"), [{}], tmp_path)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "Stdio.ProgramNotFound" in text and "exit status 127" in text and "signal" not in text


def test_exit_status_is_reported_as_the_program_ended(tmp_path):
    rows, _ = invoke(_wrapped(tmp_path, "quits.sh", "#!/bin/bash\nread -r line\nexit 127\n"), [{}], tmp_path)
    err = payloads(rows)[0]
    assert err["errorType"] == "Stdio.ProgramExited" and "(exit status 127)" in err["errorMessage"]


def test_node_handler_starts_the_program_during_init_and_fails_init_without_its_interpreter(tmp_path):
    """Module load is Lambda's init for a nodejs handler: the import must take the program's start-up
    (judged by the program's own clock), and a program that cannot start must fail the import."""
    node = require_tool("node")
    slow = tmp_path / "slow.sh"
    slow.write_text(SLOW_START.replace('echo "warming up" && echo READY\n', ""))
    slow.chmod(0o755)
    missing = tmp_path / "missing.py"
    missing.write_text("#!/usr/bin/python9.9\n")
    missing.chmod(0o755)
    driver = tmp_path / "driver.mjs"
    driver.write_text(
        "const t0 = performance.now();\n"
        "try {\n"
        "  const { handler } = await import(process.argv[2]);\n"
        "  const initMs = performance.now() - t0;\n"
        "  console.log(JSON.stringify({ initMs, ...(await handler({})) }));\n"
        "} catch (err) { console.log(JSON.stringify({ errorType: err.name, errorMessage: err.message })); }\n"
        "process.exit(0);\n")
    rows = []
    for prog in (slow, missing):
        fn = tmp_path / prog.stem
        assert run_cli("wrap", str(prog), "--out", str(fn), "--runtime", "nodejs22.x").returncode == 0
        r = subprocess.run([node, str(driver), (fn / "index.mjs").as_uri()], capture_output=True, text=True, timeout=60)
        rows.append(json.loads(r.stdout.splitlines()[0]))
    assert rows[0]["initMs"] >= rows[0]["spin_ms"] > 0
    assert rows[1]["errorType"] == "Stdio.ProgramNotFound" and "could not be started" in rows[1]["errorMessage"]
