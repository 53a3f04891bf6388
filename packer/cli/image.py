"""`layerpack image pull|list|prune`: Lambda base images in layerpack's cache, without Docker."""

from __future__ import annotations

import sys

import click

from packer import runtime as runtime_mod
from packer.cli import options
from packer.cli.base import main
from packer.images.pull import PullProgress, pull
from packer.images.store import CachedImage, Store
from packer.render import emit_json


class BarProgress(PullProgress):
    """A rich progress bar on a terminal's stderr; one line per stage otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._bar = None
        self._task = None

    def stage(self, text: str) -> None:
        click.echo(f"layerpack: {text}", err=True)

    def begin(self, total_bytes: int, files: int) -> None:
        if not files:
            return
        if not self.tty:
            click.echo(f"layerpack: downloading {files} blobs ({total_bytes / 1e6:.1f} MB)", err=True)
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self._bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(f"{files} blobs", total=total_bytes or None)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def default_arch() -> str:
    from packer.emulator.rootfs import host_machine

    return runtime_mod.MACHINE_ARCH.get(host_machine(), "x86_64")


@main.group("image")
def image_group() -> None:
    """Lambda base images (or any OCI image) pulled into layerpack's cache, for `invoke --image`."""


@image_group.command("pull")
@click.argument("ref")
@options.arch(help="Which platform of a multi-arch image (default: this host's).")
def pull_cmd(ref: str, arch: str | None) -> None:
    """Pull REF: a runtime name (provided.al2023, python3.12, …) or HOST[:PORT]/REPO[:TAG|@sha256:…].

    \b
    layerpack image pull provided.al2023
    layerpack image pull 127.0.0.1:5000/lambda/x:1
    """
    img = pull(ref, arch or default_arch(), Store(), BarProgress())
    click.echo(f"{ref}: {img.digest} ({img.size / 1e6:.1f} MB unpacked) at {img.root}")


def _row(img: CachedImage) -> str:
    refs = ", ".join(img.refs) or "(no name)"
    return f"{img.digest[:19]}  {img.arch:7} {img.size / 1e6:8.1f} MB  {img.pulled}  {refs}"


@image_group.command("list")
@options.json_output
def list_cmd(as_json: bool) -> None:
    """The images in the cache (no network)."""
    store = Store()
    imgs = store.images()
    if as_json:
        emit_json("image-list", {"cache": str(store.base), "images": [i.to_json() for i in imgs]})
        return
    if not imgs:
        click.echo(f"no images in {store.base} (layerpack image pull provided.al2023)", err=True)
        return
    for img in imgs:
        click.echo(_row(img))


@image_group.command("prune")
@click.option("--all", "everything", is_flag=True, help="Remove every cached image, not just leftovers.")
def prune_cmd(everything: bool) -> None:
    """Remove interrupted pulls and unused blobs (--all: the whole image cache)."""
    store = Store()
    removed = store.prune(everything)
    click.echo(f"removed {removed['roots']} images, {removed['blobs']} blobs, {removed['leftovers']} leftovers "
               f"({removed['bytes'] / 1e6:.1f} MB) from {store.base}")
