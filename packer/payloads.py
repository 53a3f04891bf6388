"""Native code a package unpacks at run time: compressed archives its loader inflates into /tmp.

Some packages ship their programs and libraries inside `.br`, `.tar.br`, `.tar.gz`, `.tgz` or
`.tar.xz` files and unpack them on the first call (@sparticuz/chromium, the Chromium most Lambda
users run Puppeteer with: `bin/chromium.br` becomes `/tmp/chromium`, `bin/al2023.tar.br` becomes
`/tmp/al2023/lib/libnss3.so`…, and its JavaScript puts `/tmp/al2023/lib` first on
LD_LIBRARY_PATH). The tree walk of `analyze` sees only compressed bytes there, so an x86_64
Chromium in an arm64 layer passed silently. Here each such archive is read as a stream (bounded
memory, a cap on the inflated bytes against decompression bombs), every ELF file inside is judged
for its architecture and its dependencies, with the library path the package sets at run time
over the runtime's own libraries, and whatever layerpack cannot model is said to be not verified.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import posixpath
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from packer.elf.reader import MACHINES, ElfInfo, FileSource, is_elf, read_elf
from packer.elf.search import MISSING, UNLOADABLE, Found, Loader
from packer.errors import ElfError, InputError
from packer.findings import Finding, Severity, define, finding
from packer.lambdafs import LAYER_MOUNT, LambdaFS, Mount
from packer.runtime import ARCH_MACHINE, Runtime
from packer.tree import FILE, MAX_LINK_HOPS, Tree

try:  # a dependency on the machines PyPI has wheels for; elsewhere .br payloads are not verified
    import brotli
except ImportError:  # exercised in a subprocess by the tests
    brotli = None
# Why .br payloads cannot be read here, or None. brotli before 1.2 (Debian 12 has 1.0.9) decodes
# without an output limit: 16 bytes of a bomb give 16 MiB at once, so it is not used.
BROTLI_PROBLEM = ("brotli not installed (pip install 'brotli>=1.2')" if brotli is None else
                  None if hasattr(brotli.Decompressor, "can_accept_more_data") else
                  f"brotli {getattr(brotli, '__version__', '?')} is too old to decode with bounded memory (1.2 or later)")

PAYLOAD_WRONG_ARCH = define("LP308", Severity.ERROR, "a payload the package unpacks at run time holds ELF files for another architecture",
                            "install the package's build for the target architecture (`npm install --os=linux --cpu=arm64`, "
                            "pip's --platform, or the vendor's arm64 release) or pick the Lambda architecture its payload is built for")
PAYLOAD_LIB_MISSING = define("LP114", Severity.ERROR, "a library an unpacked payload needs is in neither the payload nor the runtime",
                             "ship the library in the layer's lib/ (or in the payload's own library directory), or pick "
                             "the runtime the package is built for (--runtime)")
PAYLOAD_UNVERIFIED = define("LP115", Severity.WARNING, "a payload unpacked at run time is not verified",
                            "layerpack cannot model this payload (the reason is in the message): run the function "
                            "(`layerpack invoke`) to check it")

# Inflated bytes layerpack reads from one archive. Lambda's /tmp holds 512 MB by default and at
# most 10,240 MB; the largest real payload seen (@sparticuz/chromium's chromium.br) inflates to
# 211 MB. Past this an archive is a bomb or too large to judge here: reported, never followed.
MAX_INFLATED = 1 << 30
MAX_MEMBERS = 100_000  # tar headers past this: a bomb made of empty members
_IN_CHUNK = 1 << 16  # compressed bytes fed to the decoder at a time
_OUT_LIMIT = 1 << 20  # inflated bytes the decoder may hand back at a time
_TMP = "/tmp"
_SUFFIXES = ((".tar.br", "br", True), (".tar.gz", "gz", True), (".tgz", "gz", True), (".tar.xz", "xz", True),
             (".txz", "xz", True), (".br", "br", False))
_TAILS = frozenset(suffix[-3:] for suffix, _c, _t in _SUFFIXES)
_ASSETS = frozenset((".js", ".mjs", ".cjs", ".css", ".html", ".htm", ".json", ".map", ".svg", ".txt", ".xml", ".md",
                     ".wasm", ".ttf", ".otf", ".woff", ".woff2", ".ico", ".png", ".jpg", ".csv"))


class _Unreadable(Exception):
    """The archive cannot be opened or is corrupt (the message says why, in one line)."""


class _TooLarge(Exception):
    """The archive inflates past the cap."""


def archive_kind(name: str) -> tuple[str, bool] | None:
    """(compression, is a tar) for a payload file name, None for anything else."""
    if name[-3:].lower() not in _TAILS:  # the usual file, in one look (analyze asks for every file)
        return None
    low = name.lower()
    for suffix, compression, is_tar in _SUFFIXES:
        if low.endswith(suffix) and len(low) > len(suffix):
            if not is_tar and posixpath.splitext(low[: -len(suffix)])[1] in _ASSETS:
                return None  # a web server's pre-compressed asset (app.js.br), not native code
            return compression, is_tar
    return None


# -- streams ----------------------------------------------------------------------------------------
class _BrotliStream(io.RawIOBase):
    """A brotli stream read without ever holding more than `_OUT_LIMIT` inflated bytes: brotli's
    own `decompress()` returns a whole bomb at once, `process(..., output_buffer_limit)` does not."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._dec = brotli.Decompressor()
        self._buf = memoryview(b"")
        self._pending = False  # the last call stopped at the output limit: more output without input
        self._eof_in = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            if self._dec.is_finished():
                if self._raw.read(1):
                    raise _Unreadable("brotli: data after the end of the stream")
                return 0
            chunk = b""
            if not self._pending and not self._eof_in and self._dec.can_accept_more_data():
                chunk = self._raw.read(_IN_CHUNK)
                self._eof_in = not chunk
            try:
                out = self._dec.process(chunk, output_buffer_limit=_OUT_LIMIT)
            except brotli.error as exc:
                raise _Unreadable(f"brotli: {exc or 'corrupt data'}") from None
            was_pending, self._pending = self._pending, len(out) >= _OUT_LIMIT
            if not out and not chunk and not was_pending and not self._dec.is_finished():
                raise _Unreadable("brotli: the stream is truncated" if self._eof_in else "brotli: the decoder stalled")
            self._buf = memoryview(out)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Capped(io.RawIOBase):
    """Counts the inflated bytes and stops one byte past the cap; decoder errors become _Unreadable."""

    def __init__(self, inner: BinaryIO, cap: int) -> None:
        self._inner = inner
        self.cap = cap
        self.total = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        try:  # at most one byte past the cap: enough to know it is passed
            data = self._inner.read(min(len(b), self.cap + 1 - self.total))
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise _Unreadable(f"{type(exc).__name__}: {exc}") from None
        self.total += len(data)
        if self.total > self.cap:
            raise _TooLarge()
        b[: len(data)] = data
        return len(data)


