"""Pure planning: what `slim` would remove, strip or rewrite, and how many bytes each rule saves.

Why a separate pure step: `--dry-run`, `--json` and the tests all need the exact effect of a profile
on a tree without touching it, and `apply` then only carries out a list of decided actions (on a copy
unless `--in-place`). Planning reads files (BEAM sizes are computed exactly by stripping in memory,
ELF gains estimated from section headers) but never writes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packer.errors import SlimError
from packer.findings import Finding, Severity, define, finding
from packer.pyc import cache_tag, pycache_source
from packer.slim import beam, elfstrip, otp
from packer.slim.dedupe import plan_dedupe
from packer.slim.profiles import Profile, Rule, glob_match
from packer.tree import DIR, FILE, SYMLINK, Tree, open_tree

# -- finding codes (LP6xx: slimming) ----------------------------------------------------------------
NO_STRIP = define("LP600", Severity.INFO, "ELF files not stripped: no binutils strip for their machine",
                  "install binutils (or the cross binutils for the target arch) and slim again")
ELF_PAYLOAD = define("LP601", Severity.INFO, "ELF file has bytes past the end of its image; not stripped",
                     "nothing to fix: strip drops whatever follows the ELF image, so the file is kept as it is")
ELF_GRAFTED = define("LP602", Severity.INFO, "vendored library in a *.libs/ directory or hash-named; not stripped",
                     "auditwheel/patchelf-grafted libraries break when stripped (page alignment); leave them")
ELF_ALIGN = define("LP603", Severity.WARNING, "stripping would change ELF segment alignment; original kept",
                   "the file was left as it was; nothing to do")
BAD_BEAM = define("LP604", Severity.WARNING, "a .beam file is not a valid BEAM container; left alone",
                  "rebuild the file or exclude it; it will not load either way")
DROP_LISTED = define("LP605", Severity.WARNING, "a kept application lists an always-dropped GUI/dev-tool app",
                     "if it is really needed at run time, pass --keep-app NAME")
SOFT_DEP = define("LP606", Severity.INFO, "removed app is named in a kept app's runtime_dependencies (not followed)",
                  "runtime_dependencies are soft hints; pass --keep-app NAME if your code calls into it")
UNKNOWN_APP = define("LP607", Severity.WARNING, "a requested root application is not in the tree",
                     "check the name with `ls lib/`; apps are named without their version")
ROOTDIR = define("LP608", Severity.INFO, "hard-coded ROOTDIR rewritten for the layer's mount path",
                 "the layer must be unpacked at this path (use --mount-path if it is not /opt)")
HINT = define("LP609", Severity.INFO, "a better way to make this smaller than deleting files",
              "see the message for the build-time option")
LINK_OUT = define("LP610", Severity.INFO, "symlink points outside the layer or dangles; removed",
                  "zip would follow or drop it; Debian's doc links point into /usr/share/doc")
NO_PYC = define("LP611", Severity.INFO, "Python sources without .pyc for the runtime's Python: every cold start compiles them",
                "pass --compile-pyc --runtime python3.X (hash-based .pyc of the runtime's version; /opt is read-only on Lambda)")
DEDUPED = define("LP614", Severity.INFO, "identical copies in one directory will be stored as symlinks (--dedupe)",
                 "nothing to fix: Lambda restores the links; drop --dedupe to keep real copies")

# What compiling from source costs at a cold start, measured (python3.12 on a 2-CPU x86_64 machine,
# 21 runs each): `import requests, rich.console, rich.markdown, pygments.lexers.python` (pure Python)
# took 420-630 ms without .pyc and 180-220 ms with cpython-312 .pyc; interpreter start alone 45-55 ms.
COMPILE_COST = "measured on python3.12: importing requests + rich took 420-630 ms from source, 180-220 ms from .pyc"
PYC_TAG = define("LP612", Severity.INFO, "foreign .pyc not removed: the target Python version is unknown",
                 "pass --runtime python3.X so only the runtime's cache tag is kept")

REMOVE, STRIP_ELF, STRIP_BEAM, REWRITE, LINK = "remove", "strip-elf", "strip-beam", "rewrite", "link"
DEDUPE_RULE = "dedupe"


@dataclass(frozen=True)
class Action:
    rule: str
    op: str  # remove | strip-elf | strip-beam | rewrite | link
    path: str  # relative; for removals the top-most removed entry
    before: int  # bytes of regular files affected
    after: int  # bytes left (0 for removals; exact for BEAM, estimated for ELF)
    files: int = 1
    note: str = ""  # for a link: its target (a name in the same directory)

    @property
    def saved(self) -> int:
        return self.before - self.after

    def to_json(self) -> dict:
        return {"rule": self.rule, "op": self.op, "path": self.path, "files": self.files,
                "bytes_before": self.before, "bytes_after": self.after, "saved": self.saved,
                **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class RuleTotal:
    id: str
    tier: str
    action: str
    reason: str
    files: int
    before: int
    after: int

    @property
    def saved(self) -> int:
        return self.before - self.after

    def to_json(self) -> dict:
        return {"id": self.id, "tier": self.tier, "action": self.action, "reason": self.reason,
                "files": self.files, "bytes_before": self.before, "bytes_after": self.after, "saved": self.saved}


@dataclass(frozen=True)
class SlimOptions:
    tier: str = "safe"
    keep: tuple[str, ...] = ()  # user globs: never removed, stripped or rewritten
    keep_apps: tuple[str, ...] = ()
    mount_path: str = "/opt"
    beam_gzip: bool | None = None  # None: the profile's setting
    beam_keep_chunks: tuple[str, ...] | None = None  # None: the profile's extra chunks
    runtime: str | None = None  # e.g. python3.12: which pyc cache tag to keep
    compile_pyc: bool = False  # the output will be precompiled (no LP611)
    dedupe: bool = False  # identical copies in one directory become symlinks to the first


@dataclass(frozen=True)
class SlimPlan:
    root: str
    profile: str
    tier: str
    mount_path: str
    actions: tuple[Action, ...]
    rules: tuple[RuleTotal, ...]
    not_applied: tuple[RuleTotal, ...]  # rules of higher tiers (what --tier would add), not sized
    apps_kept: dict[str, str]
    apps_removed: dict[str, str]
    findings: tuple[Finding, ...]
    before_bytes: int
    files_before: int
    beam: dict = field(default_factory=dict)  # {"extra": [...], "gzip": bool, "otp_release": int|None}

    @property
    def saved_bytes(self) -> int:
        return sum(a.saved for a in self.actions)

    @property
    def after_bytes(self) -> int:
        return self.before_bytes - self.saved_bytes

    def to_json(self) -> dict:
        return {
            "input": self.root, "profile": self.profile, "tier": self.tier, "mount_path": self.mount_path,
            "bytes_before": self.before_bytes, "bytes_after": self.after_bytes, "saved": self.saved_bytes,
            "files_before": self.files_before,
            "rules": [r.to_json() for r in self.rules],
            "not_applied": [{"id": r.id, "tier": r.tier, "action": r.action, "reason": r.reason} for r in self.not_applied],
            "apps": {"kept": self.apps_kept, "removed": self.apps_removed},
            "beam": self.beam,
            "actions": [a.to_json() for a in self.actions],
            "findings": [f.to_json() for f in self.findings],
        }


# -- helpers ---------------------------------------------------------------------------------------


def _bases(scope: str, graph: otp.Graph) -> list[str]:
    if scope == "tree":
        return [""]
    if scope == "otp":
        return [r.path for r in graph.roots if r.kind == "otp"]
    if scope == "elixir":
        return [r.path for r in graph.roots if r.kind == "elixir"]
    if scope == "otp-app":
        return [a.dir for a in graph.apps.values() if a.root is not None]
    raise SlimError(f"unknown scope {scope}")


def _scoped(path: str, bases: list[str]) -> Iterable[str]:
    for b in bases:
        if not b:
            yield path
        elif path.startswith(b + "/"):
            yield path[len(b) + 1 :]


def _matches(rule: Rule, path: str, kind: str, bases: list[str], entries: dict) -> bool:
    if rule.kind != "any" and rule.kind != kind:
        return False
    for rel in _scoped(path, bases):
        if any(glob_match(g, rel) for g in rule.match) and not any(glob_match(g, rel) for g in rule.exclude):
            if rule.requires_sibling:
                suffix, repl = rule.requires_sibling
                if not path.endswith(suffix) or path[: -len(suffix)] + repl not in entries:
                    continue
            return True
    return False


def _ancestors(path: str) -> Iterable[str]:
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def _link_status(tree: Tree, rel: str, mount: str) -> str:
    """"ok", or why the link will not work once the layer is unpacked at `mount`."""
    entry = tree.entries[rel]
    target = entry.link or ""
    if target.startswith("/"):
        m = mount.rstrip("/")
        if target == m or target.startswith(m + "/"):
            inner = target[len(m) :].lstrip("/")
            return "ok" if (inner == "" or inner in tree.entries) else "dangling"
        return f"points outside the layer ({target})"
    _, status = tree.resolve(rel)
    if status == "ok":
        return "ok"
    if status.startswith("absolute:"):
        return f"points outside the layer ({status[9:]})"
    return {"escapes": "escapes the tree", "dangling": "dangles", "loop": "is a symlink loop"}.get(status, status)


_PYC_TAG = re.compile(r"\.(cpython-\d+|pypy\d+-pp\d+|[a-z]+-\d+)(?:\.opt-\d)?\.pyc$")


def _runtime_pyc_tag(runtime: str | None) -> str | None:
    return cache_tag(runtime)


# -- the planner -----------------------------------------------------------------------------------
#
# plan() is a pipeline: open the tree -> index it (sizes, OTP graph, what the keep globs protect)
# -> prune OTP applications -> decide removals entry by entry -> one planner per remaining TOML
# `action` on what survives -> the Python bytecode check -> totals. Each step reads the shared
# `_Scan` and adds to its `doomed` map and `findings`; only `_Scan.build` and the removal walk know
# about protection.


@dataclass
class _Scan:
    """The tree as the planners see it, and what they have decided so far."""

    root: Path
    tree: Tree
    profile: Profile
    options: SlimOptions
    rules: list[Rule]
    graph: otp.Graph
    order: list[str]
    size_below: dict[str, tuple[int, int]]  # dir -> (bytes, files) of the regular files below it
    before: int
    files_before: int
    bases: dict[str, list[str]] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)  # never removed (profile guards and --keep, plus parents)
    user_protected: set[str] = field(default_factory=set)  # --keep and parents: also shields whole applications
    untouchable: set[str] = field(default_factory=set)  # --keep: not stripped or rewritten either
    doomed: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (rule id, note) for every removed entry
    findings: list[Finding] = field(default_factory=list)
    beam_info: dict = field(default_factory=dict)

    @property
    def entries(self) -> dict:
        return self.tree.entries

    def matches(self, rule: Rule, rel: str) -> bool:
        return _matches(rule, rel, self.entries[rel].kind, self.bases[rule.id], self.entries)

    def weight(self, rel: str) -> tuple[int, int]:
        e = self.entries[rel]
        if e.kind == DIR:
            return self.size_below.get(rel, (0, 0))
        return (e.size, 1) if e.kind == FILE else (0, 0)

    def survivors(self) -> list[str]:
        return [rel for rel in self.order if rel not in self.doomed and rel not in self.untouchable]

    @classmethod
    def build(cls, root: Path, tree: Tree, profile: Profile, options: SlimOptions) -> _Scan:
        entries = tree.entries
        order = sorted(entries)
        size_below: dict[str, tuple[int, int]] = {}
        before = files_before = 0
        for rel in order:
            e = entries[rel]
            if e.kind == FILE:
                before += e.size
                files_before += 1
                for a in _ancestors(rel):
                    b, f = size_below.get(a, (0, 0))
                    size_below[a] = (b + e.size, f + 1)
        graph = otp.discover(root, (r for r in order if entries[r].kind == DIR))
        rules = profile.rules_for(options.tier)
        scan = cls(root, tree, profile, options, rules, graph, order, size_below, before, files_before)
        scan.bases = {r.id: _bases(r.scope, graph) for r in rules}
        scan.protect()
        return scan

    def protect(self) -> None:
        """Mark what the keep globs shield: --keep entries (untouchable), profile guards, their parents."""
        for rel in self.order:
            if any(glob_match(g, rel) for g in self.options.keep):
                self.untouchable.add(rel)
                self.protected.add(rel)
                self.protected.update(_ancestors(rel))
                self.user_protected.add(rel)
                self.user_protected.update(_ancestors(rel))
            elif any(glob_match(g, rel) for g in self.profile.keep):
                self.protected.add(rel)
                self.protected.update(_ancestors(rel))
        for rel in self.order:  # anything below an untouchable dir is untouchable too
            if any(a in self.untouchable for a in _ancestors(rel)):
                self.untouchable.add(rel)
                self.protected.add(rel)


def _open(path: str | Path) -> tuple[Path, Tree]:
    root = Path(path)
    tree = open_tree(root)
    if tree.kind != "dir":
        raise SlimError(f"{path}: slim works on a directory", hint="unzip the layer first, or point at the tree you build it from")
    if tree.problems:
        p = tree.problems[0]
        raise SlimError(f"{path}/{p.path}: {p.detail}", hint="make the tree readable before slimming it")
    return root, tree


def plan(path: str | Path, profile: Profile, options: SlimOptions = SlimOptions()) -> SlimPlan:
    """Decide every action of `profile` at `options.tier` on the directory `path` (read-only)."""
    root, tree = _open(path)
    scan = _Scan.build(root, tree, profile, options)
    apps_kept, apps_removed = _prune_apps(scan)
    _decide_removals(scan)
    actions = _removal_actions(scan)
    for r in scan.rules:
        planner = _SURVIVOR_PLANNERS.get(r.action)
        if planner is not None:
            actions += planner(scan, r)
    if options.dedupe:
        actions += _plan_dedupe(scan, actions)
    _check_bytecode(scan)
    return _summarise(scan, actions, apps_kept, apps_removed)


# -- prune-apps: the OTP application closure -------------------------------------------------------


def _app_roots(scan: _Scan) -> dict[str, str]:
    """The applications everything else is kept for, and why."""
    graph, roots = scan.graph, {}
    for name in scan.profile.otp.roots:
        if name in graph.apps:
            roots[name] = f"profile {scan.profile.name} root"
    for rel_file, names in graph.releases.items():
        for n in names:
            roots.setdefault(n, f"in release {rel_file}")
    for name, app in graph.apps.items():
        if app.root is None:
            roots.setdefault(name, f"your application ({app.dir})")
    for name in scan.options.keep_apps:
        roots[name] = "--keep-app"
        if name not in graph.apps:
            scan.findings.append(finding(UNKNOWN_APP, name, f"--keep-app {name}: no application {name!r} in the tree"))
    return roots


def _prune_apps(scan: _Scan) -> tuple[dict[str, str], dict[str, str]]:
    """(kept, removed) applications; the removed ones' directories are doomed."""
    graph = scan.graph
    prune_rule = next((r for r in scan.rules if r.action == "prune-apps"), None)
    if not graph.apps or (prune_rule is None and not scan.options.keep_apps):
        return {}, {}
    cl = otp.closure(graph.apps, _app_roots(scan), scan.profile.otp.drop_always)
    apps_kept = dict(sorted(cl.kept.items()))
    if prune_rule is None:
        return apps_kept, {}
    apps_removed = dict(cl.removed)
    for name, why in cl.removed.items():
        d = graph.apps[name].dir
        if d in scan.user_protected:
            apps_removed.pop(name)
            apps_kept[name] = "protected by a keep glob"
            continue
        scan.doomed[d] = (prune_rule.id, f"app {name}: {why}")
    for name, by in cl.dropped_but_required.items():
        scan.findings.append(finding(DROP_LISTED, graph.apps[name].dir,
                                     f"{by} lists {name} in applications, but {name} is a GUI/dev-tool app and was dropped"))
    for name, by in cl.soft_misses.items():
        if name in apps_removed:
            scan.findings.append(finding(SOFT_DEP, graph.apps[name].dir,
                                         f"{name} removed; runtime_dependencies of {', '.join(by)} mention it"))
    return apps_kept, apps_removed


