"""BEAM chunk stripping in pure Python, byte-identical to `beam_lib:strip_release`.

Why not call `erl`: the machine that slims a layer often has no Erlang (a CI image building an
Elixir release in another stage), and one `erl` boot per tree is slower than reading the chunks here.
The algorithm follows OTP's `beam_lib:strip/2` exactly (docs/slim-rules.md, "BEAM chunks"): gunzip when the file
does not start with `FOR1`, keep a *whitelist* of chunks in request order (extra chunks first, then
`significant_chunks()` of the OTP version), pad each chunk to 4 bytes, write the `FOR1` header, and
gzip with zlib's default level, mtime 0 and OS=Unix — which is what `zlib:gzip/1` emits.
Tests compare the output with real `erl` byte for byte on every beam of Debian's OTP tree.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packer.errors import SlimError

# beam_lib:significant_chunks() per OTP generation; md5_chunks() gained "Meta" and the list gained
# "Type" in OTP 25. Both keep `Line` first.
SIGNIFICANT_OTP25 = ("Line", "Type", "Atom", "AtU8", "Code", "StrT", "ImpT", "ExpT", "FunT", "LitT", "Meta")
SIGNIFICANT_OTP24 = ("Line", "Atom", "AtU8", "Code", "StrT", "ImpT", "ExpT", "FunT", "LitT")
MANDATORY = ("Code", "ExpT", "ImpT", "StrT")
MAX_BEAM = 256 * 1024 * 1024  # nothing real comes close; bounds gunzip of a hostile file


class BeamError(SlimError):
    """A `.beam` that is not a valid IFF BEAM container (left alone and reported, never deleted)."""


@dataclass(frozen=True)
class Chunk:
    id: str
    data: bytes


def significant_chunks(otp_release: int | None) -> tuple[str, ...]:
    """The whitelist `beam_lib:strip` keeps for a given OTP major release (None = newest)."""
    if otp_release is not None and otp_release <= 24:
        return SIGNIFICANT_OTP24
    return SIGNIFICANT_OTP25


def uncompress(data: bytes) -> bytes:
    """Return the raw IFF bytes, gunzipping like `beam_lib:maybe_uncompress` does."""
    if data[:4] == b"FOR1":
        return data
    try:
        d = zlib.decompressobj(47)  # gzip or zlib header, auto-detected
        out = d.decompress(data, MAX_BEAM)
    except zlib.error as exc:
        raise BeamError(f"not a BEAM file (neither FOR1 nor gzip: {exc})") from exc
    if d.unconsumed_tail:
        raise BeamError("compressed BEAM file is too large")
    if out[:4] != b"FOR1":
        raise BeamError("gzip content is not a BEAM file")
    return out


def parse(data: bytes) -> list[Chunk]:
    """Chunks of a BEAM file in file order (reads like `beam_lib:scan_beam` and the loader)."""
    raw = uncompress(data)
    if len(raw) < 12 or raw[8:12] != b"BEAM":
        raise BeamError("missing FOR1/BEAM header")
    (form_len,) = struct.unpack(">I", raw[4:8])
    end = 8 + form_len
    if end > len(raw):
        raise BeamError(f"FOR1 length {form_len} runs past the end of the file ({len(raw)} bytes)")
    pos = 12
    chunks: list[Chunk] = []
    while pos + 8 <= end:
        cid = raw[pos : pos + 4]
        (size,) = struct.unpack(">I", raw[pos + 4 : pos + 8])
        if pos + 8 + size > end:
            raise BeamError(f"chunk {cid!r} of {size} bytes runs past the end of the form")
        try:
            name = cid.decode("ascii")
        except UnicodeDecodeError:
            raise BeamError(f"chunk id {cid!r} is not ASCII") from None
        chunks.append(Chunk(name, raw[pos + 8 : pos + 8 + size]))
        pos += 8 + ((size + 3) & ~3)
    return chunks


def build(chunks: Iterable[Chunk]) -> bytes:
    """`beam_lib:build_module/1`: id, unpadded size, data, zero pad to 4; FOR1 length = body + 4."""
    parts = []
    for c in chunks:
        pad = (-len(c.data)) % 4
        parts.append(c.id.encode("ascii") + struct.pack(">I", len(c.data)) + c.data + b"\0" * pad)
    body = b"".join(parts)
    return b"FOR1" + struct.pack(">I", len(body) + 4) + b"BEAM" + body


def gzip(data: bytes) -> bytes:
    """`zlib:gzip/1`: default level, header mtime 0 and OS 3 (what zlib's deflate writes)."""
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def strip(data: bytes, *, extra: Sequence[str] = (), otp_release: int | None = 25, compress: bool = True) -> bytes:
    """Strip one BEAM file's bytes as `beam_lib:strip(File, Extra)` would, optionally without gzip
    (mix release's default). Chunk order is the request order, not the file's; duplicates dropped."""
    chunks = parse(data)
    by_id: dict[str, bytes] = {}
    for c in chunks:
        by_id.setdefault(c.id, c.data)  # beam_lib reads the first occurrence
    wanted: list[str] = []
    for cid in (*extra, *significant_chunks(otp_release)):
        if cid not in wanted:
            wanted.append(cid)
    missing = [m for m in MANDATORY if m not in by_id]
    if missing:
        raise BeamError(f"mandatory chunk(s) {', '.join(missing)} missing")
    out = build(Chunk(cid, by_id[cid]) for cid in wanted if cid in by_id)
    return gzip(out) if compress else out


def chunk_sizes(data: bytes) -> dict[str, int]:
    """Bytes per chunk id (for reports: where a beam's weight is)."""
    out: dict[str, int] = {}
    for c in parse(data):
        out[c.id] = out.get(c.id, 0) + len(c.data)
    return out
