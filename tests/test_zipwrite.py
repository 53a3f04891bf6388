"""The zip writer: standard format (Info-ZIP and Python read it), same bytes whatever the thread
count, multi-chunk parallel deflate that inflates back exactly, zip64 only for the entry count."""

from __future__ import annotations

import functools
import io
import os
import random
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from packer.errors import PackageError, UsageError
from packer.zipwrite import (CHUNK, CountingSink, Member, dos_datetime, dos_to_epoch, get_backend,
                             source_date_epoch, write_zip)
from tests.conftest import require_tool


def _opener(data: bytes):
    return lambda: io.BytesIO(data)


@functools.lru_cache(maxsize=None)
def _text(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghijklmnop") for _ in range(rnd.randint(2, 9))) for _ in range(500)]
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words) + b" "
    return bytes(out[:n])


def _members() -> list[Member]:
    big = _text(3 * CHUNK + 12345)  # four chunks: three sync-flushed, one final
    noise = random.Random(7).randbytes(200_000)  # deflate cannot shrink it: stored
    return [
        Member("bin", "dir", 0o755, 0),
        Member("bin/tool", "file", 0o755, len(big), opener=_opener(big)),
        Member("lib", "dir", 0o755, 0),
        Member("lib/empty", "file", 0o644, 0, opener=_opener(b"")),
        Member("lib/libx.so", "symlink", 0o777, 9, link="libx.so.1"),
        Member("lib/noise", "file", 0o644, len(noise), opener=_opener(noise)),
        *[Member(f"lib/small{i:03}", "file", 0o644, 100, opener=_opener(_text(100, i))) for i in range(300)],
    ]


def _backends() -> list[str]:
    names = ["zlib"]
    for name, module in (("zlib-ng", "zlib_ng"), ("isal", "isal")):
        try:
            __import__(module)
            names.append(name)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"{module} is not installed; the test extra installs it")
    return names


@pytest.mark.parametrize("backend", _backends())
def test_parallel_chunked_deflate_inflates_back_exactly_with_python_and_infozip(tmp_path: Path, backend: str) -> None:
    unzip = require_tool("unzip")
    members = _members()
    out = tmp_path / "a.zip"
    with open(out, "wb") as fh:
        stats = write_zip(members, fh, level=6, backend=get_backend(backend), workers=2)
    assert stats.entries == len(members)
    assert stats.zipped_size == out.stat().st_size
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
        for m in members:
            name = m.name + "/" if m.kind == "dir" else m.name
            info = infos[name]
            assert info.create_system == 3
            mode = info.external_attr >> 16
            if m.kind == "file":
                assert zf.read(info) == m.opener().read()
                assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == m.mode
            elif m.kind == "symlink":
                assert stat.S_ISLNK(mode) and zf.read(info) == b"libx.so.1"
            else:
                assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o755
        assert infos["lib/noise"].compress_type == zipfile.ZIP_STORED
        assert infos["bin/tool"].compress_type == zipfile.ZIP_DEFLATED
    r = subprocess.run([unzip, "-tq", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_output_bytes_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    outs = []
    for workers in (1, 2, 5):
        buf = io.BytesIO()
        write_zip(_members(), buf, level=6, backend=get_backend("zlib"), workers=workers)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2]


def test_counting_sink_measures_the_same_size_as_the_written_file() -> None:
    buf = io.BytesIO()
    real = write_zip(_members(), buf, level=6, backend=get_backend("zlib"))
    counted = write_zip(_members(), CountingSink(), level=6, backend=get_backend("zlib"))
    assert counted.zipped_size == real.zipped_size == len(buf.getvalue())


def test_level_zero_stores_every_member() -> None:
    buf = io.BytesIO()
    write_zip(_members(), buf, level=0)
    with zipfile.ZipFile(buf) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert zf.testzip() is None


def test_more_than_65535_entries_use_a_zip64_end_record_that_readers_accept(tmp_path: Path) -> None:
    unzip = require_tool("unzip")
    n = 70_000
    members = [Member(f"d/f{i:06}", "file", 0o644, 0, opener=_opener(b"")) for i in range(n)]
    out = tmp_path / "many.zip"
    with open(out, "wb") as fh:
        write_zip(members, fh, level=6)
    with zipfile.ZipFile(out) as zf:
        assert len(zf.infolist()) == n
    r = subprocess.run([unzip, "-tq", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_file_that_grows_while_zipped_is_an_error_not_a_corrupt_member() -> None:
    m = Member("grows", "file", 0o644, 10, opener=_opener(b"x" * 20))
    with pytest.raises(PackageError, match="grew"):
        write_zip([m], io.BytesIO())
    m = Member("shrinks", "file", 0o644, 10, opener=_opener(b"x" * 5))
    with pytest.raises(PackageError, match="shrank"):
        write_zip([m], io.BytesIO())


def test_timestamps_are_utc_and_clipped_to_the_zip_range() -> None:
    assert dos_to_epoch(*dos_datetime(None)) == 315532800  # 1980-01-01
    assert dos_to_epoch(*dos_datetime(0)) == 315532800
    assert dos_to_epoch(*dos_datetime(1_700_000_000)) == 1_700_000_000  # even seconds survive
    assert dos_to_epoch(*dos_datetime(1_700_000_001)) == 1_700_000_000  # DOS time has 2 s resolution
    assert dos_to_epoch(*dos_datetime(10**11)) == 4354819198  # 2107-12-31


def test_source_date_epoch_must_be_an_integer() -> None:
    assert source_date_epoch({}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1_700_000_000
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})


def test_unknown_backend_and_level_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        get_backend("brotli")
    with pytest.raises(UsageError):
        write_zip([], io.BytesIO(), level=12)
