"""The pure parts of publishing: limits, validation, the per-region decision, snippets, deletion choice.
No endpoint involved: these are the decisions `--dry-run` shows."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from packer.errors import UsageError
from packer.publish.archive import Archive, digests_equal, inspect_archive
from packer.publish.housekeeping import select_for_deletion
from packer.publish.plan import LayerRequest, RemoteVersion, plan_region
from packer.publish.snippets import render
from packer.publish.validate import limits, validate
from tests.moto_support import compile_program, write_zip

DIGEST = hashlib.sha256(b"layer bytes").digest()
B64 = base64.b64encode(DIGEST).decode()


def archive(size: int = 1000, b64: str = B64, archs: tuple[str, ...] = ("x86_64",)) -> Archive:
    return Archive(Path("layer.zip"), size, b64, base64.b64decode(b64).hex(), size * 2, 3,
                   {a: ("bootstrap",) for a in archs})


def remote(b64: str | None = B64, version: int = 4, **kw) -> RemoteVersion:
    return RemoteVersion(version, f"arn:aws:lambda:us-east-1:123456789012:layer:x:{version}",
                         "arn:aws:lambda:us-east-1:123456789012:layer:x", b64, 1000, **kw)


def codes(findings) -> list[str]:
    return [f.code for f in findings if str(f.severity) == "error"]


# -- limits come from botocore's model and match the documented values ---------------------------

def test_limits_are_read_from_botocores_model():
    lim = limits()
    assert (lim.name_max, lim.max_runtimes, lim.max_architectures) == (140, 15, 2)
    assert (lim.description_max, lim.license_max) == (256, 512)
    assert {"provided.al2023", "python3.12", "nodejs20.x"} <= set(lim.runtimes)
    assert set(lim.architectures) == {"x86_64", "arm64"}


def test_every_runtime_in_the_enum_is_accepted_and_others_are_not():
    lim = limits()
    assert codes(validate(LayerRequest("x", runtimes=lim.runtimes[:15]))) == []
    assert codes(validate(LayerRequest("x", runtimes=("python3.99",)))) == ["LP702"]


def test_name_length_boundary():
    assert codes(validate(LayerRequest("a" * 140))) == []
    assert codes(validate(LayerRequest("a" * 141))) == ["LP701"]
    assert codes(validate(LayerRequest(""))) == ["LP701"]


def test_description_and_license_boundaries():
    assert codes(validate(LayerRequest("x", description="d" * 256, license="l" * 512))) == []
    assert codes(validate(LayerRequest("x", description="d" * 257, license="l" * 513))) == ["LP705", "LP706"]


def test_one_bucket_for_several_regions_needs_the_region_placeholder():
    regions = ("us-east-1", "eu-west-1")
    assert codes(validate(LayerRequest("x", regions=regions, s3_bucket="stage"))) == ["LP713"]
    assert codes(validate(LayerRequest("x", regions=regions, s3_bucket="stage-{region}"))) == []


# -- the inline request limit (tests/test_quotas.py pins the boundary) ------------------------------

def test_a_50_mib_zip_is_not_sent_inline():
    # base64 of exactly 50 MiB is 69,905,068 bytes: one more than the request limit already
    assert plan_region(LayerRequest("x"), archive(size=50 * 1024 * 1024), "us-east-1", None).transport == "s3"
    assert plan_region(LayerRequest("x"), archive(size=52_000_000), "us-east-1", None).transport == "inline"


def test_oversized_zip_without_bucket_is_refused_with_the_request_size():
    big = archive(size=60_000_000)
    (f,) = [f for f in validate(LayerRequest("x"), big) if f.code == "LP712"]
    assert "80,000,0" in f.message and "--s3-bucket" in f.hint
    assert codes(validate(LayerRequest("x", s3_bucket="stage"), big)) == []


# -- the per-region decision ------------------------------------------------------------------------

def test_same_digest_as_latest_is_unchanged():
    p = plan_region(LayerRequest("x"), archive(), "us-east-1", remote())
    assert p.action == "unchanged" and p.latest.version == 4


def test_hex_code_sha256_from_an_emulator_still_matches():
    assert digests_equal(B64, DIGEST.hex())
    assert digests_equal(B64, B64)
    assert not digests_equal(B64, base64.b64encode(hashlib.sha256(b"other").digest()).decode())
    assert not digests_equal(B64, None) and not digests_equal(B64, "not base64!")


def test_different_digest_publishes_inline():
    other = base64.b64encode(hashlib.sha256(b"older").digest()).decode()
    p = plan_region(LayerRequest("x"), archive(), "us-east-1", remote(other))
    assert (p.action, p.transport) == ("publish", "inline")


def test_force_publishes_identical_bytes():
    p = plan_region(LayerRequest("x", force=True), archive(), "us-east-1", remote())
    assert p.action == "publish"


def test_bucket_sends_through_s3_with_a_per_region_bucket_and_a_key_derived_from_the_bytes():
    req = LayerRequest("x", s3_bucket="stage-{region}", regions=("eu-west-1",))
    p = plan_region(req, archive(), "eu-west-1", None)
    assert (p.transport, p.bucket) == ("s3", "stage-eu-west-1")
    assert p.key == f"layerpack-staging/x/{DIGEST.hex()}.zip"  # a rerun finds an interrupted run's object


def test_unchanged_code_notes_which_metadata_differs():
    p = plan_region(LayerRequest("x", runtimes=("python3.12",), description="new"), archive(), "us-east-1",
                    remote(runtimes=("python3.12",), architectures=("x86_64",), description="old"))
    assert p.action == "unchanged" and p.differs == ("description",) and "--force" in p.note


def test_permissions_have_stable_statement_ids():
    p = plan_region(LayerRequest("x", public=True, accounts=("111122223333",), orgs=("o-abcdef1234",)),
                    archive(), "us-east-1", None)
    assert [(q.statement_id, q.principal, q.organization) for q in p.permissions] == [
        ("layerpack-public", "*", None), ("layerpack-account-111122223333", "111122223333", None),
        ("layerpack-org-o-abcdef1234", "*", "o-abcdef1234")]


# -- reading a real zip ----------------------------------------------------------------------------

def test_archive_reads_architectures_and_lambdas_digest(tmp_path):
    prog = compile_program("arm64", tmp_path / "p")
    z = write_zip(tmp_path / "l.zip", {"bin/p": prog, "lib/libx.so.1": prog, "doc.txt": b"x"})
    a = inspect_archive(z)
    assert a.architectures == ("arm64",) and a.elf_machines["arm64"] == ("bin/p", "lib/libx.so.1")
    assert a.code_sha256 == base64.b64encode(hashlib.sha256(z.read_bytes()).digest()).decode()
    from packer import package

    assert a.code_sha256 == package.code_sha256(z) and a.sha256_hex == hashlib.sha256(z.read_bytes()).hexdigest()
    assert a.unzipped_size == 2 * prog.stat().st_size + 1


def test_truncated_elf_is_a_warning_not_an_architecture(tmp_path):
    prog = compile_program("x86_64", tmp_path / "p")
    z = write_zip(tmp_path / "l.zip", {"bootstrap": prog, "bin/cut": prog.read_bytes()[:100]})
    found = validate(LayerRequest("x"), inspect_archive(z))
    assert [f.code for f in found] == ["LP715"]


def test_corrupt_member_is_found_by_its_crc(tmp_path):
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"A" * 1000)
    data = bytearray(z.read_bytes())
    data[100] ^= 1
    z.write_bytes(bytes(data))
    assert "CRC" in inspect_archive(z).corrupt


def test_each_member_is_inflated_once_for_the_crc_check_and_the_elf_headers(tmp_path, monkeypatch):
    import shutil
    import subprocess

    from tests.conftest import require_tool

    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    for lib in ("libz.so.1", "libatomic.so.1"):
        shutil.copy2(Path("/lib/x86_64-linux-gnu") / lib, src / "lib" / lib)
    (src / "lib" / "libz.so").symlink_to("libz.so.1")
    (src / "README").write_text("text " * 500)
    z = tmp_path / "layer.zip"
    subprocess.run([require_tool("zip"), "-qry", str(z), "."], cwd=src, check=True)
    opened: list[str] = []
    from packer.zipread import ZipIndex

    original = ZipIndex.open
    monkeypatch.setattr(ZipIndex, "open", lambda self, ref, rel: opened.append(rel) or original(self, ref, rel))
    archive = inspect_archive(z)
    assert archive.corrupt is None and archive.architectures == ("x86_64",)
    assert sorted(archive.elf_machines["x86_64"]) == ["lib/libatomic.so.1", "lib/libz.so.1"]
    assert {n: opened.count(n) for n in set(opened)} == {"lib/libz.so.1": 1, "lib/libatomic.so.1": 1, "README": 1,
                                                        "lib/libz.so": 1}  # the link: its target, read once


# -- snippets and deletion choice --------------------------------------------------------------------

def test_cloudformation_snippet_for_several_regions_uses_a_mapping():
    east = remote(version=3, runtimes=("provided.al2023",), architectures=("arm64",))
    west = RemoteVersion(1, "arn:aws:lambda:eu-west-1:123456789012:layer:my-layer:1", "", B64, 1)
    text = render("cfn", "my-layer", [("us-east-1", east), ("eu-west-1", west)])
    assert "LayerpackMyLayer:" in text and '!FindInMap [LayerpackMyLayer, !Ref "AWS::Region", Arn]' in text
    assert "Arn: arn:aws:lambda:eu-west-1:123456789012:layer:my-layer:1" in text
    assert "Architectures: [arm64]" in text


def test_snippet_needs_a_version():
    with pytest.raises(UsageError):
        render("sam", "x", [])


@pytest.mark.parametrize("explicit,all_versions,keep,expected", [
    ((2,), False, None, [2]),
    ((), True, None, [5, 3, 2]),
    ((), False, 1, [3, 2]),
    ((), False, 0, [5, 3, 2]),
    ((), False, 9, []),
])
def test_select_for_deletion(explicit, all_versions, keep, expected):
    assert select_for_deletion([2, 3, 5], explicit, all_versions=all_versions, keep=keep) == expected


def test_select_for_deletion_refuses_unknown_or_ambiguous():
    with pytest.raises(UsageError, match="no version 4"):
        select_for_deletion([2, 3], (4,))
    with pytest.raises(UsageError, match="exactly one"):
        select_for_deletion([2, 3], (2,), all_versions=True)