# -- remove, remove-links, remove-foreign-pyc: decided entry by entry --------------------------------


@dataclass
class _PycState:
    rule: Rule | None
    tag: str | None
    reported: bool = False


def _decide_removals(scan: _Scan) -> None:
    """Walk the tree once: first matching rule wins; children of a doomed dir follow it."""
    remove_rules = [r for r in scan.rules if r.action == "remove"]
    link_rules = [r for r in scan.rules if r.action == "remove-links"]
    pyc = _PycState(next((r for r in scan.rules if r.action == "remove-foreign-pyc"), None),
                    _runtime_pyc_tag(scan.options.runtime))
    protected_doom: dict[str, tuple[str, str]] = {}  # protected dirs a rule matched: their children go
    for rel in scan.order:
        if rel in scan.doomed:
            continue
        inherited = next((scan.doomed[a] for a in _ancestors(rel) if a in scan.doomed), None)
        if inherited is not None:
            scan.doomed[rel] = inherited
            continue
        pd = next((protected_doom[a] for a in _ancestors(rel) if a in protected_doom), None)
        if rel in scan.protected:
            _protected_entry(scan, rel, pd, remove_rules, protected_doom)
            continue
        hit = pd or _by_links(scan, rel, link_rules) or _by_remove(scan, rel, remove_rules) or _by_foreign_pyc(scan, rel, pyc)
        if hit is not None:
            scan.doomed[rel] = hit


