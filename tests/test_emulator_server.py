"""The Runtime API over real HTTP on 127.0.0.1: headers, status codes, limits (no sandbox needed)."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from packer.emulator.server import MAX_PAYLOAD, Invocation, InvokeServer, RuntimeAPIServer, RuntimeState

API = "/2018-06-01/runtime"


@pytest.fixture
def api():
    state = RuntimeState(timeout_s=3)
    state.new_generation()
    server = RuntimeAPIServer(state)
    yield state, server
    server.close()


def request(server, method, path, body=b"", headers=None):
    host, port = server.address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def dispatched(state, server, event=b'{"k": 1}', **kw):
    inv = Invocation(event, function_name="fn", **kw)
    state.submit(inv)
    status, headers, body = request(server, "GET", f"{API}/invocation/next")
    assert status == 200
    return inv, headers, body


def test_next_hands_over_the_event_with_lambdas_headers(api):
    state, server = api
    inv, headers, body = dispatched(state, server, client_context='{"c":1}', cognito_identity='{"i":2}')
    assert body == b'{"k": 1}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == inv.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:us-east-1:012345678912:function:fn"
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert headers["Lambda-Runtime-Client-Context"] == '{"c":1}'
    assert headers["Lambda-Runtime-Cognito-Identity"] == '{"i":2}'
    deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
    assert 2_000 < deadline - time.time() * 1000 <= 3_000
    assert state.init_done_at is not None


def test_response_is_accepted_once_then_forbidden(api):
    state, server = api
    inv, headers, _ = dispatched(state, server)
    status, _, body = request(server, "POST", f"{API}/invocation/{inv.request_id}/response", b'"ok"')
    assert status == 202 and json.loads(body) == {"status": "OK"}
    assert inv.done.is_set() and inv.outcome.kind == "response" and inv.outcome.body == b'"ok"'
    status, _, body = request(server, "POST", f"{API}/invocation/{inv.request_id}/response", b'"again"')
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"


def test_unknown_request_id_is_a_400(api):
    state, server = api
    dispatched(state, server)
    status, _, body = request(server, "POST", f"{API}/invocation/not-a-real-id/response", b"{}")
    assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"


def test_error_keeps_the_error_type_header_and_body(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    payload = b'{"errorMessage":"boom","errorType":"MyError","stackTrace":[]}'
    status, _, _ = request(server, "POST", f"{API}/invocation/{inv.request_id}/error", payload,
                           {"Lambda-Runtime-Function-Error-Type": "MyError"})
    assert status == 202
    assert inv.outcome.kind == "error" and inv.outcome.error_type == "MyError" and inv.outcome.body == payload


def test_response_over_six_megabytes_is_a_413_and_fails_the_invocation(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    status, _, body = request(server, "POST", f"{API}/invocation/{inv.request_id}/response",
                              b"x" * (MAX_PAYLOAD + 1))
    assert status == 413 and json.loads(body)["errorType"] == "RequestEntityTooLarge"
    assert inv.outcome.kind == "too_large"


def test_response_of_exactly_six_megabytes_is_accepted(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    status, _, _ = request(server, "POST", f"{API}/invocation/{inv.request_id}/response", b"x" * MAX_PAYLOAD)
    assert status == 202 and len(inv.outcome.body) == MAX_PAYLOAD


def test_chunked_response_bodies_are_read(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    host, port = server.address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", f"{API}/invocation/{inv.request_id}/response", body=iter([b'{"a"', b':1}']),
                 encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 202
    assert inv.outcome.body == b'{"a":1}'


def test_init_error_is_accepted_before_init_and_forbidden_after(api):
    state, server = api
    status, _, _ = request(server, "POST", f"{API}/init/error", b'{"errorMessage":"m","errorType":"T"}',
                           {"Lambda-Runtime-Function-Error-Type": "T"})
    assert status == 202 and state.init_error.error_type == "T"
    state.new_generation()
    dispatched(state, server)  # init is over once /next was called
    status, _, body = request(server, "POST", f"{API}/init/error", b"{}")
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"


def test_a_next_left_by_a_replaced_process_never_takes_the_new_event(api):
    state, server = api
    results = []
    t = threading.Thread(target=lambda: results.append(request(server, "GET", f"{API}/invocation/next")))
    t.start()
    time.sleep(0.2)
    state.new_generation()  # the process that sent that /next was killed and replaced
    t.join(5)
    assert results and results[0][0] == 500
    inv = Invocation(b"{}")
    state.submit(inv)
    assert list(state.pending) == [inv]  # still waiting for the new process


def test_unknown_paths_are_404(api):
    _, server = api
    assert request(server, "GET", "/2018-06-01/runtime/other")[0] == 404
    assert request(server, "POST", "/2018-06-01/runtime/invocation/x/other", b"{}")[0] == 404


def test_invoke_endpoint_forwards_body_and_function_error_header():
    seen = []

    def fake_invoke(body, headers):
        seen.append(body)
        return 200, {"X-Amz-Function-Error": "Unhandled"}, b'{"errorType":"E","errorMessage":"m"}'

    srv = InvokeServer(fake_invoke)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("POST", InvokeServer.PATH, body=b'{"n":1}')
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("X-Amz-Function-Error") == "Unhandled"
        assert json.loads(resp.read())["errorType"] == "E"
        conn.request("POST", "/2015-03-31/functions/other/invocations", body=b"{}")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
        assert seen == [b'{"n":1}']
    finally:
        srv.close()
