"""AWS's own runtime interface clients drive layers through `layerpack invoke` (issue 14): the judge
is awslambdaric (PyPI) and aws-lambda-ric (npm), not our model of them. How each layer carries its
client on provided.al2023 (which has neither Python nor Node.js) is said in tests/aws_clients_support.py.
"""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from tests.aws_clients_support import NODE_RIC_DIR, node_ric_layer, node_ric_version, python_ric_layer
from tests.conftest import run_cli
from tests.emulator_support import EMU, cli_env, emu_cache, invoke_cli, sandbox_ready  # noqa: F401

ARN = "arn:aws:lambda:us-east-1:012345678912:function:function"


@pytest.fixture(scope="session")
def py_layer(tmp_path_factory):
    return python_ric_layer(tmp_path_factory.mktemp("awslambdaric-layer"))


@pytest.fixture(scope="session")
def py_function(tmp_path_factory):
    fn = tmp_path_factory.mktemp("py-fn")
    shutil.copy(EMU / "clients" / "app.py", fn / "app.py")
    return fn


def ric_invoke(cache, layer, function, handler, *args, input=None):
    """`layerpack invoke --json`: the process and one parsed document per invocation."""
    proc = invoke_cli(cache, str(layer), "--function", str(function), "--handler", handler, "--json",
                      *args, input=input)
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, docs


def py_invoke(cache, layer, function, *args, input=None):
    return ric_invoke(cache, layer, function, "app.handler", *args, input=input)


