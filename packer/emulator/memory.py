"""Measuring (and limiting) the memory of a sandboxed process tree, for REPORT's Max Memory Used.

Lambda measures the whole execution environment, every process the bootstrap starts included, so a
`getrusage` of one child is not the same number. When this process may create a child cgroup
(cgroup v2 with the memory controller delegated, or v1's memory hierarchy), the sandbox runs in its
own cgroup: the kernel tracks the peak and enforces `--memory` with its OOM killer, as Lambda does.
Otherwise a sampler reads the resident size of every process of the tree from /proc every few
milliseconds and enforces the limit itself (labelled as an estimate).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_S = 0.005


def _own_cgroups() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            num, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                out[c] = path
    except OSError:
        pass
    return out


class Meter:
    """Interface: `procs_file` (join before exec, or None), `attach(pid)`, `peak()`, `oom()`."""

    method = "none"
    procs_file: Path | None = None

    def attach(self, pid: int, on_limit: Callable[[], None]) -> None: ...

    def peak(self) -> int:
        return 0

    def oom(self) -> bool:
        return False

    def close(self) -> None: ...


class CgroupMeter(Meter):
    def __init__(self, path: Path, version: int, limit: int) -> None:
        self.path = path
        self.version = version
        self.method = f"cgroup v{version}"
        self.procs_file = path / "cgroup.procs"
        self._peak_fd: int | None = None
        if version == 2:
            (path / "memory.max").write_text(str(limit))
            try:
                (path / "memory.swap.max").write_text("0")
            except OSError:
                pass
        else:
            (path / "memory.limit_in_bytes").write_text(str(limit))

    def peak(self) -> int:
        """Read once per invocation: the file stays open and is re-read with pread (an open() per
        event cost ~90 us of the ~0.5 ms a warm event takes)."""
        try:
            if self._peak_fd is None:
                name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
                self._peak_fd = os.open(self.path / name, os.O_RDONLY)
            return int(os.pread(self._peak_fd, 64, 0).split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def oom(self) -> bool:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def close(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        for _ in range(50):  # the last processes may take a moment to leave
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


class ProcMeter(Meter):
    """Sum of resident sizes over the process tree, sampled; enforces the limit by killing."""

    method = "/proc sampling"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._peak = 0
        self._oom = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, pid: int, on_limit: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                total = tree_rss(pid)
                if total is None:
                    return
                self._peak = max(self._peak, total)
                if total > self.limit and not self._oom:
                    self._oom = True
                    on_limit()
                self._stop.wait(SAMPLE_S)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def peak(self) -> int:
        return self._peak

    def oom(self) -> bool:
        return self._oom

    def close(self) -> None:
        self._stop.set()


def tree_pids(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def tree_rss(pid: int) -> int | None:
    """Resident bytes of `pid` and all its descendants; None once `pid` is gone."""
    if not os.path.exists(f"/proc/{pid}"):
        return None
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
    return total


READY = "layerpack:cgroup-joined"


def cgroup_wrap(argv: list[str], procs_file: Path) -> list[str]:
    """`argv` behind a tiny shell that joins the cgroup, prints READY on stdout, then execs.

    Joining happens before `exec bwrap` (not in a Python preexec_fn, unsafe with the server threads
    running), so every process of the tree is counted. Moving a task between v1 cgroups can take
    ~15 ms; the READY line lets Init Duration start after it, as Lambda's starts after its own
    sandbox is set up. It is the first line on stdout, before anything of the bootstrap's."""
    script = f'echo $$ > "$0" 2>/dev/null; echo {READY}; exec "$@"'
    return ["/bin/sh", "-c", script, str(procs_file), *argv]


def _try_cgroup(limit: int) -> CgroupMeter | None:
    own = _own_cgroups()
    name = f"layerpack-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    candidates = []
    if "memory" in own:
        candidates.append((CGROUP_ROOT / "memory" / own["memory"].lstrip("/"), 1))
    if "" in own and (CGROUP_ROOT / "cgroup.controllers").is_file():
        candidates.append((CGROUP_ROOT / own[""].lstrip("/"), 2))
    for parent, version in candidates:
        path = parent / name
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            marker = "memory.max" if version == 2 else "memory.limit_in_bytes"
            if not (path / marker).exists():
                raise OSError("memory controller not delegated")
            return CgroupMeter(path, version, limit)
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
    return None


def meter(limit_mb: int, allow_cgroup: bool = True) -> Meter:
    limit = limit_mb * 1024 * 1024
    if allow_cgroup and os.environ.get("LAYERPACK_NO_CGROUP") is None:
        cg = _try_cgroup(limit)
        if cg is not None:
            return cg
    return ProcMeter(limit)


class Joined(Meter):
    """Another process of the same environment (an extension): it joins the runtime's cgroup, so the
    kernel counts it in the one peak and limit, but it owns nothing (no peak of its own, no cleanup)."""

    method = "joined"

    def __init__(self, owner: Meter) -> None:
        self.procs_file = owner.procs_file
