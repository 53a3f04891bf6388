"""Building small input trees for tests: one helper for every test module."""

from __future__ import annotations

import shutil
from pathlib import Path


def make_tree(tmp_path: Path, files: dict[str, object], name: str = "tree") -> Path:
    """Create tmp_path/name with `files`: a Path is copied (mode kept), bytes or str are written
    with mode 0755, ("link", target) makes a symlink, ("mode", mode, content) sets the mode."""
    root = tmp_path / name
    root.mkdir()
    for rel, spec in files.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, Path):
            shutil.copy2(spec, dst)
        elif isinstance(spec, tuple) and spec[0] == "link":
            dst.symlink_to(spec[1])
        elif isinstance(spec, tuple) and spec[0] == "mode":
            content = spec[2]
            dst.write_bytes(content if isinstance(content, bytes) else content.encode())
            dst.chmod(spec[1])
        else:
            dst.write_bytes(spec if isinstance(spec, bytes) else str(spec).encode())
            dst.chmod(0o755)
    return root
