"""The streaming central-directory reader (packer/zipread.py) judged by readers we did not write:
Info-ZIP's `unzip -Z1` for the names, Python's zipfile for every field and every member's bytes,
`unzip -t` to confirm that a corrupted zip really is corrupt. Plus the memory bound it exists for:
`layerpack check` on 200,000 entries, measured as the child's peak RSS (the old code: 204 MB)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from packer.errors import InputError
from packer.package import build
from packer.tree import open_tree
from packer.zipread import ZipIndex
from tests.conftest import require_tool, run_cli
from tests.trees import many_empty_zip


def _ours(path: Path) -> tuple[ZipIndex, list]:
    index = ZipIndex(path, str(path))
    return index, list(index.scan())


def _fields_equal_zipfile(path: Path) -> list:
    """Every record's fields as ours and as zipfile's; returns our records."""
    index, ours = _ours(path)
    index.close()
    with zipfile.ZipFile(path) as zf:
        theirs = zf.infolist()
        assert [(m.name, m.flags, m.method, m.crc, m.compressed, m.size, m.system, m.attr, m.offset) for m in ours] == [
            (i.filename, i.flag_bits, i.compress_type, i.CRC, i.compress_size, i.file_size, i.create_system,
             i.external_attr, i.header_offset) for i in theirs]
    return ours


def _unzip_names(path: Path, warnings: bool = False) -> list[bytes]:
    """Info-ZIP's listing; exit 1 is "warnings" (extra bytes before the archive), allowed when said."""
    r = subprocess.run([require_tool("unzip"), "-Z1", str(path)], capture_output=True)
    assert r.returncode in ((0, 1) if warnings else (0,)), r.stderr
    return r.stdout.splitlines()


def _unzip_bytes(path: Path, name: str) -> bytes:
    """Info-ZIP's extraction of one member to stdout (`unzip -p`)."""
    r = subprocess.run([require_tool("unzip"), "-p", str(path), name], capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _members_read_like_zipfile(path: Path) -> None:
    with open_tree(path) as tree, zipfile.ZipFile(path) as zf:
        files = [e for e in tree.entries.values() if e.ref >= 0]
        assert files
        for e in files:
            name = next(i.filename for i in zf.infolist() if i.filename.rstrip("/") == e.path)
            assert tree.read_bytes(e.path) == zf.read(name), e.path


@pytest.fixture(scope="module")
def infozip_tree(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    (src / "lib").mkdir()
    (src / "bin").mkdir()
    (src / "bin" / "run").write_text("#!/bin/sh\necho hi\n")
    (src / "bin" / "run").chmod(0o755)
    for lib in ("libz.so.1",):
        (src / "lib" / lib).write_bytes(Path("/lib/x86_64-linux-gnu", lib).read_bytes())
    (src / "lib" / "libz.so").symlink_to("libz.so.1")
    (src / "lib" / "dangling").symlink_to("../nowhere")
    (src / "empty").mkdir()
    (src / "data.txt").write_text("text " * 10_000)
    return src


def test_listing_of_an_infozip_zip_with_symlinks_equals_unzip_and_zipfile(tmp_path, infozip_tree):
    z = tmp_path / "iz.zip"
    subprocess.run([require_tool("zip"), "-qry", str(z), "."], cwd=infozip_tree, check=True)
    ours = _fields_equal_zipfile(z)
    assert [m.raw_name for m in ours] == _unzip_names(z)
    links = {m.name for m in ours if (m.attr >> 16) & 0o170000 == 0o120000}
    assert links == {"lib/libz.so", "lib/dangling"}
    _members_read_like_zipfile(z)
    with open_tree(z) as tree:
        assert tree.entries["lib/libz.so"].link == "libz.so.1"
        assert tree.entries["bin/run"].mode == 0o755


def test_listing_of_a_layerpack_build_zip_equals_unzip_and_zipfile(tmp_path, infozip_tree):
    z = build(infozip_tree, tmp_path / "layer.zip").path
    ours = _fields_equal_zipfile(z)
    assert [m.raw_name for m in ours] == _unzip_names(z)
    _members_read_like_zipfile(z)


def test_zip64_directory_of_infozip_with_more_than_65535_entries_is_read_whole(tmp_path):
    # the files are made in memory where there is a tmpfs: 66,000 creations took 36 s of system
    # time on the test machine's disk, 2.5 s on /dev/shm
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path) as tmp:
        src = Path(tmp)
        for d in range(66):
            (src / f"d{d:02d}").mkdir()
            for f in range(1000):
                (src / f"d{d:02d}" / f"{f:03d}").touch()
        z = tmp_path / "z64.zip"
        subprocess.run([require_tool("zip"), "-qr", str(z), "."], cwd=src, check=True)
    index, ours = _ours(z)
    with index:
        assert index.directory.zip64 and index.directory.entries == len(ours) == 66_066
    assert [m.raw_name for m in ours] == _unzip_names(z)
    with zipfile.ZipFile(z) as zf:
        assert [m.name for m in ours] == zf.namelist()
    with open_tree(z) as tree:
        assert sum(e.kind == "file" for e in tree.entries.values()) == 66_000


def test_zip64_extra_fields_of_infozip_fz_are_read_and_a_short_one_refused_as_zipfile_refuses_it(tmp_path, infozip_tree):
    z = tmp_path / "fz.zip"
    subprocess.run([require_tool("zip"), "-qry", "-fz", str(z), "."], cwd=infozip_tree, check=True)
    data = bytearray(z.read_bytes())
    first = data.index(b"PK\x01\x02")
    assert struct.unpack_from("<I", data, first + 24)[0] == 0xFFFF_FFFF  # sizes in the ZIP64 extra field
    ours = _fields_equal_zipfile(z)
    assert [m.raw_name for m in ours] == _unzip_names(z)
    _members_read_like_zipfile(z)
    nlen = struct.unpack_from("<H", data, first + 28)[0]
    tag = data.index(b"\x01\x00\x08\x00", first + 46 + nlen)  # ZIP64 extra: 8 bytes, the size
    struct.pack_into("<H", data, tag + 2, 4)  # too short to hold it
    z.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile, match="zip64"):
        zipfile.ZipFile(z)
    r = run_cli("check", str(z), "--json")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "ZIP64 extra field" in r.stderr, r.stderr


