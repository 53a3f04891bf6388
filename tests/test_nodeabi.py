"""Which Node an addon was built for (packer.nodeabi), read from real npm addons and judged by
binutils' own reading of the same files and by real Node loading them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from packer.nodeabi import NODE_ABI, NODE_API, addon_needs, refusal
from tests.conftest import require_tool, run_cli
from tests.test_nodeload import _npm_tree

OBJDUMP = {"x86_64": "objdump", "aarch64": "aarch64-linux-gnu-objdump"}


def _binutils_view(path: Path) -> tuple[int | None, int | None]:
    """(node_register_module_vN's N, the constant node_api_module_get_api_version_v1 returns) as
    binutils' nm and objdump read them."""
    machine = "aarch64" if path.read_bytes()[18] == 183 else "x86_64"
    nm = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True).stdout
    abi = next((int(m.group(1)) for m in re.finditer(r" node_register_module_v(\d+)$", nm, re.M)), None)
    addr = next((line.split()[0] for line in nm.splitlines() if line.endswith(" node_api_module_get_api_version_v1")), None)
    if addr is None:
        return abi, None
    start = int(addr, 16)
    tool = shutil.which(OBJDUMP[machine])
    if tool is None:
        pytest.fail(f"{OBJDUMP[machine]} is not installed (binutils for {machine})")
    dis = subprocess.run([tool, "-d", f"--start-address={start}", f"--stop-address={start + 16}", str(path)],
                         capture_output=True, text=True).stdout
    insns = [" ".join(" ".join(line.split("\t")[2:]).split("//")[0].split())
             for line in dis.splitlines() if re.match(r"^\s+[0-9a-f]+:\t", line)]
    insns = [i for i in insns if i != "endbr64"]
    m = re.fullmatch(r"mov \$0x([0-9a-f]+),%eax", insns[0]) or re.fullmatch(r"mov w0, #0x([0-9a-f]+)", insns[0]) \
        or re.fullmatch(r"mov w0, #(\d+)", insns[0])
    if m is None or not insns[1].startswith("ret"):
        return abi, None
    value = m.group(1)
    return abi, int(value, 16) if "0x" in insns[0] else int(value)


@pytest.mark.parametrize("recipe,cpu", [("x64-glibc", "x64"), ("arm64-glibc", "arm64")])
def test_addon_needs_reads_what_binutils_reads(recipe: str, cpu: str) -> None:
    require_tool("nm")
    root = _npm_tree(recipe, cpu, "glibc")
    addons = sorted(p for p in root.rglob("*.node") if p.read_bytes()[:4] == b"\x7fELF"
                    and p.read_bytes()[18] in (62, 183))
    assert len(addons) > 20
    said = {p: addon_needs(p.read_bytes()) for p in addons}
    assert said == {p: _binutils_view(p) for p in addons}
    napi = {v for _, v in said.values() if v is not None}
    assert napi >= {9} and len(napi) >= 2  # several Node-API levels among real addons


def test_node_api_version_boundary_follows_what_node_supports() -> None:
    """refusal() at the boundary: the highest version a Node supports loads, one more does not."""
    for major, supported in NODE_API.items():
        assert refusal(_fake_napi(supported), major) is None
        assert refusal(_fake_napi(supported - 1), major) is None
        assert "asks for Node-API version" in (refusal(_fake_napi(supported + 1), major) or "")
    for major, abi in NODE_ABI.items():
        assert refusal(_fake_abi(abi), major) is None
        assert "NODE_MODULE_VERSION" in (refusal(_fake_abi(abi + 1), major) or "")
        assert "NODE_MODULE_VERSION" in (refusal(_fake_abi(abi - 1), major) or "")  # older is refused too


def test_node_20_refuses_an_addon_asking_for_node_api_10_as_analyze_says(tmp_path: Path) -> None:
    """argon2 0.45.1's linux-x64 prebuild asks for Node-API 10: the host's Node 20 does not load it
    (it dies while refusing it), and analyze reports LP312 for nodejs20.x only."""
    node = require_tool("node")
    major = int(subprocess.run([node, "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                               text=True, check=True).stdout)
    napi = int(subprocess.run([node, "-p", "process.versions.napi"], capture_output=True, text=True, check=True).stdout)
    assert NODE_API.get(major) == napi  # the table agrees with the Node on this machine
    layer = tmp_path / "layer"
    (layer / "nodejs").mkdir(parents=True)
    (layer / "nodejs" / "package.json").write_text('{"name": "l", "version": "1.0.0", "private": true}')
    npm = require_tool("npm")
    subprocess.run([npm, "install", "--os=linux", "--cpu=x64", "--libc=glibc", "--ignore-scripts", "--no-audit",
                    "--no-fund", "--loglevel=error", "argon2@0.45.1"], cwd=layer / "nodejs", check=True,
                   capture_output=True, timeout=600)
    loads = subprocess.run([node, "-e", "require('argon2')"], cwd=layer / "nodejs", capture_output=True, timeout=60)
    res = run_cli("analyze", str(layer), "--runtime", f"nodejs{major}.x", "--json")
    if napi < 10:
        assert loads.returncode != 0
        assert res.returncode == 1 and '"LP312"' in res.stdout and "Node-API version 10" in res.stdout
    else:
        assert loads.returncode == 0 and res.returncode == 0
    assert run_cli("analyze", str(layer), "--runtime", "nodejs22.x").returncode == 0


def _fake_napi(version: int) -> bytes:
    return _elf_with_symbol("node_api_module_get_api_version_v1", b"\xb8" + version.to_bytes(4, "little") + b"\xc3")


def _fake_abi(abi: int) -> bytes:
    return _elf_with_symbol(f"node_register_module_v{abi}", b"\xc3")


def _elf_with_symbol(name: str, code: bytes) -> bytes:
    """A minimal x86_64 ELF with one defined dynamic symbol whose code is `code` (section headers:
    null, .text, .dynsym, .dynstr) — the layout the reader walks, built for the boundary test only;
    the real addons above are the judge of the reading itself."""
    import struct

    strtab = b"\0" + name.encode() + b"\0"
    text_off, text_addr = 0x100, 0x1000
    dynsym_off = text_off + 0x40
    sym0 = b"\0" * 24
    sym1 = struct.pack("<IBBHQQ", 1, 0x12, 0, 1, text_addr, len(code))
    dynstr_off = dynsym_off + 48
    shoff = (dynstr_off + len(strtab) + 7) & ~7
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 0, 1, 6, text_addr, text_off, len(code), 0, 0, 16, 0),
        struct.pack("<IIQQQQIIQQ", 0, 11, 2, 0, dynsym_off, 48, 3, 1, 8, 24),
        struct.pack("<IIQQQQIIQQ", 0, 3, 2, 0, dynstr_off, len(strtab), 0, 0, 1, 0),
    ]
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64,
                                                                   len(sections), 0)
    out = bytearray(shoff + 64 * len(sections))
    out[:64] = header
    out[text_off:text_off + len(code)] = code
    out[dynsym_off:dynsym_off + 48] = sym0 + sym1
    out[dynstr_off:dynstr_off + len(strtab)] = strtab
    out[shoff:] = b"".join(sections)
    return bytes(out)
