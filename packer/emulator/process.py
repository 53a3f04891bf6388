"""One process of an execution environment (the runtime, or an extension), its logs and its exit.

The process runs inside bwrap (or on the host with --no-sandbox) in its own session so the whole
tree can be killed at once; one reader thread forwards its stdout and stderr as log lines, and
`drain()` lets the orchestrator log everything written so far on its own thread before END.
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


# After forwarding a chunk, the reader pauses this long before looking again, so a runtime that logs a
# line per event wakes it a few hundred times a second instead of once per line; the orchestrator's
# `drain()` collects whatever is waiting before it writes END, so no line is late where it matters.
# Measured (bench/emulator_overhead.py): a reader thread woken per line cost ~40 us of a ~0.36 ms
# warm event in thread switches alone.
COALESCE_S = 0.01
PARTIAL_LINE_S = 0.05  # a partial line left alone this long is shown (curl's reply has no newline)


class Process:
    """One bootstrap process (inside bwrap or not) with its log reader and memory meter."""

    def __init__(self, argv: list[str], meter: memory.Meter, log: Callable[[str], None],
                 env: dict[str, str] | None, cwd: Path | None) -> None:
        self.meter = meter
        self.log = log
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
        self.served = False  # answered at least one invocation: its init is long over
        self._stdout = self.popen.stdout.fileno()
        self._partial: dict[int, bytes] = {}  # per open pipe: the bytes after its last newline
        for stream in (self.popen.stdout, self.popen.stderr):
            os.set_blocking(stream.fileno(), False)
            self._partial[stream.fileno()] = b""
        self._io = threading.Lock()  # one consumer of the pipes at a time: the reader or drain()
        self._held: list[str] | None = None  # lines kept for the orchestrator's END write (drain(hold=True))
        self.readers = [threading.Thread(target=self._read, daemon=True)]
        self.readers[0].start()
        self.ready.wait(5)  # the tree is in its cgroup: the runtime's init starts then
        # (the reader stamps the moment it saw the marker, before the runtime can reach /next;
        # reading the clock here instead, after a thread switch, could land later than /next)
        meter.attach(self.popen.pid, self.kill)
        threading.Thread(target=self._wait, daemon=True).start()

    def _read(self) -> None:
        """Forward the process's output as log lines until both pipes close. A partial line left
        alone for PARTIAL_LINE_S is shown then, not at exit; a progress meter written a character at
        a time still comes out as one line."""
        while self._partial:
            fds = list(self._partial)
            waiting = any(self._partial.values())
            try:
                ready = select.select(fds, [], [], PARTIAL_LINE_S if waiting else None)[0]
            except (OSError, ValueError):
                break
            with self._io:
                if ready:
                    for fd in ready:
                        self._pump(fd)
                else:
                    for fd in list(self._partial):
                        self._emit(self._partial[fd], fd)
                        self._partial[fd] = b""
            if ready and self.ready.is_set():
                time.sleep(COALESCE_S)

    def drain(self, hold: bool = False) -> None:
        """Log everything the process wrote so far (full lines), on the caller's thread: the
        orchestrator calls this before END, so END always follows the invocation's own output.
        With `hold`, those lines (and any the reader finds meanwhile) wait for `release()`, which
        writes them together with END and REPORT: one write per event instead of two."""
        with self._io:
            if hold and self._held is None:
                self._held = []
            try:
                ready = select.select(list(self._partial), [], [], 0)[0]
            except (OSError, ValueError):
                ready = list(self._partial)
            for fd in ready:
                self._pump(fd)

    def release(self, *lines: str) -> None:
        """Log the held lines, then `lines`, in one call, and stop holding."""
        with self._io:
            held, self._held = self._held or [], None
            if held or lines:
                self.log("\n".join([*held, *lines]))

    def _pump(self, fd: int) -> None:
        """Read what the pipe holds now (caller holds `_io`); at end of file, the last partial line
        is logged and the pipe forgotten."""
        if fd not in self._partial:
            return
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                if self._partial[fd]:
                    self._emit(self._partial[fd], fd)
                del self._partial[fd]
                return
            *lines, self._partial[fd] = (self._partial[fd] + chunk).split(b"\n")
            for line in lines:
                self._emit(line, fd)
            if len(chunk) < 65536:  # a pipe read returns all it holds: nothing more right now
                return

    def _emit(self, raw: bytes, fd: int) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not self.ready.is_set() and fd == self._stdout and line == memory.READY:
            self.started = time.monotonic()
            self.ready.set()
            return
        self.tail.append(line)
        if self._held is not None:
            self._held.append(line)
        else:
            self.log(line)

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
        self.release()  # never lose a held line
        self.kill()
        self.exited.wait(10)
        for t in self.readers:
            t.join(2)
        self.meter.close()
