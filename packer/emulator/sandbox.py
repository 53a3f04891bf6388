"""The bubblewrap command that runs a bootstrap the way Lambda would, and its probe.

`bwrap_argv` is a function of a `SandboxSpec` and the directories it binds: the tests read the plan
without starting anything, and `start` only hands it to `subprocess`. The sandbox has no view of the host file
system except what is bound explicitly: the rebuilt runtime root (`rootfs.materialize`), the staged
layers at `/opt`, the function at `/var/task`, a fresh `/tmp`, and a few files of `/etc`.
The network namespace is shared so the bootstrap reaches the Runtime API on 127.0.0.1.

With an image (`invoke --image`, `--rootfs`), the image's whole root is `/` instead, read-only;
where it lacks a mount point (`/var/task` in a Debian root), that one directory becomes a read-only
tmpfs holding binds of its entries, so the image itself is never written to.

The bootstrap runs as Lambda's `sbx_user1051` (uid 993, gid 990), not as root: a file only root may
read fails here as on Lambda. When bwrap runs as root, the uid is changed inside the sandbox by the
host's `setpriv`, started through the host's own loader from a private directory (`DROP`), so it
works on any image's libc; the bootstrap is then exec'd with the sandbox's loader. Unprivileged
users get the same uid from bwrap's user namespace (their own files map to it).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from packer.emulator.rootfs import DROP, PRIVATE
from packer.errors import EmulatorError

TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
OPT = "/opt"
BOOTSTRAP_SEARCH = (TASK_ROOT + "/bootstrap", OPT + "/bootstrap")
TZ_FILE = "/usr/share/zoneinfo/UTC"
SBX_UID, SBX_GID = 993, 990  # sbx_user1051 on Lambda


@dataclass(frozen=True)
class SandboxSpec:
    root: Path  # materialized runtime root (usr/, etc/, .layerpack/)
    opt: Path | None  # merged layers (None: empty /opt)
    task: Path | None  # function code (None: empty /var/task)
    command: tuple[str, ...]  # argv inside the sandbox, e.g. ("/opt/bootstrap",)
    env: dict[str, str] = field(default_factory=dict)
    usr_merge: bool = True
    image: bool = False  # root is a whole image root (bound as /), not a rebuilt runtime root
    drop: Path | None = None  # host setpriv + loader (rootfs.uid_helper) for bwrap running as root
    unprivileged: bool = True  # run the command as sbx_user1051, as Lambda does
    tmp: Path | None = None  # a host dir bound at /tmp (shared by the runtime and its extensions); None: tmpfs
    binds: tuple[tuple[str, str], ...] = ()  # extra read-only (host, sandbox) binds: a managed runtime's files


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
    """The full bwrap command line for `spec`. Starts nothing; reads only the directories it binds
    (an image's mount points, whether /opt's directory is open to others)."""
    argv = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--hostname", "localhost"]
    as_root = os.geteuid() == 0
    command = list(spec.command)
    if as_root and spec.unprivileged and spec.drop is not None:
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        command = drop_command(command)
    elif as_root:
        argv += ["--cap-drop", "ALL"]
    elif spec.unprivileged:
        argv += ["--unshare-user", "--uid", str(SBX_UID), "--gid", str(SBX_GID)]
    readonly: list[str] = []
    if spec.image:
        argv += _image_root(spec.root, readonly, with_drop=spec.drop is not None)
    else:
        argv += _runtime_root(spec)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--bind", str(spec.tmp), "/tmp"] if spec.tmp else ["--perms", "1777", "--tmpfs", "/tmp"]
    if not spec.image:  # bwrap would make /var 0700 (like the bind source's parent): Lambda's is 0755
        argv += ["--perms", "0755", "--dir", "/var"]
    argv += _mount_dir(spec.opt, OPT, spec.unprivileged, readonly)
    argv += _mount_dir(spec.task, TASK_ROOT, spec.unprivileged, readonly)
    if spec.drop is not None and command != list(spec.command):
        argv += ["--ro-bind", str(spec.drop), DROP]
    if not spec.image:
        argv += ["--dir", RUNTIME_DIR, "--dir", "/var/lang"]
    made = {"/", "/var", RUNTIME_DIR, "/var/lang"}
    for host, inside in spec.binds:
        parents = [p for p in Path(inside).parents if str(p) not in made]
        for parent in reversed(parents):  # bwrap would make them 0700: unreadable to sbx_user1051
            argv += ["--perms", "0755", "--dir", str(parent)]
            made.add(str(parent))
        argv += ["--ro-bind", host, inside]
    for path in readonly:
        argv += ["--remount-ro", path]
    argv += ["--chdir", TASK_ROOT, "--clearenv"]
    for key, value in spec.env.items():
        argv += ["--setenv", key, value]
    argv += ["--", *command]
    return argv


def drop_command(command: list[str]) -> list[str]:
    """`command` behind the host's setpriv, run by the host's loader from DROP (see module doc)."""
    return [f"{DROP}/lib/ld.so", "--library-path", f"{DROP}/lib", f"{DROP}/setpriv",
            f"--reuid={SBX_UID}", f"--regid={SBX_GID}", "--clear-groups", "--", *command]


def _runtime_root(spec: SandboxSpec) -> list[str]:
    """The rebuilt runtime root (rootfs.materialize) plus a few host files of /etc."""
    root = str(spec.root)
    argv = ["--ro-bind", f"{root}/usr", "/usr"]
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
    return argv


def _image_root(root: Path, readonly: list[str], with_drop: bool) -> list[str]:
    """The image's root as `/`, read-only, with the mount points layerpack needs (module doc)."""
    points = {"proc", "dev", "tmp", "opt", "var/task"}
    if with_drop:
        points.add(DROP.lstrip("/"))
    resolv = os.path.exists("/etc/resolv.conf")
    if resolv:
        points.add("etc/resolv.conf")
    argv: list[str] = []
    _bind_tree(root, "", points, argv, readonly)
    if resolv:
        argv += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    return argv


