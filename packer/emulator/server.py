"""The Lambda Runtime API (2018-06-01) and the invoke endpoint, over real HTTP on 127.0.0.1.

`RuntimeState` is the one place that knows which invocation is in flight; HTTP handlers only
translate requests into its methods. Status codes follow lambda-facts.md §7 and AWS's emulator:
202 for an accepted response or error, 400 `InvalidRequestID` for an id that is not in flight,
403 `InvalidStateTransition` for a second answer or an init error after init, 413
`RequestEntityTooLarge` above 6 MB. Each process start opens a new *generation*: a `/next` left
blocked by a killed process can then never take the event meant for its replacement.
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/2018-06-01"
MAX_PAYLOAD = 6 * 1024 * 1024  # 6 MB, request and response (lambda-facts.md §3)
ACCOUNT = "012345678912"  # the placeholder account AWS's emulator uses


@dataclass
class Outcome:
    kind: str  # response | error | init_error | too_large
    body: bytes
    error_type: str | None
    at: float  # time.monotonic()


@dataclass
class Invocation:
    event: bytes
    function_name: str = "function"
    region: str = "us-east-1"
    client_context: str | None = None
    cognito_identity: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=lambda: f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
                                                  f"Parent={secrets.token_hex(8)};Sampled=0;Lineage=1")
    dispatched_at: float | None = None  # monotonic time /next handed it out
    deadline_ms: int | None = None
    outcome: Outcome | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"


class RuntimeState:
    """Invocations waiting, in flight and answered, for the current runtime process."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.cond = threading.Condition()
        self.generation = 0
        self.pending: collections.deque[Invocation] = collections.deque()
        self.current: Invocation | None = None
        self.answered: collections.deque[str] = collections.deque(maxlen=64)
        self.init_done_at: float | None = None
        self.init_error: Outcome | None = None
        self.closed = False

    # -- orchestrator side ------------------------------------------------------------------
    def new_generation(self) -> int:
        with self.cond:
            self.generation += 1
            self.init_done_at = None
            self.init_error = None
            self.current = None
            self.cond.notify_all()
            return self.generation

    def submit(self, inv: Invocation) -> None:
        with self.cond:
            self.pending.append(inv)
            self.cond.notify_all()

    def withdraw(self, inv: Invocation) -> None:
        """Forget `inv` (timed out, process died): a late answer for it is then a 400."""
        with self.cond:
            if inv in self.pending:
                self.pending.remove(inv)
            if self.current is inv:
                self.current = None
            self.answered.append(inv.request_id)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # -- runtime side (called by the HTTP handlers) -----------------------------------------
    def next(self, generation: int) -> Invocation | None:
        with self.cond:
            if generation == self.generation and self.init_done_at is None:
                self.init_done_at = time.monotonic()
                self.cond.notify_all()
            while not self.closed and generation == self.generation:
                if self.pending:
                    inv = self.pending.popleft()
                    inv.dispatched_at = time.monotonic()
                    inv.deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
                    self.current = inv
                    return inv
                self.cond.wait(0.5)
            return None

    def answer(self, request_id: str, outcome: Outcome) -> tuple[int, dict]:
        with self.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                if request_id in self.answered:
                    return 403, _err("InvalidStateTransition",
                                     f"State transition from Ready to InvocationResponse failed for runtime. "
                                     f"Error: request {request_id} was already answered")
                return 400, _err("InvalidRequestID", "Invalid request ID")
            self.current = None
            self.answered.append(request_id)
            inv.outcome = outcome
            inv.done.set()
            self.cond.notify_all()
            if outcome.kind == "too_large":
                return 413, _err("RequestEntityTooLarge",
                                 f"Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).")
            return 202, {"status": "OK"}

    def init_failed(self, outcome: Outcome) -> tuple[int, dict]:
        with self.cond:
            if self.init_done_at is not None or self.init_error is not None:
                return 403, _err("InvalidStateTransition",
                                 "State transition from Ready to InitError failed for runtime.")
            self.init_error = outcome
            self.cond.notify_all()
            return 202, {"status": "OK"}

    def dispatch_init_error(self) -> None:
        """Deliver a posted init error to whichever invocation caused this cold start."""
        with self.cond:
            if self.init_error and self.pending:
                inv = self.pending.popleft()
                inv.outcome = self.init_error
                inv.done.set()


def _err(kind: str, message: str) -> dict:
    return {"errorMessage": message, "errorType": kind}