def _protected_entry(scan: _Scan, rel: str, pd: tuple[str, str] | None, remove_rules: list[Rule],
                     protected_doom: dict[str, tuple[str, str]]) -> None:
    """Profile guards yield to danger-tier rules (the user asked for the risky set explicitly);
    a protected dir a rule matches stays, but its unprotected children go."""
    if rel not in scan.user_protected:
        hit = next(((r.id, "danger tier overrides the profile guard") for r in remove_rules
                    if r.tier == "danger" and scan.matches(r, rel)), None)
        if hit is not None:
            scan.doomed[rel] = hit
            return
    if scan.entries[rel].kind == DIR:
        hit = pd or next(((r.id, "") for r in remove_rules if scan.matches(r, rel)), None)
        if hit is not None:
            protected_doom[rel] = hit


def _by_links(scan: _Scan, rel: str, link_rules: list[Rule]) -> tuple[str, str] | None:
    """remove-links: a symlink that will not work once unpacked at the mount path."""
    e = scan.entries[rel]
    if e.kind != SYMLINK:
        return None
    for r in link_rules:
        if r.match and not scan.matches(r, rel):
            continue
        status = _link_status(scan.tree, rel, scan.options.mount_path)
        if status == "ok":
            return None
        scan.findings.append(finding(LINK_OUT, rel, f"symlink -> {e.link} {status}; removed"))
        return (r.id, f"link -> {e.link}: {status}")
    return None


