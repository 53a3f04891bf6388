"""Running a layer the way Lambda would: one execution environment, invoked event by event.

`LocalFunction` owns one environment: the staged `/opt` and `/var/task`, the rebuilt runtime root,
the Runtime API server and at most one bootstrap process. `invoke()` starts the process when none
is alive (a cold start, whose Init Duration is the time from spawn to the first `/next`), hands the
event over, and waits for the answer, the deadline, or the process's death. Every way an invocation
can end becomes an `InvokeResult` carrying Lambda's error payload and REPORT numbers, plus a finding
with a stable LP8xx code that says what to fix. Anything that ends the process (timeout, crash,
init error, out of memory) makes the next invoke a cold start, as on Lambda.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packer import quotas
from packer import runtime as runtime_mod
from packer.emulator import managed, memory, rootfs, sandbox, staging, userland
from packer.emulator.extensions import EXTENSION_ROUTES, ExtensionRunner, ExtensionsState, discover
from packer.emulator.process import Process, exit_text
from packer.emulator.server import (MAX_PAYLOAD, Invocation, Outcome, RuntimeAPIServer, RuntimeState,
                                    payload_type)
from packer.errors import EmulatorError, UsageError
from packer.findings import Finding, Severity, define, finding

if TYPE_CHECKING:
    from packer.images.store import CachedImage

# -- finding codes (LP8xx: local run) ---------------------------------------------------------
NO_BOOTSTRAP = define("LP801", Severity.ERROR, "no valid bootstrap (Runtime.InvalidEntrypoint)",
                      "put an executable file named `bootstrap` (mode 0755) at the root of the function zip or "
                      "of a layer; `layerpack check` says why it is not found")
EXEC_FAILED = define("LP802", Severity.ERROR, "bootstrap cannot be executed (Runtime.InvalidEntrypoint)",
                     "build it for the function's architecture; a script's #! interpreter must exist on the runtime")
INIT_EXIT = define("LP803", Severity.ERROR, "bootstrap exited before asking for an event (Runtime.ExitError)",
                   "read its stderr above; a custom runtime must loop on GET /runtime/invocation/next")
MISSING_LIB = define("LP804", Severity.ERROR, "a shared library is missing on the runtime",
                     "`layerpack vendor` copies the library into the layer's lib/ (on LD_LIBRARY_PATH as /opt/lib)")
INIT_ERROR = define("LP805", Severity.ERROR, "the runtime reported an init error (POST /runtime/init/error)",
                    "fix the initialisation failure the error message names (handler file, configuration)")
FUNCTION_ERROR = define("LP806", Severity.ERROR, "the function returned an error (POST /invocation/{id}/error)",
                        "the error type and message come from the handler; see its logs above")
TIMEOUT = define("LP807", Severity.ERROR, "the invocation timed out; the process was killed",
                 "raise --timeout, or find what the handler waits on; the next invoke is a cold start")
CRASH = define("LP808", Severity.ERROR, "the runtime exited during an invocation (Runtime.ExitError)",
               "the process crashed or exited while handling the event; the next invoke gets a fresh process")
OUT_OF_MEMORY = define("LP809", Severity.ERROR, "the function ran out of memory (Runtime.OutOfMemory)",
                       "raise --memory or reduce the handler's memory use")
TOO_LARGE = define("LP810", Severity.ERROR, "response larger than 6 MB (Function.ResponseSizeTooLarge)",
                   "return less data, or write it to S3 and return a reference")
INIT_TIMEOUT = define("LP811", Severity.ERROR, "init did not finish in time (no GET /next)",
                      "the bootstrap must reach GET /runtime/invocation/next within the init limit (10 s on Lambda)")
EXTENSION_FAILED = define("LP812", Severity.ERROR, "an extension failed (Extension.Crash / InitError / ExitError)",
                          "an executable in /opt/extensions must register, then loop on GET /extension/event/next; "
                          "read its output above")
HOST_INTERPRETER = define("LP824", Severity.WARNING, "the host's interpreter stands in for the managed runtime's",
                          "code that needs a feature of the runtime's Python or Node.js version may behave "
                          "differently here")
NO_SANDBOX = define("LP820", Severity.WARNING, "running without a sandbox: the host's libraries and commands are visible",
                    "install bubblewrap so missing libraries fail here as they would on Lambda")
HOST_LACKS_LIBS = define("LP821", Severity.INFO, "runtime libraries the host has no copy of are absent from the sandbox",
                         "a program needing one of them fails here but would load on Lambda")
HOST_LACKS_COMMANDS = define("LP822", Severity.INFO, "runtime commands the host has no copy of are absent from the sandbox",
                             "install the host package that provides them to use them in a local run")
NEWER_GLIBC = define("LP823", Severity.WARNING, "the host's glibc is newer than the runtime's",
                     "a binary needing a GLIBC_x.y the runtime lacks runs here; `layerpack analyze` reports it")

DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY = quotas.MIN_MEMORY_MB
INIT_LIMIT = 10.0
RESERVED_ENV = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
_ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]+")
_MISSING_LIB = re.compile(r"error while loading shared libraries: (\S+): cannot open shared object file")
_EXEC_FAIL = re.compile(r"^(?:bwrap: execvp|setpriv: failed to execute) (\S+): (.*)$")


@dataclass
class FunctionConfig:
    layers: list[Path]
    function: Path | None = None
    runtime: str = field(default_factory=runtime_mod.default_runtime)
    arch: str | None = None  # None: the host's
    handler: str = "function.handler"
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY
    init_timeout: float = INIT_LIMIT
    name: str = "function"
    region: str = "us-east-1"
    sandbox: bool = True
    cache: Path | None = None
    image: str | None = None  # --image REF: run on that image's root file system
    rootfs: Path | None = None  # --rootfs DIR|TAR
    use_cached_image: bool = True  # no --image: use the runtime's base image if already cached
    unprivileged: bool = True  # run the bootstrap as sbx_user1051 (uid 993), as Lambda does

    def validate(self) -> None:
        if self.image is not None and self.rootfs is not None:
            raise UsageError("--image and --rootfs both name a root file system; give one")
        if (self.image is not None or self.rootfs is not None) and not self.sandbox:
            raise UsageError("--image/--rootfs need the sandbox", hint="drop --no-sandbox")
        if not self.layers and self.function is None:
            raise UsageError("nothing to run", hint="give a layer (directory, zip or bootstrap file) or --function")
        if not 0 < self.timeout <= quotas.MAX_TIMEOUT_S:
            raise UsageError(f"--timeout {self.timeout}: Lambda allows 1 to {quotas.MAX_TIMEOUT_S} seconds")
        if not quotas.MIN_MEMORY_MB <= self.memory <= quotas.MAX_MEMORY_MB:
            raise UsageError(f"--memory {self.memory}: Lambda allows {quotas.MIN_MEMORY_MB} to {quotas.MAX_MEMORY_MB} MB")
        for key in self.env:
            if key in RESERVED_ENV:
                raise UsageError(f"--env {key}: reserved by Lambda and set by the emulator",
                                 hint="use --handler for _HANDLER, --memory / --timeout for the limits")
            if not _ENV_NAME.fullmatch(key):
                raise UsageError(f"--env {key}: names start with a letter and use A-Z a-z 0-9 _ (2+ characters)")


@dataclass
class Report:
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_mb: int
    init_ms: float | None
    status: str | None = None  # None (success), "timeout", "error"
    error_type: str | None = None

    def line(self) -> str:
        parts = [f"REPORT RequestId: {self.request_id}", f"Duration: {self.duration_ms:.2f} ms",
                 f"Billed Duration: {self.billed_ms} ms", f"Memory Size: {self.memory_mb} MB",
                 f"Max Memory Used: {self.max_memory_mb} MB"]
        if self.init_ms is not None:
            parts.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.status:
            parts.append(f"Status: {self.status}")
        if self.error_type:
            parts.append(f"Error Type: {self.error_type}")
        return "\t".join(parts)

    def to_json(self) -> dict:
        return {"requestId": self.request_id, "durationMs": round(self.duration_ms, 2), "billedMs": self.billed_ms,
                "memorySizeMb": self.memory_mb, "maxMemoryUsedMb": self.max_memory_mb,
                "initDurationMs": None if self.init_ms is None else round(self.init_ms, 2),
                "status": self.status, "errorType": self.error_type}


@dataclass
class InvokeResult:
    request_id: str
    payload: bytes
    error_type: str | None  # None on success; the errorType otherwise
    report: Report
    cold: bool
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_type is None

    def to_json(self) -> dict:
        try:
            payload = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError):
            payload = self.payload.decode("utf-8", "replace")
        return {"requestId": self.request_id, "ok": self.ok, "functionError": None if self.ok else "Unhandled",
                "errorType": self.error_type, "cold": self.cold, "payload": payload,
                "report": self.report.to_json(), "findings": [f.to_json() for f in self.findings]}


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class LocalFunction:
    """One local execution environment. Use as a context manager; `invoke()` is thread-safe."""

    def __init__(self, config: FunctionConfig, log: Callable[[str], None] | None = None,
                 log_soon: Callable[[str], None] | None = None) -> None:
        """`log` writes a log line now; `log_soon`, if given, may hold a START line briefly, until the
        next `log` call or a few milliseconds pass (see packer.cli.run.LineWriter)."""
        config.validate()
        self.config = config
        self.log = log or (lambda line: None)
        self.log_soon = log_soon or self.log
        arch = config.arch or runtime_mod.MACHINE_ARCH.get(rootfs.host_machine(), "x86_64")
        self.rt = runtime_mod.load(config.runtime, arch)
        self.notes: list[Finding] = []
        self._lock = threading.Lock()
        self._proc: Process | None = None
        self._ext: ExtensionRunner | None = None  # set once the environment is prepared
        self._spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerpack-spawn")
        self._last_peak = 0  # memory peak of the last process, read before its cgroup goes away
        self._on_result: Callable[[InvokeResult], None] | None = None  # invoke_many's, while it runs
        self._scratch = Path(tempfile.mkdtemp(prefix="layerpack-run-"))
        self.server: RuntimeAPIServer | None = None
        self.image: CachedImage | None = None  # the image root in use, None: host files
        self.drop: Path | None = None
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    # -- setup ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        cfg = self.config
        budget = staging.Budget()  # Lambda counts the function and its layers together
        self.opt, skipped = staging.stage(list(cfg.layers), self._scratch / "opt", budget)
        fn, skipped_fn = staging.stage([cfg.function] if cfg.function else [], self._scratch / "task", budget)
        self.task = fn
        for why in skipped + skipped_fn:
            self.log(f"layerpack: skipped zip entry {why} (not unpacked: it would land outside or cannot be read)")
        if cfg.sandbox:
            reason = sandbox.probe()
            if reason:
                raise EmulatorError(reason, hint="or run with --no-sandbox (host libraries and commands visible)")
            self.image = userland.resolve(cfg.image, cfg.rootfs, self.rt, self.log,
                                          use_cached_default=cfg.use_cached_image)
            self.drop = rootfs.uid_helper(cfg.cache) if cfg.unprivileged else None
            if cfg.unprivileged and self.drop is None and os.geteuid() == 0:
                self.log("layerpack: no setpriv on this host (util-linux): the bootstrap runs as root, "
                         "not as Lambda's sbx_user1051")
            if self.image is not None:
                self.root = self.image.root
            else:
                self._host_root()
        else:
            self.root = self._scratch
            self.notes.append(finding(NO_SANDBOX, "/", "--no-sandbox: the bootstrap runs on the host with the "
                                      "host's /usr/lib and PATH; a missing library may go unnoticed"))
            if self.task is None:
                self.task = self._scratch / "task"
                self.task.mkdir()
        host_glibc = _host_glibc()
        ceiling = self.rt.ceiling("GLIBC")
        if self.image is None and host_glibc and ceiling and host_glibc > ceiling:
            self.notes.append(finding(NEWER_GLIBC, "/usr/lib64/libc.so.6",
                                      f"host glibc {'.'.join(map(str, host_glibc))} stands in for the runtime's "
                                      f"{'.'.join(map(str, ceiling))}"))
        self.bootstrap = staging.find_bootstrap(self.opt, self.task, self.root)
        self.managed = None
        if self.rt.family in ("python", "node") and cfg.sandbox and self.image is None:
            # A managed runtime: Lambda runs its own /var/runtime/bootstrap, never a layer's.
            offered = {Path(p).name for p in self.rt.libs.entries}
            prepare = managed.prepare_python if self.rt.family == "python" else managed.prepare_node
            self.managed = prepare(self.rt.name, offered, self._scratch)
            self.bootstrap = staging.Bootstrap(managed.BOOTSTRAP, f"{self.rt.name}'s own bootstrap")
            if self.managed.host_version != self.managed.runtime_version:
                self.notes.append(finding(HOST_INTERPRETER, managed.LANG + "/bin",
                                          f"host {self.rt.family} {self.managed.host_version} runs the handler of "
                                          f"{self.rt.name} ({self.rt.family} {self.managed.runtime_version})"))
        self.state = RuntimeState(cfg.timeout)
        self.state.on_dispatch = self._dispatched
        self.state.on_answer = self._answered
        self.extensions = ExtensionsState(self.state, cfg.name, cfg.handler)
        self.ext_names = discover(self.opt)
        self._ext = ExtensionRunner(self.extensions, self.log)
        self.server = RuntimeAPIServer(self.state, extra_routes=EXTENSION_ROUTES)

    def _host_root(self) -> None:
        """The runtime rebuilt from host files (rootfs.plan_root), and what the host could not supply."""
        plan = rootfs.plan_root(self.rt)
        self.root = rootfs.materialize(plan, self.config.cache)
        hint = userland.host_hint(self.rt)
        if hint:
            self.log(hint)
        if plan.missing_libs:
            self.notes.append(finding(HOST_LACKS_LIBS, "/usr/lib64",
                                      f"{len(plan.missing_libs)} of {len({Path(p).name for p in self.rt.libs.entries})} "
                                      f"library names of {self.rt.name} have no host copy",
                                      missing=list(plan.missing_libs)))
        if plan.missing_commands:
            self.notes.append(finding(HOST_LACKS_COMMANDS, "/usr/bin",
                                      f"{len(plan.missing_commands)} commands of {self.rt.name} have no host copy",
                                      missing=list(plan.missing_commands)))

    def environment(self) -> dict[str, str]:
        """Lambda's environment for the bootstrap (docs/lambda.md, "The environment a function starts with")."""
        cfg = self.config
        stream = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
        env = dict(self.image.env) if self.image is not None else {}
        env |= {
            "AWS_LAMBDA_RUNTIME_API": self.server.address if self.server else "127.0.0.1:9001",
            "_HANDLER": cfg.handler,
            "LAMBDA_TASK_ROOT": sandbox.TASK_ROOT,
            "LAMBDA_RUNTIME_DIR": sandbox.RUNTIME_DIR,
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_REGION": cfg.region,
            "AWS_DEFAULT_REGION": cfg.region,
            "PATH": ":".join(self.rt.path_env),
            "LD_LIBRARY_PATH": ":".join(self.rt.ld_library_path),
            "TZ": ":/etc/localtime",
            "LANG": "en_US.UTF-8",
        }
        if self.managed:
            env.update(self.managed.env)
        env.update(cfg.env)
        return env

    def _host_environment(self) -> dict[str, str]:
        """--no-sandbox: the same variables, with /opt and /var/task mapped to the staged dirs."""
        env = self.environment()
        opt = str(self.opt or self._scratch / "opt")
        task = str(self.task)
        env["LAMBDA_TASK_ROOT"] = task
        env["PATH"] = f"{opt}/bin:" + os.environ.get("PATH", "/usr/bin:/bin")
        env["LD_LIBRARY_PATH"] = f"{task}:{task}/lib:{opt}/lib"
        env["TZ"] = "UTC"
        return env

    # -- processes -------------------------------------------------------------------------------
    def _start(self) -> Process:
        """A new execution environment: extensions first (each registers), then the runtime."""
        self.state.new_generation()
        self.extensions.reset(set(self.ext_names))
        meter = memory.meter(self.config.memory)
        tmp = self._scratch / f"tmp-{self.state.generation}"  # one /tmp per environment, shared
        tmp.mkdir()
        tmp.chmod(0o1777)  # like a tmpfs /tmp: the unprivileged sandbox user writes there
        if not self.config.sandbox:
            where = "NO SANDBOX: host view"
        elif self.image is None:
            where = f"{self.rt.arch}, layerpack sandbox"
        else:
            where = (f"{self.rt.arch}, layerpack sandbox on "
                     + userland.describe(self.image, self.config.image, self.config.rootfs))
        self.log(f"INIT_START Runtime Version: {self.rt.name} ({where})")
        began = time.monotonic()
        if self.ext_names:
            self._ext.start(self.ext_names, lambda name: self._process(
                f"{sandbox.OPT}/extensions/{name}", tmp, memory.Joined(meter)), self.config.init_timeout)
            failed = self._ext.failure()
            if failed:
                self.state.init_failed(Outcome("init_error", _error_payload(
                    failed[1], f"extension {failed[0]} exited during init ({failed[2]})"), failed[1], time.monotonic()))
        proc = self._process(self.bootstrap.path or "", tmp, meter)
        if self.ext_names:
            proc.started = began  # Init Duration covers the extensions' init too
        return proc

    def _process(self, path: str, tmp: Path, meter: memory.Meter) -> Process:
        """Start `path` (a path inside the sandbox) as a process of this environment."""
        if self.config.sandbox:
            spec = sandbox.SandboxSpec(root=self.root, opt=self.opt, task=self.task, command=(path,),
                                       env=self.environment(), usr_merge=self.rt.usr_merge,
                                       image=self.image is not None, drop=self.drop,
                                       unprivileged=self.config.unprivileged, tmp=tmp,
                                       binds=tuple(self.managed.binds) if self.managed else ())
            return Process(sandbox.bwrap_argv(spec, sandbox.bwrap_path() or "bwrap"), meter, self.log, {}, None)
        return Process([str(self._host_path(path))], meter, self.log, self._host_environment(), self.task)

    def _host_path(self, path: str) -> Path:
        if path.startswith(sandbox.TASK_ROOT + "/"):
            return Path(self.task) / path[len(sandbox.TASK_ROOT) + 1:]
        return Path(self.opt) / path[len(sandbox.OPT) + 1:]

    def _drop(self, reason: str = "failure") -> None:
        """End the environment: the runtime is killed, extensions get SHUTDOWN (`reason`: spindown,
        timeout or failure, as Lambda names it) and up to 2 s to exit."""
        if self._proc is not None:
            self._last_peak = self._proc.meter.peak()
            self._proc.kill()
            if self._ext is not None:
                self._ext.stop(reason)
            self._proc.stop()
            self._proc = None
        elif self._ext is not None:
            self._ext.stop(reason)

    @property
    def warm(self) -> bool:
        return self._proc is not None and not self._proc.exited.is_set()

    # -- invoking --------------------------------------------------------------------------------
    def invoke(self, event: bytes, *, client_context: str | None = None, cognito_identity: str | None = None,
               trace_id: str | None = None) -> InvokeResult:
        with self._lock:
            return self._run(self._invocation(event, client_context, cognito_identity, trace_id), None)

    def invoke_many(self, events: Iterable[bytes], *, client_context: str | None = None,
                    on_result: Callable[[InvokeResult], None] | None = None) -> Iterator[InvokeResult]:
        """Results of `events` in order. All events are queued at once, so the next one is already
        there when the runtime asks for it (as on a busy function): a warm event then costs no
        hand-off between threads, only the runtime's own round trip. A process that dies leaves the
        rest queued for its successor, as Lambda retries nothing but starts a fresh environment.
        `on_result` gets each result as soon as it exists, on the thread that concluded it (the
        server's, for an answer): the caller's thread is then not woken once per event, which cost
        two thread switches of a ~0.3 ms warm event (bench/emulator_overhead.py)."""
        with self._lock:
            invs = [self._invocation(e, client_context, None, None) for e in events]
            if self.bootstrap.path is not None:
                self._queue_all(invs)
            self._on_result = on_result
            try:
                last = invs[-1].done if on_result is not None and invs else None
                for inv in invs:
                    result = self._run(inv, None, wake=last)
                    if on_result is not None and not inv.reported:
                        inv.reported = True
                        on_result(result)
                    yield result
            finally:
                self._on_result = None

    def _invocation(self, event: bytes, client_context: str | None, cognito_identity: str | None,
                    trace_id: str | None) -> Invocation:
        inv = Invocation(event, function_name=self.config.name, region=self.config.region,
                         client_context=client_context, cognito_identity=cognito_identity)
        if trace_id:
            inv.trace_id = trace_id  # the caller's X-Amzn-Trace-Id is passed on, as Lambda does
        return inv

    def _queue_all(self, invs: list[Invocation]) -> None:
        if not self.warm:
            self._spawn()
        for inv in invs:
            inv.queued = True
        self.state.submit_all(invs)

    def _spawn(self) -> Process:
        self._drop()
        # Spawned from one long-lived thread: bwrap's --die-with-parent (PR_SET_PDEATHSIG) fires
        # when the *thread* that forked it ends, e.g. a per-request HTTP handler thread.
        self._proc = self._spawner.submit(self._start).result()
        return self._proc

    def _run(self, inv: Invocation, following: Invocation | None,
             wake: threading.Event | None = None) -> InvokeResult:
        if self.bootstrap.path is None:
            message = f"Couldn't find valid bootstrap(s): [{' '.join(sandbox.BOOTSTRAP_SEARCH)}]"
            self.log(f"START RequestId: {inv.request_id} Version: $LATEST")
            self._last_peak = 0
            return self._finish(inv, "Runtime.InvalidEntrypoint", _error_payload("Runtime.InvalidEntrypoint", message),
                                0.0, None, True, "error",
                                [finding(NO_BOOTSTRAP, "/opt/bootstrap", f"{message}: {self.bootstrap.detail}")])
        if inv.dispatched_at is None and not self.warm:
            self._spawn()
        for queued in (inv, following):
            if queued is not None and not queued.queued:
                queued.queued = True
                self.state.submit(queued)
        return self._await(inv, wake)

    def _await(self, inv: Invocation, wake: threading.Event | None = None) -> InvokeResult:
        """Wait for `inv`'s answer (concluded on arrival by `_answered`), or conclude how it ended.
        With `wake` (the last event's of a batch) this thread sleeps on that instead of on `inv`,
        checking `inv` every 10 ms: a prompt wake-up is only needed at the end."""
        cfg = self.config
        proc = self._proc
        assert proc is not None
        cold = not proc.served
        started_wait = time.monotonic()
        kind = None
        while not _done_within(inv, wake, 0.01):
            now = time.monotonic()
            if self.state.init_error is not None and inv.dispatched_at is None:
                self.state.dispatch_init_error()
                continue
            if inv.outcome is not None:
                continue  # answered: being concluded on the server thread
            if proc.exited.is_set():
                time.sleep(0.02)  # an answer may still be on its way through the server
                if inv.done.is_set() or inv.outcome is not None:
                    continue
                if self.state.init_error is not None and inv.dispatched_at is None:
                    self.state.dispatch_init_error()
                    continue
                if inv.dispatched_at is None and proc.served:
                    # It answered its last event and exited (aws-lambda-cpp does after a 413): on
                    # Lambda the next event simply gets a fresh environment, a cold start.
                    self.log(f"layerpack: the runtime exited after its last invocation "
                             f"({exit_text(proc.popen.returncode, cfg.sandbox)}); starting a new one")
                    proc, cold, started_wait = self._spawn(), True, now
                    continue
                kind = "exit"
                break
            if self._ext.procs and self._ext.failure():
                kind = "extension"
                break
            if inv.dispatched_at is None and self.state.init_done_at is None \
                    and now - max(proc.started, started_wait) > cfg.init_timeout:
                kind = "init_timeout"
                break
            if inv.dispatched_at is not None and now - inv.dispatched_at > cfg.timeout:
                kind = "timeout"
                break
        if isinstance(inv.result, InvokeResult):
            return inv.result
        if inv.dispatched_at is None:  # never reached the runtime: Lambda still brackets the attempt
            self.log(f"START RequestId: {inv.request_id} Version: $LATEST")
        init_ms = None
        if cold:
            end = self.state.init_done_at or time.monotonic()
            init_ms = (end - proc.started) * 1000
        return self._conclude(inv, kind, proc, cold, init_ms)

    def _dispatched(self, inv: Invocation) -> None:
        if inv.cold:
            for line in self.extensions.log_lines():  # Lambda's EXTENSION lines close the init phase
                self.log(line)
        self.log_soon(f"START RequestId: {inv.request_id} Version: $LATEST")

    def _answered(self, inv: Invocation) -> None:
        """On the server thread, right after the runtime's answer was accepted: END and REPORT are
        written before the runtime can have its next event."""
        proc = self._proc
        if proc is None or inv.outcome is None or inv.outcome.kind == "init_error":
            return
        proc.served = True
        init_ms = max(0.0, (inv.init_done_at - proc.started) * 1000) if inv.cold and inv.init_done_at else None
        if self._ext.procs and not self._extensions_done(inv, proc, init_ms):
            return
        self._settle_logs(proc)
        inv.result = self._conclude_answer(inv, inv.outcome, inv.cold, init_ms)
        if self._on_result is not None:
            inv.reported = True
            self._on_result(inv.result)

    def _extensions_done(self, inv: Invocation, proc: Process, init_ms: float | None) -> bool:
        """Wait for the INVOKE subscribers to come back to event/next: the invoke ends then, and its
        Duration with it (extensions' post-invoke work is billed on Lambda). On a crash or past the
        deadline, conclude here and end the environment: the runtime gets no further event."""
        assert inv.dispatched_at is not None and inv.outcome is not None
        if self.extensions.wait_ready(inv.dispatched_at + self.config.timeout, lambda: self._ext.failure() is not None):
            inv.outcome.at = time.monotonic()
            return True
        self.state.new_generation()
        proc.kill()
        self._settle_logs(proc)
        failed = self._ext.failure()
        duration = (time.monotonic() - inv.dispatched_at) * 1000
        if failed:
            message = f"RequestId: {inv.request_id} Error: extension {failed[0]} exited during the invocation ({failed[2]})"
            inv.result = self._finish(inv, failed[1], _error_payload(failed[1], message), duration, init_ms, inv.cold,
                                      "error", [finding(EXTENSION_FAILED, f"/opt/extensions/{failed[0]}", message)])
        else:
            message = f"RequestId: {inv.request_id} Error: Task timed out after {self.config.timeout:.2f} seconds"
            inv.result = self._finish(inv, "Sandbox.Timedout", _error_payload("Sandbox.Timedout", message),
                                      self.config.timeout * 1000, init_ms, inv.cold, "timeout",
                                      [finding(TIMEOUT, "/opt/extensions", message + " (waiting for extensions)")])
        return False

    def _conclude_answer(self, inv: Invocation, outcome: Outcome, cold: bool, init_ms: float | None) -> InvokeResult:
        cfg = self.config
        duration = (outcome.at - inv.dispatched_at) * 1000 if inv.dispatched_at else 0.0
        if outcome.kind == "response":
            return self._finish(inv, None, outcome.body, duration, init_ms, cold, None, [])
        if outcome.kind == "too_large":
            message = f"Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."
            return self._finish(inv, "Function.ResponseSizeTooLarge",
                                _error_payload("Function.ResponseSizeTooLarge", message), duration, init_ms, cold,
                                "error", [finding(TOO_LARGE, cfg.handler, message)])
        error_type = payload_type(outcome.body) or outcome.error_type or "Unhandled"
        msg = _message_of(outcome.body)
        return self._finish(inv, error_type, outcome.body, duration, init_ms, cold, None,
                            [finding(FUNCTION_ERROR, cfg.handler, f"{error_type}: {msg}")])

    def _conclude(self, inv: Invocation, kind: str | None, proc: Process, cold: bool,
                  init_ms: float | None) -> InvokeResult:
        cfg = self.config
        rid = inv.request_id
        now = time.monotonic()
        duration = (((inv.outcome.at if inv.outcome else now) - inv.dispatched_at) * 1000
                    if inv.dispatched_at else 0.0)
        outcome = inv.outcome
        # Everything below ends this environment: the next invoke is a cold start.
        self.state.withdraw(inv)
        if kind is None and outcome is not None and outcome.kind == "init_error":
            proc.exited.wait(0.5)  # the runtime is expected to exit after reporting; give it a moment
            self._drop()
            msg = _message_of(outcome.body)
            payload = outcome.body if _is_error_json(outcome.body) else _error_payload(outcome.error_type, msg)
            code, where = ((EXTENSION_FAILED, "/opt/extensions") if outcome.error_type.startswith("Extension.")
                           else (INIT_ERROR, "/runtime/init/error"))
            return self._finish(inv, outcome.error_type, payload, 0.0, init_ms, cold, "error",
                                [finding(code, where, f"{outcome.error_type}: {msg}")])
        if kind == "extension":
            return self._extension_failed(inv, duration, init_ms, cold)
        if kind == "timeout":
            self._drop("timeout")
            message = f"RequestId: {rid} Error: Task timed out after {cfg.timeout:.2f} seconds"
            return self._finish(inv, "Sandbox.Timedout", _error_payload("Sandbox.Timedout", message),
                                cfg.timeout * 1000, init_ms, cold, "timeout",
                                [finding(TIMEOUT, self.bootstrap.path or "bootstrap", message)])
        if kind == "init_timeout":
            self._drop()
            message = f"RequestId: {rid} Error: init did not reach /next within {cfg.init_timeout:.2f} seconds"
            return self._finish(inv, "Sandbox.Timedout", _error_payload("Sandbox.Timedout", message),
                                0.0, cfg.init_timeout * 1000, cold, "timeout",
                                [finding(INIT_TIMEOUT, self.bootstrap.path or "bootstrap", message)])
        return self._conclude_exit(inv, proc, duration, init_ms, cold)

    def _extension_failed(self, inv: Invocation, duration: float, init_ms: float | None,
                          cold: bool) -> InvokeResult:
        name, kind, how = self._ext.failure() or ("?", "Extension.Crash", "unknown")
        self._drop()
        phase = "init" if inv.dispatched_at is None else f"invocation {inv.request_id}"
        message = f"RequestId: {inv.request_id} Error: extension {name} exited during {phase} ({how})"
        return self._finish(inv, kind, _error_payload(kind, message), 0.0 if inv.dispatched_at is None else duration,
                            init_ms, cold, "error",
                            [finding(EXTENSION_FAILED, f"/opt/extensions/{name}", f"{kind}: {message}")])

    def _conclude_exit(self, inv: Invocation, proc: Process, duration: float, init_ms: float | None,
                       cold: bool) -> InvokeResult:
        """The runtime process exited: crash, exit during init, exec failure, out of memory."""
        cfg = self.config
        rid = inv.request_id
        proc.exited.wait(5)
        for t in proc.readers:
            t.join(2)
        oom = proc.meter.oom()
        code = proc.popen.returncode
        tail = list(proc.tail)
        self._drop()
        exit_how = exit_text(code, cfg.sandbox)
        in_init = inv.dispatched_at is None
        if in_init:
            duration = 0.0
        elif proc.exit_at is not None:
            duration = (proc.exit_at - inv.dispatched_at) * 1000
        exec_fail = next((m for m in map(_EXEC_FAIL.match, tail) if m), None)
        missing = sorted({m.group(1) for m in map(_MISSING_LIB.search, tail) if m})
        found: list[Finding] = []
        if oom:
            error_type = "Runtime.OutOfMemory"
            message = f"RequestId: {rid} Error: Runtime exited with error: signal: killed"
            found.append(finding(OUT_OF_MEMORY, self.bootstrap.path or "bootstrap",
                                 f"the process tree went over --memory {cfg.memory} MB and was killed "
                                 f"(measured by {proc.meter.method})"))
        elif exec_fail and in_init:
            error_type = "Runtime.InvalidEntrypoint"
            message = f"RequestId: {rid} Error: fork/exec {exec_fail.group(1)}: {exec_fail.group(2).lower()}"
            found.append(finding(EXEC_FAILED, exec_fail.group(1), f"exec {exec_fail.group(1)}: {exec_fail.group(2)}"))
        else:
            error_type = "Runtime.ExitError"
            message = f"RequestId: {rid} Error: Runtime exited with error: {exit_how}"
            if in_init:
                last = next((line for line in reversed(tail) if line.strip()), "")
                found.append(finding(INIT_EXIT, self.bootstrap.path or "bootstrap",
                                     f"bootstrap exited before calling /next ({exit_how})"
                                     + (f"; last output: {last}" if last else "")))
            else:
                found.append(finding(CRASH, self.bootstrap.path or "bootstrap",
                                     f"runtime exited during invocation {rid} ({exit_how})"))
        for soname in missing:
            found.append(finding(MISSING_LIB, f"/opt/lib/{soname}",
                                 f"{soname} is needed but is neither in {self.rt.name}'s /usr/lib64 nor in the layer"))
        return self._finish(inv, error_type, _error_payload(error_type, message), duration, init_ms, cold,
                            "error", found)

    def _settle_logs(self, proc: Process) -> None:
        """END follows the invocation's own output: what the handler wrote before answering is
        already in the pipes, so log it here, on this thread, rather than wait for the reader."""
        proc.drain(hold=True)  # written with END by _finish

    def _finish(self, inv: Invocation, error_type: str | None, payload: bytes, duration: float,
                init_ms: float | None, cold: bool, status: str | None, found: list[Finding]) -> InvokeResult:
        cfg = self.config
        peak = self._proc.meter.peak() if self._proc is not None else self._last_peak
        billed = math.ceil(duration + (init_ms or 0.0)) if duration or init_ms else 0
        report = Report(inv.request_id, duration, max(billed, 1) if duration else billed, cfg.memory,
                        math.ceil(peak / (1024 * 1024)), init_ms if cold else None, status,
                        error_type if status else None)
        end = f"END RequestId: {inv.request_id}\n{report.line()}"
        if self._proc is not None:
            self._proc.release(end)  # after the lines _settle_logs held, in one write
        else:
            self.log(end)
        return InvokeResult(inv.request_id, payload, error_type, report, cold, found)

    def close(self) -> None:
        with self._lock:
            self._drop("spindown")
            if self.server is not None:
                self.server.close()
                self.server = None
            self._spawner.shutdown(wait=False)
            shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> LocalFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _done_within(inv: Invocation, wake: threading.Event | None, seconds: float) -> bool:
    """Whether `inv` is done, waiting up to `seconds` on `wake` (or on `inv` itself)."""
    if wake is None or wake.is_set():
        return inv.done.wait(seconds)
    wake.wait(seconds)
    return inv.done.is_set()


def _message_of(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "errorMessage" in data:
            return str(data["errorMessage"])
    except (ValueError, UnicodeDecodeError):
        pass
    return body.decode("utf-8", "replace")[:500]


def _is_error_json(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "errorMessage" in data


def _host_glibc() -> tuple[int, ...] | None:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    return runtime_mod.parse_version(text.split()[-1]) if text.startswith("glibc") else None


def parse_events(text: str, origin: str) -> list[bytes]:
    """One JSON document, or JSON lines (one event per non-empty line). Lambda accepts only JSON."""
    stripped = text.strip()
    if not stripped:
        return [b"{}"]
    try:
        json.loads(stripped)
        return [stripped.encode()]
    except ValueError:
        pass
    events = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{origin}:{lineno}: not JSON ({exc.msg})",
                             hint="Lambda accepts only JSON events: one document, or one per line") from exc
        events.append(line.strip().encode())
    return events
