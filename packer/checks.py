"""Layout, permission and link checks: will Lambda find and be allowed to run what is in the tree?

These are the failures users meet after upload with no ELF involved: `Couldn't find valid
bootstrap(s)` from a zip with a parent folder, `permission denied` from a lost exec bit, EACCES from
a 0600 file (Lambda runs your code as a user that owns none of the files), a `#!/bin/bash` script
that calls `curl` on provided.al2 (which has none), symlinks that dangle once unpacked.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from packer.findings import Finding, Severity, define, finding, summarise
from packer.lambdafs import LAYER_MOUNT, LambdaFS, Mount
from packer.runtime import Runtime
from packer.tree import DIR, FILE, SPECIAL, SYMLINK, Tree

KINDS = ("auto", "runtime", "python", "node", "bin-lib", "generic")

NO_BOOTSTRAP = define("LP401", Severity.ERROR, "runtime layer has no bootstrap at its root",
                      "put an executable file named `bootstrap` at the top of the layer (or function) zip")
NESTED_BOOTSTRAP = define("LP402", Severity.ERROR, "bootstrap is inside a parent folder, not at the root",
                          "zip the folder's contents, not the folder: `cd DIR && layerpack build . -o layer.zip`")
BOOTSTRAP_NOT_EXEC = define("LP403", Severity.ERROR, "bootstrap is not executable by the Lambda user",
                            "chmod 755 bootstrap (`layerpack build` sets it for you)")
BOOTSTRAP_NOT_FILE = define("LP404", Severity.ERROR, "bootstrap is not a regular file",
                            "make `bootstrap` a file or a link to a file inside the layer")
NO_INTERPRETER = define("LP405", Severity.ERROR, "script's #! interpreter does not exist on the runtime",
                        "use an interpreter the runtime has (`layerpack runtimes`), or ship it in the layer's bin/")
MISSING_COMMAND = define("LP406", Severity.ERROR, "script calls a command the runtime does not have",
                         "ship the command in the layer's bin/ (it is on PATH as /opt/bin) or target a runtime that has it")
NOT_EXECUTABLE_FORMAT = define("LP407", Severity.ERROR, "bootstrap is neither an ELF program nor a #! script",
                               "Lambda execs bootstrap directly: add a #! line or ship a compiled program")
WINDOWS_SCRIPT = define("LP408", Severity.ERROR, "script has Windows line endings (CRLF)",
                        "convert with `dos2unix` or `sed -i 's/\\r$//'`: the kernel looks for an interpreter named 'bash\\r'")
NOT_READABLE = define("LP410", Severity.WARNING, "not readable by the Lambda user",
                      "Lambda runs code as a user that owns no file: give files o+r and dirs o+rx (`layerpack build` normalises modes)")
DANGLING_LINK = define("LP411", Severity.ERROR, "symlink points to nothing on Lambda",
                       "ship the target in the layer, or remove the link")
LINK_LOOP = define("LP412", Severity.ERROR, "symlinks form a loop", "break the loop; the loader and unzip both give up after 40 links")
LINK_ESCAPES = define("LP413", Severity.ERROR, "relative symlink leaves the layer",
                      "point it inside the layer, or build with --dereference to store the file's contents")
ABSOLUTE_LINK = define("LP414", Severity.WARNING, "absolute symlink",
                       "use a relative link; `layerpack build` refuses absolute links unless --dereference")
ZIP_PARENT_REF = define("LP415", Severity.ERROR, "zip entry climbs out of the layer with '..'",
                        "rebuild the zip from inside the tree (`layerpack build`)")
ZIP_ABSOLUTE = define("LP416", Severity.ERROR, "zip entry has an absolute path", "rebuild the zip with relative names (`layerpack build`)")
ZIP_DUPLICATE = define("LP417", Severity.WARNING, "zip holds the same name twice", "rebuild the zip; only the last copy survives unzip")
SPECIAL_FILE = define("LP418", Severity.ERROR, "device, fifo or socket in the tree", "remove it: a layer zip can only hold files, directories and links")
UNREADABLE = define("LP419", Severity.ERROR, "entry could not be read", "fix its permissions on this machine and run again")
SCRIPT_INTERPRETER = define("LP426", Severity.WARNING, "executable script's #! interpreter is not on the runtime",
                            "if this script is run on Lambda it fails with 'No such file or directory': ship the interpreter "
                            "in the layer's bin/, or change the #! line")
HARDCODED_ROOT = define("LP427", Severity.ERROR, "launcher script hard-codes a path that exists neither on the runtime nor in the layer",
                        "the tree was installed for another prefix: `layerpack slim --profile erlang --mount-path /opt` rewrites "
                        "OTP's ROOTDIR for where Lambda mounts the layer; otherwise derive the path from the script's own location")
HARDCODED_ROOT_OTHER = define("LP428", Severity.WARNING, "executable script hard-codes a path that exists neither on the runtime nor in the layer",
                              "if it is run on Lambda it fails: relocate the tree for its mount point "
                              "(`layerpack slim --mount-path`), or derive the path from the script's own location")
LIB64_DIR = define("LP420", Severity.WARNING, "lib64/ is not on Lambda's library path",
                   "move the libraries to lib/ (/opt/lib is on LD_LIBRARY_PATH; /opt/lib64 is not)")
PYTHON_LAYOUT = define("LP421", Severity.ERROR, "python layer code is not under python/",
                       "put packages in python/ or python/lib/python3.x/site-packages (pip install --target python)")
NODE_LAYOUT = define("LP422", Severity.ERROR, "node layer modules are not under nodejs/node_modules",
                     "put modules in nodejs/node_modules (or nodejs/node22/node_modules)")
LIBRARY_LAYER = define("LP423", Severity.INFO, "no bootstrap: treated as a library layer",
                       "pass --kind runtime if this layer is meant to be the custom runtime")
ZIP_CONFLICT = define("LP424", Severity.ERROR, "zip member would be written through a link or under a file",
                      "rebuild the zip with `layerpack build`: unzipping it writes outside the layer or fails half-way")
ZIP_UNSUPPORTED = define("LP425", Severity.ERROR, "zip member is encrypted or uses an unsupported compression method",
                         "rebuild the zip without encryption, with deflate or store (`layerpack build`)")

# Shell words that are not commands to look up on PATH.
_SHELL_WORDS = frozenset(
    """if then else elif fi for while until do done case esac in function select time ! [[ ]] { } ( )
    . : source alias bg bind break builtin caller cd command compgen complete compopt continue declare
    dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let
    local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt suspend
    test [ times trap true type typeset ulimit umask unalias unset wait coproc""".split()
)
_SHELLS = ("sh", "bash", "dash", "ash", "ksh", "zsh")


def detect_kind(tree: Tree) -> str:
    names = tree.entries  # (not a set of them: 8 MB more at 200,000 entries)
    if "bootstrap" in names or any(p.count("/") == 1 and p.endswith("/bootstrap") for p in names):
        return "runtime"
    if "python" in names:
        return "python"
    if "nodejs" in names:
        return "node"
    if "bin" in names or "lib" in names:
        return "bin-lib"
    return "generic"


def layout_findings(tree: Tree, rt: Runtime, kind: str = "auto", *, fs: LambdaFS | None = None,
                    mount: str = LAYER_MOUNT, started: tuple[str, ...] = ()) -> list[Finding]:
    """Every layout, permission and link finding for one tree, as mounted at `mount`.
    `started`: absolute paths of the programs the bootstrap starts (their #! line must work)."""
    if kind not in KINDS:
        from packer.errors import UsageError

        raise UsageError(f"unknown layer kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    fs = fs or LambdaFS(rt, [Mount(mount, tree, "layer")])
    out: list[Finding] = []
    out.extend(_problem_findings(tree))
    out.extend(_entry_findings(tree, fs, mount))
    resolved = detect_kind(tree) if kind == "auto" else kind
    if resolved == "runtime":
        out.extend(bootstrap_findings(tree, rt, fs, mount, explicit=kind == "runtime"))
    elif kind == "auto" and rt.family == "provided":
        out.append(finding(LIBRARY_LAYER, ".", f"no bootstrap in {tree.origin}: analysed as a library layer"))
    out.extend(_script_interpreters(tree, fs, mount, started))
    if resolved == "python":
        out.extend(_python_layout(tree))
    if resolved == "node":
        out.extend(_node_layout(tree))
    if "lib64" in tree.entries and tree.entries["lib64"].kind in (DIR, SYMLINK) and not _same_dir(tree, "lib", "lib64"):
        out.append(finding(LIB64_DIR, "lib64", f"{mount}/lib64 is not searched on Lambda (LD_LIBRARY_PATH has {mount}/lib)"))
    return summarise(out)


def _script_interpreters(tree: Tree, fs: LambdaFS, mount: str, started: tuple[str, ...]) -> list[Finding]:
    """The #! line of every executable script besides bootstrap: an error for the program the
    bootstrap starts (a `wrap`ped program, an `exec` target), a warning for the others."""
    boot_final = tree.resolve("bootstrap")[0]
    out: list[Finding] = []
    for e in tree.entries.values():
        if e.kind != FILE or not e.mode & 0o111 or e.size < 3 or e.path in ("bootstrap", boot_final):
            continue
        head = tree.read_head(e.path, 512)
        if not head.startswith(b"#!"):
            continue
        is_started = posixpath.join(mount, e.path) in started
        found, program = interpreter_findings(e.path, head, fs, None if is_started else SCRIPT_INTERPRETER)
        out.extend(f for f in found if is_started or f.code != WINDOWS_SCRIPT.code)
        if program is not None and posixpath.basename(program) in _SHELLS:
            out.extend(_hardcoded_paths(tree, e.path, fs, is_started))
    return out


# `NAME=/abs/path` assignments that name where a tree lives (Debian's bin/erl: ROOTDIR, BINDIR)
_ROOT_VAR = re.compile(r"^\s*(?:export\s+)?([A-Z_]*(?:ROOT|DIR|HOME|PREFIX)[A-Z_]*)=(\S+)\s*$", re.M)
_EXEC_LINE = re.compile(r"^\s*exec\s+(\S+)", re.M)
# Directories every Lambda environment has even though no listed file lies in them.
_LAMBDA_DIRS = ("/tmp", "/dev", "/proc", "/sys", "/etc", "/var/task", "/var/runtime", "/var/lang", "/opt", "/root", "/home")


def _hardcoded_paths(tree: Tree, rel: str, fs: LambdaFS, is_started: bool) -> list[Finding]:
    """Absolute ROOTDIR=/BINDIR=-style assignments and `exec` targets (with the script's own
    variables expanded) that point where nothing is on Lambda."""
    text = tree.read_bytes(rel, limit=256 * 1024).decode("utf-8", "replace")
    known: dict[str, str] = {"LAMBDA_TASK_ROOT": "/var/task"}
    paths: list[str] = []
    for m in _ROOT_VAR.finditer(text):
        value = _expand_literal(m.group(2), known)
        if value is not None:
            known[m.group(1)] = value
            paths.append(value)
    for m in _EXEC_LINE.finditer(text):
        value = _expand_literal(m.group(1), known)
        if value is not None:
            paths.append(value)
    missing = sorted({p for p in paths if p.startswith("/") and not _exists_on_lambda(fs, p)})
    if not missing:
        return []
    code = HARDCODED_ROOT if is_started else HARDCODED_ROOT_OTHER
    return [finding(code, rel, f"{rel} uses {', '.join(missing[:3])}, which exists neither on {rt_name(fs)} nor in the layer "
                    f"as Lambda mounts it: started there it fails with 'No such file or directory'", paths=missing)]


def _expand_literal(word: str, known: dict[str, str]) -> str | None:
    """A shell word with quotes removed and $VAR/${VAR} from `known`; None if anything else is in it."""
    try:
        parts = shlex.split(word)
    except ValueError:
        return None
    if len(parts) != 1:
        return None
    try:
        out = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: known[m.group(1) or m.group(2)], parts[0])
    except KeyError:
        return None
    return None if "$" in out or "`" in out else out


def _exists_on_lambda(fs: LambdaFS, path: str) -> bool:
    path = posixpath.normpath(path)
    if any(path == d or path.startswith(d + "/") and d != "/opt" and d != "/var/task" for d in _LAMBDA_DIRS):
        return True
    return fs.exists(path) or fs.runtime_dir(path)


def _same_dir(tree: Tree, a: str, b: str) -> bool:
    """`lib -> lib64` (or the other way round): the libraries are found through the link."""
    (fa, sa), (fb, sb) = tree.resolve(a), tree.resolve(b)
    return sa == "ok" and sb == "ok" and fa == fb


def _problem_findings(tree: Tree) -> list[Finding]:
    codes = {"parent-ref": ZIP_PARENT_REF, "absolute": ZIP_ABSOLUTE, "duplicate": ZIP_DUPLICATE, "unreadable": UNREADABLE,
             "conflict": ZIP_CONFLICT, "unsupported": ZIP_UNSUPPORTED}
    return [finding(codes[p.reason], p.path, f"{p.path}: {p.detail}") for p in tree.problems]


def _entry_findings(tree: Tree, fs: LambdaFS, mount: str) -> list[Finding]:
    out = []
    for e in tree.entries.values():
        if e.kind == SPECIAL:
            out.append(finding(SPECIAL_FILE, e.path, f"{e.path} is a special file"))
        elif e.kind == FILE and not e.mode & 0o004:
            out.append(finding(NOT_READABLE, e.path, f"{e.path} has mode {e.mode:04o}: Lambda's user cannot read it", mode=f"{e.mode:04o}"))
        elif e.kind == DIR and tree.kind == "dir" and (e.mode & 0o005) != 0o005:
            out.append(finding(NOT_READABLE, e.path, f"directory {e.path} has mode {e.mode:04o}: Lambda's user cannot enter it", mode=f"{e.mode:04o}"))
        elif e.kind == SYMLINK:
            out.extend(_link_findings(tree, fs, mount, e.path, e.link or ""))
    return out


def _link_findings(tree: Tree, fs: LambdaFS, mount: str, rel: str, target: str) -> list[Finding]:
    final, status = tree.resolve(rel)
    if status == "ok":
        return []
    if status == "loop":
        return [finding(LINK_LOOP, rel, f"{rel} -> {target}: too many levels of symbolic links")]
    if status == "escapes":
        return [finding(LINK_ESCAPES, rel, f"{rel} -> {target} points outside the layer", target=target)]
    if status == "dangling":
        # in a merged /opt an earlier layer may provide it
        if fs.exists(posixpath.join(mount, rel)):
            return []
        return [finding(DANGLING_LINK, rel, f"{rel} -> {target}: the target is not in the layer", target=target)]
    # absolute
    abs_target = status.split(":", 1)[1]
    out = [finding(ABSOLUTE_LINK, rel, f"{rel} -> {target} is absolute", target=target)]
    if not fs.exists(abs_target):
        out.append(finding(DANGLING_LINK, rel, f"{rel} -> {target}: nothing is there on Lambda ({rt_name(fs)})", target=target))
    return out


def rt_name(fs: LambdaFS) -> str:
    return f"{fs.runtime.name} {fs.runtime.arch}"


def bootstrap_findings(tree: Tree, rt: Runtime, fs: LambdaFS, mount: str, *, explicit: bool = True) -> list[Finding]:
    """Can Lambda start this tree's bootstrap? (present, at the root, executable, runnable)."""
    entry = tree.entries.get("bootstrap")
    if entry is None:
        nested = sorted(p for p in tree.entries if p.endswith("/bootstrap") and p.count("/") >= 1)
        if nested:
            return [finding(NESTED_BOOTSTRAP, nested[0],
                            f"found {nested[0]}; Lambda only looks at {mount}/bootstrap and /var/task/bootstrap")]
        return [finding(NO_BOOTSTRAP, "bootstrap",
                        f"no bootstrap in {tree.origin}: Lambda will report \"Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]\"")]
    out: list[Finding] = []
    rel = "bootstrap"
    if entry.kind == SYMLINK:
        final, status = tree.resolve(rel)
        if status.startswith("absolute:"):
            node = fs.lookup(status.split(":", 1)[1])
            if node is None or node.where != "tree":
                return [finding(BOOTSTRAP_NOT_FILE, rel, f"bootstrap -> {entry.link} does not resolve to a file in the layer")]
            final = node.rel
        if final is None or tree.entries.get(final) is None or tree.entries[final].kind != FILE:
            return [finding(BOOTSTRAP_NOT_FILE, rel, f"bootstrap -> {entry.link} does not resolve to a file in the layer")]
        rel = final
        entry = tree.entries[final]
    elif entry.kind != FILE:
        return [finding(BOOTSTRAP_NOT_FILE, rel, f"bootstrap is a {entry.kind}")]
    if not entry.mode & 0o001:
        out.append(finding(BOOTSTRAP_NOT_EXEC, rel, f"{rel} has mode {entry.mode:04o}: Lambda fails with Runtime.InvalidEntrypoint (permission denied)",
                           mode=f"{entry.mode:04o}"))
    head = tree.read_head(rel, 4096)
    if head[:4] == b"\x7fELF":
        return out  # ELF programs are analysed by analyze.py
    if not head.startswith(b"#!"):
        out.append(finding(NOT_EXECUTABLE_FORMAT, rel, f"{rel} starts with {head[:16]!r}: exec fails with 'exec format error'"))
        return out
    out.extend(script_findings(tree, rel, rt, fs, mount))
    return out


def parse_shebang(head: bytes) -> tuple[str, list[str], bool]:
    """(interpreter, args, crlf) from a #! line, with the kernel's rules (one optional argument)."""
    line = head[2:].split(b"\n", 1)[0]
    crlf = line.endswith(b"\r")
    text = line.decode("utf-8", "replace").strip()
    parts = text.split(None, 1)
    if not parts:
        return "", [], crlf
    return parts[0], ([parts[1]] if len(parts) > 1 else []), crlf


def interpreter_findings(rel: str, head: bytes, fs: LambdaFS, code=None) -> tuple[list[Finding], str | None]:
    """Does the kernel find this script's `#!` interpreter on Lambda, and `env`'s program on the
    runtime's PATH (which includes the layer's bin/ as /opt/bin)? Returns the findings and the
    program that runs the script (None when it cannot start)."""
    code = code or NO_INTERPRETER
    interp, args, crlf = parse_shebang(head)
    if crlf:
        return [finding(WINDOWS_SCRIPT, rel, f"{rel}: the #! line ends in \\r, so the interpreter is looked up as '{interp}\\r'")], None
    if not fs.exists(interp):
        return [finding(code, rel, f"{rel}: #!{interp} does not exist on {rt_name(fs)}", interpreter=interp)], None
    if posixpath.basename(interp) != "env" or not args:
        return [], interp
    env_args = args[0].split()
    while env_args and env_args[0].startswith("-"):
        env_args.pop(0)
    program = env_args[0] if env_args else ""
    if not program or fs.which(program) is None:
        return [finding(code, rel, f"{rel}: #!{interp} {program}: `{program}` is not on PATH on {rt_name(fs)} "
                        f"({':'.join(fs.runtime.path_env)}) nor in the layer's bin/", interpreter=program)], None
    return [], program


def script_findings(tree: Tree, rel: str, rt: Runtime, fs: LambdaFS, mount: str) -> list[Finding]:
    data = tree.read_bytes(rel, limit=4 * 1024 * 1024)
    out, program = interpreter_findings(rel, data[:4096], fs)
    if program is None:
        return out
    if posixpath.basename(program) in _SHELLS:
        out.extend(_hardcoded_paths(tree, rel, fs, True))
        text = data.decode("utf-8", "replace")
        for cmd in sorted(shell_commands(text)):
            if fs.which(cmd) is None:
                out.append(finding(MISSING_COMMAND, rel, f"{rel} runs `{cmd}`, which {rt_name(fs)} does not have on PATH",
                                   command=cmd))
    return out


_KEYWORDS_BEFORE_COMMAND = frozenset({"if", "then", "else", "elif", "while", "until", "do", "!", "{", "time", "exec", "nohup"})


def _substitutions(line: str) -> list[str]:
    """Bodies of $( ... ) and ` ... `, also inside double quotes, where a line-level tokenizer
    would see one quoted word."""
    out = []
    i = 0
    while True:
        i = line.find("$(", i)
        if i < 0:
            break
        if line.startswith("$((", i):  # arithmetic, not a command
            i += 3
            continue
        depth, j = 1, i + 2
        while j < len(line) and depth:
            depth += {"(": 1, ")": -1}.get(line[j], 0)
            j += 1
        out.append(line[i + 2 : j - 1])
        i += 2
    out.extend(re.findall(r"`([^`]*)`", line))
    return out + [sub for body in out for sub in _substitutions(body)]


def _logical_lines(text: str) -> list[str]:
    """Lines of the script without comments, here-document bodies and case patterns."""
    lines: list[str] = []
    heredoc_end = None
    in_case = 0
    for line in text.replace("\\\n", " ").splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if m:
            heredoc_end = m.group(1)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if re.match(r"case\b.*\bin\s*$", stripped):
            in_case += 1
            continue
        if stripped.startswith("esac"):
            in_case = max(0, in_case - 1)
            continue
        if in_case:  # drop a leading `pattern)` of a case branch
            line = re.sub(r"^\s*\(?[^()]*\)", "", line, count=1)
        lines.append(re.sub(r"(^|\s)#.*$", "", line))
    return lines


def shell_commands(text: str) -> set[str]:
    """Command names a shell script runs, by a conservative reading: plain words in command
    position (line start, after `;` `|` `&&` `(` `then` `do`…, inside `$( )`) that are not
    builtins, keywords, functions the script defines, redirection targets or expansions."""
    functions = set(re.findall(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\s*\)", text, re.M))
    functions |= set(re.findall(r"^\s*function\s+([A-Za-z_][\w-]*)", text, re.M))
    commands: set[str] = set()
    segments: list[str] = []
    for line in _logical_lines(text):
        segments.append(line)
        segments.extend(_substitutions(line))
    for segment in segments:
        lexer = shlex.shlex(segment, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        try:
            tokens = list(lexer)
        except ValueError:
            continue
        expect, skip_target, closing = True, False, None
        for tok in tokens:
            if closing is not None:  # inside (( … )) or [[ … ]]
                if tok == closing:
                    closing = None
                continue
            if tok in ("((", "[["):
                closing = "))" if tok == "((" else "]]"
                continue
            if tok and all(c in ";&|()<>" for c in tok):
                if "<" in tok or ">" in tok:
                    skip_target = not tok.endswith("&") or tok in (">&", "<&")
                else:
                    expect = True
                continue
            if skip_target:
                skip_target = False
                continue
            if not expect:
                continue
            if tok in _KEYWORDS_BEFORE_COMMAND:
                continue
            if re.fullmatch(r"[A-Za-z_]\w*(\[[^]]*\])?\+?=.*", tok, re.S):
                continue
            expect = False
            if tok == "command":  # `command -v x` asks, it does not run
                continue
            if (tok in _SHELL_WORDS or tok in functions or "$" in tok or "/" in tok
                    or not re.fullmatch(r"[A-Za-z0-9_.+-]+", tok) or tok.startswith("-") or tok.isdigit()):
                continue
            commands.add(tok)
    return commands


def _python_layout(tree: Tree) -> list[Finding]:
    """Lambda adds /opt/python and /opt/python/lib/python3.x/site-packages to sys.path, nothing else."""
    if tree.entries.get("python", None) is not None and tree.entries["python"].kind == DIR:
        return []
    stray = sorted(p for p in tree.entries if "/" not in p and (p.endswith(".py") or p.endswith(".dist-info")
                   or (tree.entries[p].kind == DIR and f"{p}/__init__.py" in tree.entries) or p == "site-packages"))
    where = ", ".join(stray[:5]) or "the layer root"
    return [finding(PYTHON_LAYOUT, stray[0] if stray else ".", f"python code at {where} is not on sys.path on Lambda (no python/ directory)")]


def _node_layout(tree: Tree) -> list[Finding]:
    """NODE_PATH on Lambda holds /opt/nodejs/node_modules and /opt/nodejs/nodeNN/node_modules."""
    ok = any(p == "nodejs/node_modules" or re.fullmatch(r"nodejs/node\d+/node_modules", p) for p in tree.entries)
    if ok:
        return []
    stray = "node_modules" if "node_modules" in tree.entries else "."
    return [finding(NODE_LAYOUT, stray, f"no nodejs/node_modules in the layer; modules at {stray} are not on NODE_PATH")]
