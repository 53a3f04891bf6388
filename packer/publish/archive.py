"""What is inside the zip that will be published: digest, sizes, and the architectures of its ELF files.

Read once, in place (the zip is never extracted), so validation and the idempotency check work on
facts rather than on what the user said. The architectures come from the ELF headers because the
classic failure (oven-sh/bun #5875) is a layer *declared* for both architectures whose binary runs
on one.
"""

from __future__ import annotations

import base64
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packer.elf.reader import ELF_MAGIC, BytesSource, read_elf
from packer.errors import ElfError, InputError
from packer.quotas import UNZIPPED_LIMIT
from packer.runtime import MACHINE_ARCH
from packer.tree import FILE, MAX_MEMBER_READ, open_tree
from packer.zipread import Member


@dataclass(frozen=True)
class Archive:
    """Facts about one layer zip. `code_sha256` uses Lambda's convention (base64 of the raw digest)."""

    path: Path
    size: int
    code_sha256: str
    sha256_hex: str
    unzipped_size: int
    entries: int
    # Lambda architecture name ("x86_64"/"arm64") or raw ELF machine name ("i386") -> member paths
    elf_machines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unreadable_elf: tuple[tuple[str, str], ...] = ()  # (member, why)
    bad_entries: tuple[tuple[str, str], ...] = ()  # (member, why) from the zip's names
    corrupt: str | None = None  # why the zip cannot be unpacked, if it cannot

    @property
    def architectures(self) -> tuple[str, ...]:
        """Lambda architecture names found in the ELF files, sorted."""
        return tuple(sorted(a for a in self.elf_machines if a in MACHINE_ARCH.values()))

    @property
    def foreign_machines(self) -> tuple[str, ...]:
        """ELF machines Lambda cannot run at all (i386, armhf, riscv64…)."""
        return tuple(sorted(a for a in self.elf_machines if a not in MACHINE_ARCH.values()))


def code_sha256(path: str | Path) -> str:
    """Base64 SHA-256 of the file (Lambda's CodeSha256), computed by `packer.package` so that
    `build` and `publish` can never disagree on the convention."""
    from packer.package import code_sha256 as package_code_sha256

    return package_code_sha256(path)


def digests_equal(local_b64: str, remote: str | None) -> bool:
    """Compare our base64 digest with a service's CodeSha256.

    AWS returns base64 of the raw digest; some emulators and older tools use hex. Comparing the
    decoded bytes is right for both and never equates two different digests."""
    if not remote:
        return False
    mine = base64.b64decode(local_b64)
    text = remote.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text) == mine
    try:
        return base64.b64decode(text, validate=True) == mine
    except ValueError:
        return False


def inspect_archive(path: str | Path) -> Archive:
    """Read a layer zip in place. Raises `InputError` only when the file cannot be opened at all;
    anything AWS would refuse (corrupt members, bad names) is recorded for `validate` to report.

    Each member is inflated once: the CRC check and the ELF headers come from the same read, and the
    central directory is parsed once. Measured on a 94 MB zip of 3,265 members (the part of `publish`
    that is not boto3): 2.46 s CPU when testzip(), the magic check and the ELF reads each inflated the
    members again."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    if not p.is_file():
        raise InputError(f"{path}: not a regular file")
    b64 = code_sha256(p)
    if not zipfile.is_zipfile(p):
        return Archive(p, size, b64, _hex(b64), 0, 0, corrupt="not a zip file (no end-of-central-directory record)")
    declared = _Declared()
    try:
        tree = open_tree(p, watch=declared)
    except InputError as exc:
        return Archive(p, size, b64, _hex(b64), 0, 0, corrupt=f"cannot be unpacked ({exc})")
    with tree:
        records, unzipped = declared.records, declared.unzipped
        corrupt = "the zip has no entries" if not records else None
        bad_entries = tuple((pr.path, pr.detail) for pr in tree.problems)
        machines: dict[str, list[str]] = {}
        unreadable: list[tuple[str, str]] = []
        if corrupt is None:
            corrupt = _read_members(tree, unzipped <= _TEST_LIMIT, machines, unreadable)
    return Archive(p, size, b64, _hex(b64), unzipped, records,
                   {k: tuple(sorted(v)) for k, v in machines.items()}, tuple(unreadable), bad_entries, corrupt)


class _Declared:
    """Records of the central directory and the bytes they declare unzipped, counted as
    `open_tree` streams the directory (one pass; no table of members)."""

    def __init__(self) -> None:
        self.records = self.unzipped = 0

    def __call__(self, m: Member, _index: object) -> None:
        self.records += 1
        self.unzipped += m.size


def _read_members(tree, test: bool, machines: dict[str, list[str]], unreadable: list[tuple[str, str]]) -> str | None:
    """Inflate every file member once: ELF members are parsed, the others read to their end so the
    CRC is checked (when `test`). Returns why the zip is corrupt, or None."""
    for entry in tree.entries.values():
        if entry.kind != FILE or (entry.size < 52 and not test):
            continue
        try:
            with tree.open(entry.path) as fh:
                head = fh.read(4)
                if head == ELF_MAGIC and entry.size >= 52:  # smaller than any ELF header otherwise
                    parts, got = [head], len(head)
                    while got <= MAX_MEMBER_READ and (chunk := fh.read(1 << 20)):  # to the end: CRC checked
                        parts.append(chunk)
                        got += len(chunk)
                    data = b"".join(parts)
                elif test:
                    while fh.read(1 << 20):
                        pass
                    continue
                else:
                    continue
        except InputError as exc:
            return f"member {entry.path} fails its CRC check or cannot be inflated ({exc})"
        try:
            info = read_elf(BytesSource(data))
        except ElfError as exc:
            unreadable.append((entry.path, str(exc)))
            continue
        arch = MACHINE_ARCH.get(info.machine_name, info.machine_name)
        machines.setdefault(arch, []).append(entry.path)
    return None


# Above this many unzipped bytes the zip is refused for size anyway; do not spend time on CRCs.
_TEST_LIMIT = UNZIPPED_LIMIT


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()