def test_archive_comment_and_prepended_bytes_are_read_as_zipfile_reads_them(tmp_path, infozip_tree):
    z = tmp_path / "c.zip"
    subprocess.run([require_tool("zip"), "-qry", "-z", str(z), "."], cwd=infozip_tree, check=True,
                   input=b"built by hand\n" * 100)
    with ZipIndex(z, "c") as index, zipfile.ZipFile(z) as zf:
        assert index.directory.comment == zf.comment and len(zf.comment) > 1000
    _fields_equal_zipfile(z)
    assert [m.raw_name for m in _ours(z)[1]] == _unzip_names(z)
    stub = tmp_path / "sfx.zip"  # a self-extractor's stub before the archive: offsets shift
    stub.write_bytes(b"#!/bin/sh\nexit 0\n" * 10 + z.read_bytes())
    ours = _fields_equal_zipfile(stub)
    assert ours[0].offset == 170 and [m.raw_name for m in ours] == _unzip_names(stub, warnings=True)
    with ZipIndex(stub, "sfx") as index, zipfile.ZipFile(stub) as zf:
        for m in ours:
            if not m.name.endswith("/"):
                with index.open(index.keep(m), m.name) as fh:
                    assert fh.read() == zf.read(m.name)


def test_a_comment_holding_the_end_signature_is_read_as_infozip_reads_it(tmp_path, infozip_tree):
    z = tmp_path / "c.zip"
    subprocess.run([require_tool("zip"), "-qry", str(z), "."], cwd=infozip_tree, check=True)
    comment = b"oops PK\x05\x06 is not the end"
    z.write_bytes(z.read_bytes()[:-2] + struct.pack("<H", len(comment)) + comment)
    with pytest.raises(zipfile.BadZipFile):  # zipfile takes the signature in the comment for the record
        zipfile.ZipFile(z)
    index, ours = _ours(z)
    with index:
        assert index.directory.comment == comment
    assert [m.raw_name for m in ours] == _unzip_names(z) and len(ours) > 5
    assert subprocess.run([require_tool("unzip"), "-tqq", str(z)], capture_output=True).returncode == 0


