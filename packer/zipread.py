"""A zip's central directory read as a stream, and one member's bytes read back by its offset.

Why not `zipfile`: `ZipFile()` parses the whole central directory into one `ZipInfo` per member
before anything can be read, and a member can only be opened through that table. On a zip of
200,000 empty members those objects were about 90 MB of the 204 MB that `layerpack check --json`
peaked at (tracemalloc: ZipInfo 37 MB, their date tuples 23 MB, decoded names 12 MB, the name
table 7.5 MB, the whole directory read at once 13 MB). Here the directory is read in 1 MiB chunks
and each record is handed to the caller, who keeps what it needs (`ZipIndex.keep`: 32 bytes a
member in flat arrays). Inflating is still the stdlib's zlib; only the framing is ours.

Checked, as zipfile or Info-ZIP check it: the end record (and the ZIP64 locator and end record),
a directory inside the file, every record's signature and length, ZIP64 extra fields, the name's
encoding (UTF-8 when flag 0x800 is set; see `decode_name` for the others), the entry
count, local header offsets before the directory, and on reading: the local header's signature and
name, encryption, the method, the CRC-32 and the declared size. Every failure is an `InputError`
of one line.
"""

from __future__ import annotations

import os
import posixpath
import struct
import zlib
from array import array
from collections.abc import Iterator
from typing import NamedTuple

from packer.errors import InputError

STORED, DEFLATED = 0, 8
UNIX = 3  # "version made by" high byte: the high 16 bits of the external attributes are st_mode
CHUNK = 1 << 20
MAX_VERSION = 63  # zipfile refuses "version needed to extract" above 6.3
# No layer needs more (Lambda counts bytes, not entries; 1,000,000 empty files is already absurd),
# and it bounds what a reader keeps: ~300 bytes of peak RSS an entry for a Tree (305 MB at the limit).
MAX_ENTRIES = 1_000_000
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes
_LOC64 = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator, 20 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record, 56 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header, 46 bytes
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header, 30 bytes
_U32, _U16 = 0xFFFF_FFFF, 0xFFFF


class Directory(NamedTuple):
    """Where the central directory is, from the end record."""

    start: int  # file offset of its first record (bytes before the archive accounted for)
    size: int
    entries: int  # as the end record declares
    comment: bytes
    zip64: bool
    shift: int  # bytes prepended to the archive (a self-extractor's stub); added to every offset