def open_inflated(raw: BinaryIO, compression: str, cap: int) -> io.BufferedReader:
    """The inflated bytes of `raw`, read in bounded pieces, at most `cap` of them."""
    if compression == "br":
        if BROTLI_PROBLEM is not None:
            raise _Unreadable(BROTLI_PROBLEM)
        inner: BinaryIO = _BrotliStream(raw)  # type: ignore[assignment]
    elif compression == "gz":
        inner = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    else:
        inner = lzma.LZMAFile(raw)  # type: ignore[assignment]
    return io.BufferedReader(_Capped(inner, cap), buffer_size=_OUT_LIMIT)


# -- what an archive unpacks to -----------------------------------------------------------------------
@dataclass
class Unpacked:
    """One archive's files at the absolute /tmp paths the loader writes them to."""

    archive: str  # the archive's path in the tree
    dest: str  # /tmp/<name>: where a tar is extracted, or the single inflated file
    files: dict[str, ElfInfo | str | None] = field(default_factory=dict)  # ELF info, ELF error, None: not ELF
    links: dict[str, str] = field(default_factory=dict)  # symlink and hard link -> absolute target
    dirs: set[str] = field(default_factory=set)
    problem: str | None = None  # why it is not verified (cannot open, too large)
    label: str = ""  # how messages name it: its path inside its package (`bin/chromium.br`)

    def elves(self) -> Iterator[tuple[str, ElfInfo]]:
        for path, info in self.files.items():
            if isinstance(info, ElfInfo):
                yield path, info


def dest_for(rel: str) -> str:
    """Where @sparticuz/chromium's `inflate()` puts an archive: /tmp/ + its name without the
    archive suffix (`swiftshader.tar.br` is special-cased by the rule, not here)."""
    base = posixpath.basename(rel)
    low = base.lower()
    for suffix, _c, _t in _SUFFIXES:
        if low.endswith(suffix):
            return posixpath.join(_TMP, base[: len(base) - len(suffix)])
    return posixpath.join(_TMP, base)


