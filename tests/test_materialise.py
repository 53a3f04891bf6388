"""Unpacking a zip or a tree never writes outside its destination (issue 15).

Each attack zip is built the way a hostile or careless tool writes it (Unix symlink members made
with `zipfile`, the same bytes Info-ZIP's `zip -y` stores); the judge is the file system: a
directory standing for "the rest of the machine" must stay byte-for-byte identical.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from packer.emulator import staging
from packer.errors import InputError
from packer.materialise import Budget, unpack
from packer.tree import open_tree
from tests.fuzzing import zip_member


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with its kind and content hash (links by target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


add = zip_member  # a Unix member, or a symlink member as `zip -y` stores it


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "file").write_text("precious\n")
    (d / "b").mkdir()
    (d / "b" / "file").write_text("precious too\n")
    return d


def attack_zips(tmp_path: Path, outside: Path) -> dict[str, Path]:
    """The attacks of issue 15, each as its own zip."""
    rel_up = os.path.relpath(outside, tmp_path / "dst" / "x")
    zips = {
        "link-then-member": [("lib", None, str(outside)), ("lib/file", "overwritten", None)],
        "dot-link-chain": [("a", None, "."), ("a/b", None, str(outside)), ("a/b/file", "overwritten", None)],
        "relative-up-link": [("x/up", None, rel_up), ("x/up/file", "overwritten", None)],
        "deep-relative": [("up", None, "../../../../../../../../.." + str(outside)), ("up/b/file", "overwritten", None)],
        "parent-names": [("../outside/file", "overwritten", None), ("bootstrap", "#!/bin/sh\n", None)],
    }
    paths = {}
    for name, members in zips.items():
        z = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(z, "w") as zf:
            for member, data, link in members:
                add(zf, member, data or "", link=link)
        paths[name] = z
    return paths


@pytest.mark.parametrize("attack", ["link-then-member", "dot-link-chain", "relative-up-link", "deep-relative",
                                    "parent-names"])
def test_invoke_staging_never_writes_through_a_link_from_the_zip(tmp_path, outside, attack):
    before = snapshot(outside)
    z = attack_zips(tmp_path, outside)[attack]
    merged, skipped = staging.stage([z, z], tmp_path / "dst")  # twice: the second layer meets the first's links
    assert snapshot(outside) == before
    assert skipped, "the hostile member must be reported"
    for dirpath, _dirs, files in os.walk(merged):
        for f in files:  # nothing written ended up anywhere but below the destination
            assert (Path(dirpath) / f).resolve().is_relative_to(merged.resolve()) or (Path(dirpath) / f).is_symlink()


def test_later_layer_replaces_an_earlier_layers_link_instead_of_following_it(tmp_path, outside):
    before = snapshot(outside)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    with zipfile.ZipFile(first, "w") as zf:
        add(zf, "lib", link=str(outside))
    with zipfile.ZipFile(second, "w") as zf:
        add(zf, "lib/file", "from layer 2")
    merged, skipped = staging.stage([first, second], tmp_path / "dst")
    assert snapshot(outside) == before and skipped == []
    assert not (merged / "lib").is_symlink() and (merged / "lib" / "file").read_text() == "from layer 2"


def test_a_directory_layer_with_an_outward_link_is_merged_without_following_it(tmp_path, outside):
    before = snapshot(outside)
    a = tmp_path / "a"
    a.mkdir()
    (a / "lib").symlink_to(outside)
    b = tmp_path / "b"
    (b / "lib").mkdir(parents=True)
    (b / "lib" / "file").write_text("from b")
    merged, _ = staging.stage([a, b], tmp_path / "dst")
    assert snapshot(outside) == before
    assert (merged / "lib" / "file").read_text() == "from b"


def test_budget_is_checked_before_anything_is_written(tmp_path):
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        add(zf, "a", "x" * 600_000)
        add(zf, "b", "y" * 600_000)
    with open_tree(z) as tree, pytest.raises(InputError, match="budget.*nothing was written"):
        unpack(tree, tmp_path / "dst", budget=Budget(max_bytes=1_000_000))
    assert not any((tmp_path / "dst").iterdir()) if (tmp_path / "dst").exists() else True


def test_layers_share_lambdas_unzipped_budget(tmp_path):
    z = tmp_path / "half.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        add(zf, "blob", "\0" * 700_000)
    budget = Budget(max_bytes=1_000_000)
    staging.stage([z], tmp_path / "opt", budget)
    with pytest.raises(InputError, match="over the 1,000,000-byte budget"):
        staging.stage([z], tmp_path / "task", budget)


@pytest.mark.parametrize("why, build", [
    ("encrypted", lambda zf: zf.writestr("f", b"\0" * 12 + b"data")),
    ("compression method", lambda zf: zf.writestr(zipfile.ZipInfo("f"), b"data", compress_type=zipfile.ZIP_BZIP2)),
    ("under the file a", lambda zf: (zf.writestr("a", "file"), zf.writestr("a/b", "under it"))),
    ("both as a directory", lambda zf: (zf.writestr("a/b", "file"), zf.writestr("a", "over it"))),
])
def test_strict_unpack_refuses_members_it_cannot_write_faithfully(tmp_path, why, build):
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        build(zf)
    if why == "encrypted":  # zipfile cannot write encryption: set the flag bit in both headers
        set_encrypted_flag(z)
    with open_tree(z) as tree, pytest.raises(InputError, match=f"refused.*{why}.*nothing was written"):
        unpack(tree, tmp_path / "dst")


def set_encrypted_flag(z: Path) -> None:
    data = bytearray(z.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.index(sig)
        data[pos + at] |= 0x1
    z.write_bytes(bytes(data))


def test_corrupt_deflate_data_is_one_input_error(tmp_path):
    z = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        add(zf, "f", "hello world " * 1000)
    data = bytearray(z.read_bytes())
    start = data.index(b"f", 30) + 1  # first byte of the deflate stream after the local header name
    data[start:start + 40] = b"\xff" * 40
    z.write_bytes(bytes(data))
    with open_tree(z) as tree, pytest.raises(InputError, match="cannot read f"):
        unpack(tree, tmp_path / "dst")


def test_invoke_cli_refuses_nothing_outside_and_reports_the_skipped_member(tmp_path, outside, cli):
    before = snapshot(outside)
    z = tmp_path / "layer.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, "lib", link=str(outside))
        add(zf, "lib/file", "overwritten")
        add(zf, "bootstrap", "#!/bin/sh\nexit 3\n", mode=0o755)
    r = cli("invoke", str(z), "--no-sandbox", "--timeout", "5", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert "Traceback" not in r.stderr
    assert "skipped zip entry lib/file" in r.stderr
    assert snapshot(outside) == before


# -- vendor: zip input and a tree whose lib/ links out ----------------------------------------------
ATOMIC = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "x86_64" / "needs-atomic"


@pytest.mark.parametrize("attack", ["link-then-member", "dot-link-chain", "relative-up-link", "deep-relative",
                                    "parent-names"])
def test_vendor_zip_with_a_hostile_member_is_refused_and_writes_nothing(tmp_path, outside, cli, attack):
    before = snapshot(outside)
    z = attack_zips(tmp_path, outside)[attack]
    r = cli("vendor", str(z), "--out", str(tmp_path / "dst"))
    assert r.returncode == 2 and r.stderr.startswith("layerpack: error:") and "refused" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(outside) == before and not (tmp_path / "dst").exists()


@pytest.mark.parametrize("in_place", [False, True])
def test_vendor_never_writes_libraries_through_a_lib_link_leaving_the_tree(tmp_path, outside, cli, in_place):
    before = snapshot(outside)
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy2(ATOMIC, tree / "bootstrap")
    (tree / "lib").symlink_to(outside)
    args = ["--in-place"] if in_place else ["--out", str(tmp_path / "dst")]
    r = cli("vendor", str(tree), *args)
    assert r.returncode == 2 and "refusing to write through" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert snapshot(outside) == before
    assert not (tmp_path / "dst").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".layerpack-tmp-")]
