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
    assert inv.done.wait(2) and inv.outcome.kind == "response" and inv.outcome.body == b'"ok"'
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


# -- issue 14: Lambda's semantics where the first emulator differed ---------------------------------
def test_every_reply_arrives_in_one_segment_on_a_keepalive_connection(api):
    """Headers and body leave in one write on a TCP_NODELAY socket: a keep-alive client (libcurl,
    awslambdaric) then never waits for its own delayed ACK. Two writes with Nagle on cost ~44 ms per
    event; here the structure is asserted, not a time: each reply is complete in the first recv."""
    import socket

    state, server = api
    host, port = server.address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(raw: bytes) -> bytes:
        sock.sendall(raw)
        data = sock.recv(1 << 20)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        assert len(body) == length, f"reply split across segments: got {len(body)} of {length} body bytes"
        return data

    for n in range(5):
        inv = Invocation(b'{"n": %d}' % n)
        state.submit(inv)
        reply = exchange(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert reply.endswith(b'{"n": %d}' % n)
        body = b'"ok"'
        reply = exchange(f"POST {API}/invocation/{inv.request_id}/response HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert reply.startswith(b"HTTP/1.1 202")
    sock.close()


def _stream(server, request_id, parts, trailers=None, mode="streaming"):
    """POST a chunked streaming response with optional trailers, as aws-lambda-ric does."""
    import socket

    host, port = server.address.split(":")
    raw = (f"POST {API}/invocation/{request_id}/response HTTP/1.1\r\nHost: x\r\n"
           f"Lambda-Runtime-Function-Response-Mode: {mode}\r\nTransfer-Encoding: chunked\r\n"
           f"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n").encode()
    for part in parts:
        raw += b"%x\r\n%s\r\n" % (len(part), part)
    raw += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in (trailers or {}).items()).encode() + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        return sock.recv(65536)


def test_error_in_streaming_trailers_fails_the_invocation(api):
    import base64

    state, server = api
    inv, _, _ = dispatched(state, server)
    error = b'{"errorType":"Error","errorMessage":"mid-stream","stackTrace":["at handler"]}'
    reply = _stream(server, inv.request_id, [b"part1,", b"part2,"],
                    {"Lambda-Runtime-Function-Error-Type": "Error",
                     "Lambda-Runtime-Function-Error-Body": base64.b64encode(error).decode()})
    assert reply.startswith(b"HTTP/1.1 202")
    assert inv.done.wait(2)
    assert inv.outcome.kind == "error" and inv.outcome.error_type == "Error"
    assert json.loads(inv.outcome.body)["errorMessage"] == "mid-stream"
    assert inv.outcome.streamed == b"part1,part2,"


def test_streaming_without_trailers_is_a_success(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    assert _stream(server, inv.request_id, [b"a", b"b"]).startswith(b"HTTP/1.1 202")
    assert inv.done.wait(2) and inv.outcome.kind == "response" and inv.outcome.body == b"ab"


def test_unknown_response_mode_is_a_400_and_fails_the_invocation(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    status, _, body = request(server, "POST", f"{API}/invocation/{inv.request_id}/response", b'"x"',
                              {"Lambda-Runtime-Function-Response-Mode": "foo"})
    assert status == 400 and json.loads(body)["errorType"] == "InvalidFunctionResponseMode"
    assert inv.done.wait(2) and inv.outcome.error_type == "Runtime.InvalidResponseModeHeader"


def test_next_after_an_init_error_is_forbidden(api):
    state, server = api
    status, _, _ = request(server, "POST", f"{API}/init/error", b'{"errorMessage":"m","errorType":"T"}',
                           {"Lambda-Runtime-Function-Error-Type": "T"})
    assert status == 202
    state.submit(Invocation(b"{}"))
    status, _, body = request(server, "GET", f"{API}/invocation/next")
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"
    assert len(state.pending) == 1  # the event was not handed out


def test_response_limit_is_lambdas_6291556_bytes(api):
    state, server = api
    assert MAX_PAYLOAD == 6 * 1024 * 1024 + 100
    inv, _, _ = dispatched(state, server)
    status, _, _ = request(server, "POST", f"{API}/invocation/{inv.request_id}/response", b"x" * 6_291_556)
    assert status == 202 and len(inv.outcome.body) == 6_291_556


def test_streamed_response_may_exceed_the_buffered_limit(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    big = b"y" * (1 << 20)
    assert _stream(server, inv.request_id, [big] * 7).startswith(b"HTTP/1.1 202")
    assert inv.done.wait(5) and inv.outcome.kind == "response" and len(inv.outcome.body) == 7 << 20


def test_error_cause_is_kept_from_the_caller(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    payload = {"errorMessage": "m", "errorType": "E", "stackTrace": ["s"],
               "errorCause": {"paths": [], "working_directory": "/var/task", "exceptions": []}}
    status, _, _ = request(server, "POST", f"{API}/invocation/{inv.request_id}/error", json.dumps(payload).encode(),
                           {"Content-Type": "application/vnd.aws.lambda.error.cause+json",
                            "Lambda-Runtime-Function-Error-Type": "E"})
    assert status == 202 and inv.done.wait(2)
    assert json.loads(inv.outcome.body) == {"errorMessage": "m", "errorType": "E", "stackTrace": ["s"]}


def test_error_without_type_header_takes_the_payloads_type(api):
    state, server = api
    inv, _, _ = dispatched(state, server)
    request(server, "POST", f"{API}/invocation/{inv.request_id}/error", b'{"errorType":"KeyError","errorMessage":"k"}')
    assert inv.done.wait(2) and inv.outcome.error_type == "KeyError"


def test_ping_answers_pong(api):
    _, server = api
    status, _, body = request(server, "GET", "/2018-06-01/ping")
    assert status == 200 and body == b"pong"


def test_invoke_endpoint_refuses_requests_over_6291456_bytes():
    srv = InvokeServer(lambda body, headers: (200, {}, b"{}"))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("POST", InvokeServer.PATH, body=b"x" * (6 * 1024 * 1024 + 1))
        resp = conn.getresponse()
        assert resp.status == 413 and b"6291456" in resp.read()
    finally:
        srv.close()