def read_body(handler: BaseHTTPRequestHandler, limit: int) -> tuple[bytes, bool]:
    """The request body (Content-Length or chunked); (first `limit` bytes, True) when larger."""
    chunks: list[bytes] = []
    total = 0
    too_large = False

    def take(data: bytes) -> None:
        nonlocal total, too_large
        if total + len(data) > limit:
            too_large = True
        if not too_large:
            chunks.append(data)
        total += len(data)

    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        while True:
            line = handler.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers (streaming responses put the error type there)
                break
            remaining = size
            while remaining:
                data = handler.rfile.read(min(remaining, 1 << 20))
                if not data:
                    break
                take(data)
                remaining -= len(data)
            handler.rfile.readline(16)
    else:
        remaining = int(handler.headers.get("Content-Length") or 0)
        while remaining > 0:
            data = handler.rfile.read(min(remaining, 1 << 20))
            if not data:
                break
            take(data)
            remaining -= len(data)
    return b"".join(chunks), too_large


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "layerpack-runtime-api"
    state: RuntimeState  # set on the subclass made per server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the orchestrator reports what matters

    def _send(self, status: int, body: bytes | dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the process went away (killed, crashed); the orchestrator sees it exit
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path != f"{API}/runtime/invocation/next":
            self._send(404, _err("NotFound", f"unknown path {self.path}"))
            return
        gen = self.state.generation
        inv = self.state.next(gen)
        if inv is None:  # superseded process or shutting down
            self.close_connection = True
            self._send(500, _err("Runtime.Unavailable", "this runtime process was replaced"))
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
            "Lambda-Runtime-Trace-Id": inv.trace_id,
        }
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        if inv.cognito_identity:
            headers["Lambda-Runtime-Cognito-Identity"] = inv.cognito_identity
        self._send(200, inv.event, headers)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        parts = self.path.split("/")
        body, too_large = read_body(self, MAX_PAYLOAD)
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        now = time.monotonic()
        if self.path == f"{API}/runtime/init/error":
            status, reply = self.state.init_failed(Outcome("init_error", body, error_type or "Runtime.Unknown", now))
            self._send(status, reply)
            return
        # /2018-06-01/runtime/invocation/{id}/response|error
        if len(parts) == 6 and parts[1] == API.strip("/") and parts[2:4] == ["runtime", "invocation"] \
                and parts[5] in ("response", "error"):
            request_id = parts[4]
            if parts[5] == "response":
                outcome = Outcome("too_large" if too_large else "response", body,
                                  "Function.ResponseSizeTooLarge" if too_large else None, now)
            else:
                outcome = Outcome("error", body, error_type or "Unhandled", now)
            status, reply = self.state.answer(request_id, outcome)
            self._send(status, reply)
            return
        self._send(404, _err("NotFound", f"unknown path {self.path}"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that vanished mid-request (a killed bootstrap) is not our error


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    return thread


class RuntimeAPIServer:
    """The Runtime API on 127.0.0.1 and a random free port."""

    def __init__(self, state: RuntimeState, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("RuntimeHandler", (_Handler,), {"state": state})
        self.state = state
        self.httpd = _Server((host, port), handler)
        self.thread = _serve(self.httpd)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.state.close()
        self.httpd.shutdown()
        self.httpd.server_close()


InvokeFn = Callable[[bytes, dict[str, str]], tuple[int, dict[str, str], bytes]]


class InvokeServer:
    """`POST /2015-03-31/functions/function/invocations`, as AWS's emulator exposes it."""

    PATH = "/2015-03-31/functions/function/invocations"

    def __init__(self, invoke: InvokeFn, host: str = "127.0.0.1", port: int = 0) -> None:
        lock = threading.Lock()  # one execution environment: one invocation at a time

        class Handler(_Handler):
            def do_GET(self) -> None:  # noqa: N802
                self._send(404, _err("NotFound", f"POST {InvokeServer.PATH}"))

            def do_POST(self) -> None:  # noqa: N802
                if self.path.split("?")[0] != InvokeServer.PATH:
                    read_body(self, MAX_PAYLOAD)
                    self._send(404, _err("ResourceNotFoundException", f"unknown path {self.path}"))
                    return
                body, too_large = read_body(self, MAX_PAYLOAD)
                if too_large:
                    self._send(413, _err("RequestTooLargeException",
                                         f"Request must be smaller than {MAX_PAYLOAD} bytes for the Invoke operation"))
                    return
                with lock:
                    status, headers, reply = invoke(body or b"{}", dict(self.headers.items()))
                self._send(status, reply, headers)

        self.httpd = _Server((host, port), Handler)
        self.thread = _serve(self.httpd)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
