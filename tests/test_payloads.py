"""Payloads a package unpacks at run time (packer/payloads.py), judged by things we did not write.

The prime case is the real @sparticuz/chromium from npm (pinned, cached under
~/.cache/layerpack-test/npm, never committed): its payloads are unpacked with Debian's `brotli` and
`tar`, `readelf -h` and `file` say what the Chromium binary is, and the real ld.so runs that binary
with `--version` in the Lambda-shaped bubblewrap root of tests/lambda_ldso.py, with and without the
library directory the package puts on LD_LIBRARY_PATH. analyze must agree with each of them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from packer import runtime
from packer.analyze import analyze
from packer.tree import open_tree
from tests.conftest import require_tool, run_cli
from tests.lambda_ldso import lambda_root, lib, on_lambda, program  # noqa: F401  (lambda_root: a fixture)

CHROMIUM = "@sparticuz/chromium"
PINNED = "153.0.0"
NPM_CACHE = Path(os.environ.get("LAYERPACK_NPM_CACHE") or Path.home() / ".cache" / "layerpack-test" / "npm")
PAYLOAD_CODES = ("LP114", "LP115", "LP308")
PKG = "nodejs/node_modules/@sparticuz/chromium"
HOST_ELF = Path("/bin/true").resolve()  # a small program of this machine (x86_64 or arm64)


def _need_brotli() -> None:
    """Python's brotli >= 1.2 (a dependency of layerpack on CI's machines)."""
    from packer import payloads

    if payloads.BROTLI_PROBLEM:
        if os.environ.get("CI"):
            pytest.fail(payloads.BROTLI_PROBLEM)
        pytest.skip(payloads.BROTLI_PROBLEM)


def _sh(script: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-ec", script], capture_output=True, text=True, timeout=300, **kw)


def _payload(findings) -> list:
    return [f for f in findings if f.code in PAYLOAD_CODES]


@pytest.fixture(scope="module")
def chromium_tgz() -> Path:
    """`npm pack` of the pinned release: the tarball npm installs, downloaded once."""
    tgz = NPM_CACHE / f"sparticuz-chromium-{PINNED}.tgz"
    if not tgz.is_file():
        require_tool("npm")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(dir=NPM_CACHE))  # npm verifies the registry's integrity hash
        subprocess.run(["npm", "pack", f"{CHROMIUM}@{PINNED}", "--pack-destination", str(part)],
                       check=True, capture_output=True, timeout=600)
        os.replace(part / tgz.name, tgz)  # a cut download never lands under the final name
        shutil.rmtree(part)
    return tgz


@pytest.fixture(scope="module")
def chromium_layer(chromium_tgz: Path, tmp_path_factory) -> Path:
    """A node layer holding the package where npm puts it (nodejs/node_modules/@sparticuz/chromium)."""
    layer = tmp_path_factory.mktemp("chromium-layer")
    pkg = layer / PKG
    pkg.mkdir(parents=True)
    subprocess.run(["tar", "xzf", str(chromium_tgz), "--strip-components=1", "-C", str(pkg)], check=True)
    assert (pkg / "bin" / "chromium.br").is_file() and (pkg / "bin" / "al2023.tar.br").is_file()
    return layer


@pytest.fixture(scope="module")
def unpacked(chromium_layer: Path, tmp_path_factory) -> Path:
    """The payloads as the package's loader lays them out in /tmp, unpacked by Debian's brotli and tar."""
    require_tool("brotli")
    out = tmp_path_factory.mktemp("chromium-tmp")
    bin_ = chromium_layer / PKG / "bin"
    (out / "al2023").mkdir()
    _sh(f'brotli -d -c "{bin_}/chromium.br" > "{out}/chromium"; chmod 755 "{out}/chromium"; '
        f'brotli -d -c "{bin_}/al2023.tar.br" | tar x -C "{out}/al2023"').check_returncode()
    return out


def _machine(path: Path) -> str:
    require_tool("readelf")
    text = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("Machine:"))


def test_real_tools_see_an_x86_64_chromium(unpacked: Path) -> None:
    assert _machine(unpacked / "chromium") == "Advanced Micro Devices X86-64"
    require_tool("file")
    said = subprocess.run(["file", "-b", str(unpacked / "chromium")], capture_output=True, text=True, check=True).stdout
    assert "ELF 64-bit" in said and "x86-64" in said


def _llp(*first: str) -> dict[str, str]:
    return {"LD_LIBRARY_PATH": ":".join((*first, *runtime.load("nodejs22.x").ld_library_path))}


def test_x86_64_layer_chromium_runs_and_analyze_finds_no_payload_error(chromium_layer: Path, unpacked: Path,
                                                                     lambda_root: Path) -> None:
    """On nodejs22.x the package puts /tmp/al2023/lib first on LD_LIBRARY_PATH. The sandbox mounts
    the unpacked files at /opt instead of /tmp (Chromium has no RPATH: only the directory named on
    LD_LIBRARY_PATH matters), over the runtime's libraries and nothing else."""
    _need_brotli()
    ran = on_lambda(lambda_root, ("/opt/chromium", "--version"), opt=unpacked, env=_llp("/opt/al2023/lib"))
    assert ran.ok and ran.out.startswith("Chromium "), ran
    report = analyze(chromium_layer, runtime="nodejs22.x", arch="x86_64")
    assert _payload(report.findings) == []
    assert report.errors == 0


