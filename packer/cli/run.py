"""`layerpack invoke` and `layerpack run`: execute a layer's bootstrap as Lambda would, locally.

A thin shell over `packer.emulator.invoke.LocalFunction`: parse options, feed events, print the
responses on stdout and Lambda's log lines (START / END / REPORT and the bootstrap's own output)
on stderr, then the findings. Exit 0 when every invocation succeeded, 1 when one failed, 2 for
bad usage or an emulator that cannot start.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from packer.cli import options
from packer.cli.base import EXIT_CLEAN, EXIT_FINDINGS, main
from packer.emulator.invoke import (DEFAULT_MEMORY, DEFAULT_TIMEOUT, FunctionConfig, InvokeResult,
                                    LocalFunction, parse_events)
from packer.emulator.server import InvokeServer
from packer.errors import UsageError
from packer.findings import Finding, Severity


def _env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _common(fn):
    decorators = [
        click.argument("layers", nargs=-1, type=click.Path(path_type=Path)),
        click.option("--function", "function", type=click.Path(path_type=Path),
                     help="Function code (directory or zip), mounted at /var/task."),
        click.option("--handler", default="function.handler", show_default=True, help="Sets _HANDLER."),
        click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Extra environment variable (repeatable)."),
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
    ]
    for opt in reversed(decorators):
        fn = opt(fn)
    return fn


def _config(layers, function, handler, env, timeout, memory, runtime, arch, name, no_sandbox) -> FunctionConfig:
    return FunctionConfig(layers=list(layers), function=function, runtime=runtime, arch=arch, handler=handler,
                          env=_env_pairs(env), timeout=timeout, memory=memory, name=name, sandbox=not no_sandbox)


def _log(line: str) -> None:
    click.echo(line, err=True)


def _print_findings(findings: list[Finding], verbose: bool = False) -> None:
    seen = set()
    for f in findings:
        if f.severity == Severity.INFO and not verbose:
            continue
        key = (f.code, f.message)
        if key in seen:
            continue
        seen.add(key)
        click.echo(f"{f.code} {f.severity}: {f.message}\n      fix: {f.hint}", err=True)


@main.command("invoke")
@_common
@click.option("--event", "event", default=None, metavar="FILE|-",
              help="Event JSON file (one document, or JSON lines for several); '-' reads stdin. Default: {}.")
@options.json_output
def invoke_cmd(layers, function, handler, env, timeout, memory, runtime, arch, name, verbose, no_sandbox, event,
               as_json) -> None:
    """Run the bootstrap of LAYER... (merged at /opt in order) and send it one or more events.

    \b
    layerpack invoke ./layer --function ./fn --handler function.handler --event event.json
    echo '{"n": 1}' | layerpack invoke layer.zip --event -
    """
    config = _config(layers, function, handler, env, timeout, memory, runtime, arch, name, no_sandbox)
    config.validate()
    events = _read_events(event)
    results: list[InvokeResult] = []
    with LocalFunction(config, log=_log) as fn:
        for ev in events:
            result = fn.invoke(ev)
            results.append(result)
            if as_json:
                click.echo(json.dumps(result.to_json()))
            else:
                click.echo(result.payload.decode("utf-8", "replace"))
            sys.stdout.flush()
        notes = fn.notes
    _print_findings(notes + [f for r in results for f in r.findings], verbose)
    sys.exit(EXIT_CLEAN if all(r.ok for r in results) else EXIT_FINDINGS)


def _read_events(event: str | None) -> list[bytes]:
    if event is None:
        return [b"{}"]
    if event == "-":
        return parse_events(sys.stdin.read(), "<stdin>")
    path = Path(event)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--event {event}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
    return parse_events(text, event)


@main.command("run")
@_common
@click.option("--port", type=int, default=9000, show_default=True,
              help="Port of the invoke endpoint on --host (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def run_cmd(layers, function, handler, env, timeout, memory, runtime, arch, name, verbose, no_sandbox, port, host) -> None:
    """Keep the function warm and accept invocations like AWS's emulator.

    \b
    layerpack run ./layer --function ./fn --port 9000 &
    curl -d '{"n": 1}' http://127.0.0.1:9000/2015-03-31/functions/function/invocations
    """
    config = _config(layers, function, handler, env, timeout, memory, runtime, arch, name, no_sandbox)
    config.validate()
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: not a port number")
    with LocalFunction(config, log=_log) as fn:
        _print_findings(fn.notes, verbose)

        def handle(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            result = fn.invoke(body, client_context=headers.get("X-Amz-Client-Context"))
            _print_findings(result.findings)
            out = {"X-Amzn-RequestId": result.request_id, "X-Amz-Executed-Version": "$LATEST"}
            if not result.ok:
                out["X-Amz-Function-Error"] = "Unhandled"
            return 200, out, result.payload

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
