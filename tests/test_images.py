"""Images: references, layer application, the cache, and a real registry (Debian's docker-registry).

The judge of the pulls is a real distribution registry on loopback; the judge of the runs is the
image's own glibc loader, bash and curl (Debian 11 built by mmdebstrap), in the bwrap sandbox.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from packer.errors import ImageError, UsageError
from packer.images.pull import pull
from packer.images.store import Store
from packer.images.layers import RootBuilder, apply_layer
from packer.images.reference import parse
from packer.images.registry import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, sha256_digest
from tests.conftest import layerpack_command, run_cli
from tests.emulator_support import EMU, compile_bootstrap, sandbox_ready  # noqa: F401
from tests.images_support import (BULLSEYE_REF, Registry, TokenIssuer, bullseye_image,  # noqa: F401
                                  bullseye_tar, image_cache, push_image, registry)


# -- references -----------------------------------------------------------------------------------
def test_runtime_name_maps_to_aws_base_image():
    ref = parse("provided.al2023")
    assert (ref.registry, ref.repository, ref.tag) == ("public.ecr.aws", "lambda/provided", "al2023")
    assert ref.runtime == "provided.al2023" and not ref.loopback
    assert str(parse("python3.12")) == "public.ecr.aws/lambda/python:3.12"


def test_explicit_references_with_port_tag_and_digest():
    ref = parse("127.0.0.1:5000/lambda/x:1")
    assert (ref.registry, ref.repository, ref.tag, ref.loopback) == ("127.0.0.1:5000", "lambda/x", "1", True)
    pinned = parse("localhost:5000/x@sha256:" + "a" * 64)
    assert pinned.reference == "sha256:" + "a" * 64 and pinned.loopback
    assert parse("registry.example.com/a/b").tag == "latest"


@pytest.mark.parametrize("bad", ["ubuntu", "ubuntu:22.04", "lambda/x:1", "127.0.0.1:5000/X:1",
                                 "127.0.0.1:5000/x@sha256:abc"])
def test_bad_references_are_usage_errors(bad):
    with pytest.raises(UsageError):
        parse(bad)


# -- layers ---------------------------------------------------------------------------------------
def _tar(entries: list[tuple]) -> bytes:
    """entries: (name, kind, payload) with kind file|dir|sym|link; payload: bytes, or link target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(payload))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            tf.addfile(info)
    return gzip.compress(buf.getvalue())


def _apply(root: Path, *layers: bytes) -> None:
    builder = RootBuilder(root)
    for i, blob in enumerate(layers):
        path = root.parent / f"layer{i}.tgz"
        path.write_bytes(blob)
        apply_layer(builder, path, sha256_digest(blob))
    builder.finish()


def test_whiteouts_and_opaque_directories_follow_the_oci_spec(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    lower = _tar([("etc/", "dir", b""), ("etc/a", "file", b"a"), ("etc/b", "file", b"b"),
                  ("opt/", "dir", b""), ("opt/old", "file", b"old"), ("opt/sub/", "dir", b""),
                  ("opt/sub/deep", "file", b"d")])
    upper = _tar([("etc/.wh.a", "file", b""), ("opt/new", "file", b"new"), ("opt/.wh..wh..opq", "file", b""),
                  ("etc/c", "file", b"c")])
    _apply(root, lower, upper)
    assert sorted(os.listdir(root / "etc")) == ["b", "c"]
    assert sorted(os.listdir(root / "opt")) == ["new"]  # opaque: lower entries gone, this layer's kept


def test_hostile_layer_never_writes_outside_the_root(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    evil = _tar([("escape", "sym", str(outside)), ("escape/pwned", "file", b"x"),
                 ("../../pwned2", "file", b"x"), ("up", "sym", "../../.."), ("up/pwned3", "file", b"x"),
                 ("hard", "link", "../../../etc/passwd")][:5])
    _apply(root, evil)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "pwned2").exists()
    assert (root / str(outside).lstrip("/") / "pwned").read_bytes() == b"x"  # absolute link: inside the root
    assert (root / "pwned2").is_file() and (root / "pwned3").is_file()


def test_hard_link_to_a_path_outside_the_image_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ImageError, match="hard link"):
        _apply(root, _tar([("hard", "link", "../../../etc/passwd")]))


def test_layer_whose_bytes_do_not_match_its_digest_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    path = tmp_path / "l.tgz"
    path.write_bytes(_tar([("a", "file", b"a")]))
    with pytest.raises(ImageError, match="refused"):
        apply_layer(RootBuilder(root), path, "sha256:" + "0" * 64)