def test_without_the_al2023_directory_chromium_cannot_start_and_analyze_says_which_library(
        chromium_layer: Path, unpacked: Path, lambda_root: Path) -> None:
    """On provided.al2023 AWS_EXECUTION_ENV names no node runtime: the package neither unpacks
    al2023.tar.br nor sets the library path, and the real loader stops at the first missing library."""
    _need_brotli()
    ran = on_lambda(lambda_root, ("/opt/chromium", "--version"), opt=unpacked)
    assert ran.rc == 127 and "libnspr4.so: cannot open shared object file" in ran.err, ran
    report = analyze(chromium_layer, runtime="provided.al2023", arch="x86_64")
    missing = [f for f in report.findings if f.code == "LP114"]
    assert {f.data["library"] for f in missing} == {"libnspr4.so", "libnss3.so", "libnssutil3.so", "libexpat.so.1"}
    assert all(f.path == f"{PKG}/bin/chromium.br" and "bin/chromium.br → chromium needs" in f.message for f in missing)
    assert "nodejs22.x" in missing[0].hint and "/tmp/al2023/lib" in missing[0].hint


def test_arm64_analysis_of_the_same_package_reports_lp308_for_chromium(chromium_layer: Path, unpacked: Path) -> None:
    _need_brotli()
    assert _machine(unpacked / "chromium") != "AArch64"
    r = run_cli("analyze", str(chromium_layer), "--runtime", "nodejs22.x", "--arch", "arm64", "--json")
    assert r.returncode == 1, r.stderr
    found = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "LP308"]
    chromium = [f for f in found if f["path"] == f"{PKG}/bin/chromium.br"]
    assert len(chromium) == 1 and "bin/chromium.br → chromium is x86_64" in chromium[0]["message"]
    assert {f["path"].rsplit("/", 1)[1] for f in found} == {"chromium.br", "al2023.tar.br", "swiftshader.tar.br"}
    assert not [f for f in json.loads(r.stdout)["findings"] if f["code"] == "LP114"]  # wrong arch: not searched


# -- a hand-made payload in a node package: the general case (unknown loader) ----------------------------
def _tool(tmp: Path, with_lib: bool, compression: str = "z") -> Path:
    """tool.tar.gz holding a host program that needs libv.so.1 through RPATH $ORIGIN/lib, with or
    without that library next to it."""
    src = tmp / ("with" if with_lib else "without")
    lib(src / "lib" / "libv.so.1", "payload")
    program(src / "tool", src / "lib", rpath="$ORIGIN/lib")
    if not with_lib:
        shutil.rmtree(src / "lib")
    pkg = tmp / f"layer-{src.name}" / "nodejs" / "node_modules" / "handmade"
    (pkg / "vendor").mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "handmade", "version": "1.0.0"}\n')
    name = "tool.tar.gz" if compression == "z" else "tool.tar.xz"
    subprocess.run(["tar", f"c{compression}f", str(pkg / "vendor" / name), "-C", str(src), "."], check=True)
    return pkg.parents[2]


