"""The sandbox: only the runtime's libraries and commands, layers merged at /opt, Lambda's search order."""

from __future__ import annotations

import json
import os
import posixpath
import zipfile
from pathlib import Path

import pytest

from packer import runtime
from packer.emulator import rootfs, sandbox, staging
from packer.emulator.invoke import FunctionConfig, LocalFunction
from tests.emulator_support import (SHELL_LOOP, brotli_layer, emu_cache, sandbox_ready,  # noqa: F401
                                   script_layer)

RT = runtime.load("provided.al2023", "x86_64")


@pytest.fixture(scope="module")
def plan():
    if os.uname().machine != "x86_64":
        pytest.skip("the runtime data used here is x86_64")
    return rootfs.plan_root(RT)


def run_shell(cache: Path, tmp_path: Path, command: str, *layers: Path, function: Path | None = None, **env):
    layer = script_layer(tmp_path / "shell-layer", SHELL_LOOP)
    cfg = FunctionConfig(layers=[layer, *layers], function=function, env={"HANDLER_CMD": command, **env},
                         cache=cache, timeout=20)
    with LocalFunction(cfg) as fn:
        result = fn.invoke(b"{}")
    assert result.ok, result.payload
    return result.payload.decode()


# -- the plan (pure) ---------------------------------------------------------------------------
def test_plan_puts_only_runtime_sonames_in_usr_lib64(plan):
    runtime_names = {posixpath.basename(p) for p in RT.libs.entries}
    dests = {lib.dest for lib in plan.libs}
    assert all(d.startswith("/usr/lib64/") for d in dests)
    assert {posixpath.basename(d) for d in dests} <= runtime_names
    assert "/usr/lib64/libc.so.6" in dests and "/usr/lib64/ld-linux-x86-64.so.2" in dests
    assert not any("ldap" in d or "brotli" in d for d in dests)


def test_plan_gives_debian_libcurl_its_extra_libraries_privately(plan):
    curl = next(lib for lib in plan.libs if lib.dest == "/usr/lib64/libcurl.so.4")
    assert curl.patch  # Debian's libcurl needs libldap etc., which AL2023 lacks
    private = dict(plan.private_libs)
    assert any(name.startswith("libldap") for name in private)
    assert "libbrotlidec.so.1" in private  # visible to the commands only, never in /usr/lib64


def test_plan_maps_sh_to_bash_like_amazon_linux(plan):
    sh = next(c for c in plan.commands if c.dest == "/usr/bin/sh")
    bash = next(c for c in plan.commands if c.dest == "/usr/bin/bash")
    assert sh.host == bash.host


