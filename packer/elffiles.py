"""Every ELF file of a tree, with its header facts: the first phase of analyze.

It reads a few KiB of each of thousands of files, and nothing in it depends on another file, so on
a large directory tree the files are shared among the CPUs (`packer.forkwork`): this process reads
one share while forked copies read the others and send back plain tuples. The result is the same
list, in the same (path) order, as one process reading everything: `LAYERPACK_JOBS=1` does that,
and tests/test_elffiles.py compares the two.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from packer.elf.infocache import from_plain, to_plain
from packer.elf.reader import ELF_MAGIC, ElfInfo, FileSource, InfoMemo, read_elf
from packer.errors import ElfError, InputError
from packer.forkwork import Forked, jobs
from packer.tree import Tree

MIN_SIZE = 52  # the smallest ELF header (32-bit): anything shorter is not looked at
# Below this many candidate files one process reads them all: a fork, the transfer and the merge
# cost ~10 ms, about what 50 files cost to read.
PARALLEL_MIN = 256


@dataclass
class ElfFile:
    rel: str
    path: str  # absolute path on Lambda
    info: ElfInfo | None
    error: str | None = None


def collect(tree: Tree, mount: str, progress: Callable[[int], None] | None, memo: InfoMemo) -> list[ElfFile]:
    """The tree's ELF files in path order (a file that starts like ELF but cannot be parsed is
    kept with its error; every other file is left out)."""
    entries = sorted(tree.files(), key=lambda e: e.path)
    if progress:
        progress(sum(1 for e in entries if e.size < MIN_SIZE))
    candidates = [e.path for e in entries if e.size >= MIN_SIZE]
    n = jobs() if tree.kind == "dir" and len(candidates) >= PARALLEL_MIN else 1
    shares = [candidates[i::n] for i in range(n)]  # interleaved: each share has some of every directory
    found: dict[str, ElfFile] = {}
    with contextlib.ExitStack() as stack:
        children = [stack.enter_context(Forked(_read_plain, tree, memo, share)) for share in shares[1:]]
        for rel in shares[0]:
            if progress:
                progress(1)
            read = _read(tree, rel, memo)
            if read is not None:
                found[rel] = _elf_file(mount, rel, read[1])
        for share, child in zip(shares[1:], children):
            for rel, key, plain in child.result():
                found[rel] = _elf_file(mount, rel, memo.adopt(tuple(key), from_plain(plain)))
            if progress:
                progress(len(share))
    return [found[rel] for rel in candidates if rel in found]


def _elf_file(mount: str, rel: str, value: ElfInfo | ElfError) -> ElfFile:
    abs_path = posixpath.join(mount, rel)
    return ElfFile(rel, abs_path, None, str(value)) if isinstance(value, ElfError) else ElfFile(rel, abs_path, value)


def _read(tree: Tree, rel: str, memo: InfoMemo) -> tuple[tuple[int, ...] | None, ElfInfo | ElfError] | None:
    """(memo key, header facts or why they cannot be read) of an ELF file; None for any other
    file. A zip member has no key: it is read from its bytes, not kept by identity."""
    try:
        if tree.kind == "zip" and tree.read_head(rel, 4) != ELF_MAGIC:
            return None  # a zip member is only inflated whole when it is ELF
        with tree.source(rel) as src:  # one open per file: the magic, then the headers
            if src.pread(0, 4) != ELF_MAGIC:
                return None
            key = memo.key(src.stat) if isinstance(src, FileSource) else None
            try:
                return key, memo.read_fd(src.fd, src.stat) if isinstance(src, FileSource) else read_elf(src)
            except ElfError as exc:
                return key, exc
    except InputError:
        return None


def _read_plain(tree: Tree, memo: InfoMemo, rels: list[str]) -> list[tuple]:
    """(rel, memo key, plain facts) of each ELF file among `rels` in a directory tree: what a
    child sends back (marshal carries tuples of plain values only)."""
    return [(rel, read[0], to_plain(read[1])) for rel in rels if (read := _read(tree, rel, memo)) is not None]