# -- a real registry --------------------------------------------------------------------------------
def _small_image(registry, repo: str, text: bytes, arch: str = "amd64", docker: bool = False) -> str:
    layer = _tar([("usr/", "dir", b""), ("usr/bin/", "dir", b""), ("usr/share/", "dir", b""),
                  ("usr/share/marker", "file", text)])
    if docker:
        return push_image(registry, repo, "1", [layer], arch=arch, env=["PATH=/usr/bin", "FROM_IMAGE=yes"],
                          layer_type="application/vnd.docker.image.rootfs.diff.tar.gzip",
                          manifest_type=DOCKER_MANIFEST)
    return push_image(registry, repo, "1", [layer], arch=arch, env=["PATH=/usr/bin", "FROM_IMAGE=yes"])


def test_pull_list_json_and_prune_with_the_cli(registry, image_cache):
    digest = _small_image(registry, "lambda/small", b"small")
    env = {"LAYERPACK_CACHE_DIR": str(image_cache)}
    ref = f"{registry.address}/lambda/small:1"
    proc = run_cli("image", "pull", ref, "--arch", "x86_64", env=env)
    assert proc.returncode == 0, proc.stderr
    assert digest in proc.stdout
    listed = json.loads(run_cli("image", "list", "--json", env=env).stdout)
    assert listed["schema"] == "layerpack.image-list/1"
    [img] = listed["images"]
    assert img["digest"] == digest and img["refs"] == [ref] and img["arch"] == "x86_64"
    assert (Path(img["root"]) / "usr/share/marker").read_bytes() == b"small"
    assert run_cli("image", "prune", "--all", env=env).returncode == 0
    assert json.loads(run_cli("image", "list", "--json", env=env).stdout)["images"] == []


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_manifest_index_picks_the_target_arch(registry, tmp_path, docker):
    client = registry.client()
    repo = "lambda/multi-docker" if docker else "lambda/multi"
    amd = _small_image(registry, repo, b"amd64", docker=docker)
    arm = _small_image(registry, repo, b"arm64", arch="arm64", docker=docker)
    sizes = {d: len(client.manifest(repo, d)[0]) for d in (amd, arm)}
    index_type, entry_type = (DOCKER_LIST, DOCKER_MANIFEST) if docker else (OCI_INDEX, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": [
        {"mediaType": entry_type, "digest": arm, "size": sizes[arm],
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": entry_type, "digest": amd, "size": sizes[amd],
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    client.push_manifest(repo, "both", index, index_type)
    store = Store(tmp_path / "cache")
    ref = f"{registry.address}/{repo}:both"
    x86 = pull(ref, "x86_64", store)
    arm64 = pull(ref, "arm64", store)
    assert (x86.digest, arm64.digest) == (amd, arm)
    assert (x86.root / "usr/share/marker").read_bytes() == b"amd64"
    assert (arm64.root / "usr/share/marker").read_bytes() == b"arm64"
    assert x86.env["FROM_IMAGE"] == "yes"


def test_blob_served_with_wrong_bytes_is_refused_and_not_cached(registry, image_cache):
    layer = _tar([("usr/", "dir", b""), ("usr/share/", "dir", b""), ("usr/share/x", "file", b"good bytes")])
    push_image(registry, "lambda/corrupt", "1", [layer])
    hexd = sha256_digest(layer).split(":")[1]
    stored = registry.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    stored.write_bytes(_tar([("usr/", "dir", b""), ("usr/share/", "dir", b""), ("usr/share/x", "file", b"evil")]))
    env = {"LAYERPACK_CACHE_DIR": str(image_cache)}
    proc = run_cli("image", "pull", f"{registry.address}/lambda/corrupt:1", env=env)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"layerpack: error: blob sha256:{hexd} from ") and "refused" in last
    assert "Traceback" not in proc.stderr
    store = Store(image_cache / "images")
    assert store.images() == [] and not store.has_blob("sha256:" + hexd)


def test_unreachable_registry_is_one_line_error(image_cache):
    proc = run_cli("image", "pull", "127.0.0.1:9/lambda/none:1", env={"LAYERPACK_CACHE_DIR": str(image_cache)})
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith("layerpack: error: cannot reach registry 127.0.0.1:9: ")
    assert "Traceback" not in proc.stderr


def test_interrupted_pull_leaves_no_half_unpacked_root(registry, bullseye_image, image_cache):
    env = {**os.environ, "LAYERPACK_CACHE_DIR": str(image_cache), "NO_COLOR": "1"}
    roots = image_cache / "images" / "roots"
    proc = subprocess.Popen([*layerpack_command(), "image", "pull", bullseye_image], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # kill it in the middle of unpacking
        tmp = list(roots.glob(".tmp-*/rootfs/usr/lib")) if roots.is_dir() else []
        if tmp:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the pull ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(image_cache / "images")
    assert store.images() == []  # nothing half-done is visible
    assert store.lookup(bullseye_image, "x86_64") is None
    assert [p.name for p in roots.iterdir() if not p.name.startswith(".tmp-")] == []
    again = run_cli("image", "pull", bullseye_image, env={"LAYERPACK_CACHE_DIR": str(image_cache)}, timeout=300)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in roots.iterdir() if p.name.startswith(".tmp-")] == []  # leftover cleaned
    assert len(store.images()) == 1


def test_concurrent_pulls_of_one_image_unpack_it_once(registry, image_cache):
    digest = _small_image(registry, "lambda/race", b"race")
    env = {**os.environ, "LAYERPACK_CACHE_DIR": str(image_cache), "NO_COLOR": "1"}
    ref = f"{registry.address}/lambda/race:1"
    procs = [subprocess.Popen([*layerpack_command(), "image", "pull", ref], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    store = Store(image_cache / "images")
    assert [i.digest for i in store.images()] == [digest]
    roots = image_cache / "images" / "roots"
    assert sorted(p.name for p in roots.iterdir()) == [digest.split(":")[1]]  # no leftovers either


def test_anonymous_bearer_token_flow_of_a_token_auth_registry(tmp_path, image_cache):
    issuer = TokenIssuer(tmp_path)
    reg = Registry(tmp_path / "data", tmp_path, auth=issuer).start()
    try:
        assert requests.get(f"http://{reg.address}/v2/", timeout=5).status_code == 401  # it does demand tokens
        digest = _small_image(reg, "lambda/private", b"behind a token")  # the client's push takes the same flow
        proc = run_cli("image", "pull", f"{reg.address}/lambda/private:1",
                       env={"LAYERPACK_CACHE_DIR": str(image_cache)})
    finally:
        reg.stop()
        issuer.close()
    assert proc.returncode == 0, proc.stderr
    assert digest in proc.stdout
    pulls = [r for r in issuer.requests if r["query"].get("scope") == "repository:lambda/private:pull"]
    assert pulls and all(r["authorization"] is None for r in pulls)  # anonymous: no credentials sent
    assert all(r["query"].get("service") == TokenIssuer.SERVICE for r in issuer.requests)


def test_progress_bar_on_a_terminal_only(registry, tmp_path):
    layer = _tar([("usr/", "dir", b""), ("usr/share/", "dir", b""), ("usr/share/blob", "file", os.urandom(3 << 20))])
    push_image(registry, "lambda/bar", "1", [layer])
    ref = f"{registry.address}/lambda/bar:1"
    master, slave = os.openpty()
    env = {**os.environ, "LAYERPACK_CACHE_DIR": str(tmp_path / "tty"), "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([*layerpack_command(), "image", "pull", ref], env=env, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(60)
    os.close(master)
    assert proc.returncode == 0
    assert "━".encode() in seen and b"MB" in seen  # rich's bar with the byte count, drawn on the terminal
    piped = run_cli("image", "pull", ref, env={"LAYERPACK_CACHE_DIR": str(tmp_path / "pipe")})
    assert "━" not in piped.stderr and "downloading 2 blobs" in piped.stderr


def test_prune_removes_leftovers_and_unused_blobs_but_keeps_cached_images(registry, image_cache):
    digest = _small_image(registry, "lambda/prune", b"keep me")
    env = {"LAYERPACK_CACHE_DIR": str(image_cache)}
    assert run_cli("image", "pull", f"{registry.address}/lambda/prune:1", env=env).returncode == 0
    store = Store(image_cache / "images")
    leftover = store.roots / (".tmp-" + "0" * 64 + "-x")
    (leftover / "rootfs" / "usr").mkdir(parents=True)
    (leftover / "rootfs" / "usr").chmod(0o555)  # as an image would leave it
    unused = store.blobs / ("1" * 64)
    unused.write_bytes(b"not referenced")
    proc = run_cli("image", "prune", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 blobs, 1 leftovers" in proc.stdout
    assert not leftover.exists() and not unused.exists()
    [img] = store.images()
    assert img.digest == digest and (img.root / "usr/share/marker").read_bytes() == b"keep me"
    assert all(store.has_blob(d) for d in img.layers)