@pytest.mark.parametrize("with_lib, compression", [(True, "z"), (False, "z"), (True, "J")])
def test_hand_made_tar_in_a_node_package_is_judged_like_the_real_loader(tmp_path: Path, lambda_root: Path,
                                                                       with_lib: bool, compression: str) -> None:
    require_tool("gcc")
    layer = _tool(tmp_path, with_lib, compression)
    archive = "tool.tar.gz" if compression == "z" else "tool.tar.xz"
    out = tmp_path / "unpacked"
    out.mkdir()
    subprocess.run(["tar", "xf", str(layer / "nodejs/node_modules/handmade/vendor" / archive), "-C", str(out)], check=True)
    ran = on_lambda(lambda_root, ("/opt/tool",), opt=out)
    report = analyze(layer, runtime="provided.al2023", arch="x86_64")
    missing = [f for f in report.findings if f.code == "LP114"]
    unverified = [f for f in report.findings if f.code == "LP115"]
    assert len(unverified) == 1 and "unknown loader" in unverified[0].message
    if with_lib:
        assert ran.ok and ran.out == "payload", ran
        assert missing == []
    else:
        assert ran.rc == 127 and "libv.so.1" in ran.err, ran
        assert [(f.data["library"], f.data["member"]) for f in missing] == [("libv.so.1", "tool")]
        assert f"vendor/{archive} → tool needs libv.so.1" in missing[0].message
    arm = analyze(layer, runtime="provided.al2023", arch="arm64")
    wrong = [f for f in arm.findings if f.code == "LP308"]
    assert len(wrong) == 1 and wrong[0].path == f"nodejs/node_modules/handmade/vendor/{archive}"
    assert f"vendor/{archive} → tool" in wrong[0].message and _machine(out / "tool") == "Advanced Micro Devices X86-64"


# -- archives layerpack cannot read ------------------------------------------------------------------------
def _node_layer(tmp: Path, name: str, data: bytes) -> Path:
    pkg = tmp / "layer" / "nodejs" / "node_modules" / "pkg"
    (pkg / "bin").mkdir(parents=True, exist_ok=True)
    (pkg / "package.json").write_text('{"name": "pkg"}\n')
    (pkg / "bin" / name).write_bytes(data)
    return tmp / "layer"


