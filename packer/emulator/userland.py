"""Which root file system a local run gets: an image's (exact userland) or host copies (today's view).

`--image REF` pulls REF if it is not cached (the user named it: not a surprise) and uses it;
`--rootfs DIR|TAR` uses an unpacked root or a `docker export` tar; without either, the runtime's
base image is used *only if it is already cached* — `invoke` never downloads on its own. Otherwise
the caller rebuilds the runtime from host files and prints `host_hint`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from packer.images.reference import runtime_images
from packer.runtime import Runtime

if TYPE_CHECKING:
    from packer.images.pull import PullProgress
    from packer.images.store import CachedImage, Store


def resolve(image: str | None, rootfs: Path | None, rt: Runtime, log: Callable[[str], None],
            store: Store | None = None, use_cached_default: bool = True,
            progress: PullProgress | None = None) -> CachedImage | None:
    """The image root to run on, or None for the host-files view."""
    from packer.images import pull as images  # requests and the cache only when an image is involved
    from packer.images.store import Store

    store = store or Store()
    if rootfs is not None:
        return images.rootfs(rootfs, rt.arch, store)
    if image is not None:
        found = images.cached(image, rt.arch, store)
        if found is None:
            log(f"layerpack: pulling {image} ({rt.arch}); next time it comes from the cache")
            found = images.pull(image, rt.arch, store, progress)
        return found
    if use_cached_default and rt.name in runtime_images():
        return images.cached(rt.name, rt.arch, store)
    return None


def host_hint(rt: Runtime) -> str | None:
    """The one line that says how to get the exact userland, when the runtime has a base image."""
    if rt.name not in runtime_images():
        return None
    return (f"layerpack: {rt.name}'s libraries are host copies here (not its glibc, not its commands); "
            f"for the exact userland: layerpack image pull {rt.name}")


def describe(img: CachedImage, image: str | None, rootfs: Path | None) -> str:
    if rootfs is not None:
        return f"root file system {rootfs}"
    name = image or (img.refs[0] if img.refs else "image")
    return f"image {name} {img.digest[:19]}"
