"""`layerpack build` and `check` end to end: real trees, real zips, Info-ZIP and Python reading
them back, refused inputs exiting 2 without a traceback, rebuilds giving identical bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from packer.errors import PackageError
from packer.package import build, code_sha256
from packer.quotas import largest_inline_zip
from tests.conftest import require_tool


def make_tree(root: Path) -> Path:
    """A layer with the things zip tools get wrong: a soname link chain, an ELF without its exec
    bit, a 0600 file, a non-executable bootstrap script, an empty dir, a non-ASCII name."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "share" / "empty").mkdir(parents=True)
    shutil.copy("/bin/true", root / "bin" / "tool")
    os.chmod(root / "bin" / "tool", 0o644)  # lost exec bit: must come back
    (root / "bin" / "run.sh").write_text("#!/bin/sh\nexec /opt/bin/tool\n")
    os.chmod(root / "bin" / "run.sh", 0o775)
    (root / "lib" / "libx.so.1.2.3").write_bytes(b"\x00" * 5000 + b"library")
    os.symlink("libx.so.1.2.3", root / "lib" / "libx.so.1")
    os.symlink("libx.so.1", root / "lib" / "libx.so")
    (root / "lib" / "secret.conf").write_text("only root could read me\n")
    os.chmod(root / "lib" / "secret.conf", 0o600)
    (root / "share" / "naïve.txt").write_text("unicode name\n")
    (root / "bootstrap").write_text("#!/bin/sh\nexec /opt/bin/run.sh\n")
    os.chmod(root / "bootstrap", 0o644)
    return root


def zip_modes(path: Path) -> dict[str, tuple[str, int, str | None]]:
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            assert info.create_system == 3
            mode = info.external_attr >> 16
            kind = "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "file"
            link = zf.read(info).decode() if kind == "link" else None
            out[info.filename.rstrip("/")] = (kind, stat.S_IMODE(mode), link)
    return out


EXPECTED = {
    "bin": ("dir", 0o755, None),
    "bin/run.sh": ("file", 0o755, None),
    "bin/tool": ("file", 0o755, None),
    "bootstrap": ("file", 0o755, None),
    "lib": ("dir", 0o755, None),
    "lib/libx.so": ("link", 0o777, "libx.so.1"),
    "lib/libx.so.1": ("link", 0o777, "libx.so.1.2.3"),
    "lib/libx.so.1.2.3": ("file", 0o644, None),
    "lib/secret.conf": ("file", 0o644, None),
    "share": ("dir", 0o755, None),
    "share/empty": ("dir", 0o755, None),
    "share/naïve.txt": ("file", 0o644, None),
}


def test_round_trip_keeps_links_as_links_and_gives_lambda_safe_modes(tmp_path: Path, cli) -> None:
    unzip = require_tool("unzip")
    tree = make_tree(tmp_path / "tree")
    out = tmp_path / "layer.zip"
    r = cli("build", str(tree), "-o", str(out), "--kind", "runtime")
    assert r.returncode == 0, r.stderr
    assert "LP510" in r.stdout  # the exec bits that were added are reported
    assert zip_modes(out) == EXPECTED
    assert list(zip_modes(out)) == sorted(EXPECTED)  # sorted, no parent folder

    # Info-ZIP unpacks it the way Lambda will: links as links, modes as stored
    dest = tmp_path / "opt"
    dest.mkdir()
    subprocess.run([unzip, "-q", str(out), "-d", str(dest)], check=True)
    assert os.readlink(dest / "lib" / "libx.so") == "libx.so.1"
    assert (dest / "lib" / "libx.so").read_bytes() == (tree / "lib" / "libx.so.1.2.3").read_bytes()
    for rel, (kind, mode, _link) in EXPECTED.items():
        st = os.lstat(dest / rel)
        if kind != "link":
            assert stat.S_IMODE(st.st_mode) == mode, rel
    assert subprocess.run([str(dest / "bin" / "tool")]).returncode == 0
    # Python reads the same contents
    with zipfile.ZipFile(out) as zf:
        assert zf.read("bin/tool") == Path("/bin/true").read_bytes()
        assert zf.read("share/naïve.txt") == b"unicode name\n"
    # and the input was not touched
    assert stat.S_IMODE(os.stat(tree / "bootstrap").st_mode) == 0o644


