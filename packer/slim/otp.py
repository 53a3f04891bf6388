"""Erlang/OTP trees: where the roots are, which applications exist, and what a release needs.

Why parse `.app` files instead of globbing app names: the closure of the `applications` key (plus
`included_applications`, and `optional_applications` when present) is exactly what systools, relx and
mix release boot; globs like "drop megaco" are either too timid or break a release that needs it.
`runtime_dependencies` is *not* followed — it is a soft, module-level hint that pulls in mnesia and
tools from kernel alone (docs/slim-rules.md, "Erlang/OTP") — only reported.

Also here: Debian's `bin/erl` hard-codes `ROOTDIR=/usr/lib/erlang`; a tree moved to `/opt/...` must
have that literal rewritten (`rootdir_rewrites`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packer.errors import SlimError

# -- a small reader for Erlang terms (what .app / .rel / RELEASES files contain) -------------------


class Atom(str):
    """An Erlang atom (a `str` so comparisons with names are natural)."""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|%[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<qatom>'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\#[0-9a-zA-Z]+)?)
  | (?P<atom>[a-z][A-Za-z0-9_@]*)
  | (?P<var>[A-Z_][A-Za-z0-9_@]*)
  | (?P<bin><<|>>)
  | (?P<punct>[{}\[\],|.])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESC = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "e": "\x1b", "b": "\b", "f": "\f", "v": "\v", "d": "\x7f"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), m.group(1)), body)


def parse_terms(text: str, origin: str = "<term>") -> list[object]:
    """Parse `Term1. Term2. ...` (the consult format) into Python values: atoms -> Atom, strings ->
    str, lists -> list, tuples -> tuple, binaries -> bytes. Anything else is a SlimError naming the line."""
    tokens: list[tuple[str, str, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SlimError(f"{origin}:{line}: cannot read Erlang term near {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    out: list[object] = []
    i = 0

    def err(msg: str) -> SlimError:
        ln = tokens[min(i, len(tokens) - 1)][2] if tokens else line
        return SlimError(f"{origin}:{ln}: {msg}")

    def value() -> object:
        nonlocal i
        if i >= len(tokens):
            raise err("unexpected end of file")
        kind, tok, _ = tokens[i]
        i += 1
        if kind == "string":
            s = _unescape(tok[1:-1])
            while i < len(tokens) and tokens[i][0] == "string":  # "a" "b" concatenation
                s += _unescape(tokens[i][1][1:-1])
                i += 1
            return s
        if kind == "qatom":
            return Atom(_unescape(tok[1:-1]))
        if kind == "atom":
            return Atom(tok)
        if kind == "number":
            try:
                return float(tok) if "." in tok else int(tok.split("#")[-1], int(tok.split("#")[0]) if "#" in tok else 10)
            except ValueError:
                raise err(f"bad number {tok}") from None
        if tok == "<<":
            parts = b""
            while i < len(tokens) and tokens[i][1] != ">>":
                v = value()
                parts += v.encode() if isinstance(v, str) else bytes([int(v) & 255]) if isinstance(v, int) else b""
                if i < len(tokens) and tokens[i][1] == ",":
                    i += 1
            i += 1
            return parts
        if tok in ("{", "["):
            close = "}" if tok == "{" else "]"
            items: list[object] = []
            if i < len(tokens) and tokens[i][1] == close:
                i += 1
                return tuple(items) if tok == "{" else items
            while True:
                items.append(value())
                if i >= len(tokens):
                    raise err(f"missing {close}")
                sep = tokens[i][1]
                i += 1
                if sep == ",":
                    continue
                if sep == "|" and tok == "[":
                    tail = value()
                    items.extend(tail if isinstance(tail, list) else [tail])
                    sep = tokens[i][1] if i < len(tokens) else ""
                    i += 1
                if sep == close:
                    return tuple(items) if tok == "{" else items
                raise err(f"expected ',' or {close!r}, got {sep!r}")
        raise err(f"unexpected {tok!r}")

    while i < len(tokens):
        out.append(value())
        if i >= len(tokens) or tokens[i][1] != ".":
            raise err("missing '.' after term")
        i += 1
    return out


# -- the tree's OTP and Elixir roots and their applications ---------------------------------------


@dataclass(frozen=True)
class App:
    name: str
    vsn: str
    dir: str  # relative path of the application directory (`lib/kernel-8.5.3`)
    root: str | None  # the OTP/Elixir root it ships in (None: a user application elsewhere)
    applications: tuple[str, ...]
    included: tuple[str, ...]
    optional: tuple[str, ...]
    runtime_deps: tuple[str, ...]


@dataclass(frozen=True)
class Root:
    """A directory that is an Erlang/OTP installation (`erts-*/bin`) or an Elixir installation."""

    path: str  # relative to the tree ('' = the tree itself)
    kind: str  # "otp" | "elixir"
    erts_vsn: str | None = None
    otp_release: int | None = None


@dataclass
class Graph:
    roots: list[Root] = field(default_factory=list)
    apps: dict[str, App] = field(default_factory=dict)  # by name; user apps win over shipped ones
    releases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # .rel path -> app names

    @property
    def otp_release(self) -> int | None:
        for r in self.roots:
            if r.otp_release is not None:
                return r.otp_release
        return None


# OTP ships these boot-script release files; they are not the user's release.
OTP_OWN_RELS = {"start_sasl", "start_clean", "no_dot_erlang", "start", "start_all_example"}


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        out = []
        for v in value:
            if isinstance(v, tuple) and v:  # optional_applications may hold {App, Opts}
                v = v[0]
            if isinstance(v, str):
                out.append(str(v))
        return tuple(out)
    return ()


def read_app(text: str, origin: str, rel_dir: str, root: str | None) -> App:
    """Read `ebin/<name>.app` (`{application, Name, [Props]}.`)."""
    terms = parse_terms(text, origin)
    if not terms or not isinstance(terms[0], tuple) or len(terms[0]) != 3 or terms[0][0] != "application":
        raise SlimError(f"{origin}: not an application resource file ({{application, Name, Props}}.)")
    _, name, props = terms[0]
    if not isinstance(props, list):
        raise SlimError(f"{origin}: application properties must be a list")
    kv = {p[0]: p[1] for p in props if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)}
    rdeps = tuple(re.sub(r"-[\d.]+$", "", d) for d in kv.get("runtime_dependencies", []) if isinstance(d, str))
    return App(
        name=str(name),
        vsn=str(kv.get("vsn", "")),
        dir=rel_dir,
        root=root,
        applications=_names(kv.get("applications", [])),
        included=_names(kv.get("included_applications", [])),
        optional=_names(kv.get("optional_applications", [])),
        runtime_deps=rdeps,
    )


def _is_otp_root(d: Path) -> str | None:
    for erts in sorted(d.glob("erts-*")):
        if (erts / "bin").is_dir() and not erts.is_symlink():
            return erts.name.removeprefix("erts-")
    return None


def _otp_release(d: Path) -> int | None:
    for p in sorted((d / "releases").glob("*/OTP_VERSION")):
        m = re.match(r"(\d+)", p.read_text(errors="replace").strip())
        if m:
            return int(m.group(1))
    for p in sorted((d / "releases").glob("*")):
        if p.is_dir() and p.name.isdigit():
            return int(p.name)
    return None


def discover(tree: Path, rel_dirs: Iterable[str]) -> Graph:
    """Find OTP/Elixir roots and every application in the tree.

    `rel_dirs` are the tree's directories (relative, from the inventory), so symlinked directories
    are never entered: Debian's doc links point into /usr/share/doc and must not be followed."""
    g = Graph()
    dirs = sorted(set(rel_dirs) | {""})
    root_paths: dict[str, Root] = {}
    for rel in dirs:
        d = tree / rel if rel else tree
        vsn = _is_otp_root(d)
        if vsn and (d / "lib").is_dir():
            root_paths[rel] = Root(rel, "otp", vsn, _otp_release(d))
        elif (d / "lib" / "elixir" / "ebin" / "elixir.app").is_file():
            root_paths[rel] = Root(rel, "elixir")
    g.roots = list(root_paths.values())
    dirset = set(dirs)
    for rel in dirs:
        if not rel.endswith("/ebin") and rel != "ebin":
            continue
        app_dir = rel.rsplit("/", 1)[0] if "/" in rel else ""
        base = app_dir.rsplit("/", 1)[-1]
        name = re.sub(r"-[^-]*$", "", base) if re.search(r"-\d", base) else base
        app_file = tree / rel / f"{name}.app"
        if not app_file.is_file():
            cands = sorted((tree / rel).glob("*.app"))
            if not cands:
                continue
            app_file = cands[0]
        parent = app_dir.rsplit("/", 1)[0] if "/" in app_dir else ""
        owner = None
        if parent.endswith("lib") and (parent.rsplit("/", 1)[0] if "/" in parent else "") in root_paths and (
            parent == "lib" or parent.endswith("/lib")
        ):
            owner = parent.rsplit("/", 1)[0] if "/" in parent else ""
        try:
            app = read_app(app_file.read_text(encoding="utf-8", errors="replace"), _join(rel, app_file.name), app_dir, owner)
        except OSError as exc:
            raise SlimError(f"{_join(rel, app_file.name)}: {exc.strerror}") from exc
        prev = g.apps.get(app.name)
        if prev is None or (prev.root is not None and owner is None):
            g.apps[app.name] = app
    # OTP ships a few lib dirs without an .app (erl_interface: C libraries and erl_call): nothing can
    # start them, so they are applications without dependencies that only a root keeps.
    for rpath, r in root_paths.items():
        if r.kind != "otp":
            continue
        lib = _join(rpath, "lib")
        for rel in dirs:
            if "/" not in rel or rel.rsplit("/", 1)[0] != lib:
                continue
            base = rel.rsplit("/", 1)[-1]
            name = re.sub(r"-[^-]*$", "", base) if re.search(r"-\d", base) else base
            if name not in g.apps and f"{rel}/ebin" not in dirset:
                g.apps[name] = App(name, base[len(name) + 1 :], rel, rpath, (), (), (), ())
    del dirset
    for rel in dirs:
        d = tree / rel if rel else tree
        if not (rel == "releases" or rel.endswith("/releases") or "/releases/" in f"/{rel}/"):
            continue
        for relf in sorted(d.glob("*.rel")):
            if relf.stem in OTP_OWN_RELS:
                continue
            terms = parse_terms(relf.read_text(encoding="utf-8", errors="replace"), _join(rel, relf.name))
            if terms and isinstance(terms[0], tuple) and len(terms[0]) == 4 and terms[0][0] == "release":
                g.releases[_join(rel, relf.name)] = tuple(
                    str(a[0]) for a in terms[0][3] if isinstance(a, tuple) and a and isinstance(a[0], str)
                )
    return g


