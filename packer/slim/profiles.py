"""Slim profiles: rule tables as data (`rules/profiles/*.toml`), loaded and validated here.

Why data: which files an interpreter distribution can lose is knowledge that changes with each
ecosystem release (a new OTP chunk, a package that loads from its `assets/`), and users must be able to
read, extend (`--rules FILE`) and override (`--keep GLOB`) it without editing code — auditwheel's
policy JSON and modclean's tiered pattern lists are the models. A malformed profile is a
`PolicyError` that names the file and line.
"""

from __future__ import annotations

import re
from packer._compat import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from packer import datafiles
from packer.errors import PolicyError


TIERS = ("safe", "caution", "danger")
ACTIONS = ("remove", "remove-links", "strip-elf", "strip-beam", "prune-apps", "rewrite-rootdir", "remove-foreign-pyc", "hint")
SCOPES = ("tree", "otp", "otp-app", "elixir")
KINDS = ("any", "file", "dir", "symlink")

_RULE_KEYS = {"id", "tier", "action", "reason", "match", "except", "scope", "kind", "requires_sibling", "hint"}
_TOP_KEYS = {"name", "extends", "description", "keep", "rule", "otp"}
_OTP_KEYS = {"roots", "drop_always", "beam_extra_chunks", "beam_gzip"}


@dataclass(frozen=True)
class Rule:
    id: str
    tier: str
    action: str
    reason: str
    match: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    scope: str = "tree"
    kind: str = "any"
    requires_sibling: tuple[str, str] | None = None  # (suffix, replacement): foo.ts needs foo.js
    hint: str | None = None
    origin: str = ""  # file:line, for messages

    def applies(self, tier: str) -> bool:
        return TIERS.index(self.tier) <= TIERS.index(tier)


@dataclass(frozen=True)
class OtpSettings:
    roots: tuple[str, ...] = ("kernel", "stdlib")
    drop_always: tuple[str, ...] = ()
    beam_extra_chunks: tuple[str, ...] = ("Attr",)
    beam_gzip: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    rules: tuple[Rule, ...]
    keep: tuple[str, ...] = ()
    otp: OtpSettings = field(default_factory=OtpSettings)
    chain: tuple[str, ...] = ()  # the profile and what it extends, nearest first

    def rules_for(self, tier: str) -> list[Rule]:
        return [r for r in self.rules if r.applies(tier)]


def profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in datafiles.rules().joinpath("profiles").iterdir() if p.name.endswith(".toml"))