def test_rebuilding_gives_byte_identical_zips_whatever_mtimes_and_umask(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a")
    first = build(a, tmp_path / "1.zip")
    b = tmp_path / "b"
    shutil.copytree(a, b, symlinks=True)
    os.utime(b / "lib" / "libx.so.1.2.3", (1_000_000_000, 1_000_000_000))
    os.chmod(b / "lib" / "libx.so.1.2.3", 0o664)  # a group-writable checkout
    os.chmod(b / "share", 0o775)
    second = build(b, tmp_path / "2.zip")
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    assert first.sha256_hex == second.sha256_hex == hashlib.sha256((tmp_path / "1.zip").read_bytes()).hexdigest()
    assert first.code_sha256 == code_sha256(tmp_path / "2.zip")
    assert base64.b64decode(first.code_sha256).hex() == first.sha256_hex


def test_source_date_epoch_stamps_every_member_and_is_clipped_to_1980(tmp_path: Path, cli) -> None:
    tree = make_tree(tmp_path / "tree")
    r = cli("build", str(tree), "-o", str(tmp_path / "a.zip"), env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    r = cli("build", str(tree), "-o", str(tmp_path / "b.zip"), env={"SOURCE_DATE_EPOCH": "0"})
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    r = cli("build", str(tree), "-o", str(tmp_path / "c.zip"), env={"SOURCE_DATE_EPOCH": "soon"})
    assert r.returncode == 2 and "SOURCE_DATE_EPOCH" in r.stderr and "Traceback" not in r.stderr


def test_fifo_is_refused_and_the_previous_zip_survives(tmp_path: Path, cli) -> None:
    tree = make_tree(tmp_path / "tree")
    out = tmp_path / "layer.zip"
    out.write_bytes(b"previous build")
    os.mkfifo(tree / "lib" / "pipe")
    r = cli("build", str(tree), "-o", str(out))
    assert r.returncode == 2
    assert "lib/pipe" in r.stderr and "fifo" in r.stderr and "Traceback" not in r.stderr
    assert out.read_bytes() == b"previous build"  # atomic: nothing half-written
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_escaping_link_is_refused_unless_dereferenced(tmp_path: Path, cli) -> None:
    tree = make_tree(tmp_path / "tree")
    (tmp_path / "outside.txt").write_text("outside the layer\n")
    os.symlink("../../outside.txt", tree / "lib" / "escape")
    r = cli("build", str(tree), "-o", str(tmp_path / "a.zip"))
    assert r.returncode == 2 and "lib/escape" in r.stderr and "--dereference" in r.stderr
    assert not (tmp_path / "a.zip").exists()

    r = cli("build", str(tree), "-o", str(tmp_path / "a.zip"), "--dereference")
    assert r.returncode == 0, r.stderr
    assert "LP512" in r.stdout
    assert zip_modes(tmp_path / "a.zip")["lib/escape"] == ("file", 0o644, None)
    assert zip_modes(tmp_path / "a.zip")["lib/libx.so"][0] == "link"  # links inside stay links
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.read("lib/escape") == b"outside the layer\n"


def test_absolute_link_is_refused_and_a_dereferenced_directory_is_stored_whole(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    ext = tmp_path / "ext"
    (ext / "sub").mkdir(parents=True)
    (ext / "sub" / "a.txt").write_text("a")
    os.symlink(str(ext), tree / "share" / "ext")
    with pytest.raises(PackageError, match="absolute"):
        build(tree, tmp_path / "a.zip")
    res = build(tree, tmp_path / "a.zip", dereference=True)
    modes = zip_modes(res.path)
    assert modes["share/ext"][0] == "dir" and modes["share/ext/sub/a.txt"] == ("file", 0o644, None)


def _zip_with(path: Path, names: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in names.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            zf.writestr(info, data)
    return path


def test_zip_with_parent_entry_is_flagged_by_check_and_refused_by_build(tmp_path: Path, cli) -> None:
    bad = _zip_with(tmp_path / "bad.zip", {"bootstrap": b"#!/bin/sh\n", "../evil": b"x"})
    r = cli("check", str(bad), "--json")
    assert r.returncode == 1
    assert "LP415" in r.stdout
    r = cli("build", str(bad), "-o", str(tmp_path / "out.zip"))
    assert r.returncode == 2 and "../evil" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.zip").exists() and not (tmp_path.parent / "evil").exists()


def _declare_size(path: Path, member: str, size: int) -> None:
    """Rewrite a member's declared uncompressed size in both headers (a lying directory)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    lh = data.index(b"PK\x03\x04")  # first local header
    while data[lh + 30:lh + 30 + len(name)] != name:
        lh = data.index(b"PK\x03\x04", lh + 4)
    struct.pack_into("<I", data, lh + 22, size)
    cd = data.index(b"PK\x01\x02")
    while data[cd + 46:cd + 46 + len(name)] != name:
        cd = data.index(b"PK\x01\x02", cd + 4)
    struct.pack_into("<I", data, cd + 24, size)
    path.write_bytes(bytes(data))


def test_zip_declaring_3_gb_from_a_few_bytes_is_refused_without_inflating(tmp_path: Path, cli) -> None:
    bomb = _zip_with(tmp_path / "bomb.zip", {"bootstrap": b"#!/bin/sh\n", "data.bin": b"\0" * 100_000})
    _declare_size(bomb, "data.bin", 3_000_000_000)
    for args in (("check", str(bomb)), ("check", str(tmp_path), "--with", str(bomb), "--no-zip-size"),
                 ("build", str(bomb), "-o", str(tmp_path / "out.zip"))):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "zip bomb" in r.stderr and "data.bin" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.zip").exists()


def test_members_sharing_the_same_bytes_are_refused_as_a_bomb(tmp_path: Path, cli) -> None:
    z = _zip_with(tmp_path / "overlap.zip", {"a": b"\0" * 50_000})
    data = bytearray(z.read_bytes())
    cd = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    record = bytes(data[cd:eocd])
    count, = struct.unpack_from("<H", data, eocd + 10)
    cd_size, = struct.unpack_from("<I", data, eocd + 12)
    tail = bytearray(data[eocd:])
    struct.pack_into("<HHI", tail, 8, count * 3, count * 3, cd_size * 3)
    z.write_bytes(bytes(data[:cd]) + record * 3 + bytes(tail))  # one stream, three entries
    r = cli("check", str(z))
    assert r.returncode == 2 and "overlapping" in r.stderr


def test_output_zip_inside_the_tree_is_not_zipped_into_itself(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    build(tree, tree / "layer.zip")
    res = build(tree, tree / "layer.zip")  # second time the old zip is in the tree
    assert "layer.zip" not in zip_modes(res.path)
    assert not [n for n in zip_modes(res.path) if n.endswith(".tmp")]
    assert any(f.code == "LP513" for f in res.findings)


def test_single_program_becomes_an_executable_bootstrap(tmp_path: Path) -> None:
    prog = tmp_path / "server"
    shutil.copy("/bin/true", prog)
    os.chmod(prog, 0o600)
    res = build(prog, tmp_path / "fn.zip", kind="runtime")
    assert zip_modes(res.path) == {"bootstrap": ("file", 0o755, None)}
    assert not [f for f in res.findings if f.severity >= 3]


def test_zip_made_without_unix_modes_is_warned_about_and_normalised_by_rebuild(tmp_path: Path, cli) -> None:
    win = tmp_path / "win.zip"
    with zipfile.ZipFile(win, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("bootstrap")
        info.create_system = 0  # MS-DOS: no Unix mode
        zf.writestr(info, Path("/bin/true").read_bytes())
        info = zipfile.ZipInfo("lib/libx.so")
        info.create_system = 0
        zf.writestr(info, b"\0" * 100)
    r = cli("check", str(win))
    assert "LP504" in r.stdout
    r = cli("build", str(win), "-o", str(tmp_path / "fixed.zip"), "--kind", "runtime")
    assert r.returncode == 0, r.stdout + r.stderr
    assert zip_modes(tmp_path / "fixed.zip")["bootstrap"] == ("file", 0o755, None)


def test_flattened_symlink_chain_is_reported_with_the_bytes_it_wastes(tmp_path: Path, cli) -> None:
    flat = tmp_path / "flat"
    (flat / "lib").mkdir(parents=True)
    blob = os.urandom(50_000)
    for name in ("libz.so", "libz.so.1", "libz.so.1.2.13"):
        (flat / "lib" / name).write_bytes(blob)
    (flat / "lib" / "libz.so.2").write_bytes(os.urandom(50_000))  # same name stem and size, other bytes
    r = cli("check", str(flat), "--json")
    assert r.returncode == 0 and r.stdout.count('"LP505"') == 1
    res = build(flat, tmp_path / "flat.zip")
    hit = [f for f in res.findings if f.code == "LP505"]
    assert len(hit) == 1 and hit[0].data["wasted"] == 100_000
    assert "lib/libz.so.2" not in hit[0].data["copies"]


def test_runtime_layer_without_bootstrap_exits_1_with_a_layout_finding(tmp_path: Path, cli) -> None:
    tree = tmp_path / "t"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "a.so").write_bytes(b"x")
    r = cli("check", str(tree), "--kind", "runtime")
    assert r.returncode == 1 and "LP401" in r.stdout
    r = cli("build", str(tree), "-o", str(tmp_path / "t.zip"), "--kind", "runtime", "--json")
    assert r.returncode == 1 and '"LP401"' in r.stdout
    assert (tmp_path / "t.zip").exists()  # written: the finding is about content, not the zip


@pytest.mark.parametrize("args,needle", [
    (("build", "/nonexistent/tree", "-o", "x.zip"), "no such file"),
    (("build", ".", "-o", "x.zip", "--level", "11"), "level"),
    (("build", ".", "-o", "x.zip", "--runtime", "cobol9"), "unknown runtime"),
    (("build", ".", "-o", "out.tar"), ".zip"),
    (("check", "/nonexistent/tree"), "no such file"),
    (("check", ".", "--kind", "rust"), "kind"),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path: Path, cli, args, needle) -> None:
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_truncated_zip_is_bad_input_not_a_one_file_layer(tmp_path: Path, cli) -> None:
    fake = tmp_path / "broken.zip"
    fake.write_bytes(b"PK\x03\x04 truncated")
    for args in (("check", str(fake)), ("build", str(fake), "-o", str(tmp_path / "o.zip"))):
        r = cli(*args)
        assert r.returncode == 2 and "not a readable zip" in r.stderr and "Traceback" not in r.stderr


def test_build_uses_zlib_ng_by_default_and_says_so_when_it_falls_back_to_zlib(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "data.txt").write_text("layer " * 10_000)
    fast = build(tree, tmp_path / "fast.zip")
    assert fast.backend == "zlib-ng"
    assert "LP514" not in {f.code for f in fast.findings}
    monkeypatch.setitem(sys.modules, "zlib_ng.zlib_ng", None)  # as on a platform without a zlib-ng wheel
    plain = build(tree, tmp_path / "plain.zip")
    assert plain.backend == "zlib"
    assert [f.code for f in plain.findings if f.code == "LP514"] == ["LP514"]
    with zipfile.ZipFile(tmp_path / "plain.zip") as z:
        assert z.read("data.txt") == (tree / "data.txt").read_bytes()


def test_check_of_a_zip_streams_its_central_directory_once(tmp_path: Path, monkeypatch) -> None:
    from packer.package import check

    src = tmp_path / "src"
    for i in range(300):
        (src / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 7}" / f"f{i}.txt").write_text("x" * i)
    archive = tmp_path / "layer.zip"
    subprocess.run([require_tool("zip"), "-qr", str(archive), "."], cwd=src, check=True)
    import packer.zipread

    parses = []
    original = packer.zipread.members
    monkeypatch.setattr(packer.zipread, "members", lambda *a: parses.append(1) or original(*a))
    report = check(archive, zipped=True)
    assert report.target.entries >= 300 and report.target.zipped == archive.stat().st_size
    assert len(parses) == 1


def test_check_dir_estimates_the_zipped_size_within_5_percent_and_says_so(tmp_path: Path, cli) -> None:
    from packer.package import check

    otp = Path("/usr/lib/erlang")  # 34 MB of real .beam, ELF and text: more than the 16 MiB sample
    if not otp.is_dir():
        pytest.skip("Erlang/OTP not installed (CI installs it)")
    exact = check(otp, exact_zip=True).target
    estimate = check(otp, exact_zip=False).target
    assert not exact.zipped_estimate and estimate.zipped_estimate
    assert abs(estimate.zipped - exact.zipped) <= 0.05 * exact.zipped
    text = cli("check", str(otp)).stdout
    assert "ESTIMATE" in text and f"{estimate.zipped:,}" in text
    exact_text = cli("check", str(otp), "--exact-zip-size").stdout
    assert "ESTIMATE" not in exact_text and f"{exact.zipped:,}" in exact_text
    assert json.loads(cli("check", str(otp), "--json").stdout)["target"]["zipped_estimate"] is True


def test_estimate_of_a_small_tree_deflates_everything_and_matches_the_zip_writer(tmp_path: Path) -> None:
    from packer.package import check

    src = tmp_path / "src"
    shutil.copytree(Path(json.__file__).parent, src / "py" / "json", symlinks=True)  # real .py and .pyc
    (src / "lib").mkdir()
    shutil.copy2("/lib/x86_64-linux-gnu/libz.so.1", src / "lib" / "libz.so.1")
    (src / "lib" / "libz.so").symlink_to("libz.so.1")
    exact = check(src, exact_zip=True).target.zipped
    estimate = check(src, exact_zip=False).target.zipped
    assert abs(estimate - exact) <= 0.01 * exact


def test_an_estimate_near_the_inline_upload_limit_says_the_route_is_not_certain(tmp_path: Path, cli) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "blob.bin").write_bytes(os.urandom(51 << 20))  # incompressible: zipped about 51 MiB
    text = cli("check", str(tree)).stdout
    assert "ESTIMATE" in text and f"within 10% of the {largest_inline_zip():,}-byte inline-upload limit" in text


def _libz() -> Path:
    """A real shared library every Debian system has (the copies below are made of it)."""
    import ctypes.util

    for d in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64"):
        hits = sorted(Path(d).glob("libz.so.1.*"))
        if hits and not hits[-1].is_symlink():
            return hits[-1]
    pytest.fail(f"no libz.so.1.* found (ctypes says {ctypes.util.find_library('z')})")


def _zlib_version(path: Path) -> str:
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); lib.zlibVersion.restype = ctypes.c_char_p; "
            "print(lib.zlibVersion().decode())")
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def copies_tree(root: Path) -> Path:
    """lib/libz.so, .so.1, .so.1.2.x: three real copies as pip writes them; plus near-misses that must
    stay files: same size but one byte different, same bytes in another directory, same bytes with an
    exec bit."""
    data = _libz().read_bytes()
    (root / "lib").mkdir(parents=True)
    (root / "other").mkdir()
    for name in ("libz.so", "libz.so.1", "libz.so.1.2.13"):
        (root / "lib" / name).write_bytes(data)
    (root / "lib" / "libz-patched.so.1").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    (root / "other" / "libz.so.1").write_bytes(data)
    (root / "lib" / "libzexec.so").write_bytes(data)
    os.chmod(root / "lib" / "libzexec.so", 0o755)
    return root


def test_dedupe_stores_identical_copies_as_links_that_still_load(tmp_path: Path, cli) -> None:
    unzip = require_tool("unzip")
    tree = copies_tree(tmp_path / "t")
    size = (tree / "lib" / "libz.so").stat().st_size
    plain = build(tree, tmp_path / "plain.zip")
    lp505 = [f for f in plain.findings if f.code == "LP505"]
    assert len(lp505) == 1 and "not links" in lp505[0].message and "--dedupe" in lp505[0].message
    r = cli("build", str(tree), "-o", str(tmp_path / "d.zip"), "--dedupe", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    hit = [f for f in doc["findings"] if f["code"] == "LP507"]
    assert len(hit) == 1 and hit[0]["data"]["links"] == 2 and "LP505" not in {f["code"] for f in doc["findings"]}
    assert doc["unzipped_bytes"] == plain.unzipped_size - 2 * size + 2 * len("libz.so")
    assert all(not p.is_symlink() for p in tree.rglob("*"))  # the input is never changed
    out = tmp_path / "u"
    subprocess.run([unzip, "-q", str(tmp_path / "d.zip"), "-d", str(out)], check=True)
    assert {p.name: os.readlink(p) for p in out.rglob("*") if p.is_symlink()} == {"libz.so.1": "libz.so",
                                                                                  "libz.so.1.2.13": "libz.so"}
    version = _zlib_version(out / "lib" / "libz.so")
    assert version[0].isdigit()
    assert _zlib_version(out / "lib" / "libz.so.1") == _zlib_version(out / "lib" / "libz.so.1.2.13") == version
    r = cli("check", str(tmp_path / "d.zip"), "--json")
    assert "LP505" not in {f["code"] for f in json.loads(r.stdout)["findings"]}
    assert json.loads(r.stdout)["target"]["unzipped_bytes"] == doc["unzipped_bytes"]


# -- the zipping bar has a total ----------------------------------------------------------------

def test_build_progress_gets_the_total_before_the_bytes_it_adds_up_to(tmp_path: Path) -> None:
    """The total `build` announces is what its progress calls add up to, and what Python's zipfile
    reads back as the members' unzipped sizes (a link counts its target's length); with --dedupe
    the copies it turns into links are not counted as copies."""
    src = make_tree(tmp_path / "tree")
    shutil.copy(src / "lib" / "libx.so.1.2.3", src / "lib" / "libx-copy.so.1.2.3")
    for dedupe in (False, True):
        events: list[tuple[str, int]] = []
        out = tmp_path / f"layer-{dedupe}.zip"
        build(src, out, dedupe=dedupe, progress=lambda n, seen=events: seen.append(("add", n)),
              progress_total=lambda n, seen=events: seen.append(("total", n)))
        with zipfile.ZipFile(out) as zf:
            unzipped = sum(i.file_size for i in zf.infolist())
        assert events[0] == ("total", unzipped) and [k for k, _ in events].count("total") == 1
        assert sum(n for k, n in events if k == "add") == unzipped


def test_build_bar_on_a_terminal_shows_the_total(tmp_path: Path) -> None:
    require_tool("script")
    src = tmp_path / "tree"
    src.mkdir()
    (src / "blob").write_bytes(os.urandom(12_000_000))
    cmd = f"layerpack build {src} -o {tmp_path / 'layer.zip'}"
    shown = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "TERM": "xterm", "COLUMNS": "150"})
    assert "wrote " in shown.stdout, shown.stdout
    assert "/12.0 MB" in shown.stdout and "/? " not in shown.stdout.split("/12.0 MB")[-1], shown.stdout[-2000:]


# -- the docs say what the program prints ------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_build_check_doc_states_the_inline_upload_threshold_check_prints(tmp_path: Path) -> None:
    """A zip just over the threshold goes through S3; docs/build-check.md shows check's own words
    and the exact number, not "50 MiB or more" (a 50 MiB zip is over it)."""
    limit = largest_inline_zip()
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("blob", b"\0" * (limit + 1))
    res = subprocess.run([sys.executable, "-m", "packer", "check", str(big)], capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"})
    printed = next(ln for ln in res.stdout.splitlines() if "publish goes through S3" in ln)
    tail = printed[printed.index("publish goes through S3"):]
    doc = (DOCS / "build-check.md").read_text()
    assert tail == f"publish goes through S3 (over {limit:,})" and tail in doc
    assert "50 MiB or more" not in doc and f"more than {limit:,} bytes" in doc


def test_wrap_doc_shows_the_size_of_the_bootstrap_wrap_writes(tmp_path: Path) -> None:
    """docs/wrap.md's example, run (this file holds the docs checks of the zip and layer commands)."""
    shutil.copy(Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "x86_64" / "hello", tmp_path / "handler")
    res = subprocess.run([sys.executable, "-m", "packer", "wrap", "./handler", "--out", "layer"], cwd=tmp_path,
                         capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert res.returncode == 0, res.stderr
    printed = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("bootstrap "))
    kib = f"{(tmp_path / 'layer' / 'bootstrap').stat().st_size / 1024:.1f} KiB"
    assert f" {kib}  generated" in printed
    assert printed in (DOCS / "wrap.md").read_text().splitlines()
    copy = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("bin/handler "))
    assert copy.split("KiB")[-1] in (DOCS / "wrap.md").read_text()
