"""AWS's own runtime interface clients drive layers through `layerpack invoke` (issue 14): the judge
is awslambdaric (PyPI) and aws-lambda-ric (npm), not our model of them. How each layer carries its
client on provided.al2023 (which has neither Python nor Node.js) is said in tests/aws_clients_support.py.
"""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from tests.aws_clients_support import python_ric_layer
from tests.emulator_support import EMU, emu_cache, invoke_cli, sandbox_ready  # noqa: F401

ARN = "arn:aws:lambda:us-east-1:012345678912:function:function"


@pytest.fixture(scope="session")
def py_layer(tmp_path_factory):
    return python_ric_layer(tmp_path_factory.mktemp("awslambdaric-layer"))


@pytest.fixture(scope="session")
def py_function(tmp_path_factory):
    fn = tmp_path_factory.mktemp("py-fn")
    shutil.copy(EMU / "clients" / "app.py", fn / "app.py")
    return fn


def py_invoke(cache, layer, function, *args, input=None):
    proc = invoke_cli(cache, str(layer), "--function", str(function), "--handler", "app.handler", "--json",
                      *args, input=input)
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, docs


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
