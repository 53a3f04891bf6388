"""Directory outputs that appear whole or not at all.

`vendor --out D` and `slim --out D` write thousands of files; killed half-way they used to leave a
partial tree at D, which the next run then refused ("--out exists and is not empty"). The output is
built in a sibling directory whose name starts with `TMP_PREFIX` (same file system, so the final
`rename` is atomic) and renamed into place only when complete. The temporary is removed on any
exit Python sees (error, Ctrl-C, SIGTERM); after a SIGKILL it stays behind, named with the dead
process id, and the next run for the same output removes it.

`TMP_PREFIX` (and build's `.NAME.zip.*.tmp`) are names `build` never packs, so a stale temporary
inside an input tree cannot end up in a layer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from packer.errors import UsageError

TMP_PREFIX = ".layerpack-tmp-"
_BUILD_TMP = re.compile(r"^\..+\.zip\.[^/]+\.tmp$")  # package.build's mkstemp name


def is_temporary_name(name: str) -> bool:
    """True for the names layerpack's own unfinished outputs carry (never part of a layer)."""
    return name.startswith(TMP_PREFIX) or bool(_BUILD_TMP.match(name))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(final: Path) -> None:
    """Remove temporaries for `final` left by processes that no longer exist (a SIGKILL)."""
    stem = f"{TMP_PREFIX}{final.name}."
    with contextlib.suppress(OSError), os.scandir(final.parent) as it:
        for de in it:
            if not de.name.startswith(stem):
                continue
            pid = de.name[len(stem):].split(".", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(de.path, ignore_errors=True)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Let SIGTERM unwind (so `finally` removes the temporary) while the output is being written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def check_free(final: Path) -> None:
    """`final` must not exist, or be an empty directory (rename replaces an empty directory)."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise UsageError(f"--out {final} exists and is not a directory", hint="remove it or choose another path")
    if final.is_dir() and any(final.iterdir()):
        raise UsageError(f"--out {final} exists and is not empty", hint="remove it or choose another directory")


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty sibling directory; on success it becomes `final` in one rename."""
    final = Path(os.path.abspath(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    check_free(final)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}.{os.getpid()}.{os.urandom(4).hex()}"
    with sigterm_unwinds():  # before the temporary exists: a SIGTERM at any point unwinds through `finally`
        try:
            tmp.mkdir(mode=0o755)
            yield tmp
            try:
                os.rename(tmp, final)
            except OSError as exc:
                raise UsageError(f"--out {final}: {exc.strerror} (another process wrote it meanwhile?)") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
