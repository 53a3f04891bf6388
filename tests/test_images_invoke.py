"""`invoke --image` / `--rootfs`: the image's own userland judges the run (Debian 11, glibc 2.31).

The image comes from a real registry (tests.images_support); the bootstrap runs in bwrap on the
image's root, with its loader, bash and curl, as sbx_user1051 (uid 993) — so a program built
against the host's glibc 2.36 fails to load exactly as it would on a runtime with an older glibc.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from packer.images.store import Store
from packer.images.reference import parse
from tests.conftest import layerpack_command, run_cli
from tests.emulator_support import (EMU, SHELL_LOOP, compile_bootstrap, emu_cache, sandbox_ready,  # noqa: F401
                                    script_layer)
from tests.images_support import Registry, bullseye_image, bullseye_tar, registry  # noqa: F401


@pytest.fixture(scope="module")
def pulled(tmp_path_factory, bullseye_image, sandbox_ready) -> Path:
    """A LAYERPACK_CACHE_DIR holding the Debian 11 image, pulled once for this module."""
    cache = tmp_path_factory.mktemp("lp-cache")
    proc = run_cli("image", "pull", bullseye_image, env={"LAYERPACK_CACHE_DIR": str(cache)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return cache


def invoke(cache: Path, *args: str, event: str = '{"n": 1}') -> subprocess.CompletedProcess:
    return run_cli("invoke", *args, "--event", "-", env={"LAYERPACK_CACHE_DIR": str(cache)}, input=event,
                   timeout=180)


def test_aws_bash_curl_bootstrap_answers_with_the_images_own_bash_curl_and_glibc(pulled, bullseye_image, tmp_path):
    layer, fn = tmp_path / "layer", tmp_path / "fn"
    layer.mkdir()
    fn.mkdir()
    # AWS's tutorial bootstrap says #!/bin/sh because Amazon Linux's sh is bash; Debian's is dash.
    text = (EMU / "bash-example" / "bootstrap").read_text().replace("#!/bin/sh", "#!/bin/bash", 1)
    (layer / "bootstrap").write_text(text)
    (layer / "bootstrap").chmod(0o755)
    (fn / "function.sh").write_text(
        'function handler () {\n'
        '  echo "$(curl --version | head -1 | cut -d" " -f1-2)|$(getconf GNU_LIBC_VERSION)'
        '|$(id -u):$(id -g)|$FROM_IMAGE_CONFIG:$PATH|$1"\n}\n')
    proc = invoke(pulled, str(layer), "--function", str(fn), "--image", bullseye_image)
    assert proc.returncode == 0, proc.stderr
    curl, loader, ids, env, event = proc.stdout.strip().split("|")
    assert curl == "curl 7.74.0"  # Debian 11's curl, not the host's
    assert loader == "glibc 2.31"  # Debian 11's glibc
    assert ids == "993:990"  # sbx_user1051, as on Lambda
    assert env == "yes:/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"  # image config Env + Lambda's PATH
    assert json.loads(event) == {"n": 1}
    assert "layerpack sandbox on image" in proc.stderr
    assert "LP823" not in proc.stderr  # the host's glibc is not standing in


def test_program_needing_newer_glibc_fails_at_load_with_the_images_loader_message(pulled, bullseye_image, tmp_path):
    boot = compile_bootstrap(tmp_path / "layer" / "bootstrap")  # host gcc + glibc 2.36: needs GLIBC_2.34
    proc = invoke(pulled, str(boot.parent), "--image", bullseye_image)
    assert proc.returncode == 1
    assert "Runtime.ExitError" in proc.stdout
    assert "/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by /opt/bootstrap)" \
        in proc.stderr
    [lp803] = [line for line in proc.stderr.splitlines() if line.startswith("LP803 error")]
    assert "bootstrap exited before calling /next (exit status 1); last output: " in lp803
    assert "GLIBC_2.34' not found" in lp803


def test_bundle_libc_makes_it_start_on_the_older_glibc(pulled, bullseye_image, tmp_path):
    boot = compile_bootstrap(tmp_path / "layer" / "bootstrap")
    out = tmp_path / "vendored"
    vend = run_cli("vendor", str(boot.parent), "--out", str(out), "--bundle-libc")
    assert vend.returncode == 0, vend.stderr
    proc = invoke(pulled, str(out), "--image", bullseye_image)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["echo"] == {"n": 1}  # the C runtime answers with the event echoed


def test_a_file_only_root_can_read_fails_as_on_lambda(pulled, bullseye_image, emu_cache, tmp_path):
    layer = script_layer(tmp_path / "layer", SHELL_LOOP, secret="s3cret")
    (layer / "secret").chmod(0o600)
    cmd = "HANDLER_CMD=id -u; cat /opt/secret >/dev/null 2>&1 && echo READ || echo DENIED"
    on_image = invoke(pulled, str(layer), "--image", bullseye_image, "--env", cmd)
    assert on_image.returncode == 0, on_image.stderr
    assert on_image.stdout.split() == ["993", "DENIED"]
    on_host_files = invoke(emu_cache, str(layer), "--env", cmd)  # today's host-copies view: same verdict
    assert on_host_files.returncode == 0, on_host_files.stderr
    assert on_host_files.stdout.split() == ["993", "DENIED"]


def test_cached_image_serves_with_the_registry_stopped(registry, bullseye_image, tmp_path):
    own = Registry(registry.data, tmp_path).start()  # same storage, its own port: ours to stop
    ref = bullseye_image.replace(registry.address, own.address)
    cache = tmp_path / "cache"
    try:
        assert run_cli("image", "pull", ref, env={"LAYERPACK_CACHE_DIR": str(cache)}, timeout=600).returncode == 0
    finally:
        own.stop()
    layer = script_layer(tmp_path / "layer", SHELL_LOOP)
    proc = invoke(cache, str(layer), "--image", ref, "--env", "HANDLER_CMD=echo cached")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cached"
    assert "pulling" not in proc.stderr
    listed = json.loads(run_cli("image", "list", "--json", env={"LAYERPACK_CACHE_DIR": str(cache)}).stdout)
    assert [i["refs"] for i in listed["images"]] == [[ref]]


def test_rootfs_directory_and_docker_export_tar(pulled, bullseye_image, bullseye_tar, tmp_path):
    img = Store(pulled / "images").lookup(str(parse(bullseye_image)), "x86_64")
    layer = script_layer(tmp_path / "layer", SHELL_LOOP)
    cmd = "HANDLER_CMD=cat /etc/debian_version"
    from_dir = invoke(pulled, str(layer), "--rootfs", str(img.root), "--env", cmd)
    assert from_dir.returncode == 0, from_dir.stderr
    assert from_dir.stdout.strip().startswith("11.")
    from_tar = invoke(tmp_path / "cache", str(layer), "--rootfs", str(bullseye_tar), "--env", cmd)
    assert from_tar.returncode == 0, from_tar.stderr
    assert from_tar.stdout.strip() == from_dir.stdout.strip()


def test_default_uses_the_runtimes_cached_image_and_otherwise_says_how_to_get_it(pulled, bullseye_image,
                                                                                emu_cache, tmp_path):
    layer = script_layer(tmp_path / "layer", SHELL_LOOP)
    cmd = "HANDLER_CMD=echo ok"
    host = invoke(emu_cache, str(layer), "--env", cmd)
    assert host.returncode == 0, host.stderr
    assert "for the exact userland: layerpack image pull provided.al2023" in host.stderr
    store = Store(pulled / "images")
    img = store.lookup(str(parse(bullseye_image)), "x86_64")
    runtime_ref = str(parse("provided.al2023"))
    copy = tmp_path / "cache"
    shutil.copytree(pulled / "images" / "refs", copy / "images" / "refs")
    (copy / "images" / "roots").mkdir()
    (copy / "images" / "roots" / img.digest.split(":")[1]).symlink_to(img.root.parent)
    Store(copy / "images").remember(runtime_ref, "x86_64", img.digest)  # as if provided.al2023 were pulled
    cached = invoke(copy, str(layer), "--env", cmd)
    assert cached.returncode == 0, cached.stderr
    assert "layerpack sandbox on image" in cached.stderr and "image pull" not in cached.stderr
    forced = invoke(copy, str(layer), "--env", cmd, "--host-files")
    assert "layerpack sandbox)" in forced.stderr


def test_library_missing_from_the_image_is_lp804(pulled, bullseye_image, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "lib.c").write_text("int notthere(void) { return 1; }\n")
    (src / "main.c").write_text("int notthere(void);\nint main(void) { return notthere(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(src / "libnotthere.so.1"), "-Wl,-soname,libnotthere.so.1",
                    str(src / "lib.c")], check=True)
    layer = tmp_path / "layer"
    layer.mkdir()
    subprocess.run(["gcc", "-o", str(layer / "bootstrap"), str(src / "main.c"), f"-L{src}", "-l:libnotthere.so.1"],
                   check=True)
    proc = invoke(pulled, str(layer), "--image", bullseye_image)
    assert proc.returncode == 1
    assert "error while loading shared libraries: libnotthere.so.1: cannot open shared object file" in proc.stderr
    assert any(line.startswith("LP804 error") and "libnotthere.so.1" in line for line in proc.stderr.splitlines())


@pytest.mark.parametrize("args, message", [
    (("--image", "ubuntu"), "image 'ubuntu': not a runtime with a base image"),
    (("--image", "127.0.0.1:9/x:1", "--rootfs", "/"), "--image and --rootfs both name a root file system"),
    (("--rootfs", "/nonexistent/root"), "--rootfs /nonexistent/root: no such directory or tar file"),
    (("--image", "127.0.0.1:9/x:1", "--no-sandbox"), "--image/--rootfs need the sandbox"),
])
def test_bad_image_options_are_one_line_errors(args, message, sandbox_ready, tmp_path):
    layer = script_layer(tmp_path / "layer", SHELL_LOOP)
    proc = invoke(tmp_path / "cache", str(layer), *args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"layerpack: error: {message}"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_keeps_a_function_warm_on_the_image(pulled, bullseye_image, tmp_path):
    import os
    import urllib.request

    layer = script_layer(tmp_path / "layer", SHELL_LOOP)
    cmd = [*layerpack_command(), "run", str(layer), "--port", "0", "--image", bullseye_image,
           "--env", "HANDLER_CMD=cat /etc/debian_version"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LAYERPACK_CACHE_DIR": str(pulled), "NO_COLOR": "1"})
    try:
        url = proc.stdout.readline().strip()
        answers = []
        for _ in range(2):
            with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=60) as r:
                answers.append(r.read().decode().strip())
    finally:
        proc.terminate()
        proc.wait(20)
    assert answers[0].startswith("11.") and answers[0] == answers[1]
    assert "layerpack sandbox on image" in proc.stderr.read()