def _by_remove(scan: _Scan, rel: str, remove_rules: list[Rule]) -> tuple[str, str] | None:
    return next(((r.id, "") for r in remove_rules if scan.matches(r, rel)), None)


def _by_foreign_pyc(scan: _Scan, rel: str, pyc: _PycState) -> tuple[str, str] | None:
    """remove-foreign-pyc: bytecode for another interpreter than the runtime's."""
    if pyc.rule is None or scan.entries[rel].kind != FILE or not rel.endswith(".pyc") or "/__pycache__/" not in f"/{rel}":
        return None
    if pyc.tag is None:
        if not pyc.reported:
            scan.findings.append(finding(PYC_TAG, rel, f"rule {pyc.rule.id} skipped: no --runtime python3.X given"))
            pyc.reported = True
        return None
    m = _PYC_TAG.search(rel)
    if m is None or m.group(1) != pyc.tag:
        return (pyc.rule.id, f"cache tag is not {pyc.tag}")
    return None


def _removal_actions(scan: _Scan) -> list[Action]:
    """One REMOVE action per top-most removed entry, weighing everything below it."""
    actions: list[Action] = []
    for rel in scan.order:
        if rel not in scan.doomed:
            continue
        parent = rel.rsplit("/", 1)[0] if "/" in rel else None
        if parent in scan.doomed:
            continue  # reported with its top-most removed ancestor
        rid, note = scan.doomed[rel]
        b, f = scan.weight(rel)
        actions.append(Action(rid, REMOVE, rel, b, 0, f, note))
    return actions


