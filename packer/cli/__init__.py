"""The `layerpack` command line: a thin shell around the library.

`COMMANDS` is the explicit command table (like pip's `commands_dict`): each command's module and the
one-sentence summary `layerpack --help` shows. A module is imported only when its command runs;
a new command adds its row here.
"""

from __future__ import annotations

from packer.cli.base import main

COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("packer.cli.analyze", "Tell whether a binary, directory or zip will load on Lambda, without running it."),
    "vendor": ("packer.cli.vendor", "Copy the libraries Lambda lacks into lib/ and patch the files so Lambda finds them."),
    "slim": ("packer.cli.slim", "Remove what a headless function never uses from an interpreter or package tree."),
    "build": ("packer.cli.build", "Zip a tree into a reproducible layer zip that Lambda accepts as it is."),
    "check": ("packer.cli.check", "Measure a tree or zip against Lambda's size limits and check its layout."),
    "publish": ("packer.cli.publish", "Publish a layer zip or tree as a Lambda layer version, once per content."),
    "layers": ("packer.cli.layers", "List, inspect and delete published layer versions."),
    "invoke": ("packer.cli.run", "Run a layer's bootstrap the way Lambda would and send it events."),
    "run": ("packer.cli.run", "Keep a layer's bootstrap warm behind a local invoke endpoint."),
    "image": ("packer.cli.image", "Pull Lambda base images (or any OCI image) into the cache for invoke --image."),
    "wrap": ("packer.cli.wrap", "Make a program that answers JSON lines on stdin a warm Lambda function."),
    "runtimes": ("packer.cli.runtimes", "List the Lambda runtimes layerpack models, with the date of each dump."),
    "codes": ("packer.cli.runtimes", "List every finding code with its severity, meaning and usual fix."),
    "completion": ("packer.cli.completion", "Print the bash, zsh or fish script that completes layerpack's commands and names."),
}

main.lazy.update(COMMANDS)

__all__ = ["COMMANDS", "main"]
