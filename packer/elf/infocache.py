"""ELF header facts kept between runs, so analyze → vendor → analyze does not re-read unchanged files.

Opt-in (`layerpack analyze --cache`) and measured apart from the cold figures. A file is known by
(device, inode, size, mtime, ctime): ctime changes with any write, chmod or rename onto the inode
and cannot be set back by a user, so a rewritten file is read again. The store is a `marshal` of
plain tuples (not pickle: loading it can never run code) in the cache directory, written
atomically; an unreadable or foreign store is ignored.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import fields
from pathlib import Path

from packer.cachedir import cache_dir, store
from packer.elf.reader import ElfInfo, InfoMemo, Segment
from packer.errors import ElfError

FORMAT = ("layerpack.elf-headers", 2)  # 2: ElfInfo.weak_needs (a store of 1 would lack it)
MAX_ENTRIES = 200_000  # about 60 MB on disk at most; older entries are dropped first
_FIELDS = tuple(f.name for f in fields(ElfInfo))


def to_plain(value: ElfInfo | ElfError) -> tuple:
    """Header facts as nested tuples of str, int and None: what marshal stores and sends."""
    if isinstance(value, ElfError):
        return ("error", str(value))
    return ("elf", tuple(tuple(tuple(s) for s in value.segments) if n == "segments"
                         else getattr(value, n) for n in _FIELDS))


def from_plain(plain: tuple) -> ElfInfo | ElfError:
    if plain[0] == "error":
        return ElfError(plain[1])
    facts = dict(zip(_FIELDS, plain[1]))
    facts["segments"] = tuple(Segment(*s) for s in facts["segments"])
    facts["weak_needs"] = tuple(tuple(p) for p in facts["weak_needs"])
    return ElfInfo(**facts)


class PersistentInfoMemo(InfoMemo):
    """InfoMemo that also answers from, and adds to, the store of earlier runs."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path or cache_dir("analyze") / "elf-headers.marshal"
        self._old: dict[tuple[int, ...], tuple] = {}
        try:
            data = marshal.loads(self.path.read_bytes())
            if isinstance(data, tuple) and len(data) == 2 and data[0] == FORMAT and isinstance(data[1], dict):
                self._old = data[1]
        except (OSError, EOFError, ValueError, TypeError):
            pass

    def key(self, st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def stored(self, key: tuple[int, ...]) -> ElfInfo | ElfError | None:
        plain = self._old.get(key)
        if plain is None:
            return None
        try:
            return from_plain(plain)
        except (TypeError, ValueError, IndexError):
            return None

    def save(self) -> None:
        """Write this run's facts (and as many earlier ones as fit) atomically; a cache that cannot
        be written is only a slower next run."""
        fresh = {k: to_plain(v) for k, v in self._by_id.items()}
        keep = list(self._old.items())[-max(0, MAX_ENTRIES - len(fresh)):] if len(fresh) < MAX_ENTRIES else []
        data = marshal.dumps((FORMAT, {**dict(keep), **fresh}))
        store(self.path, data)