# -- strip-beam, strip-elf, rewrite-rootdir, hint: on what survives ---------------------------------


def _plan_strip_beam(scan: _Scan, r: Rule) -> list[Action]:
    opts, otp_cfg = scan.options, scan.profile.otp
    extra = opts.beam_keep_chunks if opts.beam_keep_chunks is not None else otp_cfg.beam_extra_chunks
    gz = opts.beam_gzip if opts.beam_gzip is not None else otp_cfg.beam_gzip
    scan.beam_info = {"extra_chunks": list(extra), "gzip": gz, "otp_release": scan.graph.otp_release}
    actions = []
    for rel in scan.survivors():
        if scan.entries[rel].kind != FILE or not rel.endswith(".beam") or not scan.matches(r, rel):
            continue
        data = (scan.root / rel).read_bytes()
        try:
            out = beam.strip(data, extra=extra, otp_release=scan.graph.otp_release, compress=gz)
        except beam.BeamError as exc:
            scan.findings.append(finding(BAD_BEAM, rel, f"not stripped: {exc}"))
            continue
        if out != data:
            actions.append(Action(r.id, STRIP_BEAM, rel, len(data), len(out)))
    return actions


def _plan_strip_elf(scan: _Scan, r: Rule) -> list[Action]:
    actions, no_tool = [], []
    for rel in scan.survivors():
        e = scan.entries[rel]
        if e.kind != FILE or e.size < 64 or not scan.matches(r, rel) or scan.tree.read_head(rel, 4) != b"\x7fELF":
            continue
        c = elfstrip.candidate(scan.root / rel, rel)
        if c.ok:
            actions.append(Action(r.id, STRIP_ELF, rel, e.size, e.size - c.estimate, note="estimated from section sizes"))
        elif c.reason == "payload":
            scan.findings.append(finding(ELF_PAYLOAD, rel, f"not stripped: {c.detail}; strip would drop them"))
        elif c.reason in ("grafted", "hashed"):
            scan.findings.append(finding(ELF_GRAFTED, rel, f"not stripped: {c.detail}"))
        elif c.reason == "no-strip":
            no_tool.append((rel, c.detail))
    if no_tool:
        machines = ", ".join(sorted({detail for _, detail in no_tool}))
        scan.findings.append(finding(NO_STRIP, no_tool[0][0],
                                     f"{len(no_tool)} ELF file(s) would shrink but no binutils strip can handle them: {machines}"))
    return actions


