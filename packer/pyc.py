"""Python bytecode in a layer: which `.pyc` a cold start on Lambda will really use.

Why this exists: pip and `compileall` write *timestamp-based* `.pyc` (PEP 552 flags 0): the header
records the source's mtime and size, and CPython recompiles when the `.py` it finds disagrees. A zip
made by `layerpack build` dates every entry with one fixed time (1980-01-01, or SOURCE_DATE_EPOCH)
so that the same tree gives the same bytes; once Lambda unzips it, every `.py` carries that date,
every such `.pyc` is "stale" (`python -v` says so) and every cold start compiles from source. /opt
is read-only, so nothing is ever cached. *Hash-based* `.pyc` (`unchecked-hash`, flags 1) are used
as they are: the fix is `layerpack slim --compile-pyc` or
`python -m compileall --invalidation-mode unchecked-hash`.
"""

from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from packer.findings import Finding, Severity, define, finding
from packer.runtime import Runtime
from packer.tree import FILE, Tree
from packer.zipread import normalise
from packer.zipwrite import dos_datetime, dos_to_epoch, source_date_epoch

STALE_PYC = define("LP613", Severity.WARNING, "timestamp-based .pyc the zip's dates make stale: compiled at every cold start",
                   "write hash-based .pyc: `layerpack slim --compile-pyc --runtime python3.X`, or "
                   "`python3.X -m compileall --invalidation-mode unchecked-hash DIR`")

HEADER_SIZE = 16  # magic (4), flags (4), then mtime + size (timestamp) or the source hash (8)
FLAG_HASH_BASED = 0x1
FLAG_CHECK_SOURCE = 0x2
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # a zip local file header, up to the name
_PYCACHE = re.compile(r"^(?:(?P<dir>.*)/)?__pycache__/(?P<stem>[^/.]+)\.(?P<tag>[a-z]+-\d+)(?:\.opt-\d)?\.pyc$")


@dataclass(frozen=True)
class PycHeader:
    """The 16-byte header of a .pyc file (PEP 552)."""

    magic: bytes
    flags: int
    mtime: int  # timestamp-based only: the source's st_mtime, truncated to 32 bits
    source_size: int  # timestamp-based only: the source's size, truncated to 32 bits

    @property
    def hash_based(self) -> bool:
        return bool(self.flags & FLAG_HASH_BASED)


def read_header(data: bytes) -> PycHeader | None:
    """The header of `data`, or None when it is not a (PEP 552) .pyc."""
    if len(data) < HEADER_SIZE or data[2:4] != b"\r\n":
        return None
    flags, mtime, size = struct.unpack_from("<III", data, 4)
    return PycHeader(data[:4], flags, mtime, size)


def cache_tag(runtime: str | None) -> str | None:
    """`python3.12` -> `cpython-312`: the `__pycache__` tag that runtime's interpreter reads."""
    m = re.fullmatch(r"python(\d)\.(\d+)", runtime or "")
    return f"cpython-{m.group(1)}{m.group(2)}" if m else None


def pycache_source(rel: str) -> tuple[str, str] | None:
    """(the .py a `__pycache__` file was compiled from, its cache tag), or None for other paths."""
    m = _PYCACHE.match(rel)
    if m is None:
        return None
    d = m.group("dir")
    return (f"{d}/{m.group('stem')}.py" if d else f"{m.group('stem')}.py"), m.group("tag")


def zip_epoch(epoch: int | None) -> int:
    """The mtime unzip gives every file of a zip `layerpack build` writes with `epoch`."""
    return dos_to_epoch(*dos_datetime(epoch))


def _unzipped_mtimes(tree: Tree, wanted: set[str]) -> dict[str, int]:
    """The mtime each wanted member gets when unzipped: the local header's UT extra field (Unix
    time) when present, else its DOS date read as UTC (Lambda's TZ)."""
    index = tree.zip_index
    out: dict[str, int] = {}
    if index is None or not wanted:  # a second pass over the directory (the inventory keeps no
        return out  # dates), only when the zip ships .pyc next to their sources
    for m in index.scan():
        rel = normalise(m.name)
        if rel not in wanted:
            continue
        head = os.pread(index.fd, _LOCAL.size, m.offset)
        if len(head) < _LOCAL.size:
            continue
        _sig, _need, _flags, _method, dtime, ddate, _crc, _cs, _s, nlen, elen = _LOCAL.unpack(head)
        when = dos_to_epoch(dtime, ddate) if ddate else 0
        extra = os.pread(index.fd, elen, m.offset + _LOCAL.size + nlen)
        out[rel] = _ut_mtime(extra, when)
    return out


def _ut_mtime(extra: bytes, default: int) -> int:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return struct.unpack_from("<i", body, 1)[0]
        pos += 4 + length
    return default


def _candidates(tree: Tree, tag: str | None) -> Iterator[tuple[str, str]]:
    """(pyc, source) for every __pycache__ file the runtime's interpreter would consider."""
    for rel, e in tree.entries.items():
        if e.kind != FILE or not rel.endswith(".pyc"):
            continue
        src = pycache_source(rel)
        if src is None or (tag is not None and src[1] != tag) or ".opt-" in rel.rsplit("/", 1)[-1]:
            continue  # .opt-N.pyc are read only under -O / -OO
        s = tree.entries.get(src[0])
        if s is not None and s.kind == FILE:
            yield rel, src[0]


def stale_pycs(tree: Tree, tag: str | None, epoch: int | None = None) -> tuple[list[str], int]:
    """(timestamp-based .pyc whose recorded source mtime or size the unzipped tree contradicts,
    the mtime the sources get). A directory is judged as `build` will zip it (`epoch`, default
    SOURCE_DATE_EPOCH or 1980-01-01); a zip by the dates its members carry."""
    pairs = sorted(_candidates(tree, tag))
    when = zip_epoch(source_date_epoch() if epoch is None else epoch)
    mtimes = _unzipped_mtimes(tree, {s for _, s in pairs}) if tree.kind == "zip" else {}
    stale: list[str] = []
    for rel, src in pairs:
        try:
            h = read_header(tree.read_head(rel, HEADER_SIZE))
        except Exception:  # unreadable members are the layout checks' findings
            continue
        if h is None or h.hash_based:
            continue
        mtime = mtimes.get(src, when)
        if h.mtime != mtime & 0xFFFFFFFF or h.source_size != tree.entries[src].size & 0xFFFFFFFF:
            stale.append(rel)
    return stale, when


def pyc_findings(tree: Tree, rt: Runtime, epoch: int | None = None) -> list[Finding]:
    """One LP613 finding for the tree when some of its timestamp-based .pyc will be stale on Lambda."""
    tag = cache_tag(rt.name)
    stale, when = stale_pycs(tree, tag, epoch)
    if not stale:
        return []
    date = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    dated = "their member dates" if tree.kind == "zip" else f"the zip's date ({date})"
    return [finding(STALE_PYC, stale[0],
                    f"{len(stale):,} timestamp-based .pyc record source mtimes that {dated} contradict: CPython "
                    f"ignores them and compiles those modules at every cold start (/opt is read-only, nothing is cached)",
                    count=len(stale), examples=stale[:5])]


__all__ = ["PycHeader", "STALE_PYC", "cache_tag", "pyc_findings", "pycache_source", "read_header", "stale_pycs"]
