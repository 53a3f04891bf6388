"""The Lambda Runtime API (2018-06-01) and the invoke endpoint, over real HTTP on 127.0.0.1.

Structured like the service: a *runtime router* (this module's `RUNTIME_ROUTES`) and an
*extensions router* (`packer.emulator.extensions`) share one HTTP server, as Lambda's and AWS's
emulator's do. `RuntimeState` is the one place that knows which invocation is in flight; HTTP
handlers only translate requests into its methods. Status codes follow Lambda: 202 for an accepted
response or error, 400 `InvalidRequestID` for an id that is not in flight, 400
`InvalidFunctionResponseMode` for an unknown response mode, 403 `InvalidStateTransition` for a second
answer, an init error after init or a `/next` after an init error, 413 `RequestEntityTooLarge` above
6 MiB + 100 bytes. Each process start opens a new *generation*: a `/next` left blocked by a killed
process can then never take the event meant for its replacement.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from packer import quotas

API = "/2018-06-01"
MAX_REQUEST = quotas.INVOKE_REQUEST_LIMIT  # Invoke request body
MAX_PAYLOAD = quotas.RESPONSE_PAYLOAD_LIMIT  # buffered response, inclusive
MAX_STREAMED = quotas.STREAMED_RESPONSE_LIMIT  # streamed response
STREAMING = "streaming"  # the only valid Lambda-Runtime-Function-Response-Mode
ERROR_CAUSE_TYPE = "application/vnd.aws.lambda.error.cause+json"  # errorCause goes to X-Ray, not the caller
ACCOUNT = "012345678912"  # the placeholder account AWS's emulator uses
ACCEPTED = b'{"status": "OK"}'  # Lambda's 202 body, encoded once: it ends every warm event


@dataclass
class Outcome:
    kind: str  # response | error | init_error | too_large
    body: bytes
    error_type: str | None
    at: float  # time.monotonic()
    streamed: bytes = b""  # a streamed response that failed midway: what reached the caller


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
    queued: bool = False  # submitted to the state
    cold: bool = False  # the first event of its process (set at dispatch)
    init_done_at: float | None = None  # its process's first /next, for Init Duration
    outcome: Outcome | None = None
    result: object = None  # the finished InvokeResult, when the answer was concluded on arrival
    reported: bool = False  # handed to invoke_many's on_result already
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"


class Refused(Exception):
    """A request the runtime may not make in the current state: rendered as status + error body."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.body = status, error_body(kind, message)


