"""`layerpack invoke` and `layerpack run`: execute a layer's bootstrap as Lambda would, locally.

A thin shell over `packer.emulator.invoke.LocalFunction`: parse options, feed events, print the
responses on stdout and Lambda's log lines (START / END / REPORT and the bootstrap's own output)
on stderr, then the findings. Exit 0 when every invocation succeeded, 1 when one failed, 2 for
bad usage or an emulator that cannot start.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import signal
import sys
import threading
import time
from pathlib import Path

import click

from packer.cli import options
from packer.cli.base import EXIT_CLEAN, EXIT_FINDINGS, main
from packer.emulator.invoke import (DEFAULT_MEMORY, DEFAULT_TIMEOUT, FunctionConfig, InvokeResult,
                                    LocalFunction, parse_events)
from packer.emulator.server import MAX_REQUEST, InvokeServer
from packer.errors import UsageError
from packer.findings import Finding, Severity
from packer.render import json_text, print_findings


def _common(fn):
    decorators = [
        click.argument("layers", nargs=-1, type=click.Path(path_type=Path)),
        click.option("--function", "function", type=click.Path(path_type=Path),
                     help="Function code (directory or zip), mounted at /var/task."),
        click.option("--handler", default="function.handler", show_default=True, help="Sets _HANDLER."),
        options.env("Extra environment variable of the function (repeatable)."),
        click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
                     help="Seconds before an invocation is killed (the process restarts on the next invoke)."),
        click.option("--memory", type=int, default=DEFAULT_MEMORY, show_default=True,
                     help="Memory size in MB (enforced by a cgroup when allowed, else by a sampler)."),
        options.runtime(help="Target runtime whose libraries and commands the sandbox offers."),
        options.arch(help="Target architecture (default: this host's; only the host's can run)."),
        click.option("--name", default="function", show_default=True, help="AWS_LAMBDA_FUNCTION_NAME."),
        click.option("-v", "--verbose", is_flag=True, help="Also show informational notes (host gaps)."),
        click.option("--no-sandbox", is_flag=True,
                     help="Run on the host without bubblewrap (host libraries visible: misses missing-library bugs)."),
        click.option("--image", "image", default=None, metavar="REF",
                     help="Run on this image's root file system (runtime name or HOST/REPO:TAG; pulled if not cached)."),
        click.option("--rootfs", "rootfs", type=click.Path(path_type=Path), default=None, metavar="DIR|TAR",
                     help="Run on an unpacked root file system or a `docker export` tar."),
        click.option("--host-files", is_flag=True,
                     help="Use host copies of the runtime's libraries even when its base image is cached."),
    ]
    for opt in reversed(decorators):
        fn = opt(fn)
    return fn


def _config(layers, function, handler, env, timeout, memory, runtime, arch, name, no_sandbox,
            image=None, rootfs=None, host_files=False) -> FunctionConfig:
    return FunctionConfig(layers=list(layers), function=function, runtime=runtime, arch=arch, handler=handler,
                          env=env, timeout=timeout, memory=memory, name=name, sandbox=not no_sandbox,
                          image=image, rootfs=rootfs, use_cached_image=not host_files)


def _write(stream, line: str) -> None:
    """One line (or a few) in one write, flushed. Log lines and payloads are plain text; click.echo's
    per-call checks cost ~25 us a line, a quarter of a warm event's overhead (bench/emulator_overhead.py)."""
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # closed (a pipe reader that went away)
        pass


def _log(line: str) -> None:
    _write(sys.stderr, line)


