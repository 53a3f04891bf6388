"""The Extensions API (2020-01-01): the *extensions router* next to the runtime router.

External extensions are the executables in /opt/extensions. Lambda starts them before the runtime;
each registers (`POST /extension/register`, named by its file name) for INVOKE and/or SHUTDOWN, then
long-polls `GET /extension/event/next`. The init phase ends when the runtime and every extension
wait in their `next`; an invoke ends when the runtime answered and every INVOKE subscriber is back in
`event/next` (so its post-invoke work counts in Duration, as Lambda bills it); at shutdown each
SHUTDOWN subscriber gets the event and 2 s to exit. `/extension/init/error` and
`/extension/exit/error` record why an extension is leaving: its exit then fails the init with
`Extension.InitError`, or the invoke with `Extension.ExitError`; an exit without either is
`Extension.Crash`. Error bodies and codes follow AWS's emulator (403 with `Extension.*` types).

All state lives under the runtime's condition (`RuntimeState.cond`): the runtime's `/next` is gated on
`all_ready()`, with no second lock to order.
"""

from __future__ import annotations

import collections
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packer.emulator.process import Process, exit_text
from packer.emulator.server import Handler, Invocation, RuntimeState, error_body, read_body

EXT_API = "/2020-01-01/extension"
EVENTS = ("INVOKE", "SHUTDOWN")
SHUTDOWN_GRACE_S = 2.0  # Lambda's shutdown phase with extensions registered


@dataclass
class Extension:
    id: str
    name: str
    events: list[str]
    external: bool
    queue: collections.deque[dict] = field(default_factory=collections.deque)
    waiting: bool = False  # parked in GET /event/next with nothing to take
    init_error: str | None = None
    exit_error: str | None = None