def test_utf8_flagged_and_cp437_names_decode_as_zipfile_and_unzip_show_them(tmp_path):
    made = {}
    for system in (3, 0):  # cp437 names made on Unix (unzip shows the raw bytes) and on DOS
        z = made[system] = tmp_path / f"names{system}.zip"
        with zipfile.ZipFile(z, "w") as zf:
            info = zipfile.ZipInfo("caf_.txt", (2024, 1, 1, 0, 0, 0))
            info.create_system = system
            info.external_attr = 0o100644 << 16 if system == 3 else 0
            zf.writestr(info, b"x")
            zf.writestr("naïve-ütf.txt", b"y")  # zipfile sets flag 0x800 for it
        z.write_bytes(z.read_bytes().replace(b"caf_.txt", b"caf\x82.txt"))  # cp437 0x82 is "é"
        ours = _fields_equal_zipfile(z)
        assert [m.name for m in ours] == ["café.txt", "naïve-ütf.txt"]
        assert [bool(m.flags & 0x800) for m in ours] == [False, True]
        shown = _unzip_names(z)
        assert shown[1].decode("utf-8") == "naïve-ütf.txt"
        if system == 3:
            assert shown[0] == ours[0].raw_name == b"caf\x82.txt"
        else:  # Info-ZIP converts a DOS name from cp437 to Latin-1
            assert shown[0].decode("latin-1") == ours[0].name
        _members_read_like_zipfile(z)


def test_utf8_names_infozip_stores_without_the_flag_unpack_as_unzip_writes_them(tmp_path):
    """Info-ZIP's zip 3.0 on a UTF-8 system stores UTF-8 names without flag 0x800; unzip writes them
    back byte for byte. zipfile reads them as cp437 ("caf├⌐.txt"); we unpack what unzip unpacks."""
    from packer.materialise import unpack

    src = tmp_path / "src"
    (src / "日本").mkdir(parents=True)
    (src / "café.txt").write_text("c")
    (src / "日本" / "名前.txt").write_text("n")
    z = tmp_path / "u8.zip"
    subprocess.run([require_tool("zip"), "-qry", str(z), "."], cwd=src, check=True)
    index, ours = _ours(z)
    index.close()
    assert not any(m.flags & 0x800 for m in ours) and all(m.system == 3 for m in ours)
    assert [m.name for m in ours] == [n.decode("utf-8") for n in _unzip_names(z)]
    with zipfile.ZipFile(z) as zf:
        assert "caf├⌐.txt" in zf.namelist()  # the reference reader that gets this case wrong
    subprocess.run([require_tool("unzip"), "-q", str(z), "-d", str(tmp_path / "by-unzip")], check=True)
    with open_tree(z) as tree:
        unpack(tree, tmp_path / "ours")

    def listing(root: Path) -> list[tuple[bytes, bytes]]:
        return sorted((os.fsencode(p.relative_to(root)), p.read_bytes() if p.is_file() else b"")
                      for p in root.rglob("*"))
    assert listing(tmp_path / "ours") == listing(tmp_path / "by-unzip")


def _corrupt_cases(z: Path) -> dict[str, bytes]:
    base = z.read_bytes()
    eocd = base.rindex(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<II", base, eocd + 12)
    out = {"truncated": base[:cd_off + 30], "tail cut": base[:-5]}
    b = bytearray(base)
    b[cd_off + 1] = 0
    out["record signature"] = bytes(b)
    b = bytearray(base)
    struct.pack_into("<I", b, eocd + 16, len(base) + 100)
    out["directory past the file"] = bytes(b)
    b = bytearray(base)
    struct.pack_into("<I", b, eocd + 12, cd_size + 1000)
    out["directory size"] = bytes(b)
    b = bytearray(base)
    struct.pack_into("<HH", b, eocd + 8, 9, 9)
    out["entry count"] = bytes(b)
    b = bytearray(base)
    struct.pack_into("<I", b, cd_off + 42, cd_off + 10)
    out["local header past the members"] = bytes(b)
    b = bytearray(base)
    struct.pack_into("<H", b, cd_off + 8, struct.unpack_from("<H", b, cd_off + 8)[0] | 0x800)
    b[cd_off + 46] = 0xFF
    out["UTF-8 flag on a non-UTF-8 name"] = bytes(b)
    out["ZIP64 locator without record"] = base[:eocd] + struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1) + base[eocd:]
    return out