class LineWriter:
    """Lines for stdout and stderr during a batch of invocations, in as few writes as a reader cannot
    tell apart. A line given to `soon` (START, a payload) waits until the next `now` on its stream
    (the event's END, a line of its output) or FLUSH_S, whichever comes first; order is kept. Each
    write to a pipe wakes its reader: three writes per warm event cost ~55 us of ~0.29 ms on a
    2-core machine (bench/emulator_overhead.py, output to pipes vs files)."""

    FLUSH_S = 0.01

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[object, list[str]] = {sys.stdout: [], sys.stderr: []}
        self._due = threading.Event()
        self._closed = False
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self._flusher.start()

    def soon(self, stream, line: str) -> None:
        with self._lock:
            self._pending[stream].append(line)
        if not self._due.is_set():
            self._due.set()

    def now(self, stream, line: str) -> None:
        with self._lock:
            pending, self._pending[stream] = self._pending[stream], []
            pending.append(line)
            _write(stream, "\n".join(pending))

    def log(self, line: str) -> None:
        self.now(sys.stderr, line)

    def log_soon(self, line: str) -> None:
        self.soon(sys.stderr, line)

    def flush(self) -> None:
        with self._lock:
            for stream, pending in self._pending.items():
                if pending:
                    self._pending[stream] = []
                    _write(stream, "\n".join(pending))

    def close(self) -> None:
        self._closed = True
        self._due.set()
        self._flusher.join(1)
        self.flush()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._due.wait()
            time.sleep(self.FLUSH_S)
            self._due.clear()
            self.flush()


def _print_findings(findings: list[Finding], verbose: bool = False) -> None:
    seen = set()
    shown = []
    for f in findings:
        if f.severity == Severity.INFO and not verbose:
            continue
        key = (f.code, f.message)
        if key in seen:
            continue
        seen.add(key)
        shown.append(f)
    print_findings(shown, err=True)


CLIENT_CONTEXT_MAX = 3583  # Lambda's limit on the base64 ClientContext of an Invoke request


def decode_client_context(value: str) -> str:
    """ClientContext as Lambda takes it (base64 of a JSON object) -> the JSON text the runtime gets
    in Lambda-Runtime-Client-Context. Raises UsageError with what is wrong."""
    if len(value) > CLIENT_CONTEXT_MAX:
        raise UsageError(f"client context is {len(value)} bytes; Lambda allows {CLIENT_CONTEXT_MAX} (base64)")
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
        doc = json.loads(text)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise UsageError("client context must be base64 of a JSON object (as `aws lambda invoke "
                         "--client-context` takes it)", hint="e.g. $(echo -n '{\"custom\":{\"k\":1}}' | base64 -w0)") from exc
    if not isinstance(doc, dict):
        raise UsageError("client context must be base64 of a JSON object")
    return text


@main.command("invoke")
@_common
@click.option("--event", "event", default=None, metavar="FILE|-",
              help="Event JSON file (one document, or JSON lines for several); '-' reads stdin. Default: {}.")
@click.option("--client-context", "client_context", default=None, metavar="BASE64",
              help="ClientContext: base64 of a JSON object, as `aws lambda invoke --client-context` takes it.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON lines: one object per event, as its invocation ends, each with \"schema\": "
                   "\"layerpack.invoke/1\" (docs/run.md).")
def invoke_cmd(layers, function, handler, env, timeout, memory, runtime, arch, name, verbose, no_sandbox, image,
               rootfs, host_files, event, client_context, as_json) -> None:
    """Run the bootstrap of LAYER... (merged at /opt in order) and send it one or more events.

    \b
    layerpack invoke ./layer --function ./fn --handler function.handler --event event.json
    echo '{"n": 1}' | layerpack invoke layer.zip --event -
    """
    config = _config(layers, function, handler, env, timeout, memory, runtime, arch, name, no_sandbox,
                     image, rootfs, host_files)
    config.validate()
    context = decode_client_context(client_context) if client_context is not None else None
    events = _read_events(event)
    out = LineWriter()

    def show(result: InvokeResult) -> None:
        """Each result as it is concluded (on the emulator's server thread for an answer)."""
        out.soon(sys.stdout, json_text("invoke", result.to_json(), one_line=True) if as_json
                 else result.payload.decode("utf-8", "replace"))

    try:
        with LocalFunction(config, log=out.log, log_soon=out.log_soon) as fn:
            results = list(fn.invoke_many(events, client_context=context, on_result=show))
            notes = fn.notes
    finally:
        out.close()
    _print_findings(_deprecation(runtime) + notes + [f for r in results for f in r.findings], verbose)
    sys.exit(EXIT_CLEAN if all(r.ok for r in results) else EXIT_FINDINGS)