class ExtensionsState:
    """The registered extensions of the current generation (one set per execution environment)."""

    def __init__(self, runtime: RuntimeState, function_name: str, handler: str) -> None:
        self.runtime = runtime
        self.cond = runtime.cond
        self.function_name = function_name
        self.handler = handler
        self.by_id: dict[str, Extension] = {}
        self.expected: set[str] = set()  # file names of the external extensions started
        self.generation = 0
        runtime.extensions = self

    def reset(self, expected: set[str]) -> None:
        with self.cond:
            self.by_id.clear()
            self.expected = set(expected)
            self.generation = self.runtime.generation
            self.cond.notify_all()

    # -- orchestrator side --------------------------------------------------------------------
    def all_registered(self) -> bool:
        with self.cond:
            return self.expected <= {e.name for e in self.by_id.values() if e.external}

    def all_ready(self) -> bool:
        """Every registered extension is parked in event/next with no event left to take."""
        return all(e.waiting and not e.queue for e in self.by_id.values())

    def find(self, name: str) -> Extension | None:
        with self.cond:
            return next((e for e in self.by_id.values() if e.name == name), None)

    def invoke(self, inv: Invocation) -> None:
        """Queue INVOKE for the subscribers (called under the runtime's lock, at dispatch)."""
        event = {"eventType": "INVOKE", "deadlineMs": inv.deadline_ms, "requestId": inv.request_id,
                 "invokedFunctionArn": inv.arn, "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace_id}}
        for ext in self.by_id.values():
            if "INVOKE" in ext.events:
                ext.queue.append(event)
        self.cond.notify_all()

    def shutdown(self, reason: str) -> list[Extension]:
        """Queue SHUTDOWN for the external subscribers; returns them."""
        deadline = int(time.time() * 1000 + SHUTDOWN_GRACE_S * 1000)
        with self.cond:
            told = [e for e in self.by_id.values() if e.external and "SHUTDOWN" in e.events]
            for ext in told:
                ext.queue.append({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline})
            self.cond.notify_all()
            return told

    def wait_ready(self, until: float, stop) -> bool:
        """Block until every extension is back in event/next (True), `until` passes or `stop()`."""
        with self.cond:
            while not self.all_ready():
                left = until - time.monotonic()
                if left <= 0 or stop():
                    return False
                self.cond.wait(min(left, 0.05))
            return True

    def log_lines(self) -> list[str]:
        """Lambda's EXTENSION line per extension, printed once init is over."""
        with self.cond:
            return [f"EXTENSION\tName: {e.name}\tState: {'Ready' if e.waiting else 'Registered'}\t"
                    f"Events: [{', '.join(e.events)}]" for e in self.by_id.values()]

    # -- extension side (HTTP handlers) -------------------------------------------------------
    def register(self, name: str, events: list[str]) -> tuple[int, dict, dict[str, str]]:
        with self.cond:
            external = name in self.expected
            if self.runtime.init_done_at is not None and not external:
                return 403, error_body("Extension.RegistrationClosed", "Extension registration closed already"), {}
            if any(e.name == name for e in self.by_id.values()):
                return 403, error_body("Extension.InvalidExtensionState", "Extension with this name already registered"), {}
            allowed = EVENTS if external else ("INVOKE",)
            for event in events:
                if event not in allowed:
                    return 403, error_body("Extension.InvalidEventType",
                                     f"{event}: {'internal extensions may only register for INVOKE' if event in EVENTS else 'unknown event type'}"), {}
            ext = Extension(str(uuid.uuid4()), name, list(events), external)
            self.by_id[ext.id] = ext
            self.cond.notify_all()
        body = {"functionName": self.function_name, "functionVersion": "$LATEST", "handler": self.handler}
        return 200, body, {"Lambda-Extension-Identifier": ext.id}

    def next_event(self, ext: Extension, generation: int) -> dict | None:
        with self.cond:
            ext.waiting = True
            self.cond.notify_all()
            while not ext.queue:
                if self.runtime.closed or generation != self.generation:
                    return None
                self.cond.wait(0.5)
            ext.waiting = False
            event = ext.queue.popleft()
            self.cond.notify_all()
            return event


def _extension(h: Handler) -> Extension | None:
    """The caller named by Lambda-Extension-Identifier, or None after rendering the 403."""
    ext_id = h.headers.get("lambda-extension-identifier")
    if not ext_id:
        h._send(403, error_body("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header"))
        return None
    state: ExtensionsState = h.state.extensions
    ext = state.by_id.get(ext_id)
    if ext is None:
        h._send(403, error_body("Extension.UnknownExtensionIdentifier", f"Unknown extension {ext_id}"))
    return ext


def _register(h: Handler, m: re.Match[str]) -> None:
    body = read_body(h, 1 << 20)
    name = h.headers.get("lambda-extension-name")
    if not name:
        h._send(403, error_body("Extension.InvalidExtensionName", "Empty extension name"))
        return
    try:
        doc = json.loads(body.data or b"{}")
        events = doc.get("events") or []
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ValueError("events must be a list of strings")
    except (ValueError, AttributeError) as exc:
        h._send(403, error_body("InvalidRequestFormat", str(exc)))
        return
    status, reply, headers = h.state.extensions.register(name, events)
    h._send(status, reply, headers)


def _event_next(h: Handler, m: re.Match[str]) -> None:
    ext = _extension(h)
    if ext is None:
        return
    event = h.state.extensions.next_event(ext, h.state.extensions.generation)
    if event is None:
        h.close_connection = True
        h._send(500, error_body("Extension.Unavailable", "this execution environment was replaced"))
        return
    h._send(200, json.dumps(event).encode(), {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})


def _error_report(attr: str):
    def handle(h: Handler, m: re.Match[str]) -> None:
        read_body(h, 1 << 20)
        ext = _extension(h)
        if ext is None:
            return
        kind = h.headers.get("lambda-extension-function-error-type")
        if not kind:
            h._send(403, error_body("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found"))
            return
        setattr(ext, attr, kind)
        h._send(202, {"status": "OK"})
    return handle


EXTENSION_ROUTES = [
    ("POST", re.compile(f"{EXT_API}/register"), _register),
    ("GET", re.compile(f"{EXT_API}/event/next"), _event_next),
    ("POST", re.compile(f"{EXT_API}/init/error"), _error_report("init_error")),
    ("POST", re.compile(f"{EXT_API}/exit/error"), _error_report("exit_error")),
]


def discover(opt: Path | None) -> list[str]:
    """The external extensions Lambda would start: executable files in /opt/extensions, by name."""
    folder = opt / "extensions" if opt else None
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and os.access(p, os.X_OK))


class ExtensionRunner:
    """The external extensions' processes of one execution environment: started before the runtime,
    watched for a crash, told SHUTDOWN at the end."""

    def __init__(self, state: ExtensionsState, log: Callable[[str], None]) -> None:
        self.state = state
        self.log = log
        self.procs: dict[str, Process] = {}

    def start(self, names: list[str], spawn: Callable[[str], Process], limit_s: float) -> None:
        """Start every extension, then wait until all registered (or one exited, or `limit_s`)."""
        for name in names:
            self.procs[name] = spawn(name)
        until = time.monotonic() + limit_s
        while not self.state.all_registered() and not self.failure() and time.monotonic() < until:
            time.sleep(0.002)

    def failure(self) -> tuple[str, str, str] | None:
        """(name, error type, how it exited) of the first extension that exited, if any."""
        for name, proc in self.procs.items():
            if proc.exited.is_set():
                ext = self.state.find(name)
                kind = ("Extension.InitError" if ext and ext.init_error else
                        "Extension.ExitError" if ext and ext.exit_error else "Extension.Crash")
                return name, kind, exit_text(proc.popen.returncode, True)
        return None

    def stop(self, reason: str) -> None:
        """SHUTDOWN to the subscribers, up to 2 s for them to exit, then kill what is left."""
        if self.procs and self.state.shutdown(reason):
            until = time.monotonic() + SHUTDOWN_GRACE_S
            while time.monotonic() < until and not all(p.exited.is_set() for p in self.procs.values()):
                time.sleep(0.005)
        for proc in self.procs.values():
            proc.stop()
        self.procs.clear()
