"""Lambda's size budget, counted the way Lambda counts it, before anything is uploaded.

Users otherwise learn the limits from the upload error (`Unzipped size must be smaller than
262144000 bytes`, `Request must be smaller than 69905067 bytes for the PublishLayerVersion
operation`). The unzipped budget is shared by the function and all its layers (at most 5), and it
counts what unzip would write: file sizes plus, for a symlink, the length of its target (a link is
stored as a link, not as a copy). Directories and disk blocks do not count, so `du` overstates it.

This module also reads a zip's directory defensively (`ZipInspection`): a zip is never extracted to
be measured, and one whose directory lies (declared sizes no deflate stream can produce, members
sharing bytes, headers that disagree) is refused before anything inflates it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import struct
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from typing import BinaryIO

from packer.errors import PackageError
from packer.findings import Finding, Severity, define, finding
from packer.quotas import MAX_LAYERS, REQUEST_LIMIT, UNZIPPED_LIMIT, largest_inline_zip, upload_route
from packer.tree import FILE, SYMLINK, Tree
from packer.zipread import DEFLATED, STORED, UNIX, Member, ZipIndex

NEAR_LIMIT_PCT = 5.0

DEFLATE_MAX_RATIO = 1_032  # deflate cannot expand a stream more than ~1032:1
MAX_DECLARED_TOTAL = 4 * 1024**3  # past this a zip is not a layer whatever it holds

OVER_BUDGET = define("LP501", Severity.ERROR, "over Lambda's unzipped size limit",
                     f"the function and all its layers together must unzip to less than {UNZIPPED_LIMIT:,} bytes: "
                     "slim the tree (`layerpack slim`) or move files to another artefact")
NEAR_BUDGET = define("LP502", Severity.WARNING, "within 5% of Lambda's unzipped size limit",
                     "the next dependency update may not fit: slim the tree (`layerpack slim`)")
VIA_S3 = define("LP503", Severity.INFO, "zip too large for an inline upload: publish will go through S3",
                f"nothing to fix: publish uploads the zip to S3 first; slim it to {largest_inline_zip():,} bytes or less "
                "to upload it inline")
NOT_UNIX_ZIP = define("LP504", Severity.WARNING, "zip made on a non-Unix system: no Unix modes",
                      "every file lands without an exec bit; rebuild it with `layerpack build`")
FLATTENED_COPIES = define("LP505", Severity.WARNING, "the same library stored several times under its versioned names",
                          "store the later names as symlinks to the first: `layerpack build --dedupe` "
                          "(or `layerpack slim --dedupe`); Lambda restores links from the zip")
ODD_METHOD = define("LP506", Severity.WARNING, "zip member compressed with a method other than deflate or store",
                    "rebuild with `layerpack build`; Lambda's unzip is only known to read deflate and stored members")


@dataclass(frozen=True)
class Contributor:
    path: str  # a directory ("." for files at the root)
    bytes: int
    entries: int

    def to_json(self, total: int) -> dict:
        return {"path": self.path, "bytes": self.bytes, "entries": self.entries,
                "pct": round(100.0 * self.bytes / total, 2) if total else 0.0}


def contributors(tree: Tree, depth: int = 2, top: int = 10) -> list[Contributor]:
    """The largest directories cut at `depth` path components, largest first. A file shallower
    than `depth` counts for its own directory (root files for ".")."""
    size: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for e in tree.entries.values():
        if e.kind not in (FILE, SYMLINK):
            continue
        parts = e.path.split("/")[:-1][:depth]
        key = "/".join(parts) or "."
        size[key] += e.size
        count[key] += 1
    rows = [Contributor(k, v, count[k]) for k, v in size.items()]
    rows.sort(key=lambda c: (-c.bytes, c.path))
    return rows[:top]


def needs_s3(zipped_size: int) -> bool:
    """True when publish sends this zip through S3 (`quotas.upload_route`, shared with publish)."""
    return upload_route(zipped_size) == "s3"


@dataclass(frozen=True)
class Budget:
    """The shared unzipped budget of a function and its layers."""

    sizes: tuple[int, ...]  # unzipped bytes of each artefact (the checked one first)
    layers: int  # how many of them are layers
    limit: int = UNZIPPED_LIMIT

    @property
    def total(self) -> int:
        return sum(self.sizes)

    @property
    def headroom(self) -> int:
        """Bytes left before the limit; 0 or less is over (Lambda wants strictly smaller)."""
        return self.limit - self.total

    @property
    def headroom_pct(self) -> float:
        return round(100.0 * self.headroom / self.limit, 2)

    @property
    def over(self) -> bool:
        return self.total >= self.limit

    def findings(self, path: str) -> list[Finding]:
        if self.over:
            what = "this layer" if len(self.sizes) == 1 else f"these {len(self.sizes)} artefacts together"
            return [finding(OVER_BUDGET, path,
                            f"{what} unzip to {self.total:,} bytes; Lambda's limit is {self.limit:,} "
                            f"({self.total - self.limit + 1:,} bytes too many)", total=self.total, limit=self.limit)]
        if self.headroom_pct < NEAR_LIMIT_PCT:
            return [finding(NEAR_BUDGET, path, f"{self.total:,} of {self.limit:,} bytes used; "
                            f"{self.headroom:,} bytes ({self.headroom_pct}%) left", total=self.total)]
        return []

    def to_json(self) -> dict:
        return {"limit_bytes": self.limit, "combined_unzipped_bytes": self.total, "headroom_bytes": self.headroom,
                "headroom_pct": self.headroom_pct, "over": self.over, "layers": self.layers,
                "artefacts": len(self.sizes)}


def budget(target: int, layers: list[int] = (), function: int | None = None, *, target_is_layer: bool = True) -> Budget:
    """Combine sizes; more than 5 layers cannot be attached to one function (a usage error)."""
    from packer.errors import UsageError

    n_layers = len(layers) + (1 if target_is_layer else 0)
    if n_layers > MAX_LAYERS:
        raise UsageError(f"{n_layers} layers: a Lambda function can use at most {MAX_LAYERS}",
                         hint="merge layers, or move code into the function package")
    sizes = (target, *layers, *((function,) if function is not None else ()))
    return Budget(tuple(sizes), n_layers)


def upload_findings(path: str, zipped_size: int, estimated: bool = False) -> list[Finding]:
    if needs_s3(zipped_size):
        about = "about " if estimated else ""
        return [finding(VIA_S3, path, f"{about}{zipped_size:,} bytes zipped is over {largest_inline_zip():,}, the "
                        f"largest zip sent inline (request limit {REQUEST_LIMIT:,} bytes): publish will upload it "
                        f"to S3", zipped=zipped_size)]
    return []


# -- reading a zip without trusting it ---------------------------------------------------------

@dataclass
class ZipFacts:
    """What the central directory says, checked against the local headers."""

    path: str
    zipped_size: int
    declared_unzipped: int
    entries: int
    findings: list[Finding] = field(default_factory=list)


class ZipInspection:
    """Reads a zip's directory and local headers defensively; refuses zip bombs with PackageError.

    Refused: declared sizes no deflate stream of that length can produce (ratio > 1032:1),
    stored members whose sizes disagree, members whose data overlap (one stream counted many
    times) or run past the directory, local headers that disagree with the directory, or more
    than 4 GiB declared (more than 1,000,000 entries the reader refuses itself). Nothing is inflated.
    Fed one record at a time by `open_tree(path, watch=inspection)`, so the directory is streamed
    once for the tree and for this (measured on 52,000 entries: parsing it was 45 % of `check`);
    what it keeps is each member's data span in two flat arrays (16 bytes a member)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.origin = str(path)
        self.declared = self.count = self.non_unix = 0
        self.odd: list[str] = []
        self.starts, self.ends = array("Q"), array("Q")
        self._fh: BinaryIO | None = None
        self._members_end = 0

    def refuse(self, why: str) -> PackageError:
        return PackageError(f"{self.origin}: refused as a zip bomb: {why}",
                            hint="rebuild the layer from its files with `layerpack build`")

    def __call__(self, m: Member, index: ZipIndex) -> None:
        if self._fh is None:  # buffered: the local headers of small members share a read
            self._fh = open(index.fd, "rb", closefd=False)  # noqa: SIM115 (closed by facts)
            self._members_end = index.directory.start
        self._check(m, self._fh)

    def _check(self, m: Member, fh: BinaryIO) -> None:
        name = m.name
        self.count += 1  # (more than zipread.MAX_ENTRIES is refused by the reader before it gets here)
        self.declared += m.size
        if self.declared > MAX_DECLARED_TOTAL:
            raise self.refuse(f"members declare more than {MAX_DECLARED_TOTAL:,} bytes unzipped")
        if m.method == DEFLATED:
            if m.size > m.compressed * DEFLATE_MAX_RATIO + 1024:
                raise self.refuse(f"{name} declares {m.size:,} bytes from {m.compressed:,} "
                                  f"compressed (deflate cannot exceed about {DEFLATE_MAX_RATIO}:1)")
        elif m.method == STORED:
            if m.size != m.compressed:
                raise self.refuse(f"{name} is stored but declares {m.size:,} bytes from {m.compressed:,}")
        else:
            self.odd.append(name)
        fh.seek(m.offset)
        head = fh.read(30 + len(m.raw_name))
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise self.refuse(f"{name}: no local header where the directory points")
        nlen, elen = struct.unpack("<HH", head[26:30])
        if nlen != len(m.raw_name) or head[30:] != m.raw_name:
            fh.seek(m.offset + 30)
            raise self.refuse(f"{name}: the local header names {fh.read(nlen)!r}")
        end = m.offset + 30 + nlen + elen + m.compressed
        if end > self._members_end:
            raise self.refuse(f"{name}: its data runs past the end of the members")
        self.starts.append(m.offset)
        self.ends.append(end)
        if m.system != UNIX and not name.endswith("/"):
            self.non_unix += 1

    def facts(self, index: ZipIndex) -> ZipFacts:
        """The facts once every record was seen; the overlap check runs here."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.check_overlaps(index)
        out: list[Finding] = []
        if self.non_unix:
            out.append(finding(NOT_UNIX_ZIP, ".", f"{self.non_unix} members of {self.origin} carry no Unix mode "
                               "(made on Windows or by a tool that drops modes): no exec bits on Lambda",
                               members=self.non_unix))
        for name in self.odd[:20]:
            out.append(finding(ODD_METHOD, name, f"{name} uses a compression method other than deflate or store"))
        return ZipFacts(self.origin, os.fstat(index.fd).st_size, self.declared, self.count, out)

    def check_overlaps(self, index: ZipIndex) -> None:
        """Members written one after the other (every writer's order) are checked in one pass;
        only a directory listing them out of order pays for sorting."""
        starts, ends = self.starts, self.ends
        order: range | list[int] = range(len(starts))
        if any(starts[i] > starts[i + 1] for i in range(len(starts) - 1)):
            order = sorted(order, key=starts.__getitem__)
        for a, b in zip(order, order[1:]):
            if starts[b] < ends[a]:
                names = [m.name for k, m in enumerate(index.scan()) if k in (a, b)]
                raise self.refuse(f"{names[0]} and {names[-1]} share the same bytes (overlapping members)")


_SO = re.compile(r"^(?P<stem>.+?\.so)(?:\.[0-9][0-9A-Za-z_.+-]*)?$")


def flattened_copies(tree: Tree, min_size: int = 4096) -> list[Finding]:
    """Libraries stored once per versioned name (`libx.so`, `.so.1`, `.so.1.2.3` as three identical
    files), confirmed by content hash. Two causes, told apart only where the tree shows it: pip
    writes real copies (a wheel cannot hold links: pyarrow's `libarrow_python.so*`), and zipping
    without `-y` flattens a symlink chain. `layerpack build` keeps links but not copies, so the fix
    named is `--dedupe`."""
    groups: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for e in tree.entries.values():
        if e.kind != FILE or e.size < min_size:
            continue
        d, base = posixpath.split(e.path)
        m = _SO.match(base)
        if m:
            groups[(d, m.group("stem"), e.size)].append(e.path)
    out = []
    for (_d, _stem, size), paths in sorted(groups.items()):
        if len(paths) < 2:
            continue
        by_hash: dict[str, list[str]] = defaultdict(list)
        for rel in paths:
            try:
                by_hash[hashlib.sha256(tree.read_bytes(rel)).hexdigest()].append(rel)
            except Exception:  # unreadable members are reported by the layout checks
                continue
        for same in by_hash.values():
            if len(same) > 1:
                same.sort(key=len)
                wasted = size * (len(same) - 1)
                out.append(finding(FLATTENED_COPIES, same[-1], _copies_message(tree, same, wasted),
                                   copies=same, wasted=wasted))
    return out


def _copies_message(tree: Tree, same: list[str], wasted: int) -> str:
    names = ", ".join(same)
    if tree.kind == "zip":
        return (f"{names} are {len(same)} identical members ({wasted:,} bytes wasted): rebuild from the tree with "
                "`layerpack build --dedupe` (if the tree holds them as symlinks, plain `layerpack build` keeps them)")
    return (f"{names} are {len(same)} identical regular files, not links (how pip installs them: a wheel cannot "
            f"hold links); `layerpack build` zips each of them ({wasted:,} bytes wasted) unless given --dedupe")