def _elf_of(stream: BinaryIO, head: bytes) -> ElfInfo | str:
    """Header facts of one inflated ELF file, spooled to an unnamed temporary file so memory stays
    bounded (the loader reads the dynamic segment wherever it lies, 200 MB into Chromium)."""
    with tempfile.TemporaryFile(prefix="layerpack-payload-") as spool:
        spool.write(head)
        size = len(head)
        while chunk := stream.read(_OUT_LIMIT):
            spool.write(chunk)
            size += len(chunk)
        spool.flush()
        try:
            return read_elf(FileSource(spool.fileno(), size))
        except ElfError as exc:
            return str(exc)


def _add_parents(out: Unpacked, path: str) -> None:
    parent = posixpath.dirname(path)
    while parent.startswith(_TMP + "/") and parent not in out.dirs:
        out.dirs.add(parent)
        parent = posixpath.dirname(parent)


def _read_single(stream: BinaryIO, out: Unpacked) -> None:
    head = stream.read(64)
    if is_elf(head):
        out.files[out.dest] = _elf_of(stream, head)
    else:
        while stream.read(_OUT_LIMIT):  # to the end: a corrupt or oversized stream is found, not assumed
            pass
        out.files[out.dest] = None


def _member_path(dest: str, name: str) -> str | None:
    norm = posixpath.normpath("/" + name.lstrip("/"))
    return None if norm == "/" else posixpath.join(dest, norm[1:])


def _read_tar(stream: BinaryIO, out: Unpacked) -> None:
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.TarError as exc:
        raise _Unreadable(f"not a tar archive ({exc})") from None
    count = 0
    try:
        while (member := tar.next()) is not None:
            tar.members.clear()  # a stream needs no index of past members: bounded memory
            count += 1
            if count > MAX_MEMBERS:
                raise _TooLarge()
            _read_member(tar, member, out)
    except tarfile.TarError as exc:
        raise _Unreadable(f"corrupt tar archive ({exc})") from None


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, out: Unpacked) -> None:
    path = _member_path(out.dest, member.name)
    if path is None:
        return
    _add_parents(out, path)
    if member.isdir():
        out.dirs.add(path)
    elif member.issym():
        target = member.linkname
        out.links[path] = target if target.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    elif member.islnk():
        out.links[path] = _member_path(out.dest, member.linkname) or out.dest
    elif member.isfile():
        fh = tar.extractfile(member)
        if fh is None:
            return
        head = fh.read(64)
        out.files[path] = _elf_of(fh, head) if is_elf(head) else None


def unpack(tree: Tree, rel: str, dest: str, cap: int = MAX_INFLATED) -> Unpacked:
    """The archive `rel` of the tree as its loader would unpack it at `dest`; `problem` says why not."""
    out = Unpacked(rel, dest)
    kind = archive_kind(rel)
    if kind is None:
        out.problem = "not an archive layerpack reads"
        return out
    compression, is_tar = kind
    if is_tar:
        out.dirs.add(dest)
    try:
        with tree.open(rel) as raw, open_inflated(raw, compression, cap) as stream:
            (_read_tar if is_tar else _read_single)(stream, out)
    except _TooLarge:
        out.problem = (f"it inflates past {cap:,} bytes (or {MAX_MEMBERS:,} members), the most layerpack unpacks: "
                       "a decompression bomb, or a payload larger than Lambda's /tmp")
    except _Unreadable as exc:
        out.problem = str(exc) if str(exc) == BROTLI_PROBLEM else f"cannot open the archive: {exc}"
    except (InputError, OSError) as exc:
        out.problem = f"cannot read the archive: {exc}"
    return out


