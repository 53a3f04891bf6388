"""`layerpack publish` against moto in server mode, through the real console script."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from tests.conftest import run_cli
from tests.moto_support import (FAKE_SECRET, MotoServer, aws, code_sha256, compile_program,  # noqa: F401
                          moto_server, write_zip)


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("elf")
    return {"x86_64": compile_program("x86_64", d / "hello-x86_64"),
            "arm64": compile_program("arm64", d / "hello-arm64")}


@pytest.fixture
def layer_zip(tmp_path: Path, programs) -> Path:
    return write_zip(tmp_path / "layer.zip", {"bootstrap": programs["x86_64"], "README": b"hello layer\n"})


def assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("layerpack: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


# -- the inline path ---------------------------------------------------------------------------------

def test_inline_publish_declares_architecture_from_elf_and_default_runtime(aws, layer_zip):
    proc = run_cli("publish", str(layer_zip), "--name", "hello", "--description", "greets", "--license", "MIT")
    assert proc.returncode == 0, proc.stderr
    (v,) = aws.versions("hello")
    got = aws.client("lambda").get_layer_version(LayerName="hello", VersionNumber=v["Version"])
    assert got["CompatibleArchitectures"] == ["x86_64"]
    assert got["CompatibleRuntimes"] == ["provided.al2023"]
    assert got["Description"] == "greets" and got["LicenseInfo"] == "MIT"
    assert got["Content"]["CodeSha256"] == code_sha256(layer_zip)
    assert got["LayerVersionArn"] in proc.stdout and "published" in proc.stdout


def test_arm64_binary_is_declared_arm64(aws, tmp_path, programs):
    z = write_zip(tmp_path / "arm.zip", {"bin/tool": programs["arm64"]})
    proc = run_cli("publish", str(z), "--name", "armtool", "--runtime", "provided.al2023,python3.12")
    assert proc.returncode == 0, proc.stderr
    got = aws.client("lambda").get_layer_version(LayerName="armtool", VersionNumber=1)
    assert got["CompatibleArchitectures"] == ["arm64"]
    assert got["CompatibleRuntimes"] == ["provided.al2023", "python3.12"]


def test_layer_without_elf_declares_no_architecture_and_says_so(aws, tmp_path):
    z = write_zip(tmp_path / "data.zip", {"python/mod.py": b"X = 1\n"}, mode=0o644)
    proc = run_cli("publish", str(z), "--name", "pydata", "--runtime", "python3.12")
    assert proc.returncode == 0, proc.stderr
    assert "LP716" in proc.stderr
    got = aws.client("lambda").get_layer_version(LayerName="pydata", VersionNumber=1)
    assert "CompatibleArchitectures" not in got


def test_endpoint_url_option_reaches_the_endpoint_without_the_env_var(aws, layer_zip, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    proc = run_cli("publish", str(layer_zip), "--name", "viaopt", "--endpoint-url", aws.url)
    assert proc.returncode == 0, proc.stderr
    assert len(aws.versions("viaopt")) == 1


# -- idempotency ---------------------------------------------------------------------------------------

def test_same_bytes_publish_nothing_and_print_the_existing_arn(aws, layer_zip):
    first = run_cli("publish", str(layer_zip), "--name", "idem", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["schema"] == "layerpack.publish/1"
    arn = json.loads(first.stdout)["regions"][0]["arn"]
    again = run_cli("publish", str(layer_zip), "--name", "idem")
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout and arn in again.stdout
    assert len(aws.versions("idem")) == 1


def test_force_publishes_the_same_bytes_again(aws, layer_zip):
    run_cli("publish", str(layer_zip), "--name", "forced")
    proc = run_cli("publish", str(layer_zip), "--name", "forced", "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["regions"][0]["version"] == 2
    assert len(aws.versions("forced")) == 2


def test_changed_bytes_publish_a_new_version(aws, tmp_path, programs):
    one = write_zip(tmp_path / "one.zip", {"bootstrap": programs["x86_64"], "v": b"1"})
    two = write_zip(tmp_path / "two.zip", {"bootstrap": programs["x86_64"], "v": b"2"})
    assert run_cli("publish", str(one), "--name", "evolving").returncode == 0
    proc = run_cli("publish", str(two), "--name", "evolving", "--json")
    region = json.loads(proc.stdout)["regions"][0]
    assert region["action"] == "published" and region["version"] == 2
    assert region["code_sha256"] == code_sha256(two)


def test_unchanged_code_with_new_metadata_says_force_is_needed(aws, layer_zip):
    run_cli("publish", str(layer_zip), "--name", "meta", "--description", "old")
    proc = run_cli("publish", str(layer_zip), "--name", "meta", "--description", "new")
    assert proc.returncode == 0
    assert "description differ" in proc.stdout and "--force" in proc.stdout
    assert len(aws.versions("meta")) == 1


def test_dry_run_changes_nothing(aws, layer_zip):
    proc = run_cli("publish", str(layer_zip), "--name", "dry", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would-publish" in proc.stdout
    assert aws.versions("dry") == []


# -- several regions, permissions, output formats -------------------------------------------------

def test_several_regions_are_published_with_json_per_region(aws, layer_zip):
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    proc = run_cli("publish", str(layer_zip), "--name", "multi", "--region", ",".join(regions), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["region"] for r in doc["regions"]] == regions
    for r in doc["regions"]:
        assert r["arn"] == f"arn:aws:lambda:{r['region']}:123456789012:layer:multi:1"
        assert r["version"] == 1 and r["size"] == layer_zip.stat().st_size
        assert r["code_sha256"] == code_sha256(layer_zip) and len(r["sha256"]) == 64
        assert len(aws.versions("multi", r["region"])) == 1


def test_permissions_are_added_once_and_also_to_an_unchanged_version(aws, layer_zip):
    assert run_cli("publish", str(layer_zip), "--name", "shared", "--public").returncode == 0
    proc = run_cli("publish", str(layer_zip), "--name", "shared", "--public", "--account", "111122223333",
                   "--org", "o-abcdef1234")
    assert proc.returncode == 0, proc.stderr
    policy = json.loads(aws.client("lambda").get_layer_version_policy(LayerName="shared", VersionNumber=1)["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"layerpack-public", "layerpack-account-111122223333", "layerpack-org-o-abcdef1234"}
    assert by_sid["layerpack-public"]["Principal"] == "*"
    assert by_sid["layerpack-account-111122223333"]["Principal"] == "111122223333"
    assert by_sid["layerpack-org-o-abcdef1234"]["OrganizationId"] == "o-abcdef1234"
    assert len(aws.versions("shared")) == 1


@pytest.mark.parametrize("fmt,needle", [("cfn", "AWS::Lambda::Function"), ("sam", "AWS::Serverless::Function"),
                                        ("terraform", 'resource "aws_lambda_function"')])
def test_format_prints_a_snippet_referencing_the_new_version(aws, layer_zip, fmt, needle):
    proc = run_cli("publish", str(layer_zip), "--name", "snip", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert needle in proc.stdout
    assert "arn:aws:lambda:us-east-1:123456789012:layer:snip:1" in proc.stdout


def test_terraform_snippet_for_several_regions_maps_region_to_arn(aws, layer_zip):
    proc = run_cli("publish", str(layer_zip), "--name", "snip2", "--region", "us-east-1,eu-west-1", "--format", "terraform")
    assert proc.returncode == 0, proc.stderr
    assert '"eu-west-1" = "arn:aws:lambda:eu-west-1:123456789012:layer:snip2:1"' in proc.stdout
    assert "data.aws_region.current.name" in proc.stdout


# -- the S3 path -----------------------------------------------------------------------------------

def test_s3_bucket_publish_deletes_the_staging_object(aws, layer_zip):
    aws.make_bucket("stage")
    proc = run_cli("publish", str(layer_zip), "--name", "vias3", "--s3-bucket", "stage", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)["regions"][0]
    assert r["transport"] == "s3" and r["code_sha256"] == code_sha256(layer_zip)
    assert aws.bucket_leftovers("stage") == []


def test_versioned_bucket_keeps_no_version_or_delete_marker(aws, layer_zip):
    aws.make_bucket("stage-eu-west-1", "eu-west-1", versioned=True)
    aws.make_bucket("stage-us-east-1", versioned=True)
    proc = run_cli("publish", str(layer_zip), "--name", "vers", "--s3-bucket", "stage-{region}",
                   "--region", "us-east-1,eu-west-1")
    assert proc.returncode == 0, proc.stderr
    assert aws.bucket_leftovers("stage-us-east-1") == []
    assert aws.bucket_leftovers("stage-eu-west-1", "eu-west-1") == []
    assert len(aws.versions("vers", "eu-west-1")) == 1


def test_keep_s3_object_keeps_it_and_reports_where(aws, layer_zip):
    aws.make_bucket("keep")
    proc = run_cli("publish", str(layer_zip), "--name", "kept", "--s3-bucket", "keep", "--keep-s3-object",
                   "--s3-prefix", "staging/", "--json")
    assert proc.returncode == 0, proc.stderr
    staged = json.loads(proc.stdout)["regions"][0]["staged_object"]
    (key,) = aws.objects("keep")
    assert staged == f"s3://keep/{key}" and key.startswith("staging/kept/")


def test_failed_publish_after_upload_leaves_no_staging_object(aws, layer_zip, monkeypatch):
    """S3 on one endpoint, Lambda on another that cannot see the bucket: the upload succeeds, then
    PublishLayerVersion fails (as it does on AWS for a bucket in another region or account)."""
    aws.make_bucket("orphans")
    other = MotoServer().start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", other.url)  # Lambda (and everything else) -> other
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.url)  # S3 -> the bucket's server
        proc = run_cli("publish", str(layer_zip), "--name", "orphan", "--s3-bucket", "orphans")
    finally:
        other.stop()
    assert_one_line_error(proc, "PublishLayerVersion", "InvalidParameterValueException")
    assert aws.bucket_leftovers("orphans") == []


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory) -> Path:
    """Incompressible and just over what fits in one PublishLayerVersion request (~50 MiB)."""
    path = tmp_path_factory.mktemp("big") / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("share/blob.bin", os.urandom(52_500_000))
    return path


def test_zip_above_the_inline_limit_is_refused_without_a_bucket(aws, big_zip):
    proc = run_cli("publish", str(big_zip), "--name", "big")
    assert_one_line_error(proc, "LP712", "--s3-bucket")
    assert aws.versions("big") == []


def test_zip_above_the_inline_limit_goes_through_s3_multipart(aws, big_zip):
    aws.make_bucket("bigstage")
    proc = run_cli("publish", str(big_zip), "--name", "big", "--s3-bucket", "bigstage", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)["regions"][0]
    assert r["transport"] == "s3" and r["code_sha256"] == code_sha256(big_zip)
    assert aws.bucket_leftovers("bigstage") == []


# -- local validation: everything AWS would reject is refused before any upload -------------------

def _zip_with(tmp_path: Path, programs, kind: str) -> Path:
    z = tmp_path / "bad.zip"
    if kind == "mixed":
        return write_zip(z, {"bin/a": programs["x86_64"], "bin/b": programs["arm64"]})
    if kind == "not-a-zip":
        z.write_text("this is not a zip\n")
        return z
    if kind == "empty":
        zipfile.ZipFile(z, "w").close()
        return z
    if kind == "corrupt":
        write_zip(z, {"bootstrap": programs["x86_64"]}, compression=zipfile.ZIP_STORED)
        data = bytearray(z.read_bytes())
        data[200] ^= 0xFF  # inside the stored member: its CRC no longer matches
        z.write_bytes(bytes(data))
        return z
    if kind == "parent-ref":
        return write_zip(z, {"../evil": b"x", "bootstrap": programs["x86_64"]})
    if kind == "huge-unzipped":
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            with zf.open("share/zeros", "w", force_zip64=True) as fh:
                chunk = bytes(1 << 20)
                for _ in range(251):
                    fh.write(chunk)
        return z
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,code", [("mixed", "LP707"), ("not-a-zip", "LP709"), ("empty", "LP709"),
                                       ("corrupt", "LP709"), ("parent-ref", "LP710"), ("huge-unzipped", "LP711")])
def test_bad_zip_is_refused_locally(aws, tmp_path, programs, kind, code):
    z = _zip_with(tmp_path, programs, kind)
    proc = run_cli("publish", str(z), "--name", "bad")
    assert_one_line_error(proc, code, "nothing was uploaded")
    assert aws.versions("bad") == []


@pytest.mark.parametrize("args,code", [
    (["--name", "has space"], "LP701"),
    (["--name", "x" * 141], "LP701"),
    (["--name", "arn:aws:lambda:us-east-1:123456789012:layer:x"], "LP701"),
    (["--runtime", "python9.99"], "LP702"),
    (["--runtime", ",".join(["provided", "provided.al2", "provided.al2023", "python3.9", "python3.10",
                             "python3.11", "python3.12", "python3.13", "nodejs18.x", "nodejs20.x",
                             "nodejs22.x", "java17", "java21", "ruby3.2", "ruby3.3", "dotnet8"])], "LP703"),
    (["--arch", "arm64"], "LP704"),
    (["--description", "d" * 257], "LP705"),
    (["--license", "l" * 513], "LP706"),
    (["--s3-bucket", "ab"], "LP713"),
    (["--s3-bucket", "bucket.", ], "LP713"),
    (["--s3-bucket", "one-bucket", "--region", "us-east-1,eu-west-1"], "LP713"),
    (["--account", "12345"], "LP714"),
    (["--org", "org-123"], "LP714"),
    (["--region", "mars-north-1x"], "LP717"),
])
def test_option_aws_would_reject_is_refused_locally(aws, layer_zip, args, code):
    full = ["publish", str(layer_zip), *args]
    if "--name" not in args:
        full += ["--name", "bad"]
    proc = run_cli(*full)
    assert_one_line_error(proc, code)
    assert aws.client("lambda").list_layers()["Layers"] == []


def test_refusal_with_json_lists_findings_on_stdout(aws, tmp_path, programs):
    z = _zip_with(tmp_path, programs, "mixed")
    proc = run_cli("publish", str(z), "--name", "bad", "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["published"] is False and [f["code"] for f in doc["findings"]] == ["LP707"]


def test_missing_input_is_one_line(aws, tmp_path):
    assert_one_line_error(run_cli("publish", str(tmp_path / "nope.zip"), "--name", "x"), "no such file")


# -- AWS configuration problems: one clear line, exit 2 -----------------------------------------------

def test_missing_credentials_is_one_line(aws, layer_zip, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert_one_line_error(run_cli("publish", str(layer_zip), "--name", "x"), "no AWS credentials found")


def test_missing_region_is_one_line(aws, layer_zip, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert_one_line_error(run_cli("publish", str(layer_zip), "--name", "x"), "no AWS region configured", "--region")


@pytest.mark.parametrize("flag", ["--profile", "--aws-profile"])  # the old spelling works one more release
def test_unknown_profile_is_one_line(aws, layer_zip, flag):
    assert_one_line_error(run_cli("publish", str(layer_zip), "--name", "x", flag, "ghost"),
                          "profile 'ghost' not found")


def test_unreachable_endpoint_is_one_line(aws, layer_zip, monkeypatch):
    from tests.moto_support import free_port

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # connection errors are retried; not needed here
    proc = run_cli("publish", str(layer_zip), "--name", "x", "--endpoint-url", f"http://127.0.0.1:{free_port()}")
    assert_one_line_error(proc, "cannot reach")


def test_throttling_is_retried_then_reported_in_one_line(aws, layer_zip, monkeypatch):
    from tests.moto_support import ThrottlingServer

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    with ThrottlingServer() as throttled:
        proc = run_cli("publish", str(layer_zip), "--name", "x", "--endpoint-url", throttled.url)
    assert_one_line_error(proc, "TooManyRequestsException", "Rate exceeded")
    assert throttled.requests == 3


def test_output_never_contains_the_secret_or_a_presigned_url(aws, layer_zip):
    aws.make_bucket("sbucket")
    outputs = []
    for extra in ([], ["--json"], ["--s3-bucket", "sbucket", "--force", "--json"], ["--format", "sam", "--force"]):
        proc = run_cli("publish", str(layer_zip), "--name", "secret", *extra)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    text = "\n".join(outputs)
    assert FAKE_SECRET not in text
    for marker in ("X-Amz-Signature", "X-Amz-Credential", "Location", "testing"):
        assert marker not in text


# -- a tree is built first ---------------------------------------------------------------------------

def test_tree_is_built_then_published_and_rebuilding_it_publishes_nothing(aws, tmp_path, programs):
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bootstrap").write_bytes(programs["arm64"].read_bytes())
    (tree / "bootstrap").chmod(0o755)
    (tree / "bin" / "helper").write_bytes(programs["arm64"].read_bytes())
    first = run_cli("publish", str(tree), "--name", "fromtree", "--json")
    assert first.returncode == 0, first.stderr
    region = json.loads(first.stdout)["regions"][0]
    assert region["action"] == "published" and region["architectures"] == ["arm64"]
    again = run_cli("publish", str(tree), "--name", "fromtree", "--json")
    assert json.loads(again.stdout)["regions"][0]["action"] == "unchanged"
    assert len(aws.versions("fromtree")) == 1


def test_tree_with_both_architectures_is_refused(aws, tmp_path, programs):
    tree = tmp_path / "tree"
    tree.mkdir()
    for arch, prog in programs.items():
        (tree / f"tool-{arch}").write_bytes(prog.read_bytes())
        (tree / f"tool-{arch}").chmod(0o755)
    proc = run_cli("publish", str(tree), "--name", "mixedtree")
    assert_one_line_error(proc, "LP707", "tool-arm64", "tool-x86_64")
    assert aws.versions("mixedtree") == []


def test_layerpack_toml_supplies_name_runtime_and_regions(aws, layer_zip, tmp_path):
    (tmp_path / "layerpack.toml").write_text('runtime = "provided.al2"\nregion = "eu-west-1"\n'
                                             '[publish]\nname = "fromconfig"\n')
    proc = run_cli("publish", str(layer_zip), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(proc.stdout)["regions"]
    assert (r["region"], r["runtimes"]) == ("eu-west-1", ["provided.al2"])
    assert r["arn"].endswith(":layer:fromconfig:1")


# -- --dry-run: local only -----------------------------------------------------------------------------

def test_dry_run_needs_no_credentials_and_makes_no_connection(tmp_path, monkeypatch, layer_zip):
    """No credentials anywhere and an endpoint that counts the connections it is offered: a dry run
    validates locally, lists the calls a real run would make, and connects to nothing."""
    import socket
    import threading

    from tests.moto_support import scrub_aws_env

    scrub_aws_env(monkeypatch, tmp_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[object] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()  # refuse to serve: any call would fail

    threading.Thread(target=accept, daemon=True).start()
    (tmp_path / "layerpack.toml").write_text('arch = "x86_64"\n\n[publish]\nname = "planned"\n')
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        for extra in ((), ("--json",)):
            res = run_cli("publish", str(layer_zip), "--dry-run", "--region", "us-east-1,eu-west-1", "--public",
                          "--s3-bucket", "stage-{region}", *extra, cwd=tmp_path, env={"AWS_ENDPOINT_URL": endpoint})
            assert res.returncode == 0, res.stderr
        # with credentials too: still nothing is called
        res = run_cli("publish", str(layer_zip), "--dry-run", "--region", "us-east-1", cwd=tmp_path,
                      env={"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
        assert res.returncode == 0, res.stderr
    finally:
        listener.close()
    assert accepted == []
    human = run_cli("publish", str(layer_zip), "--dry-run", "--region", "us-east-1", "--public", cwd=tmp_path,
                    env={"AWS_ENDPOINT_URL": endpoint})
    assert "would call" in human.stdout and "lambda:PublishLayerVersion planned (inline" in human.stdout
    assert "lambda:AddLayerVersionPermission planned (public" in human.stdout
    res = run_cli("publish", str(layer_zip), "--dry-run", "--json", "--region", "eu-west-1", "--s3-bucket",
                  "stage-{region}", cwd=tmp_path, env={"AWS_ENDPOINT_URL": endpoint})
    (region,) = json.loads(res.stdout)["regions"]
    assert region["action"] == "would-publish" and region["transport"] == "s3"
    calls = region["would_call"]
    assert calls[0].startswith("lambda:ListLayerVersions") and "s3://stage-eu-west-1/" in calls[1]
    assert calls[-1].startswith("s3:DeleteObject s3://stage-eu-west-1/")


def test_dry_run_still_refuses_locally_without_credentials(tmp_path, monkeypatch, layer_zip):
    from tests.moto_support import scrub_aws_env

    scrub_aws_env(monkeypatch, tmp_path)
    res = run_cli("publish", str(layer_zip), "--name", "bad name!", "--dry-run", "--region", "us-east-1")
    assert_one_line_error(res, "LP701")
    res = run_cli("publish", str(layer_zip), "--name", "ok", "--arch", "arm64", "--dry-run", "--region", "us-east-1")
    assert_one_line_error(res, "LP704")
