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