def _deprecation(name: str | None) -> list[Finding]:
    """LP431, the warning `analyze` gives, when the runtime's deprecation date has come (runtimes.toml)."""
    from packer import runtime as runtimes

    warning = runtimes.deprecation_warning(name or runtimes.default_runtime())
    if warning is None:
        return []
    from packer.analyze import RUNTIME_DEPRECATED  # only then: analyze is 90 ms of imports
    from packer.findings import finding

    return [finding(RUNTIME_DEPRECATED, "--runtime", warning)]


def _read_events(event: str | None) -> list[bytes]:
    if event is None:
        return [b"{}"]
    if event == "-":
        events, origin = parse_events(sys.stdin.read(), "<stdin>"), "<stdin>"
    else:
        try:
            text = Path(event).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--event {event}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
        events, origin = parse_events(text, event), event
    for i, ev in enumerate(events, 1):
        if len(ev) > MAX_REQUEST:  # the same limit `run` (and Lambda's Invoke) applies
            raise UsageError(f"--event {origin}: event {i} is {len(ev)} bytes; "
                             f"Lambda's Invoke takes at most {MAX_REQUEST} bytes")
    return events


class _LogTail:
    """Echo log lines to stderr and keep the recent ones, for `X-Amz-Log-Type: Tail`."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=5000)

    def log(self, line: str) -> None:
        self.lines.append(line)
        _log(line)

    def result(self, request_id: str) -> str:
        """base64 of the last 4 KB of this invocation's log, START to REPORT, as Lambda returns it."""
        lines = list(self.lines)
        start = max((i for i, line in enumerate(lines) if line.startswith(f"START RequestId: {request_id}")),
                    default=0)
        text = "".join(line + "\n" for line in lines[start:]).encode()
        return base64.b64encode(text[-4096:]).decode()


def _invoke_handler(fn: LocalFunction, logs: _LogTail):
    """The invoke endpoint's semantics (Lambda's Invoke API): invocation types, client context,
    trace header, log tail."""

    def handle(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        lower = {k.lower(): v for k, v in headers.items()}
        kind = lower.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return 400, {}, json.dumps({"Type": "User", "message": f"invalid invocation type {kind!r}"}).encode()
        context = None
        if "x-amz-client-context" in lower:
            try:
                context = decode_client_context(lower["x-amz-client-context"])
            except UsageError as exc:
                return 400, {}, json.dumps({"Type": "User", "message": exc.args[0]}).encode()
        if kind == "DryRun":  # permissions and parameters check only: nothing runs
            return 204, {}, b""
        trace = lower.get("x-amzn-trace-id")
        if kind == "Event":  # queued, answered at once; runs after whatever is running now
            threading.Thread(target=lambda: _print_findings(
                fn.invoke(body, client_context=context, trace_id=trace).findings), daemon=True).start()
            return 202, {}, b""
        result = fn.invoke(body, client_context=context, trace_id=trace)
        _print_findings(result.findings)
        out = {"X-Amzn-RequestId": result.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if not result.ok:
            out["X-Amz-Function-Error"] = "Unhandled"
        if lower.get("x-amz-log-type") == "Tail":
            out["X-Amz-Log-Result"] = logs.result(result.request_id)
        return 200, out, result.payload

    return handle


@main.command("run")
@_common
@click.option("--port", type=int, default=9000, show_default=True,
              help="Port of the invoke endpoint on --host (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def run_cmd(layers, function, handler, env, timeout, memory, runtime, arch, name, verbose, no_sandbox, image, rootfs,
            host_files, port, host) -> None:
    """Keep the function warm and accept invocations like AWS's emulator.

    \b
    layerpack run ./layer --function ./fn --port 9000 &
    curl -d '{"n": 1}' http://127.0.0.1:9000/2015-03-31/functions/function/invocations
    """
    config = _config(layers, function, handler, env, timeout, memory, runtime, arch, name, no_sandbox,
                     image, rootfs, host_files)
    config.validate()
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: not a port number")
    logs = _LogTail()
    with LocalFunction(config, log=logs.log) as fn:
        _print_findings(fn.notes, verbose)
        handle = _invoke_handler(fn, logs)
        try:
            server = InvokeServer(handle, host=host, port=port)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        click.echo(f"listening on http://{host}:{server.port}{InvokeServer.PATH}", err=True)
        click.echo(f"http://{host}:{server.port}{InvokeServer.PATH}")
        sys.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    sys.exit(EXIT_CLEAN)
