"""The Extensions API (issue 14): external extensions in /opt/extensions, started before the runtime,
registered, driven with INVOKE and SHUTDOWN, and their failures reported as Lambda names them.
The extension and the runtime are real processes in the bwrap sandbox speaking HTTP through curl."""

from __future__ import annotations

import json
import re

import pytest

from packer.emulator.invoke import FunctionConfig, LocalFunction
from packer.emulator.server import RuntimeAPIServer, RuntimeState
from packer.emulator.extensions import EXTENSION_ROUTES, ExtensionsState
from tests.emulator_support import RUNTIME_LOOP, emu_cache, invoke_cli, sandbox_ready, script_layer  # noqa: F401

EXTENSION = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H="$(mktemp)"
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: $(basename "$0")" \
     -d '{"events": ["INVOKE", "SHUTDOWN"]}'
ID=$(grep -Fi Lambda-Extension-Identifier "$H" | tr -d '[:space:]' | cut -d: -f2)
echo "registered before the runtime" > /tmp/ext-registered
if [ -n "${EXT_INIT_ERROR:-}" ]; then
  curl -sS -o /dev/null -X POST "$API/init/error" -H "Lambda-Extension-Identifier: $ID" \
       -H "Lambda-Extension-Function-Error-Type: Extension.ConfigInvalid" -d '{}'
  exit 1
fi
while true; do
  EV=$(curl -sS -H "Lambda-Extension-Identifier: $ID" "$API/event/next")
  echo "ext-event $EV"
  case "$EV" in *SHUTDOWN*) exit 0 ;; esac
  if [ -n "${EXT_CRASH:-}" ]; then exit 7; fi
done
"""

RUNTIME = RUNTIME_LOOP + r"""  printf '{"seen": "%s"}' "$(cat /tmp/ext-registered)" | curl -sS -o /dev/null "$API/$ID/response" --data-binary @-
done
"""


@pytest.fixture
def ext_layer(tmp_path):
    return script_layer(tmp_path / "layer", RUNTIME, extensions__logger=EXTENSION)


@pytest.fixture
def make_exec(ext_layer):
    (ext_layer / "extensions" / "logger").chmod(0o755)
    return ext_layer


def test_extension_starts_first_and_gets_invoke_then_shutdown(sandbox_ready, emu_cache, make_exec, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("{}\n{}\n")
    proc = invoke_cli(emu_cache, str(make_exec), "--event", str(events))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [{"seen": "registered before the runtime"}] * 2
    err = proc.stderr
    assert "EXTENSION\tName: logger\tState: Ready\tEvents: [INVOKE, SHUTDOWN]" in err
    assert err.index("EXTENSION\tName: logger") < err.index("START RequestId")
    invokes = [json.loads(m) for m in re.findall(r"^ext-event (\{.*INVOKE.*\})$", err, re.M)]
    request_ids = re.findall(r"^START RequestId: (\S+)", err, re.M)
    assert [e["requestId"] for e in invokes] == request_ids
    assert all(e["invokedFunctionArn"].endswith(":function:function") and e["deadlineMs"] > 0 for e in invokes)
    assert invokes[0]["tracing"]["type"] == "X-Amzn-Trace-Id"
    shutdown = [json.loads(m) for m in re.findall(r"^ext-event (\{.*SHUTDOWN.*\})$", err, re.M)]
    assert len(shutdown) == 1 and shutdown[0]["shutdownReason"] == "spindown"
    assert re.search(r"REPORT RequestId: .*Init Duration: [\d.]+ ms", err)


def test_extension_init_error_fails_the_init_with_extension_initerror(sandbox_ready, emu_cache, make_exec):
    with LocalFunction(FunctionConfig(layers=[make_exec], cache=emu_cache, env={"EXT_INIT_ERROR": "1"})) as f:
        result = f.invoke(b"{}")
    assert result.error_type == "Extension.InitError", result.payload
    assert [x.code for x in result.findings] == ["LP812"]
    assert result.report.status == "error"


def test_extension_crash_during_an_invoke_is_extension_crash(sandbox_ready, emu_cache, make_exec):
    with LocalFunction(FunctionConfig(layers=[make_exec], cache=emu_cache, env={"EXT_CRASH": "1"})) as f:
        first = f.invoke(b"{}")
        second = f.invoke(b"{}")
    assert first.error_type == "Extension.Crash" and "exit status 7" in first.payload.decode()
    assert [x.code for x in first.findings] == ["LP812"]
    assert second.cold  # a fresh environment, as after any crash


def test_extensions_api_refuses_bad_requests():
    import http.client

    state = RuntimeState(timeout_s=3)
    state.new_generation()
    ExtensionsState(state, "fn", "h.handler").reset({"ext"})
    server = RuntimeAPIServer(state, extra_routes=EXTENSION_ROUTES)
    host, port = server.address.split(":")

    def call(method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()

    try:
        api = "/2020-01-01/extension"
        assert json.loads(call("POST", f"{api}/register", b"{}")[2])["errorType"] == "Extension.InvalidExtensionName"
        status, _, body = call("GET", f"{api}/event/next")
        assert status == 403 and json.loads(body)["errorType"] == "Extension.MissingExtensionIdentifier"
        status, headers, body = call("POST", f"{api}/register", b'{"events": ["INVOKE", "SHUTDOWN"]}',
                                     {"Lambda-Extension-Name": "ext"})
        assert status == 200 and json.loads(body) == {"functionName": "fn", "functionVersion": "$LATEST",
                                                       "handler": "h.handler"}
        ext_id = headers["Lambda-Extension-Identifier"]
        status, _, body = call("POST", f"{api}/init/error", b"{}", {"Lambda-Extension-Identifier": ext_id})
        assert status == 403 and json.loads(body)["errorType"] == "Extension.MissingHeader"
        status, _, body = call("POST", f"{api}/register", b'{"events": ["SHUTDOWN"]}',
                               {"Lambda-Extension-Name": "internal"})
        assert status == 403 and json.loads(body)["errorType"] == "Extension.InvalidEventType"
    finally:
        server.close()