class Member(NamedTuple):
    """One central directory record; handed out one at a time, never kept by this module."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    system: int  # 3 = Unix
    attr: int  # external attributes (st_mode << 16 on Unix)
    offset: int  # of the local header in the file


def _bad(origin: str, why: str) -> InputError:
    return InputError(f"{origin}: not a readable zip file ({why})")


def decode_name(raw: bytes, flags: int, system: int = 0) -> str:
    """A member's name: UTF-8 when flag 0x800 says so; from a Unix zip without the flag, UTF-8
    when the bytes are UTF-8 (Info-ZIP's zip 3.0 stores a UTF-8 system's names so, and unzip on
    Unix writes them back byte for byte; zipfile would show "café" as "caf├⌐"); else cp437, as
    zipfile decodes it. Cut at a NUL, as zipfile cuts it."""
    if raw.isascii():
        name = raw.decode("ascii")
    elif flags & 0x800:
        name = raw.decode("utf-8")
    else:
        try:
            name = raw.decode("utf-8") if system == UNIX else raw.decode("cp437")
        except UnicodeDecodeError:
            name = raw.decode("cp437")
    cut = name.find("\0")
    return name if cut < 0 else name[:cut]


def _end_record(tail: bytes) -> int:
    """Where the end record starts in `tail`: the last signature whose comment length reaches the
    end of the file exactly (so a comment holding the signature is no end record, as Info-ZIP reads
    it), else the last signature with a whole record after it (zipfile's rule); -1 when none."""
    fallback, at = -1, len(tail)
    while (at := tail.rfind(b"PK\x05\x06", 0, at)) >= 0:
        if at + _EOCD.size <= len(tail):
            if at + _EOCD.size + struct.unpack_from("<H", tail, at + 20)[0] == len(tail):
                return at
            fallback = max(fallback, at)
    return fallback


def locate(fd: int, origin: str) -> Directory:
    """Find the end record in the last 64 KiB + 22 bytes (where zipfile and Info-ZIP look for it)
    and, when a ZIP64 locator precedes it, the ZIP64 end record."""
    fsize = os.fstat(fd).st_size
    tail_start = max(0, fsize - _EOCD.size - _U16)
    tail = os.pread(fd, fsize - tail_start, tail_start)
    at = _end_record(tail)
    if at < 0:
        raise _bad(origin, "no end-of-central-directory record: truncated or not a zip")
    _sig, _disk, _cd_disk, _here, entries, cd_size, cd_off, clen = _EOCD.unpack_from(tail, at)
    comment = tail[at + _EOCD.size:at + _EOCD.size + clen]
    end = tail_start + at
    zip64 = False
    loc = os.pread(fd, _LOC64.size, end - _LOC64.size) if end >= _LOC64.size else b""
    if loc[:4] == b"PK\x06\x07":
        _sig, z64_disk, z64_off, disks = _LOC64.unpack(loc)
        if z64_disk != 0 or disks > 1:
            raise _bad(origin, "spans several disks")
        rec_at = end - _LOC64.size - _EOCD64.size
        rec = os.pread(fd, _EOCD64.size, rec_at) if rec_at >= 0 else b""
        if rec[:4] != b"PK\x06\x06":
            rec_at = z64_off  # a ZIP64 end record with extensible data: where the locator points
            rec = os.pread(fd, _EOCD64.size, rec_at) if 0 <= rec_at < end else b""
        if len(rec) != _EOCD64.size or rec[:4] != b"PK\x06\x06":
            raise _bad(origin, "a ZIP64 locator points to no ZIP64 end record")
        _sig, _n, _made, _need, _disk, _cd_disk, _here, entries, cd_size, cd_off = _EOCD64.unpack(rec)
        end, zip64 = rec_at, True
    # (the end records' own disk fields are not checked: zipfile ignores them, and Info-ZIP lists
    # such a zip, at most with a warning, when it is one file; the locator's are, as zipfile does)
    shift = end - cd_size - cd_off  # zipfile's "concat": bytes before the archive
    if shift < 0:
        raise _bad(origin, f"the end record puts a {cd_size:,}-byte central directory at offset {cd_off:,}, "
                           f"past the end record at {end:,}")
    return Directory(cd_off + shift, cd_size, entries, comment, zip64, shift)


def _zip64_fields(extra: bytes, size: int, compressed: int, offset: int, origin: str,
                  name: str) -> tuple[int, int, int]:
    """Replace the 32-bit fields that are 0xFFFFFFFF by the ZIP64 extra field's values, in the
    order the format gives them (size, compressed size, offset), as zipfile's _decodeExtra does."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + length > len(extra):
            raise _bad(origin, f"{name}: corrupt extra field {tag:04x} (size={length})")
        if tag == 0x0001:
            data, k = extra[pos + 4:pos + 4 + length], 0
            values = [size, compressed, offset]
            for i, v in enumerate(values):
                if v == _U32:
                    if k + 8 > len(data):
                        raise _bad(origin, f"{name}: corrupt ZIP64 extra field (a 64-bit size or offset is missing)")
                    values[i] = struct.unpack_from("<Q", data, k)[0]
                    k += 8
            return values[0], values[1], values[2]
        pos += 4 + length
    return size, compressed, offset


def _refill(fd: int, buf: bytes, at: int, pos: int, end: int, n: int, origin: str) -> tuple[bytes, int, int]:
    """(buffer holding at least n unread bytes of the directory, 0, new read position)."""
    have = len(buf) - at
    more = os.pread(fd, min(max(CHUNK, n - have), end - pos), pos)
    buf = buf[at:] + more
    if len(buf) < n:
        raise _bad(origin, "truncated central directory")
    return buf, 0, pos + len(more)


def members(fd: int, d: Directory, origin: str) -> Iterator[Member]:
    """Every record of the central directory, in order, read CHUNK bytes at a time."""
    if d.entries > MAX_ENTRIES:
        raise InputError(f"{origin}: declares {d.entries:,} entries, more than the {MAX_ENTRIES:,} a layer may hold")
    buf, at, pos, end = b"", 0, d.start, d.start + d.size
    count = 0
    unpack, head = _CENTRAL.unpack_from, _CENTRAL.size
    while at < len(buf) or pos < end:
        if at + head > len(buf):
            buf, at, pos = _refill(fd, buf, at, pos, end, head, origin)
        (sig, _made, system, need, _r, flags, method, _t, _d, crc, compressed, size, nlen, elen, clen,
         _disk, _ia, attr, offset) = unpack(buf, at)
        if sig != b"PK\x01\x02":
            raise _bad(origin, f"bad signature in central directory record {count + 1}")
        if at + head + nlen + elen + clen > len(buf):
            buf, at, pos = _refill(fd, buf, at, pos, end, head + nlen + elen + clen, origin)
        base = at + head
        raw = buf[base:base + nlen]
        try:
            name = decode_name(raw, flags, system)
        except UnicodeDecodeError:
            raise _bad(origin, f"member name {raw!r} is flagged UTF-8 but is not") from None
        if _U32 in (size, compressed, offset):
            size, compressed, offset = _zip64_fields(buf[base + nlen:base + nlen + elen], size, compressed,
                                                     offset, origin, name)
        at = base + nlen + elen + clen
        if need > MAX_VERSION:
            raise _bad(origin, f"{name}: needs zip version {need / 10:.1f} to extract")
        offset += d.shift
        if offset + _LOCAL.size > d.start:
            raise _bad(origin, f"{name}: its local header offset {offset:,} is past the members")
        count += 1
        if count > MAX_ENTRIES:
            raise InputError(f"{origin}: holds more than the {MAX_ENTRIES:,} entries a layer may hold")
        yield Member(name, raw, flags, method, crc, compressed, size, system, attr, offset)
    if count != d.entries and not (not d.zip64 and d.entries in (count & _U16, _U16)):
        raise _bad(origin, f"the end record declares {d.entries:,} entries, the central directory holds {count:,}")


def normalise(name: str) -> str:
    """A member name as a tree path: no "./", "//" or trailing "/" (how `Tree` keys entries)."""
    return posixpath.normpath(name).lstrip("/")


def _local_names(raw: bytes, flags: int) -> set[str]:
    """What a local header's name may decode to (a local header does not say which system made it)."""
    names = set()
    for system in (UNIX, 0):
        try:
            names.add(normalise(decode_name(raw, flags, system)))
        except UnicodeDecodeError:
            pass
    return names


class ZipIndex:
    """An open zip: its directory streamed on demand (`scan`), and the members a caller chose to
    `keep` in flat arrays (32 bytes each) so their bytes can be read back (`open`)."""

    def __init__(self, path: str | os.PathLike, origin: str) -> None:
        self.origin = origin
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise InputError(f"{origin}: {exc.strerror or exc}") from exc
        try:
            self.directory = locate(self.fd, origin)
        except BaseException:
            os.close(self.fd)
            raise
        self._offset, self._compressed = array("Q"), array("Q")
        self._crc, self._method_flags = array("I"), array("I")
        self._size = array("Q")

    def scan(self) -> Iterator[Member]:
        return members(self.fd, self.directory, self.origin)

    def keep(self, m: Member) -> int:
        """Remember how to read `m` back; returns its reference for `open`."""
        self._offset.append(m.offset)
        self._compressed.append(m.compressed)
        self._crc.append(m.crc)
        self._method_flags.append(m.method << 16 | m.flags)
        self._size.append(m.size)
        return len(self._offset) - 1

    def open(self, ref: int, rel: str) -> MemberStream:
        """A stream of a kept member's bytes; its local header must name `rel` (normalised)."""
        offset, method_flags = self._offset[ref], self._method_flags[ref]
        head = os.pread(self.fd, _LOCAL.size, offset)
        if len(head) < _LOCAL.size or head[:4] != b"PK\x03\x04":
            raise InputError(f"{self.origin}: cannot read {rel}: no local header where the directory points")
        (_sig, _need, _sys, lflags, _m, _t, _d, _crc, _cs, _s, nlen, elen) = _LOCAL.unpack(head)
        raw = os.pread(self.fd, nlen, offset + _LOCAL.size)
        if rel not in _local_names(raw, lflags):
            raise InputError(f"{self.origin}: cannot read {rel}: the local header names {raw!r}")
        method, flags = method_flags >> 16, method_flags & _U16
        if flags & 0x41:
            raise InputError(f"{self.origin}: cannot read {rel}: the member is encrypted")
        if flags & 0x20 or method not in (STORED, DEFLATED):
            raise InputError(f"{self.origin}: cannot read {rel}: compression method {method} is not supported")
        start = offset + _LOCAL.size + nlen + elen
        return MemberStream(self.fd, start, self._compressed[ref], self._size[ref], self._crc[ref],
                            method, f"{self.origin}: cannot read {rel}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ZipIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemberStream:
    """A member's bytes: stored ones read as they are, deflated ones inflated by zlib, never more
    than the member declares; the CRC-32 and the size are checked at the end."""

    def __init__(self, fd: int, start: int, compressed: int, size: int, crc: int, method: int, where: str) -> None:
        self._fd, self._pos, self._left = fd, start, compressed
        self._size, self._crc, self._where = size, crc, where
        self._inflate = zlib.decompressobj(-15) if method == DEFLATED else None
        self._running, self._made, self._done, self._closed = 0, 0, size == 0 and compressed == 0, False

    def _raw(self, n: int) -> bytes:
        """Up to n more bytes of the member's data; short only at the end of the file (a deflate
        stream may end before its declared compressed size, as zipfile reads it)."""
        n = min(n, self._left)
        data = os.pread(self._fd, n, self._pos) if n else b""
        if n and not data:
            raise InputError(f"{self._where}: the zip is truncated inside this member")
        self._pos += n
        self._left -= n
        return data

    def _next(self, want: int) -> bytes:
        if self._inflate is None:
            data = self._raw(want)
            self._done = self._left == 0
            return data
        src = self._inflate.unconsumed_tail or self._raw(1 << 16)
        if not src:
            raise InputError(f"{self._where}: the deflate data ends early")
        try:
            data = self._inflate.decompress(src, want)
        except zlib.error as exc:
            raise InputError(f"{self._where}: corrupt deflate data ({exc})") from exc
        self._done = self._inflate.eof
        return data

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all that is left when n < 0)."""
        if self._closed:
            raise ValueError("read of a closed member stream")
        want = self._size - self._made + 1 if n is None or n < 0 else n
        parts: list[bytes] = []
        while want > 0 and not self._done:
            data = self._next(min(want, CHUNK) if n is None or n < 0 else want)
            self._made += len(data)
            if self._made > self._size:
                raise InputError(f"{self._where}: inflates past the {self._size:,} bytes it declares")
            self._running = zlib.crc32(data, self._running)
            want -= len(data)
            parts.append(data)
        if self._done:
            self._finish()
        return b"".join(parts)

    def _finish(self) -> None:
        if self._made != self._size:
            raise InputError(f"{self._where}: inflates to {self._made:,} bytes, not the {self._size:,} it declares")
        if self._running != self._crc:
            raise InputError(f"{self._where}: bad CRC-32 (the data does not match the checksum the zip stores)")

    def close(self) -> None:
        self._inflate = None
        self._closed = True

    def __enter__(self) -> MemberStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