# -- the file system the unpacked payload lives in ------------------------------------------------------
class PayloadFS:
    """Lambda's file system (runtime, layers, function) with the unpacked payloads under /tmp:
    the `FileSystem` the loader simulation of packer.elf.search runs on."""

    def __init__(self, base: LambdaFS, unpacked: list[Unpacked]) -> None:
        self.base = base
        self.cwd = base.cwd
        self.lib_token = base.lib_token
        self.platform = base.platform
        self.files: dict[str, tuple[Unpacked, ElfInfo | str | None]] = {}
        self.links: dict[str, str] = {}
        self.dirs: set[str] = {_TMP}
        for u in unpacked:
            self.files.update((p, (u, i)) for p, i in u.files.items())
            self.links.update(u.links)
            self.dirs |= u.dirs

    def find(self, path: str) -> Found | None:
        real = posixpath.normpath(path)
        for _ in range(MAX_LINK_HOPS):
            if real != _TMP and not real.startswith(_TMP + "/"):
                found = self.base.find(real)
                return None if found is None else Found(path, found.real, found.where, found.label, found.ref,
                                                        found.is_dir, found.readable)
            if real not in self.links:
                break
            real = self.links[real]
        else:
            return None
        if real in self.dirs:
            return Found(path, real, "tree", "payload", is_dir=True)
        hit = self.files.get(real)
        if hit is None:
            return None
        return Found(path, real, "tree", f"payload {hit[0].archive}", ref=hit)

    def elf(self, found: Found) -> ElfInfo | None:
        if not (isinstance(found.ref, tuple) and found.ref and isinstance(found.ref[0], Unpacked)):
            return self.base.elf(found)
        info = found.ref[1]
        if info is None:
            raise ElfError("not an ELF file")
        if isinstance(info, str):
            raise ElfError(info)
        return info


# -- which archives are payloads, and how their loader unpacks them ----------------------------------
def _always(rt: Runtime) -> bool:
    return True


def _node_on_al2023(rt: Runtime) -> bool:
    """@sparticuz/chromium's `isRunningInAmazonLinux2023`: AWS_EXECUTION_ENV (`AWS_Lambda_<runtime>`)
    names node 20, 22 or 24."""
    env = f"AWS_Lambda_{rt.name}"
    return any(v in env for v in ("20.x", "22.x", "24.x"))


def _node_on_al2(rt: Runtime) -> bool:
    """Older releases inflate al2.tar.br on the node runtimes of Amazon Linux 2 (14, 16, 18)."""
    return rt.name in ("nodejs14.x", "nodejs16.x", "nodejs18.x")


@dataclass(frozen=True)
class Archive:
    """One archive a known loader inflates: where to, on which runtimes, and the library directory
    it puts first on LD_LIBRARY_PATH when it does."""

    rel: str  # inside the package
    dest: str
    when: Callable[[Runtime], bool] = _always
    when_text: str = ""
    lib_dir: str | None = None


@dataclass(frozen=True)
class Layout:
    """A package whose run-time unpacking layerpack models (read from its loader's source)."""

    name: str
    packages: tuple[str, ...]  # `name` in its package.json
    marker: str  # a file that marks the layout, relative to the package directory
    archives: tuple[Archive, ...]


_AL2023_TEXT = "only on nodejs20.x, nodejs22.x and nodejs24.x (it tests AWS_EXECUTION_ENV)"
# @sparticuz/chromium (build/index.js, build/lambdafs.js, build/helper.js): `executablePath()`
# inflates chromium.br to /tmp/chromium, fonts.tar.br to /tmp/fonts, swiftshader.tar.br into /tmp
# itself, and al2023.tar.br to /tmp/al2023 when `isRunningInAmazonLinux2023`, which is also when
# `setupLambdaEnvironment("/tmp/al2023/lib")` puts that directory first on LD_LIBRARY_PATH.
SPARTICUZ_CHROMIUM = Layout(
    name="@sparticuz/chromium",
    packages=("@sparticuz/chromium",),
    marker="bin/chromium.br",
    archives=(
        Archive("bin/chromium.br", "/tmp/chromium"),
        Archive("bin/fonts.tar.br", "/tmp/fonts"),
        Archive("bin/swiftshader.tar.br", _TMP),
        Archive("bin/al2023.tar.br", "/tmp/al2023", _node_on_al2023, _AL2023_TEXT, "/tmp/al2023/lib"),
        Archive("bin/al2.tar.br", "/tmp/al2", _node_on_al2, "only on the node runtimes of Amazon Linux 2 (14.x-18.x)",
                "/tmp/al2/lib"),
    ),
)
LAYOUTS = (SPARTICUZ_CHROMIUM,)
_PACKAGE_DIRS = ("node_modules", "site-packages", "dist-packages")
_PACKAGE_MARKS = ("package.json", "__init__.py")


