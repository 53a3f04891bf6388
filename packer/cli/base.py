"""Shared CLI plumbing: the root group, error handling, configuration and common options.

Errors are caught here and only here: a `LayerpackError` becomes one line on stderr and its exit
code; anything else is a bug and shows a traceback only with `--debug`.
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from packer import __version__
from packer.errors import LayerpackError, UsageError

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class Context:
    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self.config_path: Path | None = None  # the configuration file in effect, for error messages


def _handle(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one actionable line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_object(Context) and ctx.find_object(Context).debug)
        try:
            return fn(*args, **kwargs)
        except LayerpackError as exc:
            if debug:  # the traceback for the bug report; the exit code stays what scripts expect
                import traceback

                traceback.print_exc()
            click.echo(f"layerpack: error: {exc}{_from_config(ctx, str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("layerpack: interrupted", err=True)
            ctx.exit(130)

    return wrapper


def _from_config(ctx: click.Context, message: str) -> str:
    """" (set in FILE:LINE)" when the value the error names came from the configuration file."""
    obj = ctx.find_object(Context)
    path = obj.config_path if obj else None
    if path is None:
        return ""
    from click.core import ParameterSource

    for name, value in ctx.params.items():
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT_MAP:
            continue
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, str) and item and repr(item) in message:  # errors quote the value they reject
                key = next((k for k in (ctx.default_map or {}) if (ctx.default_map or {})[k] == value or k == name), name)
                return f" (set by {_line_of(path, key)})"
    return ""


class LayerpackGroup(click.Group):
    """Root group: every command gets the error handler; commands are imported on first use from
    the explicit table `packer.cli.COMMANDS` (name -> module, summary), so `--help` lists them
    without importing boto3, the emulator or the slimmer (0.45 s of start-up, measured with
    `python -X importtime -c "import packer.cli"`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = {}  # command name -> (module that defines it, summary)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            importlib.import_module(self.lazy[name][0])
            if name in self.commands:
                self.commands[name].short_help = self.lazy[name][1]
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Whole-sentence summaries from the table (click would cut them to the terminal's width)."""
        rows = [(name, self.lazy[name][1] if name in self.lazy else self.commands[name].get_short_help_str(200))
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
        decorator = super().command(*args, **kwargs)

        def wrap(fn: Callable[..., Any]) -> click.Command:
            return decorator(_handle(fn))

        return wrap

    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Group]:
        kwargs.setdefault("cls", LayerpackGroup)
        return super().group(*args, **kwargs)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's own usage errors (a missing required option, an unknown one, a bad choice) in
        the same one-line style as layerpack's: `layerpack: error: …`, exit 2."""
        try:
            rv = super().main(args, prog_name or "layerpack", complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as exc:  # `layerpack` or `layerpack layers` alone: the help, as click shows it
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            if not standalone_mode:
                raise
            sys.exit(_usage_error(exc))
        except LayerpackError as exc:  # raised while click parses (a default read from broken data)
            if not standalone_mode or "--debug" in (args if args is not None else sys.argv[1:]):
                raise
            click.echo(f"layerpack: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            click.echo(f"layerpack: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            if not standalone_mode:
                raise
            click.echo("layerpack: interrupted", err=True)
            sys.exit(130)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else EXIT_CLEAN)


_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


def _usage_error(exc: click.UsageError) -> int:
    """One line on stderr naming the command and where its options are listed; returns exit 2."""
    path = exc.ctx.command_path if exc.ctx is not None else "layerpack"
    message = exc.format_message().rstrip(".")
    message = message[0].lower() + message[1:] if message[:1].isupper() and message[1:2].islower() else message
    see = f"`{path} --help` lists the options"
    click.echo(f"layerpack: error: {message}{' ' + see[0].upper() + see[1:] if message.endswith('?') else '; ' + see}",
               err=True)
    return EXIT_USAGE


@click.group(cls=LayerpackGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="layerpack")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (for bug reports).")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Make a program in any language into an AWS Lambda layer that fits and runs.

    \b
    Start with:  layerpack analyze ./bootstrap
    Pipeline:    analyze -> vendor -> slim -> build/check -> publish -> invoke/run
    """
    ctx.obj = Context(debug)
    try:
        name = ctx.invoked_subcommand
        cmd = main.get_command(ctx, name) if name else None
        config, ctx.obj.config_path = find_config()
        if config:
            check_config_keys(ctx, config, ctx.obj.config_path)
        ctx.default_map = defaults_from_config({name: cmd} if cmd else {}, config)
    except LayerpackError as exc:
        click.echo(f"layerpack: error: {exc}", err=True)
        ctx.exit(EXIT_USAGE)


def load_config(start: Path | None = None) -> dict[str, Any]:
    """`[tool.layerpack]` of the nearest pyproject.toml, or the nearest layerpack.toml.

    Options given on the command line override these values (click's default_map mechanism)."""
    return find_config(start)[0]


def find_config(start: Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """(configuration table, the file it came from)."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        lp = d / "layerpack.toml"
        pp = d / "pyproject.toml"
        for path, getter in ((lp, lambda data: data), (pp, lambda data: data.get("tool", {}).get("layerpack"))):
            if path.is_file():
                from packer._compat import tomllib  # only with a configuration file: 3 ms of start-up

                try:
                    data = tomllib.loads(path.read_text(encoding="utf-8"))
                except UnicodeDecodeError as exc:
                    raise UsageError(f"{path}: invalid configuration: not UTF-8 (byte {exc.start})") from None
                except RecursionError:
                    raise UsageError(f"{path}: invalid configuration: nested too deeply") from None
                except (tomllib.TOMLDecodeError, OSError) as exc:
                    raise UsageError(f"{path}: invalid configuration: {exc}") from exc
                table = getter(data)
                if table:
                    if not isinstance(table, dict):
                        raise UsageError(f"{path}: [tool.layerpack] must be a table")
                    return table, path
    return {}, None


def _line_of(path: Path, key: str, table: str | None = None) -> str:
    """`path:line` where `key` (or the table `[...table]`) is written, as well as a plain scan can tell."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return str(path)
    want = (re.compile(rf"^\s*\[\s*(tool\s*\.\s*layerpack\s*\.\s*)?{re.escape(table)}\s*\]") if table and key == table
            else re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*="))
    for n, line in enumerate(lines, 1):
        if want.search(line):
            return f"{path}:{n}"
    return str(path)


def check_config_keys(ctx: click.Context, config: dict[str, Any], path: Path | None) -> None:
    """Unknown keys are an error naming the file and line: a misspelt key silently ignored means the
    user's setting is not applied. Top-level keys are checked against every command's options
    (importing the commands only when a file has keys to check)."""
    commands = {n: main.get_command(ctx, n) for n in main.list_commands(ctx)}
    known: set[str] = set()
    for cmd in commands.values():
        subs = cmd.commands.values() if isinstance(cmd, click.Group) else (cmd,)
        for sub in subs:
            known.update(config_keys(sub))
    for key, value in config.items():
        norm = key.replace("-", "_")
        if isinstance(value, dict):
            if key not in commands:
                where = _line_of(path, key, key) if path else "configuration"
                raise UsageError(f"{where}: unknown table [{key}]; tables are named after commands: "
                                 f"{', '.join(sorted(commands))}")
            cmd = commands[key]
            if not isinstance(cmd, click.Group):
                params = config_keys(cmd)
                for sub in value:
                    if sub.replace("-", "_") not in params:
                        where = _line_of(path, sub) if path else "configuration"
                        raise UsageError(f"{where}: [{key}] has unknown option {sub!r}",
                                         hint=f"`layerpack {key} --help` lists its options")
        elif norm not in known:
            where = _line_of(path, key) if path else "configuration"
            raise UsageError(f"{where}: unknown key {key!r}", hint="see `layerpack COMMAND --help` for the options a key can set")
        else:
            _refuse_split_meaning(commands, key, path)


def _refuse_split_meaning(commands: dict[str, click.Command | None], key: str, path: Path | None) -> None:
    """A top-level key applies to every command with that option, so a key that means different
    things to different commands (`profile`: slim's rule profile, publish's AWS profile) would set
    both at once; it must be written in the commands' own tables instead."""
    norm = key.replace("-", "_")
    meanings: dict[tuple[str, str, bool], tuple[list[str], str]] = {}
    for name, cmd in sorted(commands.items(), key=lambda kv: (isinstance(kv[1], click.Group), kv[0])):
        subs = cmd.commands.values() if isinstance(cmd, click.Group) else (cmd,) if cmd else ()
        for sub in subs:
            param = {p.name: p for p in sub.params}.get(config_keys(sub).get(norm, ""))
            if param is None or not param.name:
                continue
            # `archs` (publish's repeatable --arch) is the same setting as `arch`: the key, pluralised
            meaning = (norm if param.name in (norm, norm + "s") else param.name, type(param.type).__name__,
                       isinstance(param, click.Argument))
            tables, what = meanings.setdefault(meaning, ([], _gist(param)))
            if name not in tables:
                tables.append(name)
    if len(meanings) < 2:
        return
    prefix = "tool.layerpack." if path is not None and path.name == "pyproject.toml" else ""
    ways = []
    for tables, what in meanings.values():
        notes = [what] if what else []
        if tables[1:]:
            notes.append("likewise " + ", ".join(f"[{prefix}{t}]" for t in tables[1:]))
        ways.append(f"[{prefix}{tables[0]}] {key} = …" + (f" ({'; '.join(notes)})" if notes else ""))
    where = _line_of(path, key) if path else "configuration"
    raise UsageError(f"{where}: top-level key {key!r} means different things to different commands; "
                     f"set it in each command's table: {' or '.join(ways)}")


def _gist(param: click.Parameter) -> str:
    """The start of an option's help (`Rule profile`, `Profile from ~/.aws/config`), to tell meanings apart."""
    text = (getattr(param, "help", None) or "").split(": ")[0].split(" (")[0].rstrip(".")
    return text if len(text) <= 40 else text[:39] + "…"


def defaults_from_config(commands: dict[str, click.Command], config: dict[str, Any]) -> dict[str, Any]:
    """Build click's default_map: top-level keys apply to every command with that option
    (`runtime = "provided.al2"`), a sub-table applies to one command (`[tool.layerpack.slim]`);
    for a group (`layers`), to each of its subcommands."""
    out: dict[str, Any] = {}
    scalars = {k.replace("-", "_"): v for k, v in config.items() if not isinstance(v, dict)}
    for name, cmd in commands.items():
        if isinstance(cmd, click.Group):
            sub_config = {k: v for k, v in config.items() if not isinstance(v, dict)}
            sub_config.update(config.get(name, {}) if isinstance(config.get(name), dict) else {})
            nested = defaults_from_config(dict(cmd.commands), sub_config)
            if nested:
                out[name] = nested
            continue
        params = config_keys(cmd)
        table = {params[k.replace("-", "_")]: v for k, v in scalars.items() if k.replace("-", "_") in params}
        sub = config.get(name)
        if isinstance(sub, dict):
            for k, v in sub.items():
                key = k.replace("-", "_")
                if key not in params:
                    raise UsageError(f"configuration [tool.layerpack.{name}] has unknown option {k!r}")
                table[params[key]] = v
        table = {k: _fit(cmd, k, v) for k, v in table.items()}
        if table:
            out[name] = table
    return out


def _fit(cmd: click.Command, name: str, value: Any) -> Any:
    """A configuration value in the shape its option takes: one string for a repeatable option
    (`arch = "arm64"` for publish's `--arch`, which may be given several times) becomes a list of one,
    which click would otherwise reject ("Value must be an iterable"); a list of one for a single-valued
    option becomes its item."""
    param = next((p for p in cmd.params if p.name == name), None)
    if param is None:
        return value
    many = param.multiple or param.nargs != 1
    if many and isinstance(value, str):
        return [value]
    if not many and isinstance(value, list) and len(value) == 1:  # `arch = ["arm64"]` for analyze's --arch
        return value[0]
    return value


def config_keys(cmd: click.Command) -> dict[str, str]:
    """Configuration key -> parameter name: an option's visible long names (`profile` for slim's
    `--profile`, whose parameter is `profile_name`) and its parameter name."""
    keys: dict[str, str] = {}
    for p in cmd.params:
        if not p.name or getattr(p, "hidden", False):
            continue
        keys[p.name] = p.name
        for opt in getattr(p, "opts", ()):
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = p.name
    return keys
