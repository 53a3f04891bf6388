"""`layerpack completion bash|zsh|fish`: print the shell's completion script.

The script is click's own (what `_LAYERPACK_COMPLETE=bash_source layerpack` prints): this command only
gives it a name a user can find in `--help`. Completion then calls `layerpack` back with
`_LAYERPACK_COMPLETE=bash_complete`; `--runtime` and slim's `--profile` complete the names shipped in
rules/ (packer.cli.options.complete_runtime / complete_profile).
"""

from __future__ import annotations

import click

from packer.cli.base import main

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_LAYERPACK_COMPLETE"


@main.command("completion")
@click.argument("shell", type=click.Choice(SHELLS), metavar="SHELL")
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL; load it from your shell's start-up file.

    \b
    bash: eval "$(layerpack completion bash)"        (in ~/.bashrc)
    zsh:  eval "$(layerpack completion zsh)"         (in ~/.zshrc)
    fish: layerpack completion fish > ~/.config/fish/completions/layerpack.fish
    """
    from click.shell_completion import shell_complete

    # click's own printer, not cls.source() + echo: click 8.5 stopped adding a newline after the script
    shell_complete(main, {}, "layerpack", COMPLETE_VAR, f"{shell}_source")