@dataclass
class Group:
    """The payload archives of one package, judged together (they share one /tmp)."""

    root: str  # the package directory in the tree ("" for the root)
    layout: Layout | None
    archives: list[tuple[str, Archive]] = field(default_factory=list)  # (tree path, how it unpacks)


def _package_name(tree: Tree, pkg: str) -> str | None:
    rel = posixpath.join(pkg, "package.json") if pkg else "package.json"
    entry = tree.entries.get(rel)
    if entry is None or entry.kind != FILE or entry.size > 1 << 20:
        return None
    try:
        doc = json.loads(tree.read_bytes(rel, limit=1 << 20))
    except (InputError, ValueError, UnicodeDecodeError):
        return None
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) else None


def _package_root(tree: Tree, rel: str) -> str | None:
    """The nearest directory above `rel` that is a package (package.json, __init__.py) or lies in a
    package directory; None when the archive is not part of a package."""
    parts = rel.split("/")[:-1]
    for i in range(len(parts), -1, -1):
        d = "/".join(parts[:i])
        if any((posixpath.join(d, m) if d else m) in tree.entries for m in _PACKAGE_MARKS):
            return d
    inside = any(p in _PACKAGE_DIRS for p in parts) or (parts[:1] in (["nodejs"], ["python"]))
    return "/".join(parts) if inside else None


def discover(tree: Tree) -> list[Group]:
    """Every package in the tree holding payload archives, with the layout that unpacks them."""
    groups: dict[str, Group] = {}
    for layout in LAYOUTS:
        for entry in tree.files():
            if not (entry.path == layout.marker or entry.path.endswith("/" + layout.marker)):
                continue
            pkg = entry.path[: -len(layout.marker)].rstrip("/")
            if _package_name(tree, pkg) in layout.packages:
                group = groups.setdefault(pkg, Group(pkg, layout))
                for a in layout.archives:
                    rel = posixpath.join(pkg, a.rel) if pkg else a.rel
                    if rel in tree.entries and tree.entries[rel].kind == FILE:
                        group.archives.append((rel, a))
    claimed = {rel for g in groups.values() for rel, _a in g.archives}
    for entry in tree.files():
        if entry.path in claimed or archive_kind(entry.path) is None:
            continue
        root = _package_root(tree, entry.path)
        if root is None:
            continue
        group = groups.setdefault(root, Group(root, None))
        group.archives.append((entry.path, Archive(entry.path, dest_for(entry.path))))
    return [groups[k] for k in sorted(groups)]


# -- judging ------------------------------------------------------------------------------------------
def _member(u: Unpacked, path: str) -> str:
    return posixpath.basename(path) if path == u.dest else posixpath.relpath(path, u.dest)


def _target_machine(rt: Runtime) -> int:
    return next(num for num, name in MACHINES.items() if name == ARCH_MACHINE[rt.arch])


def _wrong_arch(info: ElfInfo, machine: int) -> bool:
    return info.machine != machine or info.bits != 64


def _arch_findings(group: Group, unpacked: list[Unpacked], rt: Runtime, machine: int) -> list[Finding]:
    """LP308 once per archive. An unknown loader with target-arch ELF files elsewhere in the same
    package likely picks its payload by `process.arch`: the others are then not an error."""
    if group.layout is None and any(not _wrong_arch(i, machine) for u in unpacked for _p, i in u.elves()):
        return []
    out = []
    for u in unpacked:
        wrong = [(p, i) for p, i in u.elves() if _wrong_arch(i, machine)]
        if not wrong:
            continue
        wrong.sort(key=lambda pi: (not pi[1].is_program, pi[0]))
        path, info = wrong[0]
        more = f" (and {len(wrong) - 1} more ELF files)" if len(wrong) > 1 else ""
        out.append(finding(PAYLOAD_WRONG_ARCH, u.archive,
                           f"{u.label} → {_member(u, path)}{more} is {info.machine_name} ({info.bits}-bit), the target is "
                           f"{rt.arch}: the package unpacks it to {path} at run time and it cannot run there",
                           members=[_member(u, p) for p, _i in wrong[:20]], machine=info.machine_name, dest=path))
    return out


def _library_path(group: Group, unpacked: list[Unpacked], rt: Runtime) -> tuple[str, ...]:
    """LD_LIBRARY_PATH of the unpacked programs: the layout's library directories before the
    runtime's; for an unknown loader, every directory of the payload holding a library (the most
    generous guess: what is still missing then is missing whatever the loader sets)."""
    if group.layout is not None:
        dirs = [a.lib_dir for _rel, a in group.archives if a.lib_dir and a.when(rt)]
    else:
        dirs = sorted({posixpath.dirname(p) for u in unpacked for p, i in u.elves() if not i.is_program})
    return tuple(dirs) + rt.ld_library_path


