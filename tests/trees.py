"""Building small input trees for tests: one helper for every test module."""

from __future__ import annotations

import shutil
import struct
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


def many_empty_zip(path: Path, n: int) -> None:
    """n empty stored members (d0000/f0000000, ...) and a ZIP64 end record past 65,535 entries, as
    Info-ZIP writes it; written directly because Info-ZIP would need n files on disk first."""
    cd, off = bytearray(), 0
    with open(path, "wb") as f:
        for i in range(n):
            name = f"d{i // 1000:04d}/f{i:07d}".encode()
            local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 10, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
            f.write(local)
            cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 10, 0, 0, 0, 0x21, 0, 0, 0, len(name),
                              0, 0, 0, 0, 0o100644 << 16, off) + name
            off += len(local)
        f.write(cd)
        if n > 0xFFFF:
            f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(cd), off))
            f.write(struct.pack("<IIQI", 0x07064B50, 0, off + len(cd), 1))
        count = min(n, 0xFFFF)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), off, 0))