def _rule_lines(text: str) -> list[int]:
    """Line numbers of each `[[rule]]` header, in order (tomllib gives no positions for values)."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]


def _strs(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: {key!r} must be a string or a list of strings")
    return tuple(value)


def parse_profile(text: str, origin: str) -> tuple[dict[str, Any], list[Rule]]:
    """Validate one profile file; return its top-level table and its rules (without `extends`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{origin}: invalid TOML: {exc}") from exc
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise PolicyError(f"{origin}: unknown key(s) {', '.join(sorted(unknown))}",
                          hint=f"allowed: {', '.join(sorted(_TOP_KEYS))}")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise PolicyError(f"{origin}: 'rule' must be an array of tables ([[rule]])")
    lines = _rule_lines(text)
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, r in enumerate(raw_rules):
        where = f"{origin}:{lines[n]}" if n < len(lines) else f"{origin}: rule #{n + 1}"
        if not isinstance(r, dict):
            raise PolicyError(f"{where}: a rule must be a table")
        bad = set(r) - _RULE_KEYS
        if bad:
            raise PolicyError(f"{where}: unknown rule key(s) {', '.join(sorted(bad))}",
                              hint=f"allowed: {', '.join(sorted(_RULE_KEYS))}")
        for key in ("id", "tier", "action", "reason"):
            if not isinstance(r.get(key), str) or not r[key].strip():
                raise PolicyError(f"{where}: rule needs a non-empty string {key!r}")
        if r["id"] in seen:
            raise PolicyError(f"{where}: duplicate rule id {r['id']!r}")
        seen.add(r["id"])
        if r["tier"] not in TIERS:
            raise PolicyError(f"{where}: tier {r['tier']!r} is not one of {', '.join(TIERS)}")
        if r["action"] not in ACTIONS:
            raise PolicyError(f"{where}: action {r['action']!r} is not one of {', '.join(ACTIONS)}")
        scope = r.get("scope", "tree")
        if scope not in SCOPES:
            raise PolicyError(f"{where}: scope {scope!r} is not one of {', '.join(SCOPES)}")
        kind = r.get("kind", "any")
        if kind not in KINDS:
            raise PolicyError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        match = _strs(r.get("match", []), where, "match")
        excepted = _strs(r.get("except", []), where, "except")
        if r["action"] in ("remove", "strip-elf", "strip-beam", "hint") and not match:
            raise PolicyError(f"{where}: action {r['action']!r} needs a 'match' glob list")
        for g in match + excepted:
            _check_glob(g, where)
        sib = None
        if "requires_sibling" in r:
            s = _strs(r["requires_sibling"], where, "requires_sibling")
            if len(s) != 2:
                raise PolicyError(f"{where}: requires_sibling must be [suffix, replacement], e.g. ['.ts', '.js']")
            sib = (s[0], s[1])
        hint = r.get("hint")
        if hint is not None and not isinstance(hint, str):
            raise PolicyError(f"{where}: 'hint' must be a string")
        rules.append(Rule(r["id"], r["tier"], r["action"], r["reason"].strip(), match,
                          excepted, scope, kind, sib, hint, where))
    for key in ("name", "extends", "description"):
        if key in data and not isinstance(data[key], str):
            raise PolicyError(f"{origin}: {key!r} must be a string")
    if "keep" in data:
        for g in _strs(data["keep"], origin, "keep"):
            _check_glob(g, origin)
    otp = data.get("otp", {})
    if not isinstance(otp, dict):
        raise PolicyError(f"{origin}: [otp] must be a table")
    bad = set(otp) - _OTP_KEYS
    if bad:
        raise PolicyError(f"{origin}: unknown [otp] key(s) {', '.join(sorted(bad))}",
                          hint=f"allowed: {', '.join(sorted(_OTP_KEYS))}")
    for key in ("roots", "drop_always", "beam_extra_chunks"):
        if key in otp:
            _strs(otp[key], origin, f"otp.{key}")
    for c in otp.get("beam_extra_chunks", []):
        if len(c) != 4 or not c.isascii():
            raise PolicyError(f"{origin}: BEAM chunk id {c!r} must be 4 ASCII characters")
    if "beam_gzip" in otp and not isinstance(otp["beam_gzip"], bool):
        raise PolicyError(f"{origin}: otp.beam_gzip must be true or false")
    return data, rules


def _check_glob(g: str, where: str) -> None:
    if not g or g.startswith("//") or g == "/" or ".." in g.split("/"):
        raise PolicyError(f"{where}: glob {g!r} must be a relative path without '..' (a leading '/' anchors it)")
    if g.count("[") != g.count("]"):
        raise PolicyError(f"{where}: glob {g!r} has an unbalanced '['")


def _read(path: Path | Traversable) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read ({exc})") from exc


@lru_cache(maxsize=None)
def _load_named(name: str, _stack: tuple[str, ...] = ()) -> Profile:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise PolicyError(f"unknown slim profile {name!r}", hint=f"choose one of {', '.join(profile_names())}")
    path = datafiles.rule_file("profiles", f"{name}.toml")
    if not path.is_file():
        raise PolicyError(f"unknown slim profile {name!r}", hint=f"choose one of {', '.join(profile_names())}")
    return _build(_read(path), str(path), name, _stack)


def _build(text: str, origin: str, default_name: str, stack: tuple[str, ...]) -> Profile:
    data, rules = parse_profile(text, origin)
    name = data.get("name", default_name)
    parent: Profile | None = None
    if "extends" in data:
        if data["extends"] in stack or data["extends"] == name:
            raise PolicyError(f"{origin}: 'extends' forms a cycle ({' -> '.join((*stack, name, data['extends']))})")
        parent = _load_named(data["extends"], (*stack, name))
    return merge(parent, name, data, rules)


def merge(parent: Profile | None, name: str, data: dict[str, Any], rules: list[Rule]) -> Profile:
    """A child's rule with the same id replaces the parent's (in the parent's position); new rules
    follow. `keep` and `otp.roots`/`drop_always` accumulate; scalar otp settings override."""
    merged: list[Rule] = list(parent.rules) if parent else []
    index = {r.id: i for i, r in enumerate(merged)}
    for r in rules:
        if r.id in index:
            merged[index[r.id]] = r
        else:
            index[r.id] = len(merged)
            merged.append(r)
    otp_raw = data.get("otp", {})
    base = parent.otp if parent else OtpSettings()
    otp = replace(
        base,
        roots=tuple(dict.fromkeys((*base.roots, *_strs(otp_raw.get("roots", []), name, "roots")))) if parent or "roots" in otp_raw else base.roots,
        drop_always=tuple(dict.fromkeys((*base.drop_always, *_strs(otp_raw.get("drop_always", []), name, "drop_always")))),
        beam_extra_chunks=tuple(otp_raw["beam_extra_chunks"]) if "beam_extra_chunks" in otp_raw else base.beam_extra_chunks,
        beam_gzip=otp_raw.get("beam_gzip", base.beam_gzip),
    )
    if not parent and "roots" in otp_raw:
        otp = replace(otp, roots=_strs(otp_raw["roots"], name, "roots"))
    keep = tuple(dict.fromkeys((*(parent.keep if parent else ()), *_strs(data.get("keep", []), name, "keep"))))
    return Profile(name, data.get("description", parent.description if parent else ""), tuple(merged), keep, otp,
                   (name, *(parent.chain if parent else ())))


def load(name: str, extra_rule_files: tuple[str | Path, ...] = ()) -> Profile:
    """The named shipped profile plus user rule files (each may also say `extends`, ignored here:
    a user file always layers on top of the chosen profile)."""
    prof = _load_named(name)
    for f in extra_rule_files:
        path = Path(f)
        data, rules = parse_profile(_read(path), str(path))
        data.pop("extends", None)
        prof = merge(prof, prof.name, data, rules)
    return prof


# -- globs -----------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """gitignore-like globs on posix relative paths: `*`/`?`/`[..]` stay inside one segment, `**`
    spans segments (also none); a pattern without `/` matches the name at any depth, a leading `/`
    anchors a pattern at the rule's scope base."""
    pat = pattern.rstrip("/")
    anchored = "/" in pat
    pat = pat.lstrip("/")
    i, out = 0, []
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and pat.find("]", i + 2) != -1:  # `[]x]`: a leading `]` is part of the set
            j = pat.find("]", i + 2)
            body = pat[i + 1 : j].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    try:
        return re.compile(body if anchored else f"(?:.*/)?{body}")
    except re.error as exc:  # `[z-a]`, `[!]`: a set the glob syntax allows to be written
        raise PolicyError(f"glob {pattern!r} cannot be used: {exc}") from None


def glob_match(pattern: str, rel: str) -> bool:
    return glob_regex(pattern).fullmatch(rel) is not None