def _brotli_cli(data: bytes, *args: str) -> bytes:
    require_tool("brotli")
    return subprocess.run(["brotli", "-c", *args], input=data, capture_output=True, check=True).stdout


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_corrupt_br_is_one_not_verified_line_and_leaves_the_exit_code(tmp_path: Path, damage: str) -> None:
    _need_brotli()
    good = _brotli_cli(HOST_ELF.read_bytes())
    bad = good[: len(good) // 2] if damage == "truncated" else good[:200] + bytes(b ^ 0x5A for b in good[200:400]) + good[400:]
    assert subprocess.run(["brotli", "-t", "-c"], input=bad, capture_output=True).returncode != 0  # the real decoder agrees
    clean = run_cli("analyze", str(_node_layer(tmp_path / "clean", "other.txt", b"x")))
    r = run_cli("analyze", str(_node_layer(tmp_path / "bad", "tool.br", bad)))
    assert r.returncode == clean.returncode == 0 and r.stderr == ""
    lines = [line for line in r.stdout.splitlines() if "LP115" in line]
    assert len(lines) == 1 and "not verified: cannot open the archive: brotli" in lines[0], r.stdout


@pytest.mark.parametrize("tool, flag, name", [("gzip", "z", "tool.tgz"), ("xz", "J", "tool.tar.xz")])
def test_truncated_tar_is_not_verified(tmp_path: Path, tool: str, flag: str, name: str) -> None:
    require_tool(tool)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(HOST_ELF, src / "prog")
    whole = tmp_path / name
    subprocess.run(["tar", f"c{flag}f", str(whole), "-C", str(src), "."], check=True)
    cut = whole.read_bytes()[: whole.stat().st_size // 2]
    assert subprocess.run([tool, "-t"], input=cut, capture_output=True).returncode != 0  # the real decoder agrees
    with open_tree(_node_layer(tmp_path, name, cut)) as tree:
        found = payload_findings_host(tree)
    assert [(f.code, f.message.split(":")[:3]) for f in found] == [("LP115", [f"bin/{name}", " not verified", " cannot open the archive"])]


def test_brotli_missing_is_not_verified(tmp_path: Path) -> None:
    """Without the brotli module a .br payload is reported, never skipped in silence (a web server's
    pre-compressed asset, app.js.br, is not a payload)."""
    layer = _node_layer(tmp_path, "tool.br", b"\x1b\x00")
    _node_layer(tmp_path, "app.js.br", b"\x1b\x00")
    code = ("import sys; sys.modules['brotli'] = None\nfrom packer import runtime\nfrom packer.tree import open_tree\n"
            "from packer.payloads import payload_findings\n"
            f"fs = payload_findings(open_tree({str(layer)!r}), runtime.load('provided.al2023'))\n"
            "print([(f.code, f.message) for f in fs])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr([("LP115", "bin/tool.br: not verified: brotli not installed (pip install 'brotli>=1.2')")])


def test_decompression_bomb_stops_at_the_cap_with_bounded_memory(tmp_path: Path) -> None:
    """A .br of 1 GiB + 1 MiB of zeros (a few hundred KB): read up to the real cap, in a child
    process whose peak memory is measured."""
    _need_brotli()
    from packer.payloads import MAX_INFLATED

    require_tool("brotli")
    layer = tmp_path / "layer" / "nodejs" / "node_modules" / "pkg"
    layer.mkdir(parents=True)
    (layer / "package.json").write_text('{"name": "pkg"}\n')
    _sh(f'head -c {MAX_INFLATED + (1 << 20)} /dev/zero | brotli -c -q 5 > "{layer}/bomb.br"').check_returncode()
    assert (layer / "bomb.br").stat().st_size < 1 << 20
    # VmHWM, not getrusage's ru_maxrss: Linux carries the forking process's peak across exec into
    # ru_maxrss, so a child of a 500 MB pytest reported 494 MiB whatever it did itself
    code = ("from packer.analyze import analyze\n"
            f"r = analyze({str(tmp_path / 'layer')!r}, runtime='provided.al2023', arch='x86_64')\n"
            "print([(f.code, f.message) for f in r.findings if f.code == 'LP115'])\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found, peak_kb = proc.stdout.splitlines()
    assert "LP115" in found and f"inflates past {MAX_INFLATED:,} bytes" in found
    assert int(peak_kb) < 200 * 1024, f"peak {int(peak_kb) // 1024} MiB"


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_the_cap_boundary(tmp_path: Path, delta: int) -> None:
    """An ELF payload of exactly cap - 1, cap and cap + 1 inflated bytes (a host program padded with
    zeros): judged (LP308 on arm64) up to the cap, not verified (LP115) past it."""
    _need_brotli()
    from packer.payloads import payload_findings

    elf = HOST_ELF.read_bytes()
    cap = len(elf) + 4096
    data = elf + b"\0" * (cap + delta - len(elf))
    assert len(data) == cap + delta
    layer = _node_layer(tmp_path, "tool.br", _brotli_cli(data))
    other = "arm64" if platform.machine() in ("x86_64", "AMD64") else "x86_64"  # not the host ELF's arch
    with open_tree(layer) as tree:
        found = [(f.code, f.data.get("reason", "")) for f in payload_findings(tree, runtime.load("provided.al2023", other), cap=cap)]
    if delta > 0:
        assert len(found) == 1 and found[0][0] == "LP115" and found[0][1].startswith(f"it inflates past {cap:,} bytes"), found
    else:
        assert found == [("LP115", "unknown loader"), ("LP308", "")], found


@pytest.mark.parametrize("members", [9, 10, 11])
def test_a_tar_of_too_many_members_is_not_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: int) -> None:
    """A bomb of empty members, made by the real tar, at a member cap of 10 (the count includes the
    directory entry `.`)."""
    from packer import payloads

    monkeypatch.setattr(payloads, "MAX_MEMBERS", 10)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(HOST_ELF, src / "prog")
    for i in range(members - 2):
        (src / f"empty{i}").write_bytes(b"")
    pkg = tmp_path / "layer" / "node_modules" / "pkg"
    pkg.mkdir(parents=True)
    subprocess.run(["tar", "czf", str(pkg / "many.tgz"), "-C", str(src), "."], check=True)
    with open_tree(tmp_path / "layer") as tree:
        found = [(f.code, f.data.get("reason", "")) for f in payload_findings_host(tree)]
    if members > 10:
        assert len(found) == 1 and "10 members" in found[0][1], found
    else:
        assert found == [("LP115", "unknown loader")], found


def payload_findings_host(tree):
    """Payload findings for the host's own arch (its program inside is then of the right arch)."""
    from packer.payloads import payload_findings

    arch = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"
    return payload_findings(tree, runtime.load("provided.al2023", arch))
