"""Where layerpack keeps what it can rebuild: `LAYERPACK_CACHE_DIR`, else the XDG cache directory."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(sub: str) -> Path:
    """`$LAYERPACK_CACHE_DIR/sub`, else `$XDG_CACHE_HOME/layerpack/sub` (default ~/.cache)."""
    env = os.environ.get("LAYERPACK_CACHE_DIR")
    if env:
        return Path(env) / sub
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerpack" / sub


def store(path: Path, blob: bytes) -> None:
    """Write a cache file whole or not at all (a temporary named for this process, renamed into
    place); a cache that cannot be written is only a slower next run, so OSError is swallowed.
    No tempfile module: it would add ~8 ms to the start-up of every command that keeps a cache."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
