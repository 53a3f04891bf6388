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

from packer.elf.reader import ELF_MAGIC, read_elf
from packer.errors import ElfError, InputError
from packer.runtime import MACHINE_ARCH
from packer.tree import FILE, open_tree


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
    anything AWS would refuse (corrupt members, bad names) is recorded for `validate` to report."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    if not p.is_file():
        raise InputError(f"{path}: not a regular file")
    if not zipfile.is_zipfile(p):
        return Archive(p, size, code_sha256(p), _hex(code_sha256(p)), 0, 0,
                       corrupt="not a zip file (no end-of-central-directory record)")
    b64 = code_sha256(p)
    corrupt: str | None = None
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            unzipped = sum(i.file_size for i in infos)
            if not infos:
                corrupt = "the zip has no entries"
            elif unzipped <= _TEST_LIMIT:
                bad = zf.testzip()
                if bad is not None:
                    corrupt = f"member {bad} fails its CRC check"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        return Archive(p, size, b64, _hex(b64), 0, 0, corrupt=f"cannot be unpacked ({exc})")
    machines: dict[str, list[str]] = {}
    unreadable: list[tuple[str, str]] = []
    with open_tree(p) as tree:
        bad_entries = tuple((pr.path, pr.detail) for pr in tree.problems)
        if corrupt is None:
            for entry in tree.entries.values():
                if entry.kind != FILE or entry.size < 52:  # smaller than any ELF header
                    continue
                try:
                    if tree.read_head(entry.path, 4) != ELF_MAGIC:
                        continue
                    with tree.source(entry.path) as src:
                        info = read_elf(src)
                except (ElfError, InputError) as exc:
                    unreadable.append((entry.path, str(exc)))
                    continue
                arch = MACHINE_ARCH.get(info.machine_name, info.machine_name)
                machines.setdefault(arch, []).append(entry.path)
    return Archive(p, size, b64, _hex(b64), unzipped, len(infos),
                   {k: tuple(sorted(v)) for k, v in machines.items()}, tuple(unreadable), bad_entries, corrupt)


# Above this many unzipped bytes the zip is refused for size anyway; do not spend time on CRCs.
_TEST_LIMIT = 262_144_000


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()
