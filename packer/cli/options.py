"""Options several commands share, declared once so that they are spelled, defaulted and explained
the same way everywhere (the idea of pip's `cmdoptions` and auditwheel's `options.py`).

A command lists the decorators it takes (`@options.runtime()`, `@options.arch()`, …). Renamed
spellings stay accepted for one release as hidden aliases (`--aws-profile` for `--profile`;
`check --with` for `--with-layer`, the name `analyze` already used): the alias's value joins the new
option's, and a one-line note on stderr names the new spelling.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from packer import runtime as runtimes

F = Callable[..., Any]
ARCHES = runtimes.ARCHES


def _split(_ctx: click.Context, _param: click.Parameter, value: Any) -> tuple[str, ...]:
    """Repeatable options that also take comma-separated lists (`--region a,b --region c`)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        out.extend(p.strip() for p in str(item).split(",") if p.strip())
    return tuple(dict.fromkeys(out))


class ListOption(click.Option):
    """A repeatable option whose configuration value may also be a plain string
    (`runtime = "provided.al2"` in layerpack.toml), not only a list."""

    def type_cast_value(self, ctx: click.Context, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return super().type_cast_value(ctx, value)


def _alias(old: str, new: str, name: str, *, multiple: bool = False) -> Callable[[F], F]:
    """A hidden old spelling `old` of the option `new` whose parameter is `name`."""
    hidden_name = f"renamed_{old.lstrip('-').replace('-', '_')}"

    def decorate(fn: F) -> F:
        @click.option(old, hidden_name, hidden=True, multiple=multiple, default=() if multiple else None,
                      **({"cls": ListOption, "callback": _split} if multiple else {}))
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.pop(hidden_name)
            if given:
                click.echo(f"layerpack: note: {old} is now spelled {new}; the old spelling will be removed", err=True)
                kwargs[name] = (*kwargs[name], *given) if multiple else (kwargs[name] or given)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def _complete_names(names: list[str], incomplete: str) -> list[str]:
    """Names starting with what is typed; after a comma (`-r a,b`), the last item is completed."""
    head, sep, last = incomplete.rpartition(",")
    return [head + sep + n for n in names if n.startswith(last)]


def complete_runtime(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of `--runtime`: the names in rules/runtimes/runtimes.toml (none when that data
    is unreadable: the command itself reports it, a completion must not print a traceback)."""
    from packer.errors import LayerpackError

    try:
        return _complete_names(runtimes.runtime_names(), incomplete)
    except LayerpackError:
        return []


def complete_profile(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of slim's `--profile`: the rule profiles in rules/profiles/."""
    from packer.slim import profiles

    return _complete_names(profiles.profile_names(), incomplete)


def runtime(*, multiple: bool = False, default: str | None | Callable[[], str] = runtimes.default_runtime,
            help: str | None = None) -> Callable[[F], F]:
    """`--runtime/-r NAME`: the Lambda runtime to answer for. The default is data
    (`[defaults] runtime` in rules/runtimes/runtimes.toml), read when the command runs.
    `multiple=True` is publish's CompatibleRuntimes list (repeatable or comma-separated)."""
    if multiple:
        kind: dict[str, Any] = {"multiple": True, "cls": ListOption, "callback": _split, "metavar": "NAME[,NAME…]"}
    else:
        kind = {"cls": _DataDefault, "default": default, "show_default": default is not None, "metavar": "NAME"}
    return click.option("--runtime", "-r", "runtime", **kind, shell_complete=complete_runtime,
                        help=help or "Target Lambda runtime; `layerpack runtimes` lists them.")


class _DataDefault(click.Option):
    """Shows a default computed from data (runtimes.toml) in --help instead of click's '(dynamic)'."""

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        if callable(self.default) and "default" in extra:
            extra["default"] = str(self.default())
        return extra


def arch(*, multiple: bool = False, default: str | None = None, help: str | None = None) -> Callable[[F], F]:
    """`--arch x86_64|arm64`; by default read from the ELF files (None)."""
    return click.option("--arch", "archs" if multiple else "arch", type=click.Choice(ARCHES), multiple=multiple,
                        default=() if multiple else default, show_default=default is not None,
                        help=help or "Target architecture (default: read from the ELF files).")


def json_output(fn: F) -> F:
    """`--json`: one JSON object on stdout carrying its schema id (docs/json.md)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object (its \"schema\" key names the format; see docs/json.md).")(fn)


def dry_run(fn: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")(fn)


def out(*, required: bool = False, help: str, metavar: str = "DIR", file_okay: bool = True) -> Callable[[F], F]:
    """`--out/-o`: where the result is written (never the input, unless `--in-place`)."""
    return click.option("--out", "-o", "out", required=required, metavar=metavar,
                        type=click.Path(file_okay=file_okay, path_type=str), help=help)


def in_place(fn: F) -> F:
    return click.option("--in-place", is_flag=True, help="Change the input itself instead of writing --out.")(fn)


def listed(flag: str, name: str, *, metavar: str, help: str) -> Callable[[F], F]:
    """A repeatable option that also takes comma-separated lists (`--account 1,2 --account 3`)."""
    return click.option(flag, name, multiple=True, cls=ListOption, callback=_split, metavar=metavar, help=help)


def _env_pairs(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in value or ():
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE")
        out[key] = val
    return out


def env(help: str = "Environment variable of the function (repeatable).") -> Callable[[F], F]:
    """`--env KEY=VALUE`, repeatable; the command receives a dict."""
    return click.option("--env", "env", multiple=True, metavar="KEY=VALUE", callback=_env_pairs, help=help)


def with_layers(fn: F) -> F:
    """`--with-layer ZIP|DIR`: the other layers of the same function, in order (check's old `--with`)."""
    fn = _alias("--with", "--with-layer", "with_layers", multiple=True)(fn)
    return click.option("--with-layer", "with_layers", multiple=True, metavar="ZIP|DIR",
                        help="Another layer of the same function, after this one (repeatable, in order; "
                             "at most 5 layers in all).")(fn)


def aws(fn: F) -> F:
    """`--profile`, `--region`, `--endpoint-url` as the AWS CLI names them; the command receives
    `aws` (an AwsOptions) and `regions` (a tuple; empty means the profile's region)."""

    @click.option("--region", "region", multiple=True, cls=ListOption, callback=_split, metavar="REGION[,REGION…]",
                  help="Target region(s); default: the profile's region (AWS_REGION / AWS_DEFAULT_REGION).")
    @click.option("--profile", "profile", metavar="NAME", help="Profile from ~/.aws/config (default: AWS_PROFILE).")
    @_alias("--aws-profile", "--profile", "profile")
    @click.option("--endpoint-url", metavar="URL",
                  help="Send requests to this endpoint (LocalStack, moto); default: AWS_ENDPOINT_URL or AWS.")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from packer.publish.aws import AwsOptions

        # the parameters are `region`/`profile` so that `region = "…"` in layerpack.toml applies
        kwargs["regions"] = kwargs.pop("region")
        kwargs["aws"] = AwsOptions(profile=kwargs.pop("profile"), endpoint_url=kwargs.pop("endpoint_url"))
        return fn(*args, **kwargs)

    return wrapper
