"""`layerpack slim` on Debian's real Erlang/OTP 25 and Elixir: the slimmed copy still boots at another path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from packer.errors import SlimError
from packer.slim import beam, otp
from tests.conftest import require_tool, run_cli

OTP = Path("/usr/lib/erlang")
ELIXIR = Path("/usr/lib/elixir")
GOAL = 12_000_000  # kernel+stdlib+compiler+crypto, Attr kept, no gzip (measured floor: 7-9 MB)


def _fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for n in sorted(files):
            p = Path(dirpath, n)
            h.update(str(p.relative_to(root)).encode())
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
    return h.hexdigest()


def _copy_debian_otp(dst: Path) -> None:
    shutil.copytree(OTP, dst, symlinks=True)
    # Debian's erlang-doc turns doc/ into links into /usr/share/doc; recreate one (never to be followed)
    os.symlink("/usr/share/doc", dst / "lib" / next(p.name for p in (dst / "lib").glob("kernel-*")) / "doc")


def _du(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _bwrap_run(mounts: dict[str, Path], argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run argv with each host dir bound at its Lambda path (/opt is a fresh tmpfs)."""
    cmd = [require_tool("bwrap"), "--dev-bind", "/", "/", "--proc", "/proc", "--tmpfs", "/opt"]
    for target, src in mounts.items():
        cmd += ["--bind", str(src), target]
    return subprocess.run([*cmd, "env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def erlang(tmp_path_factory):
    """Debian OTP copied, then slimmed by the real CLI for /opt/erlang with crypto kept."""
    require_tool("erl")
    base = tmp_path_factory.mktemp("otp")
    src = base / "src"
    _copy_debian_otp(src)
    before = _fingerprint(src)
    out = base / "out"
    res = run_cli("slim", str(src), "--profile", "erlang", "--keep-app", "crypto", "--keep-app", "compiler",
                  "--mount-path", "/opt/erlang", "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    return {"src": src, "out": out, "doc": json.loads(res.stdout), "fingerprint_before": before}


def test_slimmed_otp_runs_hello_world_mounted_at_opt_erlang(erlang):
    res = _bwrap_run({"/opt/erlang": erlang["out"]}, [
        "/opt/erlang/bin/erl", "-noshell", "-eval",
        'io:format("hello from ~s~n", [code:root_dir()]), ok = crypto:start(), '
        '32 = byte_size(crypto:hash(sha256, "x")), {ok, m, _} = compile:forms([{attribute, 1, module, m}]), halt().'])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello from /opt/erlang"


def test_slimmed_kernel_stdlib_compiler_crypto_fits_the_goal(erlang):
    size = _du(erlang["out"])
    print(f"slimmed OTP (kernel+stdlib+compiler+crypto+erts): {size:,} bytes")
    assert size <= GOAL
    assert erlang["doc"]["result"]["bytes_after"] == size
    apps = sorted(p.name.rsplit("-", 1)[0] for p in (erlang["out"] / "lib").iterdir())
    assert apps == ["compiler", "crypto", "erts", "kernel", "stdlib"]


def test_the_plan_says_why_each_removed_app_was_removable(erlang):
    removed = erlang["doc"]["apps"]["removed"]
    assert "ssl" in removed and "not reachable" in removed["ssl"]
    assert "GUI/dev-tool" in removed["edoc"]
    assert erlang["doc"]["apps"]["kept"]["crypto"] == "--keep-app"
    assert erlang["doc"]["apps"]["kept"]["kernel"].startswith("profile erlang")
    by_rule = {r["id"]: r for r in erlang["doc"]["rules"]}
    assert by_rule["E9"]["saved"] > 3_000_000 and by_rule["E7"]["files"] > 300


def test_input_tree_is_untouched_and_doc_symlink_is_removed_not_followed(erlang):
    assert _fingerprint(erlang["src"]) == erlang["fingerprint_before"]
    kernel = next((erlang["out"] / "lib").glob("kernel-*"))
    assert not (kernel / "doc").exists() and not (kernel / "doc").is_symlink()
    codes = [f["code"] for f in erlang["doc"]["findings"]]
    assert "LP610" in codes
    assert not any(p.is_symlink() and os.readlink(p).startswith("/usr") for p in erlang["out"].rglob("*"))


def test_build_only_files_are_gone_and_vital_binaries_stay(erlang):
    out = erlang["out"]
    erts_bin = next(out.glob("erts-*/bin"))
    for gone in ("erlc", "typer", "erl_call", "yielding_c_fun", "run_erl"):
        assert not (erts_bin / gone).exists(), gone
    for vital in ("beam.smp", "erlexec", "erl_child_setup", "inet_gethost", "escript", "erl"):
        assert (erts_bin / vital).is_file(), vital
    assert (out / "bin" / "start.boot").is_file() and not (out / "bin" / "start.script").exists()
    assert list(out.glob("lib/*/ebin/*.app")) and not list(out.glob("lib/*/include"))
    assert os.access(erts_bin / "beam.smp", os.X_OK)


def test_stripped_beams_keep_attr_and_are_not_gzipped_by_default(erlang):
    lists = next(erlang["out"].glob("lib/stdlib-*/ebin/lists.beam")).read_bytes()
    assert lists[:4] == b"FOR1"
    ids = [c.id for c in beam.parse(lists)]
    assert ids[0] == "Attr" and "Dbgi" not in ids


def test_mount_path_is_written_into_the_debian_erl_scripts(erlang):
    for script in ("bin/erl", next(erlang["out"].glob("erts-*/bin/erl")).relative_to(erlang["out"]).as_posix()):
        text = (erlang["out"] / script).read_text()
        assert "ROOTDIR=/opt/erlang" in text and "/usr/lib/erlang" not in text
        assert os.access(erlang["out"] / script, os.X_OK)


def test_copy_rewritten_for_its_own_path_runs_without_a_sandbox(tmp_path):
    require_tool("erl")
    src = tmp_path / "otp"
    shutil.copytree(OTP, src, symlinks=True)
    out = tmp_path / "somewhere" / "else"
    res = run_cli("slim", str(src), "--profile", "erlang", "--mount-path", str(out), "--out", str(out), "--gzip-beams")
    assert res.returncode == 0, res.stderr
    assert "ROOTDIR" in res.stdout or "LP608" in res.stdout
    run = subprocess.run([str(out / "bin" / "erl"), "-noshell", "-eval", 'io:format("~s~n", [code:root_dir()]), halt().'],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    assert next(out.glob("lib/stdlib-*/ebin/lists.beam")).read_bytes()[:2] == b"\x1f\x8b"  # --gzip-beams


@pytest.fixture(scope="module")
def elixir_layer(tmp_path_factory):
    require_tool("erl")
    if not (ELIXIR / "lib" / "elixir" / "ebin" / "elixir.app").is_file():
        pytest.skip("Debian elixir not installed (CI installs it)")
    base = tmp_path_factory.mktemp("ex")
    layer = base / "layer"
    layer.mkdir()
    _copy_debian_otp(layer / "erlang")
    shutil.copytree(ELIXIR, layer / "elixir", symlinks=True)
    out = base / "out"
    res = run_cli("slim", str(layer), "--profile", "elixir", "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    return {"out": out, "doc": json.loads(res.stdout)}


def test_slimmed_elixir_layer_runs_a_one_liner_at_opt(elixir_layer):
    script = ('IO.puts(String.upcase("hello")); require Logger; Logger.info("logged"); '
              'try do raise "boom" rescue e -> IO.puts(Exception.format(:error, e, __STACKTRACE__)) end')
    res = _bwrap_run({"/opt": elixir_layer["out"]}, ["/opt/elixir/bin/elixir", "-e", script],
                     env={"PATH": "/opt/erlang/bin:/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr + res.stdout
    assert "HELLO" in res.stdout and "boom" in res.stdout
    assert ".ex:" in res.stdout  # stack traces keep file:line (Line chunk kept)


def test_elixir_profile_drops_mix_ex_unit_iex_and_keeps_elixir_logger_compiler(elixir_layer):
    apps = elixir_layer["doc"]["apps"]
    assert {"mix", "ex_unit", "iex"} <= set(apps["removed"])
    assert {"elixir", "logger", "compiler", "kernel", "stdlib"} <= set(apps["kept"])
    assert not (elixir_layer["out"] / "elixir" / "lib" / "mix").exists()
    assert (elixir_layer["out"] / "erlang" / "bin" / "erl").read_text().count("ROOTDIR=/opt/erlang") >= 1


# -- the application graph, on real .app files ----------------------------------------------------


def _graph() -> otp.Graph:
    dirs = [p.relative_to(OTP).as_posix() for p in OTP.rglob("*") if p.is_dir() and not p.is_symlink()]
    return otp.discover(OTP, dirs)


def test_closure_follows_applications_not_runtime_dependencies():
    if not OTP.is_dir():
        pytest.skip("Debian erlang not installed")
    g = _graph()
    cl = otp.closure(g.apps, {"kernel": "root", "stdlib": "root", "ssl": "root"})
    assert set(cl.kept) == {"asn1", "crypto", "kernel", "public_key", "ssl", "stdlib"}
    assert "mnesia" in cl.removed and "inets" in cl.removed  # runtime_dependencies only
    assert g.roots[0].otp_release == 25 and g.roots[0].kind == "otp"


def test_user_release_apps_become_roots(tmp_path):
    """A relx/mix-style release: its .rel names the apps to keep (OTP's own start_*.rel do not count)."""
    if not OTP.is_dir():
        pytest.skip("Debian erlang not installed")
    rel = tmp_path / "rel"
    shutil.copytree(OTP, rel, symlinks=True)
    app = rel / "lib" / "myapp-1.0" / "ebin"
    app.mkdir(parents=True)
    (app / "myapp.app").write_text('{application, myapp, [{vsn, "1.0"}, {applications, [kernel, stdlib, inets]}]}.\n')
    (rel / "releases" / "1.0").mkdir()
    (rel / "releases" / "1.0" / "myapp.rel").write_text(
        '{release, {"myapp", "1.0"}, {erts, "13.1.5"}, [{kernel, "8.5.3"}, {stdlib, "4.2"}, {sasl, "4.2"}, {myapp, "1.0"}]}.\n')
    from packer.slim import load, plan, SlimOptions

    p = plan(rel, load("erlang"), SlimOptions())
    assert {"myapp", "inets", "sasl"} <= set(p.apps_kept)
    assert p.apps_kept["myapp"].startswith("in release")
    assert "ssl" in p.apps_removed


@pytest.mark.parametrize("text, message", [
    ('{application, a, [{vsn, "1"}]}', "missing '.'"),
    ("{application, a, [{vsn, \"1\"}}.", "expected ','"),
    ("{application, a, @}.", "cannot read Erlang term"),
    ("{foo, a}.", "not an application resource file"),
])
def test_malformed_app_file_is_an_error_naming_the_file(text, message):
    with pytest.raises(SlimError, match=message) as exc:
        otp.read_app(text, "lib/a/ebin/a.app", "lib/a", None)
    assert "lib/a/ebin/a.app" in str(exc.value)


def test_runtime_computed_rootdir_is_left_alone():
    text = 'ROOTDIR="/usr/local/lib/erlang"\nif x; then\n  ROOTDIR="$dyn_rootdir"\nfi\n'
    new, old = otp.rewrite_rootdir(text, "/opt/erlang")
    assert old == {"/usr/local/lib/erlang"}
    assert 'ROOTDIR="/opt/erlang"' in new and 'ROOTDIR="$dyn_rootdir"' in new