@dataclass(frozen=True)
class Closure:
    kept: dict[str, str]  # app -> why it is kept
    removed: dict[str, str]  # app -> why it was removable
    dropped_but_required: dict[str, str]  # always-dropped app -> the kept app that lists it
    soft_misses: dict[str, tuple[str, ...]]  # removed app -> kept apps whose runtime_dependencies name it
    unknown_roots: tuple[str, ...]


def closure(apps: Mapping[str, App], roots: Mapping[str, str], drop_always: Iterable[str] = ()) -> Closure:
    """Keep the transitive closure of `applications` ∪ `included_applications` (∪ present
    `optional_applications`) from `roots` (name -> why it is a root). Apps in `drop_always` are
    removed even when listed (and reported), unless the user named them as a root."""
    drop = set(drop_always)
    kept: dict[str, str] = {}
    required_drop: dict[str, str] = {}
    unknown = tuple(sorted(r for r in roots if r not in apps))
    queue = [(r, why) for r, why in roots.items() if r in apps]
    while queue:
        name, why = queue.pop(0)
        if name in kept:
            continue
        kept[name] = why
        app = apps[name]
        for dep in (*app.applications, *app.included, *(o for o in app.optional if o in apps)):
            if dep in kept or dep not in apps:
                continue
            if dep in drop and dep not in roots:
                required_drop.setdefault(dep, name)
                continue
            queue.append((dep, f"needed by {name}"))
    removed: dict[str, str] = {}
    soft: dict[str, tuple[str, ...]] = {}
    for name, app in sorted(apps.items()):
        if name in kept or app.root is None:
            continue
        if name in required_drop:
            removed[name] = f"GUI/dev-tool app, always dropped (listed by {required_drop[name]})"
        elif name in drop:
            removed[name] = "GUI/dev-tool app, always dropped"
        else:
            removed[name] = "not reachable from the roots through applications/included_applications"
        wanted_by = tuple(sorted(k for k in kept if name in apps[k].runtime_deps))
        if wanted_by:
            soft[name] = wanted_by
    return Closure(kept, removed, required_drop, soft, unknown)