def test_awslambdaric_gets_payload_context_and_stays_warm(sandbox_ready, emu_cache, py_layer, py_function):
    context = {"custom": {"tenant": "t1"}, "env": {"platform": "layerpack"}, "client": {"app_title": "x"}}
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    proc, docs = py_invoke(emu_cache, py_layer, py_function, "--client-context", encoded, "--event", "-",
                           input='{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    assert proc.returncode == 0, proc.stderr
    payloads = [d["payload"] for d in docs]
    assert [p["event"] for p in payloads] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [p["count"] for p in payloads] == [1, 2, 3] and len({p["pid"] for p in payloads}) == 1
    assert [d["cold"] for d in docs] == [True, False, False]
    for d, p in zip(docs, payloads):
        assert p["request_id"] == d["requestId"] and p["arn"] == ARN
        assert 0 < p["remaining_ms"] <= 3000  # the deadline header, as the client computes it
        assert p["function_name"] == "function" and p["memory"] == "128"
        assert p["client_custom"] == context["custom"] and p["client_env"] == context["env"]


def test_awslambdaric_handler_error_is_returned_as_the_client_posts_it(sandbox_ready, emu_cache, py_layer,
                                                                       py_function):
    proc, docs = py_invoke(emu_cache, py_layer, py_function, "--event", "-", input='{"fail": "boom"}')
    assert proc.returncode == 1, proc.stderr
    (doc,) = docs
    err = doc["payload"]
    assert doc["errorType"] == err["errorType"] == "ValueError"
    assert err["errorMessage"] == "handler failed: boom"
    assert any("raise ValueError" in line for line in err["stackTrace"])
    assert err["requestId"] == doc["requestId"]
    assert "LP806" in proc.stderr and "ValueError: handler failed: boom" in proc.stderr


def test_awslambdaric_init_error_fails_every_cold_start(sandbox_ready, emu_cache, py_layer, py_function):
    proc, docs = py_invoke(emu_cache, py_layer, py_function, "--env", "APP_IMPORT_FAIL=1", "--event", "-",
                           input="{}\n{}\n")
    assert proc.returncode == 1
    assert [d["errorType"] for d in docs] == ["Runtime.ImportModuleError"] * 2
    assert "no_such_module_for_layerpack_tests" in docs[0]["payload"]["errorMessage"]
    assert all(d["cold"] and d["report"]["initDurationMs"] is not None for d in docs)
    assert "LP805" in proc.stderr and "LP803" not in proc.stderr


def test_managed_python_runtime_runs_the_handler_with_the_layers_packages(sandbox_ready, emu_cache, tmp_path):
    """--runtime python3.12: no bootstrap anywhere, as on Lambda; the layer's /opt/python package is
    importable and the runtime's own bootstrap (awslambdaric under the host interpreter) runs app.handler."""
    layer = tmp_path / "layer" / "python" / "lib" / "python3.12" / "site-packages"
    layer.mkdir(parents=True)
    (layer / "greeting.py").write_text("WORD = 'hello from the layer'\n")
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "app.py").write_text("import greeting, sys\n\ndef handler(event, context):\n"
                               "    return {'word': greeting.WORD, 'n': event['n'], 'exe': sys.executable}\n")
    proc = invoke_cli(emu_cache, str(tmp_path / "layer"), "--function", str(fn), "--runtime", "python3.12",
                      "--handler", "app.handler", "--event", "-", input='{"n": 7}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"word": "hello from the layer", "n": 7, "exe": "/var/lang/bin/python3"}
    assert "InvalidEntrypoint" not in proc.stderr


# -- aws-lambda-ric (npm) ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def node_layer(tmp_path_factory):
    return node_ric_layer(tmp_path_factory.mktemp("aws-lambda-ric-layer"))


@pytest.fixture(scope="session")
def node_function(tmp_path_factory):
    fn = tmp_path_factory.mktemp("node-fn")
    shutil.copy(EMU / "clients" / "app.mjs", fn / "app.mjs")
    return fn


def test_aws_lambda_ric_gets_payload_context_and_stays_warm(sandbox_ready, emu_cache, node_layer, node_function):
    context = {"custom": {"tenant": "t2"}, "env": {"platform": "layerpack"}}
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    proc, docs = ric_invoke(emu_cache, node_layer, node_function, "app.handler", "--client-context", encoded,
                             "--event", "-", input='{"n": 1}\n{"n": 2}\n')
    assert proc.returncode == 0, f"aws-lambda-ric {node_ric_version()}: {proc.stderr}"
    payloads = [d["payload"] for d in docs]
    assert [p["event"] for p in payloads] == [{"n": 1}, {"n": 2}]
    assert [p["count"] for p in payloads] == [1, 2] and payloads[0]["pid"] == payloads[1]["pid"]
    for d, p in zip(docs, payloads):
        assert p["requestId"] == d["requestId"] and p["arn"] == ARN and 0 < p["remainingMs"] <= 3000
        assert p["clientContext"] == context  # decoded from base64, parsed by the client


def test_aws_lambda_ric_handler_error_is_returned_as_the_client_posts_it(sandbox_ready, emu_cache, node_layer,
                                                                         node_function):
    proc, (doc,) = ric_invoke(emu_cache, node_layer, node_function, "app.handler", "--event", "-",
                               input='{"fail": "boom"}')
    assert proc.returncode == 1
    assert doc["errorType"] == doc["payload"]["errorType"] == "TypeError"
    assert doc["payload"]["errorMessage"] == "handler failed: boom"
    assert any("app.mjs" in line for line in doc["payload"]["trace"])  # the Node client's field name
    assert "LP806" in proc.stderr


def test_aws_lambda_ric_init_error(sandbox_ready, emu_cache, node_layer, node_function):
    proc, docs = ric_invoke(emu_cache, node_layer, node_function, "app.handler", "--env", "APP_INIT_FAIL=1")
    assert proc.returncode == 1
    (doc,) = docs
    assert doc["errorType"] == doc["payload"]["errorType"] == "Error"
    assert doc["payload"]["errorMessage"] == "init failed on purpose"
    assert doc["report"]["status"] == "error" and "LP805" in proc.stderr


def test_aws_lambda_ric_streaming_response(sandbox_ready, emu_cache, node_layer, node_function):
    proc, (doc,) = ric_invoke(emu_cache, node_layer, node_function, "app.stream")
    assert proc.returncode == 0, proc.stderr
    assert doc["ok"] and doc["payload"] == "part1,part2,"


def test_aws_lambda_ric_error_mid_stream_fails_the_invocation(sandbox_ready, emu_cache, node_layer, node_function):
    proc, (doc,) = ric_invoke(emu_cache, node_layer, node_function, "app.stream", "--event", "-",
                               input='{"fail": true}')
    assert proc.returncode == 1
    assert not doc["ok"] and doc["errorType"] == "Error"
    assert doc["payload"]["errorMessage"] == "mid-stream failure"


def test_managed_nodejs_runtime_runs_the_handler_with_the_layers_modules(sandbox_ready, emu_cache, tmp_path):
    """--runtime nodejs22.x: the runtime's own bootstrap (the host's node + aws-lambda-ric) runs
    index.handler; the layer's nodejs/node_modules package is found through Lambda's NODE_PATH."""
    node_ric_version()  # fails with the install instruction when .ci/run has not installed the client
    module = tmp_path / "layer" / "nodejs" / "node_modules" / "greet"
    module.mkdir(parents=True)
    (module / "index.js").write_text('module.exports = { word: "hello from the layer" };\n')
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "index.js").write_text('const greet = require("greet");\n'
                                 'exports.handler = async (event) => ({ word: greet.word, n: event.n, '
                                 'node: process.execPath });\n')
    proc = run_cli("invoke", str(tmp_path / "layer"), "--function", str(fn), "--runtime", "nodejs22.x",
                   "--handler", "index.handler", "--event", "-", input='{"n": 3}',
                   env={**cli_env(emu_cache), "LAYERPACK_NODE_RIC_DIR": str(NODE_RIC_DIR)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"word": "hello from the layer", "n": 3, "node": "/var/lang/bin/node"}