def _plan_rewrite_rootdir(scan: _Scan, r: Rule) -> list[Action]:
    actions = []
    files = [s for s in scan.survivors() if scan.entries[s].kind == FILE]
    for root_ in scan.graph.roots:
        if root_.kind != "otp":
            continue
        mount = scan.options.mount_path
        new_root = posixpath.normpath(posixpath.join(mount, root_.path) if root_.path else mount)
        for rel in otp.rootdir_scripts(root_, iter(files)):
            text = (scan.root / rel).read_text(encoding="utf-8", errors="surrogateescape")
            new, old = otp.rewrite_rootdir(text, new_root)
            if new != text:
                n = len(new.encode("utf-8", "surrogateescape"))
                note = f"ROOTDIR {', '.join(sorted(old))} -> {new_root}"
                actions.append(Action(r.id, REWRITE, rel, scan.entries[rel].size, n, note=note))
                scan.findings.append(finding(ROOTDIR, rel, note))
    return actions


def _plan_hint(scan: _Scan, r: Rule) -> list[Action]:
    hits = [rel for rel in scan.survivors() if scan.matches(r, rel)]
    if hits:
        scan.findings.append(finding(HINT, hits[0], r.reason, hint=r.hint or None))
    return []


_SURVIVOR_PLANNERS = {
    "strip-beam": _plan_strip_beam,
    "strip-elf": _plan_strip_elf,
    "rewrite-rootdir": _plan_rewrite_rootdir,
    "hint": _plan_hint,
}


