"""Shipped TOML data (rules/runtimes/*.toml) parsed once and kept as marshal in the cache directory.

Why: every `layerpack analyze` needs runtimes.toml and version-ceilings.toml; importing tomllib and
parsing them was ~10-15 ms of a ~110 ms start-up (`analyze /usr/bin/true`), loading the marshal
copy ~0.3 ms. The copy is keyed by the source's path, size and mtime (and the Python version, as
marshal's format is Python's own), so an edited file is parsed again; the copy is plain data that
marshal can hold (loading it can never run code), written atomically; an unreadable, foreign or
unwritable cache is ignored and the TOML parsed as before.
"""

from __future__ import annotations

import marshal
import os
import sys
from pathlib import Path
from typing import Any

from packer.cachedir import cache_dir, store

FORMAT = "layerpack.toml-cache/1"


def _key(path: Path, st: os.stat_result) -> tuple:
    return (FORMAT, sys.version_info[:2], str(path), st.st_size, st.st_mtime_ns)


def load_toml(path: Path, parse) -> dict[str, Any]:
    """parse(text) of the file at `path`, from the cache when the file is unchanged. `parse`'s
    errors (and OSError reading the source) propagate as they would without the cache."""
    try:
        st = os.stat(path)
    except OSError:
        return parse(path.read_text(encoding="utf-8"))  # raises the caller's error for a missing file
    key = _key(path, st)
    copy = cache_dir("toml") / f"{path.name}.marshal"
    try:
        stored_key, data = marshal.loads(copy.read_bytes())
        if stored_key == key and isinstance(data, dict):
            return data
    except (OSError, EOFError, ValueError, TypeError):
        pass
    data = parse(path.read_text(encoding="utf-8"))
    _store(copy, key, data)
    return data


def _store(copy: Path, key: tuple, data: dict[str, Any]) -> None:
    try:
        blob = marshal.dumps((key, data))
    except ValueError:  # a value marshal cannot hold (a TOML date): parse it every time
        return
    store(copy, blob)
