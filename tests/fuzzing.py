"""Mutation fuzzing of layerpack's readers and commands (issue 15).

Seeds are real files: the fixture ELF programs and libraries (x86_64 and aarch64, dynamic, static,
with and without section headers) and zips written the way `zip -y` and hostile tools write them.
Mutants are derived deterministically from a seed number, so a failure is reproduced with the
same number. Three targets:

* `elf_library(data)`: the ELF reader, the symbol reader and `analyze` in this process;
* `cli(argv)`: the real console script in a subprocess;
* `zip_mutant(...)` + `cli`: mutated and hostile zips through analyze/check/vendor.

A verdict is one of "ok" (any documented outcome: a result, findings, or one `layerpack: error:`
line with exit 2), "crash" (an exception that is not a LayerpackError, a traceback, another exit
code), "hang" (over the time limit), or "escape" (a file outside the output changed).
The short run is `tests/test_fuzz.py`; the long one `bench/fuzz_long.py`.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted(p for arch in ("x86_64", "aarch64") for p in (ROOT / "fixtures" / "bin" / arch).iterdir() if p.is_file())
INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF,
               0xFFFFFFFFFFFFFFFF, 0x1000, 0x40, 0x38)
NAMES = (b"", b".", b"..", b"gconv", b"/", b"/etc", b"lib", b"../x", b"bootstrap")


@dataclass
class Tally:
    tried: int = 0
    ok: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)  # verdict -> [seed descriptions]
    max_rss_kb: int = 0

    def add(self, verdict: str, what: str) -> None:
        self.tried += 1
        if verdict == "ok":
            self.ok += 1
        else:
            self.failures.setdefault(verdict, []).append(what)

    def line(self, name: str) -> str:
        bad = ", ".join(f"{k} {len(v)}" for k, v in sorted(self.failures.items())) or "0 crash, 0 hang"
        return f"{name}: {self.tried:,} tried / {self.ok:,} passed ({bad})"


# -- ELF mutation ----------------------------------------------------------------------------------

def _header(data: bytes) -> tuple[str, bool] | None:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    return ("<" if data[5] == 1 else ">"), data[4] == 2


def _put(buf: bytearray, off: int, size: int, value: int, e: str) -> None:
    if 0 <= off and off + size <= len(buf):
        buf[off:off + size] = struct.pack(e + {1: "B", 2: "H", 4: "I", 8: "Q"}[size], value & ((1 << (8 * size)) - 1))


def _table_field(buf: bytearray, rng: random.Random, e: str, is64: bool) -> None:
    """Overwrite one field of one program or section header entry."""
    if is64:
        phoff, shoff = struct.unpack_from(e + "QQ", buf, 32)
        phent, phnum, shent, shnum = struct.unpack_from(e + "HHHH", buf, 54)
    else:
        phoff, shoff = struct.unpack_from(e + "II", buf, 28)
        phent, phnum, shent, shnum = struct.unpack_from(e + "HHHH", buf, 42)
    tables = [(phoff, phent, phnum), (shoff, shent, shnum)]
    off, ent, num = rng.choice(tables)
    if not ent or not num:
        return
    base = off + rng.randrange(num) * ent
    width = rng.choice((4, 8) if is64 else (4,))
    _put(buf, base + rng.randrange(0, max(1, ent - width + 1), width), width, rng.choice(INTERESTING), e)


def _rename_needed(buf: bytearray, rng: random.Random) -> None:
    """Replace a DT_NEEDED-looking name (lib*.so*) with a hostile one, in place."""
    starts = [i for i in range(len(buf) - 4) if buf[i:i + 3] == b"lib" and buf[i - 1] == 0][:64]
    if not starts:
        return
    at = rng.choice(starts)
    end = buf.index(0, at) if 0 in buf[at:] else len(buf)
    name = rng.choice(NAMES)[: end - at]
    buf[at:end] = name + b"\0" * (end - at - len(name))


def mutate_elf(data: bytes, rng: random.Random) -> bytes:
    """One mutant: 1-3 of byte flips, header fields, table fields, hostile names, truncation."""
    buf = bytearray(data)
    hdr = _header(data)
    for _ in range(rng.randint(1, 3)):
        how = rng.randrange(6)
        if how == 0 or hdr is None:
            for _ in range(rng.randint(1, 16)):
                if buf:
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif how == 1:
            e, is64 = hdr
            fields = [(16, 2), (18, 2), (32, 8), (40, 8), (54, 2), (56, 2), (58, 2), (60, 2), (62, 2)] if is64 else \
                     [(16, 2), (18, 2), (28, 4), (32, 4), (42, 2), (44, 2), (46, 2), (48, 2), (50, 2)]
            off, size = rng.choice(fields)
            _put(buf, off, size, rng.choice(INTERESTING), e)
        elif how == 2:
            try:
                _table_field(buf, rng, *hdr)
            except struct.error:
                pass
        elif how == 3:
            _rename_needed(buf, rng)
        elif how == 4:
            del buf[rng.randrange(len(buf) + 1):]
        else:
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(buf)


def elf_mutants(count: int, seed: int = 0, part: tuple[int, int] = (0, 1)) -> Iterator[tuple[str, bytes]]:
    """Mutants 0..count-1 of `seed` (only those with i % part[1] == part[0])."""
    seeds = [(p.name, p.read_bytes()) for p in SEEDS]
    for i in range(part[0], count, part[1]):
        rng = random.Random(seed * 1_000_003 + i)
        name, data = seeds[i % len(seeds)]
        yield f"elf seed={seed} i={i} from {name}", mutate_elf(data, rng)


class _Hang(Exception):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise _Hang()


def elf_library(data: bytes, workdir: Path, limit: int = 20) -> str:
    """The ELF reader, the symbol reader and `analyze` on one mutant, in this process."""
    from packer.analyze import analyze
    from packer.elf.reader import read_bytes, read_path
    from packer.elf.symbols import symbols_needing
    from packer.errors import LayerpackError

    path = workdir / "bootstrap"
    path.write_bytes(data)
    path.chmod(0o755)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    try:
        for step in (lambda: read_bytes(data), lambda: read_path(path),
                     lambda: symbols_needing(data, {"GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.34"}),
                     lambda: analyze(str(workdir), runtime="provided.al2023")):
            try:
                step()
            except LayerpackError:
                pass
        return "ok"
    except _Hang:
        return "hang"
    except Exception as exc:  # the finding: anything else is a crash
        return f"crash {type(exc).__name__}: {str(exc)[:120]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- the CLI -----------------------------------------------------------------------------------------

def layerpack() -> list[str]:
    from tests.conftest import layerpack_command

    return layerpack_command()


def cli(argv: list[str], cwd: Path, timeout: float = 90) -> str:
    env = {**os.environ, "NO_COLOR": "1", "XDG_CACHE_HOME": str(cwd / ".cache")}
    try:
        r = subprocess.run([*layerpack(), *argv], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired:
        return "hang"
    if "Traceback" in r.stderr or r.returncode not in (0, 1, 2):
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"crash exit {r.returncode}: {last[:160]}"
    if r.returncode == 2 and not any(line.startswith("layerpack: error:") for line in r.stderr.splitlines()):
        return "crash exit 2 without a one-line error"
    if r.returncode in (0, 1) and not r.stdout.strip():  # e.g. "No module named …" exits 1 with no report
        return f"crash exit {r.returncode} without a report: {r.stderr.strip()[:160]}"
    return "ok"


# -- zips --------------------------------------------------------------------------------------------

def zip_member(zf: zipfile.ZipFile, name: str, data: bytes | str = b"", *, link: str | None = None, mode: int = 0o644,
            method: int = zipfile.ZIP_DEFLATED) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.compress_type = method
    if link is not None:
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, link)
    else:
        info.external_attr = (stat.S_IFREG | mode) << 16
        zf.writestr(info, data)


def base_zip(path: Path) -> Path:
    boot = (ROOT / "fixtures" / "bin" / "x86_64" / "needs-z").read_bytes()
    with zipfile.ZipFile(path, "w") as zf:
        zip_member(zf, "bootstrap", boot, mode=0o755)
        zip_member(zf, "lib/libx.so.1", SEEDS[0].read_bytes())
        zip_member(zf, "lib/libx.so", link="libx.so.1")
        zip_member(zf, "share/data.txt", b"data\n" * 200)
    return path


def hostile_zip(path: Path, outside: Path, rng: random.Random) -> Path:
    """One of the structural attacks of issue 15, chosen by rng."""
    rel_out = os.path.relpath(outside, path.parent / "out" / "x")
    attacks = [
        [("lib", None, str(outside)), ("lib/file", b"pwned", None)],
        [("a", None, "."), ("a/b", None, str(outside)), ("a/b/file", b"pwned", None)],
        [("x/up", None, rel_out), ("x/up/file", b"pwned", None)],
        [("../outside-file", b"pwned", None)], [("/abs/file", b"pwned", None)], [("C:/x", b"pwned", None)],
        [("a", b"file", None), ("a/b", b"under", None)], [("a/b", b"file", None), ("a", b"over", None)],
        [("./bootstrap", b"#!/bin/sh\n", None), ("a//b", b"x", None), ("./", b"", None)],
        [("dup", b"1", None), ("dup", b"2", None)],
    ]
    members = rng.choice(attacks)
    with zipfile.ZipFile(path, "w") as zf:
        zip_member(zf, "bootstrap", b"#!/bin/sh\necho hi\n", mode=0o755)
        for name, data, link in members:
            zip_member(zf, name, data or b"", link=link)
    return path


def mutate_zip(data: bytes, rng: random.Random) -> bytes:
    """Byte flips aimed at headers (local, central, end record), data, or a flag/method field."""
    buf = bytearray(data)
    sigs = [i for i in range(len(buf) - 4) if buf[i:i + 2] == b"PK" and buf[i + 2] in (1, 3, 5)]
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(4)
        if how == 0 and sigs:  # a header field
            at = rng.choice(sigs) + rng.randrange(4, 46)
            if at < len(buf):
                buf[at] = rng.choice((0, 1, 0xFF, rng.randrange(256)))
        elif how == 1 and sigs:  # general-purpose flag (encryption) or method
            at = rng.choice(sigs)
            if at + 12 > len(buf):
                continue
            off = 6 if buf[at + 2] == 3 else 8
            _put(buf, at + off + rng.choice((0, 2)), 2, rng.choice((1, 9, 12, 14, 99, 0xFFFF)), "<")
        elif how == 2 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        else:
            del buf[rng.randrange(len(buf) + 1):]
    return bytes(buf)


def snapshot(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, files in sorted(os.walk(root)):
        for n in sorted(dirnames + files):
            p = Path(dirpath) / n
            h.update(str(p).encode())
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


ZIP_COMMANDS = (["analyze", "{z}", "--json"], ["check", "{z}", "--json"], ["vendor", "{z}", "--out", "{out}"])


def zip_case(i: int, seed: int, work: Path) -> tuple[str, str]:
    """(description, verdict) for one zip mutant through one command."""
    rng = random.Random(seed * 7_000_003 + i)
    case = work / f"z{i}"
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir(parents=True)
    outside = case / "outside"
    outside.mkdir()
    (outside / "file").write_text("precious\n")
    z = case / "layer.zip"
    if rng.random() < 0.4:
        hostile_zip(z, outside, rng)
    else:
        z.write_bytes(mutate_zip(base_zip(case / "seed.zip").read_bytes(), rng))
    before = snapshot(outside)
    argv = [a.replace("{z}", str(z)).replace("{out}", str(case / "out")) for a in rng.choice(ZIP_COMMANDS)]
    verdict = cli(argv, case)
    if verdict == "ok" and snapshot(outside) != before:
        verdict = "escape"
    what = f"zip seed={seed} i={i}: {' '.join(argv[:1])}"
    if verdict == "ok":
        shutil.rmtree(case, ignore_errors=True)
    return what, verdict


def elf_cli_case(what: str, data: bytes, work: Path, i: int) -> tuple[str, str]:
    case = work / f"e{i}"
    shutil.rmtree(case, ignore_errors=True)
    (case / "tree").mkdir(parents=True)
    (case / "tree" / "bootstrap").write_bytes(data)
    (case / "tree" / "bootstrap").chmod(0o755)
    argv = ["analyze", str(case / "tree"), "--json"] if i % 2 == 0 else ["analyze", str(case / "tree")]
    verdict = cli(argv, case)
    if verdict == "ok":
        shutil.rmtree(case, ignore_errors=True)
    return what, verdict


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="layerpack-fuzz-"))
