"""What the real-layer corpus holds: pinned PyPI and npm installs, and the cases judged (no tests here).

A *tree* is a recipe of install steps (pip or npm, with the target platform flags users pass); a
*case* is a tree judged for one runtime and architecture. The same tree appears in several cases
where that makes a known-bad layer for free (a python3.11 x86_64 tree in an arm64 layer). Versions
are pinned so the corpus, and so the verdicts, do not move under the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- PyPI -------------------------------------------------------------------------------------------

WEB = ("cryptography==51.0.1", "cffi==2.1.1", "pycparser==2.22", "pydantic-core==2.50.5",
       "typing-extensions==4.16.0", "orjson==3.13.0", "bcrypt==5.0.0", "markupsafe==3.0.4", "pyyaml==6.0.4",
       "msgpack==1.2.4", "ujson==6.1.0", "charset-normalizer==3.5.3", "zstandard==0.25.0",
       "google-crc32c==1.9.0", "xxhash==4.1.0", "brotli==1.2.1", "frozenlist==1.8.0", "propcache==0.5.4",
       "yarl==1.25.1", "idna==3.21", "lxml==6.2.1", "psycopg2-binary==2.9.13", "grpcio==1.85.4")
WEB_NEW = ("multidict==7.2.1", "regex==2026.12.2", "rpds-py==2026.9.1", "pillow==13.0.0")
WEB_OLD = ("multidict==7.1.0", "regex==2026.9.29", "rpds-py==0.30.0", "pillow==12.2.0")
DATA_NEW = ("numpy==2.5.5", "pandas==3.1.2", "python-dateutil==2.9.0.post0", "six==1.17.0", "tzdata==2026.6",
            "pyarrow==26.0.1", "scipy==1.18.1")
# numpy 1.23 / scipy 1.9: auditwheel's older grafts (libgfortran-<hash>.so.5.0.0 needing a sibling
# libquadmath-<hash>.so.0.0.0, OpenBLAS in <pkg>.libs/) and manylinux2014 only, for Amazon Linux 2.
DATA_OLD = ("numpy==1.23.5", "scipy==1.9.3", "pandas==1.5.3", "python-dateutil==2.9.0.post0", "six==1.17.0",
            "pytz==2024.2", "pyarrow==20.0.0")


@dataclass(frozen=True)
class Pip:
    """`pip install --target TREE/python --only-binary=:all: --no-deps` for one platform."""

    packages: tuple[str, ...]
    python: str  # --python-version
    platforms: tuple[str, ...]  # --platform, in order (pip does not widen manylinux_2_X by itself)
    into: str = "python"  # --target, relative to the tree (Lambda also reads python/lib/python3.X/site-packages)


@dataclass(frozen=True)
class Npm:
    """`npm install` into TREE/nodejs/node_modules for a target (--os/--cpu/--libc)."""

    packages: tuple[str, ...]
    cpu: str = "x64"
    libc: str = "glibc"
    scripts: bool = False  # False: --ignore-scripts; True: install scripts run (node-gyp builds), host x64 only
    into: str = "nodejs"  # npm --prefix, relative to the tree (Lambda also reads nodejs/nodeNN/node_modules)


@dataclass(frozen=True)
class Derive:
    """Start from another tree of the corpus (hard links) and delete files: a layer someone trimmed
    by hand, e.g. one auditwheel graft removed."""

    base: str
    remove: tuple[str, ...]  # globs relative to the tree


@dataclass(frozen=True)
class Tree:
    name: str
    steps: tuple[Pip | Npm | Derive, ...]


@dataclass(frozen=True)
class Case:
    tree: str
    runtime: str
    arch: str
    why: str  # what this case shows (known-bad: what is wrong with it)

    @property
    def id(self) -> str:
        return f"{self.tree}@{self.runtime}-{self.arch}"


def manylinux(glibc_minor: int, machine: str = "x86_64") -> tuple[str, ...]:
    """Every manylinux tag a runtime with glibc 2.<glibc_minor> accepts, newest first."""
    return (*(f"manylinux_2_{m}_{machine}" for m in range(glibc_minor, 16, -1)), f"manylinux2014_{machine}")


AL2, AL2023 = 26, 34

PY_TREES = (
    Tree("py312-web", (Pip(WEB + WEB_NEW, "3.12", manylinux(AL2023)),)),
    Tree("py312-data", (Pip(DATA_NEW, "3.12", manylinux(AL2023)),)),
    Tree("py313-mixed", (Pip(WEB + WEB_NEW + DATA_NEW[:5], "3.13", manylinux(AL2023)),)),
    Tree("py311-web", (Pip(WEB + WEB_NEW[:3] + ("pillow==12.2.0",), "3.11", manylinux(AL2)),)),
    Tree("py310-grafts-old", (Pip(DATA_OLD + WEB_OLD, "3.10", manylinux(AL2)),)),
    # known-bad trees
    Tree("py312-cp311-ext", (Pip(("pydantic-core==2.50.5", "typing-extensions==4.16.0", "orjson==3.13.0"),
                                 "3.11", manylinux(AL2023)),)),
    Tree("py312-arm64-wheel", (Pip(("orjson==3.13.0",), "3.12", manylinux(AL2023, "aarch64")),)),
    Tree("py312-musl-wheel", (Pip(("orjson==3.13.0",), "3.12", ("musllinux_1_2_x86_64",)),)),
    Tree("py311-manylinux-2-34", (Pip(("cryptography==51.0.1",), "3.11", ("manylinux_2_34_x86_64",)),
                                  Pip(("cffi==2.1.1", "pycparser==2.22"), "3.11", manylinux(AL2)))),
    Tree("py310-manylinux-2-28", (Pip(("cryptography==51.0.1", "lxml==6.2.1", "ujson==6.1.0"), "3.10",
                                      ("manylinux_2_28_x86_64",)),
                                  Pip(("cffi==2.1.1", "pycparser==2.22"), "3.10", manylinux(AL2)))),
    # pyarrow 26 for cp311 is manylinux_2_28 only, and needs GLIBC_2.27/2.28 (not weakly): AL2 has 2.26
    Tree("py311-pyarrow-2-28", (Pip(("pyarrow==26.0.1",), "3.11", ("manylinux_2_28_x86_64",)),
                                Pip(("numpy==2.2.6",), "3.11", manylinux(AL2)))),
    Tree("py311-arm64-pyarrow-2-28", (Pip(("pyarrow==26.0.1",), "3.11", ("manylinux_2_28_aarch64",)),
                                      Pip(("numpy==2.2.6",), "3.11", manylinux(AL2, "aarch64")))),
    Tree("py312-site-packages", (Pip(("orjson==3.13.0", "pydantic-core==2.50.5", "typing-extensions==4.16.0"),
                                     "3.12", manylinux(AL2023), into="python/lib/python3.12/site-packages"),)),
    # one layer for two runtimes: each Python reads only its own lib/python3.X/site-packages
    Tree("py311-py312-multi", (Pip(("orjson==3.13.0", "pydantic-core==2.50.5", "typing-extensions==4.16.0"), "3.11",
                                   manylinux(AL2), into="python/lib/python3.11/site-packages"),
                               Pip(("orjson==3.13.0", "pydantic-core==2.50.5", "typing-extensions==4.16.0"), "3.12",
                                   manylinux(AL2023), into="python/lib/python3.12/site-packages"))),
    Tree("py312-in-3-11-site-packages", (Pip(("orjson==3.13.0",), "3.12", manylinux(AL2023),
                                             into="python/lib/python3.11/site-packages"),)),
    Tree("py311-arm64", (Pip(("numpy==2.2.6", "orjson==3.13.0", "cryptography==51.0.1", "cffi==2.1.1",
                              "pycparser==2.22", "pydantic-core==2.50.5", "typing-extensions==4.16.0",
                              "pyyaml==6.0.4", "markupsafe==3.0.4", "msgpack==1.2.4"),
                             "3.11", manylinux(AL2, "aarch64")),)),
)

# --- npm --------------------------------------------------------------------------------------------

NODE_PREBUILT = ("sharp@0.35.6", "@napi-rs/canvas@1.2.1", "@swc/core@1.16.22", "esbuild@0.28.2", "bcrypt@6.0.0",
                 "lmdb@3.5.6", "msgpackr-extract@3.0.7", "bufferutil@4.2.0",
                 "utf-8-validate@6.1.0", "sodium-native@5.1.0", "@parcel/watcher@2.6.0", "rollup@4.69.3",
                 "lightningcss@1.33.0", "@sparticuz/chromium@147.0.0")
NODE_PLATFORM = ("sharp@0.35.6", "@swc/core@1.16.22", "esbuild@0.28.2", "lightningcss@1.33.0",
                 "@parcel/watcher@2.6.0", "rollup@4.69.3")

NODE_TREES = (
    Tree("node-prebuilt-x64", (Npm(NODE_PREBUILT),)),
    # argon2 0.45.1's linux-x64 prebuild (prebuildify, node-gyp-build) asks for Node-API 10: Node 20.20
    # (Node-API 9) segfaults on require, also outside any sandbox; Node 22 loads it.
    Tree("node-argon2", (Npm(("argon2@0.45.1",)),)),
    Tree("node-in-node20-dir", (Npm(("sharp@0.35.6", "lightningcss@1.33.0"), into="nodejs/node20"),)),
    Tree("node-built-x64", (Npm(("better-sqlite3@12.11.1",), scripts=True),)),
    # (@sparticuz/chromium's brotli payloads are x86_64 programs the judge does not run: x64 tree only)
    # re2 (nan, C++): its install script's download fails here (no GitHub), so node-gyp compiles it (~1 min)
    Tree("node-re2-built", (Npm(("re2@1.24.0",), scripts=True),)),
    Tree("node-prebuilt-arm64", (Npm(NODE_PREBUILT[:-1], cpu="arm64"),)),
    Tree("node-platform-musl", (Npm(NODE_PLATFORM, libc="musl"),)),
)

TRIMMED = (
    # old auditwheel grafts: scipy.libs/libgfortran-<hash>.so.5.0.0 needs its sibling libquadmath
    Tree("py310-grafts-old-no-quadmath", (Derive("py310-grafts-old", ("python/scipy.libs/libquadmath-*",)),)),
    Tree("py310-grafts-old-no-quadmath-at-all", (Derive("py310-grafts-old", ("python/*.libs/libquadmath-*",)),)),
    Tree("py312-web-no-libpq", (Derive("py312-web", ("python/psycopg2_binary.libs/libpq-*",)),)),
    Tree("node-prebuilt-x64-no-sharp-libvips", (Derive("node-prebuilt-x64", (
        "nodejs/node_modules/@img/sharp-libvips-linux-x64/lib/libvips-cpp.so*",)),)),
)

TREES = {t.name: t for t in (*PY_TREES, *NODE_TREES, *TRIMMED)}

CASES = (
    Case("py312-web", "python3.12", "x86_64", "Rust, abi3, manylinux_2_34, grafted libs"),
    Case("py312-data", "python3.12", "x86_64", "numpy/pandas/pyarrow/scipy, new auditwheel grafts"),
    Case("py313-mixed", "python3.13", "x86_64", "the web set and numpy/pandas on 3.13"),
    Case("py311-web", "python3.11", "x86_64", "manylinux ≤ 2.26 for Amazon Linux 2"),
    Case("py310-grafts-old", "python3.10", "x86_64", "old grafts: libgfortran needs its sibling libquadmath"),
    Case("py312-cp311-ext", "python3.12", "x86_64", "known-bad: cp311 extensions in a python3.12 layer"),
    Case("py312-arm64-wheel", "python3.12", "x86_64", "known-bad: an aarch64 wheel in an x86_64 layer"),
    Case("py312-musl-wheel", "python3.12", "x86_64", "known-bad: a musllinux wheel on a glibc runtime"),
    Case("py311-manylinux-2-34", "python3.11", "x86_64", "known-bad: manylinux_2_34 on glibc 2.26"),
    Case("py310-manylinux-2-28", "python3.10", "x86_64", "manylinux_2_28 wheels on glibc 2.26"),
    Case("py311-manylinux-2-34", "python3.12", "x86_64", "known-bad: the python3.11 layer (cffi for cp311) on python3.12"),
    Case("py311-pyarrow-2-28", "python3.11", "x86_64", "known-bad: pyarrow manylinux_2_28 needs GLIBC_2.28 on 2.26"),
    Case("py311-pyarrow-2-28", "python3.12", "x86_64", "known-bad: the python3.11 layer (cp311) on python3.12"),
    Case("py312-site-packages", "python3.12", "x86_64", "installed into python/lib/python3.12/site-packages"),
    Case("py311-py312-multi", "python3.11", "x86_64", "a two-runtime layer (lib/python3.11 and 3.12) on 3.11"),
    Case("py311-py312-multi", "python3.12", "x86_64", "a two-runtime layer (lib/python3.11 and 3.12) on 3.12"),
    Case("py312-in-3-11-site-packages", "python3.12", "x86_64",
         "known-bad: python/lib/python3.11/site-packages is not on python3.12's path"),
    Case("node-prebuilt-x64", "nodejs20.x", "x86_64", "prebuilt N-API packages, per-platform packages"),
    Case("node-prebuilt-x64", "nodejs22.x", "x86_64", "the same on Node 22"),
    Case("node-argon2", "nodejs20.x", "x86_64", "known-bad: argon2's prebuild asks Node-API 10, Node 20 crashes"),
    Case("node-argon2", "nodejs22.x", "x86_64", "argon2's prebuild on Node 22"),
    Case("node-in-node20-dir", "nodejs20.x", "x86_64", "installed into nodejs/node20/node_modules"),
    Case("node-in-node20-dir", "nodejs22.x", "x86_64",
         "known-bad: nodejs/node20/node_modules is not on nodejs22.x's NODE_PATH"),
    Case("node-built-x64", "nodejs20.x", "x86_64", "better-sqlite3 built by node-gyp for Node 20"),
    Case("node-built-x64", "nodejs22.x", "x86_64", "known-bad: a Node 20 addon (ABI 115) on Node 22"),
    Case("node-re2-built", "nodejs20.x", "x86_64", "re2 compiled by node-gyp for Node 20"),
    Case("node-re2-built", "nodejs22.x", "x86_64", "known-bad: re2 compiled for Node 20 on Node 22"),
    Case("node-prebuilt-arm64", "nodejs20.x", "x86_64", "known-bad: installed --cpu=arm64 for an x86_64 layer"),
    Case("node-platform-musl", "nodejs20.x", "x86_64", "known-bad: installed --libc=musl for a glibc runtime"),
    Case("py310-grafts-old-no-quadmath", "python3.10", "x86_64",
         "scipy.libs' libquadmath removed: numpy.libs' identical graft (same soname) is loaded first (works)"),
    Case("py310-grafts-old-no-quadmath-at-all", "python3.10", "x86_64",
         "known-bad: libquadmath removed from numpy.libs and scipy.libs"),
    Case("py312-web-no-libpq", "python3.12", "x86_64", "known-bad: psycopg2's grafted libpq removed"),
    Case("node-prebuilt-x64-no-sharp-libvips", "nodejs20.x", "x86_64", "known-bad: sharp's libvips removed"),
    Case("py311-arm64", "python3.11", "arm64", "aarch64 wheels on arm64 (qemu)"),
    Case("py311-arm64-pyarrow-2-28", "python3.11", "arm64", "known-bad: aarch64 manylinux_2_28 on glibc 2.26 (qemu)"),
    Case("py311-web", "python3.11", "arm64", "known-bad: x86_64 wheels in an arm64 layer"),
    Case("node-prebuilt-arm64", "nodejs20.x", "arm64", "prebuilt packages for arm64 (qemu)"),
    Case("node-prebuilt-arm64", "nodejs22.x", "arm64", "prebuilt packages for arm64 on Node 22 (qemu)"),
    Case("node-prebuilt-x64", "nodejs20.x", "arm64", "known-bad: x64 packages in an arm64 layer"),
)