class RuntimeState:
    """Invocations waiting, in flight and answered, for the current runtime process.

    An answer is *settled* before the runtime may have its next event: `answer()` records it,
    the HTTP handler replies 202, then `settle()` runs `on_answer` (the orchestrator concludes the
    invocation: END, REPORT, extensions) on the same thread. Only then does `/next` hand out the
    next event, so a keep-alive runtime costs no thread hand-off per warm event.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.lock = threading.RLock()  # `with self.lock` in the hot path: Condition.__enter__ is a Python call
        self.cond = threading.Condition(self.lock)
        self.generation = 0
        self.pending: collections.deque[Invocation] = collections.deque()
        self.current: Invocation | None = None
        self.settling: Invocation | None = None
        self.answered: collections.deque[str] = collections.deque(maxlen=64)
        self.init_done_at: float | None = None
        self.init_error: Outcome | None = None
        self.fresh = True  # no event handed out yet in this generation
        self.closed = False
        self.on_dispatch: Callable[[Invocation], None] = lambda inv: None  # START is logged here, before
        # the runtime has the event, so it always precedes the handler's own output
        self.on_answer: Callable[[Invocation], None] = lambda inv: None
        self.extensions = None  # the ExtensionsState sharing this lock, when extensions run

    def _extended(self) -> bool:
        """Any extension registered: dispatch then waits for them and tells them INVOKE."""
        return self.extensions is not None and bool(self.extensions.by_id)

    # -- orchestrator side ------------------------------------------------------------------
    def new_generation(self) -> int:
        with self.lock:
            self.generation += 1
            self.init_done_at = None
            self.init_error = None
            self.current = None
            self.settling = None
            self.fresh = True
            self.cond.notify_all()
            return self.generation

    def submit(self, inv: Invocation) -> None:
        with self.lock:
            self.pending.append(inv)
            self.cond.notify_all()

    def submit_all(self, invs: list[Invocation]) -> None:
        with self.lock:
            self.pending.extend(invs)
            self.cond.notify_all()

    def withdraw(self, inv: Invocation) -> None:
        """Forget `inv` (timed out, process died): a late answer for it is then a 400."""
        with self.lock:
            if inv in self.pending:
                self.pending.remove(inv)
            if self.current is inv:
                self.current = None
            self.answered.append(inv.request_id)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.cond.notify_all()

    # -- runtime side (called by the HTTP handlers) -----------------------------------------
    def next(self, generation: int) -> Invocation | None:
        """The next event for the process of `generation`; None once it was replaced.
        Raises `Refused` after an init error: Lambda never hands that process an event."""
        with self.lock:
            if generation == self.generation and self.init_error is not None:
                raise Refused(403, "InvalidStateTransition",
                              "State transition from InitError to Ready failed for runtime. Error: init failed")
            if generation == self.generation and self.init_done_at is None:
                self.init_done_at = time.monotonic()
                self.cond.notify_all()
            while not self.closed and generation == self.generation:
                if self.pending and self.settling is None and (not self._extended() or self.extensions.all_ready()):
                    inv = self.pending.popleft()
                    inv.dispatched_at = time.monotonic()
                    inv.deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
                    inv.cold, self.fresh = self.fresh, False
                    # With extensions, init ends when they and the runtime all wait: that is now.
                    extended = self._extended()
                    inv.init_done_at = inv.dispatched_at if extended else self.init_done_at
                    self.current = inv
                    if extended:
                        self.extensions.invoke(inv)
                    return inv
                self.cond.wait(0.5)
            return None

    def answer(self, request_id: str, outcome: Outcome) -> tuple[int, dict, Invocation | None]:
        """Record the answer; the caller replies, then calls `settle(inv)` with the returned one."""
        with self.lock:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                if request_id in self.answered:
                    return 403, error_body("InvalidStateTransition",
                                     f"State transition from Ready to InvocationResponse failed for runtime. "
                                     f"Error: request {request_id} was already answered"), None
                return 400, error_body("InvalidRequestID", "Invalid request ID"), None
            self.current = None
            self.settling = inv
            self.answered.append(request_id)
            inv.outcome = outcome
            if outcome.kind == "too_large":
                return 413, error_body("RequestEntityTooLarge",
                                 f"Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."), inv
            if outcome.error_type == "Runtime.InvalidResponseModeHeader":
                return 400, error_body("InvalidFunctionResponseMode", "Invalid function response mode"), inv
            return 202, ACCEPTED, inv

    def settle(self, inv: Invocation) -> None:
        try:
            self.on_answer(inv)
        finally:
            with self.lock:
                if self.settling is inv:
                    self.settling = None
                inv.done.set()
                self.cond.notify_all()

    def init_failed(self, outcome: Outcome) -> tuple[int, dict]:
        with self.lock:
            if self.init_done_at is not None or self.init_error is not None:
                return 403, error_body("InvalidStateTransition",
                                 "State transition from Ready to InitError failed for runtime.")
            self.init_error = outcome
            self.cond.notify_all()
            return 202, ACCEPTED

    def dispatch_init_error(self) -> None:
        """Deliver a posted init error to whichever invocation caused this cold start."""
        with self.lock:
            if self.init_error and self.pending:
                inv = self.pending.popleft()
                inv.outcome = self.init_error
                inv.done.set()


def error_body(kind: str, message: str) -> dict:
    return {"errorMessage": message, "errorType": kind}


@dataclass
class Body:
    data: bytes  # at most `limit` bytes
    too_large: bool
    trailers: dict[str, str] = field(default_factory=dict)  # chunked trailers, names lower-cased


def read_body(handler: BaseHTTPRequestHandler, limit: int) -> Body:
    """The request body (Content-Length or chunked, with its trailers); always read to the end so
    the connection stays usable, keeping only the first `limit` bytes."""
    chunked = handler.headers.get("transfer-encoding", "").lower() == "chunked"
    if not chunked:
        length = int(handler.headers.get("content-length") or 0)
        if length <= limit:  # the common case, in one read
            return Body(handler.rfile.read(length) if length else b"", False)
    chunks: list[bytes] = []
    total = 0
    trailers: dict[str, str] = {}

    def take(data: bytes) -> None:
        nonlocal total
        if total + len(data) <= limit:
            chunks.append(data)
        total += len(data)

    def copy(remaining: int) -> None:
        while remaining > 0:
            data = handler.rfile.read(min(remaining, 1 << 20))
            if not data:
                break
            take(data)
            remaining -= len(data)

    if chunked:
        while True:
            line = handler.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (line := handler.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers[name.strip().lower()] = value.strip()
                break
            copy(size)
            handler.rfile.readline(16)
    else:
        copy(length)
    return Body(b"".join(chunks), total > limit, trailers)


def _error_body(body: bytes, content_type: str) -> bytes:
    """What the caller sees of a posted error. With the error-cause content type, Lambda keeps
    errorMessage, errorType and stackTrace and sends errorCause to X-Ray only."""
    if content_type.split(";")[0].strip() != ERROR_CAUSE_TYPE:
        return body
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return json.dumps("Invalid error body").encode()
    if not isinstance(doc, dict):
        return json.dumps("Invalid error body").encode()
    return json.dumps({k: doc.get(k) for k in ("errorMessage", "errorType", "stackTrace")}).encode()


def _trailer_error(trailers: dict[str, str]) -> tuple[str, bytes] | None:
    """(type, body) of an error a streaming runtime reported in its trailers, else None. The body
    trailer is base64 (the Node.js client encodes the JSON error so it fits in a header)."""
    kind = trailers.get("lambda-runtime-function-error-type")
    if not kind:
        return None
    raw = trailers.get("lambda-runtime-function-error-body", "")
    try:
        body = base64.b64decode(raw, validate=True) if raw else b""
    except ValueError:
        body = raw.encode()
    return kind, body or json.dumps({"errorType": kind, "errorMessage": ""}).encode()


_REASONS = {code: reason for code, (reason, _) in BaseHTTPRequestHandler.responses.items()}


class Handler(BaseHTTPRequestHandler):
    """HTTP plumbing shared by the Runtime API and the invoke endpoint; routing by `routes`:
    (method, path pattern, function(handler, match)) tried in order."""

    protocol_version = "HTTP/1.1"
    server_version = "layerpack-runtime-api"
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted socket (see _send)
    routes: list[tuple[str, re.Pattern[str], Callable[[Handler, re.Match[str]], None]]] = []
    state: RuntimeState  # set on the subclass made per server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the orchestrator reports what matters

    def _send(self, status: int, body: bytes | dict, headers: dict[str, str] | None = None) -> None:
        """Status line, headers and body in ONE write on a TCP_NODELAY socket. Two writes with Nagle on
        made every reply to a keep-alive client (libcurl, awslambdaric, http-client) wait for the
        client's delayed ACK: measured 44 ms per warm event, against 0.26 ms for a one-write server."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        head = [f"{self.protocol_version} {status} {_REASONS.get(status, '')}\r\n"]
        if headers is None or "Content-Type" not in headers:
            head.append("Content-Type: application/json\r\n")
        if headers:
            head += [f"{k}: {v}\r\n" for k, v in headers.items()]
        head.append(f"Content-Length: {len(data)}\r\n")
        if self.close_connection:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        message = "".join(head).encode("latin-1", "replace") + data
        try:
            self.request.sendall(message)  # the socket itself: wfile adds a Python layer per reply
        except OSError:  # the process went away (killed, crashed); the orchestrator sees it exit
            self.close_connection = True

    def handle_one_request(self) -> None:
        """One request, parsed by hand: the stdlib's email-based header parser measured 130 us per
        request here, a third of a warm event's whole cost."""
        try:
            line = self.rfile.readline(65537)
        except OSError:
            line = b""
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            self.close_connection = True
            return
        self.command, self.path, self.request_version = parts
        self.raw_requestline = line
        headers: dict[str, str] = {}  # by lower-case name; look up with lower-case names
        while (field_line := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = field_line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (self.request_version == "HTTP/1.0"
                                                          and connection != "keep-alive")
        if headers.get("expect", "").lower() == "100-continue":  # curl asks before bodies over 1 KiB
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.command not in ("GET", "POST"):
            self.close_connection = True
            self._send(405, error_body("MethodNotAllowed", f"{self.command} {self.path}"))
            return
        self._route(self.command)

    def _route(self, method: str) -> None:
        path = self.path.split("?")[0]
        for verb, pattern, fn in self.routes:
            m = pattern.fullmatch(path)
            if m and verb == method:
                fn(self, m)
                return
        if method == "POST":
            read_body(self, 0)
        self._send(404, error_body("NotFound", f"unknown path {self.path}"))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._route("POST")


# -- the runtime router -------------------------------------------------------------------------
def _next(h: Handler, m: re.Match[str]) -> None:
    gen = h.state.generation
    try:
        inv = h.state.next(gen)
    except Refused as exc:
        h._send(exc.status, exc.body)
        return
    if inv is None:  # superseded process or shutting down
        h.close_connection = True
        h._send(500, error_body("Runtime.Unavailable", "this runtime process was replaced"))
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
    h.state.on_dispatch(inv)
    h._send(200, inv.event, headers)


def _response(h: Handler, m: re.Match[str]) -> None:
    mode = h.headers.get("lambda-runtime-function-response-mode")
    streaming = mode == STREAMING
    body = read_body(h, MAX_STREAMED if streaming else MAX_PAYLOAD)
    now = time.monotonic()
    failed = _trailer_error(body.trailers) if streaming else None
    if mode is not None and not streaming:
        outcome = Outcome("error", json.dumps({"errorType": "Runtime.InvalidResponseModeHeader",
                                               "errorMessage": f"invalid response mode {mode!r}: "
                                               f"Lambda accepts only {STREAMING!r}"}).encode(),
                          "Runtime.InvalidResponseModeHeader", now)
    elif body.too_large:
        outcome = Outcome("too_large", b"", "Function.ResponseSizeTooLarge", now)
    elif failed:
        outcome = Outcome("error", failed[1], failed[0], now, streamed=body.data)
    else:
        outcome = Outcome("response", body.data, None, now)
    _answer(h, m.group(1), outcome)


def _error(h: Handler, m: re.Match[str]) -> None:
    body = read_body(h, MAX_PAYLOAD)
    error_type = h.headers.get("lambda-runtime-function-error-type")
    payload = _error_body(body.data, h.headers.get("content-type", ""))
    _answer(h, m.group(1), Outcome("error", payload, error_type or payload_type(payload) or "Unhandled",
                                   time.monotonic()))


def _answer(h: Handler, request_id: str, outcome: Outcome) -> None:
    status, reply, inv = h.state.answer(request_id, outcome)
    h._send(status, reply)
    if inv is not None:
        h.state.settle(inv)


def _init_error(h: Handler, m: re.Match[str]) -> None:
    body = read_body(h, MAX_PAYLOAD)
    payload = _error_body(body.data, h.headers.get("content-type", ""))
    error_type = h.headers.get("lambda-runtime-function-error-type") or payload_type(payload) or "Runtime.Unknown"
    status, reply = h.state.init_failed(Outcome("init_error", payload, error_type, time.monotonic()))
    h._send(status, reply)


def _ping(h: Handler, m: re.Match[str]) -> None:
    h._send(200, b"pong", {"Content-Type": "text/plain"})


def payload_type(body: bytes) -> str | None:
    """The errorType a runtime put in its error payload (what the caller reads), if any."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    kind = doc.get("errorType") if isinstance(doc, dict) else None
    return kind if isinstance(kind, str) and kind else None


_ID = r"([^/]+)"
RUNTIME_ROUTES = [
    ("GET", re.compile(f"{API}/runtime/invocation/next"), _next),
    ("POST", re.compile(f"{API}/runtime/invocation/{_ID}/response"), _response),
    ("POST", re.compile(f"{API}/runtime/invocation/{_ID}/error"), _error),
    ("POST", re.compile(f"{API}/runtime/init/error"), _init_error),
    ("GET", re.compile(f"{API}/ping"), _ping),
]


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
    """The Runtime API on 127.0.0.1 and a random free port: the runtime router, plus any other
    router's routes (the extensions API) on the same address, as on Lambda."""

    def __init__(self, state: RuntimeState, host: str = "127.0.0.1", port: int = 0,
                 extra_routes: list | None = None) -> None:
        handler = type("RuntimeHandler", (Handler,), {"state": state,
                                                       "routes": RUNTIME_ROUTES + list(extra_routes or [])})
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

        def serve(h: Handler, m: re.Match[str]) -> None:
            body = read_body(h, MAX_REQUEST)
            if body.too_large:
                h._send(413, error_body("RequestTooLargeException",
                                  f"Request must be smaller than {MAX_REQUEST} bytes for the Invoke operation"))
                return
            with lock:
                status, headers, reply = invoke(body.data or b"{}", dict(h.headers.items()))
            h._send(status, reply, headers)

        handler = type("InvokeHandler", (Handler,), {"routes": [("POST", re.compile(re.escape(self.PATH)), serve)]})
        self.httpd = _Server((host, port), handler)
        self.thread = _serve(self.httpd)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
