"""One process of an execution environment (the runtime, or an extension), its logs and its exit.

The process runs inside bwrap (or on the host with --no-sandbox) in its own session so the whole
tree can be killed at once; two reader threads forward its stdout and stderr as log lines, and
`drained()` tells the orchestrator when everything written so far has been logged.
"""

from __future__ import annotations

import collections
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from packer.emulator import memory, sandbox

_SIGNALS = {signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted", signal.SIGKILL: "killed",
            signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGILL: "illegal instruction",
            signal.SIGFPE: "floating point exception"}


def exit_text(code: int | None, sandboxed: bool) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        return "signal: " + _SIGNALS.get(-code, f"signal {-code}")
    if sandboxed and code > 128 and code - 128 in _SIGNALS.keys():  # bwrap reports 128+signal
        return "signal: " + _SIGNALS[signal.Signals(code - 128)]
    return f"exit status {code}"


class Process:
    """One bootstrap process (inside bwrap or not) with its log readers and memory meter."""

    def __init__(self, argv: list[str], meter: memory.Meter, log: Callable[[str], None],
                 env: dict[str, str] | None, cwd: Path | None) -> None:
        self.meter = meter
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        self.started = time.monotonic()
        self.ready = threading.Event()
        if meter.procs_file is None:
            self.ready.set()
            self.popen = sandbox.start(argv, env=env, cwd=cwd)
        else:
            self.popen = sandbox.start(memory.cgroup_wrap(argv, meter.procs_file), env=env, cwd=cwd)
        self.exited = threading.Event()
        self.exit_at: float | None = None
        self.busy: dict[int, bool] = {}  # per pipe: bytes read but not yet logged
        self.logged = threading.Condition()  # notified each time a reader has emitted what it read
        self.served = False  # answered at least one invocation: its init is long over
        self.readers = [threading.Thread(target=self._read, args=(s, log), daemon=True)
                        for s in (self.popen.stdout, self.popen.stderr)]
        for t in self.readers:
            t.start()
        self.ready.wait(5)  # the tree is in its cgroup: the runtime's init starts then
        # (the reader stamps the moment it saw the marker, before the runtime can reach /next;
        # reading the clock here instead, after a thread switch, could land later than /next)
        meter.attach(self.popen.pid, self.kill)
        threading.Thread(target=self._wait, daemon=True).start()

    def _read(self, stream, log: Callable[[str], None]) -> None:
        """Forward the bootstrap's output as log lines. A partial line left alone for 50 ms (curl's
        `{"status":"OK"}` has no newline) is shown then, not at exit; a progress meter written a
        character at a time still comes out as one line. `busy` is set from the moment bytes are
        known to be waiting until their lines are emitted, so `drained()` never misses a chunk in hand."""
        fd = stream.fileno()
        buf = b""
        while True:
            if not select.select([fd], [], [], 0.05 if buf else None)[0]:
                self._emit(buf, stream, log)
                buf = b""
                continue
            self.busy[fd] = True
            try:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._emit(line, stream, log)
            finally:
                with self.logged:
                    self.busy[fd] = False
                    self.logged.notify_all()
        if buf:
            self._emit(buf, stream, log)

    def drained(self) -> bool:
        """True when everything the process wrote so far has been read and its full lines logged."""
        if any(self.busy.values()):
            return False
        fds = [s.fileno() for s in (self.popen.stdout, self.popen.stderr) if not s.closed]
        try:
            return not select.select(fds, [], [], 0)[0]
        except (OSError, ValueError):
            return True

    def _emit(self, raw: bytes, stream, log: Callable[[str], None]) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not self.ready.is_set() and stream is self.popen.stdout and line == memory.READY:
            self.started = time.monotonic()
            self.ready.set()
            return
        self.tail.append(line)
        log(line)

    def _wait(self) -> None:
        self.popen.wait()
        self.exit_at = time.monotonic()
        self.exited.set()

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        self.kill()
        self.exited.wait(10)
        for t in self.readers:
            t.join(2)
        self.meter.close()