def _missing_hint(group: Group, rt: Runtime) -> str | None:
    skipped = [a for _rel, a in group.archives if a.lib_dir and not a.when(rt)]
    if group.layout is None or not skipped:
        return None
    a = skipped[0]
    return (f"{group.layout.name} unpacks {posixpath.basename(a.rel)} and puts {a.lib_dir} on LD_LIBRARY_PATH "
            f"{a.when_text}; on {rt.name} it does not: use such a runtime (--runtime), or ship the libraries")


def _dependency_findings(group: Group, unpacked: list[Unpacked], rt: Runtime, base: LambdaFS,
                         machine: int) -> list[Finding]:
    """LP114 for each library an unpacked ELF file of the target arch needs and cannot find, by the
    loader simulation over Lambda's file system with the payloads in /tmp."""
    inflated = [u for u, (_rel, a) in zip(unpacked, group.archives) if a.when(rt)]
    fs = PayloadFS(base, inflated)
    llp = _library_path(group, unpacked, rt)
    loader = Loader(fs, llp, rt.default_dirs, machine=machine, bits=64)
    hint = _missing_hint(group, rt)
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for u in inflated:
        for path, info in u.elves():
            if _wrong_arch(info, machine):
                continue
            root = fs.find(path)
            if root is None:
                continue
            process = loader.load(root, as_program=info.is_program)
            lost = [(e.requester, e.name, e.error) for e in process.edges if e.status in (MISSING, UNLOADABLE)]
            if process.interp_ok is False and info.interp:
                lost.insert(0, (path, info.interp, "the program interpreter"))
            for requester, name, why in lost:
                owner = fs.files.get(requester)
                if owner is None or (requester, name) in seen:
                    continue  # not a payload file: analyze's own checks report the tree's libraries
                seen.add((requester, name))
                at = owner[0]
                what = f" ({why})" if why else ""
                out.append(finding(PAYLOAD_LIB_MISSING, at.archive,
                                   f"{at.label} → {_member(at, requester)} needs {name}{what}, which neither the payload "
                                   f"nor the runtime has (unpacked to {requester}; LD_LIBRARY_PATH {':'.join(llp)})",
                                   hint, library=name, member=_member(at, requester), ld_library_path=list(llp)))
    return out


def _unverified(group: Group, unpacked: list[Unpacked]) -> list[Finding]:
    out = []
    for u in unpacked:
        if u.problem is not None:
            out.append(finding(PAYLOAD_UNVERIFIED, u.archive, f"{u.label}: not verified: {u.problem}", reason=u.problem))
        elif group.layout is None and any(True for _ in u.elves()):
            n = sum(1 for _ in u.elves())
            out.append(finding(PAYLOAD_UNVERIFIED, u.archive,
                               f"{u.label}: not verified: unknown loader: layerpack does not know where the package "
                               f"unpacks it or which library path it sets; its {n} ELF file{'s' if n > 1 else ''} were judged "
                               f"as unpacked to {u.dest} with the payload's library directories on LD_LIBRARY_PATH",
                               reason="unknown loader"))
    return out


def payload_findings(tree: Tree, rt: Runtime, *, fs: LambdaFS | None = None, cap: int = MAX_INFLATED) -> list[Finding]:
    """Findings for every payload a package of the tree unpacks at run time (LP308, LP114, LP115).
    `fs`: the analysis's Lambda file system (other layers included); by default the tree as a layer."""
    groups = discover(tree)
    if not groups:
        return []
    base = fs or LambdaFS(rt, [Mount(LAYER_MOUNT, tree, "layer")])
    machine = _target_machine(rt)
    out: list[Finding] = []
    for group in groups:
        unpacked = [unpack(tree, rel, a.dest, cap) for rel, a in group.archives]
        for u in unpacked:
            u.label = posixpath.relpath(u.archive, group.root) if group.root else u.archive
        out += _unverified(group, unpacked)
        out += _arch_findings(group, unpacked, rt, machine)
        if all(u.problem is None for u in unpacked):  # a payload not read: its libraries are not known either
            out += _dependency_findings(group, unpacked, rt, base, machine)
    return out
