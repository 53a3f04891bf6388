"""The bubblewrap command that runs a bootstrap the way Lambda would, and its probe.

`bwrap_argv` is a pure function of a `SandboxSpec`: the tests read the plan without starting
anything, and `start` only hands it to `subprocess`. The sandbox has no view of the host file
system except what is bound explicitly: the rebuilt runtime root (`rootfs.materialize`), the staged
layers at `/opt`, the function at `/var/task`, a fresh `/tmp`, and a few files of `/etc`.
The network namespace is shared so the bootstrap reaches the Runtime API on 127.0.0.1.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from packer.emulator.rootfs import PRIVATE
from packer.errors import EmulatorError

TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
OPT = "/opt"
BOOTSTRAP_SEARCH = (TASK_ROOT + "/bootstrap", OPT + "/bootstrap")
TZ_FILE = "/usr/share/zoneinfo/UTC"


@dataclass(frozen=True)
class SandboxSpec:
    root: Path  # materialized runtime root (usr/, etc/, .layerpack/)
    opt: Path | None  # merged layers (None: empty /opt)
    task: Path | None  # function code (None: empty /var/task)
    command: tuple[str, ...]  # argv inside the sandbox, e.g. ("/opt/bootstrap",)
    env: dict[str, str] = field(default_factory=dict)
    usr_merge: bool = True


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def probe() -> str | None:
    """None when bwrap can start a sandbox here; otherwise the reason, for a clear message."""
    exe = bwrap_path()
    if exe is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        proc = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-pid", "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot start: {exc}"
    if proc.returncode != 0:
        return f"bwrap cannot create a sandbox here: {proc.stderr.strip() or 'exit ' + str(proc.returncode)}"
    return None


def bwrap_argv(spec: SandboxSpec, bwrap: str = "bwrap") -> list[str]:
    """The full bwrap command line for `spec` (pure: reads nothing, starts nothing)."""
    root = str(spec.root)
    argv = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--hostname", "localhost"]
    if os.geteuid() == 0:
        argv += ["--cap-drop", "ALL"]
    argv += ["--ro-bind", f"{root}/usr", "/usr"]
    if spec.usr_merge:
        argv += ["--symlink", "usr/lib64", "/lib64", "--symlink", "usr/lib", "/lib",
                 "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin"]
    else:
        for top in ("lib64", "lib", "bin", "sbin"):
            if (spec.root / top).is_dir():
                argv += ["--ro-bind", f"{root}/{top}", f"/{top}"]
    argv += ["--ro-bind", f"{root}{PRIVATE}", PRIVATE, "--ro-bind", f"{root}/etc", "/etc"]
    if os.path.exists("/etc/resolv.conf"):
        argv += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    if os.path.exists(TZ_FILE):
        argv += ["--ro-bind", TZ_FILE, "/etc/localtime"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += ["--ro-bind", str(spec.opt), OPT] if spec.opt else ["--dir", OPT]
    argv += ["--ro-bind", str(spec.task), TASK_ROOT] if spec.task else ["--dir", TASK_ROOT]
    argv += ["--dir", RUNTIME_DIR, "--dir", "/var/lang", "--chdir", TASK_ROOT, "--clearenv"]
    for key, value in spec.env.items():
        argv += ["--setenv", key, value]
    argv += ["--", *spec.command]
    return argv


def start(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start `argv` (a bwrap command, or the bootstrap itself with --no-sandbox) with pipes for
    its logs, in a new session so the whole tree can be killed at once."""
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=cwd, start_new_session=True, pass_fds=pass_fds)
    except OSError as exc:
        raise EmulatorError(f"cannot start {argv[0]}: {exc.strerror}") from exc