def test_corrupt_central_directories_are_one_line_errors_that_unzip_also_rejects(tmp_path, infozip_tree):
    z = tmp_path / "good.zip"
    subprocess.run([require_tool("zip"), "-qry", str(z), "."], cwd=infozip_tree, check=True)
    unzip = require_tool("unzip")
    for what, data in _corrupt_cases(z).items():
        bad = tmp_path / "bad.zip"
        bad.write_bytes(data)
        assert subprocess.run([unzip, "-tqq", str(bad)], capture_output=True).returncode != 0, what
        with pytest.raises(InputError) as err:
            with open_tree(bad) as tree:
                for e in tree.files():
                    tree.read_bytes(e.path)
        assert "\n" not in str(err.value), what
        for cmd in (("check", str(bad), "--json"), ("analyze", str(bad)),
                    ("vendor", str(bad), "--out", str(tmp_path / "out"))):
            r = run_cli(*cmd)
            assert r.returncode == 2, (what, cmd, r.stdout, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("layerpack: error: "), (what, cmd, r.stderr)
        assert bad.read_bytes() == data and not (tmp_path / "out").exists()


def test_odd_end_record_disk_fields_and_a_long_declared_deflate_size_read_as_zipfile_reads_them(tmp_path):
    """Lenient where both reference readers are: the 32-bit end record's disk fields of a one-file
    zip (Info-ZIP lists it with a warning, zipfile ignores them), and a deflate stream that ends before its
    declared compressed size, which runs past the file (Info-ZIP and zipfile stop at the stream's end).
    zipfile with the CVE-2024-0450 check (3.11.8+, 3.12.2+, 3.13, and Debian 12's 3.11.2 backport)
    refuses that size as "Overlapped entries"; there Info-ZIP's extraction alone is the judge."""
    z = tmp_path / "odd.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"alpha " * 500)
        zf.writestr("b.txt", b"beta " * 500)
    data = bytearray(z.read_bytes())
    eocd = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 4, 0, 1)  # "the directory starts on disk 1"
    last = data.rindex(b"PK\x01\x02")  # b.txt's record: its compressed size past the end of the file
    struct.pack_into("<I", data, last + 20, len(data) * 4)
    z.write_bytes(bytes(data))
    names = [n.decode() for n in _unzip_names(z, warnings=True)]  # "processing anyway"
    expected = {n: _unzip_bytes(z, n) for n in names}
    assert expected == {"a.txt": b"alpha " * 500, "b.txt": b"beta " * 500}
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == names
        try:
            assert {n: zf.read(n) for n in names} == expected
        except zipfile.BadZipFile as e:  # only the overlap check may refuse it, and only for b.txt
            assert str(e) == "Overlapped entries: 'b.txt' (possible zip bomb)"
            assert zf.read("a.txt") == expected["a.txt"]
    with open_tree(z) as tree:
        assert {e.path: tree.read_bytes(e.path) for e in tree.files()} == expected


def test_a_bad_crc_or_a_lying_size_is_refused_on_reading_as_zipfile_refuses_it(tmp_path):
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("f", b"hello " * 1000)
    data = bytearray(z.read_bytes())
    cd = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 16, 0x12345678)  # CRC in the directory
    z.write_bytes(bytes(data))
    with zipfile.ZipFile(z) as zf, pytest.raises(zipfile.BadZipFile, match="CRC"):
        zf.read("f")
    with open_tree(z) as tree, pytest.raises(InputError, match="CRC-32"):
        tree.read_bytes("f")
    struct.pack_into("<I", data, cd + 16, zipfile.crc32(b"hello " * 1000))
    struct.pack_into("<I", data, cd + 24, 100)  # declares 100 bytes, inflates to 6,000
    z.write_bytes(bytes(data))
    with open_tree(z) as tree, pytest.raises(InputError, match="inflates past the 100 bytes"):
        tree.read_bytes("f")


def test_check_of_200000_entries_peaks_far_below_one_zipinfo_per_member(tmp_path):
    """The bound is generous (the new code peaks near 85 MB) and the old code exceeds it (204 MB:
    zipfile's table of 200,000 ZipInfo plus one Entry each). Measured in a fresh process whose only
    child is `layerpack`, so no earlier test's child counts."""
    z = tmp_path / "many.zip"
    many_empty_zip(z, 200_000)
    with zipfile.ZipFile(z) as zf:  # the judge agrees it is a valid zip of 200,000 members
        assert len(zf.infolist()) == 200_000
    probe = ("import resource, shutil, subprocess, sys\n"
             "exe = shutil.which('layerpack')\n"
             "cmd = [exe] if exe else [sys.executable, '-m', 'packer']\n"
             "r = subprocess.run([*cmd, 'check', sys.argv[1], '--json'], stdout=subprocess.PIPE)\n"
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, len(r.stdout))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(z)], capture_output=True, text=True, check=True,
                         env={**os.environ, "NO_COLOR": "1"}, timeout=120)
    code, peak_kb, nbytes = map(int, out.stdout.split())
    assert code == 0 and nbytes > 0
    assert peak_kb < 140_000, f"check peaked at {peak_kb:,} KB on 200,000 entries"