def test_bwrap_plan_binds_no_host_library_directory(tmp_path):
    spec = sandbox.SandboxSpec(root=tmp_path / "root", opt=tmp_path / "opt", task=None,
                               command=("/opt/bootstrap",), env={"A": "1"})
    argv = sandbox.bwrap_argv(spec)
    pairs = {argv[i + 2]: argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"}
    assert pairs["/opt"] == str(tmp_path / "opt")
    assert pairs["/usr"] == str(tmp_path / "root" / "usr")
    assert not any(src.startswith(("/usr/lib", "/lib")) for src in pairs.values())
    assert "--clearenv" in argv and argv[argv.index("--setenv") + 1:argv.index("--setenv") + 3] == ["A", "1"]
    assert argv[-2:] == ["--", "/opt/bootstrap"] and ["--dir", "/var/task"] == argv[argv.index("/var/task") - 1:argv.index("/var/task") + 1]


def test_arm64_runtime_on_x86_host_is_refused_clearly():
    if os.uname().machine != "x86_64":
        pytest.skip("x86_64 host only")
    from packer.errors import EmulatorError

    with pytest.raises(EmulatorError, match="cannot run a arm64 runtime"):
        rootfs.plan_root(runtime.load("provided.al2023", "arm64"))


# -- staging and bootstrap search ------------------------------------------------------------------
def test_later_layer_wins_when_merging(tmp_path):
    a = script_layer(tmp_path / "a", "#!/bin/sh\n", data__v="A", only_a="a")
    b = script_layer(tmp_path / "b", "#!/bin/sh\necho b\n", data__v="B")
    merged, _ = staging.stage([a, b], tmp_path / "merged")
    assert (merged / "data" / "v").read_text() == "B"
    assert (merged / "only_a").read_text() == "a"
    assert (merged / "bootstrap").read_text() == "#!/bin/sh\necho b\n"
    assert (a / "data" / "v").read_text() == "A"  # inputs untouched


def test_zip_layer_keeps_modes_so_a_lost_exec_bit_is_an_invalid_entrypoint(tmp_path):
    z = tmp_path / "layer.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100644 << 16
        zf.writestr(info, "#!/bin/sh\n")
    merged, _ = staging.stage([z], tmp_path / "opt")
    found = staging.find_bootstrap(merged, None, tmp_path)
    assert found.path is None and "not executable (mode 0644)" in found.detail


def test_function_bootstrap_is_preferred_over_the_layers(tmp_path):
    layer = script_layer(tmp_path / "layer", "#!/bin/sh\n")
    fn = script_layer(tmp_path / "fn", "#!/bin/sh\n")
    assert staging.find_bootstrap(layer, fn, tmp_path).path == "/var/task/bootstrap"
    assert staging.find_bootstrap(layer, None, tmp_path).path == "/opt/bootstrap"


def test_bootstrap_link_is_followed_across_the_opt_mount(tmp_path):
    layer = script_layer(tmp_path / "layer", "#!/bin/sh\n")
    (layer / "bootstrap").rename(layer / "real")
    (layer / "bootstrap").symlink_to("/opt/real")
    assert staging.find_bootstrap(layer, None, tmp_path).path == "/opt/bootstrap"
    (layer / "real").unlink()
    found = staging.find_bootstrap(layer, None, tmp_path)
    assert found.path is None and "/opt/real, which does not exist" in found.detail


def test_bootstrap_only_owner_executable_is_refused(tmp_path):
    layer = script_layer(tmp_path / "layer", "#!/bin/sh\n")
    (layer / "bootstrap").chmod(0o744)
    found = staging.find_bootstrap(layer, None, tmp_path)
    assert found.path is None and "not executable by others" in found.detail


# -- inside the sandbox --------------------------------------------------------------------------
def test_program_sees_only_the_runtime_library_set(sandbox_ready, emu_cache, tmp_path):
    out = run_shell(emu_cache, tmp_path,
                    "ls /usr/lib/x86_64-linux-gnu >/dev/null 2>&1 && echo HOSTLIBS; "
                    "ls /usr/lib64 | grep -c -e ldap -e brotli -e rtmp; ls /lib64/libc.so.6 /lib64/ld-linux-x86-64.so.2")
    assert "HOSTLIBS" not in out
    lines = out.split()
    assert lines[0] == "0"
    assert "/lib64/libc.so.6" in lines


def test_runtime_commands_work_with_their_private_libraries(sandbox_ready, emu_cache, tmp_path):
    out = run_shell(emu_cache, tmp_path,
                    "curl --version | head -1; echo x | sed s/x/sed-ok/; printf 'a.b' | cut -d. -f2; "
                    "echo $TZ $LANG $LAMBDA_TASK_ROOT $AWS_LAMBDA_FUNCTION_MEMORY_SIZE; pwd; "
                    "touch /tmp/w && echo tmp-writable; touch /opt/x 2>/dev/null || echo opt-readonly")
    assert out.startswith("curl ")
    for expected in ("sed-ok", "\nb\n", ":/etc/localtime en_US.UTF-8 /var/task 128", "/var/task",
                     "tmp-writable", "opt-readonly"):
        assert expected in out


def test_two_layers_merged_at_opt_later_one_wins(sandbox_ready, emu_cache, tmp_path):
    a = script_layer(tmp_path / "a", "#!/bin/sh\nexit 9\n", data__v="from-a", only_a="a")
    b = script_layer(tmp_path / "b", "#!/bin/sh\nexit 9\n", data__v="from-b")
    # a's and b's bootstraps are replaced by the shell layer's, which comes last
    shell = script_layer(tmp_path / "shell", SHELL_LOOP)
    cfg = FunctionConfig(layers=[a, b, shell], env={"HANDLER_CMD": "cat /opt/data/v; echo; cat /opt/only_a"},
                         cache=emu_cache, timeout=20)
    with LocalFunction(cfg) as fn:
        result = fn.invoke(b"{}")
    assert result.ok, result.payload
    assert result.payload.decode().split() == ["from-b", "a"]


def test_library_missing_from_the_runtime_fails_in_the_sandbox(sandbox_ready, emu_cache, brotli_layer):
    with LocalFunction(FunctionConfig(layers=[brotli_layer], cache=emu_cache)) as fn:
        result = fn.invoke(b"{}")
    assert result.error_type == "Runtime.ExitError"
    codes = {f.code for f in result.findings}
    assert {"LP803", "LP804"} <= codes
    assert any("libbrotlidec.so.1" in f.message for f in result.findings if f.code == "LP804")


def test_same_bootstrap_runs_when_the_library_is_in_the_layer_lib_dir(sandbox_ready, emu_cache, brotli_layer,
                                                                      tmp_path):
    # What vendoring produces, done by hand: the library (and its own needs) in /opt/lib.
    layer = tmp_path / "layer"
    (layer / "lib").mkdir(parents=True)
    (layer / "bootstrap").write_bytes((brotli_layer / "bootstrap").read_bytes())
    (layer / "bootstrap").chmod(0o755)
    from packer.elf.hostlibs import HostLibraries

    hl = HostLibraries("x86_64", 64)
    for name in ("libbrotlidec.so.1", "libbrotlicommon.so.1"):
        (layer / "lib" / name).write_bytes(hl.find(name).real.read_bytes())
    with LocalFunction(FunctionConfig(layers=[layer], cache=emu_cache)) as fn:
        result = fn.invoke(b'{"x": 1}')
    assert result.ok, result.payload
    assert json.loads(result.payload)["brotli"] > 0