# -- Debian's hard-coded ROOTDIR -------------------------------------------------------------------

_ROOTDIR_RE = re.compile(r"^(\s*ROOTDIR=)(\"?)(/[^\s\"$`]*)(\"?)\s*$", re.MULTILINE)


def rootdir_scripts(root: Root, files: Iterable[str]) -> list[str]:
    """The shell scripts of an OTP root that set ROOTDIR (bin/erl, erts-*/bin/erl, bin/start...)."""
    base = f"{root.path}/" if root.path else ""
    names = {"erl", "start", "start_erl"}
    out = []
    for f in files:
        if not f.startswith(base):
            continue
        rest = f[len(base):]
        parts = rest.split("/")
        if (len(parts) == 2 and parts[0] == "bin" and parts[1] in names) or (
            len(parts) == 3 and parts[0].startswith("erts-") and parts[1] == "bin" and parts[2] in names
        ):
            out.append(f)
    return sorted(out)


def rewrite_rootdir(text: str, new_root: str) -> tuple[str, set[str]]:
    """Replace literal `ROOTDIR=/abs/path` assignments; return the new text and the old values.
    Assignments computed at run time (`ROOTDIR="$dyn_rootdir"`) are left alone."""
    old: set[str] = set()

    def sub(m: re.Match[str]) -> str:
        old.add(m.group(3))
        return f"{m.group(1)}{m.group(2)}{new_root}{m.group(4)}"

    return _ROOTDIR_RE.sub(sub, text), old