def _present(path: Path) -> bool:
    return os.path.lexists(path) and not os.path.islink(path)


def _bind_tree(root: Path, rel: str, points: set[str], argv: list[str], readonly: list[str]) -> None:
    """Bind root/rel at /rel read-only; if a mount point below it is missing, make /rel a tmpfs of
    binds of its entries instead (remounted read-only once everything is mounted)."""
    below = [p for p in points if not rel or p.startswith(rel + "/")]
    if rel and all(_present(root / p) for p in below):
        argv += ["--ro-bind", str(root / rel), "/" + rel]
        return
    if not rel and all(_present(root / p) for p in below):
        argv += ["--ro-bind", str(root), "/"]
        return
    if rel:
        argv += ["--tmpfs", "/" + rel]
    readonly.append("/" + rel)
    _bind_children(root / rel if rel else root, "/" + rel if rel else "", argv,
                   lambda name: _bind_tree(root, f"{rel}/{name}" if rel else name, points, argv, readonly),
                   skip={p.rsplit("/", 1)[-1] for p in points if p.rpartition("/")[0] == rel})


def _bind_children(host: Path, at: str, argv: list[str], on_dir=None, skip: frozenset | set = frozenset()) -> None:
    with os.scandir(host) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name in skip:
            continue
        inside = f"{at}/{entry.name}"
        if entry.is_symlink():
            argv += ["--symlink", os.readlink(entry.path), inside]
        elif entry.is_dir() and on_dir is not None:
            on_dir(entry.name)
        elif entry.is_dir() or entry.is_file():
            argv += ["--ro-bind", entry.path, inside]


def _mount_dir(host: Path | None, at: str, unprivileged: bool, readonly: list[str]) -> list[str]:
    """A layer or function directory at `at`. A host directory others cannot enter (mkdtemp's
    0700) would lock sbx_user1051 out of /opt, which Lambda never does: its entries are bound into
    a 0755 tmpfs instead, never changing the user's directory."""
    if host is None:
        return ["--dir", at]
    try:
        open_to_others = host.stat().st_mode & 0o005 == 0o005
    except OSError:
        open_to_others = True  # bwrap itself reports a missing directory
    if not unprivileged or open_to_others:
        return ["--ro-bind", str(host), at]
    argv = ["--tmpfs", at]
    _bind_children(host, at, argv)
    readonly.append(at)
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
