"""Issue 14: `invoke` / `run` answer as Lambda does where the first emulator did not (real bwrap
sandbox, real curl-speaking bootstraps, real HTTP)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.request

import pytest

from packer.emulator.invoke import FunctionConfig, LocalFunction
from tests.conftest import layerpack_command
from tests.emulator_support import (RUNTIME_LOOP, cli_env, emu_cache, invoke_cli, sandbox_ready,  # noqa: F401
                                    script_layer)

# Answers every event with the raw headers of its /next (so a test reads what the runtime got),
# after printing one line of its own; EXIT_AFTER=1 makes it exit 0 right after each answer.
HEADER_ECHO = RUNTIME_LOOP + r"""  echo "handler-output $ID"
  tr -d '\r' < "$H" | curl -sS -o /dev/null "$API/$ID/response" --data-binary @-
  if [ -n "${EXIT_AFTER:-}" ]; then exit 0; fi
done
"""


@pytest.fixture
def echo_layer(tmp_path):
    return script_layer(tmp_path / "echo", HEADER_ECHO)


def header(payload: bytes, name: str) -> str | None:
    m = re.search(rf"(?im)^{re.escape(name)}: *(.*)$", payload.decode())
    return m.group(1).strip() if m else None


def test_start_precedes_and_end_follows_the_handlers_output(sandbox_ready, emu_cache, echo_layer, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    proc = invoke_cli(emu_cache, str(echo_layer), "--event", str(events))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    for rid in re.findall(r"^START RequestId: (\S+)", proc.stderr, re.M):
        start = lines.index(f"START RequestId: {rid} Version: $LATEST")
        out = lines.index(f"handler-output {rid}")
        end = lines.index(f"END RequestId: {rid}")
        assert start < out < end


def test_runtime_that_exits_after_answering_gets_a_cold_start_for_the_next_event(sandbox_ready, emu_cache,
                                                                                  echo_layer):
    with LocalFunction(FunctionConfig(layers=[echo_layer], cache=emu_cache, env={"EXIT_AFTER": "1"})) as f:
        results = list(f.invoke_many([b"{}", b"{}", b"{}"]))
        alone = f.invoke(b"{}")
    assert [r.ok for r in results] == [True, True, True] and alone.ok, [r.payload for r in results]
    assert all(r.cold and r.report.init_ms is not None for r in results + [alone])
    assert not any(x.code == "LP803" for r in results for x in r.findings)


def test_invoke_client_context_is_decoded_as_lambda_does(sandbox_ready, emu_cache, echo_layer):
    context = {"custom": {"k": "v"}, "env": {"platform": "test"}}
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    proc = invoke_cli(emu_cache, str(echo_layer), "--client-context", encoded)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(header(proc.stdout.encode(), "Lambda-Runtime-Client-Context")) == context


@pytest.mark.parametrize("value, message", [("not base64!", "base64 of a JSON object"),
                                            (base64.b64encode(b"[1]").decode(), "JSON object"),
                                            ("A" * 3584, "3583")])
def test_bad_client_context_is_one_line_and_exit_2(emu_cache, echo_layer, value, message):
    proc = invoke_cli(emu_cache, str(echo_layer), "--client-context", value)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_invoke_refuses_an_event_larger_than_lambdas_request_limit(emu_cache, echo_layer, tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"x": "y" * 6_291_456}))
    proc = invoke_cli(emu_cache, str(echo_layer), "--event", str(big))
    assert proc.returncode == 2 and "6291456" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def running(sandbox_ready, emu_cache, echo_layer):
    proc = subprocess.Popen([*layerpack_command(), "run", str(echo_layer), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **cli_env(emu_cache), "NO_COLOR": "1"})
    url = proc.stdout.readline().strip()
    yield url
    proc.terminate()
    proc.wait(20)


def post(url, body=b"{}", **headers):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_run_decodes_client_context_passes_the_trace_id_and_returns_the_log_tail(running):
    context = {"custom": {"n": 1}}
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    status, headers, body = post(running, **{"X-Amz-Client-Context": base64.b64encode(json.dumps(context).encode()).decode(),
                                            "X-Amzn-Trace-Id": trace, "X-Amz-Log-Type": "Tail"})
    assert status == 200
    assert json.loads(header(body, "Lambda-Runtime-Client-Context")) == context
    assert header(body, "Lambda-Runtime-Trace-Id") == trace
    tail = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    rid = headers["X-Amzn-RequestId"]
    assert tail.startswith(f"START RequestId: {rid}") and f"handler-output {rid}" in tail
    assert f"REPORT RequestId: {rid}" in tail


def test_run_honours_dry_run_and_event_invocation_types(running):
    status, _, body = post(running, **{"X-Amz-Invocation-Type": "DryRun"})
    assert status == 204 and body == b""
    status, _, body = post(running, **{"X-Amz-Invocation-Type": "Event"})
    assert status == 202 and body == b""
    status, _, _ = post(running, **{"X-Amz-Client-Context": "%%%"})
    assert status == 400


# Prints LINES lines to stdout and stderr (far more than a pipe holds) right before each answer.
LOUD = RUNTIME_LOOP + r"""  seq -f "out-$ID-%g" "$LINES"
  seq -f "err-$ID-%g" "$LINES" >&2
  curl -sS -o /dev/null "$API/$ID/response" -d '"ok"'
done
"""


def test_every_line_written_before_the_answer_is_logged_before_end(sandbox_ready, emu_cache, tmp_path):
    """20,000 lines on each of stdout and stderr (~1 MB, sixteen pipe buffers) per event: none is lost
    and none comes after the event's END, though the log reader only looks every few milliseconds."""
    layer = script_layer(tmp_path / "loud", LOUD)
    events = tmp_path / "events.jsonl"
    events.write_text('{}\n{}\n')
    proc = invoke_cli(emu_cache, str(layer), "--event", str(events), "--env", "LINES=20000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    rids = re.findall(r"^START RequestId: (\S+)", proc.stderr, re.M)
    assert len(rids) == 2
    for rid in rids:
        end = lines.index(f"END RequestId: {rid}")
        for stream in ("out", "err"):
            mine = [i for i, line in enumerate(lines) if line.startswith(f"{stream}-{rid}-")]
            assert len(mine) == 20000 and max(mine) < end