def _check_bytecode(scan: _Scan) -> None:
    """A Python tree (*.dist-info or __pycache__) shipping sources but no .pyc the runtime's Python
    reads (by cache tag when --runtime names one: pip run by python3.11 writes cpython-311 files a
    python3.12 layer never uses) compiles them at every cold start."""
    if scan.options.compile_pyc:
        return
    dirs = [rel for rel in scan.order if scan.entries[rel].kind == DIR]
    if not any(rel.endswith(".dist-info") or rel.rsplit("/", 1)[-1] == "__pycache__" for rel in dirs):
        return
    kept = [rel for rel in scan.order if rel not in scan.doomed and scan.entries[rel].kind == FILE]
    if not any(rel.endswith(".py") for rel in kept):
        return
    tag = _runtime_pyc_tag(scan.options.runtime)
    if tag is None:
        if not any(rel.endswith(".pyc") for rel in kept):
            scan.findings.append(finding(NO_PYC, ".", f"no .pyc files will be shipped: every cold start compiles "
                                         f"the sources ({COMPILE_COST})"))
        return
    if any((src := pycache_source(rel)) is not None and src[1] == tag for rel in kept):
        return
    tags = {src[1] for src in map(pycache_source, scan.order) if src is not None}  # before removals
    what = f"the .pyc are for {', '.join(sorted(tags))} only, which {scan.options.runtime} never reads" \
        if tags and tag not in tags else f"no {tag} .pyc will be shipped"
    scan.findings.append(finding(NO_PYC, ".", f"{what}: every cold start compiles the sources ({COMPILE_COST})",
                                 tags=sorted(tags)))


def _plan_dedupe(scan: _Scan, actions: list[Action]) -> list[Action]:
    """--dedupe: later identical copies (same directory) become links to the first; a copy that is
    also stripped or rewritten weighs what that leaves (both copies get the same treatment)."""
    after = {a.path: a.after for a in actions if a.op != REMOVE}
    links = plan_dedupe(scan.tree, scan.survivors()).links
    if links:
        saved = sum(after.get(k.path, k.size) - len(k.target.encode()) for k in links)
        scan.findings.append(finding(DEDUPED, links[0].path, f"{len(links)} identical copies become symlinks "
                                     f"(saves about {saved:,} bytes), e.g. {links[0].path} -> {links[0].target}",
                                     links=len(links)))
    return [Action(DEDUPE_RULE, LINK, k.path, after.get(k.path, k.size), len(k.target.encode()), note=k.target)
            for k in links]


def _summarise(scan: _Scan, actions: list[Action], apps_kept: dict[str, str], apps_removed: dict[str, str]) -> SlimPlan:
    totals: dict[str, list[int]] = {}
    for a in actions:
        t = totals.setdefault(a.rule, [0, 0, 0])
        t[0] += a.files
        t[1] += a.before
        t[2] += a.after
    rule_rows = tuple(RuleTotal(r.id, r.tier, r.action, r.reason, *totals.get(r.id, [0, 0, 0])) for r in scan.rules)
    if scan.options.dedupe:
        rule_rows += (RuleTotal(DEDUPE_RULE, "safe", "link", "identical copies in one directory (--dedupe)",
                                *totals.get(DEDUPE_RULE, [0, 0, 0])),)
    not_applied = tuple(RuleTotal(r.id, r.tier, r.action, r.reason, 0, 0, 0)
                        for r in scan.profile.rules if not r.applies(scan.options.tier))
    return SlimPlan(str(scan.root), scan.profile.name, scan.options.tier, scan.options.mount_path, tuple(actions), rule_rows,
                    not_applied, apps_kept, dict(sorted(apps_removed.items())), tuple(scan.findings), scan.before,
                    scan.files_before, scan.beam_info)
