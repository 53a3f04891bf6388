"""Which Node a native addon was built for, read from the addon itself.

Two ways an addon that Node would pick still fails to load on a Lambda nodejs runtime:

- a classic (non Node-API) addon is bound to one Node ABI: node-gyp built it for the Node that ran
  `npm install` (`better-sqlite3` built under Node 20 exports `node_register_module_v115`), and
  Node 22 (ABI 127) refuses it: "was compiled against a different Node.js version using
  NODE_MODULE_VERSION 115. This version of Node.js requires NODE_MODULE_VERSION 127";
- a Node-API addon says which Node-API version it needs in `node_api_module_get_api_version_v1`
  (node-addon-api 8 builds return 10 there), and a Node that supports less refuses it (Node 20
  supports 9; seen here: argon2 0.45.1's prebuild kills Node 20.20 with SIGSEGV while it is
  refused, and loads on Node 22).

Both facts come from the dynamic symbol table (packer.elf.symbols.defined_symbols). The Node-API
version is the constant the function returns, read from its first instruction on x86_64 (`mov
eax, imm32; ret`, after an optional `endbr64`) and aarch64 (`mov w0, #imm16; ret`); any other
code says nothing (not guessed).
"""

from __future__ import annotations

import re
import struct

from packer.elf.symbols import defined_symbols

# NODE_MODULE_VERSION of each Node major (Node's doc/abi_version_registry.json) and the highest
# Node-API version each supports (`process.versions.napi`: 9 on Node 20.20, 10 from Node 22.14).
NODE_ABI = {16: 93, 18: 108, 20: 115, 22: 127, 24: 137}
NODE_API = {16: 8, 18: 9, 20: 9, 22: 10, 24: 10}
NAPI_EXPERIMENTAL = 2147483647  # NAPI_VERSION_EXPERIMENTAL: accepted by every Node with Node-API

_VERSION_FN = "node_api_module_get_api_version_v1"
_REGISTER = "node_register_module_v"
_ENDBR64 = b"\xf3\x0f\x1e\xfa"


def addon_needs(data) -> tuple[int | None, int | None]:
    """(Node ABI a classic addon was built for, Node-API version an addon asks for); None where
    the file does not say."""
    found = defined_symbols(data, {_VERSION_FN}, (_REGISTER,))
    abi = next((int(m.group(1)) for name in found if (m := re.fullmatch(_REGISTER + r"(\d+)", name))), None)
    napi = _returned_constant(found.get(_VERSION_FN, b""), data[18:20] if len(data) > 20 else b"", data[5:6])
    return abi, napi


def _returned_constant(code: bytes, machine: bytes, order: bytes) -> int | None:
    e_machine = int.from_bytes(machine, "little" if order == b"\x01" else "big") if machine else 0
    if e_machine == 62:  # x86_64
        if code.startswith(_ENDBR64):
            code = code[4:]
        if len(code) >= 6 and code[0] == 0xB8 and code[5] == 0xC3:
            return struct.unpack_from("<I", code, 1)[0]
    elif e_machine == 183 and len(code) >= 8:  # aarch64, little-endian
        insn, ret = struct.unpack_from("<II", code, 0)
        if insn & 0xFFE0001F == 0x52800000 and ret == 0xD65F03C0:  # movz w0, #imm16; ret
            return (insn >> 5) & 0xFFFF
    return None


def refusal(data, node_major: int) -> str | None:
    """Why Node `node_major` refuses this addon, or None (it loads, or the file does not say)."""
    abi, napi = addon_needs(data)
    wanted_abi = NODE_ABI.get(node_major)
    if abi is not None and wanted_abi is not None and abi != wanted_abi:
        built = next((f" (Node {m})" for m, a in NODE_ABI.items() if a == abi), "")
        return (f"built for NODE_MODULE_VERSION {abi}{built}; Node {node_major} requires {wanted_abi}: rebuild it "
                f"with Node {node_major} (`npm rebuild`), or use a Node-API build")
    supported = NODE_API.get(node_major)
    if napi is not None and supported is not None and supported < napi != NAPI_EXPERIMENTAL:
        return f"asks for Node-API version {napi}; Node {node_major} supports {supported}"
    return None
