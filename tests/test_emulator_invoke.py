"""`layerpack invoke` / `run` end to end: real bootstraps, real bwrap, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request

import pytest

from packer.emulator.invoke import FunctionConfig, LocalFunction
from tests.conftest import layerpack_command, run_cli
from tests.emulator_support import (bash_example, brotli_layer, c_layer, cli_env, emu_cache,  # noqa: F401
                                    invoke_cli, sandbox_ready, script_layer)

REPORT = re.compile(r"^REPORT RequestId: (\S+)\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\t"
                    r"Memory Size: (\d+) MB\tMax Memory Used: (\d+) MB(?:\tInit Duration: ([\d.]+) ms)?", re.M)


def fn(layers, cache, **kw) -> LocalFunction:
    return LocalFunction(FunctionConfig(layers=list(layers), cache=cache, **kw))


# -- the classic examples ------------------------------------------------------------------------
def test_aws_bash_example_answers_events_through_curl(sandbox_ready, emu_cache, bash_example, tmp_path):
    layer, function = bash_example
    events = tmp_path / "events.jsonl"
    events.write_text('{"n": 1}\n{"n": 2}\n')
    proc = invoke_cli(emu_cache, str(layer), "--function", str(function), "--event", str(events))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Echoing request: '{\"n\": 1}'", "Echoing request: '{\"n\": 2}'"]
    reports = REPORT.findall(proc.stderr)
    assert len(reports) == 2
    assert reports[0][5] and not reports[1][5]  # Init Duration on the cold start only
    assert float(reports[0][5]) > 0 and int(reports[0][3]) == 128
    assert '{"n": 1}' in proc.stderr  # the handler's stderr is shown as logs


def test_compiled_c_bootstrap_gets_lambdas_environment(sandbox_ready, emu_cache, c_layer):
    with fn([c_layer], emu_cache, handler="my.handler", env={"GREETING": "hi"}) as f:
        first = f.invoke(b'{"a": 1}')
        second = f.invoke(b'{"a": 2}')
    assert first.ok and second.ok
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert one["echo"] == {"a": 1} and one["handler"] == "my.handler"
    assert (one["count"], two["count"]) == (1, 2) and one["pid"] == two["pid"]  # warm: same process
    assert first.cold and not second.cold
    assert first.report.init_ms is not None and second.report.init_ms is None
    assert first.report.billed_ms >= int(first.report.duration_ms + first.report.init_ms)


def test_json_output_carries_payload_and_report(sandbox_ready, emu_cache, c_layer):
    proc = invoke_cli(emu_cache, str(c_layer), "--json", "--event", "-", input='{"q": 5}')
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "layerpack.invoke/1" and len(proc.stdout.splitlines()) == 1  # JSON lines
    assert doc["ok"] and doc["payload"]["echo"] == {"q": 5} and doc["cold"]
    assert doc["report"]["memorySizeMb"] == 128 and doc["report"]["initDurationMs"] > 0


# -- failures as Lambda reports them ---------------------------------------------------------------
def test_handler_error_is_returned_with_its_type_and_exit_1(sandbox_ready, emu_cache, c_layer):
    proc = invoke_cli(emu_cache, str(c_layer), "--event", "-", input='{"fail": 1}')
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["errorType"] == "Handler.Failed"
    assert "LP806" in proc.stderr and "Traceback" not in proc.stderr


def test_init_error_is_reported_and_next_invoke_starts_again(sandbox_ready, emu_cache, c_layer):
    with fn([c_layer], emu_cache, env={"LP_INIT_ERROR": "1"}) as f:
        first = f.invoke(b"{}")
        second = f.invoke(b"{}")
    assert first.error_type == "Runtime.NoSuchHandler"
    assert json.loads(first.payload)["errorMessage"] == "handler file missing"
    assert [x.code for x in first.findings] == ["LP805"]
    assert second.cold and second.error_type == "Runtime.NoSuchHandler"  # a fresh init each time


def test_bootstrap_exiting_before_next_shows_its_stderr(sandbox_ready, emu_cache, c_layer):
    proc = invoke_cli(emu_cache, str(c_layer), "--env", "LP_EXIT_AT_INIT=1")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in proc.stdout
    assert "LP803" in proc.stderr and "cannot read configuration" in proc.stderr


def test_timeout_kills_and_the_next_invoke_is_a_cold_start(sandbox_ready, emu_cache, c_layer):
    with fn([c_layer], emu_cache, timeout=1) as f:
        assert f.invoke(b"{}").ok
        started = time.monotonic()
        slow = f.invoke(b'{"sleep": 1}')
        elapsed = time.monotonic() - started
        after = f.invoke(b"{}")
    assert slow.error_type == "Sandbox.Timedout" and slow.report.status == "timeout"
    assert "Task timed out after 1.00 seconds" in json.loads(slow.payload)["errorMessage"]
    assert slow.report.duration_ms == 1000.0 and elapsed < 5
    assert [x.code for x in slow.findings] == ["LP807"]
    assert after.ok and after.cold and after.report.init_ms is not None
    assert json.loads(after.payload)["count"] == 1  # a fresh process


def test_crash_mid_invoke_restarts_with_a_fresh_process(sandbox_ready, emu_cache, c_layer):
    with fn([c_layer], emu_cache) as f:
        f.invoke(b"{}")
        f.invoke(b"{}")
        crash = f.invoke(b'{"crash": 1}')
        after = f.invoke(b"{}")
    assert crash.error_type == "Runtime.ExitError"
    assert "Runtime exited with error: signal: aborted" in json.loads(crash.payload)["errorMessage"]
    assert [x.code for x in crash.findings] == ["LP808"] and not crash.cold
    assert after.ok and after.cold and json.loads(after.payload)["count"] == 1


def test_a_batch_hands_each_result_to_on_result_once_in_order_as_it_ends(sandbox_ready, emu_cache, c_layer):
    """invoke_many's callback sees every result exactly once and in order, whichever thread concluded
    it: answers on the server thread, a crash and a timeout on the caller's; and it sees the first
    answer while the batch is still running (the third event runs into its one-second timeout)."""
    seen: list[tuple[str, bool, float]] = []
    events = [b"{}", b'{"crash": 1}', b'{"sleep": 1}', b"{}"]
    with fn([c_layer], emu_cache, timeout=1.0) as f:
        started = time.monotonic()
        results = list(f.invoke_many(events, on_result=lambda r: seen.append((r.request_id, r.ok,
                                                                             time.monotonic()))))
        ended = time.monotonic()
    assert [rid for rid, _, _ in seen] == [r.request_id for r in results]
    assert [ok for _, ok, _ in seen] == [True, False, False, True]
    assert [r.error_type for r in results] == [None, "Runtime.ExitError", "Sandbox.Timedout", None]
    assert results[3].cold  # after the timeout, a fresh environment
    assert seen[0][2] - started < ended - started - 0.9  # shown before the timed-out event ended


def test_start_and_payloads_reach_a_pipe_promptly_though_writes_are_batched(sandbox_ready, emu_cache, c_layer,
                                                                            tmp_path):
    """START and payloads may wait for the next write (one write per warm event), but never longer
    than a few milliseconds: with an event whose handler hangs until the 2 s timeout, the START of
    that event and the first event's payload reach the pipes long before the timeout ends."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"first": 1}\n{"sleep": 1}\n')
    proc = subprocess.Popen([*layerpack_command(), "invoke", str(c_layer), "--event", str(events), "--timeout", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LAYERPACK_CACHE_DIR": str(emu_cache)})
    seen: dict[str, float] = {}

    def watch(stream, key: str) -> None:
        for line in stream:
            if key in line:
                seen[key] = time.monotonic()  # the last one: the hanging event's START

    starts = threading.Thread(target=watch, args=(proc.stderr, "START"))
    payload = threading.Thread(target=watch, args=(proc.stdout, '"first"'))
    for t in (starts, payload):
        t.start()
    proc.wait(timeout=60)
    ended = time.monotonic()
    for t in (starts, payload):
        t.join(5)
    assert proc.returncode == 1  # the second event timed out
    assert ended - seen["START"] > 1.5 and ended - seen['"first"'] > 1.5, (seen, ended)


def test_oversized_response_fails_the_invocation(sandbox_ready, emu_cache, c_layer):
    with fn([c_layer], emu_cache) as f:
        big = f.invoke(b'{"big": 1}')
        after = f.invoke(b"{}")
    assert big.error_type == "Function.ResponseSizeTooLarge" and [x.code for x in big.findings] == ["LP810"]
    assert after.ok and not after.cold  # the process survives a refused response


def test_memory_limit_kills_the_tree_and_reports_out_of_memory(sandbox_ready, emu_cache, c_layer):
    with fn([c_layer], emu_cache, memory=128) as f:
        result = f.invoke(b'{"alloc": 1}')
    assert result.error_type == "Runtime.OutOfMemory"
    assert result.report.max_memory_mb >= 100


def test_missing_bootstrap_is_invalid_entrypoint(sandbox_ready, emu_cache, tmp_path):
    empty = tmp_path / "layer"
    empty.mkdir()
    (empty / "lib").mkdir()
    proc = invoke_cli(emu_cache, str(empty))
    assert proc.returncode == 1
    body = json.loads(proc.stdout)
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert body["errorMessage"] == "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
    assert "LP801" in proc.stderr


def test_non_executable_bootstrap_is_invalid_entrypoint_with_the_reason(sandbox_ready, emu_cache, tmp_path):
    layer = script_layer(tmp_path / "layer", "#!/bin/sh\n")
    (layer / "bootstrap").chmod(0o644)
    proc = invoke_cli(emu_cache, str(layer))
    assert proc.returncode == 1 and "Runtime.InvalidEntrypoint" in proc.stdout
    assert "not executable (mode 0644)" in proc.stderr


def test_bootstrap_for_a_missing_interpreter_is_invalid_entrypoint(sandbox_ready, emu_cache, tmp_path):
    layer = script_layer(tmp_path / "layer", "#!/usr/bin/python3\nprint(1)\n")  # no python on provided.al2023
    with fn([layer], emu_cache) as f:
        result = f.invoke(b"{}")
    assert result.error_type == "Runtime.InvalidEntrypoint" and [x.code for x in result.findings] == ["LP802"]


# -- vendoring fixes a missing library -------------------------------------------------------------
def test_missing_library_fails_then_passes_after_layerpack_vendor(sandbox_ready, emu_cache, brotli_layer, tmp_path):
    before = invoke_cli(emu_cache, str(brotli_layer))
    assert before.returncode == 1 and "LP804" in before.stderr and "libbrotlidec.so.1" in before.stderr
    out = tmp_path / "vendored"
    vendor = run_cli("vendor", str(brotli_layer), "--out", str(out))
    if "No such command 'vendor'" in vendor.stderr:
        pytest.fail("`layerpack vendor` is not available yet (issue 3)")
    assert vendor.returncode in (0, 1), vendor.stderr
    after = invoke_cli(emu_cache, str(out), "--event", "-", input='{"v": 1}')
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["brotli"] > 0


# -- run: the AWS emulator's invoke endpoint --------------------------------------------------------
def test_run_serves_the_aws_invoke_endpoint_and_keeps_the_function_warm(sandbox_ready, emu_cache, c_layer):
    cmd = [*layerpack_command(), "run", str(c_layer), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, **cli_env(emu_cache), "NO_COLOR": "1"})
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/2015-03-31/functions/function/invocations")
        bodies = []
        for event in (b'{"r": 1}', b'{"r": 2}'):
            with urllib.request.urlopen(urllib.request.Request(url, data=event, method="POST"), timeout=30) as r:
                assert r.status == 200 and r.headers.get("X-Amz-Function-Error") is None
                bodies.append(json.loads(r.read()))
        assert [b["echo"]["r"] for b in bodies] == [1, 2] and bodies[1]["count"] == 2
        req = urllib.request.Request(url, data=b'{"fail": 1}', method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.headers["X-Amz-Function-Error"] == "Unhandled"
            assert json.loads(r.read())["errorType"] == "Handler.Failed"
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
    assert len(REPORT.findall(proc.stderr.read())) == 3


# -- bad usage: one line, exit 2, no traceback ------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["/nonexistent/layer"], "no such file or directory"),
    (["{layer}", "--env", "_HANDLER=x"], "reserved by Lambda"),
    (["{layer}", "--env", "NOEQUALS"], "expected KEY=VALUE"),
    (["{layer}", "--timeout", "0"], "1 to 900 seconds"),
    (["{layer}", "--memory", "64"], "128 to 10240 MB"),
    (["{layer}", "--event", "{bad}"], "not JSON"),
    (["{layer}", "--event", "/nonexistent.json"], "cannot read"),
    (["{layer}", "--runtime", "provided.al1999"], "unknown runtime"),
])
def test_bad_usage_is_one_line_and_exit_2(emu_cache, tmp_path, args, message):
    layer = script_layer(tmp_path / "layer", "#!/bin/sh\n")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json\n")
    args = [a.replace("{layer}", str(layer)).replace("{bad}", str(bad)) for a in args]
    proc = invoke_cli(emu_cache, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_no_sandbox_runs_on_the_host_and_says_so(emu_cache, c_layer):
    proc = invoke_cli(emu_cache, str(c_layer), "--no-sandbox")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["echo"] == {}
    assert "LP820" in proc.stderr and "NO SANDBOX" in proc.stderr


def test_no_sandbox_hides_the_missing_library_that_the_sandbox_catches(emu_cache, brotli_layer):
    # The reason the sandbox exists: on the host the library is found and the run "works".
    proc = invoke_cli(emu_cache, str(brotli_layer), "--no-sandbox")
    assert proc.returncode == 0 and json.loads(proc.stdout)["brotli"] > 0


def test_emulator_codes_are_in_the_catalogue(cli):
    proc = cli("codes", "--json")
    codes = {c["code"] for c in json.loads(proc.stdout)["codes"]}
    assert {"LP801", "LP803", "LP804", "LP807", "LP808", "LP820"} <= codes
    assert all(c.startswith("LP8") for c in codes if c in {"LP801", "LP823"})


def test_bootstrap_that_never_asks_for_an_event_hits_the_init_limit(sandbox_ready, emu_cache, tmp_path):
    layer = script_layer(tmp_path / "layer", "#!/bin/sh\nsleep 30\n")
    with fn([layer], emu_cache, init_timeout=1) as f:
        started = time.monotonic()
        result = f.invoke(b"{}")
    assert time.monotonic() - started < 5
    assert result.error_type == "Sandbox.Timedout" and [x.code for x in result.findings] == ["LP811"]


def test_function_zip_at_var_task_with_layer_bootstrap(sandbox_ready, emu_cache, bash_example, tmp_path):
    import zipfile

    layer, function = bash_example
    z = tmp_path / "function.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(function / "function.sh", "function.sh")
    with fn([layer], emu_cache, function=z) as f:
        result = f.invoke(b'{"z": 1}')
    assert result.ok and result.payload.decode().strip() == "Echoing request: '{\"z\": 1}'"
