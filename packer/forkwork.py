"""A pure function computed in a forked copy of this process while this one goes on.

Why fork and not multiprocessing: analyze's phases work on data already in memory (a walked tree,
parsed runtime data); a `spawn` or `forkserver` worker re-imports layerpack (~100 ms, the whole
budget of a phase) and needs its arguments pickled, while a forked child has them copy-on-write.
The result comes back through a pipe as `marshal` (plain tuples, lists, dicts, strings, numbers:
never code, so a child cannot make the parent run anything).

Nothing is lost when a child cannot help: where fork is missing, only one CPU is ours, or the
child fails for any reason, `result()` computes the value in this process. `LAYERPACK_JOBS=1`
turns workers off (the tests compare both ways); `LAYERPACK_JOBS=N` caps them.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Callable
from typing import Any


def jobs() -> int:
    """How many processes (this one included) a phase may use: one but on Linux (macOS's system
    frameworks are not safe to use in a forked child, which is why Python stopped forking there)."""
    if sys.platform != "linux":
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = os.environ.get("LAYERPACK_JOBS", "")
    if wanted.isdigit() and int(wanted) > 0:
        cpus = min(cpus, int(wanted))
    return max(1, cpus)


class Forked:
    """`fn(*args)`, computed by a child started now; `result()` waits for it. Use as a context
    manager so that a child is never left behind when the parent stops early."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._fn, self._args = fn, args
        self._pid: int | None = None
        self._fd: int | None = None
        try:
            read, write = os.pipe()
        except OSError:  # out of descriptors: result() computes it here
            return
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: likewise
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: compute, send, leave without running the parent's exit handlers
            code = 1
            try:
                os.close(read)
                data = memoryview(marshal.dumps(fn(*args)))
                while data:
                    data = data[os.write(write, data):]
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self._pid, self._fd = pid, read

    def result(self) -> Any:
        """The child's value, or the same value computed here when the child gave none."""
        chunks = []
        if self._fd is not None:
            with os.fdopen(self._fd, "rb") as pipe:
                self._fd = None
                while chunk := pipe.read(1 << 20):
                    chunks.append(chunk)
        status = self._reap()
        if status == 0:
            try:
                return marshal.loads(b"".join(chunks))
            except (EOFError, ValueError, TypeError):
                pass
        return self._fn(*self._args)

    def _reap(self) -> int | None:
        if self._pid is None:
            return None
        _pid, status = os.waitpid(self._pid, 0)
        self._pid = None
        return os.waitstatus_to_exitcode(status)

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        """A result never asked for (the parent failed first): stop the child and reap it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            import signal  # only on this path: ~1.5 ms of start-up otherwise

            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()
